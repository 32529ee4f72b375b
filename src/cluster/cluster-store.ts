/**
 * The cluster files of one node, under `<git dir>/gitfs/cluster/` (docs/FORMAT.md "Cluster
 * identity"): ca.pem (every node), ca.key (the CA node only), node.key and node.pem,
 * revocations.bin, and tokens/ (unused join tokens, CA node only). Keys are written 0600.
 */
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireWaiting } from '../branches/lock-file.js';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { systemClock } from '../util/clock.js';
import { writeFileAtomic } from '../util/durable.js';
import { certificatePem, issueCertificate, verifyNodeCertificate } from './certificate.js';
import { ClusterTrust, NodeIdentity } from './identity.js';
import { nodeIdOf, type NodeId } from './node-id.js';
import { mergeRevocations, openRevocations, signRevocations, type RevocationList } from './revocation.js';

const DAY_MS = 86_400_000;
export const CA_VALIDITY_DAYS = 3650;
export const NODE_VALIDITY_DAYS = 365;
/**
 * A node certificate is renewed once less than this is left of it (a third of its year): a node
 * that cannot reach an issuer then has months of warnings before peers refuse it.
 */
export const RENEW_WITHIN_DAYS = 120;
/** Certificates start a little in the past, so a peer whose clock lags accepts them at once. */
const BACKDATE_MS = 10 * 60_000;

export function clusterDir(gitDir: string): string {
  return join(gitDir, 'gitfs', 'cluster');
}

const file = (gitDir: string, name: string): string => join(clusterDir(gitDir), name);

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw new GitfsError(ErrorCodes.IO, `cannot read ${path}: ${(e as Error).message}`, { path }, { cause: e });
  }
}

function serial(): Buffer {
  const s = randomBytes(16);
  s[0] = ((s[0] ?? 0) & 0x7f) | 0x01;
  return s;
}

export async function hasIdentity(gitDir: string): Promise<boolean> {
  return (await readOptional(file(gitDir, 'node.pem'))) !== undefined;
}

/**
 * GITFS_CLUSTER_EXISTS where a cluster identity is, or a CA key: one left by an init cut short
 * would make this node take itself for the CA of the cluster it joins next, and an init would
 * write over a CA key whose node.pem was lost.
 */
export async function refuseExisting(gitDir: string): Promise<void> {
  if (await hasIdentity(gitDir)) {
    throw new GitfsError(ErrorCodes.CLUSTER_EXISTS, `this node already belongs to a cluster (${clusterDir(gitDir)})`, { path: clusterDir(gitDir) });
  }
  if ((await readOptional(file(gitDir, 'ca.key'))) !== undefined) {
    throw new GitfsError(
      ErrorCodes.CLUSTER_EXISTS,
      `${file(gitDir, 'ca.key')} holds a cluster CA key but this node has no certificate (an init cut short, or node.pem lost): move ${clusterDir(gitDir)} aside, or keep it if it is a cluster's only CA key`,
      { path: clusterDir(gitDir) },
    );
  }
}

/** Issues a node certificate for `publicKey` with the CA key (on the CA node). */
export function issueNodeCertificate(ca: { key: KeyObject; cert: X509Certificate }, publicKey: KeyObject, nowMs: number): { nodeId: NodeId; pem: string } {
  const nodeId = nodeIdOf(publicKey);
  const der = issueCertificate({
    serial: serial(),
    subject: nodeId,
    issuer: ca.cert.subject.replace(/^CN=/, ''),
    notBefore: new Date(nowMs - BACKDATE_MS),
    // Never past the CA's own end: a peer would trust the node no longer anyway.
    notAfter: new Date(Math.min(nowMs + NODE_VALIDITY_DAYS * DAY_MS, Date.parse(ca.cert.validTo))),
    publicKey,
    signingKey: ca.key,
    issuerPublicKey: ca.cert.publicKey,
    ca: false,
  });
  return { nodeId, pem: certificatePem(der) };
}

/**
 * Whether `certificate` is in its last RENEW_WITHIN_DAYS and a renewal could end later: none ends
 * after the CA, so one that ends with the CA (within a day) is not due.
 */
export function renewalDue(certificate: X509Certificate, ca: X509Certificate, nowMs: number): boolean {
  const end = Date.parse(certificate.validTo);
  return end - nowMs < RENEW_WITHIN_DAYS * DAY_MS && end < Date.parse(ca.validTo) - DAY_MS;
}

/**
 * Checks a renewed certificate for `identity` (against the CA, for the same key, ending later than
 * the one held) and makes it this node's: node.pem replaced, then the identity in memory.
 */
export async function adoptRenewal(gitDir: string, identity: NodeIdentity, trust: ClusterTrust, pem: string, nowMs: number): Promise<X509Certificate> {
  const certificate = checkRenewal(identity, trust, pem, nowMs);
  await writeFileAtomic(file(gitDir, 'node.pem'), pem);
  identity.adopt(certificate, pem);
  return certificate;
}

/**
 * A renewal stored in node.pem by another process (`gitfs cluster renew` beside a running daemon),
 * taken in memory; undefined when node.pem holds the certificate held, or anything that is no
 * renewal of it.
 */
export async function adoptStoredRenewal(gitDir: string, identity: NodeIdentity, trust: ClusterTrust, nowMs: number): Promise<X509Certificate | undefined> {
  const pem = (await readOptional(file(gitDir, 'node.pem')))?.toString('utf8');
  if (pem === undefined || pem === identity.certificatePem) return undefined;
  let certificate: X509Certificate;
  try {
    certificate = checkRenewal(identity, trust, pem, nowMs);
  } catch {
    return undefined;
  }
  identity.adopt(certificate, pem);
  return certificate;
}

/** How far in the past a renewal must start: one from an issuer whose clock runs ahead would be refused by peers whose clocks lag. */
const RENEWAL_START_MARGIN_MS = 5 * 60_000;

function checkRenewal(identity: NodeIdentity, trust: ClusterTrust, pem: string, nowMs: number): X509Certificate {
  let certificate: X509Certificate;
  let nodeId: string;
  try {
    certificate = new X509Certificate(pem);
    nodeId = verifyNodeCertificate(certificate, trust.ca, nowMs).nodeId;
  } catch (e) {
    throw new GitfsError(ErrorCodes.BAD_CERTIFICATE, `the renewed certificate does not verify: ${(e as Error).message}`, {}, { cause: e });
  }
  const problem =
    nodeId !== identity.nodeId
      ? `it is for node ${nodeId}`
      : Date.parse(certificate.validFrom) > nowMs - RENEWAL_START_MARGIN_MS
        ? `it starts at ${new Date(certificate.validFrom).toISOString()} (the issuer's clock runs ahead)`
        : identity.renewalProblem(certificate);
  if (problem !== undefined) throw new GitfsError(ErrorCodes.BAD_CERTIFICATE, `the renewed certificate is refused: ${problem}`);
  return certificate;
}

/**
 * `gitfs cluster renew` on the CA node: a new certificate for this node's key, whatever state the
 * one held is in (expired, even unreadable), stored as node.pem.
 */
export async function renewOnAuthority(gitDir: string, nowMs: number): Promise<{ nodeId: NodeId; validTo: string }> {
  const ca = await loadAuthority(gitDir);
  const keyPem = await readOptional(file(gitDir, 'node.key'));
  if (keyPem === undefined) throw new GitfsError(ErrorCodes.NOT_IN_CLUSTER, `this node has no key (${file(gitDir, 'node.key')})`);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(createPrivateKey(keyPem));
  } catch (e) {
    throw new GitfsError(ErrorCodes.BAD_KEY, `${file(gitDir, 'node.key')} is not a key: ${(e as Error).message}`, {}, { cause: e });
  }
  const issued = issueNodeCertificate(ca, publicKey, nowMs);
  await writeFileAtomic(file(gitDir, 'node.pem'), issued.pem);
  return { nodeId: issued.nodeId, validTo: new X509Certificate(issued.pem).validTo };
}

/** A renewed certificate for `publicKey`'s node, issued here (the CA node). */
export async function issueRenewal(gitDir: string, publicKey: KeyObject, nowMs: number): Promise<string> {
  return issueNodeCertificate(await loadAuthority(gitDir), publicKey, nowMs).pem;
}

/** `gitfs cluster init`: a new CA on this node, and this node's own certificate from it. */
export async function initCluster(gitDir: string, nowMs: number): Promise<{ clusterId: string; nodeId: NodeId }> {
  await refuseExisting(gitDir);
  const ca = generateKeyPairSync('ed25519');
  const caName = `gitfs cluster CA ${randomBytes(4).toString('hex')}`;
  const caDer = issueCertificate({
    serial: serial(),
    subject: caName,
    issuer: caName,
    notBefore: new Date(nowMs - BACKDATE_MS),
    notAfter: new Date(nowMs + CA_VALIDITY_DAYS * DAY_MS),
    publicKey: ca.publicKey,
    signingKey: ca.privateKey,
    issuerPublicKey: ca.publicKey,
    ca: true,
  });
  const caCert = new X509Certificate(caDer);
  const node = generateKeyPairSync('ed25519');
  const issued = issueNodeCertificate({ key: ca.privateKey, cert: caCert }, node.publicKey, nowMs);
  await mkdir(join(clusterDir(gitDir), 'tokens'), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file(gitDir, 'ca.key'), ca.privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600);
  await saveMembership(gitDir, { key: node.privateKey, certPem: issued.pem, caPem: certificatePem(caDer) });
  return { clusterId: new ClusterTrust(caCert, certificatePem(caDer)).clusterId, nodeId: issued.nodeId };
}

/** Writes what a node needs to be a member; node.pem last, so its presence means "complete". */
export async function saveMembership(gitDir: string, m: { key: KeyObject; certPem: string; caPem: string; revocations?: RevocationList }): Promise<void> {
  await mkdir(clusterDir(gitDir), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file(gitDir, 'node.key'), m.key.export({ type: 'pkcs8', format: 'pem' }), 0o600);
  await writeFileAtomic(file(gitDir, 'ca.pem'), m.caPem);
  if (m.revocations !== undefined) await saveRevocations(gitDir, m.revocations, new X509Certificate(m.caPem).publicKey);
  await writeFileAtomic(file(gitDir, 'node.pem'), m.certPem);
}

/**
 * Stores `list` unless revocations.bin already holds one at least as new (versions only grow on
 * disk too). Under the file's lock, so a daemon storing a peer's list and `gitfs cluster revoke`
 * take turns.
 */
export async function saveRevocations(gitDir: string, list: RevocationList, caPublicKey: KeyObject): Promise<void> {
  await updateRevocations(gitDir, async () => {
    // An unreadable stored list is no reason to keep a verified newer one out.
    const stored = await storedRevocations(gitDir, caPublicKey).catch(() => undefined);
    return stored !== undefined && stored.version >= list.version ? undefined : list;
  });
}

/**
 * How long a writer waits for another to finish with revocations.bin; each holds it for
 * milliseconds, so a lock older than REVOCATIONS_STALE_MS was left by a writer that died (a
 * revoke stopped by Ctrl-C) and is broken.
 */
const REVOCATIONS_LOCK_WAIT_MS = 10_000;
const REVOCATIONS_STALE_MS = 5_000;

/**
 * Writes the list `next` returns, under revocations.bin.lock (the lock-file protocol of refs):
 * `next` reads the stored list under the lock, so no writer's list is lost to another's. It
 * returns undefined to leave the file as it is. Waits up to 10 s for the lock, then
 * GITFS_REF_CONFLICT.
 */
async function updateRevocations(gitDir: string, next: () => Promise<RevocationList | undefined>): Promise<RevocationList | undefined> {
  const lock = await acquireWaiting(file(gitDir, 'revocations.bin'), { clock: systemClock, staleLockMs: REVOCATIONS_STALE_MS, waitMs: REVOCATIONS_LOCK_WAIT_MS });
  try {
    const list = await next();
    if (list === undefined) return undefined;
    await lock.write(list.encoded);
    await lock.commit();
    return list;
  } finally {
    await lock.release();
  }
}

/** This node's identity and trust; GITFS_NOT_IN_CLUSTER before init/join. */
export async function loadMembership(gitDir: string, nowMs: number): Promise<{ identity: NodeIdentity; trust: ClusterTrust }> {
  const [certPem, keyPem, caPem] = await Promise.all(['node.pem', 'node.key', 'ca.pem'].map((n) => readOptional(file(gitDir, n))));
  if (certPem === undefined || keyPem === undefined || caPem === undefined) {
    throw new GitfsError(ErrorCodes.NOT_IN_CLUSTER, `this node has no cluster identity (run gitfs cluster init, or gitfs cluster join TOKEN)`, { path: clusterDir(gitDir) });
  }
  try {
    const ca = new X509Certificate(caPem);
    const certificate = new X509Certificate(certPem);
    const privateKey = createPrivateKey(keyPem);
    if (Date.parse(certificate.validTo) <= nowMs) {
      throw new GitfsError(
        ErrorCodes.NOT_IN_CLUSTER,
        `this node's certificate expired on ${new Date(certificate.validTo).toISOString()} (gitfs serve renews it in its last ${RENEW_WITHIN_DAYS} days while it can reach the CA node): ` +
          `on the CA node, gitfs cluster renew issues a new one; another node moves ${clusterDir(gitDir)} aside and joins again with a new token`,
        { path: clusterDir(gitDir) },
      );
    }
    const verified = verifyNodeCertificate(certificate, ca, nowMs);
    if (nodeIdOf(createPublicKey(privateKey)) !== verified.nodeId) throw new Error('node.key does not match node.pem');
    const stored = await readOptional(file(gitDir, 'revocations.bin'));
    const trust = new ClusterTrust(ca, caPem.toString('utf8'), stored === undefined ? undefined : openRevocations(stored, ca.publicKey));
    return {
      identity: new NodeIdentity(verified.nodeId as NodeId, privateKey, certificate, certPem.toString('utf8')),
      trust,
    };
  } catch (e) {
    if (e instanceof GitfsError && e.code !== ErrorCodes.BAD_CERTIFICATE) throw e;
    throw new GitfsError(ErrorCodes.NOT_IN_CLUSTER, `the cluster identity in ${clusterDir(gitDir)} is unusable: ${(e as Error).message}`, { path: clusterDir(gitDir) }, { cause: e });
  }
}

/** The CA key and certificate; GITFS_NOT_IN_CLUSTER on a node that is not the CA. */
export async function loadAuthority(gitDir: string): Promise<{ key: KeyObject; cert: X509Certificate }> {
  const [keyPem, caPem] = await Promise.all([readOptional(file(gitDir, 'ca.key')), readOptional(file(gitDir, 'ca.pem'))]);
  if (keyPem === undefined || caPem === undefined) {
    throw new GitfsError(ErrorCodes.NOT_IN_CLUSTER, `this node does not hold the cluster CA key (${file(gitDir, 'ca.key')}); run this on the node where gitfs cluster init ran`);
  }
  let authority: { key: KeyObject; cert: X509Certificate };
  try {
    authority = { key: createPrivateKey(keyPem), cert: new X509Certificate(caPem) };
  } catch (e) {
    throw new GitfsError(ErrorCodes.BAD_KEY, `the cluster CA key or certificate in ${clusterDir(gitDir)} does not parse: ${(e as Error).message}`, { path: clusterDir(gitDir) }, { cause: e });
  }
  // A key of another CA (an init cut short, then a join) would have this node issue what no member trusts.
  if (!createPublicKey(authority.key).equals(authority.cert.publicKey)) {
    throw new GitfsError(ErrorCodes.BAD_KEY, `${file(gitDir, 'ca.key')} is not the key of the cluster CA in ${file(gitDir, 'ca.pem')}: move it aside (left by an init cut short?)`, { path: clusterDir(gitDir) });
  }
  return authority;
}

/**
 * Whether this node holds the cluster CA (and so issues join certificates). Only its absence
 * answers false: a CA key that cannot be read or parsed fails, so that the node that issues
 * joins never goes quiet about it.
 */
export async function holdsAuthority(gitDir: string): Promise<boolean> {
  return (await authorityHere(gitDir)) !== undefined;
}

/** The CA key and certificate if this node holds them (holdsAuthority), else undefined. */
async function authorityHere(gitDir: string): Promise<{ key: KeyObject; cert: X509Certificate } | undefined> {
  return loadAuthority(gitDir).catch((e: unknown) => {
    if (e instanceof GitfsError && e.code === ErrorCodes.NOT_IN_CLUSTER) return undefined;
    throw e;
  });
}

/**
 * On the CA node, `theirs` (verified: a member's, or the file's) beside `ours`, the list this node
 * holds: when neither is the other's newer superset (revocations.mergeRevocations), the union is
 * signed one version above both (and above the stored list, whose ids it takes too), stored, and
 * returned, to be adopted instead. Undefined otherwise, and on a node that is not the CA: the
 * newer list wins as usual. A CA that lost revocations.bin so wrote a list from version 1 that
 * every member ignored, and at its restart took a member's older list over it.
 */
export async function mergeOnAuthority(gitDir: string, ours: RevocationList | undefined, theirs: RevocationList, nowMs: number): Promise<RevocationList | undefined> {
  const merge = mergeRevocations(ours, theirs);
  const ca = merge.take === 'union' ? await authorityHere(gitDir) : undefined;
  if (merge.take !== 'union' || ca === undefined) return undefined;
  return updateRevocations(gitDir, async () => {
    const stored = await storedRevocations(gitDir, ca.cert.publicKey).catch(() => undefined);
    const version = Math.max(merge.version, (stored?.version ?? 0) + 1);
    return signRevocations(ca.key, version, nowMs, [...new Set([...merge.nodeIds, ...(stored?.nodeIds ?? [])])]);
  });
}

/** `gitfs cluster revoke`: a new list, one version up, with `nodeId` added. */
/**
 * Adds `nodeId` to the revocation list (a new version, signed), or leaves a list that has it as
 * it is (`changed` false). Refuses (GITFS_BAD_ARGUMENT) this node's own id: the node holding the
 * CA key is where every later list comes from, and members drop what a revoked node sends.
 */
export async function revokeNode(gitDir: string, nodeId: NodeId, nowMs: number): Promise<{ list: RevocationList; changed: boolean }> {
  const ca = await loadAuthority(gitDir);
  const { identity } = await loadMembership(gitDir, nowMs);
  if (identity.nodeId === nodeId) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${nodeId} is this node, which holds the cluster's CA key: revoked, no member would hear a later revocation from it`, { nodeId });
  }
  let kept: RevocationList | undefined;
  const written = await updateRevocations(gitDir, async () => {
    const current = await storedRevocations(gitDir, ca.cert.publicKey);
    if (current?.nodeIds.includes(nodeId) === true) {
      kept = current;
      return undefined;
    }
    return signRevocations(ca.key, (current?.version ?? 0) + 1, nowMs, [...new Set([...(current?.nodeIds ?? []), nodeId])]);
  });
  // `next` above returns a list unless the stored one has the id.
  return written === undefined ? { list: kept as RevocationList, changed: false } : { list: written, changed: true };
}

/** The stored revocation list, verified against the CA key; undefined when there is none. */
export async function storedRevocations(gitDir: string, caPublicKey: KeyObject): Promise<RevocationList | undefined> {
  const stored = await readOptional(file(gitDir, 'revocations.bin'));
  return stored === undefined ? undefined : openRevocations(stored, caPublicKey);
}

/**
 * What a daemon polls: the stored revocation list, read and verified only when revocations.bin
 * changed (inode, size, modification or change time) since the last look. Every writer replaces
 * the file by a rename, so a new list is a new inode. A list that fails to verify is reported
 * once, then again only when the file changes.
 */
export class RevocationsOnDisk {
  private seen: string | undefined;

  constructor(
    private readonly gitDir: string,
    private readonly caPublicKey: KeyObject,
  ) {}

  /** The list if the file changed since the last call; undefined if it did not, or is absent. */
  async changed(): Promise<RevocationList | undefined> {
    const path = file(this.gitDir, 'revocations.bin');
    let stamp: string;
    try {
      const s = await stat(path, { bigint: true });
      stamp = `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw new GitfsError(ErrorCodes.IO, `cannot stat ${path}: ${(e as Error).message}`, { path }, { cause: e });
      this.seen = undefined;
      return undefined;
    }
    if (stamp === this.seen) return undefined;
    this.seen = stamp;
    return storedRevocations(this.gitDir, this.caPublicKey);
  }

  /** The list read last could not be taken (a merge that failed): the next call reads it again. */
  again(): void {
    this.seen = undefined;
  }
}

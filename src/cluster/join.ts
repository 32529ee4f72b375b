/**
 * Joining a cluster (docs/PROTOCOL.md "Joining"). The new node connects over TLS to an address
 * in the token, accepts the server only if its chain ends in the CA whose SHA-256 the token
 * pins, then proves it holds the token's secret without sending it: an HMAC over the TLS
 * session's exported keying material and the node's public key. The issuer checks the proof,
 * uses the token up, and answers with a node certificate for that key.
 */
import { createHash, createHmac, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { ErrorCodes, GitfsError, isGitfsError } from '../errors.js';
import { parseGitConfig } from '../repo/git-config.js';
import { chunkingLine, readFormat } from '../repo/repo-format.js';
import { askOneLine, REMOTE_MAX_ANSWER } from '../util/json-line.js';
import { verifyNodeCertificate } from './certificate.js';
import { clusterDir, issueNodeCertificate, loadAuthority, refuseExisting, saveMembership, storedRevocations } from './cluster-store.js';
import type { NodeId } from './node-id.js';
import { openRevocations } from './revocation.js';
import { peerChain } from './tls.js';
import { consumeToken, parseIssuerAddress, parseToken, secretsEqual, tokenSecret, type JoinToken } from './token.js';

const EXPORTER_LABEL = 'EXPORTER-gitfs-join';
const CONNECT_TIMEOUT_MS = 10_000;

function proof(secret: Buffer, socket: TLSSocket, spki: Buffer): Buffer {
  const ekm = socket.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.from('gitfs'));
  return createHmac('sha256', secret).update('gitfs-join-v1\0').update(ekm).update(spki).digest();
}

/** How the repository at `gitDir` cuts large files (`chunkingLine`); undefined if it has no readable gitfs config. */
async function chunkingOf(gitDir: string): Promise<string | undefined> {
  const path = join(gitDir, 'config');
  try {
    return chunkingLine(readFormat(parseGitConfig(await readFile(path, 'utf8'), path), path).format);
  } catch {
    return undefined;
  }
}

export interface JoinRequest {
  readonly op: 'join';
  readonly token: string;
  readonly publicKey: string;
  readonly proof: string;
}

/** The issuer's side: answers a join request arriving on `socket` (this node holds the CA key). */
export async function answerJoin(gitDir: string, req: JoinRequest, socket: TLSSocket, nowMs: number): Promise<unknown> {
  if (typeof req.token !== 'string' || typeof req.publicKey !== 'string' || typeof req.proof !== 'string') {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'join request needs token, publicKey and proof');
  }
  const secret = await tokenSecret(gitDir, req.token, nowMs);
  const spki = Buffer.from(req.publicKey, 'base64');
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'join request carries no usable public key');
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'node keys are Ed25519');
  if (!secretsEqual(proof(secret, socket, spki), Buffer.from(req.proof, 'base64'))) {
    throw new GitfsError(ErrorCodes.BAD_TOKEN, 'the proof of the token does not verify');
  }
  // What can fail here is done before the token is spent: a join that fails for this node's state may be tried again with it.
  const ca = await loadAuthority(gitDir);
  const revocations = await storedRevocations(gitDir, ca.cert.publicKey);
  const chunking = (await chunkingOf(gitDir)) ?? null;
  if (!(await consumeToken(gitDir, req.token))) throw new GitfsError(ErrorCodes.BAD_TOKEN, 'this token was used already');
  const issued = issueNodeCertificate(ca, publicKey, nowMs);
  return {
    nodeId: issued.nodeId,
    certificate: issued.pem,
    ca: ca.cert.toString(),
    revocations: revocations?.encoded.toString('base64') ?? null,
    chunking,
  };
}

function connectPinned(address: string, token: JoinToken, nowMs: number): Promise<TLSSocket> {
  const { address: host, port } = parseIssuerAddress(address);
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, rejectUnauthorized: false, minVersion: 'TLSv1.3', checkServerIdentity: () => undefined });
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new GitfsError(ErrorCodes.PEER_FAILED, `${address} did not answer within ${CONNECT_TIMEOUT_MS / 1000} s`)));
    socket.once('error', (e) => reject(isGitfsError(e) ? e : new GitfsError(ErrorCodes.PEER_FAILED, `cannot reach ${address}: ${e.message}`, { address }, { cause: e })));
    socket.once('secureConnect', () => {
      const chain = peerChain(socket);
      const ca = chain.find((c) => createHash('sha256').update(c.raw).digest('hex') === token.caFingerprint);
      const leaf = chain[0];
      try {
        if (ca === undefined || leaf === undefined) throw new Error('the server does not present the CA the token pins');
        verifyNodeCertificate(leaf, ca, nowMs);
      } catch (e) {
        socket.destroy();
        return reject(new GitfsError(ErrorCodes.BAD_CERTIFICATE, `${address} is not the token's cluster: ${(e as Error).message}`, { address }));
      }
      resolve(socket);
    });
  });
}

export interface Joined {
  readonly nodeId: NodeId;
  readonly clusterDir: string;
  /**
   * Set when this repository cuts large files otherwise than the issuer's: the same file
   * committed on both is then stored as other objects, shared by neither dedup nor the swarm.
   */
  readonly chunkingDiffers?: { readonly here: string; readonly issuer: string };
}

/** `gitfs cluster join TOKEN`: a new key pair, a certificate for it from the issuer, saved. */
export async function joinCluster(gitDir: string, tokenText: string, nowMs: number): Promise<Joined> {
  const token = parseToken(tokenText);
  if (token.expiresMs <= nowMs) throw new GitfsError(ErrorCodes.BAD_TOKEN, 'this token has expired');
  await refuseExisting(gitDir);
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const failures: string[] = [];
  for (const address of token.issuers) {
    let socket: TLSSocket;
    try {
      socket = await connectPinned(address, token, nowMs);
    } catch (e) {
      if (isGitfsError(e, ErrorCodes.BAD_CERTIFICATE)) throw e;
      failures.push((e as Error).message);
      continue;
    }
    const req: JoinRequest = { op: 'join', token: token.id, publicKey: spki.toString('base64'), proof: proof(token.secret, socket, spki).toString('base64') };
    let answer: { certificate: string; ca: string; revocations: string | null; chunking?: unknown };
    let ca: X509Certificate;
    let cert: X509Certificate;
    try {
      answer = (await askOneLine(socket, req, address, ErrorCodes.PEER_FAILED, REMOTE_MAX_ANSWER)) as typeof answer;
      ca = new X509Certificate(answer.ca);
      cert = new X509Certificate(answer.certificate);
    } catch (e) {
      if (e instanceof GitfsError) throw e;
      throw new GitfsError(ErrorCodes.PEER_FAILED, `${address} answered the join with something unreadable: ${(e as Error).message}`, { address });
    } finally {
      socket.destroy();
    }
    if (createHash('sha256').update(ca.raw).digest('hex') !== token.caFingerprint) throw new GitfsError(ErrorCodes.BAD_CERTIFICATE, `${address} answered with another CA`);
    const node = verifyNodeCertificate(cert, ca, nowMs);
    if (!node.publicKey.equals(publicKey)) throw new GitfsError(ErrorCodes.BAD_CERTIFICATE, `${address} certified another key`);
    const revocations = answer.revocations === null ? undefined : openRevocations(Buffer.from(answer.revocations, 'base64'), ca.publicKey);
    await saveMembership(gitDir, { key: privateKey, certPem: answer.certificate, caPem: answer.ca, ...(revocations === undefined ? {} : { revocations }) });
    const [here, issuer] = [await chunkingOf(gitDir), typeof answer.chunking === 'string' ? answer.chunking : undefined];
    const differs = here !== undefined && issuer !== undefined && here !== issuer;
    return { nodeId: node.nodeId as NodeId, clusterDir: clusterDir(gitDir), ...(differs ? { chunkingDiffers: { here, issuer } } : {}) };
  }
  throw new GitfsError(ErrorCodes.PEER_FAILED, `no issuer in the token answered: ${failures.join('; ')}`, { issuers: token.issuers });
}

/**
 * SSH signatures (OpenSSH PROTOCOL.sshsig), the format git writes and checks with
 * gpg.format=ssh. A signature is the armored blob
 *
 *   "SSHSIG" | uint32 1 | string public key | string namespace | string reserved ("")
 *   | string hash algorithm | string signature
 *
 * where the signature (string "ssh-ed25519", string 64 bytes) is made over
 *
 *   "SSHSIG" | string namespace | string reserved | string hash algorithm | string H(message)
 *
 * The namespace keeps a signature made for one purpose from being replayed for another; git
 * uses "git". gitfs signs with SHA-512 (what ssh-keygen does) and accepts SHA-256 too (the
 * protocol allows both). The reserved field must be empty: ssh-keygen verifies as if it were,
 * so a non-empty one would make gitfs and git disagree.
 *
 * Verification is strict and bounded and throws only GitfsError: GITFS_BAD_SIGNATURE for
 * anything malformed or not verifying, GITFS_UNTRUSTED_KEY (with the fingerprint) for a sound
 * signature by a key not in the trusted list. The trust check comes first, so an untrusted key
 * never gets as far as a signature computation.
 */
import { createHash, sign as edSign, verify as edVerify } from 'node:crypto';
import { ErrorCodes, GitfsError, isGitfsError } from '../errors.js';
import { KEY_TYPE, publicKeyFromBlob, type ReleaseKeyPair, type ReleasePublicKey } from './release-key.js';
import { armor, dearmor, sshString, sshUint32, SshReader } from './ssh-wire.js';

export const SSHSIG_LABEL = 'SSH SIGNATURE';
export const GIT_NAMESPACE = 'git';
const MAGIC = Buffer.from('SSHSIG', 'latin1');
const VERSION = 1;
export type HashAlgorithm = 'sha512' | 'sha256';
/** An Ed25519 SSHSIG is about 300 characters armored; anything near this bound is not one. */
export const MAX_ARMORED = 8 * 1024;
const ED25519_SIGNATURE_BYTES = 64;

export interface SshSignature {
  readonly publicKeyBlob: Buffer;
  readonly namespace: string;
  readonly hashAlgorithm: HashAlgorithm;
  /** The raw 64-byte Ed25519 signature. */
  readonly signature: Buffer;
}

function bad(why: string, data: Record<string, unknown> = {}): GitfsError {
  return new GitfsError(ErrorCodes.BAD_SIGNATURE, `bad SSH signature: ${why}`, { reason: why, ...data });
}

function checkNamespace(namespace: string): string {
  if (!/^[\x21-\x7e]{1,64}$/.test(namespace)) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `a signature namespace is 1-64 printable ASCII characters, not ${JSON.stringify(namespace.slice(0, 64))}`);
  return namespace;
}

function toBytes(payload: Uint8Array | string): Buffer {
  return typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
}

/** What the key actually signs: the message is represented by its hash. */
function signedData(namespace: string, hashAlgorithm: HashAlgorithm, payload: Buffer): Buffer {
  const digest = createHash(hashAlgorithm).update(payload).digest();
  return Buffer.concat([MAGIC, sshString(namespace), sshString(''), sshString(hashAlgorithm), sshString(digest)]);
}

/** Signs `payload` in `namespace` (default "git"); returns the armored text, final newline included. */
export function createSshSignature(payload: Uint8Array | string, key: ReleaseKeyPair, options: { namespace?: string; hashAlgorithm?: HashAlgorithm } = {}): string {
  return armor(SSHSIG_LABEL, createSshSignatureBlob(payload, key, options));
}

/** As createSshSignature, the binary blob without its armor. */
export function createSshSignatureBlob(payload: Uint8Array | string, key: ReleaseKeyPair, options: { namespace?: string; hashAlgorithm?: HashAlgorithm } = {}): Buffer {
  const namespace = checkNamespace(options.namespace ?? GIT_NAMESPACE);
  const hashAlgorithm = options.hashAlgorithm ?? 'sha512';
  const raw = edSign(null, signedData(namespace, hashAlgorithm, toBytes(payload)), key.privateKey);
  return Buffer.concat([
    MAGIC,
    sshUint32(VERSION),
    sshString(key.publicKey.blob),
    sshString(namespace),
    sshString(''),
    sshString(hashAlgorithm),
    sshString(Buffer.concat([sshString(KEY_TYPE), sshString(raw)])),
  ]);
}

/** Takes an armored signature apart without checking it against anything. Throws GITFS_BAD_SIGNATURE. */
export function parseSshSignature(armored: string): SshSignature {
  if (typeof armored !== 'string') throw bad('not text');
  const blob = dearmor(SSHSIG_LABEL, armored, MAX_ARMORED);
  if (typeof blob === 'string') throw bad(`the armor ${blob}`);
  // One spelling per signature, as OpenSSH writes it (lines of 70): a signature wrapped otherwise
  // still verifies, and would give a signed commit another id (a halted release back as new).
  if (armor(SSHSIG_LABEL, blob) !== (armored.endsWith('\n') ? armored : `${armored}\n`)) throw bad('the armor is not wrapped at 70 characters, as OpenSSH writes it');
  const r = new SshReader(blob, (why) => bad(why));
  if (!r.bytes(MAGIC.length, 'magic').equals(MAGIC)) throw bad('no SSHSIG magic');
  const version = r.uint32('version');
  if (version !== VERSION) throw bad(`version ${version}, not ${VERSION}`);
  const publicKeyBlob = r.string('public key', 1024);
  const namespace = r.string('namespace', 64).toString('latin1');
  if (r.string('reserved', 256).length !== 0) throw bad('the reserved field is not empty');
  const hash = r.string('hash algorithm', 16).toString('latin1');
  if (hash !== 'sha512' && hash !== 'sha256') throw bad(`hash algorithm ${JSON.stringify(hash)} is neither sha512 nor sha256`);
  const sig = new SshReader(r.string('signature', 1024), (why) => bad(`signature blob: ${why}`));
  r.end('the signature');
  const sigType = sig.string('signature type', 64).toString('latin1');
  if (sigType !== KEY_TYPE) throw bad(`signature type ${JSON.stringify(sigType.slice(0, 40))}: only ${KEY_TYPE} is accepted`);
  const signature = sig.string('signature', ED25519_SIGNATURE_BYTES);
  if (signature.length !== ED25519_SIGNATURE_BYTES) throw bad(`an Ed25519 signature is ${ED25519_SIGNATURE_BYTES} bytes, not ${signature.length}`);
  sig.end('the signature blob');
  return { publicKeyBlob: Buffer.from(publicKeyBlob), namespace, hashAlgorithm: hash, signature: Buffer.from(signature) };
}

/**
 * Checks that `armored` is a signature of `payload` in `namespace` (default "git") by one of
 * `trusted`, and returns that key. Throws GITFS_BAD_SIGNATURE or GITFS_UNTRUSTED_KEY, nothing else.
 */
export function verifySshSignature(payload: Uint8Array | string, armored: string, trusted: readonly ReleasePublicKey[], options: { namespace?: string } = {}): ReleasePublicKey {
  const namespace = checkNamespace(options.namespace ?? GIT_NAMESPACE);
  const parsed = parseSshSignature(armored);
  if (parsed.namespace !== namespace) throw bad(`namespace ${JSON.stringify(parsed.namespace)}, not ${JSON.stringify(namespace)}`);
  let signer: ReleasePublicKey;
  try {
    signer = publicKeyFromBlob(parsed.publicKeyBlob);
  } catch (e) {
    if (!isGitfsError(e)) throw e;
    throw bad(`the signing key: ${e.message}`);
  }
  const key = trusted.find((k) => k.blob.equals(parsed.publicKeyBlob));
  if (key === undefined) throw new GitfsError(ErrorCodes.UNTRUSTED_KEY, `signed by ${signer.fingerprint}, which is not a trusted release key`, { fingerprint: signer.fingerprint });
  let ok: boolean;
  try {
    ok = edVerify(null, signedData(namespace, parsed.hashAlgorithm, toBytes(payload)), key.key, parsed.signature);
  } catch (e) {
    throw new GitfsError(ErrorCodes.BAD_SIGNATURE, 'bad SSH signature: the check failed', { reason: 'the check failed', fingerprint: key.fingerprint }, { cause: e });
  }
  if (!ok) throw bad('it does not verify (wrong content, or not made by the key it names)', { fingerprint: key.fingerprint });
  return key;
}

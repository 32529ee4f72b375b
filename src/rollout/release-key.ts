/**
 * Release keys: Ed25519 key pairs that sign release commits (`gitfs key new`).
 *
 * The public half is written the way OpenSSH writes it (`ssh-ed25519 AAAA… comment`), so the
 * same line goes into a node's trusted keys, git's allowed-signers file and an authorized_keys
 * file; its fingerprint is `SHA256:` + unpadded base64 of SHA-256(key blob), as ssh-keygen -l
 * prints it. The private half is PKCS#8 PEM (what node:crypto reads and writes, unencrypted:
 * the file's 0600 mode protects it). OpenSSH 9.2's ssh-keygen cannot load PKCS#8 Ed25519
 * keys, so the private key can also be written and read in OpenSSH's own unencrypted format,
 * which lets `git commit -S` (gpg.format=ssh) and `ssh-keygen -Y sign` use a gitfs key and
 * gitfs use a key ssh-keygen made.
 *
 * Only Ed25519: one algorithm means one code path to get right. Every parse is bounded and
 * refuses anything else with GITFS_BAD_KEY.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { ErrorCodes, GitfsError } from '../errors.js';
import { armor, dearmor, sshString, sshUint32, SshReader, strictBase64 } from './ssh-wire.js';

export const KEY_TYPE = 'ssh-ed25519';
const RAW_KEY_BYTES = 32;
/** Longest key file or line accepted: an Ed25519 key is about 400 characters in any of its forms. */
export const MAX_KEY_TEXT = 16 * 1024;
export const MAX_COMMENT = 1024;

export interface ReleasePublicKey {
  readonly key: KeyObject;
  /** The SSH wire form: string "ssh-ed25519", string 32-byte key. What signatures name and fingerprints hash. */
  readonly blob: Buffer;
  readonly comment: string;
  /** `SHA256:…` as ssh-keygen -l prints it. */
  readonly fingerprint: string;
}

export interface ReleaseKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: ReleasePublicKey;
}

function bad(message: string, data: Record<string, unknown> = {}): GitfsError {
  return new GitfsError(ErrorCodes.BAD_KEY, message, data);
}

function checkComment(comment: string): string {
  // A newline would end the key line; other control characters have no business in a label.
  if (comment.length > MAX_COMMENT || /[\x00-\x1f\x7f]/.test(comment)) throw bad(`a key comment must be at most ${MAX_COMMENT} characters without control characters`);
  return comment;
}

function rawPublic(key: KeyObject): Buffer {
  if (key.asymmetricKeyType !== 'ed25519') throw bad(`release keys are Ed25519, not ${key.asymmetricKeyType ?? key.type}`);
  const x = key.export({ format: 'jwk' }).x;
  const raw = typeof x === 'string' ? Buffer.from(x, 'base64url') : undefined;
  if (raw?.length !== RAW_KEY_BYTES) throw bad('could not export the Ed25519 public key');
  return raw;
}

export function fingerprintOf(blob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The public half of an Ed25519 key (a public or private KeyObject), with a comment. */
export function releasePublicKey(key: KeyObject, comment = ''): ReleasePublicKey {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const blob = Buffer.concat([sshString(KEY_TYPE), sshString(rawPublic(publicKey))]);
  return { key: publicKey, blob, comment: checkComment(comment), fingerprint: fingerprintOf(blob) };
}

export function generateReleaseKey(comment = ''): ReleaseKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey: releasePublicKey(publicKey, comment) };
}

/** A key from its SSH wire blob (inside a signature, or a key line). Throws GITFS_BAD_KEY. */
export function publicKeyFromBlob(blob: Buffer, comment = ''): ReleasePublicKey {
  const r = new SshReader(blob, (why) => bad(`not an ssh-ed25519 key blob: ${why}`));
  r.expectString('key type', KEY_TYPE);
  const raw = r.string('public key', RAW_KEY_BYTES);
  if (raw.length !== RAW_KEY_BYTES) throw bad(`an Ed25519 public key is ${RAW_KEY_BYTES} bytes, not ${raw.length}`);
  r.end('the key blob');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch (e) {
    throw new GitfsError(ErrorCodes.BAD_KEY, 'the Ed25519 public key does not load', {}, { cause: e });
  }
  return { key, blob: Buffer.from(blob), comment: checkComment(comment), fingerprint: fingerprintOf(blob) };
}

/** `ssh-ed25519 AAAA… comment` (no newline; no trailing space when the comment is empty). */
export function formatPublicKey(pub: ReleasePublicKey): string {
  const line = `${KEY_TYPE} ${pub.blob.toString('base64')}`;
  return pub.comment === '' ? line : `${line} ${pub.comment}`;
}

/**
 * One OpenSSH public key line: type, base64 blob, optional comment (the rest of the line, spaces
 * allowed), one optional final newline. No authorized_keys options, nothing but ssh-ed25519, and
 * the type named on the line must be the one inside the blob.
 */
export function parsePublicKey(text: string): ReleasePublicKey {
  if (typeof text !== 'string' || text.length > MAX_KEY_TEXT) throw bad('a public key must be one line of at most 16 KiB');
  const line = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (/[\r\n]/.test(line)) throw bad('a public key is one line');
  const m = /^(\S+)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line.trim());
  if (m === null) throw bad('not an OpenSSH public key line ("ssh-ed25519 AAAA… comment")');
  const [, type, b64, comment] = m;
  if (type !== KEY_TYPE) throw bad(`release keys are ${KEY_TYPE}, not ${JSON.stringify(type?.slice(0, 40))}`, { type });
  const blob = strictBase64(b64 ?? '');
  if (blob === undefined) throw bad('the key is not canonical base64');
  return publicKeyFromBlob(blob, comment ?? '');
}

/** `<principal> namespaces="git" ssh-ed25519 AAAA…`: a line of git's gpg.ssh.allowedSignersFile. */
export function allowedSignersLine(principal: string, pub: ReleasePublicKey): string {
  if (!/^[A-Za-z0-9@._+-]{1,256}$/.test(principal)) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `a principal is 1-256 characters of [A-Za-z0-9@._+-], not ${JSON.stringify(principal.slice(0, 64))}`);
  return `${principal} namespaces="git" ${KEY_TYPE} ${pub.blob.toString('base64')}`;
}

/** The private key as unencrypted PKCS#8 PEM (the caller writes it 0600). */
export function formatPrivateKey(pair: ReleaseKeyPair): string {
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

const PKCS8_BEGIN = '-----BEGIN PRIVATE KEY-----';
const OPENSSH_LABEL = 'OPENSSH PRIVATE KEY';

/** A private key file: PKCS#8 PEM or OpenSSH's unencrypted format, Ed25519 only. Throws GITFS_BAD_KEY. */
export function parsePrivateKey(text: string | Buffer, comment?: string): ReleaseKeyPair {
  if (text.length > MAX_KEY_TEXT) throw bad('a private key file is at most 16 KiB');
  const s = (typeof text === 'string' ? text : text.toString('utf8')).trim();
  if (s.startsWith(`-----BEGIN ${OPENSSH_LABEL}-----`)) return parseOpenSshPrivateKey(`${s}\n`, comment);
  // Refuse anything but plain PKCS#8 (encrypted PKCS#8 or "BEGIN EC/RSA PRIVATE KEY") before node:crypto guesses.
  if (!s.startsWith(PKCS8_BEGIN) || !s.endsWith('-----END PRIVATE KEY-----')) throw bad('not an unencrypted PKCS#8 PEM or OpenSSH private key');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: s, format: 'pem' });
  } catch (e) {
    throw new GitfsError(ErrorCodes.BAD_KEY, 'the PKCS#8 private key does not load', {}, { cause: e });
  }
  return { privateKey, publicKey: releasePublicKey(privateKey, comment ?? '') };
}

// OpenSSH's format (PROTOCOL.key): magic, cipher "none", kdf "none", empty kdf options, one key:
// its public blob, then a private section of two equal check words, the key (type, public,
// seed||public, comment) and padding 1, 2, 3… to a multiple of 8.
const OPENSSH_MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');

export function formatOpenSshPrivateKey(pair: ReleaseKeyPair): string {
  const jwk = pair.privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(String(jwk.d), 'base64url');
  const raw = rawPublic(pair.publicKey.key);
  const check = randomBytes(4);
  let section = Buffer.concat([check, check, sshString(KEY_TYPE), sshString(raw), sshString(Buffer.concat([seed, raw])), sshString(pair.publicKey.comment)]);
  const pad = (8 - (section.length % 8)) % 8;
  section = Buffer.concat([section, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const blob = Buffer.concat([OPENSSH_MAGIC, sshString('none'), sshString('none'), sshString(''), sshUint32(1), sshString(pair.publicKey.blob), sshString(section)]);
  return armor(OPENSSH_LABEL, blob);
}

function parseOpenSshPrivateKey(text: string, comment: string | undefined): ReleaseKeyPair {
  const blob = dearmor(OPENSSH_LABEL, text, MAX_KEY_TEXT);
  if (typeof blob === 'string') throw bad(`not an OpenSSH private key: it ${blob}`);
  const r = new SshReader(blob, (why) => bad(`not an OpenSSH private key: ${why}`));
  if (!r.bytes(OPENSSH_MAGIC.length, 'magic').equals(OPENSSH_MAGIC)) throw bad('not an OpenSSH private key: bad magic');
  if (r.string('cipher', 64).toString('latin1') !== 'none') throw bad('the OpenSSH private key is encrypted; remove the passphrase (ssh-keygen -p) or use a PKCS#8 key');
  r.expectString('kdf', 'none');
  r.expectString('kdf options', '');
  if (r.uint32('key count') !== 1) throw bad('an OpenSSH private key file must hold exactly one key');
  const publicBlob = r.string('public key', 1024);
  const section = r.string('private section', 4096);
  r.end('the key file');
  const pub = publicKeyFromBlob(publicBlob);
  const s = new SshReader(section, (why) => bad(`OpenSSH private section: ${why}`));
  if (s.uint32('check word') !== s.uint32('check word')) throw bad('OpenSSH private section: check words differ');
  s.expectString('key type', KEY_TYPE);
  const raw = s.string('public key', RAW_KEY_BYTES);
  const secret = s.string('private key', 2 * RAW_KEY_BYTES);
  const fileComment = s.string('comment', MAX_COMMENT).toString('utf8');
  const padding = s.bytes(s.remaining, 'padding');
  if (padding.length >= 8 || padding.some((b, i) => b !== i + 1)) throw bad('OpenSSH private section: bad padding');
  const publicRaw = pub.blob.subarray(pub.blob.length - RAW_KEY_BYTES);
  if (secret.length !== 2 * RAW_KEY_BYTES || !raw.equals(publicRaw) || !secret.subarray(RAW_KEY_BYTES).equals(publicRaw)) throw bad('OpenSSH private section: the keys do not match');
  let privateKey: KeyObject;
  try {
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: publicRaw.toString('base64url'), d: secret.subarray(0, RAW_KEY_BYTES).toString('base64url') };
    privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  } catch (e) {
    throw new GitfsError(ErrorCodes.BAD_KEY, 'the Ed25519 private key does not load', {}, { cause: e });
  }
  // The seed must produce the public key the file names, or signatures would name the wrong key.
  if (!rawPublic(createPublicKey(privateKey)).equals(publicRaw)) throw bad('OpenSSH private key: the seed does not match the public key');
  return { privateKey, publicKey: releasePublicKey(privateKey, comment ?? fileComment) };
}

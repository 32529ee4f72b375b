/**
 * One-time join tokens. A token names the issuer's addresses, pins the CA certificate's SHA-256
 * and carries a secret; the issuer keeps the secret in `tokens/<id>.json` (0600) until the
 * token is used (the file is unlinked: exactly one join can win) or expires.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode, isGitfsError } from '../errors.js';
import { fsyncDir, writeFileAtomic } from '../util/durable.js';
import { clusterDir } from './cluster-store.js';

export interface JoinToken {
  /** 32 hex digits: the token file's name on the issuer. */
  readonly id: string;
  readonly secret: Buffer;
  /** SHA-256 of the CA certificate (DER), 64 hex digits. */
  readonly caFingerprint: string;
  /** Where the issuer's node service listens, `ipv4:port`. */
  readonly issuers: readonly string[];
  readonly expiresMs: number;
}

const PREFIX = 'gitfs1-';
const ID_RE = /^[0-9a-f]{32}$/;
/** A token file being written (writeFileAtomic's temporary name), and when one is taken as left by a run that died. */
const TMP_RE = /^[0-9a-f]{32}\.json\.tmp-[0-9a-f]{12}$/;
const STALE_TMP_MS = 3_600_000;
const FP_RE = /^[0-9a-f]{64}$/;
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const ADDR_RE = new RegExp(`^${OCTET}(\\.${OCTET}){3}:([1-9]\\d{0,4})$`);
/** Issuers a token names at most. */
export const MAX_ISSUERS = 8;
/** How long a token may stay valid at most. */
export const MAX_TOKEN_TTL_MS = 365 * 86_400_000;

/** IPv4:port, port 1-65535: a joining node dials it before it trusts any name. */
function isIssuerAddress(a: unknown): a is string {
  const m = typeof a === 'string' ? ADDR_RE.exec(a) : null;
  return m !== null && Number(m.at(-1)) <= 65535;
}

/** An issuer's `IPV4:PORT`, as tokens name them; GITFS_BAD_ARGUMENT otherwise. */
export function parseIssuerAddress(text: string): { address: string; port: number } {
  if (!isIssuerAddress(text)) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `not an issuer address (IPV4:PORT): ${JSON.stringify(String(text).slice(0, 64))}`, { value: text });
  const at = text.lastIndexOf(':');
  return { address: text.slice(0, at), port: Number(text.slice(at + 1)) };
}

export function formatToken(t: JoinToken): string {
  const json = JSON.stringify({ id: t.id, s: t.secret.toString('base64url'), ca: t.caFingerprint, at: t.issuers, exp: t.expiresMs });
  return PREFIX + Buffer.from(json).toString('base64url');
}

export function parseToken(text: string): JoinToken {
  const bad = (why: string): GitfsError => new GitfsError(ErrorCodes.BAD_TOKEN, `not a gitfs join token: ${why}`);
  const trimmed = text.trim();
  if (!trimmed.startsWith(PREFIX) || trimmed.length > 4096) throw bad(`expected ${PREFIX}…`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(trimmed.slice(PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    throw bad('does not decode');
  }
  if (typeof raw !== 'object' || raw === null) throw bad('not an object');
  const r = raw as { id?: unknown; s?: unknown; ca?: unknown; at?: unknown; exp?: unknown };
  if (typeof r.id !== 'string' || !ID_RE.test(r.id)) throw bad('bad id');
  if (typeof r.s !== 'string' || Buffer.from(r.s, 'base64url').length !== 32) throw bad('bad secret');
  if (typeof r.ca !== 'string' || !FP_RE.test(r.ca)) throw bad('bad CA fingerprint');
  if (!Array.isArray(r.at) || r.at.length === 0 || r.at.length > MAX_ISSUERS || !r.at.every(isIssuerAddress)) throw bad('bad issuer addresses');
  if (typeof r.exp !== 'number' || !Number.isSafeInteger(r.exp)) throw bad('bad expiry');
  return { id: r.id, secret: Buffer.from(r.s, 'base64url'), caFingerprint: r.ca, issuers: r.at as string[], expiresMs: r.exp };
}

const tokensDir = (gitDir: string): string => join(clusterDir(gitDir), 'tokens');

/** Makes and records a new token (on the CA node). */
export async function createToken(gitDir: string, opts: { caFingerprint: string; issuers: readonly string[]; expiresMs: number }): Promise<JoinToken> {
  // Refused here what parseToken would refuse at the join.
  if (opts.issuers.length === 0 || opts.issuers.length > MAX_ISSUERS) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `a token names 1 to ${MAX_ISSUERS} issuer addresses, not ${opts.issuers.length}`);
  const notAddress = opts.issuers.find((a) => !isIssuerAddress(a));
  if (notAddress !== undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `issuer ${JSON.stringify(notAddress)} is not IPV4:PORT (a joining node dials it before it trusts any name)`, { issuer: notAddress });
  if (!Number.isSafeInteger(opts.expiresMs)) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `a token's expiry must be a time in ms, not ${opts.expiresMs}`);
  const token: JoinToken = { id: randomBytes(16).toString('hex'), secret: randomBytes(32), ...opts };
  // Whole or not at all: a `cluster token` pruning meanwhile must never see it half written.
  await writeFileAtomic(join(tokensDir(gitDir), `${token.id}.json`), JSON.stringify({ secret: token.secret.toString('base64url'), expiresMs: token.expiresMs }), 0o600);
  return token;
}

/** The secret of an unused, unexpired token; GITFS_BAD_TOKEN otherwise. Does not use it up. */
export async function tokenSecret(gitDir: string, id: string, nowMs: number): Promise<Buffer> {
  if (!ID_RE.test(id)) throw new GitfsError(ErrorCodes.BAD_TOKEN, 'bad token id');
  let saved: { secret: string; expiresMs: number };
  try {
    saved = JSON.parse(await readFile(join(tokensDir(gitDir), `${id}.json`), 'utf8')) as typeof saved;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new GitfsError(ErrorCodes.BAD_TOKEN, 'this token is unknown or was used already');
    throw new GitfsError(ErrorCodes.IO, `cannot read token ${id}: ${(e as Error).message}`, {}, { cause: e });
  }
  if (typeof saved !== 'object' || saved === null || typeof saved.secret !== 'string' || typeof saved.expiresMs !== 'number') {
    throw new GitfsError(ErrorCodes.IO, `token file ${id}.json holds no token`);
  }
  if (saved.expiresMs <= nowMs) throw new GitfsError(ErrorCodes.BAD_TOKEN, 'this token has expired');
  return Buffer.from(saved.secret, 'base64url');
}

/** Uses the token up; false if another join used it first. */
export async function consumeToken(gitDir: string, id: string): Promise<boolean> {
  try {
    await unlink(join(tokensDir(gitDir), `${id}.json`));
    await fsyncDir(tokensDir(gitDir));
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
}

/**
 * Deletes the files of expired tokens, and temporary files an hour old (left by a `cluster
 * token` that died while writing); returns how many tokens remain. Nothing else is touched: a
 * file being written, or one that cannot be read now, may be a token another `cluster token`
 * just made (deleted, it was dead on arrival).
 */
export async function pruneTokens(gitDir: string, nowMs: number): Promise<number> {
  let left = 0;
  for (const name of await readdir(tokensDir(gitDir)).catch(() => [] as string[])) {
    if (TMP_RE.test(name)) {
      const path = join(tokensDir(gitDir), name);
      const old = await stat(path).then((s) => nowMs - s.mtimeMs > STALE_TMP_MS, () => false);
      if (old) await unlink(path).catch(() => undefined);
      continue;
    }
    const id = name.endsWith('.json') ? name.slice(0, -'.json'.length) : '';
    if (!ID_RE.test(id)) continue;
    try {
      await tokenSecret(gitDir, id, nowMs);
      left++;
    } catch (e) {
      if (isGitfsError(e) && e.code === ErrorCodes.BAD_TOKEN) await unlink(join(tokensDir(gitDir), name)).catch(() => undefined);
    }
  }
  return left;
}

export function secretsEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

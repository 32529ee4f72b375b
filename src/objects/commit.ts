/**
 * Git commit objects: encode and decode.
 * A commit names one tree, zero or more parents, author and committer signatures, optional extra
 * headers (kept verbatim, e.g. `gpgsig`), and a message. Decoding is strict about the fields
 * gitfs relies on and tolerant of headers it does not know.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { isOid, type Oid } from './oid.js';

export interface Signature {
  readonly name: string;
  readonly email: string;
  /** Seconds since the epoch. */
  readonly timestamp: number;
  /** Minutes east of UTC. */
  readonly tzOffsetMinutes: number;
}

export interface Commit {
  readonly tree: Oid;
  readonly parents: readonly Oid[];
  readonly author: Signature;
  readonly committer: Signature;
  /** Headers other than tree/parent/author/committer, in order, continuation lines joined by `\n`. */
  readonly extraHeaders: ReadonlyArray<readonly [string, string]>;
  readonly message: string;
}

/** Whether a commit carries a signature (any `gpgsig…` header): a release, on a rollout channel. */
export function isSigned(c: Commit): boolean {
  return c.extraHeaders.some(([key]) => key.startsWith('gpgsig'));
}

export function formatSignature(s: Signature): string {
  const sign = s.tzOffsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(s.tzOffsetMinutes);
  const tz = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
  return `${s.name} <${s.email}> ${s.timestamp} ${tz}`;
}

const SIGNATURE_RE = /^([^<>\n]*?) ?<([^<>\n]*)> (\d+) ([+-])(\d\d)(\d\d)$/;

export function parseSignature(line: string): Signature | undefined {
  const m = SIGNATURE_RE.exec(line);
  if (m === null) return undefined;
  const [, name, email, ts, sign, hh, mm] = m;
  const minutes = Number(hh) * 60 + Number(mm);
  return {
    name: name ?? '',
    email: email ?? '',
    timestamp: Number(ts),
    tzOffsetMinutes: sign === '-' ? -minutes : minutes,
  };
}

function checkSignatureField(what: string, s: Signature): void {
  if (/[<>\n]/.test(s.name) || /[<>\n]/.test(s.email)) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${what} name and email must not contain <, > or newlines`);
  }
}

export function encodeCommit(c: Commit): Buffer {
  checkSignatureField('author', c.author);
  checkSignatureField('committer', c.committer);
  let text = `tree ${c.tree}\n`;
  for (const p of c.parents) text += `parent ${p}\n`;
  text += `author ${formatSignature(c.author)}\n`;
  text += `committer ${formatSignature(c.committer)}\n`;
  for (const [key, value] of c.extraHeaders) text += `${key} ${value.replace(/\n/g, '\n ')}\n`;
  text += `\n${c.message}`;
  return Buffer.from(text, 'utf8');
}

export function decodeCommit(content: Buffer, oid?: Oid): Commit {
  const bad = (why: string): GitfsError =>
    new GitfsError(ErrorCodes.CORRUPT_OBJECT, `commit ${oid ?? '(unhashed)'} does not parse: ${why}`, { oid, reason: why });
  const text = content.toString('utf8');
  const split = text.indexOf('\n\n');
  const head = split < 0 ? text : text.slice(0, split);
  const message = split < 0 ? '' : text.slice(split + 2);
  const headers: Array<[string, string]> = [];
  for (const line of head.split('\n')) {
    if (line.startsWith(' ')) {
      const last = headers[headers.length - 1];
      if (last === undefined) throw bad('continuation line without header');
      last[1] += `\n${line.slice(1)}`;
      continue;
    }
    const space = line.indexOf(' ');
    if (space <= 0) throw bad(`bad header line ${JSON.stringify(line.slice(0, 40))}`);
    headers.push([line.slice(0, space), line.slice(space + 1)]);
  }
  let tree: Oid | undefined;
  const parents: Oid[] = [];
  let author: Signature | undefined;
  let committer: Signature | undefined;
  const extraHeaders: Array<[string, string]> = [];
  for (const [key, value] of headers) {
    if (key === 'tree' && tree === undefined && parents.length === 0) {
      if (!isOid(value)) throw bad('bad tree id');
      tree = value;
    } else if (key === 'parent' && tree !== undefined && author === undefined) {
      if (!isOid(value)) throw bad('bad parent id');
      parents.push(value);
    } else if (key === 'author' && author === undefined) {
      author = parseSignature(value) ?? (() => { throw bad('bad author'); })();
    } else if (key === 'committer' && committer === undefined && author !== undefined) {
      committer = parseSignature(value) ?? (() => { throw bad('bad committer'); })();
    } else {
      extraHeaders.push([key, value]);
    }
  }
  if (tree === undefined) throw bad('no tree');
  if (author === undefined || committer === undefined) throw bad('no author or committer');
  return { tree, parents, author, committer, extraHeaders, message };
}

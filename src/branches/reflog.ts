/**
 * Reflogs (`logs/refs/heads/<name>`) in git's own line format, so `git reflog` / `git log -g` and
 * `<branch>@{n}` read them:
 *
 *     <old-oid> SP <new-oid> SP <name> SP "<" <email> ">" SP <unix-seconds> SP <+hhmm> [TAB <message>] LF
 *
 * `old` is ZERO_OID when the branch is created. The message is normalised as git does
 * (whitespace runs collapse to one space, ends trimmed); an empty message is written without the TAB.
 *
 * Invariants:
 * - Only whole lines ending in LF are entries. A final line without LF is a torn append from a crash:
 *   readers ignore it and the next append first truncates it away, so it can never merge with a
 *   later entry. Complete lines git itself would skip as corrupt are skipped too (so `@{n}` counts
 *   match git's).
 * - Appends are fsynced (and the directory too when the file is new). Callers append while holding
 *   the ref's lock, which is what orders the lines like the ref's history.
 */
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode, ioError } from '../errors.js';
import { isOid, type Oid } from '../objects/oid.js';
import { fsyncDir } from '../util/durable.js';

/** Who made a ref update, as recorded in the reflog. */
export interface Identity {
  readonly name: string;
  readonly email: string;
}

export interface ReflogEntry {
  readonly oldOid: Oid;
  readonly newOid: Oid;
  readonly name: string;
  readonly email: string;
  /** Unix time in whole seconds. */
  readonly timestampSeconds: number;
  /** Offset from UTC in minutes (+60 for `+0100`). */
  readonly tzOffsetMinutes: number;
  readonly message: string;
}

export interface NewReflogEntry {
  readonly oldOid: Oid;
  readonly newOid: Oid;
  readonly identity: Identity;
  /** Milliseconds since the Unix epoch (from the injected clock). */
  readonly timeMs: number;
  readonly tzOffsetMinutes: number;
  readonly message: string;
}

const MAX_TZ_OFFSET_MINUTES = 99 * 60 + 59;
const LINE_RE = /^([0-9a-f]{40}) ([0-9a-f]{40}) ([^>]*>) ([0-9]+) ([+-])([0-9]{2})([0-9]{2})(.*)$/s;
const TAIL_CHUNK = 4096;

/** Checks that an identity can be written into a reflog line. Throws GITFS_BAD_ARGUMENT. */
export function validateIdentity(identity: Identity): Identity {
  const bad = (what: string, s: unknown): boolean => typeof s !== 'string' || /[<>\n\r\0]/.test(s) || (what === 'name' && s.trim() === '');
  if (bad('name', identity.name) || bad('email', identity.email)) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'identity name must be non-empty and neither name nor email may contain <, >, CR, LF or NUL', {
      name: String(identity.name),
      email: String(identity.email),
    });
  }
  return identity;
}

/** git's copy_reflog_msg: drop NULs, collapse runs of whitespace into one space, trim. */
export function normalizeReflogMessage(message: string): string {
  return message.replace(/\0/g, '').replace(/[ \t\n\r]+/g, ' ').trim();
}

/** `+hhmm` / `-hhmm`. */
export function formatTzOffset(minutes: number): string {
  if (!Number.isInteger(minutes) || Math.abs(minutes) > MAX_TZ_OFFSET_MINUTES) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `bad time zone offset ${minutes} (minutes)`);
  }
  const abs = Math.abs(minutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${minutes < 0 ? '-' : '+'}${hh}${mm}`;
}

/** One reflog line, LF included. */
export function formatReflogLine(entry: NewReflogEntry): string {
  if (!isOid(entry.oldOid) || !isOid(entry.newOid)) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'reflog entries need full object ids');
  }
  if (!Number.isFinite(entry.timeMs) || entry.timeMs < 0) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `bad reflog time ${entry.timeMs}`);
  }
  const { name, email } = validateIdentity(entry.identity);
  const seconds = Math.floor(entry.timeMs / 1000);
  const message = normalizeReflogMessage(entry.message);
  const head = `${entry.oldOid} ${entry.newOid} ${name} <${email}> ${seconds} ${formatTzOffset(entry.tzOffsetMinutes)}`;
  return message === '' ? `${head}\n` : `${head}\t${message}\n`;
}

/** Parses one line (without its LF) as git does; undefined for lines git would skip as corrupt. */
export function parseReflogLine(line: string): ReflogEntry | undefined {
  const m = LINE_RE.exec(line);
  if (m === null) return undefined;
  const [, oldOid, newOid, ident, seconds, sign, hh, mm, rest] = m;
  if (oldOid === undefined || newOid === undefined || ident === undefined || seconds === undefined) return undefined;
  const lt = ident.lastIndexOf('<');
  const name = lt < 0 ? ident.slice(0, -1) : ident.slice(0, lt).replace(/ $/, '');
  const email = lt < 0 ? '' : ident.slice(lt + 1, -1);
  const offset = Number(hh) * 60 + Number(mm);
  return {
    oldOid: oldOid as Oid,
    newOid: newOid as Oid,
    name,
    email,
    timestampSeconds: Number(seconds),
    tzOffsetMinutes: sign === '-' ? -offset : offset,
    message: rest !== undefined && rest.startsWith('\t') ? rest.slice(1) : '',
  };
}

/** All complete entries, oldest first; a torn final line (no LF) is ignored. */
export function parseReflog(text: string): ReflogEntry[] {
  const lines = text.split('\n');
  lines.pop(); // '' after the last LF, or a torn line
  const entries: ReflogEntry[] = [];
  for (const line of lines) {
    const entry = parseReflogLine(line);
    if (entry !== undefined) entries.push(entry);
  }
  return entries;
}

/** Reads a reflog file; a missing file is an empty reflog. */
export async function readReflog(path: string): Promise<ReflogEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return [];
    throw ioError(`cannot read reflog ${path}`, path, e);
  }
  return parseReflog(text);
}

/** How much of a reflog is read at a time from its end; doubled while one line does not fit. */
const BACKWARD_BLOCK = 64 * 1024;

/**
 * The complete entries of a reflog file, newest first, read from its end a block at a time: the
 * lookups that want the last few entries (`@{n}`, `@{time}`, a mount's commit) read no more of a
 * long reflog than they need. The same entries as readReflog, in reverse order.
 */
export async function* readReflogNewestFirst(path: string): AsyncGenerator<ReflogEntry> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return;
    throw ioError(`cannot read reflog ${path}`, path, e);
  }
  try {
    yield* entriesBackward(fh, path);
  } catch (e) {
    if (e instanceof GitfsError) throw e;
    throw ioError(`cannot read reflog ${path}`, path, e);
  } finally {
    await fh.close();
  }
}

async function* entriesBackward(fh: FileHandle, path: string): AsyncGenerator<ReflogEntry> {
  let pos = (await fh.stat()).size;
  let pending = Buffer.alloc(0);
  /** Prepends the block before `pos`; false if the file ended before it (cut short since: only its end can be, by a writer holding the ref's lock). */
  const readBefore = async (): Promise<boolean> => {
    const start = Math.max(0, pos - Math.max(BACKWARD_BLOCK, pending.length));
    const block = Buffer.allocUnsafe(pos - start);
    for (let filled = 0; filled < block.length; ) {
      const { bytesRead } = await fh.read(block, filled, block.length - filled, start + filled);
      if (bytesRead === 0) return false;
      filled += bytesRead;
    }
    pending = Buffer.concat([block, pending]);
    pos = start;
    return true;
  };
  // The last complete line: a final line without LF is torn, not an entry. A file cut short
  // meanwhile is read again from its new end (nothing has been given out yet).
  for (let tries = 0; pending.lastIndexOf(0x0a) < 0; ) {
    if (pos === 0) return;
    if (await readBefore()) continue;
    if (++tries > 3) throw ioError(`reflog ${path} keeps shrinking while it is read`, path, undefined);
    pos = (await fh.stat()).size;
    pending = Buffer.alloc(0);
  }
  pending = pending.subarray(0, pending.lastIndexOf(0x0a) + 1);
  while (pending.length > 0) {
    const previous = pending.length < 2 ? -1 : pending.lastIndexOf(0x0a, pending.length - 2);
    if (previous < 0 && pos > 0) {
      // Before what was read, the file only grows (appends) or is cut at its end: never here.
      if (!(await readBefore())) throw ioError(`reflog ${path} was cut while it was read`, path, undefined);
      continue;
    }
    const entry = parseReflogLine(pending.toString('utf8', previous + 1, pending.length - 1));
    pending = pending.subarray(0, previous + 1);
    if (entry !== undefined) yield entry;
  }
}

/**
 * Appends one entry (creating the file and its directories), after cutting off a torn final line.
 * Returns the file's length before the append, for `truncateReflog` if the ref update then fails.
 */
export async function appendReflog(path: string, entry: NewReflogEntry): Promise<number> {
  const line = Buffer.from(formatReflogLine(entry), 'utf8');
  try {
    const { fh, made } = await openForAppend(path);
    try {
      const size = await completeLinesLength(fh);
      const { size: actual } = await fh.stat();
      if (size !== actual) await fh.truncate(size);
      let done = 0;
      while (done < line.length) {
        // O_APPEND: each write lands at the end of the file.
        const { bytesWritten } = await fh.write(line, done, line.length - done);
        done += bytesWritten;
      }
      await fh.sync();
      if (size === 0) await fsyncDir(dirname(path));
      // Directories made for it (a first branch `a/b`): each one's entry made durable in its parent too.
      if (made !== undefined) for (let d = dirname(path); d.startsWith(made); d = dirname(d)) await fsyncDir(dirname(d));
      return size;
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw ioError(`cannot append to reflog ${path}`, path, e);
  }
}

/** Cuts a reflog back to `length` bytes (undoing an append whose ref update failed). */
export async function truncateReflog(path: string, length: number): Promise<void> {
  try {
    const fh = await open(path, 'r+');
    try {
      await fh.truncate(length);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw ioError(`cannot truncate reflog ${path}`, path, e);
  }
}

/** Opens (creating it and its directories) for appending; retries if a concurrent cleanup of empty
 * directories (a branch deletion) removes the directory between mkdir and open. */
/** The reflog opened to append, and the outermost directory made for it, if any. */
async function openForAppend(path: string): Promise<{ fh: FileHandle; made: string | undefined }> {
  let made: string | undefined;
  for (let attempt = 0; ; attempt++) {
    // Made again after a cleanup between tries: the outermost made is the one whose entry must last.
    const now = await mkdir(dirname(path), { recursive: true });
    if (now !== undefined && (made === undefined || now.length < made.length)) made = now;
    try {
      return { fh: await open(path, 'a+', 0o644), made };
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT' || attempt >= 3) throw e;
    }
  }
}

/** Length of the file up to and including its last LF (0 if it has none). */
async function completeLinesLength(fh: FileHandle): Promise<number> {
  const { size } = await fh.stat();
  let end = size;
  const buf = Buffer.alloc(TAIL_CHUNK);
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl >= 0) return start + nl + 1;
    end = start;
  }
  return 0;
}

/**
 * Signed commits as git writes them: the armored signature is the value of a `gpgsig` header,
 * every line after the first prefixed by one space, and what was signed is the commit content
 * without that header (git's parse_buffer_signed_by_header). git inserts the header at the end
 * of the header block, which is right after `committer` unless the commit has other extra
 * headers (`encoding`, `mergetag`); addSignature does the same, so gitfs and git produce
 * identical signed commits.
 *
 * splitSignature is stricter than git: git concatenates several gpgsig headers and drops
 * `gpgsig-sha256` from the payload silently; here a second signature header, one before
 * `committer`, any other `gpgsig*` header, or an empty one is refused (GITFS_BAD_SIGNATURE), so
 * there is exactly one reading of what was signed. Works on bytes: a commit need not be UTF-8.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import type { ReleaseKeyPair, ReleasePublicKey } from './release-key.js';
import { createSshSignature, verifySshSignature } from './sshsig.js';

const LF = 0x0a;
const HEADER = 'gpgsig';

export interface SplitCommit {
  /** The commit content without the gpgsig header: the bytes the signature covers. */
  readonly payload: Buffer;
  /** The signature with continuation prefixes removed and a final newline, or undefined if unsigned. */
  readonly armored: string | undefined;
}

function refuse(why: string): GitfsError {
  return new GitfsError(ErrorCodes.BAD_SIGNATURE, `commit signature header refused: ${why}`, { reason: why });
}

interface Line {
  readonly start: number;
  /** Just past the line's LF (or the end of the content). */
  readonly next: number;
  readonly text: string;
}

/** The header lines (up to the empty line that starts the message), and where the header ends. */
function headerLines(content: Buffer): { lines: Line[]; end: number } {
  const lines: Line[] = [];
  let at = 0;
  while (at < content.length) {
    const lf = content.indexOf(LF, at);
    const next = lf < 0 ? content.length : lf + 1;
    if (lf === at) return { lines, end: at }; // the empty line: the message follows
    lines.push({ start: at, next, text: content.toString('latin1', at, lf < 0 ? content.length : lf) });
    at = next;
  }
  return { lines, end: content.length };
}

const keyOf = (line: string): string => line.slice(0, Math.max(0, line.indexOf(' ')));

export function splitSignature(content: Buffer): SplitCommit {
  const { lines } = headerLines(content);
  let sig: { lines: string[]; start: number; next: number } | undefined;
  let seenCommitter = false;
  let inSignature = false;
  for (const [i, line] of lines.entries()) {
    if (line.text.startsWith(' ')) {
      // A continuation line belongs to the header above it.
      if (i === 0) throw refuse('the commit starts with a continuation line');
      if (inSignature && sig !== undefined) {
        sig.lines.push(line.text.slice(1));
        sig.next = line.next;
      }
      continue;
    }
    inSignature = false;
    const key = keyOf(line.text);
    if (line.text.startsWith(HEADER)) {
      if (key !== HEADER) throw refuse(`only a "gpgsig" header is accepted, not ${JSON.stringify(line.text.slice(0, 20))}`);
      if (sig !== undefined) throw refuse('more than one gpgsig header');
      if (!seenCommitter) throw refuse('gpgsig before the committer header');
      sig = { lines: [line.text.slice(HEADER.length + 1)], start: line.start, next: line.next };
      inSignature = true;
    } else if (key === 'committer') {
      seenCommitter = true;
    }
  }
  if (sig === undefined) return { payload: content, armored: undefined };
  if (sig.lines.every((l) => l.length === 0)) throw refuse('the gpgsig header is empty');
  // The header's lines are contiguous: the payload is everything before and after them.
  const payload = Buffer.concat([content.subarray(0, sig.start), content.subarray(sig.next)]);
  return { payload, armored: `${sig.lines.join('\n')}\n` };
}

/** `content` (unsigned) with `armored` as its gpgsig header, placed where git places it. */
export function addSignature(content: Buffer, armored: string): Buffer {
  if (splitSignature(content).armored !== undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'the commit is signed already');
  const text = armored.endsWith('\n') ? armored.slice(0, -1) : armored;
  if (text.length === 0 || /[\r\0]/.test(text) || text.split('\n').some((l) => l.length === 0)) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'an armored signature is non-empty lines without CR or NUL');
  }
  const { lines, end } = headerLines(content);
  if (!lines.some((l) => keyOf(l.text) === 'committer')) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'not a commit: no committer header');
  if (end === content.length && content[content.length - 1] !== LF) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'not a commit: the header does not end with a newline');
  const header = Buffer.from(`${HEADER} ${text.replace(/\n/g, '\n ')}\n`, 'utf8');
  return Buffer.concat([content.subarray(0, end), header, content.subarray(end)]);
}

/** Signs an unsigned commit's content with a release key: the signed content, ready to hash and store. */
export function signCommit(content: Buffer, key: ReleaseKeyPair): Buffer {
  return addSignature(content, createSshSignature(content, key));
}

/**
 * The trusted key that signed this commit content. Throws GITFS_BAD_SIGNATURE (unsigned,
 * malformed header or signature, content changed) or GITFS_UNTRUSTED_KEY.
 */
export function verifyCommit(content: Buffer, trusted: readonly ReleasePublicKey[]): ReleasePublicKey {
  const { payload, armored } = splitSignature(content);
  if (armored === undefined) throw new GitfsError(ErrorCodes.BAD_SIGNATURE, 'the commit is not signed', { reason: 'unsigned' });
  return verifySshSignature(payload, armored, trusted);
}

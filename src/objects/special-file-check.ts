/**
 * What `git fsck --strict` (git 2.39, fsck.c) refuses in the content of a `.gitmodules` or
 * `.gitattributes` blob (storable-name.ts says which names those are), so that gitfs never
 * writes a tree git would refuse. Only git's errors count: what git merely notes (a
 * `.gitmodules` it cannot parse) is stored as it is.
 *
 * `.gitattributes`: at most 100 MiB, no line of 2048 bytes or more (up to the first NUL).
 * (git also refuses a `.gitmodules` of core.bigFileThreshold, 512 MiB, or more: gitfs chunks
 * files far below that, and a chunked file is no blob git reads as `.gitmodules`.)
 * `.gitmodules`: read as a config (git-config-syntax.ts, the way git reads a blob, where `char`
 * is signed and where it is not); in every
 * `submodule.<name>.<key>` entry the name has no `..` component, a `url` passes
 * check_submodule_url, a `path` does not start with `-`, an `update` does not start with `!`.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { scanGitConfig } from './git-config-syntax.js';
import type { Oid } from './oid.js';
import type { SpecialFile } from './storable-name.js';

/** git's ATTR_MAX_FILE_SIZE and ATTR_MAX_LINE_LENGTH. */
const ATTRIBUTES_MAX_BYTES = 100 * 1024 * 1024;
const ATTRIBUTES_MAX_LINE = 2048;

/**
 * Why git fsck would refuse this content under this name, or undefined if it would not: a git
 * built where `char` is signed (x86) or unsigned (arm64), as `signedChar` says; by default either
 * (a repository moves between machines), so what one of them refuses is refused.
 */
export function specialFileProblem(which: SpecialFile, data: Buffer, signedChar?: boolean): string | undefined {
  if (which === 'gitattributes') return attributesProblem(data);
  return signedChar === undefined ? (modulesProblem(data, true) ?? modulesProblem(data, false)) : modulesProblem(data, signedChar);
}

/** GITFS_FSCK_REFUSED for `commit` when git would refuse object `o` as its `.${which}`, else undefined. */
export function specialBlobRefusal(commit: Oid, o: { readonly oid: Oid; readonly type: string; readonly content: Buffer }, which: SpecialFile): GitfsError | undefined {
  const problem = o.type === 'blob' ? specialFileProblem(which, o.content) : `a ${o.type}, not a blob`;
  return problem === undefined ? undefined : new GitfsError(ErrorCodes.FSCK_REFUSED, `${commit} refused: git would refuse ${o.oid} as .${which}: ${problem}`, { commit, oid: o.oid, problem });
}

/**
 * The refusal of `commit` for a blob its trees name as `.gitmodules` or `.gitattributes` that came
 * too large for one swarm message (in parts): gitfs checks those whole and holds none so large.
 */
export function specialBlobTooLarge(commit: Oid, oid: Oid, which: readonly SpecialFile[]): GitfsError {
  return new GitfsError(ErrorCodes.FSCK_REFUSED, `${commit} refused: its trees name ${oid} as .${which.join(' and .')}, a blob too large for gitfs to check as git fsck would`, { commit, oid, problem: 'too large' });
}

function attributesProblem(data: Buffer): string | undefined {
  if (data.length > ATTRIBUTES_MAX_BYTES) return '.gitattributes too large to parse';
  const nul = data.indexOf(0);
  const end = nul < 0 ? data.length : nul;
  for (let start = 0; start < end; ) {
    const nl = data.indexOf(0x0a, start);
    const eol = nl < 0 || nl > end ? end : nl;
    if (eol - start >= ATTRIBUTES_MAX_LINE) return '.gitattributes has too long lines to parse';
    start = eol + 1;
  }
  return undefined;
}

function modulesProblem(data: Buffer, signedChar: boolean): string | undefined {
  let problem: string | undefined;
  scanGitConfig(
    data,
    (e) => {
      problem ??= submoduleEntryProblem(latin1(e.name), e.value === null ? null : latin1(e.value));
    },
    { signedChar },
  );
  return problem;
}

/** git's fsck_gitmodules_fn for one entry (names and values read as C strings: up to a NUL). */
function submoduleEntryProblem(name: string, value: string | null): string | undefined {
  if (!name.startsWith('submodule.')) return undefined;
  const rest = name.slice('submodule.'.length);
  const dot = rest.lastIndexOf('.');
  if (dot < 0) return undefined;
  const submodule = rest.slice(0, dot);
  const key = rest.slice(dot + 1);
  if (badSubmoduleName(submodule)) return `disallowed submodule name: ${submodule}`;
  if (value === null) return undefined;
  if (key === 'url' && badSubmoduleUrl(value)) return `disallowed submodule url: ${value}`;
  if (key === 'path' && value.startsWith('-')) return `disallowed submodule path: ${value}`;
  if (key === 'update' && value.startsWith('!')) return `disallowed submodule update setting: ${value}`;
  return undefined;
}

const SEPARATOR = /[/\\]/;

/** check_submodule_name: not empty, no `..` component (either separator, on every platform). */
function badSubmoduleName(name: string): boolean {
  return name === '' || name.split(SEPARATOR).includes('..');
}

const startsDotSlash = (s: string): boolean => s[0] === '.' && (s[1] === '/' || s[1] === '\\');
const startsDotDotSlash = (s: string): boolean => s[0] === '.' && startsDotSlash(s.slice(1));

/** check_submodule_url. */
function badSubmoduleUrl(url: string): boolean {
  if (url.startsWith('-')) return true;
  if (startsDotSlash(url) || startsDotDotSlash(url) || url.startsWith('git://')) {
    if (urlDecode(url).includes('\n')) return true;
    // A relative URL climbing out of its root onto the host part (CVE-2020-11008).
    let next = url;
    let climbs = 0;
    for (;;) {
      if (startsDotDotSlash(next)) {
        climbs++;
        next = next.slice(3);
      } else if (startsDotSlash(next)) next = next.slice(2);
      else break;
    }
    return climbs > 0 && (next[0] === ':' || next[0] === '/');
  }
  const curl = curlUrl(url);
  return curl !== undefined && !credentialUrlOk(curl);
}

/** url_to_curl_url: the URL curl would be handed, for http(s) and ftp(s), or undefined. */
function curlUrl(url: string): string | undefined {
  for (const helper of ['http::', 'https::', 'ftp::', 'ftps::']) if (url.startsWith(helper)) return url.slice(helper.length);
  return /^(?:https?|ftps?):\/\//.test(url) ? url : undefined;
}

/** credential_from_url_gently, quietly: a scheme, and no newline in any part once decoded; then a host. */
function credentialUrlOk(url: string): boolean {
  const protoEnd = url.indexOf('://');
  if (protoEnd <= 0) return false;
  const cp = protoEnd + 3;
  const at = url.indexOf('@', cp);
  const colon = url.indexOf(':', cp);
  const stop = url.slice(cp).search(/[/?#]/);
  const slash = stop < 0 ? url.length : cp + stop;
  const parts: string[] = [url.slice(0, protoEnd)];
  let host = cp;
  if (at >= 0 && at < slash) {
    host = at + 1;
    if (colon < 0 || at <= colon) parts.push(urlDecode(url.slice(cp, at)));
    else parts.push(urlDecode(url.slice(cp, colon)), urlDecode(url.slice(colon + 1, at)));
  }
  const hostName = urlDecode(url.slice(host, slash));
  parts.push(hostName);
  let path = slash;
  while (url[path] === '/') path++;
  if (path < url.length) parts.push(urlDecode(url.slice(path)));
  return !parts.some((p) => p.includes('\n')) && hostName !== '';
}

/** url_decode_mem: `%XX` decoded after the first `:` (a scheme before it is kept as it is); `%00` is kept as it is. */
function urlDecode(s: string): string {
  const colon = s.indexOf(':');
  const kept = colon > 0 ? s.slice(0, colon) : '';
  const rest = colon > 0 ? s.slice(colon) : s;
  return kept + rest.replace(/%([0-9a-fA-F]{2})/g, (escape, hex: string) => (hex === '00' ? escape : String.fromCharCode(parseInt(hex, 16))));
}

/** A string as C reads it: up to its first NUL. */
function cString(s: string): string {
  const nul = s.indexOf('\0');
  return nul < 0 ? s : s.slice(0, nul);
}

const latin1 = (b: Buffer): string => cString(b.toString('latin1'));

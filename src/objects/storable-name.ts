/**
 * Names gitfs will not write, beyond those no tree may hold (`badEntryName`): the ones `git fsck`
 * refuses because another platform's file system would read them as something else. On NTFS
 * `.git` followed by dots or spaces (or an alternate stream, `:`), and the short name `git~1`,
 * are `.git`; on HFS+ a `.git` with invisible code points in it is `.git` (git's is_ntfs_dotgit
 * and is_hfs_dotgit). Trees already stored keep reading: decodeTree checks only badEntryName.
 *
 * git fsck also reads every entry it takes for `.gitmodules` or `.gitattributes` on some platform
 * (`specialFileOf`) as that file: such an entry must not be a directory (gitmodulesBlob,
 * gitattributesBlob), nor `.gitmodules` a symbolic link (gitmodulesSymlink), and a blob's content
 * must pass git's checks (special-file-check.ts). A chunked file is a tree named
 * `NAME~gitfs~cSIZE`, which git takes for neither unless NAME ends its special part with `:` (an
 * NTFS stream): that stored name is checked as a directory's (store-file.ts).
 */
import { badEntryName } from './tree.js';

/** Code points HFS+ ignores when it compares names (git's next_hfs_char). */
const HFS_IGNORED = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;
/** `.git` or `git~1`, then only dots and spaces up to the end, a `:` or a `\` (git's is_ntfs_dotgit). */
const NTFS_DOTGIT = /^(?:\.git|git~1)[. ]*(?:[:\\][^]*)?$/i;

/** Lower case as git's tolower: ASCII letters only (a JavaScript lower case maps U+212A to `k`). */
const asciiLower = (s: string): string => s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
/**
 * A name as git's HFS+ check compares it: code points HFS+ ignores left out, ASCII lower-cased,
 * and ended at U+FFFE or U+FFFF (git's UTF-8 reader returns 0 for them, which ends the name).
 */
const hfsFolded = (name: string): string => asciiLower(name.replace(/[\ufffe\uffff][^]*$/, '').replace(HFS_IGNORED, ''));

/** A file git reads as its own, by the name it has on some platform. */
export type SpecialFile = 'gitmodules' | 'gitattributes';

/** The NTFS short-name fallback prefixes git checks besides the 6-letter one (is_ntfs_dotgitmodules, is_ntfs_dotgitattributes). */
const SHORT_NAME_HASH: Readonly<Record<SpecialFile, string>> = { gitmodules: 'gi7eba', gitattributes: 'gi7d29' };

/** Only dots and spaces from `i` up to the end or a `:` (is_ntfs_dot_generic's tail). */
function onlyDotsAndSpaces(name: string, i: number): boolean {
  for (; i < name.length; i++) {
    const c = name[i];
    if (c === ':') return true;
    if (c !== ' ' && c !== '.') return false;
  }
  return true;
}

/** git's is_ntfs_dot_generic: `.NAME`, its 8.3 short name `NAMEPR~1`…`~4`, or a hashed short name. */
function isNtfsDot(name: string, which: SpecialFile): boolean {
  const lower = asciiLower(name);
  if (lower.startsWith(`.${which}`)) return onlyDotsAndSpaces(name, which.length + 1);
  if (lower.startsWith(which.slice(0, 6)) && name[6] === '~' && name[7] !== undefined && name[7] >= '1' && name[7] <= '4') return onlyDotsAndSpaces(name, 8);
  // The fall-back short name: up to 6 letters of the hash prefix, `~`, a digit 1-9, then digits, 8 characters in all.
  const prefix = SHORT_NAME_HASH[which];
  let sawTilde = false;
  for (let i = 0; i < 8; i++) {
    const c = name[i];
    if (c === undefined) return false;
    if (sawTilde) {
      if (c < '0' || c > '9') return false;
    } else if (c === '~') {
      const d = name[++i];
      if (d === undefined || d < '1' || d > '9') return false;
      sawTilde = true;
    } else if (i >= 6 || asciiLower(c) !== prefix[i]) return false;
  }
  return onlyDotsAndSpaces(name, 8);
}

/** Which of git's special files git fsck takes an entry of this name for, if any (`.gitmodules` first, as git checks). */
export function specialFileOf(name: string): SpecialFile | undefined {
  if (!mayBeAlias(name)) return undefined;
  const folded = hfsFolded(name);
  for (const which of ['gitmodules', 'gitattributes'] as const) {
    if (folded === `.${which}` || isNtfsDot(name, which)) return which;
  }
  return undefined;
}

/** The kind of entry a name is for, where it matters: a symbolic link, a directory, a submodule. */
export type EntryKind = 'file' | 'dir' | 'symlink' | 'gitlink';

/** Why gitfs will not write an entry of this name (of `kind`, if known), or undefined if it will. */
export function unstorableName(name: string, kind?: EntryKind): string | undefined {
  return badEntryName(name) ?? aliasProblem(name, kind);
}

/**
 * Could git take `name` for `.git`, `.gitmodules` or `.gitattributes`? Only if it starts with a
 * dot or a code point HFS+ ignores, or has a `~` among its first 7 characters (an NTFS short
 * name): most names are let through on that alone.
 */
function mayBeAlias(name: string): boolean {
  const first = name.charCodeAt(0);
  if (first === 0x2e || first >= 0x80) return true;
  const tilde = name.indexOf('~');
  return tilde >= 0 && tilde <= 6;
}

/**
 * The part of unstorableName beyond badEntryName (which decodeTree applies to every tree): the
 * names git fsck takes for `.git`, and for its special files as entries of `kind`.
 */
export function aliasProblem(name: string, kind?: EntryKind): string | undefined {
  if (!mayBeAlias(name)) return undefined;
  if (NTFS_DOTGIT.test(name) || hfsFolded(name) === '.git') return `name ${JSON.stringify(name)} is .git on another platform`;
  if (kind === undefined || kind === 'file') return undefined;
  const special = specialFileOf(name);
  if (special === 'gitmodules' && kind === 'symlink') return 'a symbolic link git reads as .gitmodules';
  if (special !== undefined && kind !== 'symlink') return `${kind === 'dir' ? 'a directory' : 'a submodule'} git reads as .${special}`;
  return undefined;
}

/**
 * Names gitfs will not write, beyond those no tree may hold (`badEntryName`): the ones `git fsck`
 * refuses because another platform's file system would read them as something else. On NTFS
 * `.git` followed by dots or spaces (or an alternate stream, `:`), and the short name `git~1`,
 * are `.git`; on HFS+ a `.git` with invisible code points in it is `.git` (git's is_ntfs_dotgit
 * and is_hfs_dotgit). A symbolic link named `.gitmodules` (the same way) is refused too
 * (fsck's gitmodulesSymlink). Trees already stored keep reading: decodeTree checks only
 * badEntryName.
 */
import { badEntryName } from './tree.js';

/** Code points HFS+ ignores when it compares names (git's next_hfs_char). */
const HFS_IGNORED = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/gu;
/** `.git` or `git~1`, then only dots and spaces up to the end or a `:`. */
const NTFS_DOTGIT = /^(?:\.git|git~1)[. ]*(?::.*)?$/iu;
const NTFS_DOTGITMODULES = /^(?:\.gitmodules|gitmod~[1-4]|gi7eba~[1-9])[. ]*(?::.*)?$/iu;

const hfsFolded = (name: string): string => name.replace(HFS_IGNORED, '').toLowerCase();

/** Why gitfs will not write an entry of this name (a symbolic link when `symlink`), or undefined if it will. */
export function unstorableName(name: string, symlink = false): string | undefined {
  const bad = badEntryName(name);
  if (bad !== undefined) return bad;
  if (NTFS_DOTGIT.test(name) || hfsFolded(name) === '.git') return `name ${JSON.stringify(name)} is .git on another platform`;
  if (symlink && (NTFS_DOTGITMODULES.test(name) || hfsFolded(name) === '.gitmodules')) return 'a symbolic link named .gitmodules';
  return undefined;
}

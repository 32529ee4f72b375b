/** File attributes as the mount reports them (README.md, "Mount semantics"). */
import type { Stats } from 'node:fs';

export interface Attr {
  mode: number;
  size: number;
  mtime: Date;
  atime: Date;
  ctime: Date;
  uid: number;
  gid: number;
  nlink: number;
  ino: number;
  dev: number;
  rdev: number;
  blksize: number;
  blocks: number;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const BLOCK = 4096;

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

function attr(owner: Owner, mode: number, size: number, mtimeMs: number, atimeMs = mtimeMs): Attr {
  const mtime = new Date(mtimeMs);
  return {
    mode,
    size,
    mtime,
    atime: new Date(atimeMs),
    ctime: mtime,
    uid: owner.uid,
    gid: owner.gid,
    // Directories report one link: the count of subdirectories is not known without listing,
    // and 1 tells find and fts not to use the link count (as btrfs does).
    nlink: 1,
    ino: 0,
    dev: 0,
    rdev: 0,
    blksize: BLOCK,
    blocks: Math.ceil(size / 512),
  };
}

export function dirAttr(owner: Owner, mode: number, mtimeMs: number, readOnly = false): Attr {
  return attr(owner, S_IFDIR | (readOnly ? mode & 0o555 : mode), BLOCK, mtimeMs);
}

export function fileAttr(owner: Owner, executable: boolean, size: number, mtimeMs: number, readOnly = false): Attr {
  const mode = executable ? 0o755 : 0o644;
  return attr(owner, S_IFREG | (readOnly ? mode & 0o555 : mode), size, mtimeMs);
}

export function symlinkAttr(owner: Owner, targetBytes: number, mtimeMs: number): Attr {
  return attr(owner, S_IFLNK | 0o777, targetBytes, mtimeMs);
}

/** A written file: its data file's own attributes are the truth. */
export function dataAttr(owner: Owner, st: Stats): Attr {
  const a = attr(owner, S_IFREG | ((st.mode & 0o100) !== 0 ? 0o755 : 0o644), st.size, st.mtimeMs, st.atimeMs);
  a.ctime = new Date(st.ctimeMs);
  a.blocks = st.blocks;
  return a;
}

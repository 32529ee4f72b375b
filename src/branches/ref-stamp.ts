/**
 * A cheap fingerprint of every branch ref: the inode, size and change time of each directory
 * under refs/heads and of packed-refs. A ref update renames a file into its directory, which
 * changes that directory's stamp, so "same stamp" means "list again not needed" — up to the
 * file system's timestamp granularity, which is why watchers also list again now and then.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BRANCH_REF_PREFIX } from './ref-name.js';

export interface RefStamp {
  readonly stamp: string;
  /** The directories the stamp covers, to stamp again cheaply. */
  readonly dirs: readonly string[];
  /** The newest modification time among them and packed-refs (ms since the epoch, the file system's clock). */
  readonly newestMs: number;
}

interface FileStamp {
  readonly stamp: string;
  readonly mtimeMs: number;
}

function fileStamp(path: string): FileStamp {
  try {
    const st = statSync(path, { bigint: true });
    return { stamp: `${st.ino}:${st.size}:${st.mtimeNs}`, mtimeMs: Number(st.mtimeNs / 1_000_000n) };
  } catch {
    return { stamp: 'none', mtimeMs: 0 };
  }
}

function stampOf(gitDir: string, dirs: readonly string[]): FileStamp[] {
  return [...dirs, join(gitDir, 'packed-refs')].map(fileStamp);
}

/** Directories under refs/heads (itself included), as paths. */
function refDirs(headsDir: string): string[] {
  const out = [headsDir];
  for (let i = 0; i < out.length && i < 100_000; i++) {
    try {
      for (const e of readdirSync(out[i] as string, { withFileTypes: true })) if (e.isDirectory()) out.push(join(out[i] as string, e.name));
    } catch {
      // vanished meanwhile: its parent's stamp changed too, so the next look lists again
    }
  }
  return out;
}

/** Stamps the given directories again (as found by refStamp) plus packed-refs. */
export function restamp(gitDir: string, dirs: readonly string[]): string {
  return stampOf(gitDir, dirs)
    .map((f) => f.stamp)
    .join('|');
}

/** Finds the ref directories and stamps them. Stamp first, list refs after: a change meanwhile shows at the next look. */
export function refStamp(gitDir: string): RefStamp {
  const dirs = refDirs(join(gitDir, BRANCH_REF_PREFIX));
  const files = stampOf(gitDir, dirs);
  return { stamp: files.map((f) => f.stamp).join('|'), dirs, newestMs: Math.max(...files.map((f) => f.mtimeMs)) };
}

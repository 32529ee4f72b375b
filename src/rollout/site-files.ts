/**
 * The entries of a site directory on the local file system, for its canonical listing
 * (manifest.ts siteListing): every regular file and symlink below it with its mode, the
 * SHA-256 of its content (of its target, for a symlink) and its size. Used when a site is
 * published and when a node checks the site it exported before applying it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, GitfsError } from '../errors.js';
import type { SiteEntry } from './manifest.js';

export async function siteEntries(root: string): Promise<SiteEntry[]> {
  const out: SiteEntry[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const abs = join(dir, name);
      const path = prefix === '' ? name : `${prefix}/${name}`;
      const st = await lstat(abs);
      if (st.isDirectory()) await walk(abs, path);
      else if (st.isSymbolicLink()) {
        const target = Buffer.from(await readlink(abs), 'utf8');
        out.push({ path, mode: '120000', sha256: createHash('sha256').update(target).digest('hex'), size: target.length });
      } else if (st.isFile()) out.push({ path, mode: (st.mode & 0o111) !== 0 ? '100755' : '100644', ...(await fileSha256(abs)) });
      else throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${abs} is neither a file, a directory nor a symlink: a site holds only those`, { path: abs });
    }
  };
  await walk(root, '');
  return out;
}

/** SHA-256 and size of a file, streamed. */
export async function fileSha256(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const piece of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(piece as Buffer);
    size += (piece as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

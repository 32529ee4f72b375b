/**
 * Helpers for the branch tests: deterministic fake object ids, a settable clock, a listing of
 * what a directory holds, and a ref store that counts its listings. Temp dirs come from test/support/tmp.ts, the git CLI from test/support/git-env.ts.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LOCK_MARK } from '../../src/branches/lock-file.js';
import { RefStore } from '../../src/branches/ref-store.js';
import type { Oid } from '../../src/objects/oid.js';

/** A well-formed id that names no real object (fine wherever git is not asked to read it). */
export function fakeOid(seed: string): Oid {
  return createHash('sha1').update(seed).digest('hex') as Oid;
}

/** A clock tests move by hand; starts at the real time so file mtimes and it agree. */
export class ManualClock {
  ms: number;
  constructor(ms = Date.now()) {
    this.ms = ms;
  }
  now(): number {
    return this.ms;
  }
}

export const realClock = { now: (): number => Date.now() };

export const IDENTITY = { name: 'Gitfs Test', email: 'gitfs@example.com' } as const;

/** Lists every file below `dir`, relative, sorted (to check no lock or stray file is left). */
export function filesBelow(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        out.push(`${r}/`);
        walk(path.join(d, e.name), r);
      } else out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

/** A ref store that counts its full listings (to check when a watcher or a stamp lists). */
export class CountingRefs extends RefStore {
  lists = 0;
  override listing(): ReturnType<RefStore['listing']> {
    this.lists++;
    return super.listing();
  }
}

/** Gives a lock file a test wrote by hand gitfs's mark (lock-file.ts), as a gitfs writer that died would have left it. */
export function markAsGitfs(lockPath: string): void {
  fs.utimesSync(lockPath, LOCK_MARK, fs.statSync(lockPath).mtime);
}

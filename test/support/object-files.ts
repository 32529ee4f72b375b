/** A repository's object files as the tests of prune see them: their age, and which objects git finds. */
import { execFileSync } from 'node:child_process';
import { readdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';

/** Sets every file under objects/ to `ms` ago: what a node in service for that long has. */
export function ageObjects(gitDir: string, ms: number): void {
  const then = new Date(Date.now() - ms);
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else utimesSync(join(dir, e.name), then, then);
    }
  };
  walk(join(gitDir, 'objects'));
}

/** How many of `oids` the repository holds, as git sees it. */
export function presentObjects(gitDir: string, oids: readonly string[]): number {
  const out = execFileSync('git', [`--git-dir=${gitDir}`, 'cat-file', '--batch-check=%(objectname)'], { input: oids.map((o) => `${o}\n`).join(''), encoding: 'utf8' });
  return out.split('\n').filter((l) => /^[0-9a-f]{40}$/.test(l)).length;
}

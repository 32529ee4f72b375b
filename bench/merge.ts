/**
 * The merge of two heads written apart (src/repo/merge-heads.ts), beside git's own merge of the
 * same two commits in the same repository (`git merge-tree --write-tree`, git ≥ 2.38: trees only,
 * no work tree, as gitfs merges). A directory (default /usr/share: ~47 000 files in ~3 300
 * directories here) is committed as the base; each side then edits `--edit-percent` of its files
 * (a line appended), the same files on both sides for `--conflict-percent` of them (different
 * lines: both versions kept), and the two are merged `--rounds` times by each. Usage (after
 * `make build`):
 *   node dist/bench/merge.js [--source /usr/share] [--edit-percent 1] [--conflict-percent 0.1] [--rounds 3]
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import type { BranchName } from '../src/branches/ref-name.js';
import type { Oid } from '../src/objects/oid.js';
import { commitDirectory } from '../src/repo/commit-directory.js';
import { planMerge, writeMerge } from '../src/repo/merge-heads.js';
import { Repository } from '../src/repo/repository.js';

const { values: opt } = parseArgs({
  options: { source: { type: 'string', default: '/usr/share' }, 'edit-percent': { type: 'string', default: '1' }, 'conflict-percent': { type: 'string', default: '0.1' }, rounds: { type: 'string', default: '3' } },
  strict: true,
});
const EDIT = Number(opt['edit-percent']) / 100;
const CONFLICT = Number(opt['conflict-percent']) / 100;
const ROUNDS = Number(opt.rounds);
if (!(EDIT > 0 && EDIT <= 0.5)) throw new Error(`--edit-percent must be above 0 and at most 50, not ${opt['edit-percent']}`);
if (!(CONFLICT >= 0 && CONFLICT <= EDIT)) throw new Error(`--conflict-percent must be from 0 to --edit-percent, not ${opt['conflict-percent']}`);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 100) throw new Error(`--rounds must be an integer from 1 to 100, not ${opt.rounds}`);

/** Regular files under `dir`, relative, in a fixed order. */
function filesOf(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as { isFile(): boolean; parentPath: string; name: string }[])
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

const work = mkdtempSync(join(tmpdir(), 'gitfs-merge-bench-'));
try {
  const tree = join(work, 'tree');
  cpSync(opt.source, tree, { recursive: true, verbatimSymlinks: true });
  const files = filesOf(tree);
  // Every k-th file edited on a side; the first of each conflict-sized stride on both.
  const stride = Math.max(1, Math.round(1 / EDIT));
  const both = new Set(files.filter((_, i) => CONFLICT > 0 && i % Math.max(1, Math.round(1 / CONFLICT)) === 0));
  const sideA = files.filter((f, i) => i % stride === 0 || both.has(f));
  const sideB = files.filter((f, i) => i % stride === Math.floor(stride / 2) || both.has(f));
  const repo = await Repository.init(join(work, 'repo'));
  try {
    const commit = async (branch: string, message: string): Promise<Oid> => {
      const made = await commitDirectory(repo, branch as BranchName, tree, { message });
      if (made.commit === undefined) throw new Error(`${message}: nothing committed`);
      return made.commit;
    };
    const base = await commit('a', 'base');
    await repo.refs.update('b' as BranchName, { expected: null, next: base, message: 'bench' });
    const edit = (list: readonly string[], line: string): void => list.forEach((f) => appendFileSync(join(tree, f), line));
    const restore = (list: readonly string[]): void => list.forEach((f) => cpSync(join(opt.source, f), join(tree, f)));
    edit(sideA, '\nedited on side a\n');
    const a = await commit('a', 'side a');
    restore(sideA);
    edit(sideB, '\nedited on side b\n');
    const b = await commit('b', 'side b');
    process.stdout.write(`${files.length} files from ${opt.source}; side a edits ${sideA.length}, side b ${sideB.length}, both ${both.size}\n`);
    for (let round = 1; round <= ROUNDS; round++) {
      let started = performance.now();
      const plan = await planMerge(repo, a, b);
      if (typeof plan === 'string' || 'keep' in plan) throw new Error(`not merged: ${JSON.stringify(plan)}`);
      const merged = await writeMerge(repo, plan);
      const gitfsMs = performance.now() - started;
      started = performance.now();
      let gitTree: string;
      try {
        gitTree = execFileSync('git', ['--git-dir', repo.gitDir, 'merge-tree', '--write-tree', '--name-only', a, b], { encoding: 'utf8', maxBuffer: 1 << 28 });
      } catch (e) {
        // Exit 1: conflicts, the tree written all the same.
        const out = (e as { status?: number; stdout?: string }).stdout;
        if ((e as { status?: number }).status !== 1 || out === undefined) throw e;
        gitTree = out;
      }
      const gitMs = performance.now() - started;
      const conflicts = gitTree.split('\n\n')[0]?.split('\n').length ?? 1;
      process.stdout.write(
        `round ${round}: gitfs ${gitfsMs.toFixed(0)} ms (${merged.setAside.length} set aside) | git merge-tree ${gitMs.toFixed(0)} ms (${conflicts - 1} conflicted) | gitfs/git ${(gitfsMs / gitMs).toFixed(2)}\n`,
      );
    }
  } finally {
    await repo.close();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

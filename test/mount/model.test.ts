import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gitfsOk } from '../support/cli.js';
import { mountSuiteDirs, TestMount } from '../support/mount.js';

/** Deterministic pseudo-random numbers (xorshift32), so a failure replays from its seed. */
function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

/** Everything git can hold about a tree: paths, kinds, execute bits, contents, link targets. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(abs);
      if (st.isSymbolicLink()) out.push(`l ${path} -> ${readlinkSync(abs)}`);
      else if (st.isDirectory()) {
        out.push(`d ${path}`);
        walk(abs, path);
      } else out.push(`f ${path} ${(st.mode & 0o100) !== 0 ? 'x' : '-'} ${createHash('sha1').update(readFileSync(abs)).digest('hex')}`);
    }
  };
  walk(root, '');
  return out;
}

/** The outcome of an operation: its errno, or 'ok'. Both trees must give the same. */
function outcome(op: () => void): string {
  try {
    op();
    return 'ok';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'error';
  }
}

describe('mount: random operations against the native file system as a model', function () {
  const tmp = mountSuiteDirs();

  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: 400 operations give the same tree and the same errors, before and after commits`, async () => {
      const { base, repo, mnt } = tmp.place();
      const model = join(base, 'model');
      mkdirSync(join(model, 'a/b'), { recursive: true });
      writeFileSync(join(model, 'a/one'), 'one\n');
      writeFileSync(join(model, 'a/b/two'), 'two\n'.repeat(1000));
      await gitfsOk(['init', '--repo', repo]);
      await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', model]);
      const m = await TestMount.start(repo, mnt);
      const live = join(mnt, 'main');
      const rnd = prng(seed);
      const names = ['a', 'b', 'c', 'one', 'two'];
      const existing = (): string[] => snapshot(model).map((l) => l.split(' ')[1] as string);
      // Half the time a path that exists (so most operations do something), else any path.
      const pick = (): string => {
        const there = existing();
        if (rnd(2) === 0 && there.length > 0) return there[rnd(there.length)] as string;
        const depth = 1 + rnd(3);
        return Array.from({ length: depth }, () => names[rnd(names.length)] as string).join('/');
      };
      const ops: Array<(root: string, p: string, q: string, n: number) => void> = [
        (root, p, _q, n) => writeFileSync(join(root, p), `content ${n}\n`.repeat(1 + (n % 50))),
        (root, p, _q, n) => writeFileSync(join(root, p), `more ${n}\n`, { flag: 'a' }),
        (root, p) => mkdirSync(join(root, p)),
        (root, p) => unlinkSync(join(root, p)),
        (root, p) => rmdirSync(join(root, p)),
        (root, p, q) => renameSync(join(root, p), join(root, q)),
        (root, p, _q, n) => truncateSync(join(root, p), n % 100),
        (root, p, _q, n) => chmodSync(join(root, p), n % 2 === 0 ? 0o755 : 0o644),
        (root, p, _q, n) => symlinkSync(`target-${n}`, join(root, p)),
      ];
      let succeeded = 0;
      for (let i = 0; i < 400; i++) {
        const op = ops[rnd(ops.length)] as (typeof ops)[number];
        const [p, q, n] = [pick(), rnd(2) === 0 ? `${pick()}${rnd(2) === 0 ? '' : '2'}` : pick(), rnd(1000)];
        const want = outcome(() => op(model, p, q, n));
        const got = outcome(() => op(live, p, q, n));
        assert.equal(got, want, `op ${i} on ${p} ${q}`);
        if (got === 'ok') succeeded++;
        if (i % 100 === 99) {
          assert.deepEqual(snapshot(live), snapshot(model), `after op ${i}`);
          await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '-m', `after ${i}`]);
          assert.deepEqual(snapshot(live), snapshot(model), `after op ${i} and a commit`);
        }
      }
      assert.ok(succeeded >= 100, `only ${succeeded} of 400 operations succeeded: the walk barely changed the tree`);
      assert.ok(snapshot(model).length >= 3, "the tree ended nearly empty");
      await m.stop();
      const exported = join(base, 'exported');
      await gitfsOk(['export', '--repo', repo, 'main', exported]);
      assert.deepEqual(snapshot(exported), snapshot(model));
      assert.ok(!existsSync(join(exported, '.git')));
    });
  }
});

/**
 * `gitfs prune`, run as a separate process and checked with the real git: a branch under a
 * `history: K` policy keeps K generations and what they name, everything a ref or a kept reflog
 * names stays, git fsck --strict stays clean (shallow file and reflogs included), files younger
 * than the grace period stay, a dry run removes nothing, and a kill -9 at any moment leaves a
 * repository git fsck passes and a later prune finishes.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, rmSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOCK_MARK } from '../../src/branches/lock-file.js';
import { expiredLines } from '../../src/branches/reflog-expire.js';
import type { Oid } from '../../src/objects/oid.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { CRASH_AT_VAR } from '../../src/util/crash-point.js';
import { git, gitfs, gitfsBytes, gitfsOk, GITFS_BIN } from '../support/cli.js';
import { pseudoRandomBytes } from '../support/data.js';
import { ageObjects, presentObjects } from '../support/object-files.js';
import { tempDirs } from '../support/tmp.js';
import { waitFor } from '../support/cluster-nodes.js';
import { freeTcpPort, freeUdpPort, ServeProcess } from '../node/serve-process.js';

const DAY_MS = 86_400_000;

/** Bytes under objects/ (packs and loose files). */
function objectBytes(gitDir: string): number {
  let total = 0;
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else total += statSync(join(dir, e.name)).size;
    }
  };
  walk(join(gitDir, 'objects'));
  return total;
}

describe('repo: prune', function () {
  this.timeout(300_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  interface Made {
    readonly commit: Oid;
    /** Its one file (chunked: the root of its chunk tree). */
    readonly file: Oid;
  }

  interface Fixture {
    readonly repo: string;
    /** kernel/x's commits, oldest first, and the blob of each. */
    readonly kernel: readonly Made[];
    readonly mainFiles: readonly Oid[];
  }

  /**
   * kernel/x: 5 commits, each of a 300 KiB file of its own (history: 2 keeps the last two); main:
   * 2 commits (no policy: all kept); kernel/y: main plus 2 commits (history: 2, but main keeps
   * what lies below them whole).
   */
  async function fixture(): Promise<Fixture> {
    const dir = tmp.make();
    const repo = join(dir, 'repo');
    await gitfsOk(['init', '--repo', repo]);
    mkdirSync(join(repo, 'gitfs'), { recursive: true });
    writeFileSync(join(repo, 'gitfs', 'node.json'), JSON.stringify({ policies: [{ branches: 'kernel/*', history: 2 }] }));
    let n = 0;
    /** A commit on `branch` of one file, `image`, of 300 KiB of its own. */
    const commit = async (branch: string): Promise<Made> => {
      const tree = join(dir, `tree-${++n}`);
      mkdirSync(tree);
      writeFileSync(join(tree, 'image'), pseudoRandomBytes(300_000, `${branch} ${n}`));
      const out = JSON.parse(await gitfsOk(['commit', '--repo', repo, '--branch', branch, '--from', tree, '-m', `${n}`, '--json'])) as { commit: Oid };
      return { commit: out.commit, file: git(repo, ['ls-tree', '--format=%(objectname)', out.commit]).trim() as Oid };
    };
    const main = [await commit('main'), await commit('main')];
    const kernel: Made[] = [];
    for (let i = 1; i <= 5; i++) kernel.push(await commit('kernel/x'));
    await gitfsOk(['branch', '--repo', repo, 'create', 'kernel/y', 'main']);
    await commit('kernel/y');
    await commit('kernel/y');
    return { repo, kernel, mainFiles: main.map((m) => m.file) };
  }

  function has(repo: string, oid: string): boolean {
    return presentObjects(repo, [oid]) === 1;
  }

  /** The commits `commits` and what their trees name, but what the trees of `others` name. */
  function onlyIn(repo: string, commits: readonly Made[], others: readonly Made[]): Set<string> {
    const named = (k: Made): string[] => git(repo, ['rev-list', '--objects', `${k.commit}^{tree}`]).split('\n').map((l) => l.slice(0, 40)).filter((o) => o.length === 40);
    const shared = new Set(others.flatMap(named));
    return new Set([...commits.map((k) => k.commit), ...commits.flatMap(named).filter((o) => !shared.has(o))]);
  }

  it('keeps history: K generations of a limited branch and everything else, git fsck clean, reflogs expired', async () => {
    const f = await fixture();
    const [k1, k2, k3, k4, k5] = f.kernel as [Made, Made, Made, Made, Made];
    // The release blessed here is an old one: kept, with its own two generations.
    git(f.repo, ['update-ref', 'refs/gitfs/blessed/kernel/x', k2.commit]);
    ageObjects(f.repo, 2 * DAY_MS);
    const before = objectBytes(f.repo);
    const k3Only = [...onlyIn(f.repo, [k3], [k1, k2, k4, k5])];

    const out = JSON.parse(await gitfsOk(['prune', '--repo', f.repo, '--json'])) as { removedObjects: number; boundary: string[]; reflogEntriesDropped: number; freedBytes: number; youngObjects: number };
    git(f.repo, ['fsck', '--strict', '--no-dangling']);
    assert.equal(git(f.repo, ['rev-list', '--count', 'kernel/x']).trim(), '2', 'kernel/x: its last two generations');
    assert.equal(readFileSync(join(f.repo, 'shallow'), 'utf8'), `${k4.commit}\n`, 'the boundary of the kept window (the blessed one reaches a root)');
    assert.deepEqual(out.boundary, [k4.commit]);
    assert.equal(git(f.repo, ['rev-list', '--count', 'refs/gitfs/blessed/kernel/x']).trim(), '2', 'the blessed release: its two generations');
    for (const k of [k1, k2, k4, k5]) {
      const named = [...onlyIn(f.repo, [k], [])];
      assert.equal(presentObjects(f.repo, named), named.length, 'what a kept window names stays');
    }
    assert.equal(presentObjects(f.repo, k3Only), 0, 'k3 and all only it names are gone');
    assert.equal(git(f.repo, ['rev-list', '--count', 'main']).trim(), '2', 'main: no policy, all kept');
    for (const b of f.mainFiles) assert.ok(has(f.repo, b));
    assert.equal(git(f.repo, ['rev-list', '--count', 'kernel/y']).trim(), '4', 'kernel/y: what main keeps below its window is no boundary');
    assert.deepEqual(git(f.repo, ['log', '-g', '--format=%H', 'kernel/x']).trim().split('\n'), [k5, k4, k2, k1].map((k) => k.commit), 'the reflog names only what is kept');
    assert.equal(out.reflogEntriesDropped, 1);
    assert.equal(out.youngObjects, 0, JSON.stringify(out));
    assert.equal(out.removedObjects, k3Only.length);
    assert.ok(before - objectBytes(f.repo) >= 300_000, `freed ${before - objectBytes(f.repo)} bytes`);
    assert.ok(out.freedBytes >= 300_000);
    assert.equal((await gitfsBytes(['cat', '--repo', f.repo, 'kernel/x:image'])).stdout.length, 300_000);

    const again = JSON.parse(await gitfsOk(['prune', '--repo', f.repo, '--json'])) as { removedObjects: number; boundary: string[] };
    assert.equal(again.removedObjects, 0, 'a second prune finds nothing');
    git(f.repo, ['fsck', '--strict', '--no-dangling']);
  });

  it('leaves files younger than the grace period, removes nothing on a dry run, and keeps what a tag names', async () => {
    const f = await fixture();
    const [k1, k2, k3] = f.kernel as [Made, Made, Made];
    const gone = onlyIn(f.repo, [k1, k2, k3], f.kernel.slice(3));
    const young = JSON.parse(await gitfsOk(['prune', '--repo', f.repo, '--json'])) as { removedObjects: number; youngObjects: number };
    assert.equal(young.removedObjects, 0, 'all written just now');
    assert.equal(young.youngObjects, gone.size, 'k1 to k3 wait for the grace period');
    assert.ok(!existsSync(join(f.repo, 'shallow')), 'nothing cut while what lies past the cut is all here');
    assert.equal(git(f.repo, ['rev-list', '--count', 'kernel/x']).trim(), '5');
    assert.ok(has(f.repo, k1.file));
    git(f.repo, ['fsck', '--strict', '--no-dangling']);

    git(f.repo, ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', 'tag', '-a', '-m', 'first', 'v1', k1.commit]);
    const dry = JSON.parse(await gitfsOk(['prune', '--repo', f.repo, '--grace', '0', '--dry-run', '--json'])) as { removedObjects: number };
    assert.equal(dry.removedObjects, onlyIn(f.repo, [k2, k3], [k1, ...f.kernel.slice(3)]).size, 'k2 and k3 would go; the tag keeps k1');
    for (const k of f.kernel) assert.ok(has(f.repo, k.file), 'a dry run removes nothing');

    await gitfsOk(['prune', '--repo', f.repo, '--grace', '0']);
    git(f.repo, ['fsck', '--strict', '--no-dangling']);
    assert.ok(has(f.repo, k1.file), 'the tag keeps k1');
    assert.ok(!has(f.repo, k2.file));
  });

  it('refuses where git keeps a multi-pack-index or objects are precious (any git boolean), removing nothing', async () => {
    const f = await fixture();
    git(f.repo, ['multi-pack-index', 'write']);
    const r = await gitfs(['prune', '--repo', f.repo, '--grace', '0']);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /GITFS_PRUNE_REFUSED/);
    rmSync(join(f.repo, 'objects', 'pack', 'multi-pack-index'));
    git(f.repo, ['config', 'extensions.preciousObjects', 'yes']);
    const precious = await gitfs(['prune', '--repo', f.repo, '--grace', '0']);
    assert.equal(precious.code, 5, precious.stderr);
    assert.match(precious.stderr, /preciousObjects/);
    for (const k of f.kernel) assert.ok(has(f.repo, k.file));
  });

  it('removes git\'s commit-graph before the history it caches is cut (git fsck checks it)', async () => {
    const f = await fixture();
    git(f.repo, ['commit-graph', 'write', '--reachable']);
    await gitfsOk(['prune', '--repo', f.repo, '--grace', '0']);
    assert.ok(!existsSync(join(f.repo, 'objects', 'info', 'commit-graph')));
    git(f.repo, ['fsck', '--strict', '--no-dangling']);
    assert.equal(git(f.repo, ['rev-list', '--count', 'kernel/x']).trim(), '2');
  });

  it('leaves a valid repository when killed after any of its steps, and a later prune finishes the job', async () => {
    const f = await fixture();
    const [k1, k2, k3, k4, k5] = f.kernel as [Made, Made, Made, Made, Made];
    const goes = [...onlyIn(f.repo, [k1, k2, k3], [k4, k5])];
    // A commit-graph to remove, and a loose object no ref names (git wrote it).
    git(f.repo, ['commit-graph', 'write', '--reachable']);
    const loose = execFileSync('git', [`--git-dir=${f.repo}`, 'hash-object', '-w', '--stdin'], { input: pseudoRandomBytes(5000, 'loose'), encoding: 'utf8' }).trim();
    ageObjects(f.repo, 2 * DAY_MS);
    // Every step in order (src/util/crash-point.ts); the one loose object is set aside first, then the three packs of k1..k3.
    const points = [
      'prune:judged',
      'prune:commit-graph-removed',
      'prune:shallow-written',
      'prune:reflog-expired',
      'set-aside:moved',
      'set-aside:removing',
      'prune:loose-removed',
      'prune:packs-rewritten',
      'set-aside:moved#2',
      'set-aside:removing#2',
      'set-aside:removing#3',
      'prune:packs-removed',
    ];
    for (const point of points) {
      const copy = join(tmp.make(), 'repo');
      cpSync(f.repo, copy, { recursive: true, preserveTimestamps: true });
      const child = spawn(process.execPath, [...NODE_FLAGS, GITFS_BIN, 'prune', '--repo', copy], { stdio: 'ignore', env: { ...process.env, [CRASH_AT_VAR]: point } });
      const [, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
      assert.equal(signal, 'SIGKILL', `the prune never reached ${point}`);
      git(copy, ['fsck', '--strict', '--no-dangling']);
      for (const branch of ['main', 'kernel/x', 'kernel/y']) git(copy, ['rev-list', '--objects', branch]);
      // A lock the killed prune held (gitfs's mark kept) is broken once older than 30 s, as any writer's: that much time passes.
      for (const lock of [join(copy, 'shallow.lock'), join(copy, 'refs', 'heads', 'kernel', 'x.lock'), join(copy, 'logs', 'refs', 'heads', 'kernel', 'x.lock')]) {
        if (existsSync(lock)) utimesSync(lock, LOCK_MARK, new Date(Date.now() - 60_000));
      }
      await gitfsOk(['prune', '--repo', copy]);
      git(copy, ['fsck', '--strict', '--no-dangling']);
      assert.equal(git(copy, ['rev-list', '--count', 'kernel/x']).trim(), '2', point);
      assert.equal(presentObjects(copy, [...goes, loose]), 0, `after a kill at ${point}, the next prune removes what goes`);
      assert.deepEqual(readdirSync(join(copy, 'gitfs', 'pruning')), [], `after a kill at ${point}, nothing stays set aside`);
    }
  });

  it('runs in gitfs serve every prune.everyMs, while the daemon serves, leaving git fsck clean', async () => {
    const f = await fixture();
    const [k1, k2, k3, k4, k5] = f.kernel as [Made, Made, Made, Made, Made];
    writeFileSync(join(f.repo, 'gitfs', 'node.json'), JSON.stringify({ policies: [{ branches: 'kernel/*', history: 2 }], prune: { everyMs: 1000, graceMs: 60_000 } }));
    await gitfsOk(['cluster', 'init', '--repo', f.repo]);
    ageObjects(f.repo, 2 * DAY_MS);
    const goes = onlyIn(f.repo, [k1, k2, k3], [k4, k5]);
    const env = { GITFS_MULTICAST: 'off', GITFS_ADVERTISE: '127.0.0.1', GITFS_SERVICE_ADDRESS: '127.0.0.1', GITFS_MULTICAST_PORT: String(await freeUdpPort()), GITFS_SERVICE_PORT: String(await freeTcpPort()) };
    const node = await ServeProcess.start('pruning node', f.repo, env);
    try {
      const pruned = await waitFor('a prune', 30_000, () => node.find('pruned')[0], { diag: () => node.tail() });
      assert.equal(pruned['removedObjects'], goes.size, JSON.stringify(pruned));
      assert.equal(pruned['boundary'], 1);
      assert.equal(pruned['reflogEntriesDropped'], 3);
      git(f.repo, ['fsck', '--strict', '--no-dangling']);
      assert.equal(git(f.repo, ['rev-list', '--count', 'kernel/x']).trim(), '2');
      assert.equal(readFileSync(join(f.repo, 'shallow'), 'utf8'), `${k4.commit}\n`);
      // The packs it rewrote go 10 minutes later (a git command may have listed them): what they keep is in new packs already.
      await sleep(2500);
      assert.equal(node.find('pruned').length, 1, 'the next prunes find nothing more to do');
      assert.deepEqual(node.find('prune-failed'), []);
    } finally {
      await node.stop();
    }
  });

  it('drops reflog entries whose new id goes, nulls an old id that goes, and keeps unreadable lines', () => {
    const a = 'a'.repeat(40);
    const b = 'b'.repeat(40);
    const c = 'c'.repeat(40);
    const zero = '0'.repeat(40);
    const line = (o: string, n: string): string => `${o} ${n} T <t@e> 1700000000 +0000\tmsg`;
    const lines = [line(zero, a), line(a, b), line(b, c), 'garbage', ''];
    const kept = expiredLines(lines, (oid) => oid === c);
    assert.deepEqual(kept.lines, [line(zero, c), 'garbage', '']);
    assert.equal(kept.dropped, 2);
    assert.equal(expiredLines(lines, () => true).changed, false);
  });
});

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashObject } from '../../src/objects/oid.js';
import { git, gitfs, gitfsOk, type RunResult } from '../support/cli.js';
import { gitEnv } from '../support/git-env.js';
import { makeFixtureTree } from '../support/fixture-tree.js';
import { tempDirs } from '../support/tmp.js';

/** Writes raw object bytes with the real git, bypassing its checks (`--literally`). */
function writeLiteral(repo: string, type: string, content: Buffer): string {
  return execFileSync('git', [`--git-dir=${repo}`, 'hash-object', '-t', type, '--literally', '-w', '--stdin'], { input: content, encoding: 'utf8' }).trim();
}

function treeBytes(entries: Array<[string, string, string]>): Buffer {
  return Buffer.concat(entries.flatMap(([mode, name, oid]) => [Buffer.from(`${mode} ${name}\0`), Buffer.from(oid, 'hex')]));
}

function commitTo(repo: string, branch: string, tree: string): void {
  // gitEnv(): a fixed identity, so the real git needs none configured on the machine.
  const commit = execFileSync('git', [`--git-dir=${repo}`, 'commit-tree', tree, '-m', 'evil'], { encoding: 'utf8', env: gitEnv() }).trim();
  git(repo, ['update-ref', `refs/heads/${branch}`, commit]);
}

describe('bad input: clear errors with stable codes, nothing lost, nothing escapes', function () {
  const tmp = tempDirs();
  let repo: string;
  let blob: string;
  after(() => tmp.cleanup());

  before(async () => {
    repo = join(tmp.make(), 'repo');
    await gitfsOk(['init', '--repo', repo]);
    blob = writeLiteral(repo, 'blob', Buffer.from('payload\n'));
  });

  it('not a repository → exit 3, GITFS_NOT_A_REPOSITORY, also for the commands that ask the daemon; a repository nothing serves is GITFS_NOT_SERVING', async () => {
    const elsewhere = tmp.make();
    for (const args of [['log'], ['policy'], ['peers'], ['rollout', 'status'], ['fetch', 'main']]) {
      const r = await gitfs([...args, '--repo', elsewhere]);
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /GITFS_NOT_A_REPOSITORY/, args.join(' '));
    }
    const served = await gitfs(['policy', '--repo', repo]);
    assert.equal(served.code, 4, served.stderr);
    assert.match(served.stderr, /no node daemon runs for .* \[GITFS_NOT_SERVING\]/);
  });

  it('unknown branch, bad revision, bad path: exit 4 / 2 with their codes', async () => {
    const src = tmp.make();
    makeFixtureTree(src, { bigBytes: 300_000 });
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
    const cases: Array<[string[], number, string]> = [
      [['log', 'nosuch'], 4, 'GITFS_UNKNOWN_REVISION'],
      [['ls', 'main~5'], 4, 'GITFS_UNKNOWN_REVISION'],
      [['ls', 'main^^{tree}'], 2, 'GITFS_BAD_REVISION'],
      [['log', 'main@{999999999999 weeks ago}'], 2, 'GITFS_BAD_REVISION'],
      [['cat', 'main:no/such/file'], 4, 'GITFS_PATH_NOT_FOUND'],
      [['cat', 'main:etc'], 4, 'GITFS_WRONG_OBJECT_TYPE'],
      [['commit', '--branch', 'bad..name', '--from', src], 2, 'GITFS_BAD_BRANCH_NAME'],
      [['commit', '--branch', 'main', '--from', src, '-m', ''], 2, 'an empty commit message: give one, or leave -m out for "gitfs commit" [GITFS_BAD_ARGUMENT]'],
      [['commit', '--branch', 'main', '-m', ' \n'], 2, 'an empty commit message'],
      [['branch', 'delete', 'nosuch'], 4, 'GITFS_UNKNOWN_BRANCH'],
      [['branch', 'create', 'main'], 5, 'GITFS_BRANCH_EXISTS'],
      [['cat', 'main:README', '--offset', '-1'], 2, 'GITFS_BAD_ARGUMENT'],
      [['frobnicate'], 2, 'unknown command "frobnicate" [GITFS_BAD_ARGUMENT]'],
      [['rollout', 'publish', '--channel', 'site/prod', src, '--version', '1.0', '--sign', join(src, 'no-such.key')], 2, 'GITFS_BAD_ARGUMENT'],
    ];
    for (const [args, code, text] of cases) {
      const [command, ...rest] = args as [string, ...string[]];
      const r = await gitfs([command, '--repo', repo, ...rest]);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), args.join(' '));
      assert.doesNotMatch(r.stderr, /^\s+at /m, `${args.join(' ')}: a stack trace`);
    }
  });

  it('publishing a version already on the channel → exit 2, GITFS_BAD_ARGUMENT, channel unchanged; another channel takes it', async () => {
    const dir = tmp.make();
    const key = join(dir, 'release.key');
    await gitfsOk(['key', 'new', key]);
    const siteDir = join(dir, 'public');
    mkdirSync(siteDir);
    writeFileSync(join(siteDir, 'index.html'), '<h1>1.0</h1>\n');
    const publish = (channel: string, version: string): Promise<RunResult> => gitfs(['rollout', 'publish', '--repo', repo, '--channel', channel, siteDir, '--version', version, '--sign', key]);
    assert.equal((await publish('site/reuse', '1.0')).code, 0);
    assert.equal((await publish('site/reuse', '1.1')).code, 0);
    const head = git(repo, ['rev-parse', 'site/reuse']).trim();
    const again = await publish('site/reuse', '1.0');
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, /version 1\.0 was published on site\/reuse already .*\[GITFS_BAD_ARGUMENT\]/);
    assert.equal(git(repo, ['rev-parse', 'site/reuse']).trim(), head);
    const other = await publish('site/other', '1.0');
    assert.equal(other.code, 0, other.stderr);
  });

  it('a commit dated past what a date can show (git takes any digits) is listed with its raw time, not a crash', async () => {
    const tree = writeLiteral(repo, 'tree', treeBytes([['100644', 'f', blob]]));
    // Past what a JavaScript date holds, and in the year 10000 (its ISO form has six digits).
    for (const seconds of [99999999999999, 253402300800]) {
      const far = `@${seconds} +0000`;
      const commit = execFileSync('git', [`--git-dir=${repo}`, 'commit-tree', tree, '-m', 'far future'], { encoding: 'utf8', env: { ...gitEnv(), GIT_AUTHOR_DATE: far, GIT_COMMITTER_DATE: far } }).trim();
      git(repo, ['update-ref', 'refs/heads/far', commit]);
      for (const args of [['log', 'far'], ['show', 'far']]) {
        const r = await gitfs([...args, '--repo', repo]);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`@${seconds}\\b`), args.join(' '));
      }
    }
  });

  it('a branch made at a commit whose tree is not here → exit 4, GITFS_OBJECT_NOT_FOUND, no branch', async () => {
    const tree = hashObject('tree', treeBytes([['100644', 'never-stored', blob]]));
    const text = `tree ${tree}\nauthor T <t@example.com> 1700000000 +0000\ncommitter T <t@example.com> 1700000000 +0000\n\ntree missing\n`;
    const commit = execFileSync('git', [`--git-dir=${repo}`, 'hash-object', '-t', 'commit', '-w', '--stdin'], { encoding: 'utf8', input: text }).trim();
    const r = await gitfs(['branch', 'create', 'incomplete', commit, '--repo', repo]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /its tree [0-9a-f]{40} is missing.*\[GITFS_OBJECT_NOT_FOUND\]/);
    assert.doesNotMatch(git(repo, ['for-each-ref', '--format=%(refname)']), /incomplete/);
  });

  it('a missing or non-directory source → exit 7, GITFS_SOURCE_UNREADABLE, branch unchanged', async () => {
    const src = tmp.make();
    writeFileSync(join(src, 'a'), 'a');
    const before = git(repo, ['rev-parse', 'main']).trim();
    for (const from of [join(src, 'missing'), join(src, 'a')]) {
      const r = await gitfs(['commit', '--repo', repo, '--branch', 'main', '--from', from]);
      assert.equal(r.code, 7, r.stderr);
      assert.match(r.stderr, /GITFS_SOURCE_UNREADABLE/);
    }
    assert.equal(git(repo, ['rev-parse', 'main']).trim(), before);
  });

  it('hostile trees are refused and export never writes outside its target', async () => {
    const hostile: Array<[string, Buffer]> = [
      ['dotdot', treeBytes([['100644', '..', blob]])],
      ['dot', treeBytes([['100644', '.', blob]])],
      ['slash', treeBytes([['100644', '../../escaped', blob]])],
      ['duplicate', treeBytes([['100644', 'same', blob], ['100644', 'same', blob]])],
      ['unsorted', treeBytes([['100644', 'b', blob], ['100644', 'a', blob]])],
      ['badmode', treeBytes([['100777', 'x', blob]])],
      ['absurd', treeBytes([['40000', `big~gitfs~c${'9'.repeat(16)}`, writeLiteral(repo, 'tree', Buffer.alloc(0))]])],
      ['lying-size', treeBytes([['40000', 'f~gitfs~c999', writeLiteral(repo, 'tree', treeBytes([['100644', '0000000000000000', blob]]))]])],
      ['marker', treeBytes([['100644', 'x~gitfs~zz', blob]])],
      ['escaped-dotgit', treeBytes([['40000', '.git~gitfs~e', writeLiteral(repo, 'tree', treeBytes([['100644', 'config', blob]]))]])],
      ['escaped-dotdot', treeBytes([['100644', '..~gitfs~e', blob]])],
      ['escaped-noncanonical', treeBytes([['100644', 'plain~gitfs~e', blob]])],
      ['chunked-empty-name', treeBytes([['40000', '~gitfs~c5', writeLiteral(repo, 'tree', treeBytes([['100644', '0000000000000000', blob]]))]])],
      ['collide', treeBytes([['100644', 'a', blob], ['40000', 'a~gitfs~c8', writeLiteral(repo, 'tree', treeBytes([['100644', '0000000000000000', blob]]))]])],
    ];
    const parent = tmp.make();
    for (const [name, bytes] of hostile) {
      commitTo(repo, `evil/${name}`, writeLiteral(repo, 'tree', bytes));
      const target = join(parent, name, 'out');
      const r = await gitfs(['export', '--repo', repo, `evil/${name}`, target]);
      assert.equal(r.code, 6, `${name}: ${r.code} ${r.stderr}`);
      assert.match(r.stderr, /GITFS_HOSTILE_OBJECT/, name);
      // The directories the export made go with it; one that held anything written outside them would stay.
      assert.equal(existsSync(join(parent, name)), false, `${name} wrote outside its target, or left what it made`);
    }
    assert.equal(existsSync(join(parent, 'escaped')), false);
  });

  it('a flipped bit in a pack is GITFS_CORRUPT_OBJECT naming the object, and fsck names the paths, of every branch, that need it', async () => {
    const corruptRepo = join(tmp.make(), 'repo');
    await gitfsOk(['init', '--repo', corruptRepo]);
    const src = tmp.make();
    writeFileSync(join(src, 'victim.txt'), Buffer.alloc(50_000, 'v'));
    writeFileSync(join(src, 'other.txt'), 'fine\n');
    await gitfsOk(['commit', '--repo', corruptRepo, '--branch', 'main', '--from', src]);
    const victim = git(corruptRepo, ['rev-parse', 'main:victim.txt']).trim();
    const packDir = join(corruptRepo, 'objects/pack');
    const idxName = readdirSync(packDir).find((f) => f.endsWith('.idx')) as string;
    const offset = Number(
      execFileSync('git', ['verify-pack', '-v', join(packDir, idxName)], { encoding: 'utf8' })
        .split('\n')
        .find((l) => l.startsWith(victim))
        ?.split(/\s+/)[4],
    );
    const packPath = join(packDir, idxName.replace(/\.idx$/, '.pack'));
    const pack = readFileSync(packPath);
    pack[offset + 20] = (pack[offset + 20] as number) ^ 0x01;
    chmodSync(packPath, 0o644);
    writeFileSync(packPath, pack);
    const r = await gitfs(['cat', '--repo', corruptRepo, 'main:victim.txt']);
    assert.equal(r.code, 6);
    assert.match(r.stderr, new RegExp(`GITFS_CORRUPT_OBJECT`));
    assert.match(r.stderr, new RegExp(victim));
    assert.equal((await gitfs(['cat', '--repo', corruptRepo, 'main:other.txt'])).stdout, 'fine\n');
    // Another branch holds main's whole tree as a directory (one tree object, checked once): the same file at another path.
    const src2 = tmp.make();
    mkdirSync(join(src2, 'copy'));
    writeFileSync(join(src2, 'copy', 'victim.txt'), Buffer.alloc(50_000, 'v'));
    writeFileSync(join(src2, 'copy', 'other.txt'), 'fine\n');
    await gitfsOk(['commit', '--repo', corruptRepo, '--branch', 'dev', '--from', src2]);
    const f = await gitfs(['fsck', '--repo', corruptRepo]);
    assert.equal(f.code, 8);
    assert.match(f.stdout, new RegExp(`GITFS_CORRUPT_OBJECT ${victim}`));
    assert.match(f.stdout, /needed by main@[0-9a-f]{12}:victim\.txt/);
    assert.match(f.stdout, /needed by dev@[0-9a-f]{12}:copy\/victim\.txt/, 'every path that needs it is named, not the first found');
    assert.match(f.stdout, /of 2 branches: 2 problems\n$/, "the damaged pack, and the object");
  });

  it('log and stats stop at a shallow boundary (a commit whose parent this repository does not hold)', async () => {
    const shallowRepo = join(tmp.make(), 'repo');
    await gitfsOk(['init', '--repo', shallowRepo]);
    const tree = writeLiteral(shallowRepo, 'tree', treeBytes([['100644', 'a', writeLiteral(shallowRepo, 'blob', Buffer.from('a\n'))]]));
    const who = 'T <t@example.invalid> 1700000000 +0000';
    const absentParent = 'ab'.repeat(20);
    const boundary = writeLiteral(shallowRepo, 'commit', Buffer.from(`tree ${tree}\nparent ${absentParent}\nauthor ${who}\ncommitter ${who}\n\nboundary\n`));
    const tip = writeLiteral(shallowRepo, 'commit', Buffer.from(`tree ${tree}\nparent ${boundary}\nauthor ${who}\ncommitter ${who}\n\ntip\n`));
    git(shallowRepo, ['update-ref', 'refs/heads/main', tip]);
    // Without the shallow file a limited log still does not read past what it shows.
    assert.equal((await gitfs(['log', '--repo', shallowRepo, '-n', '2', '--oneline'])).code, 0);
    writeFileSync(join(shallowRepo, 'shallow'), `${boundary}\n`);
    const log = await gitfs(['log', '--repo', shallowRepo, '--oneline']);
    assert.equal(log.code, 0, log.stderr);
    assert.deepEqual(log.stdout.trim().split('\n').map((l) => l.split(' ').at(-1)), ['tip', 'boundary']);
    const stats = await gitfs(['stats', '--repo', shallowRepo]);
    assert.equal(stats.code, 0, stats.stderr);
  });

  it('fsck checks a chunk tree against every size that names it (one tree under two sizes, one of them a lie)', async () => {
    const shared = join(tmp.make(), 'repo');
    await gitfsOk(['init', '--repo', shared]);
    const chunk = writeLiteral(shared, 'blob', Buffer.from('payload\n'));
    const node = writeLiteral(shared, 'tree', treeBytes([['100644', '0000000000000000', chunk]]));
    commitTo(shared, 'main', writeLiteral(shared, 'tree', treeBytes([['40000', 'f~gitfs~c8', node], ['40000', 'g~gitfs~c9', node]])));
    assert.equal((await gitfs(['cat', '--repo', shared, 'main:f'])).stdout, 'payload\n');
    assert.match((await gitfs(['cat', '--repo', shared, 'main:g'])).stderr, /GITFS_HOSTILE_OBJECT/);
    const f = await gitfs(['fsck', '--repo', shared]);
    assert.equal(f.code, 8, f.stdout + f.stderr);
    assert.match(f.stdout, /GITFS_HOSTILE_OBJECT/);
    assert.match(f.stdout, /needed by main@[0-9a-f]{12}:g\b/);
  });

  it('a name holding a newline or a control character is printed escaped by ls, diff and show, one line each (--json keeps it as it is)', async () => {
    const own = join(tmp.make(), 'repo');
    await gitfsOk(['init', '--repo', own]);
    const src = tmp.make();
    writeFileSync(join(src, 'plain.txt'), 'p\n');
    await gitfsOk(['commit', '--repo', own, '--branch', 'main', '--from', src]);
    writeFileSync(join(src, 'two\nlines\x1b[31m.txt'), 'x\n');
    await gitfsOk(['commit', '--repo', own, '--branch', 'main', '--from', src]);
    const listed = await gitfsOk(['ls', '--repo', own, 'main']);
    assert.equal(listed.split('\n').length, 3, listed);
    assert.match(listed, / two\\x0alines\\x1b\[31m\.txt\n/);
    assert.match(await gitfsOk(['diff', '--repo', own, 'main~1', 'main']), /^A\ttwo\\x0alines\\x1b\[31m\.txt\n$/);
    assert.match(await gitfsOk(['show', '--repo', own, 'main']), /\ttwo\\x0alines\\x1b\[31m\.txt\n$/);
    const rows = (await gitfsOk(['ls', '--repo', own, '--json', 'main'])).trim().split('\n').map((l) => (JSON.parse(l) as { path: string }).path);
    assert.ok(rows.includes('two\nlines\x1b[31m.txt'));
  });
});

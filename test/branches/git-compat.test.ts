/**
 * RefStore against the real git CLI on a `git init --bare` repository holding real commits:
 * git reads what RefStore writes (rev-parse, reflog, for-each-ref, clone, fsck), and RefStore keeps
 * working after `git pack-refs --all` / `git gc` moved its refs into packed-refs.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Oid } from '../../src/objects/oid.js';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { RefStore } from '../../src/branches/ref-store.js';
import { gitRun, gitText } from '../support/git-env.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';
import { IDENTITY, filesBelow, realClock } from './helpers.js';

const X = parseBranchName('x');
const STABLE = parseBranchName('kernel/stable');
const Y = parseBranchName('y');

function assertFsckClean(gitDir: string): void {
  const r = gitRun(['fsck', '--strict', '--no-progress'], { gitDir });
  assert.equal(r.status, 0, `git fsck failed:\n${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(`${r.stdout}\n${r.stderr}`, /error|bad|invalid|broken|missing/i);
}

describe('branches/ref-store with the git CLI', function () {
  this.timeout(60_000);
  let gitDir: string;
  let store: RefStore;
  const commits: Oid[] = [];

  before(() => {
    gitDir = path.join(tempDir('git'), 'repo.git');
    gitText(['init', '-q', '--bare', '-b', 'main', gitDir]);
    gitText(['config', 'gc.auto', '0'], { gitDir });
    const blob = gitText(['hash-object', '-w', '--stdin'], { gitDir, input: 'hello\n' });
    const tree = gitText(['mktree'], { gitDir, input: `100644 blob ${blob}\thello.txt\n` });
    let parent: string | undefined;
    for (const msg of ['one', 'two', 'three', 'four']) {
      const c = gitText(['commit-tree', tree, ...(parent === undefined ? [] : ['-p', parent]), '-m', msg], { gitDir });
      commits.push(c as Oid);
      parent = c;
    }
    store = new RefStore({ gitDir, clock: realClock }, { identity: IDENTITY });
  });

  after(cleanupTempDirs);

  const c = (i: number): Oid => {
    const oid = commits[i];
    assert.ok(oid !== undefined);
    return oid;
  };

  it('git sees branches, reflogs and HEAD that RefStore writes', async () => {
    await store.update(X, { expected: null, next: c(0), message: 'branch: created x' });
    await store.update(X, { expected: c(0), next: c(1), message: 'commit: two' });
    await store.update(STABLE, { expected: null, next: c(0), message: 'branch: created kernel/stable' });
    await store.setHead(X);

    assert.equal(gitText(['rev-parse', 'x'], { gitDir }), c(1));
    assert.equal(gitText(['rev-parse', 'x@{1}'], { gitDir }), c(0));
    assert.equal(gitText(['rev-parse', 'kernel/stable'], { gitDir }), c(0));
    assert.equal(gitText(['symbolic-ref', 'HEAD'], { gitDir }), 'refs/heads/x');
    assert.equal(gitText(['rev-parse', 'HEAD'], { gitDir }), c(1));
    assert.equal(
      gitText(['log', '-g', '--format=%H|%gs|%gn|%ge', 'x'], { gitDir }),
      `${c(1)}|commit: two|${IDENTITY.name}|${IDENTITY.email}\n${c(0)}|branch: created x|${IDENTITY.name}|${IDENTITY.email}`,
    );
    assert.equal(gitText(['reflog', 'show', '--format=%gs', 'kernel/stable'], { gitDir }), 'branch: created kernel/stable');
    const refs = gitRun(['for-each-ref', '--format=%(refname) %(objectname)'], { gitDir });
    assert.equal(refs.stderr, '');
    assert.equal(refs.stdout, `refs/heads/kernel/stable ${c(0)}\nrefs/heads/x ${c(1)}`);
    assertFsckClean(gitDir);

    const clone = path.join(tempDir('clone'), 'work');
    gitText(['clone', '-q', gitDir, clone]);
    assert.equal(gitText(['-C', clone, 'rev-parse', 'HEAD']), c(1));
    assert.equal(gitText(['-C', clone, 'rev-parse', 'origin/kernel/stable']), c(0));
    assert.equal(fs.readFileSync(path.join(clone, 'hello.txt'), 'utf8'), 'hello\n');
  });

  it('RefStore reads reflog lines git wrote and appends after them', async () => {
    gitText(['-c', 'core.logAllRefUpdates=always', 'update-ref', '-m', 'made by git', 'refs/heads/y', c(0)], { gitDir });
    const log = await store.reflog(Y);
    assert.equal(log.length, 1);
    assert.equal(log[0]?.message, 'made by git');
    assert.equal(log[0]?.newOid, c(0));
    await store.update(Y, { expected: c(0), next: c(2), message: 'made by gitfs' });
    assert.equal(gitText(['log', '-g', '--format=%gs', 'y'], { gitDir }), 'made by gitfs\nmade by git');
    // git updates a branch RefStore created; RefStore sees it and its CAS notices the move
    gitText(['update-ref', '-m', 'git moved it', 'refs/heads/y', c(3), c(2)], { gitDir });
    assert.equal(await store.resolve(Y), c(3));
    assert.deepEqual(
      (await store.reflog(Y)).map((e) => e.message),
      ['made by git', 'made by gitfs', 'git moved it'],
    );
    await assert.rejects(store.update(Y, { expected: c(2), next: c(1), message: '' }), { code: 'GITFS_REF_CONFLICT' });
    await store.delete(Y, c(3));
    assert.equal(gitRun(['rev-parse', '--verify', '-q', 'y'], { gitDir }).status, 1);
  });

  it('keeps working after git pack-refs --all', async () => {
    gitText(['pack-refs', '--all'], { gitDir });
    assert.equal(fs.existsSync(path.join(gitDir, 'refs/heads/x')), false, 'git moved x into packed-refs');
    assert.match(fs.readFileSync(path.join(gitDir, 'packed-refs'), 'utf8'), /refs\/heads\/x$/m);

    assert.equal(await store.resolve(X), c(1));
    assert.deepEqual(await store.list(), [
      { name: STABLE, oid: c(0) },
      { name: X, oid: c(1) },
    ]);
    await store.update(X, { expected: c(1), next: c(2), message: 'commit: three' });
    assert.equal(gitText(['rev-parse', 'x'], { gitDir }), c(2));
    assert.equal(gitText(['log', '-g', '--format=%gs', 'x'], { gitDir }), 'commit: three\ncommit: two\nbranch: created x');

    gitText(['pack-refs', '--all'], { gitDir });
    await store.delete(X, c(2));
    assert.doesNotMatch(gitText(['show-ref'], { gitDir }), /refs\/heads\/x/);
    assert.doesNotMatch(fs.readFileSync(path.join(gitDir, 'packed-refs'), 'utf8'), /refs\/heads\/x$/m);
    assert.equal(gitRun(['rev-parse', '--verify', '-q', 'x'], { gitDir }).status, 1);
    assert.equal(fs.existsSync(path.join(gitDir, 'logs/refs/heads/x')), false, 'reflog deleted with the branch');
    assert.equal(await store.resolve(X), undefined);
    assert.equal(gitText(['show-ref'], { gitDir }), `${c(0)} refs/heads/kernel/stable`);
    assertFsckClean(gitDir);
  });

  it('keeps working after git gc, and deletes what gc packed', async () => {
    await store.update(X, { expected: null, next: c(3), message: 'branch: recreated x' });
    gitText(['gc', '-q'], { gitDir });
    assert.deepEqual(
      filesBelow(path.join(gitDir, 'refs/heads')).filter((f) => !f.endsWith('/')),
      [],
      'gc packed every loose branch (git may leave empty directories)',
    );
    assert.deepEqual(await store.list(), [
      { name: STABLE, oid: c(0) },
      { name: X, oid: c(3) },
    ]);
    assert.equal((await store.reflog(X)).length, 1, 'gc keeps young reflog entries');
    await store.delete(STABLE, c(0));
    assert.equal(gitText(['show-ref'], { gitDir }), `${c(3)} refs/heads/x`);
    assert.equal(fs.existsSync(path.join(gitDir, 'refs/heads/kernel')), false, 'emptied directories removed');
    assert.equal(fs.existsSync(path.join(gitDir, 'logs/refs/heads/kernel')), false);
    // `kernel` is now free as a name for git too
    await store.update(parseBranchName('kernel'), { expected: null, next: c(1), message: 'branch: kernel' });
    assert.equal(gitText(['rev-parse', 'kernel'], { gitDir }), c(1));
    assertFsckClean(gitDir);
  });
});

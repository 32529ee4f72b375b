/** RefStore: compare-and-swap updates, nested names, packed refs, deletion, HEAD, locks. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { ZERO_OID, type Oid } from '../../src/objects/oid.js';
import { DEFAULT_STALE_LOCK_MS, LockFile } from '../../src/branches/lock-file.js';
import { parseBranchName, type BranchName } from '../../src/branches/ref-name.js';
import { RefStore } from '../../src/branches/ref-store.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';
import { IDENTITY, ManualClock, fakeOid, filesBelow, markAsGitfs } from './helpers.js';

const A = fakeOid('a');
const B = fakeOid('b');
const C = fakeOid('c');
const b = (s: string): BranchName => parseBranchName(s);

const hasCode =
  (code: string, check?: (data: Readonly<Record<string, unknown>>) => boolean) =>
  (e: unknown): boolean =>
    isGitfsError(e) && e.code === code && (check === undefined || check(e.data));

function makeStore(clock = new ManualClock(), options: { staleLockMs?: number } = {}): { gitDir: string; store: RefStore; clock: ManualClock } {
  const gitDir = tempDir('store');
  fs.mkdirSync(path.join(gitDir, 'refs', 'heads'), { recursive: true });
  fs.writeFileSync(path.join(gitDir, 'HEAD'), 'ref: refs/heads/main\n');
  const store = new RefStore({ gitDir, clock }, { identity: IDENTITY, tzOffsetMinutes: 120, ...options });
  return { gitDir, store, clock };
}

describe('branches/ref-store', () => {
  after(cleanupTempDirs);

  it('creates, updates by compare-and-swap, and logs each update', async () => {
    const { gitDir, store, clock } = makeStore(new ManualClock(1_700_000_000_000));
    assert.equal(await store.resolve(b('main')), undefined);
    await store.update(b('main'), { expected: null, next: A, message: 'create' });
    clock.ms += 5000;
    await store.update(b('main'), { expected: A, next: B, message: 'advance' });
    assert.equal(await store.resolve(b('main')), B);
    assert.equal(fs.readFileSync(path.join(gitDir, 'refs/heads/main'), 'utf8'), `${B}\n`);
    assert.equal(
      fs.readFileSync(path.join(gitDir, 'logs/refs/heads/main'), 'utf8'),
      `${ZERO_OID} ${A} Gitfs Test <gitfs@example.com> 1700000000 +0200\tcreate\n` +
        `${A} ${B} Gitfs Test <gitfs@example.com> 1700000005 +0200\tadvance\n`,
    );
    const log = await store.reflog(b('main'));
    assert.deepEqual(
      log.map((e) => [e.oldOid, e.newOid, e.message, e.timestampSeconds]),
      [
        [ZERO_OID, A, 'create', 1_700_000_000],
        [A, B, 'advance', 1_700_000_005],
      ],
    );
    assert.deepEqual(filesBelow(path.join(gitDir, 'refs')), ['heads/', 'heads/main']);
  });

  it('refuses a stale expected value with REF_CONFLICT and changes nothing', async () => {
    const { gitDir, store } = makeStore();
    await store.update(b('main'), { expected: null, next: A, message: 'create' });
    await assert.rejects(
      store.update(b('main'), { expected: B, next: C, message: 'x' }),
      hasCode(ErrorCodes.REF_CONFLICT, (d) => d['branch'] === 'main' && d['expected'] === B && d['actual'] === A),
    );
    await assert.rejects(
      store.update(b('main'), { expected: null, next: C, message: 'x' }),
      hasCode(ErrorCodes.REF_CONFLICT, (d) => d['expected'] === null && d['actual'] === A),
    );
    await assert.rejects(
      store.update(b('other'), { expected: A, next: C, message: 'x' }),
      hasCode(ErrorCodes.REF_CONFLICT, (d) => d['expected'] === A && d['actual'] === null),
    );
    assert.equal(await store.resolve(b('main')), A);
    assert.equal((await store.reflog(b('main'))).length, 1);
    assert.equal(await store.resolve(b('other')), undefined);
    assert.deepEqual(filesBelow(path.join(gitDir, 'refs')), ['heads/', 'heads/main']);
    assert.deepEqual(filesBelow(path.join(gitDir, 'logs')), ['refs/', 'refs/heads/', 'refs/heads/main']);
  });

  it('validates its arguments', async () => {
    const { store } = makeStore();
    await assert.rejects(store.update('a..b' as BranchName, { expected: null, next: A, message: '' }), hasCode(ErrorCodes.BAD_BRANCH_NAME));
    await assert.rejects(store.update(b('x'), { expected: null, next: 'nope' as Oid, message: '' }), hasCode(ErrorCodes.BAD_ARGUMENT));
    await assert.rejects(store.update(b('x'), { expected: null, next: ZERO_OID, message: '' }), hasCode(ErrorCodes.BAD_ARGUMENT));
    await assert.rejects(store.resolve('-x' as BranchName), hasCode(ErrorCodes.BAD_BRANCH_NAME));
    assert.throws(
      () => new RefStore({ gitDir: '/nonexistent', clock: new ManualClock() }, { identity: { name: 'a>b', email: '' } }),
      hasCode(ErrorCodes.BAD_ARGUMENT),
    );
  });

  it('handles nested names, lists sorted, and keeps a and a/b exclusive (BRANCH_EXISTS)', async () => {
    const { gitDir, store } = makeStore();
    await store.update(b('kernel/stable'), { expected: null, next: A, message: '' });
    await store.update(b('kernel/next/rc'), { expected: null, next: B, message: '' });
    await store.update(b('main'), { expected: null, next: C, message: '' });
    await store.update(b('kernel-x'), { expected: null, next: C, message: '' });
    assert.deepEqual(await store.list(), [
      { name: 'kernel-x', oid: C },
      { name: 'kernel/next/rc', oid: B },
      { name: 'kernel/stable', oid: A },
      { name: 'main', oid: C },
    ]);
    await assert.rejects(
      store.update(b('kernel'), { expected: null, next: A, message: '' }),
      hasCode(ErrorCodes.BRANCH_EXISTS, (d) => typeof d['conflictsWith'] === 'string' && String(d['conflictsWith']).startsWith('kernel/')),
    );
    await assert.rejects(
      store.update(b('main/sub'), { expected: null, next: A, message: '' }),
      hasCode(ErrorCodes.BRANCH_EXISTS, (d) => d['conflictsWith'] === 'main'),
    );
    await assert.rejects(
      store.update(b('main/sub/deeper'), { expected: null, next: A, message: '' }),
      hasCode(ErrorCodes.BRANCH_EXISTS, (d) => d['conflictsWith'] === 'main'),
    );
    await assert.rejects(store.delete(b('main/sub'), undefined), hasCode(ErrorCodes.UNKNOWN_BRANCH));
    // Deleting the nested branches removes their directories, so `kernel` can be created.
    await store.delete(b('kernel/stable'), A);
    await store.delete(b('kernel/next/rc'), undefined);
    assert.deepEqual(filesBelow(path.join(gitDir, 'refs/heads')), ['kernel-x', 'main']);
    assert.deepEqual(filesBelow(path.join(gitDir, 'logs/refs/heads')), ['kernel-x', 'main']);
    await store.update(b('kernel'), { expected: null, next: A, message: '' });
    assert.equal(await store.resolve(b('kernel')), A);
    assert.equal(await store.resolve(b('kernel/stable')), undefined);
  });

  it('clears empty directories left where a ref goes (e.g. by a crash)', async () => {
    const { gitDir, store } = makeStore();
    fs.mkdirSync(path.join(gitDir, 'refs/heads/x/y/z'), { recursive: true });
    fs.mkdirSync(path.join(gitDir, 'logs/refs/heads/x/y'), { recursive: true });
    await store.update(b('x'), { expected: null, next: A, message: '' });
    assert.equal(await store.resolve(b('x')), A);
    assert.equal((await store.reflog(b('x'))).length, 1);
  });

  it('deletes with compare-and-swap; unknown branches are UNKNOWN_BRANCH', async () => {
    const { gitDir, store } = makeStore();
    await assert.rejects(store.delete(b('nope'), undefined), hasCode(ErrorCodes.UNKNOWN_BRANCH));
    await assert.rejects(store.delete(b('deep/nope'), A), hasCode(ErrorCodes.UNKNOWN_BRANCH));
    assert.deepEqual(filesBelow(path.join(gitDir, 'refs')), ['heads/'], 'no directory left for the lock');
    await store.update(b('main'), { expected: null, next: A, message: '' });
    await assert.rejects(
      store.delete(b('main'), B),
      hasCode(ErrorCodes.REF_CONFLICT, (d) => d['expected'] === B && d['actual'] === A),
    );
    assert.equal(await store.resolve(b('main')), A);
    await store.delete(b('main'), A);
    assert.equal(await store.resolve(b('main')), undefined);
    assert.deepEqual(await store.reflog(b('main')), []);
    assert.deepEqual(filesBelow(path.join(gitDir, 'refs')), ['heads/']);
    assert.equal(fs.existsSync(path.join(gitDir, 'logs/refs/heads/main')), false);
  });

  it('reads packed refs; loose wins; delete removes the packed entry too', async () => {
    const { gitDir, store } = makeStore();
    const tag = fakeOid('tag');
    const peeled = fakeOid('peeled');
    fs.writeFileSync(
      path.join(gitDir, 'packed-refs'),
      `# pack-refs with: peeled fully-peeled sorted \n${A} refs/heads/main\n${B} refs/heads/packed/only\n${tag} refs/tags/v1\n^${peeled}\n`,
    );
    assert.equal(await store.resolve(b('main')), A);
    assert.deepEqual(await store.list(), [
      { name: 'main', oid: A },
      { name: 'packed/only', oid: B },
    ]);
    // update from the packed value writes a loose ref that shadows it
    await store.update(b('main'), { expected: A, next: C, message: 'over packed' });
    assert.equal(await store.resolve(b('main')), C);
    assert.deepEqual((await store.list()).find((r) => r.name === 'main'), { name: 'main', oid: C });
    assert.equal((await store.reflog(b('main')))[0]?.oldOid, A);
    // creating next to a packed-only branch respects the hierarchy
    await assert.rejects(store.update(b('packed'), { expected: null, next: A, message: '' }), hasCode(ErrorCodes.BRANCH_EXISTS));
    await assert.rejects(store.update(b('packed/only/x'), { expected: null, next: A, message: '' }), hasCode(ErrorCodes.BRANCH_EXISTS));
    // delete a branch that is both loose and packed, and one that is only packed
    await store.delete(b('main'), C);
    assert.equal(await store.resolve(b('main')), undefined, 'the old packed value must not resurface');
    await store.delete(b('packed/only'), B);
    assert.deepEqual(await store.list(), []);
    assert.equal(
      fs.readFileSync(path.join(gitDir, 'packed-refs'), 'utf8'),
      `# pack-refs with: peeled fully-peeled sorted \n${tag} refs/tags/v1\n^${peeled}\n`,
    );
    assert.deepEqual(filesBelow(path.join(gitDir, 'refs')), ['heads/']);
  });

  it('refuses symbolic and garbage ref files with IO; lists neither; names the garbage ones, and deletes one when nothing is expected of it', async () => {
    const { gitDir, store } = makeStore();
    fs.writeFileSync(path.join(gitDir, 'refs/heads/sym'), 'ref: refs/heads/main\n');
    fs.writeFileSync(path.join(gitDir, 'refs/heads/junk'), 'hello\n');
    fs.writeFileSync(path.join(gitDir, 'refs/heads/empty'), '');
    await assert.rejects(store.resolve(b('sym')), hasCode(ErrorCodes.IO, (d) => d['symbolic'] === true));
    await assert.rejects(store.resolve(b('junk')), hasCode(ErrorCodes.IO));
    await assert.rejects(store.resolve(b('empty')), hasCode(ErrorCodes.IO));
    await assert.rejects(store.update(b('junk'), { expected: null, next: A, message: '' }), hasCode(ErrorCodes.IO));
    assert.equal(fs.existsSync(path.join(gitDir, 'refs/heads/junk.lock')), false, 'lock released on failure');
    // Listed, the broken ones are left out (as git ignores a broken ref) and named by broken(); a symbolic one is an alias, neither.
    assert.deepEqual(await store.list(), []);
    assert.deepEqual((await store.broken()).map((x) => x.branch), ['empty', 'junk']);
    assert.deepEqual(await store.removeBroken(b('junk')), { packed: undefined, logged: undefined });
    await assert.rejects(store.delete(b('empty'), undefined), hasCode(ErrorCodes.IO), 'delete reads the value it removes');
    await assert.rejects(store.removeBroken(b('sym')), hasCode(ErrorCodes.BAD_ARGUMENT), 'a symbolic ref is no broken one');
    assert.deepEqual((await store.broken()).map((x) => x.branch), ['empty']);
    // a ref file without a newline, or with one, is fine (git accepts both)
    fs.writeFileSync(path.join(gitDir, 'refs/heads/sym'), A);
    assert.equal(await store.resolve(b('sym')), A);
  });

  it('ignores lock files and dot files when listing', async () => {
    const { gitDir, store } = makeStore();
    await store.update(b('main'), { expected: null, next: A, message: '' });
    fs.writeFileSync(path.join(gitDir, 'refs/heads/other.lock'), B);
    fs.writeFileSync(path.join(gitDir, 'refs/heads/.hidden'), B);
    assert.deepEqual(await store.list(), [{ name: 'main', oid: A }]);
  });

  it('reads and sets HEAD atomically; a detached HEAD names its commit', async () => {
    const { gitDir, store } = makeStore();
    assert.equal(await store.readHead(), 'main');
    await store.setHead(b('kernel/stable'));
    assert.equal(fs.readFileSync(path.join(gitDir, 'HEAD'), 'utf8'), 'ref: refs/heads/kernel/stable\n');
    assert.equal(await store.readHead(), 'kernel/stable');
    assert.equal(fs.existsSync(path.join(gitDir, 'HEAD.lock')), false);
    // Detached, as git leaves it: a commit, and no branch.
    fs.writeFileSync(path.join(gitDir, 'HEAD'), `${A}\n`);
    assert.deepEqual(await store.headTarget(), { commit: A });
    assert.equal(await store.readHead(), undefined);
    fs.writeFileSync(path.join(gitDir, 'HEAD'), 'ref: refs/tags/v1\n');
    await assert.rejects(store.readHead(), hasCode(ErrorCodes.BAD_REVISION));
  });

  it('a lock held by a live writer makes updates fail with REF_CONFLICT', async () => {
    const { gitDir, store, clock } = makeStore();
    await store.update(b('main'), { expected: null, next: A, message: '' });
    const other = await LockFile.acquire(path.join(gitDir, 'refs/heads/main'), { clock });
    await assert.rejects(
      store.update(b('main'), { expected: A, next: B, message: '' }),
      hasCode(ErrorCodes.REF_CONFLICT, (d) => d['branch'] === 'main' && d['reason'] === 'locked'),
    );
    await assert.rejects(store.delete(b('main'), undefined), hasCode(ErrorCodes.REF_CONFLICT));
    await store.setHead(b('main')); // other refs are not affected by the lock
    await other.release();
    await store.update(b('main'), { expected: A, next: B, message: '' });
    assert.equal(await store.resolve(b('main')), B);
    assert.equal((await store.reflog(b('main'))).length, 2);
  });

  it('recovers a stale lock left by a crashed writer (injected clock)', async () => {
    const { gitDir, store, clock } = makeStore();
    await store.update(b('main'), { expected: null, next: A, message: '' });
    const lockPath = path.join(gitDir, 'refs/heads/main.lock');
    fs.writeFileSync(lockPath, `${C}\n`); // a writer died after writing its lock
    markAsGitfs(lockPath);
    clock.ms = fs.statSync(lockPath).mtimeMs + 1000;
    await assert.rejects(store.update(b('main'), { expected: A, next: B, message: '' }), hasCode(ErrorCodes.REF_CONFLICT));
    clock.ms += DEFAULT_STALE_LOCK_MS;
    await store.update(b('main'), { expected: A, next: B, message: 'after recovery' });
    assert.equal(await store.resolve(b('main')), B);
    assert.deepEqual(filesBelow(path.join(gitDir, 'refs/heads')), ['main']);
  });

  it('honours staleLockMs', async () => {
    const { gitDir, store, clock } = makeStore(new ManualClock(), { staleLockMs: 10 });
    const lockPath = path.join(gitDir, 'refs/heads/x.lock');
    fs.writeFileSync(lockPath, '');
    markAsGitfs(lockPath);
    clock.ms = fs.statSync(lockPath).mtimeMs + 11;
    await store.update(b('x'), { expected: null, next: A, message: '' });
    assert.equal(await store.resolve(b('x')), A);
  });

  it('appends cleanly after a torn reflog line', async () => {
    const { gitDir, store } = makeStore();
    await store.update(b('main'), { expected: null, next: A, message: 'one' });
    fs.appendFileSync(path.join(gitDir, 'logs/refs/heads/main'), `${A} ${B} Torn <t`);
    assert.equal((await store.reflog(b('main'))).length, 1);
    await store.update(b('main'), { expected: A, next: B, message: 'two' });
    assert.deepEqual(
      (await store.reflog(b('main'))).map((e) => e.message),
      ['one', 'two'],
    );
  });

  it('will not create a ref while another writer is creating branches below it', async () => {
    const { gitDir, store } = makeStore();
    fs.mkdirSync(path.join(gitDir, 'refs/heads/main/x'), { recursive: true });
    fs.writeFileSync(path.join(gitDir, 'refs/heads/main/x/y.lock'), '');
    await assert.rejects(
      store.update(b('main'), { expected: null, next: A, message: '' }),
      hasCode(ErrorCodes.REF_CONFLICT, (d) => d['conflictsWith'] === 'main/'),
    );
    assert.deepEqual(await store.reflog(b('main')), []);
    assert.equal(fs.existsSync(path.join(gitDir, 'refs/heads/main.lock')), false);
  });
});

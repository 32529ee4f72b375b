/** Lock files: exclusive creation, atomic commit, release, stale-lock breaking with an injected clock. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_STALE_LOCK_MS, FOREIGN_STALE_MS, LOCK_MARK, LockFile, acquireWaiting, writeFileLocked } from '../../src/branches/lock-file.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';
import { ManualClock, filesBelow, markAsGitfs } from './helpers.js';

const isCode =
  (code: string, reason?: string) =>
  (e: unknown): boolean =>
    isGitfsError(e) && e.code === code && (reason === undefined || e.data['reason'] === reason);

describe('branches/lock-file', () => {
  after(cleanupTempDirs);

  it('writes through <path>.lock and leaves nothing else behind', async () => {
    const dir = tempDir('lock');
    const target = path.join(dir, 'file');
    fs.writeFileSync(target, 'old\n');
    const lock = await LockFile.acquire(target, { clock: new ManualClock() });
    assert.equal(fs.existsSync(`${target}.lock`), true);
    const mode = fs.statSync(`${target}.lock`).mode & 0o777;
    assert.equal(mode & ~0o644, 0, `lock mode ${mode.toString(8)}`);
    await lock.write('new');
    await lock.write('\n');
    assert.equal(fs.readFileSync(target, 'utf8'), 'old\n', 'target untouched before commit');
    await lock.commit();
    await lock.release(); // no-op after commit
    assert.equal(fs.readFileSync(target, 'utf8'), 'new\n');
    assert.deepEqual(filesBelow(dir), ['file']);
  });

  it('release abandons the new content and removes the lock', async () => {
    const dir = tempDir('lock');
    const target = path.join(dir, 'file');
    const lock = await LockFile.acquire(target, { clock: new ManualClock() });
    await lock.write('x');
    await lock.release();
    await lock.release();
    assert.deepEqual(filesBelow(dir), []);
  });

  it('a second writer gets REF_CONFLICT while the lock is held', async () => {
    const dir = tempDir('lock');
    const target = path.join(dir, 'file');
    const clock = new ManualClock();
    const first = await LockFile.acquire(target, { clock });
    await assert.rejects(LockFile.acquire(target, { clock }), isCode(ErrorCodes.REF_CONFLICT, 'locked'));
    await first.release();
    await writeFileLocked(target, 'ok', { clock });
    assert.equal(fs.readFileSync(target, 'utf8'), 'ok');
  });

  it('creates parent directories only when asked', async () => {
    const dir = tempDir('lock');
    const target = path.join(dir, 'a', 'b', 'file');
    await assert.rejects(writeFileLocked(target, 'x', { clock: new ManualClock() }), isCode(ErrorCodes.IO));
    await writeFileLocked(target, 'x', { clock: new ManualClock(), createParents: true });
    assert.equal(fs.readFileSync(target, 'utf8'), 'x');
  });

  it('breaks a lock older than the stale age (default 30 s), not a younger one', async () => {
    const dir = tempDir('lock');
    const target = path.join(dir, 'file');
    fs.writeFileSync(`${target}.lock`, 'left by a crashed writer');
    markAsGitfs(`${target}.lock`);
    const clock = new ManualClock(fs.statSync(`${target}.lock`).mtimeMs);
    clock.ms += DEFAULT_STALE_LOCK_MS - 1000;
    await assert.rejects(writeFileLocked(target, 'x', { clock }), isCode(ErrorCodes.REF_CONFLICT, 'locked'));
    clock.ms += 2000;
    await writeFileLocked(target, 'x', { clock });
    assert.equal(fs.readFileSync(target, 'utf8'), 'x');
    assert.deepEqual(filesBelow(dir), ['file'], 'stale lock and its moved-aside copy are gone');
  });

  it('breaks a lock gitfs did not make only once 10 minutes old (git holds its locks as long as it needs, and renames them over the file after)', async () => {
    const dir = tempDir('lock');
    const target = path.join(dir, 'packed-refs');
    fs.writeFileSync(`${target}.lock`, 'what a stopped git pack-refs wrote so far');
    const clock = new ManualClock(fs.statSync(`${target}.lock`).mtimeMs + FOREIGN_STALE_MS - 1000);
    await assert.rejects(writeFileLocked(target, 'x', { clock }), isCode(ErrorCodes.REF_CONFLICT, 'foreign'));
    assert.equal(fs.readFileSync(`${target}.lock`, 'utf8'), 'what a stopped git pack-refs wrote so far');
    assert.deepEqual(filesBelow(dir), ['packed-refs.lock']);
    clock.ms += 2000;
    await writeFileLocked(target, 'x', { clock });
    assert.deepEqual(filesBelow(dir), ['packed-refs']);
    // One gitfs made is marked from the start, keeps its mark while it is touched, and when read (relatime).
    const held = await LockFile.acquire(path.join(dir, 'other'), { clock: { now: (): number => Date.now() }, staleLockMs: 300 });
    await held.write('its content');
    await sleep(250);
    assert.equal(fs.readFileSync(path.join(dir, 'other.lock'), 'utf8'), 'its content');
    assert.equal(fs.statSync(path.join(dir, 'other.lock')).atime.getTime(), LOCK_MARK.getTime());
    await held.release();
  });

  it('honours a custom stale age', async () => {
    const dir = tempDir('lock');
    const target = path.join(dir, 'file');
    fs.writeFileSync(`${target}.lock`, '');
    const old = new Date(Date.now() - 5000);
    fs.utimesSync(`${target}.lock`, LOCK_MARK, old);
    const clock = { now: (): number => Date.now() };
    await assert.rejects(writeFileLocked(target, 'x', { clock }), isCode(ErrorCodes.REF_CONFLICT));
    await writeFileLocked(target, 'x', { clock, staleLockMs: 1000 });
    assert.deepEqual(filesBelow(dir), ['file']);
  });

  it('a writer whose lock was broken as stale cannot commit over the new value', async () => {
    const dir = tempDir('lock');
    const target = path.join(dir, 'file');
    const clock = new ManualClock();
    const slow = await LockFile.acquire(target, { clock });
    await slow.write('slow');
    clock.ms += DEFAULT_STALE_LOCK_MS + 1000;
    await writeFileLocked(target, 'fast', { clock });
    await assert.rejects(slow.commit(), isCode(ErrorCodes.REF_CONFLICT, 'lock-broken'));
    await slow.release();
    assert.equal(fs.readFileSync(target, 'utf8'), 'fast');
    assert.deepEqual(filesBelow(dir), ['file']);
  });

  it('a holder keeps its lock fresh while it holds it longer than the stale age: nobody breaks it, and it commits', async () => {
    const dir = tempDir('lock');
    const target = path.join(dir, 'file');
    const clock = { now: (): number => Date.now() };
    const holder = await LockFile.acquire(target, { clock, staleLockMs: 600 });
    await holder.write('held');
    // 2 s, over three times the stale age: every try of another writer finds it held.
    const until = Date.now() + 2000;
    let tries = 0;
    while (Date.now() < until) {
      await assert.rejects(writeFileLocked(target, 'other', { clock, staleLockMs: 600 }), isCode(ErrorCodes.REF_CONFLICT, 'locked'));
      tries++;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(tries >= 10, `${tries} tries`);
    await holder.commit();
    await holder.release();
    assert.equal(fs.readFileSync(target, 'utf8'), 'held');
    assert.deepEqual(filesBelow(dir), ['file']);
  });

  it('release does not remove a lock that another writer now holds', async () => {
    const dir = tempDir('lock');
    const target = path.join(dir, 'file');
    const clock = new ManualClock();
    const slow = await LockFile.acquire(target, { clock });
    clock.ms += DEFAULT_STALE_LOCK_MS + 1000;
    const other = await LockFile.acquire(target, { clock });
    await slow.release();
    assert.equal(fs.existsSync(`${target}.lock`), true, "the other writer's lock survives");
    assert.equal(await other.stillHeld(), true);
    await other.release();
    assert.deepEqual(filesBelow(dir), []);
  });

  it('rejects a nonsensical stale age', async () => {
    const dir = tempDir('lock');
    await assert.rejects(
      LockFile.acquire(path.join(dir, 'f'), { clock: new ManualClock(), staleLockMs: -1 }),
      isCode(ErrorCodes.BAD_ARGUMENT),
    );
  });

  it('a wait for a held lock ends after its time in real waits, even under a clock that stands still', async () => {
    const target = path.join(tempDir('lock'), 'file');
    const clock = new ManualClock();
    const held = await LockFile.acquire(target, { clock });
    try {
      const started = Date.now();
      await assert.rejects(acquireWaiting(target, { clock, waitMs: 300 }), isCode(ErrorCodes.REF_CONFLICT));
      assert.ok(Date.now() - started < 5000, `waited ${Date.now() - started} ms`);
    } finally {
      await held.release();
    }
  });
});

/**
 * Two real Node processes racing compare-and-swap updates on one branch: exactly one of each race
 * wins, the loser gets REF_CONFLICT, and the reflog holds one line per successful update, chained
 * in the order the updates happened.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from '../../src/errors.js';
import { ZERO_OID } from '../../src/objects/oid.js';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { RefStore, type ReflogEntry } from '../../src/branches/ref-store.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';
import type { WorkerReply, WorkerRequest } from './race-worker.js';
import { IDENTITY, fakeOid, filesBelow, realClock } from './helpers.js';

const WORKER = fileURLToPath(new URL('./race-worker.js', import.meta.url));
const ROUNDS = 150;
const FREE_ITERATIONS = 200;

interface Worker {
  readonly child: ChildProcess;
  readonly stderr: string[];
  request(msg: WorkerRequest): Promise<WorkerReply>;
}

function startWorker(gitDir: string, tag: string): Worker {
  const child = spawn(process.execPath, [WORKER, gitDir, tag], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const stderr: string[] = [];
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  return {
    child,
    stderr,
    request(msg) {
      return new Promise((resolve, reject) => {
        const onExit = (code: number | null): void => reject(new Error(`worker ${tag} exited (${code}): ${stderr.join('')}`));
        child.once('exit', onExit);
        child.once('message', (reply: WorkerReply) => {
          child.off('exit', onExit);
          if (reply.type === 'error') reject(new Error(`worker ${tag}: ${reply.message}`));
          else resolve(reply);
        });
        child.send(msg);
      });
    },
  };
}

function assertChained(log: readonly ReflogEntry[]): void {
  assert.equal(log[0]?.oldOid, ZERO_OID);
  for (let i = 1; i < log.length; i++) {
    assert.equal(log[i]?.oldOid, log[i - 1]?.newOid, `reflog line ${i + 1} does not continue line ${i}`);
  }
}

describe('branches/ref-store: two processes racing', function () {
  this.timeout(120_000);
  const workers: Worker[] = [];
  let gitDir: string;
  let store: RefStore;

  before(() => {
    assert.ok(fs.existsSync(WORKER), `compile first: ${WORKER}`);
    gitDir = tempDir('race');
    fs.mkdirSync(path.join(gitDir, 'refs', 'heads'), { recursive: true });
    store = new RefStore({ gitDir, clock: realClock }, { identity: IDENTITY });
    workers.push(startWorker(gitDir, 'A'), startWorker(gitDir, 'B'));
  });

  after(async () => {
    for (const w of workers) {
      if (w.child.exitCode === null && w.child.signalCode === null) {
        const exited = new Promise((r) => w.child.once('exit', r));
        if (w.child.connected) w.child.send({ type: 'exit' } satisfies WorkerRequest);
        const timer = setTimeout(() => w.child.kill(), 5000);
        await exited;
        clearTimeout(timer);
      }
    }
    cleanupTempDirs();
  });

  it(`exactly one of two processes wins each of ${ROUNDS} races from the same expected value`, async () => {
    const [a, b] = workers;
    assert.ok(a !== undefined && b !== undefined);
    const branch = parseBranchName('race/rounds');
    const initial = fakeOid('initial');
    await store.update(branch, { expected: null, next: initial, message: 'start' });
    let expected: string = initial;
    const winners: string[] = [];
    const loserReasons = new Map<string, number>();
    for (let round = 0; round < ROUNDS; round++) {
      const nextA = fakeOid(`A-${round}`);
      const nextB = fakeOid(`B-${round}`);
      const startAt = Date.now() + 5;
      const replies: WorkerReply[] = await Promise.all([
        a.request({ type: 'round', branch, round, expected, next: nextA, startAt }),
        b.request({ type: 'round', branch, round, expected, next: nextB, startAt }),
      ]);
      const [ra, rb] = replies;
      assert.ok(ra?.type === 'round' && rb?.type === 'round');
      assert.equal(Number(ra.ok) + Number(rb.ok), 1, `round ${round}: exactly one winner (${JSON.stringify([ra, rb])})`);
      const loser = ra.ok ? rb : ra;
      assert.equal(loser.code, ErrorCodes.REF_CONFLICT);
      loserReasons.set(String(loser.reason), (loserReasons.get(String(loser.reason)) ?? 0) + 1);
      expected = ra.ok ? nextA : nextB;
      winners.push(expected);
    }
    assert.equal(await store.resolve(branch), expected);
    const log = await store.reflog(branch);
    assert.equal(log.length, ROUNDS + 1, 'one reflog line per successful update');
    assertChained(log);
    assert.deepEqual(
      log.slice(1).map((e) => e.newOid),
      winners,
    );
    assert.ok([...loserReasons.keys()].every((r) => r === 'locked' || r === 'moved'), JSON.stringify([...loserReasons]));
    assert.deepEqual(filesBelow(path.join(gitDir, 'refs/heads')), ['race/', 'race/rounds'], 'no lock left behind');
  });

  it(`free-running read-then-swap loops keep the reflog one line per success, in order`, async () => {
    const [a, b] = workers;
    assert.ok(a !== undefined && b !== undefined);
    const branch = parseBranchName('free');
    await store.update(branch, { expected: null, next: fakeOid('free-start'), message: 'start' });
    const [ra, rb] = await Promise.all([
      a.request({ type: 'free', branch, iterations: FREE_ITERATIONS }),
      b.request({ type: 'free', branch, iterations: FREE_ITERATIONS }),
    ]);
    assert.ok(ra.type === 'free' && rb.type === 'free');
    const log = await store.reflog(branch);
    assert.equal(log.length, 1 + ra.ok + rb.ok);
    assertChained(log);
    const final = await store.resolve(branch);
    assert.equal(final, log[log.length - 1]?.newOid);
    assert.ok([...ra.wins, ...rb.wins].includes(final ?? ''), 'final value is one of the written ones');
    assert.deepEqual(
      log.slice(1).map((e) => e.newOid).sort(),
      [...ra.wins, ...rb.wins].sort(),
    );
    assert.equal(ra.ok + ra.conflicts, FREE_ITERATIONS);
    assert.equal(rb.ok + rb.conflicts, FREE_ITERATIONS);
    assert.deepEqual(filesBelow(path.join(gitDir, 'refs/heads')), ['free', 'race/', 'race/rounds']);
  });
});

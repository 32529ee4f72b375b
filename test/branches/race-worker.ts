/**
 * Child process for ref-store-race.test: a separate Node process with its own RefStore (the compiled
 * dist/src/branches/ref-store.js) on a shared repository. It obeys IPC messages from the test:
 * - round: wait until `startAt` (wall clock), then try one compare-and-swap; report the outcome;
 * - free: `iterations` times, read the branch and try to move it from what was read;
 * - exit.
 * Usage: node race-worker.js <gitDir> <tag>
 */
import { createHash } from 'node:crypto';
import { isGitfsError } from '../../src/errors.js';
import type { Oid } from '../../src/objects/oid.js';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { RefStore } from '../../src/branches/ref-store.js';

export type WorkerRequest =
  | { type: 'round'; branch: string; round: number; expected: string; next: string; startAt: number }
  | { type: 'free'; branch: string; iterations: number }
  | { type: 'exit' };

export type WorkerReply =
  | { type: 'round'; round: number; ok: boolean; code?: string; reason?: string }
  | { type: 'free'; ok: number; conflicts: number; wins: string[] }
  | { type: 'error'; message: string; code?: string };

const gitDir = process.argv[2];
const tag = process.argv[3];
if (gitDir === undefined || tag === undefined || process.send === undefined) {
  throw new Error('usage: node race-worker.js <gitDir> <tag> (with an IPC channel)');
}
const send = (reply: WorkerReply): void => {
  process.send?.(reply);
};
const store = new RefStore({ gitDir, clock: { now: () => Date.now() } }, { identity: { name: `worker ${tag}`, email: `${tag}@example.com` } });

async function handle(msg: WorkerRequest): Promise<void> {
  if (msg.type === 'exit') {
    process.disconnect();
    return;
  }
  const branch = parseBranchName(msg.branch);
  if (msg.type === 'round') {
    while (Date.now() < msg.startAt) {
      // spin so both processes start the attempt at the same moment
    }
    try {
      await store.update(branch, { expected: msg.expected as Oid, next: msg.next as Oid, message: `${tag} round ${msg.round}` });
      send({ type: 'round', round: msg.round, ok: true });
    } catch (e) {
      if (!isGitfsError(e)) throw e;
      send({ type: 'round', round: msg.round, ok: false, code: e.code, reason: String(e.data['reason']) });
    }
    return;
  }
  let ok = 0;
  let conflicts = 0;
  const wins: string[] = [];
  for (let i = 0; i < msg.iterations; i++) {
    const current = await store.resolve(branch);
    const next = createHash('sha1').update(`${tag}-free-${i}`).digest('hex') as Oid;
    try {
      await store.update(branch, { expected: current ?? null, next, message: `${tag} free ${i}` });
      ok++;
      wins.push(next);
    } catch (e) {
      if (!isGitfsError(e) || e.code !== 'GITFS_REF_CONFLICT') throw e;
      conflicts++;
    }
  }
  send({ type: 'free', ok, conflicts, wins });
}

let queue = Promise.resolve();
process.on('message', (msg: WorkerRequest) => {
  queue = queue
    .then(() => handle(msg))
    .catch((e: unknown) => {
      send({ type: 'error', message: String(e instanceof Error ? e.stack : e), code: isGitfsError(e) ? e.code : undefined });
    });
});

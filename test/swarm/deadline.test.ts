import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Deadline, MAX_EXTENSION_LIMITS } from '../../src/swarm/deadline.js';

describe("a request's limit in all (deadline.ts)", () => {
  it('parts push the limit back by their grace, at most MAX_EXTENSION_LIMITS times the limit: parts coming fast, of a size declared at will, hold a request no longer', async () => {
    const limitMs = 100;
    const started = Date.now();
    let expiredAt: number | undefined;
    const deadline = new Deadline(limitMs, () => (expiredAt = Date.now()), () => Date.now());
    // A MiB of parts every 20 ms (50 s of grace a second); bounded: 5 s.
    for (let i = 0; i < 250 && expiredAt === undefined; i++) {
      deadline.extend(1 << 20);
      await sleep(20);
    }
    deadline.clear();
    assert.ok(expiredAt !== undefined, 'the parts kept the request alive for good');
    const ms = expiredAt - started;
    const most = limitMs * (1 + MAX_EXTENSION_LIMITS);
    assert.ok(ms >= most - 20 && ms < most + 500, `cut off after ${ms} ms (at most ${most})`);
  });
});

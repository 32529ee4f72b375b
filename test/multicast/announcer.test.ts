/**
 * When the Announcer sends: a greeting of a new peer is an announcement followed by the start
 * burst's first two repeats (one datagram lost to a lossy LAN must not leave the newcomer waiting
 * a whole interval), and greetings stay at least greetMs apart. Real timers at millisecond scale,
 * a transport that counts what it would send, the real node key and certificate.
 */
import assert from 'node:assert/strict';
import { Announcer } from '../../src/multicast/announcer.js';
import type { AnnounceTransport } from '../../src/multicast/transport.js';
import { systemClock } from '../../src/util/clock.js';
import { suiteDirs } from '../support/tmp.js';
import { captureLogger, makeCluster, type Member } from './fixture.js';

class TimedTransport implements AnnounceTransport {
  readonly sentAt: number[] = [];
  constructor(private readonly started: number) {}
  send(): Promise<void> {
    this.sentAt.push(Date.now() - this.started);
    return Promise.resolve();
  }
  destinations(): number {
    return 1;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('multicast/announcer: greetings', function () {
  const tmp = suiteDirs();
  let member: Member;

  before(async () => {
    const cluster = await makeCluster(tmp.make());
    member = await cluster.addMember(tmp.make());
  });

  /** Random delays at their longest (greetMs), so the test knows when each greeting is due. */
  function announcer(transport: AnnounceTransport, greetMs: number, repeatMs: readonly number[], debounceMs = 0): Announcer {
    return new Announcer(
      { transport, identity: member.identity, trust: member.trust, clock: systemClock, log: captureLogger(), heads: () => Promise.resolve([]), random: () => 0.999 },
      { name: 'n', endpoints: [], intervalMs: 3_600_000, jitter: 0, debounceMs, repeatMs, greetMs },
    );
  }

  /** The timers the announcer holds (private: only what it keeps is under test, no behaviour shows it). */
  const held = (a: Announcer): number => (a as unknown as { timers: Set<NodeJS.Timeout> }).timers.size;

  it('a greeting is sent, then repeated at the first two repeat delays, and not again', async () => {
    const transport = new TimedTransport(Date.now());
    // A third repeat would come at 0.3 s: the count at 1 s tells (the fourth delay, 4 s, is
    // past the look, so a late first repeat is not mistaken for one too many).
    const a = announcer(transport, 0, [40, 120, 300, 4000]);
    try {
      a.greet();
      await sleep(1000);
      assert.equal(transport.sentAt.length, 3, `sent at ${transport.sentAt.join(', ')} ms`);
      const [, second, third] = transport.sentAt as [number, number, number];
      assert.ok(second >= 40 && third >= 120, `sent at ${transport.sentAt.join(', ')} ms`);
    } finally {
      await a.stop();
    }
  });

  it('a second greeting due within greetMs of the first is postponed, not dropped', async () => {
    const transport = new TimedTransport(Date.now());
    const a = announcer(transport, 200, []);
    try {
      a.greet();
      await sleep(400);
      assert.equal(transport.sentAt.length, 1, `sent at ${transport.sentAt.join(', ')} ms`);
      a.greet();
      a.greet(); // one greeting is pending already: ignored
      await sleep(600);
      assert.equal(transport.sentAt.length, 2, `sent at ${transport.sentAt.join(', ')} ms`);
      const [first, second] = transport.sentAt as [number, number];
      assert.ok(second - first >= 200, `greetings ${second - first} ms apart`);
    } finally {
      await a.stop();
    }
  });

  it('forgets the timers it cancels: 200 greetings and 200 changes on an idle node leave two timers held, not hundreds', async () => {
    const transport = new TimedTransport(Date.now());
    const a = announcer(transport, 0, [], 3_600_000);
    try {
      for (let i = 0; i < 200; i++) {
        a.greet();
        await sleep(2);
      }
      assert.equal(transport.sentAt.length, 200);
      for (let i = 0; i < 200; i++) a.changed();
      // The next periodic announcement and the pending debounce.
      assert.equal(held(a), 2);
    } finally {
      await a.stop();
    }
  });
});

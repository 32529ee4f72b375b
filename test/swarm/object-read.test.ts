import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { deflateSync } from 'node:zlib';
import type { NodeId } from '../../src/cluster/node-id.js';
import { hashObject } from '../../src/objects/oid.js';
import type { SwarmConnection } from '../../src/swarm/connection.js';
import { LIMITS } from '../../src/swarm/messages.js';
import { readFrom, type RequestOwner } from '../../src/swarm/object-read.js';
import { silentLogger } from '../../src/util/log.js';

describe('on-demand reads (object-read.ts)', () => {
  it('parts answering a want of commits and trees (which never come in parts) are a lie: the peer is blamed, and the read ends', async () => {
    const closed: string[] = [];
    const conn = { nodeId: 'aa' as NodeId, isOpen: true, send: () => undefined, close: (why: string) => void closed.push(why), pauseWhile: (work: Promise<unknown>) => void work } as unknown as SwarmConnection;
    const avoid = new Map<NodeId, number>();
    let owner: RequestOwner | undefined;
    const sink = { write: async () => undefined, commit: async () => undefined, abort: async () => undefined };
    const commit = hashObject('commit', randomBytes(64));
    const reading = readFrom(conn, [commit], 'meta', { log: silentLogger, now: () => Date.now(), avoid, nextRequest: () => 1, track: (_r, o) => (owner = o), local: { receiveLarge: async () => sink } });
    // The first MiB of a well-formed stream of 2 MiB: nothing in the parts themselves is wrong.
    const zlib = deflateSync(randomBytes(2 << 20), { level: 0 }).subarray(0, LIMITS.partBytes);
    owner?.handle(conn, { kind: 'part', request: 1, oid: commit, size: 2 << 20, offset: 0, zlib, last: false });
    const ended = await Promise.race([reading.then(() => true), sleep(1000).then(() => false)]);
    assert.ok(avoid.has('aa' as NodeId), 'the peer is avoided');
    assert.equal(closed.length, 1, 'and disconnected');
    assert.ok(ended, 'the read ended');
  });
});

import assert from 'node:assert/strict';
import type { GitObject } from '../../src/objects/object-store.js';
import type { Oid } from '../../src/objects/oid.js';
import { MetaCache } from '../../src/swarm/meta-cache.js';

const oid = (n: number): Oid => n.toString(16).padStart(40, '0') as Oid;

describe('meta cache', () => {
  /** A store that counts its reads; object n is a tree of n bytes, a blob when n is odd. */
  function store(): { loads: Oid[]; load: (o: Oid) => Promise<GitObject> } {
    const loads: Oid[] = [];
    return {
      loads,
      load: async (o) => {
        loads.push(o);
        const n = parseInt(o, 16);
        return { type: n % 2 === 1 ? 'blob' : 'tree', content: Buffer.alloc(n) };
      },
    };
  }

  it('reads a commit or tree once for every asker, and shares reads in flight, blobs included', async () => {
    const cache = new MetaCache(1 << 20);
    const s = store();
    await Promise.all([cache.read(oid(10), s.load), cache.read(oid(10), s.load), cache.read(oid(11), s.load), cache.read(oid(11), s.load)]);
    await cache.read(oid(10), s.load);
    await cache.read(oid(11), s.load);
    assert.deepEqual(s.loads, [oid(10), oid(11), oid(11)]);
  });

  it('keeps at most its budget, the oldest out first', async () => {
    const cache = new MetaCache(120);
    const s = store();
    for (const n of [40, 50, 60]) await cache.read(oid(n), s.load);
    // 40 went when 60 came (150 bytes > 120); 50 and 60 stay.
    for (const n of [50, 60, 40]) await cache.read(oid(n), s.load);
    assert.deepEqual(s.loads, [oid(40), oid(50), oid(60), oid(40)]);
  });

  it('keeps nothing of a failed read: the next asker reads again', async () => {
    const cache = new MetaCache(1 << 20);
    let fail = true;
    const load = async (): Promise<GitObject> => {
      if (fail) throw new Error('damaged');
      return { type: 'tree', content: Buffer.alloc(1) };
    };
    await assert.rejects(cache.read(oid(2), load), /damaged/);
    fail = false;
    assert.equal((await cache.read(oid(2), load)).type, 'tree');
  });
});

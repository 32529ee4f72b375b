/** Whole blobs shared by the handles that read them (blob-cache.ts): one copy each, within a budget. */
import assert from 'node:assert/strict';
import type { Oid } from '../../src/objects/oid.js';
import { BlobCache } from '../../src/mount/blob-cache.js';

const oid = (n: number): Oid => n.toString(16).padStart(40, '0') as Oid;

describe('mount/blob-cache', () => {
  it('reads a blob once for every reader, at the same time or later', async () => {
    const cache = new BlobCache(1 << 20);
    let loads = 0;
    const load = async (): Promise<Buffer> => {
      loads++;
      return Buffer.alloc(1000, 1);
    };
    const [a, b] = await Promise.all([cache.get(oid(1), load), cache.get(oid(1), load)]);
    const c = await cache.get(oid(1), load);
    assert.equal(loads, 1);
    assert.ok(a === b && b === c, 'one copy');
  });

  it('keeps blobs within its budget, least recently read out first; the last read stays whatever its size', async () => {
    const cache = new BlobCache(2500);
    const loaded: number[] = [];
    const loader = (n: number, size: number) => async (): Promise<Buffer> => {
      loaded.push(n);
      return Buffer.alloc(size, n);
    };
    await cache.get(oid(1), loader(1, 1000));
    await cache.get(oid(2), loader(2, 1000));
    await cache.get(oid(1), loader(1, 1000)); // 1 read last: 2 is the older
    await cache.get(oid(3), loader(3, 1000)); // 3000 bytes: 2 goes
    await cache.get(oid(1), loader(1, 1000));
    await cache.get(oid(2), loader(2, 1000));
    assert.deepEqual(loaded, [1, 2, 3, 2]);
    await cache.get(oid(4), loader(4, 10_000)); // over the budget alone: kept, the others go
    await cache.get(oid(4), loader(4, 10_000));
    await cache.get(oid(1), loader(1, 1000));
    assert.deepEqual(loaded, [1, 2, 3, 2, 4, 1]);
  });

  it('forgets a read that failed: the next reader tries again', async () => {
    const cache = new BlobCache(1 << 20);
    await assert.rejects(cache.get(oid(5), () => Promise.reject(new Error('not here yet'))), /not here yet/);
    assert.deepEqual(await cache.get(oid(5), async () => Buffer.from('here')), Buffer.from('here'));
  });
});

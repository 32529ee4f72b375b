import assert from 'node:assert/strict';
import { BLOCK_BYTES, BlockPool, MIN_POOLED_BYTES } from '../../src/swarm/block-pool.js';

describe('blocks for large messages (block-pool.ts)', () => {
  it('hands out blocks only for sizes it is for, and reuses a block only once it is given back', () => {
    const pool = new BlockPool(4);
    assert.equal(pool.take(MIN_POOLED_BYTES - 1), undefined);
    assert.equal(pool.take(BLOCK_BYTES + 1), undefined);
    const a = pool.take(BLOCK_BYTES) as Buffer;
    const b = pool.take(MIN_POOLED_BYTES) as Buffer;
    assert.equal(a.length, BLOCK_BYTES);
    assert.equal(b.length, MIN_POOLED_BYTES);
    assert.notEqual(a.buffer, b.buffer);
    assert.equal(pool.owns(a.subarray(10, 20)), true);
    assert.equal(pool.owns(Buffer.alloc(MIN_POOLED_BYTES)), false);

    pool.give(a.subarray(5, 6));
    assert.equal(pool.owns(a), false);
    const c = pool.take(200_000) as Buffer;
    assert.equal(c.buffer, a.buffer, 'the block given back is the next one taken');
    assert.deepEqual(pool.stats, { made: 2, reused: 1, returned: 1 });
    // Memory the pool never handed out is not taken in.
    pool.give(Buffer.alloc(MIN_POOLED_BYTES));
    assert.equal(pool.take(MIN_POOLED_BYTES)?.buffer === c.buffer, false);
    assert.deepEqual(pool.stats, { made: 3, reused: 1, returned: 1 });
  });

  it('returns an adopted block when its last reference goes, and never one still referenced', () => {
    const pool = new BlockPool(4, true);
    const block = pool.take(MIN_POOLED_BYTES) as Buffer;
    block.fill(7);
    const view = block.subarray(100, 200);
    assert.equal(pool.adopt(view), true);
    assert.equal(pool.adopt(view), false, 'a block is adopted once');
    pool.give(block);
    assert.equal(pool.owns(block), true, 'an adopted block is not given back by its taker');
    assert.equal(pool.retain(view), true);
    pool.release(view);
    assert.deepEqual(view, Buffer.alloc(100, 7), 'still referenced: untouched');
    pool.release(view);
    assert.equal(pool.owns(block), false);
    assert.deepEqual(view, Buffer.alloc(100, 0xdd), 'given back: poisoned, so a late reader would see it');
    assert.throws(() => pool.release(view));
    assert.equal(pool.retain(view), false);
    assert.equal(pool.retain(Buffer.alloc(MIN_POOLED_BYTES)), false);
  });

  it('keeps at most maxFree blocks for reuse', () => {
    const pool = new BlockPool(2);
    const taken = Array.from({ length: 5 }, () => pool.take(MIN_POOLED_BYTES) as Buffer);
    for (const b of taken) pool.give(b);
    const again = Array.from({ length: 5 }, () => pool.take(MIN_POOLED_BYTES) as Buffer);
    assert.equal(again.filter((b) => taken.some((t) => t.buffer === b.buffer)).length, 2);
    assert.deepEqual(pool.stats, { made: 8, reused: 2, returned: 5 });
  });
});

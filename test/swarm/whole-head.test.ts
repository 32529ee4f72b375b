import assert from 'node:assert/strict';
import type { Oid } from '../../src/objects/oid.js';
import { coversBase } from '../../src/swarm/whole-head.js';

describe('what a base holds whole (whole-head.ts)', () => {
  const commit = 'ab'.repeat(20) as Oid;

  it('covers a fetch whose history, less the new head, it holds; with blobs only if it holds them', () => {
    const all = { commit, history: 0, blobs: true };
    for (const history of [0, 1, 2, 30]) assert.equal(coversBase(all, history, true), true, `all history covers ${history}`);
    const three = { commit, history: 3, blobs: true };
    assert.equal(coversBase(three, 1, true), true, 'the new head alone needs nothing of the base but its tree');
    assert.equal(coversBase(three, 4, true), true, 'history 4 from the new head is 3 from the base');
    assert.equal(coversBase(three, 5, true), false);
    assert.equal(coversBase(three, 0, true), false, 'all history is more than 3');
    const meta = { commit, history: 0, blobs: false };
    assert.equal(coversBase(meta, 0, false), true, 'commits and trees for a fetch of commits and trees');
    assert.equal(coversBase(meta, 1, true), false, 'not for a fetch with blobs');
  });
});

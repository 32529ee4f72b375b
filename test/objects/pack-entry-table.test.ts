import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Oid } from '../../src/objects/oid.js';
import { PackEntryTable } from '../../src/objects/pack-entry-table.js';
import { encodePackIndex } from '../../src/objects/pack-index-writer.js';
import { PackIndex } from '../../src/objects/pack-index.js';

const hexId = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex') as Oid);

describe('PackEntryTable', () => {
  it('reserves each id once, across growth', () => {
    fc.assert(
      fc.property(fc.array(hexId, { maxLength: 3000 }), (ids) => {
        const t = new PackEntryTable(4);
        const fresh = new Set<string>();
        for (const id of [...ids, ...ids]) assert.equal(t.reserve(id) !== undefined, !fresh.has(id) && (fresh.add(id), true));
        assert.equal(t.count, fresh.size);
      }),
      { numRuns: 30 },
    );
  });

  it('sorts by full id, including ids that share their first four bytes', () => {
    const ids = ['aaaaaaaa01', 'aaaaaaaaff', 'aaaaaaaa00', '00000000ff', 'ffffffff00'].map((p) => p.padEnd(40, '0') as Oid);
    const t = new PackEntryTable(2);
    for (const id of ids) t.reserve(id);
    const sorted = [...t.sortedByIds()].map((i) => t.id(i).toString('hex'));
    assert.deepEqual(sorted, [...ids].sort());
  });
});

describe('encodePackIndex', () => {
  it('writes offsets at and above 2^31 to the 64-bit table, readable by PackIndex', () => {
    const t = new PackEntryTable();
    const offsets = [12, 0x7fffffff, 0x80000000, 5 * 2 ** 32 + 7];
    offsets.forEach((offset, i) => {
      const index = t.reserve(String(i).repeat(40) as Oid) as number;
      t.place(index, offset, i);
    });
    const idx = new PackIndex(encodePackIndex(t, Buffer.alloc(20)), 'test.idx');
    offsets.forEach((offset, i) => assert.equal(idx.lookup(String(i).repeat(40) as Oid), offset));
  });
});

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { lookupPath, readCommit, rootEntry } from '../../src/files/tree-reader.js';
import { RangeReader } from '../../src/mount/range-reader.js';
import { ReadBudget } from '../../src/mount/read-budget.js';
import type { Oid } from '../../src/objects/oid.js';
import type { ObjectReader } from '../../src/objects/object-store.js';
import { commitDirectory } from '../../src/repo/commit-directory.js';
import { Repository } from '../../src/repo/repository.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

describe('mount: reads of one open chunked file (range-reader.ts)', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  /** `bytes` of pseudo-random data committed as one chunked file: `run` gets the repository and the file's chunk tree. */
  async function committed(bytes: number, seed: string, run: (repo: Repository, root: Oid, data: Buffer) => Promise<void>): Promise<void> {
    const data = pseudoRandomBytes(bytes, seed);
    const src = tmp.make();
    writeFileSync(join(src, 'big.bin'), data);
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    try {
      const r = await commitDirectory(repo, parseBranchName('main'), src, { message: 'big' });
      const entry = await lookupPath(repo.objects, rootEntry((await readCommit(repo.objects, r.commit as never)).tree), 'big.bin');
      await run(repo, entry.oid as Oid, data);
    } finally {
      await repo.close();
    }
  }

  it('answers many overlapping reads at once, forward and back, byte for byte, while segments are dropped and their memory reused', async () => {
    await committed(23 << 20, 'range reader', async (repo, root, data) => {
      const reader = new RangeReader(repo.objects, root, data.length, new ReadBudget(256 << 20));
      let seed = 11;
      const next = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
      // Rounds of 24 reads in flight: a sequential stream (so segments are prefetched, dropped and
      // reused) mixed with reads anywhere, of up to 3 MiB, some past the end.
      let cursor = 0;
      for (let round = 0; round < 12; round++) {
        const reads = Array.from({ length: 24 }, (_, i) => {
          const position = i % 3 === 0 ? cursor : next(data.length + (1 << 20));
          const length = i % 3 === 0 ? 1 << 20 : 1 + next(3 << 20);
          if (i % 3 === 0) cursor = (cursor + length) % data.length;
          return { position, length };
        });
        await Promise.all(
          reads.map(async ({ position, length }) => {
            const into = Buffer.alloc(length);
            const n = await reader.read(position, length, into);
            const want = data.subarray(Math.min(position, data.length), Math.min(data.length, position + length));
            assert.equal(n, want.length, `${position}+${length}`);
            assert.ok(into.subarray(0, n).equals(want), `bytes of ${position}+${length}`);
          }),
        );
      }
    });
  });

  it('keeps what many open files read within one budget: the least recently read shed, the rest prefetch only while there is room, and every read is still byte for byte', async () => {
    const MiB = 1 << 20;
    await committed(12 * MiB, 'budget', async (repo, root, data) => {
      /** 24 files open at once, each read forward 2 MiB from its start; what is kept then. */
      const readMany = async (budget: ReadBudget): Promise<RangeReader[]> => {
        const readers = Array.from({ length: 24 }, () => new RangeReader(repo.objects, root, data.length, budget));
        for (const reader of readers) {
          for (let at = 0; at < 2 * MiB; at += MiB) {
            const into = Buffer.alloc(MiB);
            assert.equal(await reader.read(at, MiB, into), MiB);
            assert.ok(into.equals(data.subarray(at, at + MiB)), `bytes at ${at}`);
          }
        }
        return readers;
      };
      // Unbounded (in effect), each keeps what it read and four segments prefetched: 6 MiB.
      const loose = new ReadBudget(2 ** 40);
      await readMany(loose);
      assert.equal(loose.kept, 24 * 6 * MiB);
      const budget = new ReadBudget(16 * MiB);
      const readers = await readMany(budget);
      assert.ok(budget.kept <= 16 * MiB, `kept ${budget.kept / MiB} MiB`);
      // The first reader, shed long ago, reads again from its store when asked.
      const into = Buffer.alloc(MiB);
      assert.equal(await (readers[0] as RangeReader).read(5 * MiB, MiB, into), MiB);
      assert.ok(into.equals(data.subarray(5 * MiB, 6 * MiB)));
      for (const reader of readers) reader.close();
      assert.equal(budget.kept, 0, 'closed files keep nothing');
    });
  });

  it('under a budget too small for every prefetch, files read in turn (a parallel checksum over a tree) read each segment once: no prefetch evicts another, and a closed reader stays out of the budget', async () => {
    const MiB = 1 << 20;
    await committed(6 * MiB, 'in turn', async (repo, root, data) => {
      let segmentReads = 0;
      const store = repo.objects;
      const counting: ObjectReader = {
        has: (oid) => store.has(oid),
        read: (oid) => store.read(oid),
        findByPrefix: (prefix, limit) => store.findByPrefix(prefix, limit),
        readChunkedRange: (root, size, from, to, spare) => (segmentReads++, store.readChunkedRange(root, size, from, to, spare)),
      };
      // 40 files, 1 MiB each in turn: each would keep its segment and 4 prefetched, 200 MiB.
      const budget = new ReadBudget(24 * MiB);
      const readers = Array.from({ length: 40 }, () => new RangeReader(counting, root, data.length, budget));
      const into = Buffer.alloc(MiB);
      for (let at = 0; at < data.length; at += MiB) {
        for (const reader of readers) {
          assert.equal(await reader.read(at, MiB, into), MiB);
          assert.ok(into.equals(data.subarray(at, at + MiB)), `bytes at ${at}`);
        }
        assert.ok(budget.kept <= 24 * MiB, `kept ${budget.kept / MiB} MiB`);
      }
      assert.ok(segmentReads <= 40 * 6, `${segmentReads} segment reads for 240 segments`);
      // A read in flight when its file closes does not bring the reader back into the budget.
      const reader = readers[0] as RangeReader;
      const reading = reader.read(0, MiB, Buffer.alloc(MiB));
      reader.close();
      await reading;
      assert.equal(budget.readers, 39, 'the closed one is not counted again');
      for (const other of readers.slice(1)) other.close();
      assert.equal(budget.kept, 0);
      assert.equal(budget.readers, 0);
    });
  });
});

/**
 * The range worker's reads (chunked-range.ts), run in this thread: a file whose chunks lie in
 * many packs is read right, and every index of the job stays parsed between reads (with fewer
 * kept than the job has packs, each read parsed them all again: ~100 times slower).
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { writeChunkedFile } from '../../src/objects/chunked-file-writer.js';
import { readRange, type RangePack } from '../../src/objects/chunked-range.js';
import { PackWriter } from '../../src/objects/pack-writer.js';
import { Repository } from '../../src/repo/repository.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

describe('chunked ranges read in the worker (chunked-range.ts)', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('reads a file spread over 100+ packs, and keeps every index of the job parsed between reads', async () => {
    const dir = tmp.make();
    const content = pseudoRandomBytes(8 << 20, 'spread');
    writeFileSync(join(dir, 'src.bin'), content);
    const repo = await Repository.init(join(dir, 'repo'));
    const packDir = join(repo.gitDir, 'objects', 'pack');
    const objects = repo.objects;
    const writer = await PackWriter.create({ packDir, existing: { contains: (o) => objects.hasPacked(o), refresh: () => objects.refresh(), freshened: async () => undefined } }, { compressionLevel: 1, maxObjectsPerPack: 8 });
    const fh = await open(join(dir, 'src.bin'));
    const root = await writeChunkedFile(fh, writer, repo.chunker, repo.format.tree);
    await fh.close();
    await writer.finish();
    await repo.close();
    const names = readdirSync(packDir).filter((n) => n.endsWith('.pack'));
    assert.ok(names.length > 100, `${names.length} packs`);
    const packs: RangePack[] = names.map((n) => ({ idxPath: join(packDir, n.replace(/\.pack$/, '.idx')), fd: openSync(join(packDir, n), 'r'), size: statSync(join(packDir, n)).size }));
    try {
      const read = (id: number, from: number, to: number): Buffer | undefined => {
        const r = readRange({ kind: 'range', id, root: root.oid, size: root.size, from, to, packs });
        return r.buffer === undefined ? undefined : Buffer.from(r.buffer, 0, to - from);
      };
      assert.ok(read(1, 0, 4 << 20)?.equals(content.subarray(0, 4 << 20)), 'the first half');
      // The indexes are parsed now: the second half reads with the index files gone.
      for (const p of packs) renameSync(p.idxPath, `${p.idxPath}.away`);
      assert.ok(read(2, 4 << 20, 8 << 20)?.equals(content.subarray(4 << 20)), 'the second half, from the indexes kept');
    } finally {
      for (const p of packs) closeSync(p.fd);
    }
  });
});

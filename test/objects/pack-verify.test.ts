/**
 * A pack read through (src/objects/pack-verify.ts): every flipped byte names its entry and only
 * it, at window boundaries too; a wrong trailer is a wrong checksum; bytes that do not read (EIO:
 * a lost sector) damage the entries they lie in and the checksum, and the rest is still checked.
 */
import assert from 'node:assert/strict';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Oid } from '../../src/objects/oid.js';
import { PackIndex } from '../../src/objects/pack-index.js';
import { verifyPack, type PackFileHandle } from '../../src/objects/pack-verify.js';
import { Repository } from '../../src/repo/repository.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

describe('objects: a pack read through for damage (pack-verify.ts)', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  /** A pack of 40 blobs of 100 KiB (some entries span the 1 MiB read windows); its path, index and entries by offset. */
  async function pack(): Promise<{ path: string; index: PackIndex; spans: { oid: Oid; from: number; to: number }[] }> {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    try {
      const w = await repo.newPackWriter();
      for (let i = 0; i < 40; i++) await w.write('blob', pseudoRandomBytes(100 << 10, `verify ${i}`));
      const name = (await w.finish())?.names[0] as string;
      const base = join(repo.gitDir, 'objects', 'pack', name);
      const index = new PackIndex(await readFile(`${base}.idx`), `${base}.idx`);
      const size = (await readFile(`${base}.pack`)).length;
      const { order, offsets } = index.byOffset();
      const spans = [...offsets].map((from, k) => ({ oid: index.oidAt(order[k] as number), from, to: offsets[k + 1] ?? size - 20 }));
      return { path: `${base}.pack`, index, spans };
    } finally {
      await repo.close();
    }
  }

  it('names exactly the entry a flipped byte lies in, at window edges too; a wrong trailer is a wrong checksum', async () => {
    const { path, index, spans } = await pack();
    assert.deepEqual(await verifyPack(path, index), { checksumOk: true, damaged: [] });
    const original = await readFile(path);
    for (const at of [12, (1 << 20) - 1, 1 << 20, (2 << 20) + 1, (spans.at(-1)?.to ?? 0) - 1]) {
      const bytes = Buffer.from(original);
      bytes[at] = (bytes[at] as number) ^ 0x20;
      await writeFile(path, bytes);
      const hit = spans.find((s) => s.from <= at && at < s.to);
      assert.deepEqual(await verifyPack(path, index), { checksumOk: false, damaged: [hit?.oid] }, `a byte flipped at ${at}`);
    }
    const bytes = Buffer.from(original);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01;
    await writeFile(path, bytes);
    assert.deepEqual(await verifyPack(path, index), { checksumOk: false, damaged: [] });
  });

  it('bytes that do not read (EIO) damage the entries they lie in and the checksum; the rest is read and checked', async () => {
    const { path, index, spans } = await pack();
    const badFrom = (3 << 20) + 5000;
    const badTo = badFrom + 10_000;
    /** The pack's file, but any read that touches [badFrom, badTo) fails as a lost sector does. */
    const sick = async (p: string): Promise<PackFileHandle> => {
      const fh = await open(p, 'r');
      return {
        stat: () => fh.stat(),
        close: () => fh.close(),
        read: (buffer, offset, length, position) => {
          if (position < badTo && position + length > badFrom) return Promise.reject(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
          return fh.read(buffer, offset, length, position);
        },
      };
    };
    // Read again by 4 KiB sectors from the window's start: the sectors the bad bytes touch are lost.
    const [lostFrom, lostTo] = [Math.floor(badFrom / 4096) * 4096, Math.ceil(badTo / 4096) * 4096];
    const touched = spans.filter((s) => s.from < lostTo && s.to > lostFrom).map((s) => s.oid);
    assert.ok(touched.length >= 1 && touched.length <= 2, `${touched.length} entries`);
    assert.deepEqual(await verifyPack(path, index, undefined, sick), { checksumOk: false, damaged: touched });
  });
});

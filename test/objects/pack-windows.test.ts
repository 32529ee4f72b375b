import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Oid } from '../../src/objects/oid.js';
import { PackWriter } from '../../src/objects/pack-writer.js';
import { Repository } from '../../src/repo/repository.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

setFlagsFromString('--expose-gc');

describe('pack reads out of windows', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('give each stored object its own memory, never a view that keeps the window alive', async () => {
    const dir = join(tmp.make(), 'repo');
    const repo = await Repository.init(dir);
    const writer = await PackWriter.create(
      { packDir: join(dir, 'objects', 'pack'), existing: { contains: () => false, refresh: async () => undefined, freshened: async () => undefined } },
      { compressionLevel: 1 },
    );
    // Incompressible, so stored in place; read in pack order, so the reader opens windows.
    const contents = Array.from({ length: 400 }, (_, i) => pseudoRandomBytes(5000 + i, `windowed ${i}`));
    const ids: Oid[] = [];
    for (const c of contents) ids.push(await writer.write('blob', c));
    await writer.finish();
    await repo.close();
    const reopened = await Repository.open(dir);
    try {
      for (const [i, id] of ids.entries()) {
        const { content } = await reopened.objects.read(id);
        assert.ok(content.equals(contents[i] as Buffer), `object ${i}`);
        assert.ok(content.buffer.byteLength < 2 * content.length + 8192, `object ${i} keeps ${content.buffer.byteLength} bytes alive for its ${content.length}`);
      }
    } finally {
      await reopened.close();
    }
  });

  it('keep few windows across all packs: reading 48 packs through, each whole, leaves no window of most of them alive', async () => {
    const dir = join(tmp.make(), 'repo');
    const repo = await Repository.init(dir);
    const ids: Oid[][] = [];
    for (let p = 0; p < 48; p++) {
      const writer = await PackWriter.create({ packDir: join(dir, 'objects', 'pack'), existing: { contains: () => false, refresh: async () => undefined, freshened: async () => undefined } }, { compressionLevel: 1 });
      const pack: Oid[] = [];
      for (let i = 0; i < 48; i++) pack.push(await writer.write('blob', pseudoRandomBytes(64 << 10, `pack ${p} object ${i}`)));
      await writer.finish();
      ids.push(pack);
    }
    await repo.close();
    const gc = runInNewContext('gc') as () => void;
    const reopened = await Repository.open(dir);
    try {
      gc();
      const before = process.memoryUsage().arrayBuffers;
      // Each pack read in order: 3 MiB of windows each, 4 of them kept per pack before (144 MiB in all).
      for (const pack of ids) for (const id of pack) await reopened.objects.read(id);
      gc();
      const heldMiB = (process.memoryUsage().arrayBuffers - before) / (1 << 20);
      assert.ok(heldMiB < 64, `${heldMiB.toFixed(0)} MiB still held after reading every pack`);
    } finally {
      await reopened.close();
    }
  });
});

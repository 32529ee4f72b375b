import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { PackWriter } from '../../src/objects/pack-writer.js';
import { Repository } from '../../src/repo/repository.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

/** Object i: random bytes (stored) for even i, text (deflated) for odd i; sizes cross block edges. */
function content(i: number): Buffer {
  const size = 1000 + ((i * 7919) % 300_000);
  return i % 2 === 0 ? pseudoRandomBytes(size, `object ${i}`) : Buffer.from(`object ${i} `.repeat(Math.ceil(size / 12)).slice(0, size));
}

describe('pack writer: packs of a bounded object count', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  async function writeObjects(count: number, maxObjectsPerPack: number, hashWhileWriting = true): Promise<{ dir: string; ids: Oid[]; names: readonly string[]; writer: PackWriter }> {
    const dir = join(tmp.make(), 'repo');
    const repo = await Repository.init(dir);
    const writer = await PackWriter.create(
      { packDir: join(dir, 'objects', 'pack'), existing: { contains: () => false, refresh: async () => undefined } },
      { compressionLevel: 1, maxObjectsPerPack, hashWhileWriting },
    );
    const ids: Oid[] = [];
    for (let i = 0; i < count; i++) {
      ids.push(await writer.write('blob', content(i)));
      // Offered again once its pack is sealed (55 objects back): never written twice.
      if (i >= 60 && i % 10 === 9) await writer.write('blob', content(i - 55));
    }
    const finished = await writer.finish();
    await repo.close();
    return { dir, ids, names: finished?.names ?? [], writer };
  }

  /** Objects per pack as git counts them (verify-pack checks every entry's CRC and the trailer). */
  function gitCounts(dir: string, names: readonly string[]): number[] {
    return names.map((name) => {
      const out = execFileSync('git', ['--git-dir', dir, 'verify-pack', '-v', join(dir, 'objects', 'pack', `${name}.idx`)], { encoding: 'utf8' });
      return out.split('\n').filter((line) => / blob /.test(line)).length;
    });
  }

  it('splits a batch into full packs and a shorter last one, each valid for git and every object readable', async () => {
    const { dir, ids, names, writer } = await writeObjects(175, 50);
    assert.deepEqual(gitCounts(dir, names), [50, 50, 50, 25]);
    assert.equal(writer.stats.objectsWritten, 175);
    assert.deepEqual(readdirSync(join(dir, 'objects', 'pack')).filter((f) => f.startsWith('tmp_')), []);
    const repo = await Repository.open(dir);
    try {
      for (const [i, id] of ids.entries()) {
        const object = await repo.objects.read(id);
        assert.equal(object.type, 'blob');
        assert.ok(content(i).equals(object.content), `object ${i}`);
      }
    } finally {
      await repo.close();
    }
    const listed = execFileSync('git', ['--git-dir', dir, 'cat-file', '--batch-all-objects', '--batch-check=%(objectname)'], { encoding: 'utf8' });
    assert.deepEqual(listed.trim().split('\n').sort(), [...ids].sort());
  });

  it('writes a last pack that is exactly full with the checksum computed on the way out', async () => {
    const { dir, names } = await writeObjects(100, 50);
    assert.deepEqual(gitCounts(dir, names), [50, 50]);
    for (const name of names) assert.ok(statSync(join(dir, 'objects', 'pack', `${name}.pack`)).size > 50 * 1000);
  });

  it('writes the same valid packs when each is hashed once read back instead of on the way out', async () => {
    const { dir, names } = await writeObjects(120, 50, false);
    assert.deepEqual(gitCounts(dir, names), [50, 50, 20]);
  });

  it('gives each object the id git gives it', async () => {
    const { ids } = await writeObjects(3, 2);
    assert.deepEqual(ids, [0, 1, 2].map((i) => hashObject('blob', content(i))));
  });
});

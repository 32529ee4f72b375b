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
      { packDir: join(dir, 'objects', 'pack'), existing: { contains: () => false, refresh: async () => undefined, freshened: async () => undefined } },
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

  /** The types of a pack's entries in pack order, as `git verify-pack -v` lists them. */
  function typesInPackOrder(dir: string, name: string): string[] {
    const out = execFileSync('git', ['--git-dir', dir, 'verify-pack', '-v', join(dir, 'objects', 'pack', `${name}.idx`)], { encoding: 'utf8' });
    const entries = out.split('\n').flatMap((line) => {
      const m = /^[0-9a-f]{40} (\w+) +\d+ \d+ (\d+)/.exec(line);
      return m === null ? [] : [{ type: m[1] as string, offset: Number(m[2]) }];
    });
    return entries.sort((a, b) => a.offset - b.offset).map((e) => e.type);
  }

  it('writes the trees of a batch together, in runs of at most 4 MiB held back, whatever the order they come in', async () => {
    const dir = join(tmp.make(), 'repo');
    const repo = await Repository.init(dir);
    const writer = await PackWriter.create(
      { packDir: join(dir, 'objects', 'pack'), existing: { contains: () => false, refresh: async () => undefined, freshened: async () => undefined } },
      { compressionLevel: 1 },
    );
    // A tree after every 3 blobs, as a chunked file's nodes come: 6 MiB of trees in all (of 32 KiB
    // each, so the writer must write them out once 4 MiB wait), then the last few at finish().
    const treeBytes = 32 << 10;
    const ids: Array<{ oid: Oid; type: 'blob' | 'tree' }> = [];
    for (let i = 0; i < 4 * 200; i++) {
      const tree = i % 4 === 3;
      const data = tree ? pseudoRandomBytes(treeBytes, `tree ${i}`) : content(i);
      ids.push({ oid: await writer.write(tree ? 'tree' : 'blob', data), type: tree ? 'tree' : 'blob' });
    }
    const finished = await writer.finish();
    await repo.close();
    assert.equal(finished?.names.length, 1);
    const types = typesInPackOrder(dir, finished?.names[0] as string);
    assert.equal(types.length, 800);
    // Runs of trees: 4 MiB / 32 KiB = 128 trees, then the remaining 72 at finish().
    const runs: number[] = [];
    types.forEach((t, i) => {
      if (t === 'tree' && types[i - 1] !== 'tree') runs.push(0);
      if (t === 'tree') runs[runs.length - 1]! += 1;
    });
    assert.deepEqual(runs, [128, 72]);
    const reopened = await Repository.open(dir);
    try {
      for (const { oid, type } of ids) assert.equal((await reopened.objects.read(oid)).type, type);
    } finally {
      await reopened.close();
    }
  });
});

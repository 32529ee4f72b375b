import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { IdFilter } from '../../src/objects/id-filter.js';
import type { Oid } from '../../src/objects/oid.js';
import { Repository } from '../../src/repo/repository.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

describe('id filters', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('never says absent of an id it holds, and lets few others through at capacity', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 20, maxLength: 20 }), { maxLength: 300 }), (ids) => {
        const filter = new IdFilter(ids.length);
        for (const id of ids) filter.add(Buffer.from(id), 0);
        for (const id of ids) assert.ok(filter.mayHold(Buffer.from(id), 0));
      }),
    );
    const filter = new IdFilter(10_000);
    filter.addAll(randomBytes(20 * 10_000), 0, 10_000);
    let through = 0;
    for (let i = 0; i < 10_000; i++) if (filter.mayHold(randomBytes(20), 0)) through++;
    assert.ok(through < 200, `${through} of 10 000 absent ids got through`);
  });

  it('a repository answers for the ids of every pack it has open, as packs come and go', async () => {
    const dir = join(tmp.make(), 'repo');
    const repo = await Repository.init(dir);
    try {
      const packs: Oid[][] = [];
      const writePack = async (n: number): Promise<Oid[]> => {
        const writer = await repo.newPackWriter();
        const ids: Oid[] = [];
        for (let i = 0; i < 300; i++) ids.push(await writer.write('blob', pseudoRandomBytes(100, `pack ${n} blob ${i}`)));
        await writer.finish();
        return ids;
      };
      for (let n = 0; n < 3; n++) packs.push(await writePack(n));
      const absent = Array.from({ length: 300 }, () => randomBytes(20).toString('hex') as Oid);
      // Asked in a row and interleaved, so that the pack found last is not always the one to ask.
      for (let i = 0; i < 300; i++) for (const ids of packs) assert.ok(repo.objects.hasPacked(ids[i] as Oid));
      for (const oid of absent) assert.ok(!repo.objects.hasPacked(oid));

      // A pack removed (as git gc removes one): its ids are no longer held, the others still are.
      const packDir = join(dir, 'objects', 'pack');
      const [gone] = readdirSync(packDir).filter((f) => f.endsWith('.idx'));
      const goneIds = new Set(packs.flat().filter((o) => repo.objects.hasPacked(o)));
      rmSync(join(packDir, gone as string));
      rmSync(join(packDir, (gone as string).replace(/\.idx$/, '.pack')));
      await repo.objects.refresh();
      const held = packs.map((ids) => ids.filter((o) => repo.objects.hasPacked(o)).length).sort();
      assert.deepEqual(held, [0, 300, 300]);
      assert.equal(goneIds.size, 900);

      // A pack added after: its ids are held once the repository has looked again.
      const added = await writePack(3);
      for (const oid of added) assert.ok(repo.objects.hasPacked(oid));
      for (const oid of absent) assert.ok(!repo.objects.hasPacked(oid));
    } finally {
      await repo.close();
    }
  });
});

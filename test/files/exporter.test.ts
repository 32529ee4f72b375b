/** Export (exporter.ts): a failure stops every write still under way before the export reports it, and takes away what it wrote. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { exportEntry } from '../../src/files/exporter.js';
import { readCommit, rootEntry } from '../../src/files/tree-reader.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { decodeTree, encodeTree, TreeModes } from '../../src/objects/tree.js';
import { commitDirectory } from '../../src/repo/commit-directory.js';
import { Repository } from '../../src/repo/repository.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

describe('files/exporter: a failure midway', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('stops the writes still under way before it is reported, and leaves the target as it was (absent, or empty): nothing comes after, and it can be run again', async () => {
    const base = tmp.make();
    const src = join(base, 'src');
    mkdirSync(src);
    for (let i = 0; i < 6; i++) writeFileSync(join(src, `big${i}.bin`), pseudoRandomBytes(16 << 20, `big ${i}`));
    const repo = await Repository.init(join(base, 'repo'));
    try {
      const c = await commitDirectory(repo, parseBranchName('main'), src, { message: 'big files' });
      const { tree } = await readCommit(repo.objects, c.commit as NonNullable<typeof c.commit>);
      // The same files and one whose blob is not here: its read fails at once.
      const entries = [...decodeTree((await repo.objects.read(tree)).content), { mode: TreeModes.FILE, name: 'missing', oid: hashObject('blob', Buffer.from('never stored\n')) }];
      const writer = await repo.newPackWriter();
      const broken = await writer.write('tree', encodeTree(entries.sort((a, b) => (a.name < b.name ? -1 : 1))));
      await writer.finish();
      // Made by the export (two levels): gone with what it wrote, and nothing comes back after.
      const target = join(base, 'made', 'out');
      await assert.rejects(exportEntry(repo.objects, rootEntry(broken), target));
      assert.equal(existsSync(join(base, 'made')), false, 'the directories the export made are gone');
      await sleep(500);
      assert.equal(existsSync(join(base, 'made')), false, 'written after the export failed');
      // Empty before: empty again, so the same command can be run again.
      const empty = join(base, 'empty');
      mkdirSync(empty);
      await assert.rejects(exportEntry(repo.objects, rootEntry(broken), empty));
      assert.deepEqual(readdirSync(empty), []);
      await sleep(500);
      assert.deepEqual(readdirSync(empty), [], 'written after the export failed');
      const whole = await exportEntry(repo.objects, rootEntry(tree), empty);
      assert.equal(whole.files, 6);
      // What another process writes into the target while the export runs is not the export's to take away.
      const shared = join(base, 'shared');
      const missing = entries.find((e) => e.name === 'missing')?.oid;
      const meanwhile = new Proxy(repo.objects, {
        get(store, key) {
          const member: unknown = Reflect.get(store, key);
          if (typeof member !== 'function') return member;
          return (...args: unknown[]) => {
            if (args[0] === missing) writeFileSync(join(shared, 'theirs.txt'), 'written by another process\n');
            return (member as (...a: unknown[]) => unknown).apply(store, args);
          };
        },
      });
      await assert.rejects(exportEntry(meanwhile, rootEntry(broken), shared + '/'));
      assert.deepEqual(readdirSync(shared), ['theirs.txt']);
    } finally {
      await repo.close();
    }
  });

  it('writes plain blobs above 16 MiB (git wrote them; each is read whole) one at a time', async () => {
    const base = tmp.make();
    const repo = await Repository.init(join(base, 'repo'));
    try {
      const writer = await repo.newPackWriter();
      const blobs = await Promise.all([0, 1, 2, 3].map((i) => writer.write('blob', pseudoRandomBytes(17 << 20, `large ${i}`))));
      const small = await writer.write('blob', Buffer.from('small\n'));
      const tree = await writer.write('tree', encodeTree([...blobs.map((oid, i) => ({ mode: TreeModes.FILE, name: `large${i}`, oid })), { mode: TreeModes.FILE, name: 'small', oid: small }]));
      await writer.finish();
      const large = new Set<string>(blobs);
      let reading = 0;
      let most = 0;
      const counted = new Proxy(repo.objects, {
        get(store, key) {
          const member: unknown = Reflect.get(store, key);
          if (typeof member !== 'function') return member;
          if (key !== 'readBlob') return (...args: unknown[]) => (member as (...a: unknown[]) => unknown).apply(store, args);
          return async function* (oid: Oid): AsyncGenerator<Buffer> {
            const counts = large.has(oid);
            if (counts) most = Math.max(most, ++reading);
            try {
              yield* (member as (o: Oid) => AsyncGenerator<Buffer>).call(store, oid);
            } finally {
              if (counts) reading--;
            }
          };
        },
      });
      const report = await exportEntry(counted, rootEntry(tree), join(base, 'out'));
      assert.equal(report.files, 5);
      assert.equal(most, 1, 'large plain blobs read at once');
      assert.deepEqual(readdirSync(join(base, 'out')).sort(), ['large0', 'large1', 'large2', 'large3', 'small']);
    } finally {
      await repo.close();
    }
  });
});

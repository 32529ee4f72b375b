import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { Repository } from '../../src/repo/repository.js';
import { BlockPool } from '../../src/swarm/block-pool.js';
import { LocalObjects } from '../../src/swarm/local-objects.js';
import { verifyPack, type VerifiedIndex } from '../../src/objects/pack-verify.js';
import { tempDir, cleanupTempDirs } from '../support/tmp.js';

const blob = (bytes: number): { oid: Oid; type: 'blob'; content: Buffer } => {
  const content = randomBytes(bytes);
  return { oid: hashObject('blob', content), type: 'blob', content };
};

/** `test` on a fresh repository's LocalObjects (packs of `flushBytes`), both closed after it, whatever happens. */
async function withStore(flushBytes: number, pool: BlockPool, test: (local: LocalObjects, repo: Repository) => Promise<void>): Promise<void> {
  const repo = await Repository.init(join(tempDir('local-objects'), 'repo'));
  const local = new LocalObjects(repo, { flushBytes, promisor: false, pool });
  try {
    await test(local, repo);
  } finally {
    await local.close();
    await repo.close();
  }
}

describe('objects received from peers (local-objects.ts)', function () {
  this.timeout(60_000);
  after(cleanupTempDirs);

  it('holds the pack being written and the last one finished in memory, and reads older ones from the repository', async () => {
    await withStore(64 << 10, new BlockPool(8), async (local, repo) => {
      // Three packs of 64 KiB (eight 8 KiB blobs each), then two blobs in a pack not yet finished.
      const packs = Array.from({ length: 3 }, () => Array.from({ length: 8 }, () => blob(8192)));
      for (const objects of packs) await local.addAll(objects);
      const unfinished = [blob(8192), blob(8192)];
      await local.addAll(unfinished);
      const [first, second, last] = packs as [typeof unfinished, typeof unfinished, typeof unfinished];

      const held = (objects: typeof unfinished): boolean[] => objects.map((o) => local.held(o.oid) !== undefined);
      assert.deepEqual(held(unfinished), [true, true]);
      assert.deepEqual(new Set(held(last)), new Set([true]), 'the last pack finished is still held');
      assert.deepEqual(new Set([...held(first), ...held(second)]), new Set([false]), 'older packs are not');
      // Held or not, every finished object is in the repository, and reads give the same bytes.
      for (const o of [...first, ...second, ...last]) {
        assert.equal(local.hasNow(o.oid), true);
        assert.deepEqual((await local.read(o.oid)).content, o.content);
      }

      await local.flush();
      assert.deepEqual(held(unfinished), [true, true], 'the pack flushed becomes the one held');
      assert.deepEqual(new Set(held(last)), new Set([false]));
      await local.close();
      assert.deepEqual(held(unfinished), [false, false], 'nothing is held once closed');
      execFileSync('git', ['--git-dir', repo.gitDir, 'fsck', '--strict'], { stdio: 'pipe' });
      assert.equal(execFileSync('git', ['--git-dir', repo.gitDir, 'count-objects', '-v']).toString().match(/^in-pack: (\d+)$/m)?.[1], '26');
    });
  });

  it('holds the block a message came in while its objects are held, pinned or not, and gives copies to read()', async () => {
    const pool = new BlockPool(8, true);
    await withStore(64 << 10, pool, async (local, repo) => {
      // One message of eight 8 KiB blobs, its objects views of one block (as FrameGuard makes them).
      const block = pool.take(9 * 8192) as Buffer;
      const lent = Array.from({ length: 8 }, (_, i) => {
        const content = block.subarray(i * 8192, (i + 1) * 8192);
        randomBytes(8192).copy(content);
        return { oid: hashObject('blob', content), type: 'blob' as const, content };
      });
      const originals = lent.map((o) => Buffer.from(o.content));
      await local.addAll(lent, true);
      const copy = await local.read(lent[0]?.oid as Oid);
      assert.equal(pool.owns(copy.content), false, 'read() gives a copy');
      const unpin = local.pin(local.held(lent[1]?.oid as Oid) as never);

      // 64 KiB: their pack is finished, the last one, still held.
      assert.equal(pool.owns(block), true);
      assert.deepEqual(local.held(lent[2]?.oid as Oid)?.content, originals[2]);
      // The next pack finishes: they leave memory, but a pin keeps the block until it is dropped.
      await local.addAll(Array.from({ length: 8 }, () => blob(8192)));
      assert.equal(local.held(lent[2]?.oid as Oid), undefined);
      assert.equal(pool.owns(block), true, 'pinned');
      unpin();
      assert.equal(pool.owns(block), false, 'given back once the last reference went');
      assert.equal(block[0], 0xdd);
      assert.deepEqual(copy.content, originals[0], 'the copy read before is intact');
      for (const [i, o] of lent.entries()) assert.deepEqual((await local.read(o.oid)).content, originals[i]);
      // A message not lent (a reader keeps it) is never given back.
      const kept = pool.take(9 * 8192) as Buffer;
      const unlent = { oid: hashObject('blob', kept.subarray(0, 8192)), type: 'blob' as const, content: kept.subarray(0, 8192) };
      await local.addAll([unlent]);
      for (let i = 0; i < 2; i++) await local.addAll(Array.from({ length: 8 }, () => blob(8192)));
      assert.equal(local.held(unlent.oid), undefined);
      assert.equal(pool.owns(kept), true);
      execFileSync('git', ['--git-dir', repo.gitDir, 'fsck', '--strict'], { stdio: 'pipe' });
    });
  });

  it('says it is backlogged while four packs\' worth waits to reach a finished pack, and no longer once they are written', async () => {
    await withStore(64 << 10, new BlockPool(8), async (local) => {
      // Messages arrive faster than the store writes them: each is held at once, written in turn.
      const stored = Array.from({ length: 5 }, () => local.addAll(Array.from({ length: 8 }, () => blob(8192))));
      assert.equal(local.backlogged, true);
      await Promise.all(stored);
      assert.equal(local.backlogged, false);
      await local.addAll(Array.from({ length: 4 }, () => blob(8192)));
      assert.equal(local.backlogged, false);
    });
  });

  it('stores an object that came deflated as its zlib stream, as it is, keeps its own deflate of one that did not, and marks what it stores uncompressed, to pass each on so', async () => {
    await withStore(1 << 20, new BlockPool(8), async (local, repo) => {
      const text = (seed: string): Buffer => Buffer.from(Array.from({ length: 600 }, (_, i) => `${seed} module ${i % 17} firmware`).join('\n'));
      const came = text('came deflated');
      // A stream at level 9 with a window of 512 bytes: not what gitfs's own deflate would make of it.
      const zlib = deflateSync(came, { level: 9, windowBits: 9 });
      const raw = text('came as content');
      const random = randomBytes(8192);
      // Compressible, but its sender says it holds it uncompressed: stored so, as it says.
      const storedText = text('held uncompressed by its sender');
      const [a, b, c, d] = [
        { oid: hashObject('blob', came), type: 'blob' as const, content: came, zlib },
        { oid: hashObject('blob', raw), type: 'blob' as const, content: raw },
        { oid: hashObject('blob', random), type: 'blob' as const, content: random },
        { oid: hashObject('blob', storedText), type: 'blob' as const, content: storedText, stored: true },
      ];
      await local.addAll([a, b, c, d]);
      assert.ok(local.held(a.oid)?.zlib?.equals(zlib), 'the stream that came is held');
      const own = local.held(b.oid)?.zlib;
      assert.ok(own !== undefined && own.length < raw.length && inflateSync(own).equals(raw), 'its own deflate is held');
      assert.equal(local.held(b.oid)?.stored, false);
      assert.deepEqual([local.held(c.oid)?.zlib, local.held(c.oid)?.stored], [undefined, true], 'incompressible content is stored, not deflated, and passed on as stored');
      assert.deepEqual([local.held(d.oid)?.zlib, local.held(d.oid)?.stored], [undefined, true]);
      await local.flush();
      const packDir = join(repo.gitDir, 'objects', 'pack');
      const pack = readdirSync(packDir).find((f) => f.endsWith('.pack')) as string;
      const packBytes = readFileSync(join(packDir, pack));
      assert.notEqual(packBytes.indexOf(zlib), -1, 'the pack holds the stream byte for byte');
      assert.notEqual(packBytes.indexOf(storedText.subarray(0, 1000)), -1, 'content said to be stored is in the pack uncompressed');
      execFileSync('git', ['--git-dir', repo.gitDir, 'fsck', '--strict'], { stdio: 'pipe' });
      for (const o of [a, b, c, d]) assert.ok(execFileSync('git', ['--git-dir', repo.gitDir, 'cat-file', 'blob', o.oid]).equals(o.content));
      // Read back out of the pack to be served: an entry stored uncompressed says so.
      const served = await repo.objects.readToServe(c.oid);
      assert.deepEqual([served.zlib, served.stored], [undefined, true]);
      assert.equal((await repo.objects.readToServe(a.oid)).stored, undefined);
    });
  });

  it('writes again an object whose copy here is damaged (replace), where the writer would skip it as held', async () => {
    await withStore(1 << 20, new BlockPool(8), async (local, repo) => {
      const o = blob(20_000);
      const w = await repo.newPackWriter();
      await w.write('blob', o.content);
      const name = (await w.finish())?.names[0] as string;
      // One bit flipped in its entry: the copy here no longer reads.
      const packPath = join(repo.gitDir, 'objects', 'pack', `${name}.pack`);
      const bytes = readFileSync(packPath);
      bytes[100] = (bytes[100] as number) ^ 0x10;
      writeFileSync(packPath, bytes);
      await assert.rejects(repo.objects.read(o.oid), { code: 'GITFS_CORRUPT_OBJECT' });
      local.replace([o.oid]);
      await local.addAll([o]);
      await local.flush();
      // Written the same way, the good copy makes a pack of the same name, renamed over the damaged one.
      assert.deepEqual((await repo.objects.read(o.oid)).content, o.content);
      const packs = repo.objects.packs();
      assert.deepEqual(packs.map((p) => p.path), [packPath]);
      assert.deepEqual(await verifyPack(packPath, packs[0]?.index as VerifiedIndex), { checksumOk: true, damaged: [] });
    });
  });
});

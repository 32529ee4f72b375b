import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { openSync, readdirSync, readSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { isGitfsError } from '../../src/errors.js';
import { hashObject } from '../../src/objects/oid.js';
import { Repository } from '../../src/repo/repository.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';

describe('objects read to serve peers (served-entry.ts, ObjectDatabase.readToServe)', function () {
  this.timeout(60_000);
  after(cleanupTempDirs);

  it('gives stored content, deflated content with its zlib stream, and reads a damaged entry the general way', async () => {
    const path = join(tempDir('served-entry'), 'repo');
    let repo = await Repository.init(path);
    try {
      const text = Buffer.from(Array.from({ length: 500 }, (_, i) => `firmware module ${i % 13}`).join('\n'));
      const random = randomBytes(8192);
      const writer = await repo.newPackWriter({});
      const [t, r] = [await writer.write('blob', text), await writer.write('blob', random)];
      await writer.finish();

      const deflated = await repo.objects.readToServe(t);
      assert.ok(deflated.content.equals(text));
      assert.ok(deflated.zlib !== undefined && deflated.zlib.length < text.length && inflateSync(deflated.zlib).equals(text), 'the zlib stream of the entry');
      const stored = await repo.objects.readToServe(r);
      assert.ok(stored.content.equals(random));
      assert.equal(stored.zlib, undefined, 'stored content goes as content');
      assert.equal(hashObject('blob', stored.content), r);

      // One bit of the random blob's entry flipped: its CRC fails, and the general read names the damage.
      const packDir = join(repo.gitDir, 'objects', 'pack');
      const fd = openSync(join(packDir, readdirSync(packDir).find((f) => f.endsWith('.pack')) as string), 'r+');
      const whole = Buffer.alloc(1 << 16);
      const n = readSync(fd, whole, 0, whole.length, 0);
      const at = whole.subarray(0, n).indexOf(random.subarray(100, 132)) + 10;
      assert.ok(at > 10);
      writeSync(fd, Buffer.from([(whole[at] ?? 0) ^ 0x10]), 0, 1, at);
      closeSync(fd);
      await repo.close(); // a fresh open: nothing of the pack is held in memory
      repo = await Repository.open(path);
      await assert.rejects(repo.objects.readToServe(r), (e: unknown) => isGitfsError(e) && /corrupt/i.test((e as Error).message));
      assert.ok((await repo.objects.readToServe(t)).content.equals(text), 'the other entry is still served');
    } finally {
      await repo.close();
    }
  });
});

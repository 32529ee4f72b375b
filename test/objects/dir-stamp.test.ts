import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { Repository } from '../../src/repo/repository.js';
import { tempDirs } from '../support/tmp.js';

/** Content of a blob whose id starts with `prefix` (two hex digits), found by trying. */
function blobStartingWith(prefix: string): string {
  for (let i = 0; i < 100_000; i++) {
    const text = `probe ${i}\n`;
    if (hashObject('blob', Buffer.from(text)).startsWith(prefix)) return text;
  }
  throw new Error(`no blob starting with ${prefix}`);
}

describe('misses looked up through directory stamps (dir-stamp.ts): what git writes loose is seen at once', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('sees at once what git writes loose, in a new fanout directory and in one that exists, while misses in bulk stay misses', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const gitWrite = (text: string): Oid => execFileSync('git', ['--git-dir', repo.gitDir, 'hash-object', '-w', '--stdin'], { input: text }).toString().trim() as Oid;
    try {
      const absent = Array.from({ length: 2000 }, (_, i) => hashObject('blob', Buffer.from(`never written ${i}`)));
      assert.deepEqual(new Set(await Promise.all(absent.map((o) => repo.objects.has(o)))), new Set([false]));
      await sleep(150); // the directories' stamps are old enough to be trusted now

      const first = gitWrite('first loose object\n'); // its fanout directory is new
      assert.equal(await repo.objects.has(first), true);
      await sleep(150);
      assert.deepEqual(new Set(await Promise.all(absent.map((o) => repo.objects.has(o)))), new Set([false]));

      const second = gitWrite(blobStartingWith(first.slice(0, 2))); // into the fanout directory that exists
      assert.equal(second.slice(0, 2), first.slice(0, 2));
      const [a, b, c] = await Promise.all([repo.objects.has(second), repo.objects.has(absent[0] as Oid), repo.objects.has(first)]);
      assert.deepEqual([a, b, c], [true, false, true]);
      assert.equal((await repo.objects.read(second)).type, 'blob');

      // Listed with a trusted stamp, then a new fanout directory appears.
      await sleep(150);
      assert.equal(await repo.objects.has(absent[1] as Oid), false);
      const other = first.startsWith('00') ? '01' : '00';
      const third = gitWrite(blobStartingWith(other));
      assert.equal(await repo.objects.has(third), true);
    } finally {
      await repo.close();
    }
  });
});

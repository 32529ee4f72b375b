/**
 * Storing a file the importer listed as regular (store-file.ts): if it is something else by the
 * time it is read (swapped while an import ran), it is refused at once, never waited on or read
 * without end.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { storeFile } from '../../src/files/store-file.js';
import { Repository } from '../../src/repo/repository.js';
import { tempDirs } from '../support/tmp.js';

describe('files/store-file: a file that is no longer regular when it is read', function () {
  this.timeout(30_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('a FIFO, a symlink to a FIFO or to /dev/zero are refused at once; a regular file is stored', async () => {
    const dir = tmp.make();
    const repo = await Repository.init(join(dir, 'repo'));
    const writer = await repo.newPackWriter();
    const c = { sink: writer, chunker: repo.chunker, treeParams: repo.format.tree, chunkThreshold: repo.format.chunkThreshold };
    try {
      execFileSync('mkfifo', [join(dir, 'fifo')]);
      symlinkSync(join(dir, 'fifo'), join(dir, 'to-fifo'));
      symlinkSync('/dev/zero', join(dir, 'to-zero'));
      writeFileSync(join(dir, 'plain'), 'plain\n');
      // Listed as small and as large (the two ways a file is read).
      for (const size of [6, 10 << 20]) {
        for (const name of ['fifo', 'to-fifo', 'to-zero']) {
          await assert.rejects(storeFile(join(dir, name), name, false, size, c), (e: unknown) => {
            const code = isGitfsError(e) ? e.code : (e as NodeJS.ErrnoException).code;
            assert.ok(code === ErrorCodes.SOURCE_UNREADABLE || code === 'ELOOP', `${name} (${size}): ${String(e)}`);
            return true;
          });
        }
      }
      const stored = await storeFile(join(dir, 'plain'), 'plain', false, 6, c);
      assert.equal(stored.bytes, 6);
    } finally {
      await writer.abort();
      await repo.close();
    }
  });
});

/** Data-file descriptors of the mount's handles (descriptors.ts): a reader kept open across commits holds one, not one per commit. */
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { MountFs } from '../../src/mount/mount-fs.js';
import { Repository } from '../../src/repo/repository.js';
import { Workspace } from '../../src/work/workspace.js';
import { tempDirs } from '../support/tmp.js';

/** Descriptors this process holds on the working layers' data files (deleted ones included). */
function dataDescriptors(dataDir: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dataDir);
    } catch {
      return false; // closed while listed
    }
  }).length;
}

describe('mount: descriptors of data files', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('a reader open across 20 cycles of write and commit holds one descriptor, and reads the newest content', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const ws = await Workspace.open(repo);
    const main = parseBranchName('main');
    const fs = new MountFs(ws, { uid: 0, gid: 0 });
    const read = async (fh: number): Promise<string> => {
      const into = Buffer.alloc(64);
      return into.subarray(0, await fs.read(fh, into, into.length, 0)).toString();
    };
    const write = async (text: string): Promise<void> => {
      const { fh } = await fs.open('/main/log', 2);
      await fs.write(fh, Buffer.from(text), text.length, 0);
      await fs.release(fh, '/main/log');
    };
    try {
      await fs.mkdir('/main', 0o755);
      const made = await fs.create('/main/log', 0o644);
      await fs.release(made, '/main/log');
      await write('v0\n');
      await ws.commit(main, 'c0', (id) => fs.handles.writing(id));
      const reader = (await fs.open('/main/log', 0)).fh;
      assert.equal(await read(reader), 'v0\n');
      for (let i = 1; i <= 20; i++) {
        await write(`v${i}\n`);
        await ws.commit(main, `c${i}`, (id) => fs.handles.writing(id));
      }
      assert.equal(await read(reader), 'v20\n');
      assert.ok(dataDescriptors(ws.store.dataDir) <= 1, `${dataDescriptors(ws.store.dataDir)} descriptors of data files held`);
      await fs.release(reader, '/main/log');
      assert.equal(dataDescriptors(ws.store.dataDir), 0);
    } finally {
      await ws.close();
      await repo.close();
    }
  });
});

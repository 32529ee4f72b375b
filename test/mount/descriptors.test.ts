/**
 * Handles of the mount's files and their data-file descriptors (mount-fs.ts, descriptors.ts): a
 * reader kept open across commits holds one descriptor, not one per commit; a reader opened while
 * the file is copied up to be written reads what is written; after a reset, readers of the
 * discarded file read what the path names now, and writers are told EIO.
 */
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { MountFs } from '../../src/mount/mount-fs.js';
import { FsError } from '../../src/work/fs-error.js';
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

interface Mounted {
  readonly repo: Repository;
  readonly ws: Workspace;
  readonly fs: MountFs;
  /** What handle `fh` reads from the start (up to 256 bytes). */
  read(fh: number): Promise<string>;
  /** Commits main, the files open for writing kept in the layer (as the mount commits). */
  commit(message: string): Promise<unknown>;
}

/** Runs `test` on a new repository's working layers through MountFs (no FUSE), branch main made. */
async function mounted(dir: string, test: (m: Mounted) => Promise<void>): Promise<void> {
  const repo = await Repository.init(join(dir, 'repo'));
  const ws = await Workspace.open(repo);
  const fs = new MountFs(ws, { uid: 0, gid: 0 });
  const read = async (fh: number): Promise<string> => {
    const into = Buffer.alloc(256);
    return into.subarray(0, await fs.read(fh, into, into.length, 0)).toString();
  };
  try {
    await fs.mkdir('/main', 0o755);
    await test({ repo, ws, fs, read, commit: (message) => ws.commit(main, message, (id) => fs.handles.writing(id)) });
  } finally {
    await ws.close();
    await repo.close();
  }
}

const main = parseBranchName('main');

describe('mount: descriptors of data files', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('a reader open across 20 cycles of write and commit holds one descriptor, and reads the newest content', async () => {
    await mounted(tmp.make(), async ({ ws, fs, read, commit }) => {
      const write = async (text: string): Promise<void> => {
        const { fh } = await fs.open('/main/log', 2);
        await fs.write(fh, Buffer.from(text), text.length, 0);
        await fs.release(fh, '/main/log');
      };
      const made = await fs.create('/main/log', 0o644);
      await fs.release(made, '/main/log');
      await write('v0\n');
      await commit('c0');
      const reader = (await fs.open('/main/log', 0)).fh;
      assert.equal(await read(reader), 'v0\n');
      for (let i = 1; i <= 20; i++) {
        await write(`v${i}\n`);
        await commit(`c${i}`);
      }
      assert.equal(await read(reader), 'v20\n');
      assert.ok(dataDescriptors(ws.store.dataDir) <= 1, `${dataDescriptors(ws.store.dataDir)} descriptors of data files held`);
      // Three opens to write at once each move the reader onto the new copy: it moves once, and none
      // closes what another replaced (a descriptor closed twice could be another file's by then).
      const opens = await Promise.all([0, 1, 2].map(() => fs.open('/main/log', 2)));
      for (const { fh } of opens) await fs.release(fh, '/main/log');
      assert.ok(dataDescriptors(ws.store.dataDir) <= 1, `${dataDescriptors(ws.store.dataDir)} descriptors of data files held`);
      await fs.release(reader, '/main/log');
      assert.equal(dataDescriptors(ws.store.dataDir), 0);
    });
  });

  it('a reader whose open raced a copy-up to write (its size read slowly) reads what the writer writes', async () => {
    await mounted(tmp.make(), async ({ repo, fs, read, commit }) => {
      const made = await fs.create('/main/f', 0o644);
      await fs.write(made, Buffer.from('committed\n'), 10, 0);
      await fs.release(made, '/main/f');
      await commit('c0');
      // A slow header read (a loaded disk, a node reading on demand), for the reader's open alone.
      const sizeOf = repo.objects.sizeOf.bind(repo.objects);
      let slow = true;
      repo.objects.sizeOf = async (oid) => {
        if (slow) {
          slow = false;
          await sleep(300);
        }
        return sizeOf(oid);
      };
      const reading = fs.open('/main/f', 0);
      await sleep(20);
      const { fh: writer } = await fs.open('/main/f', 2);
      await fs.write(writer, Buffer.from('WRITTEN!!\n'), 10, 0);
      const { fh: reader } = await reading;
      assert.equal(await read(reader), 'WRITTEN!!\n');
      await fs.release(reader, '/main/f');
      await fs.release(writer, '/main/f');
    });
  });

  it('after a reset, a reader of the discarded file reads what the path names now, and a writer is told EIO (its writes would land nowhere)', async () => {
    await mounted(tmp.make(), async ({ ws, fs, read, commit }) => {
      const made = await fs.create('/main/p', 0o644);
      await fs.write(made, Buffer.from('A'.repeat(100)), 100, 0);
      await fs.release(made, '/main/p');
      await commit('c0');
      const { fh: writer } = await fs.open('/main/p', 2);
      await fs.ftruncate(writer, 0);
      await fs.write(writer, Buffer.from('X'.repeat(10)), 10, 0);
      const { fh: reader } = await fs.open('/main/p', 0);
      assert.equal(await read(reader), 'X'.repeat(10));
      await ws.reset(main);
      await fs.afterReset(main);
      await assert.rejects(fs.write(writer, Buffer.from('after-reset'), 11, 10), (e: unknown) => e instanceof FsError && e.errno === 'EIO');
      assert.equal(await read(reader), 'A'.repeat(100));
      const { fh: fresh } = await fs.open('/main/p', 0);
      assert.equal(await read(fresh), 'A'.repeat(100));
      for (const fh of [writer, reader, fresh]) await fs.release(fh, '/main/p');
      assert.equal(dataDescriptors(ws.store.dataDir), 0);
    });
  });
});

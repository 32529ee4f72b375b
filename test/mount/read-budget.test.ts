/**
 * Many large files held open through a real mount, each read a little: what the mount process
 * keeps for them is bounded together (src/mount/read-budget.ts), not per file. Each open file's
 * reader keeps what it read and what it prefetched (8 MiB here); 96 of them would keep 768 MiB.
 */
import assert from 'node:assert/strict';
import { closeSync, linkSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitfsOk } from '../support/cli.js';
import { gitText } from '../support/git-env.js';
import { pseudoRandomBytes } from '../support/data.js';
import { mountSuiteDirs, TestMount } from '../support/mount.js';

const MiB = 1 << 20;
const FILES = 96;

/** The resident memory of process `pid`, in bytes. */
function resident(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
}

describe('mount: many large files open at once', function () {
  this.timeout(300_000);
  const tmp = mountSuiteDirs();

  /**
   * Mounts `repo` at `mnt`, opens `names` under main/ and reads each from its start (`length`
   * bytes, checked against `contents(i)`): how much the mount's resident memory grew with all of
   * them open; then `after` reads on through the same descriptors.
   */
  async function openAndRead(
    repo: string,
    mnt: string,
    o: { readonly names: readonly string[]; readonly length: number; readonly contents: (i: number) => Buffer; readonly after: (fds: readonly number[], into: Buffer) => void },
  ): Promise<number> {
    const m = await TestMount.start(repo, mnt);
    const pid = m.child.pid as number;
    const fds: number[] = [];
    try {
      const before = resident(pid);
      const into = Buffer.alloc(MiB);
      for (const [i, name] of o.names.entries()) {
        const fd = openSync(join(mnt, 'main', name), 'r');
        fds.push(fd);
        for (let at = 0; at < o.length; at += MiB) {
          assert.equal(readSync(fd, into, 0, MiB, at), MiB);
          assert.ok(into.equals(o.contents(i).subarray(at, at + MiB)), `${name} at ${at}`);
        }
      }
      const grew = resident(pid) - before;
      console.log(`      the mount's resident memory grew ${(grew / MiB).toFixed(0)} MiB with ${fds.length} files open, each read ${o.length / MiB} MiB`);
      o.after(fds, into);
      return grew;
    } finally {
      for (const fd of fds) closeSync(fd);
      await m.stop();
    }
  }

  it('keeps what their readers hold within one budget (256 MiB) however many are open (96 here: 768 MiB without it), and reads every byte right', async () => {
    const { repo, src, mnt } = tmp.place();
    const data = pseudoRandomBytes(8 * MiB, 'read budget');
    writeFileSync(join(src, 'f0.bin'), data);
    for (let i = 1; i < FILES; i++) linkSync(join(src, 'f0.bin'), join(src, `f${i}.bin`));
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'many large files']);
    // Each file read forward 4 MiB: its reader keeps those 4 segments and prefetches 4 more.
    const grew = await openAndRead(repo, mnt, {
      names: Array.from({ length: FILES }, (_, i) => `f${i}.bin`),
      length: 4 * MiB,
      contents: () => data,
      // The first files opened shed what they kept: read again, they fetch from the store, right.
      after: (fds, into) => {
        for (const at of [4 * MiB, 0]) {
          assert.equal(readSync(fds[0] as number, into, 0, MiB, at), MiB);
          assert.ok(into.equals(data.subarray(at, at + MiB)), `f0.bin again at ${at}`);
        }
      },
    });
    assert.ok(grew < 500 * MiB, `grew ${grew / MiB} MiB`);
  });

  it('counts large blobs git wrote, which open handles keep whole, in the same budget: past it they are read streamed, every byte right (24 blobs of 24 MiB open: 576 MiB held without it)', async () => {
    const { base, repo, mnt } = tmp.place();
    await gitfsOk(['init', '--repo', repo]);
    const blobs = Array.from({ length: 24 }, (_, i) => pseudoRandomBytes(24 * MiB, `git blob ${i}`));
    const lines = blobs.map((content, i) => {
      const file = join(base, `b${i}`);
      writeFileSync(file, content);
      return `100644 blob ${gitText(['-c', 'core.looseCompression=0', 'hash-object', '-w', file], { gitDir: repo })}\tb${i}.bin`;
    });
    const tree = gitText(['mktree'], { gitDir: repo, input: `${lines.join('\n')}\n` });
    gitText(['update-ref', 'refs/heads/main', gitText(['commit-tree', tree, '-m', 'large blobs, as git writes them'], { gitDir: repo })], { gitDir: repo });
    const grew = await openAndRead(repo, mnt, {
      names: blobs.map((_, i) => `b${i}.bin`),
      length: MiB,
      contents: (i) => blobs[i] as Buffer,
      // Every handle reads on, right, whether it keeps its blob whole or streams it now.
      after: (fds, into) => {
        for (const [i, content] of blobs.entries()) {
          for (const at of [MiB, 20 * MiB]) {
            assert.equal(readSync(fds[i] as number, into, 0, MiB, at), MiB);
            assert.ok(into.equals(content.subarray(at, at + MiB)), `b${i}.bin at ${at}`);
          }
        }
      },
    });
    assert.ok(grew < 480 * MiB, `grew ${grew / MiB} MiB`);
  });
});

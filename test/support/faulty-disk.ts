/**
 * A disk with a lost sector, for tests: a read-only FUSE file system showing the files of a
 * directory, whose reads fail with EIO wherever they touch the byte range given for a file, as a
 * disk answers for a sector it cannot read. No page cache (direct_io): every read is asked of it.
 *
 * Run as its own process (`node faulty-disk.js MOUNTPOINT DIR NAME FROM TO`), it prints `ready`
 * once mounted and unmounts on SIGTERM or once its stdin ends (the process that started it gone);
 * FaultyDisk.start() runs it (and stop() ends it, clearing the mount even when the process is gone).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERRNO, Fuse } from '../../src/mount/fuse-binding.js';

const EIO = ERRNO['EIO'] as number;
const ENOENT = ERRNO['ENOENT'] as number;

export class FaultyDisk {
  private constructor(
    readonly mountpoint: string,
    private readonly child: ChildProcess,
  ) {}

  /** Shows the files of `dir` at `mountpoint`, reads of bytes [from, to) of `name` failing with EIO. */
  static async start(mountpoint: string, dir: string, name: string, from: number, to: number): Promise<FaultyDisk> {
    // Its stdin is a pipe from here: the test process gone (killed even), it unmounts and ends.
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), mountpoint, dir, name, String(from), String(to)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const disk = new FaultyDisk(mountpoint, child);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the faulty disk at ${mountpoint} did not mount within 10 s`)), 10_000);
        child.stdout?.setEncoding('utf8').on('data', (s: string) => {
          if (!s.includes('ready')) return;
          clearTimeout(timer);
          resolve();
        });
        child.on('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`the faulty disk at ${mountpoint} exited (${code ?? 'signal'}) before it mounted`));
        });
      });
    } catch (e) {
      await disk.stop();
      throw e;
    }
    return disk;
  }

  /** Unmounts it and ends its process (a mount left by a process gone is cleared too). */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    try {
      execFileSync('fusermount', ['-uz', this.mountpoint], { stdio: 'ignore' });
    } catch {
      // Not mounted: the process unmounted it.
    }
  }
}

/** The server, in its own process. */
function serve(mountpoint: string, dir: string, name: string, from: number, to: number): void {
  const attr = (path: string): Record<string, unknown> => {
    const st = statSync(path);
    return { mode: st.mode, size: st.size, mtime: st.mtime, atime: st.atime, ctime: st.ctime, uid: st.uid, gid: st.gid, nlink: 1 };
  };
  const real = (path: string): string => join(dir, path.slice(1));
  const fuse = new Fuse(
    mountpoint,
    {
      readdir: (path, cb) => (path === '/' ? cb(0, readdirSync(dir)) : cb(ENOENT)),
      getattr: (path, cb) => {
        try {
          cb(0, (path === '/' ? { ...attr(dir), nlink: 2 } : attr(real(path))) as never);
        } catch {
          cb(ENOENT);
        }
      },
      open: (path, _flags, cb) => {
        try {
          cb(0, openSync(real(path), 'r'));
        } catch {
          cb(ENOENT);
        }
      },
      read: (path, fd, buffer, length, position, cb) => {
        if (path === `/${name}` && position < to && position + length > from) return cb(EIO);
        const n = readSync(fd, buffer, 0, Math.min(length, Math.max(0, fstatSync(fd).size - position)), position);
        cb(n);
      },
      release: (_path, fd, cb) => {
        closeSync(fd);
        cb(0);
      },
    },
    { fsname: 'faulty-disk,direct_io', timeout: false as unknown as number },
  );
  fuse.mount((err) => {
    if (err) {
      console.error(`faulty disk: cannot mount ${mountpoint}: ${err.message}`);
      process.exit(1);
    }
    process.stdout.write('ready\n');
  });
  const end = (): void => fuse.unmount(() => process.exit(0));
  process.once('SIGTERM', end);
  process.stdin.once('end', end).once('error', end).resume();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [mountpoint, dir, name, from, to] = process.argv.slice(2);
  if (mountpoint === undefined || dir === undefined || name === undefined || from === undefined || to === undefined) throw new Error('usage: faulty-disk MOUNTPOINT DIR NAME FROM TO');
  serve(mountpoint, dir, name, Number(from), Number(to));
}

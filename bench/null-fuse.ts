/**
 * The ceiling of gitfs's FUSE binding for bench/mount.sh: a file system on @cocalc/fuse-native
 * (patched as gitfs installs it) whose one file, /null.bin, answers every read at once by copying
 * from a buffer held in memory, with the read-ahead the gitfs mount sets. What a sequential read
 * of it costs is what the binding costs: each request crosses from a libfuse thread to Node's
 * main thread and back, where bindfs answers in the thread that received it.
 *
 * Usage: node dist/bench/null-fuse.js MOUNTPOINT [SIZE_BYTES]   (foreground; SIGTERM unmounts)
 */
import { stat } from 'node:fs/promises';
import { Fuse } from '../src/mount/fuse-binding.js';
import { widenReadAhead } from '../src/mount/read-ahead.js';

const [mountpoint, sizeArg = String(1 << 30)] = process.argv.slice(2);
if (mountpoint === undefined) throw new Error('usage: null-fuse MOUNTPOINT [SIZE_BYTES]');
const size = Number(sizeArg);
const source = Buffer.alloc(1 << 20, 0x5a);
const ENOENT = -2;

const attrs = (mode: number, bytes: number): Record<string, unknown> => {
  const now = new Date();
  return { mtime: now, atime: now, ctime: now, nlink: 1, size: bytes, mode, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
};

const fuse = new Fuse(
  mountpoint,
  {
    readdir: (path, cb) => (path === '/' ? cb(0, ['null.bin']) : cb(ENOENT)),
    getattr: (path, cb) => {
      if (path === '/') cb(0, attrs(0o40755, 4096) as never);
      else if (path === '/null.bin') cb(0, attrs(0o100444, size) as never);
      else cb(ENOENT);
    },
    open: (_path, _flags, cb) => cb(0, 1),
    release: (_path, _fd, cb) => cb(0),
    read: (_path, _fd, buf, len, pos, cb) => {
      const n = Math.max(0, Math.min(len, size - pos, source.length));
      source.copy(buf, 0, 0, n);
      cb(n);
    },
  },
  { force: true, mkdir: true },
);

fuse.mount((err) => {
  if (err) throw err;
  void stat(mountpoint)
    .then((st) => widenReadAhead(st.dev))
    .then(() => process.stdout.write('mounted\n'));
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => fuse.unmount(() => process.exit(0)));

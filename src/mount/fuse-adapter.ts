/**
 * Binds MountFs to @cocalc/fuse-native's callback operations. Every handler runs on Node's main
 * thread while a libfuse thread waits for its answer, so handlers only start asynchronous work
 * and never block; errors become negative errnos here and nowhere else.
 */
import { isGitfsError } from '../errors.js';
import type { BranchName } from '../branches/ref-name.js';
import type { Oid } from '../objects/oid.js';
import type { Attr } from './attrs.js';
import type { FileKind } from '../objects/entry-names.js';
import { FsError } from '../work/fs-error.js';
import { ERRNO, KEEP_CACHE, type FuseOperations } from './fuse-binding.js';
import type { HotLoop } from './hot-loop.js';
import type { MountFs } from './mount-fs.js';
import type { RequestGate } from './request-gate.js';

export type Log = (line: string) => void;

const EIO = -5;
const EPERM = -1;

/** The negative errno for an error thrown by MountFs (or by a system call under it). */
export function errnoOf(e: unknown, log: Log, op: string, path: string): number {
  if (e instanceof FsError) return ERRNO[e.errno] ?? EIO;
  const code = (e as { code?: unknown } | null)?.code;
  if (!isGitfsError(e) && typeof code === 'string' && /^E[A-Z]+$/.test(code) && typeof ERRNO[code] === 'number') return ERRNO[code] as number;
  log(`gitfs mount: ${op} ${path}: ${isGitfsError(e) ? `${e.message} [${e.code}]` : ((e as Error).stack ?? String(e))}`);
  // A full disk under a gitfs failure (the working layer's store) is told as one: a program may free space and try again.
  const errno = isGitfsError(e) ? e.data['errno'] : undefined;
  return errno === 'ENOSPC' || errno === 'EDQUOT' ? (ERRNO[errno] ?? EIO) : EIO;
}

/** A submodule (gitlink) is an empty directory. */
const TYPE_BITS = { dir: 0o040000, file: 0o100000, symlink: 0o120000, gitlink: 0o040000 } as const;

const DIR_STAT = { mode: TYPE_BITS.dir };

/** What readdir passes per name: only the type bits matter (they become the entry's d_type). */
function typeStat(kind: FileKind): { mode: number } {
  return { mode: TYPE_BITS[kind] };
}

/** What the session adds around the handlers: the event-loop spin, the request count, a wait before opens. */
export interface AdapterHooks {
  readonly hot: HotLoop;
  readonly gate: RequestGate;
  /**
   * Awaited before an open is answered (src/mount/session.ts: a branch settling after a change);
   * gives the heads the open answers from.
   */
  readonly beforeOpen: (path: string) => Promise<ReadonlyMap<BranchName, Oid>>;
  /** Told every attribute answer just before the kernel gets it (src/mount/answered-attrs.ts). */
  readonly answered: (path: string, attr: Attr) => void;
}

export function fuseOperations(fs: MountFs, log: Log, { hot, gate, beforeOpen, answered }: AdapterHooks): FuseOperations {
  /**
   * Ends a request in the gate once the binding has passed its answer on: the binding queues that
   * with process.nextTick, and ticks run in order. So a drained gate means the binding's native
   * side holds every answer, and `repliesDue` counts from there.
   */
  const answeredBy = (end: () => void): void => void process.nextTick(end);
  /** Runs `work`; answers (0, value) or (errno). */
  const call = <T>(op: string, path: string, work: () => Promise<T>, done: (err: number, value?: T) => void): void => {
    hot.touch();
    const end = gate.begin();
    work().then(
      (value) => {
        done(0, value);
        answeredBy(end);
      },
      (e: unknown) => {
        done(errnoOf(e, log, op, path));
        answeredBy(end);
      },
    );
  };
  /**
   * For read and write, whose callback takes a byte count or a negative errno. Reads do not keep
   * the loop spinning: the kernel sends them several at a time ahead of the reader, and a spinning
   * main thread took a whole CPU from the workers that read the chunks (1 of ~2.5 CPU-s per GiB).
   */
  const count = (op: string, path: string, work: () => Promise<number>, done: (n: number) => void): void => {
    if (op !== 'read') hot.touch();
    const end = gate.begin();
    work().then(
      (n) => {
        done(n);
        answeredBy(end);
      },
      (e: unknown) => {
        done(errnoOf(e, log, op, path));
        answeredBy(end);
      },
    );
  };
  const told = (path: string, attr: Attr): Attr => {
    answered(path, attr);
    return attr;
  };
  return {
    getattr: (path, cb) => call('getattr', path, async () => told(path, await fs.getattr(path)), cb),
    fgetattr: (path, fd, cb) => call('fgetattr', path, async () => told(path, await fs.fgetattr(fd)), cb),
    readdir: (path, cb) =>
      call('readdir', path, () => fs.readdir(path), (err, listed) =>
        err !== 0 || listed === undefined
          ? cb(err)
          : cb(0, ['.', '..', ...listed.map((e) => e.name)], [DIR_STAT, DIR_STAT, ...listed.map((e) => typeStat(e.kind))] as never),
      ),
    readlink: (path, cb) => call('readlink', path, () => fs.readlink(path), cb),
    access: (path, mode, cb) => call('access', path, () => fs.access(path, mode), cb),
    open: (path, flags, cb) =>
      call(
        'open',
        path,
        async () => {
          const { fh, keepCache } = await fs.open(path, flags, await beforeOpen(path));
          return keepCache ? fh | KEEP_CACHE : fh;
        },
        cb,
      ),
    create: (path, mode, cb) => call('create', path, () => fs.create(path, mode), cb),
    read: (path, fd, buf, len, pos, cb) => count('read', path, () => fs.read(fd, buf, len, pos), cb),
    write: (path, fd, buf, len, pos, cb) => count('write', path, () => fs.write(fd, buf, len, pos), cb),
    release: (path, fd, cb) => call('release', path, () => fs.release(fd, path), cb),
    truncate: (path, size, cb) => call('truncate', path, () => fs.truncate(path, size), cb),
    ftruncate: (path, fd, size, cb) => call('ftruncate', path, () => fs.ftruncate(fd, size), cb),
    fsync: (path, _dataSync, fd, cb) => call('fsync', path, () => fs.fsync(fd), cb),
    fsyncdir: (path, _dataSync, _fd, cb) => call('fsyncdir', path, () => fs.fsyncdir(), cb),
    flush: (_path, _fd, cb) => cb(0),
    mkdir: (path, mode, cb) => call('mkdir', path, () => fs.mkdir(path, mode), cb),
    rmdir: (path, cb) => call('rmdir', path, () => fs.rmdir(path), cb),
    unlink: (path, cb) => call('unlink', path, () => fs.unlink(path), cb),
    symlink: (target, path, cb) => call('symlink', path, () => fs.symlink(target, path), cb),
    rename: (from, to, cb) => call('rename', from, () => fs.rename(from, to), cb),
    chmod: (path, mode, cb) => call('chmod', path, () => fs.chmod(path, mode), cb),
    utimens: (path, atime, mtime, cb) => call('utimens', path, () => fs.utimens(path, Number(atime), Number(mtime)), cb),
    statfs: (path, cb) => call('statfs', path, () => fs.statfs(), cb),
    // Git stores no owners: chown is accepted and changes nothing (so cp -a, tar and rsync -a
    // running as root work); hard links and special files are refused (README, "Mount semantics").
    chown: (_path, _uid, _gid, cb) => cb(0),
    link: (_from, _to, cb) => cb(EPERM),
    mknod: (_path, _mode, _dev, cb) => cb(EPERM),
  };
}

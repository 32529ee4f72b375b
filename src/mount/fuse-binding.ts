/**
 * The FUSE binding, loaded once. @cocalc/fuse-native is CommonJS whose bundled types declare an
 * ES default export; at run time the module itself is the class, so it is required here and
 * typed from those declarations.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as FuseNative from '@cocalc/fuse-native';

export type FuseClass = typeof FuseNative.default.default;
export type FuseOperations = FuseNative.default.OPERATIONS;
export type FuseInstance = InstanceType<FuseClass>;

const requireHere = createRequire(import.meta.url);
export const Fuse = requireHere('@cocalc/fuse-native') as FuseClass;

/** The addon itself, as the package loads it (node-gyp-build returns the one loaded instance). */
const packageDir = dirname(requireHere.resolve('@cocalc/fuse-native/package.json'));
const addon = createRequire(join(packageDir, 'index.js'))('node-gyp-build')(packageDir) as {
  fuse_native_unmount(mnt: string, thread: Buffer): void;
  gitfs_replies_due(): number;
};

/**
 * libfuse threads holding an answer from the binding whose reply they have not yet written to the
 * kernel (each answer wakes the thread that waits for it, which then replies; one request may take
 * several answers and gets one reply). Counted by the binding, patched at install
 * (DEPENDENCIES.md); across every mount of this process.
 */
export function repliesDue(): number {
  return addon.gitfs_replies_due();
}

/**
 * Lets go of a mount the kernel has already dropped (`fusermount -u` from outside, or a refused-
 * if-busy unmount that succeeded). The package's own unmount runs `fusermount -uz` first and,
 * when that fails because nothing is mounted, never releases the handle that keeps Node's event
 * loop alive: the process would not exit.
 */
export function releaseUnmounted(fuse: FuseInstance): void {
  const thread = (fuse as unknown as { _thread: Buffer | null })._thread;
  if (thread !== null) addon.fuse_native_unmount(fuse.mnt, thread);
}

/**
 * Set in a handle number that open answers: the kernel keeps the pages it cached for the file
 * (FOPEN_KEEP_CACHE). The binding's open is patched at install to read it (DEPENDENCIES.md).
 */
export const KEEP_CACHE = 1 << 30;

/** Negative errno numbers by name (ENOENT → -2), as the binding's callbacks want them. */
export const ERRNO = Fuse as unknown as Readonly<Record<string, number | undefined>>;

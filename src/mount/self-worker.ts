/**
 * Worker thread of a mount process: the calls that wait on the mount itself, made synchronously
 * here, one at a time (self-thread.ts). A stat of one of the mount's paths is a request the main
 * thread must answer; a FUSE notification waits for a directory lock that a request in progress
 * holds until the main thread answers it. Made on libuv's thread pool instead, such calls can
 * hold every pool thread while the main thread's answer waits for one to read the repository.
 * While a call is in the kernel, slot 0 of the shared `inCall` array is 1.
 */
import { lstatSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

export type SelfCall =
  /** An lstat of `path` (through the mount; node ids are per path, a symlink's its own). */
  | { readonly id: number; readonly op: 'stat'; readonly path: string }
  /** `message` written to descriptor `fd` (the mount's /dev/fuse). */
  | { readonly id: number; readonly op: 'write'; readonly fd: number; readonly message: Uint8Array };

export type SelfAnswer =
  | { readonly id: number; readonly ino: bigint; readonly dev: number }
  | { readonly id: number; readonly done: true }
  /** The call failed with this errno code (or message). */
  | { readonly id: number; readonly error: string };

export interface SelfWorkerData {
  /** One Int32: 1 while a call is in the kernel. */
  readonly inCall: SharedArrayBuffer;
}

const inCall = new Int32Array((workerData as SelfWorkerData).inCall);

function call(c: SelfCall): SelfAnswer {
  Atomics.store(inCall, 0, 1);
  try {
    if (c.op === 'stat') {
      const st = lstatSync(c.path, { bigint: true });
      return { id: c.id, ino: st.ino, dev: Number(st.dev) };
    }
    writeSync(c.fd, c.message);
    return { id: c.id, done: true };
  } catch (e) {
    return { id: c.id, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  } finally {
    Atomics.store(inCall, 0, 0);
    Atomics.notify(inCall, 0);
  }
}

parentPort?.on('message', (c: SelfCall) => parentPort?.postMessage(call(c)));

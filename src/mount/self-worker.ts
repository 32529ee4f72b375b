/**
 * Worker thread of a mount process: the calls that wait on the mount itself, made synchronously
 * here, one at a time (self-thread.ts). A stat of one of the mount's paths is a request the main
 * thread must answer; a FUSE notification waits for a directory lock that a request in progress
 * holds until the main thread answers it. Made on libuv's thread pool instead, such calls can
 * hold every pool thread while the main thread's answer waits for one to read the repository.
 */
import { statSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

export type SelfCall =
  /** A stat of `path` (through the mount). */
  | { readonly id: number; readonly op: 'stat'; readonly path: string }
  /** `message` written to descriptor `fd` (the mount's /dev/fuse). */
  | { readonly id: number; readonly op: 'write'; readonly fd: number; readonly message: Uint8Array };

export type SelfAnswer =
  | { readonly id: number; readonly ino: bigint; readonly dev: number }
  | { readonly id: number; readonly done: true }
  /** The call failed with this errno code (or message). */
  | { readonly id: number; readonly error: string };

function call(c: SelfCall): SelfAnswer {
  try {
    if (c.op === 'stat') {
      const st = statSync(c.path, { bigint: true });
      return { id: c.id, ino: st.ino, dev: Number(st.dev) };
    }
    writeSync(c.fd, c.message);
    return { id: c.id, done: true };
  } catch (e) {
    return { id: c.id, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
}

parentPort?.on('message', (c: SelfCall) => parentPort?.postMessage(call(c)));

/**
 * The mount process's own thread for calls that wait on its mount (self-worker.ts): stats of its
 * paths and FUSE notifications, answered in the order they were made. libuv's pool (4 threads)
 * stays for the reads that answering needs; a test mounts with a pool of one thread
 * (test/mount/commit.test.ts). The thread keeps the process alive while it has calls to answer,
 * and once closed until it ends (`ended` bounds that). A thread that fails is replaced, up to
 * RESTARTS times; after that, or once closed, every call fails at once (`ENDED`).
 *
 * Node joins its threads when the process exits: an exit while this thread is in the kernel on
 * the mount's account (an uncaught error in the middle of a stat) would wait for ever, the main
 * thread answering no more. The exit waits up to EXIT_WAIT_MS for the call to return; if it does
 * not, the process writes the error that is ending it (Node would print that only after the exit
 * handlers) and ends itself with SIGKILL, which ends the waiting thread too.
 */
import { writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { SelfAnswer, SelfCall, SelfWorkerData } from './self-worker.js';

export interface SelfStat {
  readonly ino: bigint;
  readonly dev: number;
}

/** What a call answers once the thread is closed or gone for good. */
export const ENDED = 'ENDED';
const RESTARTS = 3;
const EXIT_WAIT_MS = 200;

type Call = { readonly op: 'stat'; readonly path: string } | { readonly op: 'write'; readonly fd: number; readonly message: Uint8Array };

export class SelfThread {
  private worker!: Worker;
  /** Slot 0: 1 while the thread is in a call. */
  private inCall!: Int32Array;
  private readonly waiting = new Map<number, (a: SelfAnswer) => void>();
  private nextId = 0;
  private restarts = 0;
  /** Closed, or gone for good: calls fail at once. */
  private over = false;
  private threadEnded!: Promise<void>;
  /** The error that is ending the process, if one is. */
  private fault: unknown;
  private readonly onFault = (e: unknown): void => {
    this.fault = e;
  };
  private readonly onProcessExit = (): void => {
    if (Atomics.wait(this.inCall, 0, 1, EXIT_WAIT_MS) !== 'timed-out') return;
    const why = this.fault instanceof Error ? (this.fault.stack ?? this.fault.message) : this.fault === undefined ? 'exit' : String(this.fault);
    writeSync(2, `gitfs mount: ended with SIGKILL, its own thread waiting on the mount, after: ${why}\n`);
    process.kill(process.pid, 'SIGKILL');
  };

  constructor(private readonly log: (line: string) => void) {
    this.start();
    process.on('exit', this.onProcessExit);
    process.on('uncaughtExceptionMonitor', this.onFault);
  }

  private start(): void {
    const inCall = new SharedArrayBuffer(4);
    const worker = new Worker(new URL('./self-worker.js', import.meta.url), { workerData: { inCall } satisfies SelfWorkerData });
    this.worker = worker;
    this.inCall = new Int32Array(inCall);
    worker.on('message', (a: SelfAnswer) => {
      this.waiting.get(a.id)?.(a);
      this.waiting.delete(a.id);
      if (this.waiting.size === 0 && !this.over) worker.unref();
    });
    worker.on('error', (e) => this.log(`gitfs mount: the mount's own thread failed: ${e.message}`));
    this.threadEnded = new Promise((resolve) =>
      worker.on('exit', (code) => {
        resolve();
        if (this.over) return this.stopListening();
        // Its calls are lost: they fail, and the next ones go to a new thread.
        this.failWaiting(`the thread exited (code ${code})`);
        if (this.restarts++ < RESTARTS) {
          this.log(`gitfs mount: the mount's own thread exited (code ${code}): started again`);
          this.start();
        } else {
          this.log(`gitfs mount: the mount's own thread exited (code ${code}) ${RESTARTS + 1} times: the kernel's caches are no longer told to forget (stale names for up to their timeout)`);
          this.over = true;
          this.stopListening();
        }
      }),
    );
    // After the listeners: attaching a 'message' listener refs the worker's port again.
    worker.unref();
  }

  /** The inode number and device of `path` (not following a last symlink); undefined if that failed. */
  async stat(path: string): Promise<SelfStat | undefined> {
    const a = await this.call({ op: 'stat', path });
    return 'ino' in a ? { ino: a.ino, dev: a.dev } : undefined;
  }

  /** Writes `message` to `fd`: the errno code (or reason, ENDED) if that failed. */
  async write(fd: number, message: Uint8Array): Promise<string | undefined> {
    const a = await this.call({ op: 'write', fd, message });
    return 'error' in a ? a.error : undefined;
  }

  /**
   * Calls waiting fail now (no queued call runs after this); the thread ends once its call of the
   * moment returns (a stat of the mount returns once it is unmounted): see `ended`.
   */
  close(): void {
    if (this.over) return;
    this.over = true;
    this.failWaiting(ENDED);
    // terminate() refs the thread until it has ended.
    void this.worker.terminate();
  }

  /**
   * Once closed and unmounted: waits up to `ms` for the thread to end. Past that the thread no
   * longer keeps the process alive (at exit, the exit handler ends the process).
   */
  async ended(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([this.threadEnded.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), ms)))]);
    clearTimeout(timer);
    if (!late) return;
    this.log(`gitfs mount: the mount's own thread still waits on the mount ${ms} ms after the unmount`);
    this.worker.unref();
  }

  private call(c: Call): Promise<SelfAnswer> {
    const id = this.nextId++;
    if (this.over) return Promise.resolve({ id, error: ENDED });
    const answer = new Promise<SelfAnswer>((resolve) => this.waiting.set(id, resolve));
    if (this.waiting.size === 1) this.worker.ref();
    this.worker.postMessage({ ...c, id } satisfies SelfCall);
    return answer;
  }

  private failWaiting(why: string): void {
    for (const [id, resolve] of this.waiting) resolve({ id, error: why });
    this.waiting.clear();
  }

  private stopListening(): void {
    process.off('exit', this.onProcessExit);
    process.off('uncaughtExceptionMonitor', this.onFault);
  }
}

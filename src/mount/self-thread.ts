/**
 * The mount process's own thread for calls that wait on its mount (self-worker.ts): stats of its
 * paths and FUSE notifications, answered in the order they were made. libuv's pool (4 threads)
 * stays for the reads that answering needs; a test mounts with a pool of one thread
 * (test/mount/commit.test.ts). The thread keeps the process alive only while it has calls to
 * answer; closed, or failed, it answers every call as failed, at once.
 *
 * Node joins its threads when the process exits: an exit while this thread waits on the mount
 * (an uncaught error in the middle of a stat) would wait for ever, the main thread answering no
 * more. Then the process ends itself with SIGKILL, which ends the waiting thread too, having
 * written the error that ended it (Node would print that only after the exit handlers).
 */
import { writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { SelfAnswer, SelfCall } from './self-worker.js';

export interface SelfStat {
  readonly ino: bigint;
  readonly dev: number;
}

type Call = { readonly op: 'stat'; readonly path: string } | { readonly op: 'write'; readonly fd: number; readonly message: Uint8Array };

export class SelfThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, (a: SelfAnswer) => void>();
  private nextId = 0;
  /** Why calls fail at once: closed, or the thread ended. */
  private ended: string | undefined;
  /** Calls posted that the thread has not answered (one of them it may be in). */
  private outstanding = 0;
  private threadEnded = false;
  /** The error that is ending the process, if one is. */
  private fault: unknown;
  private readonly onFault = (e: unknown): void => {
    this.fault = e;
  };
  private readonly onProcessExit = (): void => {
    if (this.threadEnded || this.outstanding === 0) return;
    const why = this.fault instanceof Error ? (this.fault.stack ?? this.fault.message) : this.fault === undefined ? 'exit' : String(this.fault);
    writeSync(2, `gitfs mount: ended with SIGKILL, its own thread waiting on the mount, after: ${why}\n`);
    process.kill(process.pid, 'SIGKILL');
  };

  constructor(private readonly log: (line: string) => void) {
    this.worker = new Worker(new URL('./self-worker.js', import.meta.url));
    this.worker.on('message', (a: SelfAnswer) => {
      if (--this.outstanding === 0) this.worker.unref();
      this.waiting.get(a.id)?.(a);
      this.waiting.delete(a.id);
    });
    this.worker.on('error', (e) => this.end(`the mount's own thread failed: ${e.message}`));
    this.worker.on('exit', (code) => {
      this.threadEnded = true;
      process.off('exit', this.onProcessExit);
      process.off('uncaughtExceptionMonitor', this.onFault);
      this.end(`the mount's own thread exited (code ${code})`);
    });
    process.on('exit', this.onProcessExit);
    process.on('uncaughtExceptionMonitor', this.onFault);
    // After the listeners: attaching a 'message' listener refs the worker's port again.
    this.worker.unref();
  }

  /** The inode number and device of `path`; undefined if the stat failed. */
  async stat(path: string): Promise<SelfStat | undefined> {
    const a = await this.call({ op: 'stat', path });
    return 'ino' in a ? { ino: a.ino, dev: a.dev } : undefined;
  }

  /** Writes `message` to `fd`: the errno code (or reason) if that failed. */
  async write(fd: number, message: Uint8Array): Promise<string | undefined> {
    const a = await this.call({ op: 'write', fd, message });
    return 'error' in a ? a.error : undefined;
  }

  /**
   * Calls waiting fail now; the thread ends once its call of the moment returns (a stat of the
   * mount returns when it is unmounted): the promise says when. Await it only once unmounted.
   */
  close(): Promise<void> {
    this.end('closed');
    return this.worker.terminate().then(() => undefined);
  }

  private call(c: Call): Promise<SelfAnswer> {
    const id = this.nextId++;
    if (this.ended !== undefined) return Promise.resolve({ id, error: this.ended });
    const answer = new Promise<SelfAnswer>((resolve) => this.waiting.set(id, resolve));
    if (this.outstanding++ === 0) this.worker.ref();
    this.worker.postMessage({ ...c, id } satisfies SelfCall);
    return answer;
  }

  private end(why: string): void {
    if (this.ended === undefined && why !== 'closed') this.log(`gitfs mount: ${why}`);
    this.ended ??= why;
    for (const [id, resolve] of this.waiting) resolve({ id, error: why });
    this.waiting.clear();
  }
}

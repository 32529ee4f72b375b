/**
 * A job of many concurrent tasks that stops at its first failure: the failure is kept, `signal`
 * aborts so siblings still running stop at their next step, and `all` waits for every task to
 * settle before it rethrows that first failure, so nothing keeps running (or writing) after the
 * job failed.
 */
export class FirstFailure {
  private readonly stop = new AbortController();
  private failure: unknown;
  private failed = false;

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  /** Like Promise.all, with the stopping above; nested calls share the one first failure. */
  async all<T>(tasks: Array<Promise<T>>): Promise<T[]> {
    const results = await Promise.allSettled(
      tasks.map((t) =>
        t.catch((e: unknown) => {
          if (!this.failed) {
            this.failed = true;
            this.failure = e;
            this.stop.abort(e);
          }
          throw e;
        }),
      ),
    );
    if (this.failed) throw this.failure;
    return results.map((r) => (r as PromiseFulfilledResult<T>).value);
  }

  /**
   * `task` for every item, at most `window` at once (a directory of a million files holds a
   * window of tasks, not a million), results in order; no task starts after the first failure.
   */
  async map<I, T>(items: readonly I[], window: number, task: (item: I) => Promise<T>): Promise<T[]> {
    const out = new Array<T>(items.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (!this.failed && next < items.length) {
        const i = next++;
        out[i] = await task(items[i] as I);
      }
    };
    await this.all(Array.from({ length: Math.min(window, items.length) }, worker));
    return out;
  }
}

/**
 * Keeps Node's event loop polling without sleeping for a moment after each FUSE request.
 *
 * A request reaches the main thread through a libuv async handle; when the loop sleeps in
 * epoll, each one pays a thread wake-up on arrival. During a burst of metadata requests (find,
 * ls -lR, git status) a loop kept busy by setImmediate polls with a zero timeout instead and
 * picks the next request up at once. The window is short, so an idle mount costs nothing.
 */
export class HotLoop {
  private until = 0;
  private spinning = false;

  constructor(private readonly windowMs: number) {}

  /** A request arrived: stay awake until windowMs after the latest one. */
  touch(): void {
    this.until = performance.now() + this.windowMs;
    if (!this.spinning) {
      this.spinning = true;
      setImmediate(this.spin);
    }
  }

  private readonly spin = (): void => {
    if (performance.now() < this.until) setImmediate(this.spin);
    else this.spinning = false;
  };
}

/**
 * A whole unchunked blob an open handle keeps (blob-cache.ts: a blob git wrote, up to the read
 * limit), counted in the mount's read budget (read-budget.ts) like the chunked files' segments.
 * Kept whole, reads anywhere in it cost nothing more; without room for it, or once shed to make
 * room for a read elsewhere, the handle reads it streamed instead (blob-stream-reader.ts: a
 * window of the last 8 MiB, forward reads in one pass). Ten open handles on ten 200 MiB blobs
 * held 2 GiB.
 */
import type { BudgetHolder, ReadBudget, Shed } from './read-budget.js';

export class HeldBlob implements BudgetHolder {
  private held = false;

  constructor(
    private readonly budget: ReadBudget,
    private readonly bytes: number,
    /** Drops the handle's copy. */
    private readonly letGo: () => void,
  ) {}

  /** Takes room for the blob (others shedding for it): whether the handle may keep it whole. */
  take(): boolean {
    if (!this.budget.room(this, this.bytes, true)) return false;
    this.held = true;
    this.budget.keep(this, this.bytes);
    return true;
  }

  /** Whether the handle keeps the blob whole: else it reads it streamed. */
  get kept(): boolean {
    return this.held;
  }

  /** A read of it: others shed before it. */
  read(): void {
    this.budget.read(this);
  }

  /** Only for a read that asked for its bytes: the whole blob is worth more than another's read or prefetched segments. */
  shed(what: Shed): void {
    if (what !== 'all' || !this.held) return;
    this.letGo();
    this.release();
  }

  /** The handle closed, or moved to other content. */
  release(): void {
    this.held = false;
    this.budget.leave(this);
  }
}

/**
 * The memory that open files' readers keep between reads (range-reader.ts: segments read or
 * prefetched, and spare buffers), bounded across every open file of the mount. Each reader keeps
 * at most ~10 MiB, but a mount may hold any number of files open (a parallel `md5sum` over a
 * tree, a build holding its inputs): without a bound, 1 000 open files read a little could keep
 * 10 GiB. Past the bound, the readers least recently read let go what no read uses, and a reader
 * that still finds no room prefetches nothing: only what a read asks for is then read, so memory
 * stays near the bound plus the reads in flight.
 */

/** A reader whose kept memory counts against the budget. */
export interface BudgetHolder {
  /** Lets go of everything no read in flight uses; the holder reports its new total by `keep`. */
  shed(): void;
}

export class ReadBudget {
  /** Every holder's kept bytes, least recently read first (a read moves it last). */
  private readonly holders = new Map<BudgetHolder, number>();
  private total = 0;

  constructor(readonly limitBytes: number) {}

  /** `holder` now keeps `bytes`. */
  keep(holder: BudgetHolder, bytes: number): void {
    this.total += bytes - (this.holders.get(holder) ?? 0);
    this.holders.set(holder, bytes);
  }

  /** `holder` was just read: it sheds after every other. */
  read(holder: BudgetHolder): void {
    const bytes = this.holders.get(holder) ?? 0;
    this.holders.delete(holder);
    this.holders.set(holder, bytes);
  }

  /** Bytes every holder keeps. */
  get kept(): number {
    return this.total;
  }

  /** Whether more is kept than the bound. */
  get over(): boolean {
    return this.total > this.limitBytes;
  }

  /** `holder` keeps nothing any more (its file was closed). */
  leave(holder: BudgetHolder): void {
    this.total -= this.holders.get(holder) ?? 0;
    this.holders.delete(holder);
  }

  /** Whether `holder` may keep `bytes` more; if not at first, the holders least recently read shed what they keep, until there is room. */
  room(holder: BudgetHolder, bytes: number): boolean {
    if (this.total + bytes <= this.limitBytes) return true;
    for (const other of [...this.holders.keys()]) {
      if (other === holder) continue;
      other.shed();
      if (this.total + bytes <= this.limitBytes) return true;
    }
    return false;
  }
}

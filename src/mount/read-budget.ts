/**
 * The memory that open files' readers keep between reads (range-reader.ts: segments read or
 * prefetched, and spare buffers), bounded across every open file of the mount. Each reader keeps
 * at most ~10 MiB, but a mount may hold any number of files open (a parallel `md5sum` over a
 * tree, a build holding its inputs): without a bound, 1 000 open files read a little could keep
 * 10 GiB. Room is made from the readers least recently read: first what they have read already
 * (and their spares), and only for a segment a read asks for also what they prefetched and have
 * not read yet (a reader sheds all of that at once). A prefetch never evicts another's prefetch:
 * without room it is not made, and the segment is read when asked for. So memory stays near the
 * bound plus the reads in flight, and what was prefetched is read again only when reads ask for
 * more than what was read already frees.
 */

/** What a holder lets go of: what it has read already (and its spares), or everything no read in flight uses. */
export type Shed = 'read' | 'all';

/** A reader whose kept memory counts against the budget. */
export interface BudgetHolder {
  /** Lets go of `what`; the holder reports its new total by `keep`. */
  shed(what: Shed): void;
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

  /** Readers counted (each open file read since it was opened, until it closes). */
  get readers(): number {
    return this.holders.size;
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

  /**
   * Whether `holder` may keep `bytes` more. If not at first, the others least recently read shed
   * what they have read, then (for a segment a read asks for, `asked`) what they prefetched too,
   * until there is room.
   */
  room(holder: BudgetHolder, bytes: number, asked: boolean): boolean {
    const fits = (): boolean => this.total + bytes <= this.limitBytes;
    for (const what of asked ? (['read', 'all'] as const) : (['read'] as const)) {
      if (fits()) return true;
      for (const other of [...this.holders.keys()]) {
        if (other === holder) continue;
        other.shed(what);
        if (fits()) return true;
      }
    }
    return fits();
  }
}

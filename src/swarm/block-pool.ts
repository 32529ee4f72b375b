/**
 * Fixed-size memory blocks for the swarm's bulk messages, reused by hand rather than left to the
 * collector. A relay joins every incoming ~1 MiB message into one buffer and encodes every
 * outgoing one into another. Left to V8, those buffers are freed only at a major collection (the
 * incoming ones live for two packs' time), so the heap grows by ~170 MiB during an 8-node
 * transfer, and each new page costs a fault; on the VMs we measure on a fault costs ~11 µs,
 * and faults were ~17 % of a relay's CPU (BENCHMARKS.md). Blocks from this pool are taken,
 * filled, and given back when nothing can read them any more, so a node's transfer memory stays
 * at what it holds at once.
 *
 * Ownership, per block:
 * - `take` hands a block out to its taker. A block that is never given back is simply left to
 *   the collector: losing track of one is safe, giving one back too early is not.
 * - the taker may `give` it back once it holds no view of it and has handed none on (an outgoing
 *   message, once the socket has taken its bytes);
 * - or the block is `adopt`ed: it becomes reference-counted, with the adopter's reference
 *   first, and returns to the pool when the last `release` balances it and every `retain`
 *   (an incoming message whose objects LocalObjects holds until their pack leaves memory).
 */

/** A block: a 1 MiB batch of objects with its framing, with room to spare. */
export const BLOCK_BYTES = (1 << 20) + (64 << 10);
/** Smaller messages are not worth a block: they are allocated as they come. */
export const MIN_POOLED_BYTES = 64 << 10;

export class BlockPool {
  private readonly free: ArrayBuffer[] = [];
  /** Blocks handed out: 0 while their taker owns them, else their count of references once adopted. */
  private readonly out = new WeakMap<ArrayBuffer, number>();
  readonly stats = { made: 0, reused: 0, returned: 0 };

  /**
   * @param maxFree blocks kept for reuse once given back (more go to the collector): what an idle node keeps.
   * @param poison fill blocks given back with 0xdd, so that a view read after its block went back shows (tests).
   */
  constructor(
    private readonly maxFree: number,
    private readonly poison = false,
  ) {}

  /** A block's first `bytes` bytes, to fill, or undefined when `bytes` is outside what blocks are for. */
  take(bytes: number): Buffer | undefined {
    if (bytes < MIN_POOLED_BYTES || bytes > BLOCK_BYTES) return undefined;
    let block = this.free.pop();
    if (block === undefined) {
      block = Buffer.allocUnsafeSlow(BLOCK_BYTES).buffer;
      this.stats.made++;
    } else this.stats.reused++;
    this.out.set(block, 0);
    return Buffer.from(block, 0, bytes);
  }

  /** Whether `view` is of a block handed out (taken, or adopted). */
  owns(view: Uint8Array): boolean {
    return this.out.has(view.buffer as ArrayBuffer);
  }

  /** Gives back a block its taker owns (not adopted); anything else is ignored. */
  give(view: Uint8Array): void {
    if (this.out.get(view.buffer as ArrayBuffer) === 0) this.back(view.buffer as ArrayBuffer);
  }

  /** Makes a taken block reference-counted, with one reference (the caller's); false if `view` is of no block owned by its taker. */
  adopt(view: Uint8Array): boolean {
    if (this.out.get(view.buffer as ArrayBuffer) !== 0) return false;
    this.out.set(view.buffer as ArrayBuffer, 1);
    return true;
  }

  /** One more reference to an adopted block; false (and nothing to release) for any other memory. */
  retain(view: Uint8Array): boolean {
    const n = this.out.get(view.buffer as ArrayBuffer);
    if (n === undefined || n === 0) return false;
    this.out.set(view.buffer as ArrayBuffer, n + 1);
    return true;
  }

  /** Drops a reference taken by adopt() or retain(); the last one gives the block back. */
  release(view: Uint8Array): void {
    const block = view.buffer as ArrayBuffer;
    const n = this.out.get(block);
    if (n === undefined || n === 0) throw new Error('release of a block not adopted');
    if (n > 1) this.out.set(block, n - 1);
    else this.back(block);
  }

  private back(block: ArrayBuffer): void {
    this.out.delete(block);
    this.stats.returned++;
    if (this.poison) new Uint8Array(block).fill(0xdd);
    if (this.free.length < this.maxFree) this.free.push(block);
  }
}

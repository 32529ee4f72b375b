/**
 * The serving side of the swarm. Interest in a closure is answered with this node's bitfield
 * and a subscription to its progress. Metadata wants (commits and trees: small, needed first)
 * and on-demand reads (a reader waits on them) are served at once; bulk blob wants go through one upload slot, so this node sends to one peer at a
 * time: the holder of the slot may keep two requests queued (pipelining), anyone else is told
 * `busy` and asks another holder. Objects go out in messages of at most 1 MiB, paced by the
 * socket; a blob too large for one message goes in parts (part-sender.ts), in its turn, and
 * yields the slot if it is too slow while others wait.
 */

/** An object here too large for one message: its size, read from its header (it is streamed, never read whole). */
interface Large {
  readonly large: true;
  readonly size: number;
}
import type { NodeId } from '../cluster/node-id.js';
import { ErrorCodes, isGitfsError } from '../errors.js';
import type { Oid } from '../objects/oid.js';
import type { Logger } from '../util/log.js';
import type { SwarmConnection } from './connection.js';
import type { HeldObject, LocalObjects } from './local-objects.js';
import { LIMITS, type SwarmMessage, type WireObject } from './messages.js';
import { sendParts, slotPace, type PartedBlob } from './part-sender.js';
import type { DeflatedStream } from '../objects/blob-stream.js';
import { MAX_SUBSCRIPTIONS, type Transfers } from './transfers.js';

/**
 * Objects per message, by size. Each message is joined into one buffer on the way in; at 4 MiB
 * that buffer came from fresh pages every time (glibc maps blocks that large anew), and zeroing
 * them was 4.5 % of an 8-node transfer's CPU (`perf record -a`); at 1 MiB it is 0.1 %.
 */
const BATCH_BYTES = 1 << 20;
/** How much may wait in the socket before the next message is made. */
const QUEUED_BYTES = 4 << 20;
const QUEUE_PER_HOLDER = 2;
const READ_AHEAD = 32;
/** Metadata and on-demand read wants served at once, per connection. */
const AT_ONCE_PER_CONNECTION = 2;
/** A want asked ahead waits this long for the next of its objects to arrive here, then the rest is missing. */
const AHEAD_WAIT_MS = 2000;
/** A peer turned away counts as waiting for the slot this long after it last asked (one that waits asks again every 50 ms, and at `free`). */
const WAITING_MS = 1000;
/** How long a holder whose slow send yielded the slot is told `busy` while it is free. */
const YIELDED_MS = 1000;
/** How long a peer whose slow send yielded the slot makes no other yield it. */
const SLOW_MEMORY_MS = 600_000;

interface Job {
  readonly conn: SwarmConnection;
  readonly request: number;
  readonly oids: readonly Oid[];
  /**
   * Asked ahead: objects this node is still fetching are sent as they arrive (for a META want,
   * also those no want of this node names yet: a batch of a shared level).
   */
  readonly ahead: boolean;
  cancelled: boolean;
}

export class ObjectServer {
  private holder: NodeId | undefined;
  private readonly queue: Job[] = [];
  private serving: Job | undefined;
  /** Those told BUSY since the holder took the slot, and when last: told `free` when it frees. */
  private readonly turnedAway = new Map<SwarmConnection, number>();
  /**
   * Peers whose slow send yielded the slot, and when: for YIELDED_MS after, one waits behind those
   * told `free`; and its asking does not make another's send yield (two slow receivers would take
   * the slot from each other for ever, each starting over) until one of its wants is served whole or
   * SLOW_MEMORY_MS pass.
   */
  private readonly slow = new Map<NodeId, number>();
  /** Metadata and read wants being served, per connection. */
  private readonly atOnce = new Map<SwarmConnection, Job[]>();
  readonly stats = { uploadedBytes: 0, uploadedObjects: 0, busyRejects: 0, slotYields: 0 };

  constructor(
    private readonly c: { readonly local: LocalObjects; readonly transfers: Transfers; readonly log: Logger; readonly now: () => number },
  ) {}

  handle(conn: SwarmConnection, m: SwarmMessage): void {
    switch (m.kind) {
      case 'interested':
        if (!this.c.transfers.reserve(conn)) return conn.close(`asks about more than ${MAX_SUBSCRIPTIONS} closures at once`);
        void this.c.transfers.known(m.commit, m.history, m.base, conn.nodeId).then(
          (t) => {
            this.c.transfers.subscribe(t, conn);
            conn.send(t.haveMessage());
          },
          (e: unknown) => conn.close(`answering interest failed: ${(e as Error).message}`),
        );
        return;
      case 'want': {
        // A peer asking for blobs waits on this node's pieces: it hears of each at once.
        if (m.want !== 'meta') this.c.transfers.asked(conn);
        const oids = [...new Set(m.oids)];
        if (m.want === 'blobs') return this.enqueue({ conn, request: m.request, oids, ahead: m.ahead, cancelled: false });
        const serving = this.atOnce.get(conn) ?? [];
        if (serving.length >= AT_ONCE_PER_CONNECTION) return conn.send({ kind: 'reject', request: m.request, reason: 'busy', missing: [] });
        const job: Job = { conn, request: m.request, oids, ahead: m.want === 'meta' && m.ahead, cancelled: false };
        this.atOnce.set(conn, [...serving, job]);
        const allowed = m.want === 'meta' ? (type: string) => type === 'commit' || type === 'tree' : () => true;
        void this.serveAtOnce(job, allowed).finally(() => {
          const rest = (this.atOnce.get(conn) ?? []).filter((j) => j !== job);
          if (rest.length === 0) this.atOnce.delete(conn);
          else this.atOnce.set(conn, rest);
        });
        return;
      }
      case 'cancel':
        for (const j of [...this.queue, ...(this.serving ? [this.serving] : []), ...(this.atOnce.get(conn) ?? [])]) if (j.conn === conn && j.request === m.request) j.cancelled = true;
        return;
      default:
        return;
    }
  }

  private enqueue(job: Job): void {
    const mine = this.queue.filter((j) => j.conn.nodeId === job.conn.nodeId).length + (this.serving?.conn.nodeId === job.conn.nodeId ? 1 : 0);
    // The holder keeps the slot while it pipelines, unless someone else was turned away meanwhile:
    // then its next want waits its turn, and the slot passes on once its queue drains.
    const othersWaiting = this.turnedAway.size > 0 && this.holder === job.conn.nodeId && mine > 0;
    const yielded = this.holder === undefined && this.c.now() - (this.slow.get(job.conn.nodeId) ?? -Infinity) < YIELDED_MS;
    if ((this.holder !== undefined && this.holder !== job.conn.nodeId) || mine >= QUEUE_PER_HOLDER || othersWaiting || yielded) {
      if (this.holder !== job.conn.nodeId) this.turnedAway.set(job.conn, this.c.now());
      this.stats.busyRejects++;
      job.conn.send({ kind: 'reject', request: job.request, reason: 'busy', missing: [] });
      return;
    }
    this.holder = job.conn.nodeId;
    // Turned away before (while the slot was kept from it after a yield): it waits no more.
    this.turnedAway.delete(job.conn);
    this.queue.push(job);
    if (this.serving === undefined) void this.pump();
  }

  private async pump(): Promise<void> {
    for (let job = this.queue.shift(); job !== undefined; job = this.queue.shift()) {
      this.serving = job;
      if (!job.cancelled && job.conn.isOpen) {
        const slot = { contended: () => this.waiting() };
        const outcome = await this.send(job.conn, job.request, job.oids, () => job.cancelled, () => true, job.ahead ? 'asked' : 'no', slot).catch((e: unknown) => job.conn.close(`serving failed: ${(e as Error).message}`));
        if (outcome === 'yielded') this.yieldSlot(job.conn);
        else this.slow.delete(job.conn.nodeId);
      }
      this.serving = undefined;
    }
    this.holder = undefined;
    // Whoever was turned away asks again now, rather than after its back-off: the slot never idles while someone waits.
    for (const conn of this.turnedAway.keys()) if (conn.isOpen) conn.send({ kind: 'free' });
    this.turnedAway.clear();
  }

  /**
   * Whether anyone turned away asked within WAITING_MS (a peer that found its pieces elsewhere
   * stops asking, and waits for nothing), not counting peers whose own send yielded for slowness.
   */
  private waiting(): boolean {
    const now = this.c.now();
    for (const [id, at] of this.slow) if (now - at >= SLOW_MEMORY_MS) this.slow.delete(id);
    for (const [conn, at] of this.turnedAway) if (now - at < WAITING_MS && !this.slow.has(conn.nodeId)) return true;
    return false;
  }

  /**
   * The holder's send was too slow while others waited (part-sender.ts): its queued wants are
   * told `busy` too, so the slot passes to those waiting (told `free`). It is not told `free`
   * itself, and for YIELDED_MS it is told `busy` while the slot is free: those told `free` ask
   * first, however far away.
   */
  private yieldSlot(conn: SwarmConnection): void {
    this.stats.slotYields++;
    this.slow.set(conn.nodeId, this.c.now());
    this.c.log.log('info', 'slot-yielded', { peer: conn.nodeId, waiting: this.turnedAway.size });
    for (const j of this.queue.splice(0)) {
      if (j.conn !== conn) this.queue.push(j);
      else if (!j.cancelled) conn.send({ kind: 'reject', request: j.request, reason: 'busy', missing: [] });
    }
  }

  /** A META want asked ahead (a batch of a shared level of the walk) waits for what this node has not asked for yet, too; a cancel stops either kind. */
  private async serveAtOnce(job: Job, allowed: (type: string) => boolean): Promise<void> {
    const { conn } = job;
    await this.send(conn, job.request, job.oids, () => job.cancelled, allowed, job.ahead ? 'unasked' : 'no').catch((e: unknown) => conn.close(`serving failed: ${(e as Error).message}`));
  }

  /**
   * `ahead`: whether objects not here yet are waited for, and whether also those no want of this
   * node names yet. `slot`: sent in the upload slot, which a blob in parts too slow while others
   * wait yields: the rest of the want is then told `busy` ('yielded').
   */
  private async send(
    conn: SwarmConnection,
    request: number,
    oids: readonly Oid[],
    cancelled: () => boolean,
    allowed: (type: string) => boolean = () => true,
    ahead: 'no' | 'asked' | 'unasked' = 'no',
    slot: { readonly contended: () => boolean } = { contended: () => false },
  ): Promise<'yielded' | undefined> {
    const missing: Oid[] = [];
    const refused: Oid[] = [];
    let batch: WireObject[] = [];
    /** Unpins the buffers of the objects in `batch` (held in memory), once encoded. */
    let pins: (() => void)[] = [];
    let bytes = 0;
    /** What the deflated objects of `batch` inflate to: the receiver takes at most LIMITS.inflatedBytes of that per message. */
    let inflating = 0;
    // Held in the slot while others wait, whole objects keep the pace blobs in parts keep, or the
    // slot is yielded (part-sender.ts): one receiver reading slowly held it for hours, a minute of
    // drain at a time.
    const pace = slotPace({ contended: slot.contended, now: this.c.now });
    let sent = 0;
    let yielded = false;
    const flush = async (done: boolean): Promise<void> => {
      conn.send({ kind: 'objects', request, objects: batch, done });
      for (const unpin of pins) unpin();
      this.stats.uploadedObjects += batch.length;
      this.stats.uploadedBytes += bytes;
      sent += bytes;
      batch = [];
      pins = [];
      bytes = 0;
      inflating = 0;
      if ((await conn.drained(QUEUED_BYTES, () => pace(sent))) === false || pace(sent)) yielded = !done;
    };
    // Objects held in memory (a relay passing on what it just received) are taken as they are when
    // their turn comes, and pinned until encoded; reads of the others run READ_AHEAD at a time (each
    // a pack read and a CRC check: ObjectDatabase.readToServe).
    // has() after hasNow(): objects another process wrote (loose, or a pack not loaded yet) are served too.
    // A read that fails (a damaged copy) counts as missing; none is left unobserved if the loop stops early.
    const fromStore = (oid: Oid): Promise<HeldObject | Large | undefined> =>
      (async () => (this.c.local.hasNow(oid) || (await this.c.local.has(oid)) ? this.c.local.readToSend(oid) : undefined))().catch((e: unknown) =>
        isGitfsError(e, ErrorCodes.OBJECT_TOO_LARGE) ? { large: true as const, size: Number(e.data['size']) } : undefined,
      );
    const reads = oids.map((oid) => ({ oid, obj: undefined as Promise<HeldObject | Large | undefined> | undefined }));
    // Asked ahead for an object this node's own fetch is bringing: it asked only for what was not
    // here, so the store is not looked at (a relay would stat and probe for every object it passes on).
    const onItsWay = (oid: Oid): boolean => ahead !== 'no' && this.c.local.expects(oid) && !this.c.local.hasNow(oid);
    const start = (i: number): void => {
      const r = reads[i];
      if (r !== undefined && this.c.local.held(r.oid) === undefined && !onItsWay(r.oid)) r.obj = fromStore(r.oid);
    };
    // Asked ahead: an object on its way here (a want of this node's own fetch names it; for a
    // shared level's batch, also one none names yet) is waited for, in order, once what came
    // before it has been sent, until AHEAD_WAIT_MS pass with none arriving.
    let arrived = this.c.now();
    const arrival = async (oid: Oid): Promise<HeldObject | undefined> => {
      if (batch.length > 0) await flush(false);
      const o = await this.c.local.arrival(oid, Math.min(AHEAD_WAIT_MS, Math.max(0, arrived + AHEAD_WAIT_MS - this.c.now())), ahead === 'unasked');
      if (o !== undefined) arrived = this.c.now();
      return o;
    };
    for (let i = 0; i < READ_AHEAD; i++) start(i);
    for (let i = 0; i < reads.length; i++) {
      if (yielded) {
        // The object pushed after the flush that yielded goes unsent: its pin with it.
        for (const u of pins) u();
        await Promise.allSettled(reads.slice(i).map((r) => r.obj));
        conn.send({ kind: 'reject', request, reason: 'busy', missing: [] });
        return 'yielded';
      }
      const { oid, obj: reading } = reads[i] as { oid: Oid; obj: Promise<HeldObject | Large | undefined> | undefined };
      start(i + READ_AHEAD);
      let obj: HeldObject | Large | undefined = this.c.local.held(oid) ?? (reading !== undefined ? await reading : onItsWay(oid) ? undefined : await fromStore(oid));
      if (obj === undefined && ahead !== 'no' && !cancelled() && conn.isOpen) obj = await arrival(oid);
      const unpin = obj === undefined || 'large' in obj ? () => undefined : this.c.local.pin(obj);
      if (cancelled() || !conn.isOpen) {
        unpin();
        for (const u of pins) u();
        await Promise.allSettled(reads.slice(i + 1).map((r) => r.obj));
        return undefined;
      }
      if (obj !== undefined && 'large' in obj) {
        if (batch.length > 0) await flush(false);
        const outcome = obj.size > LIMITS.partedObjectBytes ? 'refused' : await this.sendLarge(conn, request, oid, allowed, cancelled, slot.contended);
        if (outcome === 'yielded') {
          await Promise.allSettled(reads.slice(i + 1).map((r) => r.obj));
          conn.send({ kind: 'reject', request, reason: 'busy', missing: [] });
          return 'yielded';
        }
        if (outcome === 'refused') refused.push(oid);
        else if (outcome === 'missing') missing.push(oid);
        continue;
      }
      if (obj === undefined || !allowed(obj.type)) {
        unpin();
        missing.push(oid);
        continue;
      }
      if (obj.content.length > LIMITS.objectBytes) {
        // Held in memory: received whole, so never this large (what is read from the store comes as Large).
        unpin();
        refused.push(oid);
        continue;
      }
      // Deflated where this node holds it so (bytes on the wire counted as sent).
      const size = obj.zlib?.length ?? obj.content.length;
      const inflated = obj.zlib === undefined ? 0 : obj.content.length;
      if ((bytes + size > BATCH_BYTES || inflating + inflated > LIMITS.inflatedBytes) && batch.length > 0) await flush(false);
      batch.push({ oid, type: obj.type, content: obj.content, zlib: obj.zlib, stored: obj.stored });
      pins.push(unpin);
      bytes += size;
      inflating += inflated;
    }
    // Refused before the last batch (a requester ends the request at `done`, and would never hear
    // why); missing after it, as requesters end a request at a reject.
    if (refused.length > 0) conn.send({ kind: 'reject', request, reason: 'refused', missing: refused });
    await flush(true);
    if (missing.length > 0) conn.send({ kind: 'reject', request, reason: 'missing', missing });
    return undefined;
  }

  /** A blob here too large for one message, in parts of its zlib stream (as it lies in its pack, when it does). */
  private async sendLarge(conn: SwarmConnection, request: number, oid: Oid, allowed: (type: string) => boolean, cancelled: () => boolean, contended: () => boolean): Promise<'sent' | 'stopped' | 'yielded' | 'missing' | 'refused'> {
    let stream: DeflatedStream;
    try {
      stream = await this.c.local.zlibToSend(oid);
    } catch (e) {
      // A delta above the read limit cannot be resolved without holding its base: refused as before.
      return isGitfsError(e, ErrorCodes.OBJECT_TOO_LARGE) ? 'refused' : 'missing';
    }
    // Only blobs go in parts (a receiver reads commits and trees whole).
    if (!allowed(stream.type) || stream.type !== 'blob') {
      await stream.zlib.return(undefined);
      return allowed(stream.type) ? 'refused' : 'missing';
    }
    return this.sendParted(conn, request, { oid, size: stream.size, zlib: stream.zlib }, cancelled, contended);
  }

  /** Sends `blob` in parts, counted as uploaded; a stream that fails midway is missing (the receiver drops what came). */
  private async sendParted(conn: SwarmConnection, request: number, blob: PartedBlob, cancelled: () => boolean, contended: () => boolean): Promise<'sent' | 'stopped' | 'yielded' | 'missing'> {
    try {
      const outcome = await sendParts(conn, request, blob, cancelled, { queuedBytes: QUEUED_BYTES, contended, now: this.c.now });
      if (outcome === 'sent') {
        this.stats.uploadedObjects++;
        this.stats.uploadedBytes += blob.size;
      }
      return outcome;
    } catch (e) {
      this.c.log.log('warn', 'parted-send-failed', { oid: blob.oid, error: (e as Error).message });
      return 'missing';
    }
  }

  /** A connection closed: drop its queued jobs. */
  forget(conn: SwarmConnection): void {
    for (const j of [...this.queue, ...(this.atOnce.get(conn) ?? [])]) if (j.conn === conn) j.cancelled = true;
    this.atOnce.delete(conn);
    this.turnedAway.delete(conn);
  }
}

/**
 * One swarm connection: a mutual-TLS socket carrying the BitTorrent wire protocol
 * (bittorrent-protocol), whose BEP 10 extension `gitfs_swarm` carries gitfs's messages
 * (messages.ts). The info hash is the cluster's (so a wire of another cluster is refused at the
 * handshake); who the peer is comes from its TLS certificate, never from the wire.
 */
import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import Wire from 'bittorrent-protocol';
import type { NodeId } from '../cluster/node-id.js';
import type { BlockPool } from './block-pool.js';
import { FrameGuard } from './frame-guard.js';
import { decodeMessage, encodeMessage, LIMITS, WireError, type SwarmMessage } from './messages.js';

export const EXTENSION = 'gitfs_swarm';
const HANDSHAKE_MS = 10_000;
const IDLE_MS = 120_000;
const DRAIN_MS = 60_000;
/** The longest a sender waiting for its queue to drain goes without looking (4 MiB last 160 ms at 200 Mbit/s). */
const DRAIN_LOOK_MS = 50;
/**
 * The most a peer may leave unread: what this node sends waits for the peer to read it, and an
 * answer goes to every request (a `reject`, if nothing else), so a peer that asks without reading
 * would grow the queue for ever. Senders of bulk wait for `drained` long before these.
 */
const MAX_QUEUED_BYTES = 128 << 20;
const MAX_QUEUED_FRAMES = 65_536;
/** BEP 10's message id: the payload is the extension's id, then its message. */
const EXTENDED_MESSAGE = 20;
/** Largest extended handshake read (gitfs's own is under 100 bytes). */
const EXTENDED_HANDSHAKE_BYTES = 16 << 10;
/** A frame's bytes before the message: 4 of length, the message id, the extension's id. */
const FRAME_HEAD = 6;

export interface ConnectionHandlers {
  onMessage(conn: SwarmConnection, m: SwarmMessage): void;
  /** Whether this node awaits objects from `conn` for `request` (those of no such request are not decoded); all, where absent. */
  awaits?(conn: SwarmConnection, request: number): boolean;
  onClose(conn: SwarmConnection, reason: string): void;
}

/**
 * bittorrent-protocol's wire, its reading of a peer's messages guarded. The library's parsers
 * run inside its stream's write callback, where nothing of ours can catch, and some throw on
 * hostile input (an extended handshake `{m: {gitfs_swarm: {toString: "x"}}}`: it calls
 * `info.m[name].toString()`), which killed the process. Here a throw is the wire's error: the
 * connection closes, the node stays. And the library keeps what some messages say for good (each
 * extended handshake's names, a `have`'s bit, a `request`): gitfs uses extended messages alone
 * and one extended handshake, so anything else closes the connection before the library reads it.
 */
class GuardedWire extends Wire {
  private extendedHandshakes = 0;

  constructor(private readonly fault: (reason: string) => void) {
    super();
  }

  override _onMessage(buffer: Uint8Array): void {
    if (this.destroyed) return;
    const refused = this.refusal(buffer);
    if (refused !== undefined) return this.fault(refused);
    try {
      super._onMessage(buffer);
    } catch (e) {
      this.fault(`unreadable wire message: ${(e as Error).message}`);
    }
  }

  /** Why the message `buffer` (its id first) is not for the library to read, if it is not. */
  private refusal(buffer: Uint8Array): string | undefined {
    if (buffer[0] !== EXTENDED_MESSAGE) return `BitTorrent message ${String(buffer[0])}, which gitfs does not use`;
    if (buffer[1] !== 0) return undefined;
    if (++this.extendedHandshakes > 1) return 'a second extended handshake';
    if (buffer.length > EXTENDED_HANDSHAKE_BYTES) return `an extended handshake of ${buffer.length} bytes (limit ${EXTENDED_HANDSHAKE_BYTES})`;
    return undefined;
  }
}

export class SwarmConnection {
  private readonly wire: Wire;
  private open = false;
  private closed = false;
  private readonly queue: SwarmMessage[] = [];
  /** Settles when the handshakes are done or the connection closes: what waits in `queue` until then is not counted in `queued`. */
  private readonly settled: Promise<void>;
  private settle: () => void = () => undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** Work the reading of the socket waits for (pauseWhile). */
  private holds = 0;
  readonly stats = { sentBytes: 0, receivedBytes: 0 };

  constructor(
    private readonly socket: TLSSocket,
    readonly nodeId: NodeId,
    private readonly o: { readonly infoHash: Buffer; readonly selfId: NodeId; readonly initiator: boolean; /** Blocks for large frames, both ways. */ readonly pool: BlockPool },
    private readonly handlers: ConnectionHandlers,
  ) {
    this.settled = new Promise((resolve) => (this.settle = resolve));
    this.wire = new GuardedWire((reason) => this.close(reason));
    const conn = this;
    class Extension {
      declare name: string;
      onExtendedHandshake(): void {
        conn.ready();
      }
      onMessage(buf: Uint8Array): void {
        conn.receive(buf);
      }
    }
    Extension.prototype.name = EXTENSION;
    this.wire.use(Extension);
    const guard = new FrameGuard(LIMITS.messageBytes + 64, o.pool);
    socket.on('data', (chunk: Buffer) => this.incoming(guard, chunk));
    this.wire.on('drain', () => this.holds === 0 && socket.resume());
    this.wire.pipe(socket);
    socket.on('error', (e) => this.close(e.message));
    socket.on('close', () => this.close('connection closed'));
    this.wire.on('error', (e) => this.close(e.message));
    this.wire.on('close', () => this.close('wire closed'));
    socket.setTimeout(IDLE_MS, () => this.close(`idle for ${IDLE_MS / 1000} s`));
    // Requests are small and answered at once: Nagle's algorithm with delayed ACKs would add ~40 ms to each.
    socket.setNoDelay(true);
    this.wire.on('handshake', (infoHash, _peerId, extensions) => {
      if (infoHash !== o.infoHash.toString('hex')) return this.close('handshake for another cluster');
      if (extensions['extended'] !== true) return this.close('peer lacks the extension protocol');
      if (!o.initiator) this.handshake();
    });
    this.wire.setKeepAlive(true);
    this.handshakeTimer = setTimeout(() => this.close('no handshake'), HANDSHAKE_MS);
    if (o.initiator) this.handshake();
  }

  /** Bytes from the socket: whole frames go to the wire, which paces the socket as a pipe would. */
  private incoming(guard: FrameGuard, chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = guard.frames(chunk);
    } catch (e) {
      return this.close((e as Error).message);
    }
    let more = true;
    for (const frame of frames) if (!this.closed) more = this.wire.write(frame) && more;
    if (!more) this.socket.pause();
  }

  /**
   * Reads nothing more from the peer until `work` settles (a part of a large blob being stored):
   * the peer's sending then waits on TCP, not on this node's memory.
   */
  pauseWhile(work: Promise<unknown>): void {
    this.holds++;
    this.socket.pause();
    const release = (): void => {
      if (--this.holds === 0 && !this.wire.writableNeedDrain && !this.closed) this.socket.resume();
    };
    work.then(release, release);
  }

  private handshake(): void {
    const peerId = Buffer.concat([Buffer.from('-GF0100-'), Buffer.from(this.o.selfId, 'hex'), randomBytes(4)]);
    this.wire.handshake(this.o.infoHash, peerId, { dht: false });
  }

  /** The peer's extended handshake maps gitfs_swarm (bittorrent-protocol calls this only then). */
  private ready(): void {
    clearTimeout(this.handshakeTimer);
    this.open = true;
    this.settle();
    for (const m of this.queue.splice(0)) this.send(m);
  }

  private receive(buf: Uint8Array): void {
    if (this.closed) return;
    if (!this.open) return this.close('gitfs message before the extended handshakes');
    this.stats.receivedBytes += buf.length;
    let m: SwarmMessage;
    try {
      m = decodeMessage(buf, false, (request) => this.handlers.awaits?.(this, request) ?? true);
    } catch (e) {
      return this.close(e instanceof WireError ? `bad message: ${e.message}` : String(e));
    }
    try {
      this.handlers.onMessage(this, m);
    } catch (e) {
      // A bug of ours met by a peer's message: the connection goes, the node stays.
      this.close(`handling ${m.kind} failed: ${(e as Error).message}`);
    }
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Sends now, or once the handshakes are done; a closed connection drops it. */
  send(m: SwarmMessage): void {
    if (this.closed) return;
    if (!this.open) {
      this.queue.push(m);
      return;
    }
    // An extended handshake that did not map the extension (or mapped it to 0): nothing can be sent.
    const id = this.wire.peerExtendedMapping[EXTENSION];
    if (id === undefined || !Number.isInteger(id) || id < 1 || id > 255) return this.close('peer withdrew gitfs_swarm');
    try {
      // The whole BitTorrent frame in one buffer: length, message id 20 (extended), the extension's
      // id, then the message. wire.extended() would copy every message to put the id before it,
      // and pushes the 5-byte header apart from the payload: two socket writes, two TLS records.
      const bytes = encodeMessage(m, FRAME_HEAD, this.alloc);
      const frame = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      frame.writeUInt32BE(frame.length - 4, 0);
      frame[4] = EXTENDED_MESSAGE;
      frame[5] = id;
      this.stats.sentBytes += frame.length - FRAME_HEAD;
      // Behind anything of the wire's own that waits (the handshakes), through the wire, in order
      // (a block sent so is left to the collector); otherwise straight to the socket, one write at
      // a time (writeNext).
      if (this.outbox.length === 0 && !this.writing && this.wire._readableState.buffered > 0) this.wire._push(frame);
      else {
        this.outbox.push(frame);
        this.outboxBytes += frame.length;
        this.writeNext();
      }
      if (this.outbox.length > MAX_QUEUED_FRAMES || this.queued > MAX_QUEUED_BYTES) {
        this.close(`peer leaves unread ${this.outbox.length} messages, ${this.queued} bytes`);
      }
    } catch (e) {
      this.close(`sending ${m.kind} failed: ${(e as Error).message}`);
    }
  }

  private readonly alloc = (bytes: number): Buffer => this.o.pool.take(bytes) ?? Buffer.allocUnsafe(bytes);

  /**
   * Frames to write, one at a time: Node joins the writes queued on a socket into one new buffer
   * before TLS encrypts them, a copy of every byte (and fresh memory each time; BENCHMARKS.md).
   * One write in flight keeps the kernel's send buffer full all the same: it completes when the
   * kernel has taken the bytes. Its callback says TLS has taken them (encrypted, or copied), so
   * a frame's block goes back to the pool then.
   */
  private readonly outbox: Buffer[] = [];
  private outboxBytes = 0;
  private writing = false;

  private writeNext(): void {
    if (this.writing || this.closed) return;
    const frame = this.outbox.shift();
    if (frame === undefined) return;
    this.outboxBytes -= frame.length;
    this.writing = true;
    this.socket.write(frame, (e) => {
      this.writing = false;
      if (e != null) return;
      this.o.pool.give(frame);
      this.writeNext();
    });
  }

  /** Bytes sent and not yet written to the socket: in the wire (which the socket stops taking from when full), waiting to be written, and in the socket. */
  private get queued(): number {
    return this.wire._readableState.buffered + this.outboxBytes + this.socket.writableLength;
  }

  /**
   * Resolves true once the handshakes are done and fewer than `bytes` wait to be written (before
   * the handshakes, messages wait unencoded and uncounted), or the connection closed; a peer that
   * reads nothing for DRAIN_MS is dropped. It looks again at each `drain` of the socket (the wire
   * hands it more then), or after DRAIN_LOOK_MS at the latest: a sender waits without waking
   * hundreds of times a second. Resolves false as soon as `giveUp` says so at a look.
   */
  async drained(bytes: number, giveUp: () => boolean = () => false): Promise<boolean> {
    await this.settled;
    const deadline = Date.now() + DRAIN_MS;
    while (!this.closed && this.queued > bytes) {
      if (giveUp()) return false;
      if (Date.now() > deadline) {
        this.close(`peer read nothing for ${DRAIN_MS / 1000} s`);
        return true;
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.socket.off('drain', done);
          resolve();
        };
        const timer = setTimeout(done, DRAIN_LOOK_MS);
        this.socket.on('drain', done);
      });
    }
    return true;
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.settle();
    clearTimeout(this.handshakeTimer);
    this.socket.destroy();
    this.wire.destroy();
    this.handlers.onClose(this, reason);
  }
}

/**
 * Datagrams in and out with node:dgram: one UDP socket bound to the announcement port that
 * joins the multicast group on one interface (TTL from config, 1 by default, so packets never
 * cross a router) and also receives unicast; every packet goes to the group and to each static
 * peer whose address is known (static-peers.ts looks host names up in the background). A
 * multicast join that fails is a warning: static peers still work.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from '../util/log.js';
import { MAX_PACKET_BYTES } from './envelope.js';
import { StaticPeers, dnsLookupV4, type Lookup } from './static-peers.js';

export interface AnnounceTransport {
  send(packet: Uint8Array): Promise<void>;
  /** How many destinations each send reaches (the group, if joined, plus static peers). */
  destinations(): number;
  close(): Promise<void>;
}

export interface UdpTransportOptions {
  /** Multicast group; undefined: multicast off (static peers only). */
  readonly group: string | undefined;
  readonly port: number;
  /** IPv4 address of the interface to send and join on. */
  readonly interfaceAddress: string | undefined;
  readonly bindAddress: string;
  readonly ttl: number;
  readonly staticPeers: readonly { host: string; port: number }[];
  /** How static peers' host names are looked up (tests pass their own). */
  readonly lookup?: Lookup;
}

export type PacketHandler = (packet: Buffer, from: { address: string; port: number }) => void;

export class UdpTransport implements AnnounceTransport {
  private multicast = false;
  private readonly peers: StaticPeers;

  private constructor(
    private readonly socket: Socket,
    private readonly o: UdpTransportOptions,
    private readonly log: Logger,
  ) {
    this.peers = new StaticPeers(o.staticPeers, o.lookup ?? dnsLookupV4, log);
  }

  static async open(o: UdpTransportOptions, log: Logger, onPacket: PacketHandler): Promise<UdpTransport> {
    // Receive buffers a little larger than we accept, so an oversized datagram is seen whole and counted.
    const socket = createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize: 1 << 20 });
    const t = new UdpTransport(socket, o, log);
    socket.on('message', (msg, rinfo) => onPacket(msg, { address: rinfo.address, port: rinfo.port }));
    socket.on('error', (e) => log.log('warn', 'udp-error', { error: e.message }));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(o.port, o.bindAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    if (o.group !== undefined) t.join(o.group);
    t.peers.start();
    return t;
  }

  private join(group: string): void {
    try {
      this.socket.setMulticastTTL(this.o.ttl);
      this.socket.setMulticastLoopback(true);
      if (this.o.interfaceAddress !== undefined) this.socket.setMulticastInterface(this.o.interfaceAddress);
      this.socket.addMembership(group, this.o.interfaceAddress);
      this.multicast = true;
    } catch (e) {
      this.log.log('warn', 'multicast-join-failed', { group, interface: this.o.interfaceAddress ?? null, error: (e as Error).message });
    }
  }

  destinations(): number {
    return this.targets().length;
  }

  /** Addresses only: a host name here would be looked up at every send. */
  private targets(): { address: string; port: number }[] {
    return [...(this.multicast && this.o.group !== undefined ? [{ address: this.o.group, port: this.o.port }] : []), ...this.peers.targets()];
  }

  async send(packet: Uint8Array): Promise<void> {
    if (packet.length > MAX_PACKET_BYTES) throw new RangeError(`packet of ${packet.length} bytes`);
    await Promise.all(
      this.targets().map(
        (t) =>
          new Promise<void>((resolve) => {
            const failed = (e: Error): void => {
              this.log.log('warn', 'udp-send-failed', { to: `${t.address}:${t.port}`, error: e.message });
              resolve();
            };
            // One bad destination (a send that throws at once) must not keep the packet from the others.
            try {
              this.socket.send(packet, t.port, t.address, (e) => (e ? failed(e) : resolve()));
            } catch (e) {
              failed(e as Error);
            }
          }),
      ),
    );
  }

  close(): Promise<void> {
    this.peers.stop();
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

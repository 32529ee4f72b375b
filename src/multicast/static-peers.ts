/**
 * Where the static peers are, looked up beside the sending, never in its way: socket.send with a
 * host name ran dns.lookup for every packet, and the sender waited for every destination before
 * the next part, so one peer whose resolver stalled held up every announcement to everyone. A
 * host name is looked up at start, then every refreshMs (every retryMs while it has no address),
 * each lookup given up after lookupMs; the last address found is kept until another is. A peer
 * with no address yet is left out of the sending.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import type { Logger } from '../util/log.js';

/** A host name's IPv4 address. */
export type Lookup = (host: string) => Promise<string>;

export const dnsLookupV4: Lookup = async (host) => (await dnsLookup(host, { family: 4 })).address;

export interface StaticPeerTimes {
  readonly refreshMs: number;
  readonly retryMs: number;
  readonly lookupMs: number;
}

const DEFAULT_PEER_TIMES: StaticPeerTimes = { refreshMs: 60_000, retryMs: 5_000, lookupMs: 5_000 };

export class StaticPeers {
  /** Host name → its address, once found. */
  private readonly addresses = new Map<string, string>();
  /** Host names whose last lookup failed (told once until one succeeds). */
  private readonly failing = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly peers: readonly { host: string; port: number }[],
    private readonly lookup: Lookup,
    private readonly log: Logger,
    private readonly times: StaticPeerTimes = DEFAULT_PEER_TIMES,
  ) {}

  start(): void {
    for (const host of new Set(this.peers.map((p) => p.host))) if (!isIPv4(host)) void this.resolve(host);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** The peers with an address, as sent to. */
  targets(): { address: string; port: number }[] {
    return this.peers.flatMap((p) => {
      const address = isIPv4(p.host) ? p.host : this.addresses.get(p.host);
      return address === undefined ? [] : [{ address, port: p.port }];
    });
  }

  private async resolve(host: string): Promise<void> {
    try {
      this.found(host, await this.bounded(host));
    } catch (e) {
      if (!this.failing.has(host)) this.log.log('warn', 'static-peer-unresolved', { host, kept: this.addresses.get(host) ?? null, error: (e as Error).message });
      this.failing.add(host);
    }
    if (this.stopped) return;
    const next = this.addresses.has(host) ? this.times.refreshMs : this.times.retryMs;
    this.timers.set(host, setTimeout(() => void this.resolve(host), next));
  }

  private found(host: string, address: string): void {
    if (this.addresses.get(host) !== address) this.log.log('info', 'static-peer-resolved', { host, address });
    this.addresses.set(host, address);
    this.failing.delete(host);
  }

  /** The lookup, or a failure after lookupMs (a lookup cannot be cancelled: a late answer is dropped). */
  private bounded(host: string): Promise<string> {
    return new Promise((resolve, reject) => {
      // Unreferenced: a stopping daemon does not wait for it.
      const timer = setTimeout(() => reject(new Error(`no answer within ${this.times.lookupMs} ms`)), this.times.lookupMs).unref();
      this.lookup(host).then(
        (address) => {
          clearTimeout(timer);
          if (isIPv4(address)) resolve(address);
          else reject(new Error(`not an IPv4 address: ${address}`));
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }
}

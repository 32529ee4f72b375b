/**
 * Keeps this node's certificate renewed (node certificates last a year). When a check, every
 * CHECK_MS, finds it in its last RENEW_WITHIN_DAYS, the CA node issues itself a new one; any
 * other node asks members for one over mutual TLS, PEERS_PER_TRY a try and in turn from a random
 * start, until one that holds the CA key answers (the others refuse); a failed try is followed by
 * another after RETRY_MS, doubling to MAX_RETRY_MS. A renewal keeps the key and so the node id; it
 * is checked against the CA, stored, and taken in memory, and `renewed` lets the service present
 * it. A renewal stored by `gitfs cluster renew` beside the daemon is taken from disk (looked at
 * every DISK_CHECK_MS).
 */
import { randomInt } from 'node:crypto';
import { adoptRenewal, adoptStoredRenewal, issueRenewal, renewalDue } from '../cluster/cluster-store.js';
import type { ClusterTrust, NodeIdentity } from '../cluster/identity.js';
import { ErrorCodes, GitfsError } from '../errors.js';
import type { Peer } from '../multicast/peer-table.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { fetchRenewal } from './node-service.js';

const CHECK_MS = 3_600_000;
const RETRY_MS = 60_000;
const MAX_RETRY_MS = 3_600_000;
const DISK_CHECK_MS = 10_000;
const PEERS_PER_TRY = 8;

export interface RenewalComponents {
  readonly gitDir: string;
  readonly identity: NodeIdentity;
  readonly trust: ClusterTrust;
  /** Whether this node holds the CA key. */
  readonly issuer: boolean;
  readonly clock: Clock;
  readonly log: Logger;
  readonly peers: () => readonly Peer[];
  /** Called once a renewed certificate is this node's. */
  readonly renewed: () => void;
}

export class CertificateRenewal {
  private nextCheck = -Infinity;
  private nextDiskCheck = -Infinity;
  private retryMs = RETRY_MS;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  /** Where the next try starts in the members ordered by id, so that tries go round them all. */
  private cursor = randomInt(1 << 30);

  constructor(private readonly c: RenewalComponents) {}

  /** Renews if it is time to (called by the daemon's maintenance timer; never throws). */
  poll(): void {
    const now = this.c.clock.now();
    if (this.running !== undefined || this.abort.signal.aborted) return;
    if (now >= this.nextDiskCheck) {
      this.nextDiskCheck = now + DISK_CHECK_MS;
      this.running = this.fromDisk().finally(() => (this.running = undefined));
      return;
    }
    if (now < this.nextCheck) return;
    if (!renewalDue(this.c.identity.certificate, this.c.trust.ca, now)) {
      this.nextCheck = now + CHECK_MS;
      return;
    }
    // Just started: no member heard from yet, so nobody to ask; the next poll looks again.
    if (!this.c.issuer && !this.c.peers().some((p) => p.endpoints[0] !== undefined)) return;
    this.running = this.renew().finally(() => (this.running = undefined));
  }

  /** Ends a try under way (its request cut) and waits for it. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async fromDisk(): Promise<void> {
    try {
      const certificate = await adoptStoredRenewal(this.c.gitDir, this.c.identity, this.c.trust, this.c.clock.now());
      if (certificate !== undefined) this.taken(certificate.validTo, 'disk');
    } catch (e) {
      this.c.log.log('warn', 'certificate-unreadable', { error: (e as Error).message });
    }
  }

  private async renew(): Promise<void> {
    const { identity, log } = this.c;
    try {
      const pem = this.c.issuer ? await issueRenewal(this.c.gitDir, identity.certificate.publicKey, this.c.clock.now()) : await this.askMembers();
      const certificate = await adoptRenewal(this.c.gitDir, identity, this.c.trust, pem, this.c.clock.now());
      this.taken(certificate.validTo, this.c.issuer ? 'ca-key' : 'member');
    } catch (e) {
      if (this.abort.signal.aborted) return;
      this.nextCheck = this.c.clock.now() + this.retryMs;
      log.log('warn', 'certificate-renewal-failed', { error: (e as Error).message, validTo: new Date(identity.certificate.validTo).toISOString(), retryInMs: this.retryMs });
      this.retryMs = Math.min(2 * this.retryMs, MAX_RETRY_MS);
    }
  }

  private taken(validTo: string, from: string): void {
    this.nextCheck = this.c.clock.now() + CHECK_MS;
    this.retryMs = RETRY_MS;
    this.c.log.log('info', 'certificate-renewed', { validTo: new Date(validTo).toISOString(), from });
    this.c.renewed();
  }

  private async askMembers(): Promise<string> {
    const members = this.c.peers().filter((p) => p.endpoints[0] !== undefined);
    members.sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
    const failures: string[] = [];
    for (let i = 0; i < Math.min(PEERS_PER_TRY, members.length) && !this.abort.signal.aborted; i++) {
      const member = members[this.cursor++ % members.length] as Peer;
      try {
        return await fetchRenewal(this.c.identity, this.c.trust, { ...(member.endpoints[0] as Peer['endpoints'][number]), nodeId: member.nodeId }, { signal: this.abort.signal, now: () => this.c.clock.now() });
      } catch (e) {
        failures.push(`${member.nodeId}: ${(e as Error).message}`);
      }
    }
    throw new GitfsError(ErrorCodes.PEER_FAILED, `no member asked renewed it (${failures.join('; ')})`);
  }
}

/**
 * Keeps this node's certificate renewed (node certificates last a year). When a check, every
 * CHECK_MS, finds it in its last RENEW_WITHIN_DAYS, the CA node issues itself a new one; any
 * other node asks members for one over mutual TLS, PEERS_PER_TRY a try and in turn, until one that
 * holds the CA key answers (the others refuse), trying again every RETRY_MS. A renewal keeps the
 * key and so the node id; it is checked against the CA, stored, and taken in memory, and
 * `renewed` lets the service present it.
 */
import { adoptRenewal, issueRenewal, renewalDue } from '../cluster/cluster-store.js';
import type { ClusterTrust, NodeIdentity } from '../cluster/identity.js';
import { ErrorCodes, GitfsError } from '../errors.js';
import type { Peer } from '../multicast/peer-table.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { fetchRenewal } from './node-service.js';

const CHECK_MS = 3_600_000;
const RETRY_MS = 60_000;
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
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  /** Where the next try starts in the members ordered by id, so that tries go round them all. */
  private cursor = 0;

  constructor(private readonly c: RenewalComponents) {}

  /** Renews if it is time to (called by the daemon's maintenance timer; never throws). */
  poll(): void {
    const now = this.c.clock.now();
    if (this.running !== undefined || now < this.nextCheck || this.abort.signal.aborted) return;
    if (!renewalDue(this.c.identity.certificate, now)) {
      this.nextCheck = now + CHECK_MS;
      return;
    }
    // Just started: no member heard from yet, so nobody to ask; the next poll looks again.
    if (!this.c.issuer && !this.c.peers().some((p) => p.endpoints[0] !== undefined)) return;
    this.nextCheck = now + RETRY_MS;
    this.running = this.renew().finally(() => (this.running = undefined));
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async renew(): Promise<void> {
    const { identity, log } = this.c;
    const now = this.c.clock.now();
    try {
      const pem = this.c.issuer ? await issueRenewal(this.c.gitDir, identity.certificate.publicKey, now) : await this.askMembers();
      const certificate = await adoptRenewal(this.c.gitDir, identity, this.c.trust, pem, this.c.clock.now());
      this.nextCheck = this.c.clock.now() + CHECK_MS;
      log.log('info', 'certificate-renewed', { validTo: new Date(certificate.validTo).toISOString() });
      this.c.renewed();
    } catch (e) {
      if (this.abort.signal.aborted) return;
      log.log('warn', 'certificate-renewal-failed', { error: (e as Error).message, validTo: new Date(identity.certificate.validTo).toISOString(), retryInMs: RETRY_MS });
    }
  }

  private async askMembers(): Promise<string> {
    const members = this.c.peers().filter((p) => p.endpoints[0] !== undefined);
    members.sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
    const failures: string[] = [];
    for (let i = 0; i < Math.min(PEERS_PER_TRY, members.length); i++) {
      const member = members[this.cursor++ % members.length] as Peer;
      try {
        return await fetchRenewal(this.c.identity, this.c.trust, member.endpoints[0] as Peer['endpoints'][number], this.abort.signal);
      } catch (e) {
        failures.push(`${member.nodeId}: ${(e as Error).message}`);
      }
    }
    throw new GitfsError(ErrorCodes.PEER_FAILED, `no member asked renewed it (${failures.join('; ')})`);
  }
}

/**
 * What a node knows about itself and its cluster once loaded: its key and certificate, the
 * CA certificate it trusts, and the newest revocation list it holds.
 */
import { X509Certificate, createHash, type KeyObject } from 'node:crypto';
import { ErrorCodes, GitfsError } from '../errors.js';
import type { NodeId } from './node-id.js';
import type { RevocationList } from './revocation.js';

/**
 * This node's key and certificate. The certificate is renewed in place (adopt): the TLS options,
 * the announcements and the join answers read it when they use it, so a renewal reaches them
 * without a restart.
 */
export class NodeIdentity {
  private current: { readonly certificate: X509Certificate; readonly pem: string };

  constructor(
    readonly nodeId: NodeId,
    readonly privateKey: KeyObject,
    certificate: X509Certificate,
    certificatePem: string,
  ) {
    this.current = { certificate, pem: certificatePem };
  }

  get certificate(): X509Certificate {
    return this.current.certificate;
  }

  get certificateDer(): Buffer {
    return this.current.certificate.raw;
  }

  get certificatePem(): string {
    return this.current.pem;
  }

  /** Why `certificate` cannot renew the one held (another key, or ending no later), or undefined. */
  renewalProblem(certificate: X509Certificate): string | undefined {
    if (!certificate.publicKey.equals(this.current.certificate.publicKey)) return 'it is for another key';
    if (Date.parse(certificate.validTo) <= Date.parse(this.current.certificate.validTo)) return 'it ends no later than the one held';
    return undefined;
  }

  /** Takes a renewed certificate, checked against the CA by the caller and by renewalProblem here. */
  adopt(certificate: X509Certificate, pem: string): void {
    const problem = this.renewalProblem(certificate);
    if (problem !== undefined) throw new GitfsError(ErrorCodes.BAD_CERTIFICATE, `not a renewal: ${problem}`);
    this.current = { certificate, pem };
  }
}

/** The CA and the revocations: the two things every check of a peer consults. */
export class ClusterTrust {
  /** First 8 bytes of the CA certificate's SHA-256, hex: the cluster's name everywhere. */
  readonly clusterId: string;
  readonly clusterTag: Buffer;
  private revoked = new Set<string>();
  private list: RevocationList | undefined;

  constructor(
    readonly ca: X509Certificate,
    readonly caPem: string,
    revocations?: RevocationList,
  ) {
    this.clusterTag = createHash('sha256').update(ca.raw).digest().subarray(0, 8);
    this.clusterId = this.clusterTag.toString('hex');
    if (revocations !== undefined) this.adopt(revocations);
  }

  get revocations(): RevocationList | undefined {
    return this.list;
  }

  get revocationVersion(): number {
    return this.list?.version ?? 0;
  }

  isRevoked(nodeId: string): boolean {
    return this.revoked.has(nodeId);
  }

  /** Takes `list` if it is newer than the one held (the caller has checked its signature). */
  adopt(list: RevocationList): boolean {
    if (list.version <= this.revocationVersion) return false;
    this.list = list;
    this.revoked = new Set(list.nodeIds);
    return true;
  }
}

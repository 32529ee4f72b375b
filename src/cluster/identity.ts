/**
 * What a node knows about itself and its cluster once loaded: its key and certificate, the
 * CA certificate it trusts, and the newest revocation list it holds.
 */
import { X509Certificate, createHash, type KeyObject } from 'node:crypto';
import type { NodeId } from './node-id.js';
import type { RevocationList } from './revocation.js';

export interface NodeIdentity {
  readonly nodeId: NodeId;
  readonly privateKey: KeyObject;
  readonly certificate: X509Certificate;
  readonly certificateDer: Buffer;
  readonly certificatePem: string;
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

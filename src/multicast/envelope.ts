/**
 * Signing and checking one datagram. Checks run cheapest first (size, decoding, cluster tag,
 * own packet, then the caller's budget for the rest: verify-budget.ts) so that noise costs little; a certificate is verified against the cluster CA once
 * and then remembered by its fingerprint.
 */
import { X509Certificate, createHash, sign, verify } from 'node:crypto';
import { verifyNodeCertificate, type VerifiedNode } from '../cluster/certificate.js';
import type { ClusterTrust, NodeIdentity } from '../cluster/identity.js';
import { isGitfsError } from '../errors.js';
import { PacketError } from './packet-error.js';
import { EnvelopeMessage, TO_OBJECT } from './schema.js';

export const PROTOCOL_VERSION = 1;
/** The largest datagram sent or accepted: one unfragmented Ethernet frame's UDP payload. */
export const MAX_PACKET_BYTES = 1472;
const DOMAIN = Buffer.from('gitfs-announce-v1\0', 'latin1');
const MAX_CACHED_CERTIFICATES = 4096;

export function sealEnvelope(identity: NodeIdentity, trust: ClusterTrust, body: Uint8Array): Uint8Array {
  const signature = sign(null, Buffer.concat([DOMAIN, body]), identity.privateKey);
  return EnvelopeMessage.encode(
    EnvelopeMessage.fromObject({ version: PROTOCOL_VERSION, cluster: trust.clusterTag, certificate: identity.certificateDer, body, signature }),
  ).finish();
}

/** Bytes an envelope adds around a body of `bodyBytes` (for splitting announcements to fit). */
export function envelopeOverhead(identity: NodeIdentity, trust: ClusterTrust, bodyBytes: number): number {
  return sealEnvelope(identity, trust, new Uint8Array(bodyBytes)).length - bodyBytes;
}

interface RawEnvelope {
  version: number;
  cluster: Buffer;
  certificate: Buffer;
  body: Buffer;
  signature: Buffer;
}

export interface OpenedEnvelope {
  readonly sender: VerifiedNode;
  readonly body: Buffer;
}

/** Checks envelopes against one cluster's trust; remembers certificates it has verified. */
export class EnvelopeOpener {
  private readonly verified = new Map<string, VerifiedNode>();

  constructor(
    private readonly trust: ClusterTrust,
    private readonly self: NodeIdentity,
  ) {}

  /**
   * The sender and the signed body, or a PacketError saying why not. `beforeChecks` is given the
   * body, not yet verified, before the costly checks (certificate, signature): it may throw a
   * PacketError to drop the packet unchecked.
   */
  open(packet: Uint8Array, nowMs: number, beforeChecks: (body: Buffer) => void = () => undefined): OpenedEnvelope {
    if (packet.length > MAX_PACKET_BYTES) throw new PacketError('oversized', `${packet.length} bytes`);
    let raw: RawEnvelope;
    try {
      raw = EnvelopeMessage.toObject(EnvelopeMessage.decode(packet), TO_OBJECT) as RawEnvelope;
    } catch (e) {
      throw new PacketError('malformed', `envelope does not decode: ${(e as Error).message}`);
    }
    if (raw.version !== PROTOCOL_VERSION) throw new PacketError('unsupported_version', `version ${raw.version}`);
    if (!raw.cluster.equals(this.trust.clusterTag)) throw new PacketError('foreign_cluster', raw.cluster.toString('hex'));
    if (raw.certificate.equals(this.self.certificateDer)) throw new PacketError('own', 'own certificate');
    beforeChecks(raw.body);
    const sender = this.sender(raw.certificate, nowMs);
    // Our own certificate spelled otherwise (a byte appended, a longer length form) is ours too.
    if (sender.nodeId === this.self.nodeId) throw new PacketError('own', 'own node id');
    if (this.trust.isRevoked(sender.nodeId)) throw new PacketError('revoked', sender.nodeId);
    if (raw.signature.length !== 64 || !verify(null, Buffer.concat([DOMAIN, raw.body]), sender.publicKey, raw.signature)) {
      throw new PacketError('bad_signature', sender.nodeId);
    }
    return { sender, body: raw.body };
  }

  private sender(der: Buffer, nowMs: number): VerifiedNode {
    const fingerprint = createHash('sha256').update(der).digest('hex');
    const known = this.verified.get(fingerprint);
    if (known !== undefined) {
      if (known.notAfter < nowMs) throw new PacketError('bad_certificate', `certificate of ${known.nodeId} expired`);
      return known;
    }
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch {
      throw new PacketError('malformed', 'certificate does not parse');
    }
    // One spelling per certificate (DER as issued): padded or re-encoded copies would each be a new cache entry.
    if (!cert.raw.equals(der)) throw new PacketError('malformed', 'certificate is not in canonical DER');
    if (!cert.checkIssued(this.trust.ca)) throw new PacketError('not_member', `certificate issued by ${cert.issuer.replace(/\n/g, ', ')}`);
    let node: VerifiedNode;
    try {
      node = verifyNodeCertificate(cert, this.trust.ca, nowMs);
    } catch (e) {
      if (isGitfsError(e)) throw new PacketError('bad_certificate', e.message);
      throw e;
    }
    if (this.verified.size >= MAX_CACHED_CERTIFICATES) this.verified.clear();
    this.verified.set(fingerprint, node);
    return node;
  }
}

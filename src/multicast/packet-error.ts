/**
 * Why a received packet was dropped. These are counted, never thrown past the receiver: a
 * remote's bad packet is a statistic, not an error of this node (docs/PROTOCOL.md lists them).
 */
export const DROP_REASONS = [
  'oversized',
  'malformed',
  'unsupported_version',
  'foreign_cluster',
  'throttled',
  'not_member',
  'bad_certificate',
  'revoked',
  'bad_signature',
  'identity_mismatch',
  'own',
  'stale',
  'replay',
  'duplicate',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

export class PacketError extends Error {
  constructor(
    readonly reason: DropReason,
    message: string,
  ) {
    super(message);
    this.name = 'PacketError';
  }
}

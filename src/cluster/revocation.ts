/**
 * The revocation list: node ids the cluster no longer trusts, signed by the CA key, with a
 * version that only grows. Every node keeps the newest it has seen and honours it for
 * announcements and connections; nodes pass it on to peers that announce an older version.
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import protobuf from 'protobufjs';
import { ErrorCodes, GitfsError } from '../errors.js';
import { isNodeId, type NodeId } from './node-id.js';

const SCHEMA = `
syntax = "proto3";
package gitfs.cluster.v1;
message RevocationList { uint64 version = 1; uint64 issued_ms = 2; repeated string node_ids = 3; }
message SignedRevocationList { bytes body = 1; bytes signature = 2; }
`;
const root = protobuf.parse(SCHEMA, { keepCase: true }).root;
const ListMessage = root.lookupType('gitfs.cluster.v1.RevocationList');
const SignedMessage = root.lookupType('gitfs.cluster.v1.SignedRevocationList');
const DOMAIN = Buffer.from('gitfs-revocations-v1\0', 'latin1');
/**
 * Far more than any cluster revokes (~36 000 ids); bounds what a list can make a node hold. Sent
 * as base64 in a JSON answer, it fits the node service's answers (REMOTE_MAX_ANSWER, 1 MiB): a
 * list of 1 MiB could be signed, but neither fetched nor handed to a joining node.
 */
export const MAX_LIST_BYTES = 640 << 10;

export interface RevocationList {
  readonly version: number;
  readonly issuedMs: number;
  readonly nodeIds: readonly NodeId[];
  /** The signed encoding, as stored and passed on. */
  readonly encoded: Buffer;
}

export function signRevocations(caKey: KeyObject, version: number, issuedMs: number, nodeIds: readonly NodeId[]): RevocationList {
  const body = ListMessage.encode(ListMessage.fromObject({ version, issued_ms: issuedMs, node_ids: [...nodeIds].sort() })).finish();
  const signature = sign(null, Buffer.concat([DOMAIN, body]), caKey);
  const encoded = Buffer.from(SignedMessage.encode(SignedMessage.fromObject({ body, signature })).finish());
  if (encoded.length > MAX_LIST_BYTES) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `a revocation list of ${nodeIds.length} ids takes ${encoded.length} bytes, over ${MAX_LIST_BYTES}: no node would take it`);
  return { version, issuedMs, nodeIds: [...nodeIds].sort(), encoded };
}

/**
 * What the CA node makes of a verified list `theirs` beside its own (`ours`). Revocations are for
 * good, so no list that lacks one of the other's may win: `theirs` when it holds all of ours and
 * is newer (adopted as it is); `ours` when it holds nothing ours lacks and is no newer (nothing to
 * do); else the union, to be signed one version above both (ours was made again after
 * revocations.bin was lost, or theirs dropped one of ours).
 */
export function mergeRevocations(ours: RevocationList | undefined, theirs: RevocationList): { readonly take: 'theirs' | 'ours' } | { readonly take: 'union'; readonly version: number; readonly nodeIds: NodeId[] } {
  if (ours === undefined) return { take: 'theirs' };
  const mine = new Set(ours.nodeIds);
  const their = new Set(theirs.nodeIds);
  const holdsOurs = ours.nodeIds.every((id) => their.has(id));
  const addsNone = theirs.nodeIds.every((id) => mine.has(id));
  if (holdsOurs && theirs.version > ours.version) return { take: 'theirs' };
  if (addsNone && theirs.version <= ours.version) return { take: 'ours' };
  return { take: 'union', version: Math.max(ours.version, theirs.version) + 1, nodeIds: [...new Set([...ours.nodeIds, ...theirs.nodeIds])].sort() };
}

function bad(message: string): GitfsError {
  return new GitfsError(ErrorCodes.BAD_SIGNATURE, `revocation list refused: ${message}`);
}

/** Decodes a signed list and checks the CA's signature; throws GITFS_BAD_SIGNATURE otherwise. */
export function openRevocations(encoded: Uint8Array, caPublicKey: KeyObject): RevocationList {
  if (encoded.length > MAX_LIST_BYTES) throw bad(`${encoded.length} bytes`);
  let signed: { body: Buffer; signature: Buffer };
  let list: { version: number; issued_ms: number; node_ids: string[] };
  try {
    signed = SignedMessage.toObject(SignedMessage.decode(encoded), { bytes: Buffer, defaults: true }) as typeof signed;
    if (!verify(null, Buffer.concat([DOMAIN, signed.body]), caPublicKey, signed.signature)) throw bad('signature does not verify');
    list = ListMessage.toObject(ListMessage.decode(signed.body), { longs: Number, defaults: true, arrays: true }) as typeof list;
  } catch (e) {
    throw e instanceof GitfsError ? e : bad((e as Error).message);
  }
  if (!Number.isSafeInteger(list.version) || list.version < 1) throw bad('bad version');
  if (!list.node_ids.every(isNodeId)) throw bad('bad node id');
  return { version: list.version, issuedMs: list.issued_ms, nodeIds: list.node_ids as NodeId[], encoded: Buffer.from(encoded) };
}

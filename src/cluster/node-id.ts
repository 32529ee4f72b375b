/** A node's id: the first 8 bytes of the SHA-256 of its public key (SPKI DER), as 16 lowercase hex digits. */
import { createHash, type KeyObject } from 'node:crypto';
import { ErrorCodes, GitfsError } from '../errors.js';

export type NodeId = string & { readonly __brand: 'NodeId' };

const NODE_ID_RE = /^[0-9a-f]{16}$/;

export function isNodeId(s: string): s is NodeId {
  return NODE_ID_RE.test(s);
}

export function parseNodeId(s: string): NodeId {
  if (!isNodeId(s)) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `not a node id (16 hex digits): ${JSON.stringify(s.slice(0, 64))}`, { value: s });
  return s;
}

export function nodeIdOf(publicKey: KeyObject): NodeId {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16) as NodeId;
}

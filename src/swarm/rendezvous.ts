/**
 * Rendezvous (highest-random-weight) hashing: for a key (a branch name), every node gets the
 * weight SHA-256(nodeId + '\0' + key) and the nodes are ordered by weight, highest first. Every
 * node computes the same order from the same member list with no coordination, and the order of
 * the remaining nodes does not change when one node joins or leaves, so the top N for a key moves
 * by at most that node.
 */
import { createHash } from 'node:crypto';
import type { NodeId } from '../cluster/node-id.js';

/** The 32-byte weight of `node` for `key`; larger weighs more. */
export function rendezvousWeight(key: string, node: NodeId): Buffer {
  return createHash('sha256').update(`${node}\0${key}`, 'utf8').digest();
}

/** `nodes` (duplicates dropped) by descending weight for `key`. */
export function rendezvousOrder(key: string, nodes: readonly NodeId[]): NodeId[] {
  const weighted = [...new Set(nodes)].map((node) => ({ node, weight: rendezvousWeight(key, node) }));
  weighted.sort((a, b) => Buffer.compare(b.weight, a.weight) || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  return weighted.map((w) => w.node);
}

/**
 * A chunk-tree node read without making a string: the worker that reads ranges of chunked files
 * (chunked-range.ts) parses thousands of nodes per GiB, and decodeTree's strings per entry (mode,
 * name, hex id) cost more than the rest of the walk.
 *
 * It accepts only what decodeTree and nodeSpans (chunk-tree.ts) accept of a chunk node: entries
 * `40000 ` (a subtree) or `100644 ` (a chunk), a name of 16 lowercase hex digits giving the
 * entry's offset, offsets strictly increasing from 0 and below the node's size. Names of one
 * length that increase are sorted and unique as git requires. Anything else is undefined, and the
 * caller reads the node the general way, which names what is wrong.
 */
import { OID_BYTES } from './oid.js';

export interface RawChunkNode {
  /** The node's content: entry i's id lies at idAt[i]. */
  readonly content: Buffer;
  readonly idAt: Uint32Array;
  /** Entry i covers [starts[i], starts[i] + sizes[i]) of the node. */
  readonly starts: Float64Array;
  readonly sizes: Float64Array;
  /** 1 where entry i is a subtree. */
  readonly trees: Uint8Array;
}

const SUBTREE = Buffer.from('40000 ');
const CHUNK = Buffer.from('100644 ');
const NAME_DIGITS = 16;
/** Largest offset a name may give (2^53: exact as a double). */
const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

/** The value of hex digit `c` (lowercase only), or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** The offset named by the 16 hex digits at `at`, or -1. */
function offsetAt(content: Buffer, at: number): number {
  let value = 0;
  for (let i = 0; i < NAME_DIGITS; i++) {
    const d = hexDigit(content[at + i] as number);
    if (d < 0) return -1;
    value = value * 16 + d;
  }
  return value <= MAX_OFFSET ? value : -1;
}

/** Byte by byte: a native compare per entry cost more than the rest of the parse (thousands of nodes per walk). */
function startsWith(content: Buffer, at: number, prefix: Buffer): boolean {
  if (content.length < at + prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (content[at + i] !== prefix[i]) return false;
  return true;
}

/**
 * Reads the entries of `content` as a chunk node covering `size` bytes, giving each to `entry`
 * (where its id lies, its offset, whether it is a subtree) when one is given: how many there
 * are, or -1 where it is not a plain chunk node.
 */
function scanEntries(content: Buffer, size: number, entry?: (idAt: number, start: number, tree: boolean) => void): number {
  let count = 0;
  let previous = -1;
  let pos = 0;
  while (pos < content.length) {
    const tree = startsWith(content, pos, SUBTREE);
    if (!tree && !startsWith(content, pos, CHUNK)) return -1;
    const name = pos + (tree ? SUBTREE.length : CHUNK.length);
    const nul = name + NAME_DIGITS;
    if (nul + 1 + OID_BYTES > content.length || content[nul] !== 0) return -1;
    const start = offsetAt(content, name);
    if (start < 0 || start >= size || (previous < 0 ? start !== 0 : start <= previous)) return -1;
    entry?.(nul + 1, start, tree);
    previous = start;
    count++;
    pos = nul + 1 + OID_BYTES;
  }
  return count;
}

/** The node `content` of a chunk tree covering `size` bytes, or undefined where it is not a plain chunk node. */
export function parseRawChunkNode(content: Buffer, size: number): RawChunkNode | undefined {
  const idAt: number[] = [];
  const starts: number[] = [];
  const trees: number[] = [];
  const count = scanEntries(content, size, (id, start, tree) => {
    idAt.push(id);
    starts.push(start);
    trees.push(tree ? 1 : 0);
  });
  if (count < 0 || (count === 0 && size !== 0)) return undefined;
  const sizes = starts.map((s, i) => (starts[i + 1] ?? size) - s);
  return { content, idAt: Uint32Array.from(idAt), starts: Float64Array.from(starts), sizes: Float64Array.from(sizes), trees: Uint8Array.from(trees) };
}

/**
 * The entries of `content` if it has the shape of a chunk node (its size unknown), each as where
 * its name and id lie and whether it is a subtree; undefined otherwise. decodeTree's fast path.
 */
export function chunkNodeEntries(content: Buffer): { readonly nameAt: number; readonly idAt: number; readonly tree: boolean }[] | undefined {
  const out: { nameAt: number; idAt: number; tree: boolean }[] = [];
  const count = scanEntries(content, Number.MAX_SAFE_INTEGER, (idAt, _start, tree) => out.push({ nameAt: idAt - 1 - NAME_DIGITS, idAt, tree }));
  return count < 0 ? undefined : out;
}

/**
 * Reads `content` as a chunk node (its size unknown), giving `entry` where each entry's id lies and
 * whether it is a subtree, before the whole is known to be one: how many entries there are, or
 * -1 where it is not a plain chunk node (the caller then drops what it was given).
 */
export function scanChunkNode(content: Buffer, entry: (idAt: number, tree: boolean) => void): number {
  return scanEntries(content, Number.MAX_SAFE_INTEGER, (idAt, _start, tree) => entry(idAt, tree));
}

/**
 * Whether `content` has the shape of a chunk node (its size unknown): the swarm stores such trees
 * uncompressed, as the committer does (chunk-tree.ts), and never deflates thousands per image.
 */
export function isChunkNode(content: Buffer): boolean {
  return content.length > 0 && scanEntries(content, Number.MAX_SAFE_INTEGER) > 0;
}

/**
 * Heap taken per entry by two caches bounded in entries: the mount's `.history` name maps
 * (historyNames, 5 maps of 100 000 commits) and the working layers' decoded tree listings
 * (TreeCache's form, 4 trees of 50 000 names). Usage (after `make build`):
 * node --expose-gc dist/bench/cache-heap.js
 */
import { createHash } from 'node:crypto';
import { historyNames } from '../src/mount/router.js';
import { fromTreeEntries } from '../src/objects/entry-names.js';
import type { Oid } from '../src/objects/oid.js';
import { decodeTree, encodeTree, TreeModes } from '../src/objects/tree.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const oid = (seed: string): Oid => createHash('sha1').update(seed).digest('hex') as Oid;

/** Heap bytes per entry that `make` keeps, over `entries` entries in all. */
function perEntry(entries: number, make: () => unknown[]): number {
  (gc as () => void)();
  const before = process.memoryUsage().heapUsed;
  const kept = make();
  (gc as () => void)();
  const bytes = process.memoryUsage().heapUsed - before;
  if (kept.length === 0) throw new Error('nothing kept');
  return bytes / entries;
}

const chains = Array.from({ length: 5 }, (_, k) => Array.from({ length: 100_000 }, (_, i) => ({ timeMs: 1.7e12 + i * 1000 + k, commit: oid(`${k}/${i}`) })));
const history = perEntry(500_000, () => chains.map((c) => historyNames(c)));

const trees = Array.from({ length: 4 }, (_, k) => encodeTree(Array.from({ length: 50_000 }, (_, i) => ({ mode: TreeModes.FILE, name: `file-${k}-${String(i).padStart(6, '0')}.txt`, oid: oid(`t${k}/${i}`) }))));
const listings = perEntry(200_000, () => trees.map((t, k) => new Map(fromTreeEntries(decodeTree(t, oid(`t${k}`)), oid(`t${k}`)).map((e) => [e.name, e]))));

console.log(`.history names: ${history.toFixed(0)} bytes of heap each`);
console.log(`tree listing entries: ${listings.toFixed(0)} bytes of heap each`);

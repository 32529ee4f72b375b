/** What a branch's working layer changes, relative to its base commit: `gitfs status`. */
import type { Layer } from './layer.js';
import { MergedView } from './merged-view.js';
import type { TreeCache } from './tree-cache.js';
import type { Oid } from '../objects/oid.js';

export type WorkChangeKind = 'added' | 'modified' | 'deleted';

export interface WorkChange {
  readonly path: string;
  readonly kind: WorkChangeKind;
}

/** Changed paths in path order; directories only when they are new or deleted. */
export async function workChanges(layer: Layer, trees: TreeCache, baseTree: Oid | null): Promise<WorkChange[]> {
  const before = new MergedView(trees, undefined, baseTree);
  const out: WorkChange[] = [];
  const paths = [...layer.entries()].map(([p]) => p).sort();
  for (const path of paths) {
    const entry = layer.get(path);
    if (entry === undefined) continue;
    const was = await before.find(path);
    if (entry.t === 'wh') {
      if (was !== undefined) out.push({ path, kind: 'deleted' });
    } else if (was === undefined) {
      out.push({ path, kind: 'added' });
    } else if (!(entry.t === 'dir' && was.node.kind === 'dir' && entry.lower === 'inherit')) {
      out.push({ path, kind: 'modified' });
    }
  }
  return out;
}

/**
 * What a prune keeps (src/repo/prune.ts): every object reachable from the roots (refs and the
 * reflogs that are kept), each root's history cut at its policy's depth.
 *
 * Invariants:
 * - a root with history 0 keeps all its history, down to the commits in git's `shallow` file
 *   (their parents are absent by design): what `git fsck` walks from it;
 * - a root with history K keeps its first K generations, counting itself, as a fetch of it under
 *   that policy takes them (src/swarm/closure.ts); a kept commit with a parent not kept is a
 *   boundary commit, for git's `shallow` file, so that git stops there;
 * - whatever any root keeps is kept: history that a branch with history "all" or a tag reaches
 *   through a limited branch's commits is never cut (a commit another root keeps whole is no
 *   boundary);
 * - commits and trees are read (a missing or unreadable one fails the whole computation: a prune
 *   on a partial answer would remove what something names); blobs are only named, so the absent
 *   blobs of a partial repository are kept by id and nothing is fetched.
 */
import { ErrorCodes, GitfsError } from '../errors.js';
import { decodeCommit } from '../objects/commit.js';
import type { ObjectReader } from '../objects/object-store.js';
import { isOid, type ObjectType, type Oid } from '../objects/oid.js';
import { readTyped } from '../objects/typed-read.js';
import { isBlobKind, LinkKinds, treeLinks } from '../swarm/tree-links.js';

export interface LiveRoot {
  /** What names it (a ref, or a reflog entry), for messages. */
  readonly name: string;
  readonly oid: Oid;
  /** Generations kept, counting the root's commit; 0: all. */
  readonly history: number;
}

export interface Live {
  /** Every object kept: tags, commits, trees and blobs (absent blobs of a partial repository too). */
  readonly objects: ReadonlySet<Oid>;
  readonly commits: ReadonlySet<Oid>;
  /** Kept commits with a parent not kept, which git's `shallow` file must list. */
  readonly boundary: readonly Oid[];
}

/** Objects as a prune reads them: a root's type without reading it whole (a ref may name a blob above the read limit). */
export interface LiveSource extends ObjectReader {
  typeOf(oid: Oid): Promise<ObjectType>;
}

/** Tags followed from one root before it is taken for a loop. */
const MAX_TAG_DEPTH = 16;
/** Objects decoded between two turns of the event loop (the daemon answers peers meanwhile). */
const SLICE = 256;

export async function liveObjects(source: LiveSource, roots: readonly LiveRoot[], shallow: ReadonlySet<Oid>): Promise<Live> {
  const walk = new Walk(source, shallow);
  const whole: Oid[] = [];
  const limited: Array<{ commit: Oid; history: number; name: string }> = [];
  for (const root of roots) {
    const commit = await walk.peel(root);
    if (commit === undefined) continue;
    if (root.history === 0) whole.push(commit);
    else limited.push({ commit, history: root.history, name: root.name });
  }
  await walk.wholeHistory(whole);
  const candidates = new Set<Oid>();
  for (const r of limited) for (const c of await walk.generations(r.commit, r.history, r.name)) candidates.add(c);
  await walk.trees();
  const boundary: Oid[] = [];
  for (const c of candidates) if ((walk.parents.get(c) ?? []).some((p) => !walk.commits.has(p))) boundary.push(c);
  return { objects: walk.objects, commits: walk.commits, boundary: boundary.sort() };
}

class Walk {
  readonly objects = new Set<Oid>();
  readonly commits = new Set<Oid>();
  /** Parents of the commits read, for the boundary. */
  readonly parents = new Map<Oid, readonly Oid[]>();
  /** Commits whose whole history is kept (down to `shallow`). */
  private readonly fullyKept = new Set<Oid>();
  private readonly commitTrees = new Map<Oid, Oid>();
  private readonly treeRoots: Oid[] = [];
  private decoded = 0;

  constructor(
    private readonly source: LiveSource,
    private readonly shallow: ReadonlySet<Oid>,
  ) {}

  /** Keeps the tags on the way from a root; the commit it comes to, if it comes to one. */
  async peel(root: LiveRoot): Promise<Oid | undefined> {
    let oid = root.oid;
    let type = await this.typeOf(oid, root.name);
    for (let depth = 0; type === 'tag'; depth++) {
      if (depth >= MAX_TAG_DEPTH) throw new GitfsError(ErrorCodes.CORRUPT_OBJECT, `${root.name}: more than ${MAX_TAG_DEPTH} tags in a row from ${root.oid}`, { oid: root.oid });
      this.objects.add(oid);
      oid = tagTarget(await readTyped(this.source, oid, 'tag'), oid);
      type = await this.typeOf(oid, root.name);
    }
    if (type === 'commit') return oid;
    if (type === 'tree') this.treeRoots.push(oid);
    this.objects.add(oid);
    return undefined;
  }

  /** Keeps the whole history of `heads`, down to shallow commits. */
  async wholeHistory(heads: readonly Oid[]): Promise<void> {
    const stack = [...heads];
    for (let c = stack.pop(); c !== undefined; c = stack.pop()) {
      if (this.fullyKept.has(c)) continue;
      this.fullyKept.add(c);
      const parents = await this.commit(c, 'a kept history');
      if (!this.shallow.has(c)) stack.push(...parents.filter((p) => !this.fullyKept.has(p)));
    }
  }

  /**
   * Keeps `history` generations from `head` (breadth first: a commit's generation is its shortest
   * distance), stopping at shallow commits and at those kept whole; the commits of the last
   * generation that have parents (boundary candidates).
   */
  async generations(head: Oid, history: number, name: string): Promise<Oid[]> {
    const depth = new Map<Oid, number>([[head, 1]]);
    const last: Oid[] = [];
    for (let level = [head]; level.length > 0; ) {
      const next: Oid[] = [];
      for (const c of level) {
        if (this.fullyKept.has(c)) continue;
        const parents = await this.commit(c, name);
        const d = depth.get(c) ?? 1;
        if (this.shallow.has(c) || parents.length === 0) continue;
        if (d >= history) {
          last.push(c);
          continue;
        }
        for (const p of parents) {
          if (depth.has(p)) continue;
          depth.set(p, d + 1);
          next.push(p);
        }
      }
      level = next;
    }
    return last;
  }

  /** Keeps every tree and blob under the kept commits and the trees roots name. */
  async trees(): Promise<void> {
    const stack = [...this.treeRoots];
    for (const c of this.commits) stack.push(this.commitTrees.get(c) as Oid);
    for (let t = stack.pop(); t !== undefined; t = stack.pop()) {
      if (this.objects.has(t)) continue;
      this.objects.add(t);
      const links = treeLinks(await this.read(t, 'tree', 'a kept tree'), t);
      await this.pace();
      links.kinds.forEach((kind, i) => {
        const oid = links.oids[i] as Oid;
        if (kind === LinkKinds.TREE) stack.push(oid);
        else if (isBlobKind(kind)) this.objects.add(oid);
      });
    }
  }

  /** Keeps commit `c`; its parents. */
  private async commit(c: Oid, name: string): Promise<readonly Oid[]> {
    const known = this.parents.get(c);
    if (known !== undefined) return known;
    const parsed = decodeCommit(await this.read(c, 'commit', name), c);
    this.commits.add(c);
    this.objects.add(c);
    this.parents.set(c, parsed.parents);
    this.commitTrees.set(c, parsed.tree);
    await this.pace();
    return parsed.parents;
  }

  private async read(oid: Oid, type: 'commit' | 'tree', name: string): Promise<Buffer> {
    try {
      return await readTyped(this.source, oid, type);
    } catch (e) {
      throw unreadable(e, oid, name);
    }
  }

  private async typeOf(oid: Oid, name: string): Promise<ObjectType> {
    try {
      return await this.source.typeOf(oid);
    } catch (e) {
      throw unreadable(e, oid, name);
    }
  }

  private async pace(): Promise<void> {
    if (++this.decoded % SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}

function unreadable(e: unknown, oid: Oid, name: string): unknown {
  if (e instanceof GitfsError && e.code === ErrorCodes.OBJECT_NOT_FOUND) {
    return new GitfsError(ErrorCodes.OBJECT_NOT_FOUND, `${oid}, which ${name} needs, is not here: nothing can be pruned until the repository is whole (gitfs fsck)`, { oid, needed: name }, { cause: e });
  }
  return e;
}

/** The object an annotated tag points at (its `object` header line). */
function tagTarget(content: Buffer, oid: Oid): Oid {
  const target = /^object ([0-9a-f]{40})\n/.exec(content.subarray(0, 48).toString('latin1'))?.[1];
  if (target === undefined || !isOid(target)) throw new GitfsError(ErrorCodes.CORRUPT_OBJECT, `tag ${oid} does not name an object`, { oid });
  return target;
}

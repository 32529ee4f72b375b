/**
 * Prune: what no ref keeps any more leaves the disk, and a branch whose policy keeps K commits
 * of history (`history: K`) keeps that many, not every release it ever held. `gitfs prune` runs
 * it by hand; `gitfs serve` every `prune.everyMs`.
 *
 * What is kept (live-objects.ts): everything reachable from every ref (branches, tags, gitfs's
 * own refs, anything git wrote under refs/, a detached HEAD) and from the reflogs of refs no
 * policy limits, each branch under a `history: K` policy (and gitfs's refs of that branch) cut at
 * K generations. What is removed: the rest, once its file is older than the grace period, as
 * `git gc --prune=<grace>` judges it (freshen.ts: a writer that names an object again touches the
 * file that holds it), and than the oldest write hold: a writer's objects are safe from its start
 * until its ref names them, however long it runs (write-holds.ts). One prune runs at a time
 * (prune-lock.ts).
 *
 * Invariants (a kill -9 at any point leaves a valid repository whose refs name whole commits, but
 * for a file set aside at that moment that a writer had touched just before: set-aside.ts puts it
 * back at the next prune, `gitfs serve` and `gitfs fsck`):
 * - history is cut only by a prune that removes something: while what lies past the cut is all
 *   here (younger than the grace period), a ref made on it still keeps it whole;
 * - nothing goes if a ref moved, while the walk ran, to an object the walk did not keep
 *   (GITFS_PRUNE_REFUSED): a branch created on an old commit, a tag;
 * - the new boundary commits are in git's `shallow` file, the reflog entries that name commits
 *   about to go are dropped (only among the lines the walk saw: reflog-expire.ts), and git's
 *   commit-graph (a cache naming commits and parents) is removed, before any object is removed;
 * - a pack is rewritten, never edited: the objects it keeps are copied into a new pack that is
 *   durable and visible before the old one may go, and the old one goes only if its file was not
 *   touched since it was judged (a writer that freshened it names its objects again), index first,
 *   and not while it alone holds what is kept when it goes (walked again then, or, removed in the
 *   same run, no ref moved off what the walk kept);
 * - a loose object goes only if its file is still as old as judged;
 * - a file is checked for a touch only once it is set aside, where no writer touches it
 *   (set-aside.ts); what a killed prune left there is put back before the next one judges;
 * - nothing is removed where git keeps a multi-pack-index (it names packs by position),
 *   `extensions.preciousObjects` is set, a git worktree is attached (its HEAD is a root not
 *   read here), or a pack is damaged (GITFS_PRUNE_REFUSED): what a damaged pack holds cannot be
 *   told;
 * - packs with a `.keep` beside them and git's cruft packs are left alone;
 * - a shallow entry goes only once its commit is no longer here.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { listAllRefs, listReflogs, reflogPath, type NamedRef } from '../branches/all-refs.js';
import { readReflog } from '../branches/reflog.js';
import { expireReflog } from '../branches/reflog-expire.js';
import { branchFromRef, isBranchName, type BranchName } from '../branches/ref-name.js';
import { readShallow, updateShallow } from '../branches/shallow.js';
import { ErrorCodes, GitfsError, isGitfsError } from '../errors.js';
import type { Oid } from '../objects/oid.js';
import { historyDepth, policyFor, type Policy } from '../swarm/policy.js';
import type { Clock } from '../util/clock.js';
import { liveObjects, type Live, type LiveRoot } from './live-objects.js';
import { copyPacks, removePacks, type Pack } from './pack-merge.js';
import { crashPoint } from '../util/crash-point.js';
import { whyPacksStay } from './packs-stay.js';
import { withPruneLock } from './prune-lock.js';
import type { Repository } from './repository.js';
import { anythingSetAside, prepareSetAside, removeUnlessTouched, restoreSetAside } from './set-aside.js';
import { oldestHold } from './write-holds.js';

/** How much older than a write hold's start a file must be to go: file times lag the clock by a tick. */
const HOLD_MARGIN_MS = 1000;

export interface PruneOptions {
  /** The replication policies: a branch they give `history: K` keeps K generations. */
  readonly policies: readonly Policy[];
  /** Unreachable objects in files touched more recently than this are kept (a commit or fetch under way names them soon). */
  readonly graceMs: number;
  readonly clock: Clock;
  /** Only count what would go. */
  readonly dryRun?: boolean;
  /** Packs not to touch (merged already, waiting to be removed). */
  readonly exclude?: ReadonlySet<string>;
  /**
   * Removes the packs it rewrote in the same run, under the same lock (`gitfs prune`), if every
   * ref still names what the walk kept; otherwise they are left to removeDoomedPacks (the daemon,
   * 10 minutes later).
   */
  readonly removeNow?: boolean;
}

/** A pack judged to go, with the mtime it had then: it goes only if that is still its mtime. */
export interface DoomedPack {
  readonly name: string;
  readonly mtimeMs: number;
  readonly size: number;
  /** Objects in it that no root keeps: they go with it. */
  readonly dead: number;
}

export interface Pruned {
  /** Refs and reflog entries the kept objects were walked from. */
  readonly roots: number;
  readonly keptCommits: number;
  readonly keptObjects: number;
  /** Commits added to git's `shallow` file: kept, their parents not. */
  readonly boundary: readonly Oid[];
  readonly reflogEntriesDropped: number;
  /**
   * Objects not kept and old enough: the loose ones removed and those of the packs to remove
   * (dry: all that would go). A pack left in the end (touched since) keeps its own.
   */
  readonly removedObjects: number;
  /** Objects not kept, left for now: in files touched within the grace period. */
  readonly youngObjects: number;
  readonly looseFiles: number;
  readonly looseBytes: number;
  /** Packs whose kept objects were copied into `written` (dry: that would be), to be removed with removeDoomedPacks. */
  readonly doomed: readonly DoomedPack[];
  /** Of `doomed`, those removed already (`removeNow`). */
  readonly removed: readonly string[];
  /** When the oldest write hold began, if one limited what could go (write-holds.ts). */
  readonly heldSince: number | undefined;
  readonly written: { readonly packs: number; readonly objects: number; readonly bytes: number };
}

/**
 * Reflogs of refs limited by a policy get expired; every other one keeps what it names. Runs under
 * the prune lock (GITFS_PRUNE_REFUSED while another prune runs), first putting back what a killed
 * prune left set aside; a dry run changes nothing, and takes no lock.
 */
export async function prune(repo: Repository, options: PruneOptions): Promise<Pruned> {
  if (options.dryRun === true) return pruneRun(repo, options);
  return withPruneLock(repo.gitDir, async () => {
    if ((await restoreSetAside(repo.gitDir)) > 0) await repo.objects.refresh();
    return pruneRun(repo, options);
  });
}

/**
 * Puts back what a prune killed while it removed files left set aside (set-aside.ts): `gitfs
 * serve` at its start and every minute, `gitfs fsck`. None while another prune runs: it put them
 * back when it began. How many files.
 */
export async function recoverKilledPrune(repo: Repository): Promise<number> {
  if (!(await anythingSetAside(repo.gitDir))) return 0;
  try {
    return await withPruneLock(repo.gitDir, async () => {
      const back = await restoreSetAside(repo.gitDir);
      if (back > 0) await repo.objects.refresh();
      return back;
    });
  } catch (e) {
    if (isGitfsError(e, ErrorCodes.PRUNE_REFUSED)) return 0;
    throw e;
  }
}

/** What is kept now: the roots (refs, and the reflogs of refs no policy limits) and what they reach. */
interface Walked {
  readonly refs: readonly NamedRef[];
  readonly roots: readonly LiveRoot[];
  /** Limited reflogs with their length when read: only what the walk saw is expired (a line added since names a commit it did not see). */
  readonly limitedLogs: ReadonlyMap<string, number>;
  readonly live: Live;
}

async function walkLive(repo: Repository, policies: readonly Policy[]): Promise<Walked> {
  const gitDir = repo.gitDir;
  const shallow = await readShallow(gitDir);
  const refs = await listAllRefs(gitDir);
  const headBranch = await repo.refs.headTarget().then((t) => ('branch' in t ? t.branch : undefined));
  const historyOf = (ref: string): number => {
    const branch = ref === 'HEAD' ? headBranch : branchOfRef(ref);
    return branch === undefined ? 0 : historyDepth(policyFor(branch, policies));
  };
  const roots: LiveRoot[] = refs.map((r) => ({ name: r.ref, oid: r.oid, history: r.ref === 'HEAD' ? 0 : historyOf(r.ref) }));
  const limitedLogs = new Map<string, number>();
  for (const ref of await listReflogs(gitDir)) {
    if (historyOf(ref) > 0) {
      limitedLogs.set(ref, (await stat(reflogPath(gitDir, ref)).catch(() => undefined))?.size ?? 0);
      continue;
    }
    // An entry naming what is not here any more (git's own gc expired it) keeps nothing.
    for (const e of await readReflog(reflogPath(gitDir, ref))) {
      for (const oid of [e.oldOid, e.newOid]) if (!/^0{40}$/.test(oid) && (await repo.objects.has(oid))) roots.push({ name: `${ref}'s reflog`, oid, history: 0 });
    }
  }
  return { refs, roots, limitedLogs, live: await liveObjects(repo.objects, roots, shallow) };
}

async function pruneRun(repo: Repository, options: PruneOptions): Promise<Pruned> {
  await refuseUnsafe(repo);
  const gitDir = repo.gitDir;
  const { refs, roots, limitedLogs, live } = await walkLive(repo, options.policies);
  const plan = await judge(repo, live, options);
  const outcome = { roots: roots.length, keptCommits: live.commits.size, keptObjects: live.objects.size, boundary: live.boundary, heldSince: plan.heldSince, ...plan.counts };
  const nothing = { ...outcome, boundary: [], reflogEntriesDropped: 0, doomed: [], removed: [], written: { packs: 0, objects: 0, bytes: 0 } };
  if (options.dryRun === true) return { ...nothing, boundary: live.boundary, doomed: plan.doomed };
  // History is cut only when what lies past the cut goes now: while it is here, a ref made on it keeps it whole.
  if (plan.loose.length === 0 && plan.doomed.length === 0) return nothing;
  await refuseMovedRefs(gitDir, refs, live);
  crashPoint('prune:judged');
  // git's commit-graph, a cache of commits and their parents, would name removed commits and parents the shallow file cuts.
  await removeCommitGraphs(gitDir);
  crashPoint('prune:commit-graph-removed');
  // What git walks must end where the objects do before any goes.
  await updateShallow(gitDir, live.boundary, async (candidates) => candidates);
  crashPoint('prune:shallow-written');
  let reflogEntriesDropped = 0;
  for (const [ref, seen] of limitedLogs) {
    reflogEntriesDropped += await expireReflog(gitDir, ref, (oid) => live.commits.has(oid), options.clock, seen);
    crashPoint('prune:reflog-expired');
  }
  const loose = await removeLoose(repo, plan.loose, plan.cutoff);
  crashPoint('prune:loose-removed');
  const { doomed, written } = await rewritePacks(repo, plan.doomed, live);
  crashPoint('prune:packs-rewritten');
  // The rewrite took a while: a ref made meanwhile on what goes leaves the packs for a later removal, which walks again.
  const removed = options.removeNow === true && (await refsKept(gitDir, live)) ? await removeUntouchedPacks(repo, doomed, new Set()) : [];
  const removedObjects = loose.files + doomed.reduce((n, p) => n + p.dead, 0);
  return { ...outcome, removedObjects, reflogEntriesDropped, looseFiles: loose.files, looseBytes: loose.bytes, doomed, removed, written };
}

/** Whether every ref names what the walk kept. */
async function refsKept(gitDir: string, live: Live): Promise<boolean> {
  return (await listAllRefs(gitDir)).every((r) => live.objects.has(r.oid));
}

/**
 * Removes the packs a prune rewrote a while ago (the daemon's, 10 minutes later), under the prune
 * lock. What is kept is walked again first (a ref or reflog entry made since on what goes, as `git
 * branch` on an old commit, keeps it): a pack alone holding an object kept now stays. The packs
 * removed.
 */
export function removeDoomedPacks(repo: Repository, doomed: readonly DoomedPack[], policies: readonly Policy[]): Promise<string[]> {
  return withPruneLock(repo.gitDir, async () => {
    await repo.objects.refresh();
    const { live } = await walkLive(repo, policies);
    return removeUntouchedPacks(repo, doomed, await keptOnlyBy(repo, new Set(doomed.map((p) => p.name)), live));
  });
}

/**
 * Removes `doomed` but `spared`, index first, each only if it was not touched since it was judged
 * (a writer freshened it: it names objects in it again; set-aside.ts); then drops shallow entries
 * of commits no longer here. The packs removed.
 */
async function removeUntouchedPacks(repo: Repository, doomed: readonly DoomedPack[], spared: ReadonlySet<string>): Promise<string[]> {
  const packDir = join(repo.gitDir, 'objects', 'pack');
  await prepareSetAside(repo.gitDir);
  const gone: string[] = [];
  for (const p of doomed) {
    if (spared.has(p.name)) continue;
    const [idx, pack] = [join(packDir, `${p.name}.idx`), join(packDir, `${p.name}.pack`)];
    if (await removeUnlessTouched(repo.gitDir, [idx, pack], pack, (mtimeMs) => mtimeMs === p.mtimeMs)) gone.push(p.name);
  }
  // What is left of them (a .rev, a .promisor) goes too.
  await removePacks(repo, gone);
  crashPoint('prune:packs-removed');
  await updateShallow(repo.gitDir, [], async (candidates) => {
    const here = new Set<Oid>();
    for (const c of candidates) if (await repo.objects.has(c)) here.add(c);
    return here;
  });
  return gone;
}

/** The packs among `packs` holding an object `live` keeps that no other pack or loose file holds. */
async function keptOnlyBy(repo: Repository, packs: ReadonlySet<string>, live: Live): Promise<Set<string>> {
  const loaded = repo.objects.packs();
  const others = loaded.filter((p) => !packs.has(p.name));
  const loose = await repo.objects.looseIds();
  const kept = new Set<string>();
  for (const pack of loaded) {
    if (!packs.has(pack.name)) continue;
    for (const oid of pack.ids()) {
      if (!live.objects.has(oid) || loose.has(oid) || others.some((p) => p.has(oid))) continue;
      kept.add(pack.name);
      break;
    }
  }
  return kept;
}

/**
 * GITFS_PRUNE_REFUSED when a ref now names what the walk did not keep: it was made or moved
 * meanwhile (a branch created on an old commit, a tag, a rollout ref), and its history could go.
 * A writer that names objects again otherwise freshens their files, which the grace period covers.
 */
async function refuseMovedRefs(gitDir: string, before: readonly NamedRef[], live: Live): Promise<void> {
  const seen = new Map(before.map((r) => [r.ref, r.oid]));
  for (const r of await listAllRefs(gitDir)) {
    if (seen.get(r.ref) === r.oid || live.objects.has(r.oid)) continue;
    throw new GitfsError(ErrorCodes.PRUNE_REFUSED, `${r.ref} moved to ${r.oid} while the prune walked: nothing removed; run it again`, { reason: 'moved', ref: r.ref });
  }
}

/** Removes git's commit-graph files: a cache, which git writes again at its next gc. */
async function removeCommitGraphs(gitDir: string): Promise<void> {
  const info = join(gitDir, 'objects', 'info');
  await rm(join(info, 'commit-graph'), { force: true });
  await rm(join(info, 'commit-graphs'), { recursive: true, force: true });
}

/** The branch a ref belongs to: `refs/heads/B`, or gitfs's `refs/gitfs/<kind>/B`. */
function branchOfRef(ref: string): BranchName | undefined {
  const own = /^refs\/gitfs\/(?:pending|blessed|previous|work)\/(.+)$/.exec(ref)?.[1];
  if (own !== undefined) return isBranchName(own) ? own : undefined;
  return branchFromRef(ref);
}

async function refuseUnsafe(repo: Repository): Promise<void> {
  const stay = await whyPacksStay(repo.gitDir);
  if (stay !== undefined) throw new GitfsError(ErrorCodes.PRUNE_REFUSED, stay.reason === 'precious' ? stay.message : `${stay.message} to prune`, { reason: stay.reason });
  // A git worktree's HEAD and reflog are roots this prune does not read.
  if ((await readdir(join(repo.gitDir, 'worktrees')).catch(() => [])).length > 0) {
    throw new GitfsError(ErrorCodes.PRUNE_REFUSED, `git worktrees are attached here (${join(repo.gitDir, 'worktrees')}): their commits would not be kept`, { reason: 'worktrees' });
  }
  await repo.objects.refresh();
  const damaged = [...repo.objects.damagedPacks().keys()];
  if (damaged.length > 0) throw new GitfsError(ErrorCodes.PRUNE_REFUSED, `damaged packs, whose objects cannot be told: ${damaged.join(', ')}`, { reason: 'damaged', packs: damaged });
}

interface Plan {
  /** Files last touched at or before this (ms) may go: the grace period's start, or a write hold's. */
  readonly cutoff: number;
  /** When the oldest write hold began, if it set the cutoff. */
  readonly heldSince: number | undefined;
  readonly loose: readonly Oid[];
  readonly doomed: readonly DoomedPack[];
  readonly counts: { removedObjects: number; youngObjects: number; looseFiles: number; looseBytes: number };
}

/**
 * What is not kept, and of that what is old enough to go: older than the grace period, and than
 * the oldest write hold (write-holds.ts) by a margin for the file system's coarser clock.
 */
async function judge(repo: Repository, live: Live, options: PruneOptions): Promise<Plan> {
  const held = await oldestHold(repo.gitDir, { removeStale: options.dryRun !== true, now: options.clock.now() });
  const graceStart = options.clock.now() - options.graceMs;
  const heldSince = held !== undefined && held - HOLD_MARGIN_MS < graceStart ? held : undefined;
  const cutoff = heldSince === undefined ? graceStart : heldSince - HOLD_MARGIN_MS;
  const packDir = join(repo.gitDir, 'objects', 'pack');
  const present = new Set(await readdir(packDir));
  let removedObjects = 0;
  let youngObjects = 0;
  const doomed: DoomedPack[] = [];
  for (const pack of repo.objects.packs()) {
    if (pack.cruft || options.exclude?.has(pack.name) === true || present.has(`${pack.name}.keep`)) continue;
    let dead = 0;
    for (const oid of pack.ids()) if (!live.objects.has(oid)) dead++;
    if (dead === 0) continue;
    const st = await stat(pack.path).catch(() => undefined);
    if (st === undefined) continue;
    if (st.mtimeMs > cutoff) youngObjects += dead;
    else {
      removedObjects += dead;
      doomed.push({ name: pack.name, mtimeMs: st.mtimeMs, size: st.size, dead });
    }
  }
  const loose: Oid[] = [];
  let looseBytes = 0;
  for (const oid of await repo.objects.looseIds()) {
    if (live.objects.has(oid)) continue;
    const st = await stat(repo.objects.loosePathOf(oid)).catch(() => undefined);
    if (st === undefined) continue;
    if (st.mtimeMs > cutoff) youngObjects++;
    else {
      loose.push(oid);
      looseBytes += st.size;
    }
  }
  removedObjects += loose.length;
  return { cutoff, heldSince, loose, doomed, counts: { removedObjects, youngObjects, looseFiles: loose.length, looseBytes } };
}

/** Removes the loose objects judged to go whose files are still that old (set-aside.ts). */
async function removeLoose(repo: Repository, oids: readonly Oid[], cutoff: number): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  await prepareSetAside(repo.gitDir);
  for (const oid of oids) {
    const path = repo.objects.loosePathOf(oid);
    const size = (await stat(path).catch(() => undefined))?.size;
    if (size === undefined || !(await removeUnlessTouched(repo.gitDir, [path], path, (mtimeMs) => mtimeMs <= cutoff))) continue;
    files++;
    bytes += size;
  }
  return { files, bytes };
}

/**
 * Copies what the doomed packs keep into new packs (promisor ones among themselves, as
 * pack-merge.ts does); a pack holding an object above the read limit (git wrote it), which cannot
 * be copied, is left as it is. The packs to remove, and what was written.
 */
async function rewritePacks(repo: Repository, doomed: readonly DoomedPack[], live: Live): Promise<Pick<Pruned, 'doomed' | 'written'>> {
  const byName = new Map(repo.objects.packs().map((p) => [p.name, p]));
  const packDir = join(repo.gitDir, 'objects', 'pack');
  const present = new Set(await readdir(packDir));
  const left = new Set(doomed.map((d) => d.name));
  let packs = 0;
  let objects = 0;
  let bytes = 0;
  for (const promisor of [false, true]) {
    const group = doomed.filter((d) => present.has(`${d.name}.promisor`) === promisor && byName.has(d.name));
    // Each try that meets an uncopyable pack leaves it out: at most one try per pack.
    for (let sources = group; sources.length > 0; ) {
      const written = await copyPacks(repo, sources.map((d) => ({ pack: byName.get(d.name) as Pack, keep: (oid: Oid) => live.objects.has(oid) })), promisor);
      if ('unmergeable' in written) {
        left.delete(written.unmergeable);
        sources = sources.filter((d) => d.name !== written.unmergeable);
        continue;
      }
      packs += written.names.size;
      objects += written.objects;
      for (const name of written.names) {
        bytes += (await stat(join(packDir, `${name}.pack`))).size;
        // The same objects may make the same pack again: it stays.
        left.delete(name);
      }
      break;
    }
  }
  return { doomed: doomed.filter((d) => left.has(d.name)), written: { packs, objects, bytes } };
}

/**
 * Verifies everything reachable from every branch: each object is read (which hash-checks
 * it), every tree is decoded with gitfs's rules, every chunk tree's offsets and chunk sizes are
 * checked against the size its parent records. Failures name the object and the paths that
 * need it.
 */
import { ErrorCodes, GitfsError, isGitfsError } from '../errors.js';
import { nodeSpans } from '../objects/chunk-tree.js';
import { decodeCommit } from '../objects/commit.js';
import { fromTreeEntries } from '../objects/entry-names.js';
import type { ObjectReader } from '../objects/object-store.js';
import type { ObjectType, Oid } from '../objects/oid.js';
import { decodeTree } from '../objects/tree.js';
import { blobPieces, readTyped } from '../objects/typed-read.js';

export interface FsckProblem {
  readonly oid: Oid;
  readonly code: string;
  readonly message: string;
  /** `branch:path` (or `branch@commit`) of everything that needs the object, as found. */
  readonly neededBy: string[];
}

export interface FsckReport {
  objects: number;
  commits: number;
  /** Blobs a partial repository does not hold (fetched when read): not problems. */
  absent: number;
  /** Blobs git stored as deltas above the read limit (GITFS_OBJECT_TOO_LARGE): not read, so not checked here (git fsck checks them); not problems. */
  tooLarge: number;
  readonly problems: FsckProblem[];
}

export interface FsckRoot {
  readonly name: string;
  readonly oid: Oid;
}

/**
 * `partial`: the repository keeps some branches on demand (src/repo/partial.ts), so blobs may be
 * absent. `shallow`: commits whose parents are not kept (git's `shallow` file): not walked past.
 */
export async function fsck(store: ObjectReader, roots: readonly FsckRoot[], options: { partial?: boolean; shallow?: ReadonlySet<Oid> } = {}): Promise<FsckReport> {
  const checker = new Checker(store, options.partial === true, options.shallow ?? new Set());
  for (const root of roots) await checker.commitChain(root.oid, root.name);
  return checker.report;
}

/** Most paths named for one problem. */
const NEEDERS_LISTED = 20;

class Checker {
  readonly report: FsckReport = { objects: 0, commits: 0, absent: 0, tooLarge: 0, problems: [] };
  private readonly absent = new Set<Oid>();
  /** Checks done, by key: the id, and for chunk nodes and chunks also the size the parent gives (one object may be checked against two sizes). */
  private readonly ok = new Set<string>();
  private readonly bad = new Map<string, FsckProblem>();
  private readonly counted = new Set<Oid>();
  /**
   * Problems met so far, new or known again. A check during which it grew holds a problem below
   * it: not marked ok, so that whatever else needs it (another commit, branch or path) walks it
   * again and is named among the problem's needers.
   */
  private met = 0;
  /** How often each check with a problem below it ran: past NEEDERS_LISTED, its problems name enough paths. */
  private readonly walks = new Map<string, number>();
  /** Commits walked: each once, whichever branches reach it (walked again, a commit above a problem walked every path through the history). */
  private readonly walked = new Set<Oid>();

  constructor(
    private readonly store: ObjectReader,
    private readonly partial: boolean,
    private readonly shallow: ReadonlySet<Oid>,
  ) {}

  /** Checks a blob, unless the repository is partial and does not hold it. */
  private async blob(oid: Oid, where: string, check: () => Promise<void>, key: string = oid): Promise<void> {
    if (this.partial && !this.absent.has(oid) && !this.counted.has(oid) && !(await this.store.has(oid))) {
      this.absent.add(oid);
      this.report.absent++;
    }
    if (!this.absent.has(oid)) await this.visit(oid, where, check, key);
  }

  /** Runs `check` once per key (again while a problem lies below it); a failure is recorded with `where`, later needs add to it. */
  private async visit(oid: Oid, where: string, check: () => Promise<void>, key: string = oid): Promise<void> {
    if (this.ok.has(key)) return;
    const walks = this.walks.get(key) ?? 0;
    if (walks >= NEEDERS_LISTED) return;
    const known = this.bad.get(key);
    if (known !== undefined) {
      this.met++;
      if (known.neededBy.length < NEEDERS_LISTED && !known.neededBy.includes(where)) known.neededBy.push(where);
      return;
    }
    const before = this.met;
    try {
      await check();
      if (this.met === before) this.ok.add(key);
      else this.walks.set(key, walks + 1);
      if (!this.counted.has(oid)) {
        this.counted.add(oid);
        this.report.objects++;
      }
    } catch (e) {
      if (!(e instanceof GitfsError)) throw e;
      const problem: FsckProblem = { oid, code: e.code, message: e.message, neededBy: [where] };
      this.met++;
      this.bad.set(key, problem);
      this.report.problems.push(problem);
    }
  }

  /** Reads the blob `oid` to its end (one above the read limit is streamed, and checked there), keeping nothing. */
  private async readThrough(oid: Oid): Promise<void> {
    try {
      for await (const piece of blobPieces(this.store, oid)) void piece;
    } catch (e) {
      if (!isGitfsError(e, ErrorCodes.OBJECT_TOO_LARGE)) throw e;
      this.report.tooLarge++;
    }
  }

  private async content(oid: Oid, type: ObjectType): Promise<Buffer> {
    return readTyped(this.store, oid, type);
  }

  async commitChain(start: Oid, branch: string): Promise<void> {
    const stack: Oid[] = [start];
    while (stack.length > 0) {
      const oid = stack.pop() as Oid;
      if (this.walked.has(oid)) continue;
      this.walked.add(oid);
      await this.visit(oid, `${branch}@${oid.slice(0, 12)}`, async () => {
        const commit = decodeCommit(await this.content(oid, 'commit'), oid);
        if (!this.counted.has(oid)) this.report.commits++;
        await this.tree(commit.tree, `${branch}@${oid.slice(0, 12)}:`);
        if (!this.shallow.has(oid)) stack.push(...commit.parents);
      });
    }
  }

  private async tree(oid: Oid, path: string): Promise<void> {
    await this.visit(oid, path, async () => {
      const entries = fromTreeEntries(decodeTree(await this.content(oid, 'tree'), oid), oid);
      for (const e of entries) {
        const child = `${path}${path.endsWith(':') ? '' : '/'}${e.name}`;
        if (e.kind === 'dir') await this.tree(e.oid, child);
        else if (e.kind === 'gitlink') continue; // a commit of another repository: git fsck does not look for it either
        else if (e.chunked) await this.chunkNode(e.oid, e.size ?? 0, child);
        else await this.blob(e.oid, child, () => this.readThrough(e.oid));
      }
    });
  }

  private async chunkNode(oid: Oid, size: number, path: string): Promise<void> {
    await this.visit(oid, path, async () => {
      for (const span of nodeSpans(decodeTree(await this.content(oid, 'tree'), oid), size, oid)) {
        if (span.isTree) {
          await this.chunkNode(span.oid, span.size, path);
        } else {
          await this.blob(span.oid, path, async () => {
            const data = await this.content(span.oid, 'blob');
            if (data.length !== span.size) throw new GitfsError(ErrorCodes.HOSTILE_OBJECT, `chunk ${span.oid} has ${data.length} bytes, its tree says ${span.size}`, { oid: span.oid });
          }, `${span.oid}:${span.size}`);
        }
      }
    }, `${oid}:${size}`);
  }
}

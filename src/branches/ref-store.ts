/**
 * Branches of a bare git repository, stored exactly as git stores them so the git CLI shares them:
 * loose refs `refs/heads/<name>` (`<oid>\n`), `packed-refs` (written by `git pack-refs` / `git gc`),
 * reflogs `logs/refs/heads/<name>`, and the symbolic `HEAD`.
 *
 * Invariants:
 * - Every change is a compare-and-swap under `refs/heads/<name>.lock` (the lock git takes too):
 *   read the current value (loose file, else packed entry), compare, write the lock, rename it in.
 *   A crash at any point leaves the old or the new value.
 * - A loose ref wins over a packed entry; reads look at the loose file first, then `packed-refs`,
 *   which is the order that stays correct while `git pack-refs` runs concurrently.
 * - The reflog line is appended (fsynced) while the lock is held, before the rename, as git does:
 *   the lock orders reflog lines exactly like the ref's history even under concurrent writers. If the
 *   rename then fails, the append is cut back off; only a crash between the two can leave a last
 *   entry whose update never landed (git has the same window).
 * - Deleting removes the packed entry first, then the loose file, then the reflog, so a crash never
 *   resurrects an older packed value. Emptied parent directories are removed afterwards.
 * - A name and its hierarchical neighbours are exclusive (`a` vs `a/b`), as in git: creating one
 *   while the other exists fails with GITFS_BRANCH_EXISTS (data: branch, conflictsWith).
 * - A ref file that is symbolic (`ref: ...`) or not an object id fails with GITFS_IO when read; listings leave both out (a broken one is named by `broken()`).
 */
import { lstat, readdir, readFile, rm, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode, ioError, isGitfsError } from '../errors.js';
import { ZERO_OID, parseOid, type Oid } from '../objects/oid.js';
import { fsyncDir } from '../util/durable.js';
import { LockFile, lockBrokenError, writeFileLocked, type Clock, type LockOptions } from './lock-file.js';
import { removeEmptyDirTree, removeEmptyParents } from './ref-dirs.js';
import { deletePackedRef, readPackedRefs, type PackedRefs } from './packed-refs.js';
import { appendReflog, formatTzOffset, readReflog, readReflogNewestFirst, truncateReflog, validateIdentity, type Identity, type ReflogEntry } from './reflog.js';
import { branchFromRef, branchRef, isBranchName, parseBranchName, type BranchName } from './ref-name.js';

export type { Clock } from './lock-file.js';
export type { Identity, ReflogEntry } from './reflog.js';

export interface RefStoreContext {
  /** The bare repository (the directory holding HEAD, refs/, objects/). */
  readonly gitDir: string;
  /** Wall-clock milliseconds: reflog times and stale-lock ages. */
  readonly clock: Clock;
}

export interface RefStoreOptions {
  /** Who is recorded in reflog lines. */
  readonly identity: Identity;
  /** Locks older than this (ms) are broken as left by a crashed writer. Default 30 000. */
  readonly staleLockMs?: number;
  /** Time zone written into reflog lines, in minutes east of UTC. Default: the local zone at that time. */
  readonly tzOffsetMinutes?: number;
  /** Awaited after every successful update or delete, before it returns (telling a mount). Must not throw. */
  readonly afterMove?: () => Promise<void>;
}

/** A loose branch file that holds no object id, and what reading it said. */
export interface BrokenRef {
  readonly branch: BranchName;
  readonly message: string;
}

export interface BranchRef {
  readonly name: BranchName;
  readonly oid: Oid;
}

export interface RefUpdate {
  /** The value the branch must have now; null: the branch must not exist. */
  readonly expected: Oid | null;
  readonly next: Oid;
  /** Reflog message. */
  readonly message: string;
}

const LOOSE_OID_RE = /^([0-9a-f]{40})\s*$/;
const HEAD_RE = /^ref: (refs\/heads\/[^\n]+)\n?$/;

export class RefStore {
  private readonly gitDir: string;
  private readonly clock: Clock;
  private readonly identity: Identity;
  private readonly staleLockMs: number | undefined;
  private readonly tzOffsetMinutes: number | undefined;
  private readonly afterMove: () => Promise<void>;

  constructor(context: RefStoreContext, options: RefStoreOptions) {
    this.gitDir = resolve(context.gitDir);
    this.clock = context.clock;
    this.identity = validateIdentity(options.identity);
    this.staleLockMs = options.staleLockMs;
    this.tzOffsetMinutes = options.tzOffsetMinutes;
    this.afterMove = options.afterMove ?? (() => Promise.resolve());
    if (this.tzOffsetMinutes !== undefined) formatTzOffset(this.tzOffsetMinutes);
  }

  /** The branch's current id, or undefined if it does not exist. */
  async resolve(name: BranchName): Promise<Oid | undefined> {
    const branch = parseBranchName(name);
    return (await this.readLoose(branch)) ?? packedLookup(await readPackedRefs(this.gitDir), branch);
  }

  /** Every branch (loose and packed; loose wins), sorted by name bytewise as git sorts refs. */
  async list(): Promise<BranchRef[]> {
    return (await this.listing()).refs;
  }

  /**
   * The loose branch files that hold no object id (an empty or damaged file): left out of `list`,
   * as git ignores a broken ref, and named by `gitfs fsck` and `gitfs branch`; `removeBroken`
   * takes one away.
   */
  async broken(): Promise<readonly BrokenRef[]> {
    return (await this.listing()).broken;
  }

  /**
   * `list` and `broken` from one walk, each sorted by name bytewise, and the symbolic branch files
   * (`aliases`: left out of both; no branch of that name can be written here).
   */
  async listing(): Promise<{ readonly refs: BranchRef[]; readonly broken: readonly BrokenRef[]; readonly aliases: ReadonlySet<BranchName> }> {
    const found = new Map<BranchName, Oid>();
    const broken = new Map<BranchName, GitfsError>();
    const aliases = new Set<BranchName>();
    await this.walkLoose(this.headsDir(), '', found, broken, aliases);
    // After the loose walk: a ref `git pack-refs` moves meanwhile is then found in packed-refs (a broken loose file hides it, as in git).
    for (const { ref, oid } of (await readPackedRefs(this.gitDir)).refs) {
      const name = branchFromRef(ref);
      if (name !== undefined && !found.has(name) && !broken.has(name)) found.set(name, oid);
    }
    const byName = (a: BranchName, b: BranchName): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
    return {
      refs: [...found].map(([name, oid]) => ({ name, oid })).sort((a, b) => byName(a.name, b.name)),
      broken: [...broken].map(([branch, e]) => ({ branch, message: e.message })).sort((x, y) => byName(x.branch, y.branch)),
      aliases,
    };
  }

  /**
   * Compare-and-swap. Throws GITFS_REF_CONFLICT (data: branch, expected, actual) if the branch's value
   * is not `expected` or another writer holds its lock; GITFS_BRANCH_EXISTS if creating it would
   * clash with `a`/`a/b` neighbours.
   */
  async update(name: BranchName, change: RefUpdate): Promise<void> {
    const branch = parseBranchName(name);
    const next = parseOid(change.next);
    if (next === ZERO_OID) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'cannot set a branch to the zero id', { branch });
    const expected = change.expected === null ? null : parseOid(change.expected);
    const lock = await this.lockBranch(branch);
    let written = false;
    try {
      const packed = await readPackedRefs(this.gitDir);
      const current = (await this.readLoose(branch)) ?? packedLookup(packed, branch);
      if ((current ?? null) !== expected) {
        throw new GitfsError(
          ErrorCodes.REF_CONFLICT,
          current === undefined
            ? `branch ${branch} does not exist (expected ${expected})`
            : `branch ${branch} is at ${current}, not ${expected ?? '(absent)'}`,
          { branch, expected, actual: current ?? null, reason: 'moved' },
        );
      }
      await this.clearPathFor(branch, packed, current === undefined);
      await lock.write(`${next}\n`);
      // A lock broken as stale while this writer stalled (its line would name a move that never
      // happens, and could not be taken back: another writer's may follow it) is found before the
      // line is written, as commit() would find it. One broken while the line is written is not:
      // a window of that append, as commit() has one of its check and rename.
      if (!(await lock.stillHeld())) throw lockBrokenError(lock.lockPath);
      const timeMs = this.clock.now();
      const reflogLength = await appendReflog(this.logPath(branch), {
        oldOid: current ?? ZERO_OID,
        newOid: next,
        identity: this.identity,
        timeMs,
        tzOffsetMinutes: this.tzOffsetMinutes ?? -new Date(timeMs).getTimezoneOffset(),
        message: change.message,
      });
      try {
        await lock.commit();
      } catch (e) {
        const committed = isGitfsError(e) && e.data['committed'] === true;
        if (!committed && (await lock.stillHeld())) {
          // Still ours, so no other writer appended meanwhile: undo our line (or the file we created).
          const undo = reflogLength === 0 ? rm(this.logPath(branch), { force: true }) : truncateReflog(this.logPath(branch), reflogLength);
          await undo.catch(() => undefined);
          if (reflogLength === 0) await removeEmptyParents(dirname(this.logPath(branch)), this.logsHeadsDir());
        }
        if (isGitfsError(e, ErrorCodes.IO) && e.data['errno'] === 'EISDIR') {
          throw new GitfsError(ErrorCodes.BRANCH_EXISTS, `branches under ${branch}/ exist`, { branch, conflictsWith: `${branch}/` }, { cause: e });
        }
        throw e;
      }
      written = true;
    } finally {
      await lock.release();
      // A failed creation must not leave directories made for its lock (they would block `a` vs `a/b`).
      if (!written) await removeEmptyParents(dirname(this.refPath(branch)), this.headsDir());
    }
    await this.afterMove();
  }

  /**
   * Deletes a branch (loose file, packed entry, reflog). `expected` undefined: whatever its value.
   * Throws GITFS_UNKNOWN_BRANCH if it does not exist, GITFS_REF_CONFLICT as `update` does.
   */
  async delete(name: BranchName, expected: Oid | undefined): Promise<void> {
    const branch = parseBranchName(name);
    const want = expected === undefined ? undefined : parseOid(expected);
    let lock: LockFile;
    try {
      lock = await this.lockBranch(branch);
    } catch (e) {
      if (isGitfsError(e, ErrorCodes.BRANCH_EXISTS)) throw unknownBranch(branch);
      throw e;
    }
    try {
      const packed = await readPackedRefs(this.gitDir);
      const loose = await this.readLoose(branch);
      const packedOid = packedLookup(packed, branch);
      const current = loose ?? packedOid;
      if (current === undefined) throw unknownBranch(branch);
      if (want !== undefined && current !== want) {
        throw new GitfsError(ErrorCodes.REF_CONFLICT, `branch ${branch} is at ${current}, not ${want}`, {
          branch,
          expected: want,
          actual: current,
          reason: 'moved',
        });
      }
      if (packedOid !== undefined) {
        try {
          await deletePackedRef(this.gitDir, branchRef(branch), this.lockOptions(false));
        } catch (e) {
          if (isGitfsError(e, ErrorCodes.REF_CONFLICT)) {
            throw new GitfsError(ErrorCodes.REF_CONFLICT, `packed-refs is locked by another writer${foreign(e)}`, { branch, ...e.data }, { cause: e });
          }
          throw e;
        }
      }
      if (loose !== undefined) {
        await unlink(this.refPath(branch)).catch((e: unknown) => {
          if (errnoCode(e) !== 'ENOENT') throw ioError(`cannot delete ${this.refPath(branch)}`, this.refPath(branch), e);
        });
        await fsyncDir(dirname(this.refPath(branch))).catch(() => undefined);
      }
      await rm(this.logPath(branch), { force: true }).catch((e: unknown) => {
        throw ioError(`cannot delete reflog ${this.logPath(branch)}`, this.logPath(branch), e);
      });
    } finally {
      await lock.release();
      await removeEmptyParents(dirname(this.refPath(branch)), this.headsDir());
      await removeEmptyParents(dirname(this.logPath(branch)), this.logsHeadsDir());
    }
    await this.afterMove();
  }

  /**
   * Removes the loose file of `name` if it still holds no object id, and nothing else: its value in
   * packed-refs (which then counts again, as in git) and its reflog (whose last entry names the
   * commit it was at) are kept. What the branch is at afterwards, if anything, and the last
   * commit its reflog names.
   */
  async removeBroken(name: BranchName): Promise<{ readonly packed: Oid | undefined; readonly logged: Oid | undefined }> {
    const branch = parseBranchName(name);
    const lock = await this.lockBranch(branch);
    try {
      const broken = await this.readLoose(branch).then(
        () => false,
        (e: unknown) => isGitfsError(e) && e.data['malformed'] === true,
      );
      if (!broken) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `branch ${branch} is not broken (its file holds an object id, or there is none)`, { branch });
      await unlink(this.refPath(branch)).catch((e: unknown) => {
        if (errnoCode(e) !== 'ENOENT') throw ioError(`cannot delete ${this.refPath(branch)}`, this.refPath(branch), e);
      });
      await fsyncDir(dirname(this.refPath(branch))).catch(() => undefined);
      const logged = (await readReflog(this.logPath(branch))).at(-1)?.newOid;
      return { packed: packedLookup(await readPackedRefs(this.gitDir), branch), logged: logged === undefined || logged === ZERO_OID ? undefined : logged };
    } finally {
      await lock.release();
      await this.afterMove();
    }
  }

  /** The branch's reflog, oldest first (empty if it has none). */
  async reflog(name: BranchName): Promise<ReflogEntry[]> {
    return readReflog(this.logPath(parseBranchName(name)));
  }

  /** The branch's reflog, newest first, read from the end as far as the caller goes. */
  reflogNewestFirst(name: BranchName): AsyncGenerator<ReflogEntry> {
    return readReflogNewestFirst(this.logPath(parseBranchName(name)));
  }

  /**
   * What HEAD names: a branch (which need not exist yet), or, detached (as git leaves it after
   * `git checkout --detach` or `update-ref --no-deref HEAD`), a commit id. Throws GITFS_IO if HEAD
   * cannot be read, and GITFS_BAD_REVISION if it names anything else (a ref outside refs/heads).
   */
  async headTarget(): Promise<{ readonly branch: BranchName } | { readonly commit: Oid }> {
    const path = join(this.gitDir, 'HEAD');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw ioError(`cannot read ${path}`, path, e);
    }
    const detached = /^([0-9a-f]{40})\n?$/.exec(text)?.[1];
    if (detached !== undefined) return { commit: detached as Oid };
    const ref = HEAD_RE.exec(text)?.[1];
    const name = ref === undefined ? undefined : branchFromRef(ref);
    if (name === undefined) {
      throw new GitfsError(ErrorCodes.BAD_REVISION, `${path} names neither a branch nor a commit: ${JSON.stringify(text.slice(0, 100))}`, { path });
    }
    return { branch: name };
  }

  /** The branch HEAD points at, or undefined when HEAD is detached (see headTarget). */
  async readHead(): Promise<BranchName | undefined> {
    const t = await this.headTarget();
    return 'branch' in t ? t.branch : undefined;
  }

  /** Points HEAD at `refs/heads/<name>`, atomically under `HEAD.lock`. */
  async setHead(name: BranchName): Promise<void> {
    const branch = parseBranchName(name);
    await writeFileLocked(join(this.gitDir, 'HEAD'), `ref: ${branchRef(branch)}\n`, this.lockOptions(false));
  }

  private headsDir(): string {
    return join(this.gitDir, 'refs', 'heads');
  }

  private logsHeadsDir(): string {
    return join(this.gitDir, 'logs', 'refs', 'heads');
  }

  private refPath(name: BranchName): string {
    return join(this.headsDir(), ...name.split('/'));
  }

  private logPath(name: BranchName): string {
    return join(this.logsHeadsDir(), ...name.split('/'));
  }

  private lockOptions(createParents: boolean): LockOptions {
    return { clock: this.clock, staleLockMs: this.staleLockMs, createParents };
  }

  /** Takes `refs/heads/<name>.lock`, creating parent directories; maps failures to branch errors. */
  private async lockBranch(branch: BranchName): Promise<LockFile> {
    try {
      return await LockFile.acquire(this.refPath(branch), this.lockOptions(true));
    } catch (e) {
      if (isGitfsError(e, ErrorCodes.REF_CONFLICT)) {
        throw new GitfsError(ErrorCodes.REF_CONFLICT, `branch ${branch} is locked by another writer${foreign(e)}`, { branch, ...e.data }, { cause: e });
      }
      if (isGitfsError(e, ErrorCodes.IO) && (e.data['errno'] === 'ENOTDIR' || e.data['errno'] === 'EEXIST')) {
        const ancestor = await this.looseAncestor(branch);
        if (ancestor !== undefined) {
          throw new GitfsError(ErrorCodes.BRANCH_EXISTS, `branch ${ancestor} exists, so ${branch} cannot`, { branch, conflictsWith: ancestor }, { cause: e });
        }
      }
      throw e;
    }
  }

  /** The first proper prefix `p` of `branch` with a regular file at refs/heads/p. */
  private async looseAncestor(branch: BranchName): Promise<BranchName | undefined> {
    const parts = branch.split('/');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/') as BranchName;
      try {
        if (!(await lstat(this.refPath(prefix))).isDirectory()) return prefix;
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  /**
   * Before writing refs/heads/<branch>: when creating, refuse packed `a`/`a/b` neighbours and loose
   * refs below it; in any case clear empty directories left where the ref file and its reflog go.
   */
  private async clearPathFor(branch: BranchName, packed: PackedRefs, creating: boolean): Promise<void> {
    if (creating) {
      const own = branchRef(branch);
      for (const { ref } of packed.refs) {
        if (own.startsWith(`${ref}/`) || ref.startsWith(`${own}/`)) {
          throw new GitfsError(ErrorCodes.BRANCH_EXISTS, `branch ${ref.slice('refs/heads/'.length)} exists, so ${branch} cannot`, {
            branch,
            conflictsWith: ref.slice('refs/heads/'.length),
          });
        }
      }
    }
    for (const path of [this.refPath(branch), this.logPath(branch)]) {
      if (!(await removeEmptyDirTree(path))) {
        const isRef = path === this.refPath(branch);
        if (isRef) {
          const below = new Map<BranchName, Oid>();
          await this.walkLoose(path, `${branch}/`, below).catch(() => undefined);
          const first = below.keys().next();
          throw new GitfsError(
            first.done === true ? ErrorCodes.REF_CONFLICT : ErrorCodes.BRANCH_EXISTS,
            first.done === true ? `another writer is creating branches under ${branch}/` : `branch ${first.value} exists, so ${branch} cannot`,
            { branch, conflictsWith: first.done === true ? `${branch}/` : first.value },
          );
        }
        throw new GitfsError(ErrorCodes.IO, `${path} is a non-empty directory (reflogs of deleted branches?)`, { branch, path });
      }
    }
  }

  /** The loose ref's value; undefined if there is no regular file for it. */
  private async readLoose(branch: BranchName): Promise<Oid | undefined> {
    const path = this.refPath(branch);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
      throw ioError(`cannot read ${path}`, path, e);
    }
    const oid = LOOSE_OID_RE.exec(text)?.[1];
    if (oid !== undefined) return oid as Oid;
    const symbolic = text.startsWith('ref:');
    throw new GitfsError(
      ErrorCodes.IO,
      symbolic
        ? `${path} is a symbolic ref (${text.trim()}); gitfs branches must hold an object id`
        : `${path} does not hold an object id: ${JSON.stringify(text.slice(0, 64))}`,
      { branch, path, symbolic, malformed: !symbolic },
    );
  }

  /** The loose branches below `dir` into `into`; symbolic ones left out, broken ones (no object id) into `broken` if given, else thrown. */
  private async walkLoose(dir: string, prefix: string, into: Map<BranchName, Oid>, broken?: Map<BranchName, GitfsError>, aliases?: Set<BranchName>): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw ioError(`cannot list ${dir}`, dir, e);
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name.endsWith('.lock')) continue;
      const full = prefix + entry.name;
      if (entry.isDirectory()) {
        await this.walkLoose(join(dir, entry.name), `${full}/`, into, broken, aliases);
      } else if (isBranchName(full)) {
        // A symbolic branch (git symbolic-ref refs/heads/alias refs/heads/main) is an alias, not a
        // branch of its own: listings leave it out (one failed every listing, the mount's too).
        const oid = await this.readLoose(full).catch((e: unknown) => {
          if (isGitfsError(e) && e.data['symbolic'] === true) return void aliases?.add(full);
          if (broken !== undefined && isGitfsError(e) && e.data['malformed'] === true) return void broken.set(full, e);
          throw e;
        });
        if (oid !== undefined) into.set(full, oid);
      }
    }
  }
}

function packedLookup(packed: PackedRefs, branch: BranchName): Oid | undefined {
  const ref = branchRef(branch);
  return packed.refs.find((r) => r.ref === ref)?.oid;
}

export function unknownBranch(branch: BranchName): GitfsError {
  return new GitfsError(ErrorCodes.UNKNOWN_BRANCH, `no branch ${branch}`, { branch });
}

/** What a lock not gitfs's adds to a branch's refusal: how to get past it (lock-file.ts). */
function foreign(e: GitfsError): string {
  return e.data['reason'] === 'foreign' ? ` (${e.message})` : '';
}

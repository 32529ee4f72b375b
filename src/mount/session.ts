/**
 * One running mount: clears a stale mount left by a killed process, takes the working layers,
 * serves the control socket, mounts, and unmounts cleanly on stop() (SIGINT/SIGTERM, `gitfs
 * umount`, or an external `fusermount -u`, noticed within a second).
 */
import { execFile } from 'node:child_process';
import { readdir, realpath, stat } from 'node:fs/promises';
import type { Server } from 'node:net';
import { join, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ErrorCodes, GitfsError, errnoCode, isGitfsError } from '../errors.js';
import { AnsweredAttrs, differs } from './answered-attrs.js';
import type { Attr } from './attrs.js';
import { parseBranchName, type BranchName } from '../branches/ref-name.js';
import type { Oid } from '../objects/oid.js';
import type { Repository } from '../repo/repository.js';
import { Workspace } from '../work/workspace.js';
import { mountedHere, serveControl, type ControlRequest } from './control.js';
import { fuseOperations, type Log } from './fuse-adapter.js';
import { Fuse, releaseUnmounted, repliesDue, type FuseInstance } from './fuse-binding.js';
import { HotLoop } from './hot-loop.js';
import { KernelCache, fuseDescriptors } from './kernel-cache.js';
import { MountFs } from './mount-fs.js';
import { mountAt } from './mount-table.js';
import { widenReadAhead } from './read-ahead.js';
import { SelfThread } from './self-thread.js';
import { PublishedHeads } from './published-heads.js';
import { RequestGate } from './request-gate.js';
import type { Logger } from '../util/log.js';
import { makeDirs, removeMadeDirs } from '../util/make-dirs.js';

const execFileP = promisify(execFile);
const WATCH_MS = 1000;
const HOT_WINDOW_MS = 2;
/**
 * How long the kernel keeps names and attributes (s). Every change it does not make itself is
 * followed by a notification that drops them (src/mount/published-heads.ts), so this bounds only
 * a change nobody noticed; the ref watch lists every 2 s.
 */
const CACHE_S = 30;
/** Longest wait for libfuse's threads to write the replies of the answers given. */
const REPLIES_MAX_MS = 100;
/** Longest wait for the requests begun before a publish. */
const DRAIN_MAX_MS = 1000;
/** How long a settle waits for files held open with content that changed to be let go. */
const HOLD_MS = 250;
/** Longest wait of an open in a settling branch: the settle's own bounds, and time to stat and forget. */
const OPEN_WAIT_MS = DRAIN_MAX_MS + REPLIES_MAX_MS + HOLD_MS + 250;
/** Forgets again after a settle, for answers from before it that libfuse passed on late. */
const TRAILING_MS = [100, 1000];
/** At most this long, once unmounted, for the mount's own thread to end. */
const SELF_END_MS = 5000;

/** The name at the mount's root under which a branch lies. */
function topName(branch: BranchName): string {
  return branch.split('/')[0] as string;
}

/** The name at the mount's root a mount path lies under ('/a/b' → 'a'). */
function topOf(path: string): string {
  return path.split('/')[1] ?? '';
}

export const FSTYPE = 'fuse.gitfs';

export interface MountOptions {
  /**
   * Let every user on the host use the mount, with the kernel checking the modes it shows
   * (files belong to the mounting user). Without it only that user can (FUSE's default).
   */
  readonly allowOther?: boolean;
}

/** Unmounts whatever FUSE mount is at `path` (lazily: a dead process's mount has no users to wait for). */
export async function clearStaleMount(path: string): Promise<boolean> {
  try {
    // A listing always reaches the file system (the kernel caches no directory contents here).
    await readdir(path);
    return false;
  } catch (e) {
    if (errnoCode(e) !== 'ENOTCONN') return false;
  }
  await execFileP('fusermount', ['-uz', path]);
  return true;
}

function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : `${outer}${sep}`);
}

export class MountSession {
  private stopping: Promise<void> | undefined;
  private readonly ended: Promise<void>;
  private endNow!: () => void;
  private watch: NodeJS.Timeout | undefined;
  private server: Server | undefined;
  private fuse: FuseInstance | undefined;
  private kernel: KernelCache | undefined;
  /** Where the mount process stats its own paths and writes notifications (self-thread.ts). */
  private self: SelfThread | undefined;
  private readonly gate = new RequestGate();
  private readonly answered: AnsweredAttrs;
  private readonly transitions = new Set<{ readonly tops: ReadonlySet<string>; readonly done: Promise<void> }>();
  private unregister: (() => void) | undefined;

  private constructor(
    readonly mountpoint: string,
    private readonly ws: Workspace,
    private readonly heads: PublishedHeads,
    private readonly fs: MountFs,
    private readonly log: Log,
  ) {
    this.ended = new Promise((r) => (this.endNow = r));
    this.answered = new AnsweredAttrs(CACHE_S * 1000, () => ws.repo.clock.now());
  }

  /**
   * Makes the kernel forget the named branches (through their first path component) and the
   * history. A forgotten directory that is some process's working directory is cut off from its
   * path (getcwd: ENOENT, `git status` there fails) until a lookup of its name takes it back: each
   * name is looked up at once (a stat, off the main thread).
   */
  private async forget(branches: readonly BranchName[]): Promise<void> {
    if (this.kernel === undefined || branches.length === 0) return;
    const names = [...new Set([...branches.map(topName), '.history'])];
    await this.kernel.forgetRootNames(names);
    for (const name of names) await this.self?.stat(join(this.mountpoint, name));
  }

  /**
   * Right after new heads were published (same turn): waits until every request begun before is
   * answered (and libfuse has written the replies: `repliesWritten`), then makes the kernel forget
   * what it was told from older heads (`forgetAgain`). Opens in those branches wait until then
   * (`beforeOpen`): a size the kernel kept from the old heads would cut the new content short.
   * A file held open with the old content keeps it; its holder, asking for the size after the
   * forget, would get the new one: so the forget waits a moment (HOLD_MS) for such holders to
   * let go, as a reader of a whole file does. Every wait is bounded (a request may wait long on
   * a peer): after DRAIN_MAX_MS the mount forgets anyway, and forgets again later (TRAILING_MS)
   * for answers that came late.
   */
  private async settle(branches: readonly BranchName[]): Promise<void> {
    const drained = this.gate.turn();
    let finish!: () => void;
    const transition = { tops: new Set(branches.map(topName)), done: new Promise<void>((r) => (finish = r)) };
    this.transitions.add(transition);
    try {
      await Promise.race([drained, sleep(DRAIN_MAX_MS)]);
      await this.repliesWritten();
      const since = this.ws.repo.clock.now();
      await this.forgetAgain(branches, HOLD_MS);
      for (const ms of TRAILING_MS) setTimeout(() => void this.forgetLater(branches, since), ms).unref();
    } finally {
      this.transitions.delete(transition);
      finish();
    }
  }

  /**
   * Forgets the branches, and the attributes and pages of every file in them that the kernel was
   * told otherwise than they are now (`answered`, since `since`) or that is held open with other
   * content, one stat at a time, after waiting up to `holdMs` for the holders of those to let go.
   * Forgetting names alone cannot do it: a name in use while the kernel forgot its branch
   * outlives that forget beneath the dropped branch directory, and the next lookup of the branch
   * takes that directory back, names and sizes with it; an answer from the old heads may reach
   * the kernel after the forget. So the branch is looked up first (a stat, off the main thread),
   * letting a forget reach whatever that brings back, and stale attributes are forgotten by node,
   * which no name outlives. Holders still there move onto the new content first (`follow`): the
   * kernel keeps one size per path, and a holder that read on in its old content would set the
   * old size again (an answer, or a short read), cutting what new opens read.
   */
  private async forgetAgain(branches: readonly BranchName[], holdMs: number, since?: number): Promise<void> {
    const tops = new Set(branches.map(topName));
    const inTops = (p: string): boolean => tops.has(topOf(p));
    const stale = await this.fs.heldOutdated(inTops);
    for (const [path, told] of this.answered.held(inTops, since)) {
      if (differs(told, await this.fs.attrOf(path).catch(() => undefined))) stale.add(path);
    }
    if (holdMs > 0 && stale.size > 0) await this.fs.handles.letGo((path) => stale.has(path), holdMs);
    for (const top of tops) await this.self?.stat(join(this.mountpoint, top));
    await this.forget(branches);
    for (const path of stale) {
      await this.fs.follow(path).catch((e: unknown) => this.log(`gitfs mount: ${path} held open stays on its old content: ${(e as Error).message}`));
      await this.forgetPath(path);
    }
  }

  /**
   * Until libfuse's threads have written the reply of every answer given so far (an answer from the
   * old heads that reached the kernel after the forget would stay there), looking every 1 ms, for
   * at most REPLIES_MAX_MS: under constant traffic there may always be one on its way, and later
   * forgets follow anyway.
   */
  private async repliesWritten(): Promise<void> {
    const clock = this.ws.repo.clock;
    const until = clock.now() + REPLIES_MAX_MS;
    for (let polls = 0; polls < REPLIES_MAX_MS && repliesDue() > 0 && clock.now() < until; polls++) await sleep(1);
  }

  /**
   * A trailing forget (TRAILING_MS) of a settle: never once the mount is stopping (the workspace
   * closes), and a failure is logged, not left to end the process.
   */
  private async forgetLater(branches: readonly BranchName[], since: number): Promise<void> {
    if (this.stopping !== undefined) return;
    await this.forgetAgain(branches, 0, since).catch((e: unknown) => this.log(`gitfs mount: forgetting ${branches.join(', ')} again: ${(e as Error).message}`));
  }

  /** Changes a branch's view outside the kernel (commit, reset): forget before, settle after. */
  private async changing<T>(branch: BranchName, change: () => Promise<T>): Promise<T> {
    await this.forget([branch]);
    try {
      return await change();
    } finally {
      await this.settle([branch]);
    }
  }

  /**
   * An open of `path` while its branch settles waits for that (at most OPEN_WAIT_MS). The open
   * itself never stats the mount. Gives the heads published when the open goes on, which it
   * answers from even if new ones are published meanwhile: the kernel looked the name up before
   * the open, so its size for the file is from those heads or older ones, and older ones the
   * settle makes it forget.
   */
  private async beforeOpen(path: string): Promise<ReadonlyMap<BranchName, Oid>> {
    const settling = [...this.transitions].filter((t) => t.tops.has(topOf(path)));
    if (settling.length > 0) await Promise.race([Promise.all(settling.map((t) => t.done)), sleep(OPEN_WAIT_MS)]);
    return this.heads.now();
  }

  /**
   * Makes the kernel forget the attributes of the file at `path`. Its node id is the inode number
   * a stat reports (libfuse reports node ids as inode numbers); the stat runs on the mount's own
   * thread, never on the main thread, which must stay free to answer it.
   */
  private async forgetPath(path: string): Promise<void> {
    const st = await this.self?.stat(join(this.mountpoint, path));
    if (st !== undefined && this.kernel !== undefined) await this.kernel.forgetNode(st.ino);
  }

  /** Mounts at `mountpoint`, made if missing; a mount that fails takes away the directories it made. */
  static async start(repo: Repository, mountpoint: string, log: Log, options: MountOptions = {}): Promise<MountSession> {
    const mnt = resolve(mountpoint);
    const made = await makeDirs(mnt).catch((): string[] => []);
    try {
      return await MountSession.startAt(repo, mnt, log, options);
    } catch (e) {
      await removeMadeDirs(made);
      throw e;
    }
  }

  private static async startAt(repo: Repository, mnt: string, log: Log, options: MountOptions): Promise<MountSession> {
    if (await clearStaleMount(mnt)) log(`gitfs mount: cleared a stale mount at ${mnt}`);
    const [realMnt, realGit] = [await realpath(mnt), await realpath(repo.gitDir)];
    if (within(realGit, realMnt) || within(realMnt, realGit)) {
      // The mount process must never read its own mount: that would deadlock its one thread.
      throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `the mount point ${mnt} and the repository ${repo.gitDir} must not contain each other`);
    }
    if (!(await stat(realMnt)).isDirectory()) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${mnt} is not a directory`);
    if ((await mountAt(realMnt)) !== undefined) throw new GitfsError(ErrorCodes.MOUNT_FAILED, `something is already mounted at ${realMnt}`);
    let ws: Workspace;
    let session: MountSession | undefined;
    const logger: Logger = { log: (level, event, fields) => log(`gitfs mount: ${level} ${event} ${JSON.stringify(fields ?? {})}`), child: () => logger };
    const heads = new PublishedHeads(
      { gitDir: repo.gitDir, refs: repo.refs, log: logger, now: () => repo.clock.now() },
      { forget: (branches) => session?.forget(branches) ?? Promise.resolve(), settle: (branches) => session?.settle(branches) ?? Promise.resolve() },
    );
    try {
      ws = await Workspace.open(repo, heads);
    } catch (e) {
      if (isGitfsError(e, ErrorCodes.WORK_BUSY)) throw new GitfsError(ErrorCodes.MOUNT_FAILED, `${repo.gitDir} is mounted already (one mount per repository)`, {}, { cause: e });
      throw e;
    }
    session = new MountSession(realMnt, ws, heads, new MountFs(ws, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }), log);
    try {
      await session.begin(options);
    } catch (e) {
      await session.stop();
      throw e;
    }
    return session;
  }

  private async begin(options: MountOptions): Promise<void> {
    // This process's own ref moves are published by its workspace; it never asks itself.
    this.unregister = mountedHere(this.ws.repo.gitDir);
    await this.heads.start();
    this.server = await serveControl(this.ws.repo.gitDir, (req) => this.answer(req));
    // fuse-native drops falsy option values (a timeout of 0) and has no big_writes option; both
    // ride in the fsname option's value, which the binding passes through unquoted. Names and
    // attributes are cached by the kernel and dropped on every change it does not see
    // (kernel-cache.ts); missing names are not cached (a branch may appear at any time).
    const gitDir = this.ws.repo.gitDir;
    const source = /^[^,\s]+$/.test(gitDir) ? `gitfs:${gitDir}` : 'gitfs';
    const hooks = {
      hot: new HotLoop(HOT_WINDOW_MS),
      gate: this.gate,
      beforeOpen: (path: string) => this.beforeOpen(path),
      answered: (path: string, attr: Attr) => this.answered.note(path, attr),
    };
    const fuse = new Fuse(this.mountpoint, fuseOperations(this.fs, this.log, hooks), {
      fsname: `${source},subtype=gitfs,big_writes,atomic_o_trunc,attr_timeout=${CACHE_S},entry_timeout=${CACHE_S},negative_timeout=0${options.allowOther === true ? ',allow_other,default_permissions' : ''}`,
      timeout: false as unknown as number,
    });
    const before = fuseDescriptors();
    await new Promise<void>((res, rej) => fuse.mount((err) => (err ? rej(new GitfsError(ErrorCodes.MOUNT_FAILED, `cannot mount ${this.mountpoint}: ${err.message}`, {}, { cause: err })) : res())));
    this.fuse = fuse;
    const opened = [...fuseDescriptors()].filter((fd) => !before.has(fd));
    if (opened.length !== 1) {
      // Without its descriptor the mount could not make the kernel forget: it would show stale files.
      throw new GitfsError(ErrorCodes.MOUNT_FAILED, `cannot find the /dev/fuse descriptor of ${this.mountpoint} in /proc/self/fd (found ${opened.length})`);
    }
    const self = new SelfThread(this.log);
    this.self = self;
    this.kernel = new KernelCache(opened[0] as number, self, this.log);
    const root = await self.stat(this.mountpoint);
    if (root !== undefined) await widenReadAhead(root.dev);
    this.ws.repo.objects.prepareRangeReads().catch((e: unknown) => this.log(`gitfs mount: preparing range reads: ${(e as Error).message}`));
    this.watch = setInterval(() => {
      // Packs another process merged or removed (the daemon's pack merge, git gc) are let go of.
      this.ws.repo.objects.rescanIfChanged().catch((e: unknown) => this.log(`gitfs mount: rescanning packs: ${(e as Error).message}`));
      mountAt(this.mountpoint).then(
        (m) => {
          if (m === undefined) this.stop().catch((e: unknown) => this.log(`gitfs mount: stopping: ${(e as Error).message}`));
        },
        () => undefined,
      );
    }, WATCH_MS);
  }

  private async answer(req: ControlRequest): Promise<unknown> {
    switch (req.op) {
      case 'ping':
        return { mountpoint: this.mountpoint, pid: process.pid };
      case 'commit': {
        const branch = parseBranchName(req.branch);
        return this.changing(branch, () => this.ws.commit(branch, req.message, (id) => this.fs.handles.writing(id)));
      }
      case 'status':
        return this.ws.status(req.branch === undefined ? undefined : parseBranchName(req.branch));
      case 'reset': {
        const branch = parseBranchName(req.branch);
        return {
          dropped: await this.changing(branch, async () => {
            const dropped = await this.ws.reset(branch);
            await this.fs.afterReset(branch);
            return dropped;
          }),
        };
      }
      case 'refs':
        await this.heads.refresh();
        return {};
      case 'unmount':
        // Like umount(8): refused while something uses the mount (the watch then stops the session).
        try {
          await execFileP('fusermount', ['-u', this.mountpoint]);
        } catch (e) {
          const why = ((e as { stderr?: string }).stderr ?? (e as Error).message).trim();
          throw new GitfsError(ErrorCodes.MOUNT_FAILED, `cannot unmount ${this.mountpoint}: ${why}`, { path: this.mountpoint });
        }
        setImmediate(() => this.stop().catch((e: unknown) => this.log(`gitfs mount: stopping: ${(e as Error).message}`)));
        return { mountpoint: this.mountpoint };
      default:
        throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `unknown control request ${JSON.stringify((req as { op?: unknown }).op)}`);
    }
  }

  /** Resolves once the session has ended (unmounted and closed). */
  wait(): Promise<void> {
    return this.ended;
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    if (this.watch !== undefined) clearInterval(this.watch);
    // No notification after this point: the descriptor closes with the unmount, and its number
    // may then be reused by any file this process opens. The own thread's queued calls fail now.
    this.kernel = undefined;
    const self = this.self;
    self?.close();
    this.self = undefined;
    this.unregister?.();
    const serverClosed = new Promise<void>((res) => (this.server === undefined ? res() : this.server.close(() => res())));
    try {
      await this.heads.stop();
      const fuse = this.fuse;
      const mounted = fuse !== undefined && (await mountAt(this.mountpoint).catch(() => undefined)) !== undefined;
      // Unmounted already (gitfs umount, fusermount -u): only the binding's handle is left.
      if (fuse !== undefined && !mounted) releaseUnmounted(fuse);
      if (fuse !== undefined && mounted) {
        await new Promise<void>((res) =>
          fuse.unmount((err) => {
            if (err) this.log(`gitfs mount: unmount of ${this.mountpoint}: ${err.message}`);
            res();
          }),
        );
      }
      // Unmounted, a stat of the own thread's returns: it ends (bounded all the same).
      await self?.ended(SELF_END_MS);
      await serverClosed;
      await this.ws.close();
    } finally {
      this.endNow();
    }
  }
}

/**
 * Changes to one branch's working layer, in file-system terms: create, mkdir, symlink, unlink,
 * rmdir, rename, chmod, utimens, truncate, and copy-up of committed content before its first
 * write. Each change is one atomic layer batch. Data files hold written content; a data file
 * is created before the entry that names it, so a crash leaves at worst an unnamed data file
 * (collected at the next open), never an entry without its data.
 */
import { isUtf8 } from 'node:buffer';
import { chmod, open, stat, truncate as truncateFile, unlink, utimes } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { errnoCode } from '../errors.js';
import { isDirectoryKind } from '../objects/entry-names.js';
import type { ObjectReader } from '../objects/object-store.js';
import type { Oid } from '../objects/oid.js';
import { unstorableName, type EntryKind } from '../objects/storable-name.js';
import { fileContent } from '../files/file-content.js';
import type { Clock } from '../util/clock.js';
import { fsyncFile } from '../util/durable.js';
import { FsError } from './fs-error.js';
import type { Layer } from './layer.js';
import type { MergedView, Node, Resolved } from './merged-view.js';
import { baseName, isWithin, parentOf, type OverlayEntry } from './overlay.js';
import type { WorkStore } from './work-store.js';

/** Git keeps one bit of a file's mode: executable (0755) or not (0644). */
export function fileMode(mode: number): number {
  return (mode & 0o100) !== 0 ? 0o755 : 0o644;
}

/** Times the mount passes for "leave unchanged" (UTIME_OMIT). */
const OMIT = 2 ** 53;
const COPY_ATTEMPTS = 3;
const CHANGE_ATTEMPTS = 4;

export interface BranchFsContext {
  readonly store: WorkStore;
  /** Objects, and their declared sizes (a committed blob's, without reading it). */
  readonly objects: ObjectReader & { sizeOf(oid: Oid): Promise<number> };
  readonly clock: Clock;
}

export class BranchFs {
  private readonly copying = new Map<string, Promise<string>>();

  constructor(
    private readonly c: BranchFsContext,
    readonly layer: Layer,
    /** A fresh view of the layer over its base; changes record the view's base with them. */
    private readonly view: () => Promise<MergedView>,
  ) {}

  /**
   * Runs a change again (a few times at most) when it was decided on a view that a commit or
   * reset made stale (EAGAIN), or when the data file it acted on was let go meanwhile.
   */
  private async retrying<T>(change: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await change();
      } catch (e) {
        if (!(e instanceof FsError && e.errno === 'EAGAIN')) throw e;
        if (attempt >= CHANGE_ATTEMPTS) throw new FsError('EBUSY', e.path);
      }
    }
  }

  /** Acts on the data file `id` of `path`, then checks `path` still names it (else EAGAIN: again). */
  private async onData(path: string, id: string, act: (file: string) => Promise<unknown>): Promise<void> {
    try {
      await act(this.c.store.dataPath(id));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new FsError('EAGAIN', path);
      throw e;
    }
    this.stillNames(path, id);
  }

  /** Fails with EAGAIN unless `path` still names data file `id` (a commit may have let it go). */
  private stillNames(path: string, id: string): void {
    const own = this.layer.get(path);
    if (own?.t !== 'file' || own.data !== id) throw new FsError('EAGAIN', path);
  }

  private now(): number {
    return this.c.clock.now();
  }

  async resolve(path: string): Promise<Resolved | undefined> {
    return (await this.view()).resolve(path);
  }

  private async must(view: MergedView, path: string): Promise<Resolved> {
    const r = await view.resolve(path);
    if (r === undefined) throw new FsError('ENOENT', path);
    return r;
  }

  /** Checks that `path` can be created: a storable name in an existing directory, nothing there yet. */
  private async creatable(view: MergedView, path: string, kind: EntryKind): Promise<{ inLower: boolean }> {
    checkNewName(path, kind);
    const parent = await view.resolve(parentOf(path));
    if (parent === undefined) throw new FsError('ENOENT', path);
    intoDirectory(parent.node, path);
    const here = await view.resolve(path);
    if (here !== undefined) throw new FsError('EEXIST', path);
    return { inLower: false };
  }

  /** Creates an empty regular file; returns its data file's id. */
  create(path: string, mode: number): Promise<string> {
    return this.retrying(() => this.createOnce(path, mode));
  }

  private async createOnce(path: string, mode: number): Promise<string> {
    const view = await this.view();
    await this.creatable(view, path, 'file');
    const id = this.c.store.newDataId();
    const fh = await open(this.c.store.dataPath(id), 'wx', fileMode(mode));
    await fh.close();
    try {
      await this.layer.change([[path, { t: 'file', data: id }], ...(await this.touchParents(view, [path]))], [], view.base, undefined, view.generation);
    } catch (e) {
      await this.c.store.dropData([{ t: 'file', data: id }]);
      throw e;
    }
    return id;
  }

  mkdir(path: string, mode: number): Promise<void> {
    return this.retrying(() => this.mkdirOnce(path, mode));
  }

  private async mkdirOnce(path: string, mode: number): Promise<void> {
    const view = await this.view();
    await this.creatable(view, path, 'dir');
    await this.layer.change([[path, { t: 'dir', lower: null, mode: mode & 0o7777, mtime: this.now() }], ...(await this.touchParents(view, [path]))], [], view.base, undefined, view.generation);
  }

  symlink(target: string, path: string): Promise<void> {
    return this.retrying(() => this.symlinkOnce(target, path));
  }

  private async symlinkOnce(target: string, path: string): Promise<void> {
    if (Buffer.byteLength(target) >= PATH_MAX) throw new FsError('ENAMETOOLONG', path);
    if (target.includes(REPLACEMENT_CHARACTER)) throw new FsError('EINVAL', path);
    const view = await this.view();
    await this.creatable(view, path, 'symlink');
    await this.layer.change([[path, { t: 'link', target, mtime: this.now() }], ...(await this.touchParents(view, [path]))], [], view.base, undefined, view.generation);
  }

  unlink(path: string): Promise<void> {
    return this.retrying(() => this.unlinkOnce(path));
  }

  private async unlinkOnce(path: string): Promise<void> {
    const view = await this.view();
    const r = await this.must(view, path);
    if (isDirectoryKind(r.node.kind)) throw new FsError('EISDIR', path);
    await this.remove(view, path, r.inLower);
  }

  rmdir(path: string): Promise<void> {
    return this.retrying(() => this.rmdirOnce(path));
  }

  private async rmdirOnce(path: string): Promise<void> {
    if (path === '') throw new FsError('EBUSY', path);
    const view = await this.view();
    const r = await this.must(view, path);
    // A submodule (an empty directory here) is removed as `git rm` removes it.
    if (!isDirectoryKind(r.node.kind)) throw new FsError('ENOTDIR', path);
    if ((await view.list(path, r.node)).length > 0) throw new FsError('ENOTEMPTY', path);
    await this.remove(view, path, r.inLower);
  }

  /** Removes `path` and every entry below it; a whiteout hides what the lower tree has there. */
  private async remove(view: MergedView, path: string, inLower: boolean): Promise<void> {
    const below = this.layer.pathsBelow(path);
    const dropped = [path, ...below].map((p) => this.layer.get(p));
    const parents = await this.touchParents(view, [path]);
    await this.layer.change(inLower ? [[path, { t: 'wh' }], ...parents] : parents, inLower ? below : [path, ...below], view.base, undefined, view.generation);
    await this.c.store.dropData(dropped);
  }

  rename(from: string, to: string): Promise<void> {
    return this.retrying(() => this.renameOnce(from, to));
  }

  private async renameOnce(from: string, to: string): Promise<void> {
    if (from === to) return;
    if (isWithin(to, from)) throw new FsError('EINVAL', to);
    const view = await this.view();
    const src = await this.must(view, from);
    if (src.node.kind === 'gitlink') throw new FsError('EROFS', from);
    checkNewName(to, src.node.kind);
    const parent = await view.resolve(parentOf(to));
    if (parent === undefined) throw new FsError('ENOENT', to);
    intoDirectory(parent.node, to);
    const dst = await view.resolve(to);
    if (dst?.node.kind === 'gitlink') throw new FsError('EROFS', to);
    if (dst !== undefined) {
      if (dst.node.kind === 'dir' && src.node.kind !== 'dir') throw new FsError('EISDIR', to);
      if (dst.node.kind !== 'dir' && src.node.kind === 'dir') throw new FsError('ENOTDIR', to);
      if (dst.node.kind === 'dir' && (await view.list(to, dst.node)).length > 0) throw new FsError('ENOTEMPTY', to);
    }
    const moved = await this.entryFor(src.node, from);
    const srcBelow = this.layer.pathsBelow(from);
    const dstBelow = this.layer.pathsBelow(to);
    const replaced = dst === undefined ? [] : [to, ...dstBelow].map((p) => this.layer.get(p));
    const puts: Array<[string, OverlayEntry]> = [[to, moved]];
    for (const p of srcBelow) puts.push([`${to}${p.slice(from.length)}`, this.layer.get(p) as OverlayEntry]);
    const dels = [...dstBelow, ...srcBelow];
    if (src.inLower) puts.push([from, { t: 'wh' }]);
    else dels.push(from);
    puts.push(...(await this.touchParents(view, [from, to])));
    // Written, then renamed over a file (an editor's save): its bytes are made durable before the
    // rename is, as ext4 does for this pattern, or a power loss could leave the name empty with
    // the replaced content gone.
    if (moved.t === 'file' && dst !== undefined && dst.node.kind === 'file') await this.onData(from, moved.data, fsyncFile);
    await this.layer.change(puts, dels, view.base, undefined, view.generation);
    await this.c.store.dropData(replaced);
  }

  /**
   * Entries that set the modification time of the directories holding `paths` to now, as adding
   * or removing a name does on any POSIX file system (directories keep their times only until
   * the next commit: git stores none).
   */
  private async touchParents(view: MergedView, paths: readonly string[]): Promise<Array<[string, OverlayEntry]>> {
    const out: Array<[string, OverlayEntry]> = [];
    const mtime = this.now();
    for (const dir of new Set(paths.map(parentOf))) {
      const own = this.layer.get(dir);
      if (own?.t === 'dir') {
        out.push([dir, { ...own, mtime }]);
        continue;
      }
      const found = await view.resolve(dir);
      if (found?.node.kind === 'dir') out.push([dir, { t: 'dir', lower: 'inherit', mode: found.node.mode, mtime }]);
    }
    return out;
  }

  /** The entry that says "this node" (at `path`), wherever it is put. */
  private async entryFor(node: Node, path: string): Promise<OverlayEntry> {
    switch (node.kind) {
      case 'gitlink':
        throw new FsError('EROFS', path);
      case 'dir':
        return { t: 'dir', lower: node.lower, mode: node.mode, mtime: node.mtime ?? this.now() };
      case 'symlink': {
        if (node.target !== undefined) return { t: 'link', target: node.target, mtime: node.mtime ?? this.now() };
        // The layer keeps a link's target as text: a committed target that is not UTF-8 would come
        // back altered, so such a link is not moved or touched here (EINVAL), and stays as it is.
        const bytes = (await this.c.objects.read(node.oid as Oid)).content;
        if (!isUtf8(bytes)) throw new FsError('EINVAL', path);
        return { t: 'link', target: bytes.toString('utf8'), mtime: node.mtime ?? this.now() };
      }
      default:
        if (node.data !== undefined) return { t: 'file', data: node.data };
        return { t: 'gitfile', oid: node.git.oid, chunked: node.git.chunked, size: await this.gitSize(node.git), executable: node.executable, mtime: node.mtime ?? this.now() };
    }
  }

  private async gitSize(git: { oid: Oid; chunked: boolean; size?: number }): Promise<number> {
    // From the blob's header: a blob above the read limit is not read whole.
    return git.size ?? (await this.c.objects.sizeOf(git.oid));
  }

  async readlink(path: string): Promise<string> {
    const r = await this.must(await this.view(), path);
    if (r.node.kind !== 'symlink') throw new FsError('EINVAL', path);
    return this.readlinkNode(r.node);
  }

  private async readlinkNode(node: Extract<Node, { kind: 'symlink' }>): Promise<string> {
    if (node.target !== undefined) return node.target;
    return (await this.c.objects.read(node.oid as Oid)).content.toString('utf8');
  }

  chmod(path: string, mode: number): Promise<void> {
    return this.retrying(() => this.chmodOnce(path, mode));
  }

  private async chmodOnce(path: string, mode: number): Promise<void> {
    const view = await this.view();
    const { node } = await this.must(view, path);
    if (node.kind === 'symlink') return;
    if (node.kind === 'gitlink') throw new FsError('EROFS', path);
    if (node.kind === 'dir') {
      const own = this.layer.get(path);
      await this.layer.change([[path, { t: 'dir', lower: own?.t === 'dir' ? own.lower : 'inherit', mode: mode & 0o7777, mtime: node.mtime ?? this.now() }]], [], view.base, undefined, view.generation);
      return;
    }
    if (node.data !== undefined) {
      await this.onData(path, node.data, (file) => chmod(file, fileMode(mode)));
      return;
    }
    const executable = fileMode(mode) === 0o755;
    if (executable === node.executable) return;
    await this.layer.change([[path, { ...(await this.entryFor(node, path)), executable } as OverlayEntry]], [], view.base, undefined, view.generation);
  }

  /** Sets times in ms since the epoch; 2^53 or more leaves that time unchanged (UTIME_OMIT). */
  utimens(path: string, atime: number, mtime: number): Promise<void> {
    return this.retrying(() => this.utimensOnce(path, atime, mtime));
  }

  private async utimensOnce(path: string, atime: number, mtime: number): Promise<void> {
    const view = await this.view();
    const { node } = await this.must(view, path);
    if (node.kind === 'file' && node.data !== undefined) {
      await this.onData(path, node.data, async (file) => {
        const st = atime >= OMIT || mtime >= OMIT ? await stat(file) : undefined;
        await utimes(file, atime >= OMIT ? (st as Stats).atimeMs / 1000 : msToSeconds(atime), mtime >= OMIT ? (st as Stats).mtimeMs / 1000 : msToSeconds(mtime));
      });
      return;
    }
    if (mtime >= OMIT) return; // only the access time changes: git-backed entries do not keep it
    const entry = await this.entryFor(node, path);
    if (entry.t === 'dir') {
      // The directory keeps merging with what it merged with (chmod does the same).
      const own = this.layer.get(path);
      await this.layer.change([[path, { ...entry, lower: own?.t === 'dir' ? own.lower : 'inherit', mtime }]], [], view.base, undefined, view.generation);
    } else if (entry.t === 'link' || entry.t === 'gitfile') {
      await this.layer.change([[path, { ...entry, mtime }]], [], view.base, undefined, view.generation);
    }
  }

  truncate(path: string, size: number): Promise<void> {
    return this.retrying(() => this.truncateOnce(path, size));
  }

  private async truncateOnce(path: string, size: number): Promise<void> {
    // Only what stays is copied up (a committed file cut to 10 bytes was copied whole first).
    const id = await this.writable(path, size);
    await this.onData(path, id, (file) => truncateFile(file, size));
    this.c.store.touch(id);
  }

  /**
   * The data file behind `path`, copying committed content into a new one first if needed
   * (copy-up). `keep` limits how many bytes are copied (0 when the file is about to be emptied).
   */
  async writable(path: string, keep?: number): Promise<string> {
    const pending = this.copying.get(path);
    if (pending !== undefined) return pending;
    const job = (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.copyUp(path, keep);
        } catch (e) {
          // Changed under the copy: copy again from the new state, a few times at most.
          if (!(e instanceof FsError && (e.errno === 'EBUSY' || e.errno === 'EAGAIN')) || attempt >= COPY_ATTEMPTS) throw e;
        }
      }
    })();
    this.copying.set(path, job);
    try {
      return await job;
    } finally {
      this.copying.delete(path);
    }
  }

  private async copyUp(path: string, keep: number | undefined): Promise<string> {
    const before = this.layer.get(path);
    const view = await this.view();
    const { node } = await this.must(view, path);
    if (isDirectoryKind(node.kind)) throw new FsError('EISDIR', path);
    if (node.kind !== 'file') throw new FsError('EINVAL', path);
    if (node.data !== undefined) return node.data;
    const id = this.c.store.newDataId();
    const dataPath = this.c.store.dataPath(id);
    const fh = await open(dataPath, 'wx', node.executable ? 0o755 : 0o644);
    try {
      try {
        const entry = { name: baseName(path), kind: 'file' as const, executable: node.executable, oid: node.git.oid, chunked: node.git.chunked, ...(node.git.size === undefined ? {} : { size: node.git.size }) };
        // A plain blob is read to its end even when only its start is kept: one streamed (above the
        // read limit) is hash-checked only there, and unchecked bytes must not be committed again.
        const end = keep ?? Number.MAX_SAFE_INTEGER;
        let at = 0;
        for await (const piece of fileContent(this.c.objects, entry, 0, entry.chunked ? end : Number.MAX_SAFE_INTEGER)) {
          const kept = Math.max(0, Math.min(piece.length, end - at));
          if (kept > 0) await fh.write(piece, 0, kept, at);
          at += piece.length;
        }
        // Durable before the layer names it: once any later sync makes the entry durable, a power
        // loss must not leave it naming an empty or partial copy.
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (node.mtime !== undefined) await utimes(dataPath, node.mtime / 1000, node.mtime / 1000);
    } catch (e) {
      // A copy that failed (an object missing here, a full disk) is named by nothing: gone now,
      // not at the next start (each retried open of a large file left another).
      await unlink(dataPath).catch(() => undefined);
      throw e;
    }
    if (this.layer.get(path) !== before || this.layer.generation !== view.generation) {
      // Renamed, replaced, committed or (a clean layer) its head moved while copying: the copy may describe nothing any more.
      await this.c.store.dropData([{ t: 'file', data: id }]);
      throw new FsError('EBUSY', path);
    }
    try {
      await this.layer.change([[path, { t: 'file', data: id }]], [], view.base, undefined, view.generation);
    } catch (e) {
      await this.c.store.dropData([{ t: 'file', data: id }]);
      throw e;
    }
    return id;
  }
}

/**
 * Checks that something can be created or moved into the directory `node` (for `path`): a
 * submodule's empty directory is read-only (EROFS), and anything but a directory is ENOTDIR.
 */
function intoDirectory(node: Node, path: string): void {
  if (node.kind === 'gitlink') throw new FsError('EROFS', path);
  if (node.kind !== 'dir') throw new FsError('ENOTDIR', path);
}

/** The longest name a directory entry takes (NAME_MAX, as ext4 and the mount's statfs say). */
const NAME_MAX = 255;
/** A symbolic link's target is at most PATH_MAX - 1 bytes (the kernel refuses longer ones). */
const PATH_MAX = 4096;
/**
 * What the FUSE binding makes of bytes that are not UTF-8 in a name it hands on (it decodes
 * them as UTF-8): two different names would become one, so such a name is refused.
 */
const REPLACEMENT_CHARACTER = '\uFFFD';

/** Refuses a name a new entry cannot take: too long (ENAMETOOLONG), not UTF-8, or not storable in git (EINVAL). */
export function checkNewName(path: string, kind: EntryKind): void {
  const name = baseName(path);
  if (Buffer.byteLength(name) > NAME_MAX) throw new FsError('ENAMETOOLONG', path);
  if (name.includes(REPLACEMENT_CHARACTER) || unstorableName(name, kind) !== undefined) throw new FsError('EINVAL', path);
}

/**
 * A time in ms as utimes takes it (seconds, a double), set to the middle of that ms: the double
 * is not exact (.123 s is stored as .122999906), and the mount shows times in whole ms, cut.
 */
function msToSeconds(ms: number): number {
  return (ms + 0.5) / 1000;
}

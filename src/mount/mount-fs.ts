/**
 * The mounted file system in path terms, independent of the FUSE binding: every method takes
 * mount paths and returns a value or throws FsError. Branch directories go to the working
 * layer (src/work); `.history`, `.commits` and `.objects` are read-only views of tree objects.
 * Listings and attributes come from trees and the layer only, never from file content.
 */
import { fstat, fsync, ftruncate, open as openFd, read, statfs, write } from 'node:fs';
import { stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { isDirectoryKind } from '../objects/entry-names.js';
import { isOid, type Oid } from '../objects/oid.js';
import { decodeTree } from '../objects/tree.js';
import { readTyped } from '../objects/typed-read.js';
import { parseBranchName, type BranchName } from '../branches/ref-name.js';
import { readShallow } from '../branches/shallow.js';
import { checkNewName } from '../work/branch-fs.js';
import { FsError } from '../work/fs-error.js';
import { MergedView, type Listed, type Node } from '../work/merged-view.js';
import { rememberMember } from '../util/bounded-map.js';
import type { Workspace } from '../work/workspace.js';
import { dataAttr, dirAttr, fileAttr, symlinkAttr, type Attr, type Owner } from './attrs.js';
import { BlobCache } from './blob-cache.js';
import { BlobStreamReader } from './blob-stream-reader.js';
import { Descriptors } from './descriptors.js';
import { HandleTable, type Handle } from './handles.js';
import { PageCachePolicy } from './page-cache.js';
import { RangeReader } from './range-reader.js';
import { HeldBlob } from './held-blob.js';
import { ReadBudget } from './read-budget.js';
import { historyNames, namespaceChildren, route, SPECIAL_DIRS, type Route } from './router.js';

const fstatP = promisify(fstat);
const fsyncP = promisify(fsync);
const ftruncateP = promisify(ftruncate);
const openP = promisify(openFd);
const statfsP = promisify(statfs);
const readP = promisify(read);
const writeP = promisify(write);

/** libfuse renames a file that is unlinked while open to this, and unlinks it at release. */
const HIDDEN_RE = /(^|\/)\.fuse_hidden[0-9a-f]{16}$/;
const MAX_HISTORY = 100_000;
/**
 * `.history` names kept for the heads looked at; past it they are made again. A name with its
 * entry takes ~250 bytes of heap (bench/cache-heap.ts): ~100 MB.
 */
const HISTORY_NAMES_HELD = 400_000;
/** Opens retried when a commit changed the file under them. */
const OPEN_ATTEMPTS = 3;
const WARMED_TREES = 4096;
const SIZE_READS_AT_ONCE = 8;
const QUEUED_SIZE_READS = 4096;
const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_TRUNC = 0o1000;
/** access(2)'s mode bits, and a mode's file type. */
const W_OK = 2;
const X_OK = 1;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
/** Unchunked blobs kept for handles to share (git writes them up to the read cap); the last one asked for stays whatever its size. */
const BLOB_CACHE_BYTES = 64 << 20;
/** What open files' readers keep between reads, all together (read-budget.ts). */
const READ_BUDGET_BYTES = 256 << 20;
/** Whole blobs above this, kept by handles, count in that budget (held-blob.ts); smaller ones are left to the blob cache. */
const COUNTED_BLOB_BYTES = 1 << 20;

type ReadOnlyRoot = { readonly tree: Oid; readonly time: number };

const asDir = (name: string): Listed => ({ name, kind: 'dir' });
/** Whether a handle reading an unchunked blob may keep it whole (a large one only while the budget lets it). */
const keptWhole = (h: { readonly held?: HeldBlob }): boolean => h.held === undefined || h.held.kept;

export class MountFs {
  readonly handles = new HandleTable();
  /** Descriptors of the data handles, closed once nothing reads through them. */
  private readonly fds = new Descriptors();
  /** Files unlinked while open: the hidden paths libfuse keeps using for them (their handles moved there). */
  private readonly hidden = new Set<string>();
  /** Whole blobs read by handles on committed (unchunked) files, one copy each. */
  private readonly blobs = new BlobCache(BLOB_CACHE_BYTES);
  private readonly readBudget = new ReadBudget(READ_BUDGET_BYTES);
  private readonly histories = new Map<Oid, Map<string, Oid>>();
  /** Names held in `histories`. */
  private historyNames = 0;
  private readonly started: number;
  private readonly pages = new PageCachePolicy();
  /** Trees whose entries' sizes were read ahead (warmSizes), the last WARMED_TREES; the reads waiting and running. */
  private readonly warmed = new Set<Oid>();
  private readonly sizeQueue: Oid[] = [];
  private sizeReads = 0;

  constructor(
    private readonly ws: Workspace,
    private readonly owner: Owner,
  ) {
    this.started = ws.repo.clock.now();
  }

  private async routeOf(path: string): Promise<Route> {
    // No path ('') is what libfuse passes for a file held open whose directory is gone: only a
    // request that carries its handle can be answered, never one by path (it is not the root).
    if (path === '') throw new FsError('ENOENT', path);
    return route(path, new Set((await this.ws.branchHeads()).keys()));
  }

  /** The branch's view (now, or over `heads`); a branch deleted elsewhere (no head, no changes) is gone. */
  private async branchView(branch: BranchName, path: string, heads?: ReadonlyMap<BranchName, Oid>): Promise<{ view: MergedView; time: number }> {
    const { view, time } = await this.ws.view(branch, heads);
    if (time === undefined && this.ws.store.layer(branch).base === undefined && !(heads ?? (await this.ws.branchHeads())).has(branch)) throw new FsError('ENOENT', path);
    return { view, time: time ?? this.started };
  }

  // ---- lookups -------------------------------------------------------------------------

  /**
   * What the kernel is told of `path`: its attributes, but those of its holders while a branch
   * file is held open with other content. The kernel keeps one size per path, and a holder reading
   * on past a size of the new content would see its own cut or padded; the session moves holders
   * along (`follow`) before it makes the kernel forget the old size.
   */
  getattr(path: string): Promise<Attr> {
    return this.attrAt(path, true);
  }

  /** The attributes of what `path` names now, whoever holds what. */
  attrOf(path: string): Promise<Attr> {
    return this.attrAt(path, false);
  }

  private async attrAt(path: string, holders: boolean): Promise<Attr> {
    if (this.hidden.has(path)) {
      // Any handle still open on the hidden file answers for it (libfuse keeps it until the last release).
      for (const [fh] of this.handles.at(path)) return this.fgetattr(fh);
      throw new FsError('ENOENT', path);
    }
    const r = await this.routeOf(path);
    switch (r.kind) {
      case 'root':
      case 'namespace':
        return dirAttr(this.owner, 0o755, this.started, r.kind === 'namespace' && r.under === 'history');
      case 'missing':
        throw new FsError('ENOENT', path);
      case 'branch': {
        for (let attempt = 0; ; attempt++) {
          const { view, time } = await this.branchView(r.branch, path);
          const found = await view.resolve(r.rel);
          if (found === undefined) throw new FsError('ENOENT', path);
          const held = holders ? this.heldOther(path, found.node)[0] : undefined;
          if (held !== undefined) return held.attr;
          try {
            return await this.nodeAttr(found.node, time, false);
          } catch (e) {
            // A commit dropped this written file's entry meanwhile: look again (once).
            if (attempt > 0 || e instanceof FsError || errnoCode(e) !== 'ENOENT') throw e;
          }
        }
      }
      default: {
        if (r.kind !== 'history' && r.id === undefined) return dirAttr(this.owner, 0o555, this.started, true);
        if (r.kind === 'objects') return this.objectAttr(r.id as string, path);
        const root = await this.readOnlyRoot(r, path);
        if (root === undefined) return dirAttr(this.owner, 0o555, this.started, true);
        const found = await new MergedView(this.ws.trees, undefined, root.tree).resolve(r.rel);
        if (found === undefined) throw new FsError('ENOENT', path);
        return this.nodeAttr(found.node, root.time, true);
      }
    }
  }

  /** The handles of branch file `path` that read other content than `node`, a committed file. */
  private heldOther(path: string, node: Node): Array<Extract<Handle, { kind: 'git' }>> {
    const held: Array<Extract<Handle, { kind: 'git' }>> = [];
    if (node.kind !== 'file' || node.data !== undefined) return held;
    for (const [, h] of this.handles.at(path)) if (h.kind === 'git' && h.follows && h.content.oid !== node.git.oid) held.push(h);
    return held;
  }

  /** The committed file a branch path names now, with its commit's time (undefined: none). */
  private async branchFile(path: string): Promise<{ node: Extract<Node, { kind: 'file'; data?: undefined }>; time: number } | undefined> {
    const r = await this.routeOf(path);
    if (r.kind !== 'branch') return undefined;
    const { view, time } = await this.branchView(r.branch, path);
    const node = (await view.resolve(r.rel))?.node;
    return node?.kind === 'file' && node.data === undefined ? { node, time } : undefined;
  }

  /** The paths, among those `within` accepts, of branch files held open with other content than they name now. */
  async heldOutdated(within: (path: string) => boolean): Promise<Set<string>> {
    const paths = new Set<string>();
    for (const [, h] of this.handles.entries()) if (h.kind === 'git' && h.follows && within(h.path)) paths.add(h.path);
    const outdated = new Set<string>();
    for (const path of paths) {
      const now = await this.branchFile(path).catch(() => undefined);
      if (now !== undefined && this.heldOther(path, now.node).length > 0) outdated.add(path);
    }
    return outdated;
  }

  /**
   * Moves the handles of branch file `path` that read other content onto the committed file the
   * path names now (git moved its branch), as a file rewritten in place; the kernel's pages of
   * the path are to be dropped next. A path gone, or now a directory or a written file, leaves
   * its holders reading what they opened, as an unlinked file.
   */
  async follow(path: string): Promise<void> {
    const now = await this.branchFile(path).catch(() => undefined);
    const held = now === undefined ? [] : this.heldOther(path, now.node);
    if (now === undefined || held.length === 0) return;
    const attr = await this.nodeAttr(now.node, now.time, false);
    for (const h of held) {
      h.content = now.node.git;
      h.attr = attr;
      h.blob = undefined;
      h.held?.release();
      h.held = undefined;
      h.ranges?.close();
      h.ranges = undefined;
      h.stream?.close();
      h.stream = undefined;
    }
    this.pages.moved(path);
  }

  /**
   * After a reset of `branch`: handles of the data files it discarded. Writers fail from now on
   * (EIO): what they wrote would land nowhere, and in the kernel's pages of the path, which new
   * readers of the path's committed content share. Readers move onto that content, as `follow`
   * moves them when the branch moves; where the path names no committed file, they read on what
   * they opened, as of an unlinked file.
   */
  async afterReset(branch: BranchName): Promise<void> {
    const layer = this.ws.store.layer(branch);
    const moved = new Set<string>();
    for (const [fh, h] of this.handles.entries()) {
      if (h.kind !== 'data') continue;
      const r = await this.routeOf(h.path).catch(() => undefined);
      if (r?.kind !== 'branch' || r.branch !== branch) continue;
      const now = layer.get(r.rel);
      if (now?.t === 'file' && now.data === h.dataId) continue;
      if (h.writable) {
        h.discarded = true;
        continue;
      }
      const file = await this.branchFile(h.path).catch(() => undefined);
      const attr = file === undefined ? undefined : await this.nodeAttr(file.node, file.time, false).catch(() => undefined);
      // Released (its descriptor closed) while the path was looked up: nothing to move.
      if (file === undefined || attr === undefined || this.handles.get(fh) !== h) continue;
      this.handles.replace(fh, { kind: 'git', follows: true, content: file.node.git, path: h.path, attr });
      await this.fds.letGo(h.fd);
      moved.add(h.path);
    }
    for (const path of moved) this.pages.moved(path);
  }

  /**
   * access(2) (and chdir): the kernel asks it when it checks no modes itself (no
   * default_permissions), and without an answer it would allow everything. As a local file
   * system answers its owner: a write under a read-only view is EROFS, running a regular file
   * without an execute bit EACCES, anything else allowed once the path exists.
   */
  async access(path: string, mode: number): Promise<void> {
    const attr = await this.getattr(path);
    const r = await this.routeOf(path);
    const readOnly = r.kind === 'history' || r.kind === 'commits' || r.kind === 'objects' || (r.kind === 'namespace' && r.under === 'history');
    if ((mode & W_OK) !== 0 && readOnly) throw new FsError('EROFS', path);
    if ((mode & X_OK) !== 0 && (attr.mode & S_IFMT) === S_IFREG && (attr.mode & 0o111) === 0) throw new FsError('EACCES', path);
  }

  async fgetattr(fh: number): Promise<Attr> {
    const h = this.handle(fh);
    if (h.kind === 'git') return h.attr;
    return dataAttr(this.owner, await this.fds.use(h.fd, (fd) => fstatP(fd)));
  }

  private async nodeAttr(node: Node, time: number, readOnly: boolean): Promise<Attr> {
    switch (node.kind) {
      case 'dir':
        return dirAttr(this.owner, node.mode, node.mtime ?? time, readOnly);
      case 'gitlink':
        return dirAttr(this.owner, 0o555, time, true);
      case 'symlink': {
        const size = node.target !== undefined ? Buffer.byteLength(node.target) : await this.ws.repo.objects.sizeOf(node.oid as Oid);
        return symlinkAttr(this.owner, size, node.mtime ?? time);
      }
      default:
        if (node.data !== undefined) return dataAttr(this.owner, await stat(this.ws.store.dataPath(node.data)));
        return fileAttr(this.owner, node.executable, node.git.size ?? (await this.ws.repo.objects.sizeOf(node.git.oid)), node.mtime ?? time, readOnly);
    }
  }

  /** The commit tree a `.history` or `.commits` path reads from (undefined: the listing level). */
  private async readOnlyRoot(r: Extract<Route, { kind: 'history' | 'commits' }>, path: string): Promise<ReadOnlyRoot | undefined> {
    if (r.kind === 'commits') return this.commitRoot(await this.commitById(r.id as string, path));
    if (r.entry === undefined) return undefined;
    const commit = (await this.history(r.branch)).get(r.entry);
    if (commit === undefined) throw new FsError('ENOENT', path);
    return this.commitRoot(commit);
  }

  private async commitRoot(commit: Oid): Promise<ReadOnlyRoot> {
    const info = await this.ws.commitInfo(commit);
    return { tree: info.tree, time: info.time };
  }

  private async commitById(id: string, path: string): Promise<Oid> {
    if (!/^[0-9a-f]{4,40}$/.test(id)) throw new FsError('ENOENT', path);
    const found = isOid(id) ? [id as Oid] : await this.ws.repo.objects.findByPrefix(id, 2);
    if (found.length !== 1) throw new FsError('ENOENT', path);
    try {
      await this.ws.commitInfo(found[0] as Oid);
    } catch (e) {
      if (e instanceof GitfsError && (e.code === ErrorCodes.OBJECT_NOT_FOUND || e.code === ErrorCodes.WRONG_OBJECT_TYPE)) throw new FsError('ENOENT', path);
      throw e;
    }
    return found[0] as Oid;
  }

  /** `.history/<branch>/` names → commits, for the branch's current head (cached per head). */
  private async history(branch: BranchName): Promise<Map<string, Oid>> {
    const head = await this.ws.head(branch);
    if (head === undefined) return new Map();
    let names = this.histories.get(head);
    if (names === undefined) {
      const chain: { timeMs: number; commit: Oid }[] = [];
      // A shallow repository (a `history: K` policy) holds no commits past its boundary.
      const shallow = await readShallow(this.ws.repo.gitDir);
      let at: Oid | undefined = head;
      for (let i = 0; at !== undefined && i < MAX_HISTORY; i++) {
        const info = await this.ws.commitInfo(at);
        chain.push({ timeMs: info.time, commit: at });
        at = shallow.has(at) ? undefined : info.parents[0];
      }
      names = historyNames(chain);
      // Made meanwhile by another lookup of the same head: that one is kept, counted once.
      const made = this.histories.get(head);
      if (made !== undefined) return made;
      // Bounded by names, not heads: every commit of a long branch makes a map of its whole history.
      if (this.historyNames + names.size > HISTORY_NAMES_HELD) {
        this.histories.clear();
        this.historyNames = 0;
      }
      this.histories.set(head, names);
      this.historyNames += names.size;
    }
    return names;
  }

  /** `.objects/<id>`: a blob, or a chunked file by its chunk-tree id. */
  private async objectAttr(id: string, path: string): Promise<Attr> {
    const content = await this.objectContent(id, path);
    return fileAttr(this.owner, false, content.size ?? (await this.ws.repo.objects.sizeOf(content.oid)), this.started, true);
  }

  private async objectContent(id: string, path: string): Promise<{ oid: Oid; chunked: boolean; size?: number }> {
    if (!isOid(id)) throw new FsError('ENOENT', path);
    const oid = id as Oid;
    if (!(await this.ws.repo.objects.has(oid))) throw new FsError('ENOENT', path);
    // From its header: a stat does not read a large blob whole.
    const type = await this.ws.repo.objects.typeOf(oid);
    if (type === 'blob') return { oid, chunked: false };
    if (type !== 'tree') throw new FsError('ENOENT', path);
    return { oid, chunked: true, size: await this.chunkTreeSize(oid, path, 0) };
  }

  /** A chunk tree's size: the last node's offset plus that node's size, down the right edge. */
  private async chunkTreeSize(oid: Oid, path: string, depth: number): Promise<number> {
    const entries = decodeTree(await readTyped(this.ws.repo.objects, oid, 'tree'), oid);
    const last = entries[entries.length - 1];
    if (last === undefined || depth > 16 || !entries.every((e) => /^[0-9a-f]{16}$/.test(e.name))) throw new FsError('ENOENT', path);
    const offset = Number.parseInt(last.name, 16);
    const objects = this.ws.repo.objects;
    return offset + ((await objects.typeOf(last.oid)) === 'blob' ? await objects.sizeOf(last.oid) : await this.chunkTreeSize(last.oid, path, depth + 1));
  }

  /** A directory's names, with each one's kind (so `find -type` need not stat every entry). */
  async readdir(path: string): Promise<Listed[]> {
    const r = await this.routeOf(path);
    const heads = await this.ws.branchHeads();
    switch (r.kind) {
      case 'root':
        return [...SPECIAL_DIRS, ...namespaceChildren('', heads.keys())].map(asDir);
      case 'namespace':
        return namespaceChildren(r.prefix, heads.keys()).map(asDir);
      case 'missing':
        throw new FsError('ENOENT', path);
      case 'branch': {
        const { view } = await this.branchView(r.branch, path);
        const found = await view.resolve(r.rel);
        if (found === undefined) throw new FsError('ENOENT', path);
        this.warmSizes(found.node);
        return view.list(r.rel, found.node);
      }
      case 'objects':
        if (r.id === undefined) return [];
        throw new FsError('ENOTDIR', path);
      default: {
        if (r.kind === 'commits' && r.id === undefined) return [];
        if (r.kind === 'history' && r.entry === undefined) return [...(await this.history(r.branch)).keys()].sort().map(asDir);
        const root = (await this.readOnlyRoot(r, path)) as ReadOnlyRoot;
        const view = new MergedView(this.ws.trees, undefined, root.tree);
        const found = await view.resolve(r.rel);
        if (found === undefined) throw new FsError('ENOENT', path);
        this.warmSizes(found.node);
        return view.list(r.rel, found.node);
      }
    }
  }

  /**
   * Reads the sizes of a listed directory's committed files and symlinks (each the header of its
   * object) ahead of the stats that usually follow a listing (`ls -l`, `find | xargs stat`), off
   * the requests' path: once per tree, SIZE_READS_AT_ONCE at a time for the whole mount, at most
   * QUEUED_SIZE_READS waiting. Failures surface when a stat asks.
   */
  private warmSizes(dir: Node): void {
    if (dir.kind !== 'dir' || dir.lower === null || this.warmed.has(dir.lower)) return;
    const tree = dir.lower;
    rememberMember(this.warmed, tree, WARMED_TREES);
    const objects = this.ws.repo.objects;
    this.ws.trees.get(tree).then(
      (listing) => {
        for (const e of listing.values()) {
          // Only objects held here: on a partial node an absent one would be fetched whole from peers.
          if (!isDirectoryKind(e.kind) && e.size === undefined && this.sizeQueue.length < QUEUED_SIZE_READS && objects.hasPacked(e.oid)) this.sizeQueue.push(e.oid);
        }
        this.readSizes();
      },
      () => undefined,
    );
  }

  private readSizes(): void {
    while (this.sizeReads < SIZE_READS_AT_ONCE && this.sizeQueue.length > 0) {
      this.sizeReads++;
      this.ws.repo.objects
        .sizeOf(this.sizeQueue.shift() as Oid)
        .catch(() => undefined)
        .finally(() => {
          this.sizeReads--;
          this.readSizes();
        });
    }
  }

  async readlink(path: string): Promise<string> {
    const r = await this.routeOf(path);
    if (r.kind === 'branch') return this.ws.fs(r.branch).readlink(r.rel);
    if (r.kind === 'history' || r.kind === 'commits') {
      const root = await this.readOnlyRoot(r, path);
      const found = root === undefined ? undefined : await new MergedView(this.ws.trees, undefined, root.tree).resolve(r.rel);
      if (found?.node.kind !== 'symlink') throw new FsError(found === undefined ? 'ENOENT' : 'EINVAL', path);
      return (await this.ws.repo.objects.read(found.node.oid as Oid)).content.toString('utf8');
    }
    throw new FsError('EINVAL', path);
  }

  // ---- open files ----------------------------------------------------------------------

  /**
   * Opens `path`, a file of a branch as `heads` name it if given (those the request began with);
   * `keepCache`: the kernel may keep the pages it cached for the file (page-cache.ts).
   */
  async open(path: string, flags: number, heads?: ReadonlyMap<BranchName, Oid>): Promise<{ fh: number; keepCache: boolean }> {
    const fh = await this.openHandle(path, flags, heads);
    return { fh, keepCache: this.opened(fh) };
  }

  /** Asks the page-cache policy about a new handle. */
  private opened(fh: number): boolean {
    const h = this.handle(fh);
    const others: Array<Oid | undefined> = [];
    for (const [n, o] of this.handles.at(h.path)) if (n !== fh) others.push(o.kind === 'git' ? o.content.oid : undefined);
    return this.pages.opened(h.path, fh, h.kind === 'git' ? h.content.oid : undefined, others);
  }

  private async openHandle(path: string, flags: number, heads?: ReadonlyMap<BranchName, Oid>): Promise<number> {
    const writable = (flags & O_ACCMODE) !== O_RDONLY;
    const r = await this.routeOf(path);
    if (r.kind === 'branch') {
      // The mount takes atomic_o_trunc: the kernel leaves O_TRUNC to the open. (It truncated by
      // a separate setattr after the open, so a committed file was first copied whole, only to be emptied.)
      if ((flags & O_TRUNC) !== 0) await this.truncate(path, 0);
      return this.openInBranch(r, path, writable, heads);
    }
    if (writable || (flags & O_TRUNC) !== 0) throw new FsError('EROFS', path);
    if (r.kind === 'objects' && r.id !== undefined && r.rel === '') {
      return this.handles.add({ kind: 'git', follows: false, content: await this.objectContent(r.id, path), path, attr: await this.getattr(path) });
    }
    if (r.kind === 'history' || r.kind === 'commits') {
      const root = await this.readOnlyRoot(r, path);
      const found = root === undefined ? undefined : await new MergedView(this.ws.trees, undefined, root.tree).resolve(r.rel);
      if (found === undefined) throw new FsError('ENOENT', path);
      if (found.node.kind !== 'file' || found.node.git === undefined) throw new FsError('EISDIR', path);
      return this.handles.add({ kind: 'git', follows: false, content: found.node.git, path, attr: await this.getattr(path) });
    }
    throw new FsError('EISDIR', path);
  }

  /**
   * Opens a file of a branch. A commit running meanwhile may drop the entry of a written file
   * (its content is then the base's): the open is checked against the layer once the descriptor
   * is held, and tried again on the new state, so writes never go to a file nothing names.
   * A file opened for reading is looked up over `heads`: the size the kernel was told when
   * it looked the name up before this open came from those, and must fit the content.
   */
  private async openInBranch(r: Extract<Route, { kind: 'branch' }>, path: string, writable: boolean, heads?: ReadonlyMap<BranchName, Oid>): Promise<number> {
    const fs = this.ws.fs(r.branch);
    const layer = this.ws.store.layer(r.branch);
    for (let attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
      const { view, time } = await this.branchView(r.branch, path, writable ? undefined : heads);
      const found = await view.resolve(r.rel);
      if (found === undefined) throw new FsError('ENOENT', path);
      if (isDirectoryKind(found.node.kind)) throw new FsError('EISDIR', path);
      if (found.node.kind !== 'file') throw new FsError('EINVAL', path);
      if (found.node.data === undefined && !writable) {
        const attr = await this.nodeAttr(found.node, time, false);
        // Copied up to be written meanwhile: its readers were moved onto the copy before this one
        // was among them, so it opens the copy (checked and added in one step, nothing between).
        if (layer.get(r.rel)?.t === 'file') continue;
        return this.handles.add({ kind: 'git', follows: true, content: found.node.git, path, attr });
      }
      const id = writable ? await fs.writable(r.rel) : (found.node.data as string);
      if (writable) await this.readersToCopy(path, id);
      let fh: number;
      try {
        fh = await this.openData(id, writable, path);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') continue;
        throw e;
      }
      const now = layer.get(r.rel);
      if (now?.t === 'file' && now.data === id) return fh;
      await this.release(fh, path);
    }
    throw new FsError('EBUSY', path);
  }

  private async openData(id: string, writable: boolean, path: string): Promise<number> {
    const fd = await openP(this.ws.store.dataPath(id), writable ? 'r+' : 'r');
    return this.handles.add({ kind: 'data', fd, dataId: id, writable, path });
  }

  async create(path: string, mode: number): Promise<number> {
    const fh = await this.createHandle(path, mode);
    this.opened(fh);
    return fh;
  }

  private async createHandle(path: string, mode: number): Promise<number> {
    const r = await this.writableRoute(path, true);
    const id = await this.ws.fs(r.branch).create(r.rel, mode);
    const fh = await this.openData(id, true, path).catch((e: unknown) => {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw e;
    });
    const now = this.ws.store.layer(r.branch).get(r.rel);
    if (fh !== undefined && now?.t === 'file' && now.data === id) return fh;
    // A commit took the new (empty) file meanwhile: open what the branch holds there now.
    if (fh !== undefined) await this.release(fh, path);
    return this.openInBranch(r, path, true);
  }

  async read(fh: number, into: Buffer, length: number, position: number): Promise<number> {
    const h = this.handle(fh);
    this.pages.read(h.path, fh);
    if (h.kind === 'data') return (await this.fds.use(h.fd, (fd) => readP(fd, into, 0, length, position))).bytesRead;
    if (h.content.chunked) {
      h.ranges ??= new RangeReader(this.ws.repo.objects, h.content.oid, h.content.size ?? 0, this.readBudget);
      return h.ranges.read(position, length, into);
    }
    const oid = h.content.oid;
    // A large blob the handle is to keep whole takes room in the budget first (held-blob.ts).
    if (h.blob === undefined && h.held === undefined && h.attr.size > COUNTED_BLOB_BYTES && h.attr.size <= this.ws.repo.objects.maxObjectBytes) {
      const held = (h.held = new HeldBlob(this.readBudget, h.attr.size, () => (h.blob = undefined)));
      held.take();
    }
    // A blob above the read limit (git wrote it), or one the budget has no room for, is not read whole: streamed from its start.
    if (h.attr.size > this.ws.repo.objects.maxObjectBytes || !keptWhole(h)) {
      h.stream ??= new BlobStreamReader(() => this.ws.repo.objects.readBlob(oid));
      return h.stream.read(position, length, into);
    }
    h.held?.read();
    // The handle keeps what it read (unless shed meanwhile): a blob let go by the cache is never read again for it.
    const blob = h.blob ?? (await this.blobs.get(oid, () => readTyped(this.ws.repo.objects, oid, 'blob')));
    if (keptWhole(h)) h.blob = blob;
    const bytes = blob.subarray(Math.min(position, blob.length), Math.min(position + length, blob.length));
    return bytes.copy(into, 0, 0, Math.min(length, bytes.length));
  }

  async write(fh: number, from: Buffer, length: number, position: number): Promise<number> {
    const h = this.handle(fh);
    if (h.kind !== 'data' || !h.writable) throw new FsError('EBADF');
    if (h.discarded === true) throw new FsError('EIO', h.path);
    const { bytesWritten } = await writeP(h.fd, from, 0, length, position);
    this.ws.store.touch(h.dataId);
    return bytesWritten;
  }

  async ftruncate(fh: number, size: number): Promise<void> {
    const h = this.handle(fh);
    if (h.kind !== 'data' || !h.writable) throw new FsError('EBADF');
    if (h.discarded === true) throw new FsError('EIO', h.path);
    await ftruncateP(h.fd, size);
    this.ws.store.touch(h.dataId);
  }

  async fsync(fh: number): Promise<void> {
    const h = this.handle(fh);
    if (h.kind === 'data') await this.fds.use(h.fd, fsyncP);
    await this.ws.store.sync();
  }

  async fsyncdir(): Promise<void> {
    await this.ws.store.sync();
  }

  /** `path` is '' for a file whose directory is gone (libfuse passes no path then: its handle answers). */
  async release(fh: number, path: string): Promise<void> {
    const h = this.handles.remove(fh);
    if (h?.kind === 'data') await this.fds.letGo(h.fd);
    for (const hidden of path === '' ? [...this.hidden] : [path]) {
      if (this.hidden.has(hidden) && this.handles.at(hidden).next().done === true) this.hidden.delete(hidden);
    }
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (h === undefined) throw new FsError('EBADF');
    return h;
  }

  // ---- changes -------------------------------------------------------------------------

  /** The branch route of a path that may change; `creating`: the path is to be made. */
  private async writableRoute(path: string, creating = false, rootToo = false): Promise<Extract<Route, { kind: 'branch' }>> {
    const r = await this.routeOf(path);
    if (r.kind === 'branch' && (r.rel !== '' || rootToo)) return r;
    if (r.kind === 'missing' && !creating) throw new FsError('ENOENT', path);
    // Only directories (branches) can be made outside a branch.
    if (r.kind === 'branch' || r.kind === 'root' || r.kind === 'namespace' || (r.kind === 'missing' && r.under === 'branches')) throw new FsError('EPERM', path);
    throw new FsError('EROFS', path);
  }

  async mkdir(path: string, mode: number): Promise<void> {
    const r = await this.routeOf(path);
    if ((r.kind === 'branch' && r.rel === '') || r.kind === 'namespace' || r.kind === 'root') throw new FsError('EEXIST', path);
    if (r.kind === 'missing' && r.under === 'branches') {
      // A branch's directory takes the names any directory takes (and then git's rules for branches).
      checkNewName(path, 'dir');
      let branch: BranchName;
      try {
        branch = parseBranchName(r.prefix);
      } catch {
        throw new FsError('EINVAL', path);
      }
      await this.ws.createEmptyBranch(branch);
      return;
    }
    const w = await this.writableRoute(path, true);
    await this.ws.fs(w.branch).mkdir(w.rel, mode);
  }

  async rmdir(path: string): Promise<void> {
    const r = await this.routeOf(path);
    if (r.kind === 'branch' && r.rel === '') {
      if (!(await this.ws.deleteEmptyBranch(r.branch))) throw new FsError('ENOTEMPTY', path);
      return;
    }
    const w = await this.writableRoute(path);
    await this.ws.fs(w.branch).rmdir(w.rel);
  }

  async unlink(path: string): Promise<void> {
    this.pages.moved(path);
    if (this.hidden.delete(path)) return;
    const w = await this.writableRoute(path);
    await this.ws.fs(w.branch).unlink(w.rel);
  }

  async symlink(target: string, path: string): Promise<void> {
    const w = await this.writableRoute(path, true);
    await this.ws.fs(w.branch).symlink(target, w.rel);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.renameOnce(from, to);
    // libfuse moves its node, open handles and all, to the new path once this succeeds (requests
    // for either path wait for it meanwhile).
    this.pages.moved(from, to);
    this.handles.moved(from, to);
  }

  private async renameOnce(from: string, to: string): Promise<void> {
    const src = await this.writableRoute(from);
    if (HIDDEN_RE.test(to)) return this.hide(from, to, src);
    const dst = await this.writableRoute(to);
    if (dst.branch !== src.branch) throw new FsError('EXDEV', to);
    await this.ws.fs(src.branch).rename(src.rel, dst.rel);
  }

  /** libfuse hides a file unlinked while open: unlink it, keep answering for the hidden name. */
  private async hide(from: string, to: string, src: Extract<Route, { kind: 'branch' }>): Promise<void> {
    const found = await this.ws.fs(src.branch).resolve(src.rel);
    if (found === undefined) throw new FsError('ENOENT', from);
    // The holders are the handles open at this path (they follow renames), whatever content each reads.
    if (this.handles.at(from).next().done === true) {
      // Nothing holds it open: a plain rename to a name that only looks like libfuse's.
      const dst = await this.writableRoute(to, true);
      if (dst.branch !== src.branch) throw new FsError('EXDEV', to);
      return this.ws.fs(src.branch).rename(src.rel, dst.rel);
    }
    await this.ws.fs(src.branch).unlink(src.rel);
    this.hidden.add(to);
  }

  async chmod(path: string, mode: number): Promise<void> {
    const w = await this.writableRoute(path, false, true);
    await this.ws.fs(w.branch).chmod(w.rel, mode);
  }

  async utimens(path: string, atime: number, mtime: number): Promise<void> {
    const w = await this.writableRoute(path, false, true);
    await this.ws.fs(w.branch).utimens(w.rel, atime, mtime);
  }

  async truncate(path: string, size: number): Promise<void> {
    const w = await this.writableRoute(path);
    await this.ws.fs(w.branch).truncate(w.rel, size);
    const now = this.ws.store.layer(w.branch).get(w.rel);
    if (now?.t === 'file') await this.readersToCopy(path, now.data);
  }

  /**
   * A committed file at `path` has been copied up to data file `id` to be written: the handles
   * reading the committed content (following the branch) read the copy from now on, so a write
   * through one handle is seen through the others, as on any file system. So do readers of an
   * earlier copy that a commit let go (the same file, as committed). Readers of a file unlinked
   * or replaced while open are not at `path`: their handles moved to its hidden name.
   */
  private async readersToCopy(path: string, id: string): Promise<void> {
    const readers = [...this.handles.at(path)].filter(([, h]) => (h.kind === 'git' ? h.follows : !h.writable && h.dataId !== id));
    if (readers.length === 0) return;
    for (const [fh, old] of readers) {
      // Gone already (a commit took it): the open tries again, and moves them then.
      const fd = await openP(this.ws.store.dataPath(id), 'r').catch((e: unknown) => {
        if (errnoCode(e) === 'ENOENT') return undefined;
        throw e;
      });
      if (fd === undefined) break;
      // Released, or moved by another open, while this one opened the copy: left as it is now.
      if (this.handles.get(fh) !== old) {
        await this.fds.letGo(fd);
        continue;
      }
      this.handles.replace(fh, { kind: 'data', fd, dataId: id, writable: false, path });
      if (old.kind === 'data') await this.fds.letGo(old.fd);
    }
    this.pages.moved(path);
  }

  async statfs(): Promise<{ bsize: number; frsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number; favail: number; fsid: number; flag: number; namemax: number }> {
    const s = await statfsP(this.ws.repo.gitDir);
    // The binding passes 32-bit counts: report in units large enough to fit.
    let unit = s.bsize;
    while (s.blocks * (s.bsize / unit) > 0xffffffff) unit *= 2;
    const scale = s.bsize / unit;
    const fit = (n: number): number => Math.min(0xffffffff, n);
    return {
      bsize: unit,
      frsize: unit,
      blocks: fit(Math.floor(s.blocks * scale)),
      bfree: fit(Math.floor(s.bfree * scale)),
      bavail: fit(Math.floor(s.bavail * scale)),
      files: fit(s.files),
      ffree: fit(s.ffree),
      favail: fit(s.ffree),
      fsid: 0,
      flag: 0,
      namemax: 255,
    };
  }
}

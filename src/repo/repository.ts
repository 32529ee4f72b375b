/**
 * A gitfs repository: a bare git repository whose config records the gitfs format.
 * This is the public face the CLI (and later the mount and the node daemon) work through; it
 * wires the object database, the ref store, the chunker and the pack writer together.
 */
import { hostname } from 'node:os';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { Chunker } from '../objects/chunker.js';
import { ObjectDatabase } from '../objects/object-database.js';
import { Freshener, type ObjectFiles } from '../objects/freshen.js';
import type { Oid } from '../objects/oid.js';
import { PackWriter } from '../objects/pack-writer.js';
import { RefStore } from '../branches/ref-store.js';
import { tellMountRefsMoved } from '../mount/control.js';
import type { Identity } from '../branches/reflog.js';
import { systemClock, type Clock } from '../util/clock.js';
import { writeFileAtomic } from '../util/durable.js';
import { makeDirs } from '../util/make-dirs.js';
import { parseGitConfig } from './git-config.js';
import { isPartial } from './partial.js';
import { DEFAULT_FORMAT, DEFAULT_SETTINGS, readFormat, renderConfig, type RepoFormat, type RepoSettings } from './repo-format.js';
import { holdWrites } from './write-holds.js';
import { readUnhad } from './unhad.js';
import { crashPoint } from '../util/crash-point.js';

/** What init makes before the config, its last step; and the temporaries of its atomic writes. */
const INIT_ENTRIES: ReadonlySet<string> = new Set(['objects', 'refs', 'logs', 'info', 'description', 'HEAD']);
const INIT_TEMPORARY_RE = /^(HEAD|config)\.tmp-[0-9a-f]{12}$/;

export interface RepositoryComponents {
  readonly clock?: Clock;
  /** Environment for identity defaults (GITFS_AUTHOR_NAME, GITFS_AUTHOR_EMAIL). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The config of the repository at `gitDir`, once it and `objects/` are found there:
 * GITFS_NOT_A_REPOSITORY where either is not, GITFS_IO where they cannot be read.
 */
export async function readRepositoryConfig(gitDir: string): Promise<string> {
  const configPath = join(gitDir, 'config');
  try {
    const text = await readFile(configPath, 'utf8');
    await stat(join(gitDir, 'objects'));
    return text;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new GitfsError(ErrorCodes.NOT_A_REPOSITORY, `${gitDir} is not a gitfs repository (run gitfs init)`, { path: gitDir });
    }
    throw new GitfsError(ErrorCodes.IO, `cannot read ${configPath}: ${(e as Error).message}`, { path: configPath }, { cause: e });
  }
}

export class Repository {
  readonly chunker: Chunker;

  private constructor(
    readonly gitDir: string,
    readonly format: RepoFormat,
    readonly settings: RepoSettings,
    readonly objects: ObjectDatabase,
    readonly refs: RefStore,
    readonly clock: Clock,
    readonly identity: Identity,
  ) {
    this.chunker = new Chunker(format.chunker);
  }

  /** Creates a repository in `dir` (which must be absent, empty, or left by an init that was killed) and opens it. */
  static async init(dir: string, components: RepositoryComponents = {}, format: RepoFormat = DEFAULT_FORMAT): Promise<Repository> {
    const gitDir = resolve(dir);
    const existing: string[] = await readdir(gitDir).catch((e: unknown): string[] => {
      if (errnoCode(e) === 'ENOENT') return [];
      throw new GitfsError(ErrorCodes.IO, `cannot read ${gitDir}: ${(e as Error).message}`, { path: gitDir }, { cause: e });
    });
    // An init killed before it wrote the config left only what it makes (and its temporaries),
    // all empty: it is done again. A repository that lost its config (packs, branches) is not that.
    const interrupted =
      !existing.includes('config') &&
      existing.every((n) => INIT_ENTRIES.has(n) || INIT_TEMPORARY_RE.test(n)) &&
      (await Promise.all(['objects/pack', 'refs/heads', 'refs/tags', 'logs/refs/heads'].map((d) => isEmptyDir(join(gitDir, d))))).every(Boolean);
    if (!interrupted && (existing.includes('config') || existing.includes('HEAD'))) {
      throw new GitfsError(ErrorCodes.REPOSITORY_EXISTS, `${gitDir} already holds a repository (gitfs init needs a new or empty directory; a git repository gitfs did not make is imported with gitfs commit --from into a new one)`, { path: gitDir });
    }
    if (!interrupted) {
      throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${gitDir} is not empty; gitfs init needs a new or empty directory`, { path: gitDir });
    }
    for (const n of existing) if (INIT_TEMPORARY_RE.test(n)) await rm(join(gitDir, n), { force: true });
    await makeDirs(gitDir).catch((e: unknown) => {
      throw new GitfsError(ErrorCodes.IO, `cannot create ${gitDir}: ${(e as Error).message}`, { path: gitDir, errno: errnoCode(e) }, { cause: e });
    });
    for (const sub of ['objects/pack', 'objects/info', 'refs/heads', 'refs/tags', 'logs/refs/heads', 'info']) {
      await mkdir(join(gitDir, sub), { recursive: true });
    }
    await writeFile(join(gitDir, 'description'), 'gitfs repository\n');
    await writeFileAtomic(join(gitDir, 'HEAD'), 'ref: refs/heads/main\n');
    // The config is written last: a crash before this point leaves no repository, not half of one.
    await writeFileAtomic(join(gitDir, 'config'), renderConfig(format, DEFAULT_SETTINGS));
    return Repository.open(gitDir, components);
  }

  static async open(dir: string, components: RepositoryComponents = {}): Promise<Repository> {
    const gitDir = resolve(dir);
    const configPath = join(gitDir, 'config');
    const text = await readRepositoryConfig(gitDir);
    const values = parseGitConfig(text, configPath);
    const { format, settings } = readFormat(values, configPath);
    const clock = components.clock ?? systemClock;
    const env = components.env ?? process.env;
    const identity: Identity = {
      name: env.GITFS_AUTHOR_NAME ?? values.get('user.name') ?? 'gitfs',
      email: env.GITFS_AUTHOR_EMAIL ?? values.get('user.email') ?? `gitfs@${hostname()}`,
    };
    const objects = await ObjectDatabase.open(gitDir);
    // After each branch move, wait until a running mount of this repository shows it.
    const refs = new RefStore({ gitDir, clock }, { identity, afterMove: () => tellMountRefsMoved(gitDir) });
    return new Repository(gitDir, format, settings, objects, refs, clock, identity);
  }

  /**
   * A writer for one batch of objects (one commit's worth); finish() makes them visible.
   * `promisor`: src/repo/partial.ts; by default, whether the repository is partial (a tree
   * written here may name a blob never fetched, such as one a mount's commit keeps as it was:
   * only a promisor pack may); `hashWhileWriting`: PackWriterOptions; `rewrite`: objects
   * already here are written again (pack-merge.ts), not skipped, all or those it says (copies here
   * that are damaged: src/swarm/local-objects.ts replace); `maxObjectsPerPack`: PackWriterOptions.
   */
  async newPackWriter(options: { promisor?: boolean; hashWhileWriting?: boolean; rewrite?: boolean | ((oid: Oid) => boolean); maxObjectsPerPack?: number } = {}): Promise<PackWriter> {
    await this.objects.refresh();
    const objects = this.objects;
    let loose = await objects.looseIds();
    const files: ObjectFiles = {
      refresh: async () => {
        await objects.refresh();
        loose = await objects.looseIds();
      },
      fileOf: (oid) => objects.packHolding(oid) ?? (loose.has(oid) ? objects.loosePathOf(oid) : undefined),
    };
    // What is here is not written again, but its file is freshened (freshen.ts) before the writer
    // finishes; what a repair found damaged and could not have is (unhad.ts).
    const fresh = new Freshener(this.clock, files);
    const unhad = await readUnhad(this.gitDir);
    const contains = (oid: Oid): boolean => {
      if (options.rewrite === true || (typeof options.rewrite === 'function' && options.rewrite(oid)) || unhad.has(oid)) return false;
      const file = files.fileOf(oid);
      if (file !== undefined) fresh.touch(file, oid);
      return file !== undefined;
    };
    return PackWriter.create(
      {
        packDir: join(this.gitDir, 'objects', 'pack'),
        existing: { contains, refresh: () => objects.refresh(), freshened: () => fresh.settled() },
      },
      {
        compressionLevel: this.settings.compressionLevel,
        promisor: options.promisor ?? (await isPartial(this.gitDir)),
        hashWhileWriting: options.hashWhileWriting !== false,
        ...(options.maxObjectsPerPack === undefined ? {} : { maxObjectsPerPack: options.maxObjectsPerPack }),
      },
    );
  }

  /**
   * Runs `work` (which writes objects and moves a ref to them) under a write hold: prune removes
   * nothing it wrote or deduped against meanwhile, however long it runs (write-holds.ts).
   */
  async whileWriting<T>(work: () => Promise<T>): Promise<T> {
    const hold = await holdWrites(this.gitDir, this.clock);
    crashPoint('write-hold:held');
    try {
      return await work();
    } finally {
      await hold.release();
    }
  }

  async close(): Promise<void> {
    await this.objects.close();
  }
}

/** Whether `dir` holds nothing (or is not there). */
async function isEmptyDir(dir: string): Promise<boolean> {
  return readdir(dir).then(
    (names) => names.length === 0,
    (e: unknown) => (errnoCode(e) === 'ENOENT' ? true : Promise.reject(e)),
  );
}

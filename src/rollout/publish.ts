/**
 * `gitfs rollout publish`: a release becomes the next commit of its channel branch. The tree
 * holds the payload (a kernel image as a chunked file under its own name, or a site directory
 * as `site/`) and the manifest `gitfs-release.json` (version, kind, SHA-256 and size of the
 * payload, kernel command line); the commit carries an SSH signature by a release key in git's
 * `gpgsig` header. Objects go into one pack; the branch moves by compare-and-swap once the pack
 * is durable, as for any commit.
 */
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { BranchName } from '../branches/ref-name.js';
import { readShallow } from '../branches/shallow.js';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { importDirectory } from '../files/importer.js';
import { storeFile } from '../files/store-file.js';
import { unstorableName } from '../objects/storable-name.js';
import { history } from '../files/history.js';
import { encodeCommit } from '../objects/commit.js';
import { toTreeEntry, type DirEntry } from '../objects/entry-names.js';
import { hashObject, type Oid } from '../objects/oid.js';
import { encodeTree, TreeModes } from '../objects/tree.js';
import { pointHeadIfDangling, signatureNow } from '../repo/commit-directory.js';
import type { Repository } from '../repo/repository.js';
import { MANIFEST_FILE, MANIFEST_FORMAT, renderManifest, siteListing, type ReleaseManifest } from './manifest.js';
import type { ReleaseKeyPair } from './release-key.js';
import { signCommit } from './signed-commit.js';
import { fileSha256, siteEntries } from './site-files.js';
import { readManifest } from './verify-release.js';

export const SITE_DIR = 'site';

export interface PublishOptions {
  readonly channel: BranchName;
  /** An image file (kind kernel) or a site directory (kind site). */
  readonly path: string;
  readonly version: string;
  readonly key: ReleaseKeyPair;
  readonly cmdline?: string;
  readonly message?: string;
}

export interface Published {
  readonly commit: Oid;
  readonly parent: Oid | undefined;
  readonly manifest: ReleaseManifest;
}

export function publishRelease(repo: Repository, o: PublishOptions): Promise<Published> {
  // Held from before the first object until the channel names them (src/repo/write-holds.ts).
  return repo.whileWriting(() => publishHeld(repo, o));
}

async function publishHeld(repo: Repository, o: PublishOptions): Promise<Published> {
  const abs = resolve(o.path);
  const st = await stat(abs).catch((e: unknown) => {
    throw new GitfsError(errnoCode(e) === 'ENOENT' ? ErrorCodes.BAD_ARGUMENT : ErrorCodes.IO, `cannot read ${abs}: ${(e as Error).message}`, { path: abs });
  });
  if (!st.isFile() && !st.isDirectory()) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${abs} is neither an image file nor a site directory`, { path: abs });
  if (st.isDirectory() && o.cmdline !== undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'a kernel command line goes with a kernel image, not a site');
  const parent = await repo.refs.resolve(o.channel);
  const taken = parent === undefined ? undefined : await releaseOfVersion(repo, parent, o.version);
  if (taken !== undefined) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `version ${o.version} was published on ${o.channel} already (${taken}); a version names one release: publish this one under a new version`, { version: o.version, commit: taken });
  }
  const writer = await repo.newPackWriter();
  let commit: Oid;
  let manifest: ReleaseManifest;
  try {
    const components = { sink: writer, chunker: repo.chunker, treeParams: repo.format.tree, chunkThreshold: repo.format.chunkThreshold };
    let payload: DirEntry;
    let measured: { sha256: string; size: number };
    if (st.isFile()) {
      const why = unstorableName(basename(abs), 'file');
      if (why !== undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `${abs}: git cannot store an image under this name (${why}); rename it`, { path: abs, reason: why });
      measured = await fileSha256(abs);
      payload = (await storeFile(abs, basename(abs), false, measured.size, components)).entry;
    } else {
      measured = siteListing(await siteEntries(abs));
      payload = { name: SITE_DIR, kind: 'dir', executable: false, oid: (await importDirectory(abs, components, { strict: true })).oid, chunked: false };
    }
    manifest = {
      format: MANIFEST_FORMAT,
      kind: st.isFile() ? 'kernel' : 'site',
      channel: o.channel,
      version: o.version,
      payload: payload.name,
      sha256: measured.sha256,
      size: measured.size,
      ...(o.cmdline === undefined ? {} : { cmdline: o.cmdline }),
      created: new Date(repo.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    };
    const manifestBytes = renderManifest(manifest);
    const manifestOid = await writer.writeHashed(hashObject('blob', manifestBytes), 'blob', manifestBytes);
    const tree = await writer.write('tree', encodeTree([{ mode: TreeModes.FILE, name: MANIFEST_FILE, oid: manifestOid }, toTreeEntry(payload)]));
    const who = signatureNow(repo);
    const message = `${(o.message ?? `${manifest.kind} ${manifest.version}`).trim()}\n`;
    const unsigned = encodeCommit({ tree, parents: parent === undefined ? [] : [parent], author: who, committer: who, extraHeaders: [], message });
    commit = await writer.write('commit', signCommit(unsigned, o.key));
  } catch (e) {
    await writer.abort();
    throw e;
  }
  await writer.finish();
  await repo.refs.update(o.channel, { expected: parent ?? null, next: commit, message: `rollout publish: ${manifest.kind} ${manifest.version}` });
  await pointHeadIfDangling(repo, o.channel);
  return { commit, parent, manifest };
}

/** How far back publish looks for a version already used on the channel. */
const VERSION_LOOKBACK = 4096;

/**
 * The release on the channel's first-parent history (from `head`, as far as this repository
 * holds it) that has `version`, if any. Hooks install by version, so a version used twice would
 * make the second release replace the first's files.
 */
async function releaseOfVersion(repo: Repository, head: Oid, version: string): Promise<Oid | undefined> {
  try {
    for await (const { oid } of history(repo.objects, [head], { firstParent: true, limit: VERSION_LOOKBACK, shallow: await readShallow(repo.gitDir) })) {
      const m = await readManifest(repo, oid).catch(() => undefined);
      if (m?.version === version) return oid;
    }
  } catch (e) {
    // History ends where this repository holds no more of it (a replica keeping K commits).
    if (!(e instanceof GitfsError && e.code === ErrorCodes.OBJECT_NOT_FOUND)) throw e;
  }
  return undefined;
}

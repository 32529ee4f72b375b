/**
 * What a node checks before it applies a release, in this order: the commit is signed by a
 * trusted release key (its signature covers the tree id, so every byte below it), the manifest
 * parses and names the channel the commit was found on, and the payload, reassembled from the
 * repository into the agent's directory, has the size and SHA-256 the manifest says. Only then
 * is there a path to hand to the apply hook.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BranchName } from '../branches/ref-name.js';
import { ErrorCodes, GitfsError } from '../errors.js';
import { exportEntry } from '../files/exporter.js';
import { fileContent } from '../files/file-content.js';
import { lookupPath, readCommit, rootEntry } from '../files/tree-reader.js';
import { decodeCommit } from '../objects/commit.js';
import type { Oid } from '../objects/oid.js';
import { readTyped } from '../objects/typed-read.js';
import type { Repository } from '../repo/repository.js';
import { fsyncDir, fsyncFile, fsyncTree, writeFileAtomic } from '../util/durable.js';
import { checkChannel, checkPayload, MANIFEST_FILE, parseManifest, siteListing, type ReleaseManifest } from './manifest.js';
import type { ReleasePublicKey } from './release-key.js';
import { verifyCommit } from './signed-commit.js';
import { siteEntries } from './site-files.js';

export interface VerifiedRelease {
  readonly manifest: ReleaseManifest;
  readonly signer: ReleasePublicKey;
  /** The reassembled payload: the image file, or the site directory. */
  readonly payload: string;
  /** The manifest, as a file beside it (for the hooks). */
  readonly manifestPath: string;
}

/** Where a release's files go in the agent's directory: named by commit, so a reused version never overwrites another's. */
export function releaseFiles(dir: string, commit: Oid): { image: string; site: string; manifest: string } {
  return { image: join(dir, `${commit}.img`), site: join(dir, `${commit}.site`), manifest: join(dir, `${commit}.json`) };
}

/** The manifest of a release commit, without checking anything else (to learn its version). */
export async function readManifest(repo: Repository, commit: Oid): Promise<ReleaseManifest> {
  return manifestIn(repo, commit, (await readCommit(repo.objects, commit)).tree);
}

/** Errors of a read that say this node could not read an object, not what the object is. */
const NOT_READ = [ErrorCodes.IO, ErrorCodes.OBJECT_NOT_FOUND, ErrorCodes.CORRUPT_OBJECT, ErrorCodes.CORRUPT_PACK] as const;

async function manifestIn(repo: Repository, commit: Oid, tree: Oid): Promise<ReleaseManifest> {
  // A tree that could not be read for this node's state (too many open files, a damaged copy, not
  // fetched yet) is thrown as it is; no such path, or a tree that is not one, is no manifest.
  const entry = await lookupPath(repo.objects, rootEntry(tree), MANIFEST_FILE).catch((e: unknown) => {
    if (!(e instanceof GitfsError) || NOT_READ.some((code) => e.code === code)) throw e;
    return undefined;
  });
  if (entry === undefined || entry.kind !== 'file' || entry.chunked) throw new GitfsError(ErrorCodes.BAD_MANIFEST, `release ${commit} has no ${MANIFEST_FILE}`, { commit });
  return parseManifest(await readTyped(repo.objects, entry.oid, 'blob'));
}

/** Checks `commit`, found on `channel`, and reassembles its payload under `dir` (created by the caller). */
export async function verifyRelease(repo: Repository, commit: Oid, channel: BranchName, trusted: readonly ReleasePublicKey[], dir: string): Promise<VerifiedRelease> {
  const content = await readTyped(repo.objects, commit, 'commit');
  const signer = verifyCommit(content, trusted);
  const tree = decodeCommit(content, commit).tree;
  const manifest = await manifestIn(repo, commit, tree);
  checkChannel(manifest, channel);
  const entry = await lookupPath(repo.objects, rootEntry(tree), manifest.payload);
  const files = releaseFiles(dir, commit);
  const manifestPath = files.manifest;
  await writeFileAtomic(manifestPath, `${JSON.stringify(manifest)}\n`);
  if (manifest.kind === 'kernel') {
    if (entry.kind !== 'file') throw new GitfsError(ErrorCodes.BAD_MANIFEST, `the kernel payload ${manifest.payload} is not a file`, { commit });
    const payload = files.image;
    const hash = createHash('sha256');
    let size = 0;
    const tmp = `${payload}.tmp`;
    await pipeline(
      (async function* () {
        for await (const piece of fileContent(repo.objects, entry)) {
          hash.update(piece);
          size += piece.length;
          yield piece;
        }
      })(),
      createWriteStream(tmp),
    );
    try {
      checkPayload(manifest, { sha256: hash.digest('hex'), size });
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    // Durable before the state says staged: after a power loss a torn image failed every try.
    await fsyncFile(tmp);
    await rename(tmp, payload);
    await fsyncDir(dirname(payload));
    return { manifest, signer, payload, manifestPath };
  }
  if (entry.kind !== 'dir') throw new GitfsError(ErrorCodes.BAD_MANIFEST, `the site payload ${manifest.payload} is not a directory`, { commit });
  const payload = files.site;
  await rm(payload, { recursive: true, force: true });
  await exportEntry(repo.objects, entry, payload);
  checkPayload(manifest, siteListing(await siteEntries(payload)));
  await fsyncTree(payload);
  await fsyncDir(dirname(payload));
  return { manifest, signer, payload, manifestPath };
}

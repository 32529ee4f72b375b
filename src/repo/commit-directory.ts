/**
 * `gitfs commit --from DIR`: one directory snapshot becomes the next commit of a branch.
 * Objects go into one new pack; the branch moves by compare-and-swap only after the pack is
 * durable, so a crash at any point leaves the branch at a complete commit.
 */
import { ErrorCodes, GitfsError, isGitfsError } from '../errors.js';
import { encodeCommit, type Signature } from '../objects/commit.js';
import type { Oid } from '../objects/oid.js';
import type { PackWriter, PackWriteStats } from '../objects/pack-writer.js';
import type { BranchName } from '../branches/ref-name.js';
import { importDirectory, type ImportReport } from '../files/importer.js';
import { ReplacedTree } from '../files/replaced-tree.js';
import { readCommit } from '../files/tree-reader.js';
import type { Repository } from './repository.js';

export interface CommitOptions {
  readonly message: string;
  readonly strict?: boolean;
  readonly allowEmpty?: boolean;
  readonly signal?: AbortSignal;
}

export interface CommitResult {
  /** The new commit, or undefined when the tree equals the parent's and allowEmpty is off. */
  readonly commit: Oid | undefined;
  readonly parent: Oid | undefined;
  readonly tree: Oid;
  readonly report: ImportReport;
  readonly stats: PackWriteStats;
}

export function signatureNow(repo: Repository): Signature {
  const ms = repo.clock.now();
  return { ...repo.identity, timestamp: Math.floor(ms / 1000), tzOffsetMinutes: 0 };
}

export async function commitDirectory(repo: Repository, branch: BranchName, from: string, options: CommitOptions): Promise<CommitResult> {
  // Held from before the first object until the branch names them (write-holds.ts).
  return repo.whileWriting(async () => {
    const parent = await repo.refs.resolve(branch);
    const writer = await repo.newPackWriter();
    let tree: Oid;
    let report: ImportReport;
    let commit: Oid | undefined;
    try {
      const parentTree = parent === undefined ? undefined : (await readCommit(repo.objects, parent)).tree;
      const replaced = parentTree === undefined ? undefined : new ReplacedTree(repo.objects, parentTree);
      ({ oid: tree, report } = await importDirectory(
        from,
        { sink: writer, chunker: repo.chunker, treeParams: repo.format.tree, chunkThreshold: repo.format.chunkThreshold },
        { ...options, gitlinkAt: replaced === undefined ? undefined : (path) => replaced.gitlinkAt(path) },
      ));
      const unchanged = parentTree === tree;
      if (!unchanged || options.allowEmpty === true) {
        commit = await writeCommit(repo, writer, tree, parent === undefined ? [] : [parent], options.message);
      }
    } catch (e) {
      await writer.abort();
      throw e;
    }
    await writer.finish();
    if (commit !== undefined) {
      try {
        await repo.refs.update(branch, { expected: parent ?? null, next: commit, message: `commit: ${firstLine(options.message)}` });
      } catch (e) {
        if (e instanceof GitfsError && e.code === ErrorCodes.REF_CONFLICT) {
          throw new GitfsError(
            ErrorCodes.REF_CONFLICT,
            `branch ${branch} moved while committing; your snapshot is kept as commit ${commit} (gitfs branch create NAME ${commit.slice(0, 12)} to keep it)`,
            { ...e.data, branch, commit },
            { cause: e },
          );
        }
        throw e;
      }
      await pointHeadIfDangling(repo, branch);
    }
    return { commit, parent, tree, report, stats: writer.stats };
  });
}

/** A bare repository's HEAD should name a branch that exists, so `git log` and `git clone` work. */
export async function pointHeadIfDangling(repo: Repository, branch: BranchName): Promise<void> {
  // A detached HEAD, or one outside refs/heads (git can make both), is left as it is: the commit
  // has landed, and reporting it failed would have a script make it again.
  const head = await repo.refs.readHead().catch((e: unknown) => {
    if (isGitfsError(e) && (e.code === ErrorCodes.BAD_REVISION || e.code === ErrorCodes.IO)) return undefined;
    throw e;
  });
  if (head !== undefined && (await repo.refs.resolve(head)) === undefined) await repo.refs.setHead(branch);
}

/** Writes a commit of `tree` by this repository's identity, now, with a normalized message. */
export function writeCommit(repo: Repository, writer: PackWriter, tree: Oid, parents: readonly Oid[], message: string): Promise<Oid> {
  const who = signatureNow(repo);
  return writer.write('commit', encodeCommit({ tree, parents: [...parents], author: who, committer: who, extraHeaders: [], message: normalizeMessage(message) }));
}

function normalizeMessage(message: string): string {
  const trimmed = message.replace(/\s+$/, '');
  return `${trimmed === '' ? 'gitfs commit' : trimmed}\n`;
}

/** A message's subject line, for reflog entries. */
export function firstLine(message: string): string {
  return message.split('\n')[0]?.trim() || 'gitfs commit';
}

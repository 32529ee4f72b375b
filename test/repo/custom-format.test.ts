import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { ChunkedFileReader } from '../../src/objects/chunked-file-reader.js';
import { commitDirectory } from '../../src/repo/commit-directory.js';
import { DEFAULT_FORMAT } from '../../src/repo/repo-format.js';
import { Repository } from '../../src/repo/repository.js';
import { lookupPath, readCommit, rootEntry } from '../../src/files/tree-reader.js';
import { isGitfsError } from '../../src/errors.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

describe('a repository with its own chunking parameters', function () {
  const tmp = tempDirs();
  after(() => tmp.cleanup());
  const format = { ...DEFAULT_FORMAT, chunker: { minSize: 64, avgSize: 256, maxSize: 1024 }, tree: { fanoutBits: 2, maxFanout: 8 }, chunkThreshold: 4096 };

  it('records them, uses them (deep chunk trees), and git accepts the result', async () => {
    const dir = join(tmp.make(), 'repo');
    const src = tmp.make();
    const data = pseudoRandomBytes(3 << 20, 'deep');
    writeFileSync(join(src, 'f.bin'), data);
    const repo = await Repository.init(dir, {}, format);
    try {
      const r = await commitDirectory(repo, parseBranchName('main'), src, { message: 'deep' });
      assert.ok(r.commit !== undefined);
      const entry = await lookupPath(repo.objects, rootEntry((await readCommit(repo.objects, r.commit)).tree), 'f.bin');
      assert.equal(entry.size, data.length);
      const reader = new ChunkedFileReader(repo.objects, entry.oid, data.length);
      assert.ok((await reader.read(1_000_000, 5000)).equals(data.subarray(1_000_000, 1_005_000)));
      let depth = 0;
      for (let node = entry.oid; ; depth++) {
        const first = execFileSync('git', [`--git-dir=${dir}`, 'ls-tree', node], { encoding: 'utf8' }).split('\n')[0] ?? '';
        if (!first.includes(' tree ')) break;
        node = first.split(/\s+/)[2] as typeof node;
      }
      assert.ok(depth >= 4, `chunk tree depth ${depth}`);
    } finally {
      await repo.close();
    }
    const reopened = await Repository.open(dir);
    assert.deepEqual(reopened.format, format);
    await reopened.close();
    assert.match(readFileSync(join(dir, 'config'), 'utf8'), /avgSize = 256/);
    execFileSync('git', [`--git-dir=${dir}`, 'fsck', '--strict'], { stdio: 'pipe' });
  });

  it('refuses a config whose format version is unknown or whose parameters are invalid', async () => {
    for (const [from, to] of [['formatVersion = 1', 'formatVersion = 2'], ['avgSize = 8192', 'avgSize = 8000'], ['algorithm = gear32-fastcdc-v1', 'algorithm = rabin']] as const) {
      const dir = join(tmp.make(), 'repo');
      await (await Repository.init(dir)).close();
      const config = join(dir, 'config');
      writeFileSync(config, readFileSync(config, 'utf8').replace(from, to));
      await assert.rejects(Repository.open(dir), (e: unknown) => isGitfsError(e, 'GITFS_NOT_A_REPOSITORY') || isGitfsError(e, 'GITFS_BAD_CONFIG'), to);
    }
  });

  it('refuses a git repository format above 1 and git extensions it does not know (another object format, reftable refs), and takes the harmless ones', async () => {
    const dir = join(tmp.make(), 'repo');
    await (await Repository.init(dir)).close();
    // Through --file: git itself refuses to run in a repository of format version 2.
    const git = (...args: string[]): void => void execFileSync('git', [args[0] as string, '--file', join(dir, 'config'), ...args.slice(1)]);
    const refused = async (what: string): Promise<void> =>
      assert.rejects(Repository.open(dir), (e: unknown) => isGitfsError(e, 'GITFS_NOT_A_REPOSITORY') && /not supported/.test((e as Error).message), what);
    git('config', 'core.repositoryformatversion', '2');
    await refused('format version 2');
    git('config', 'core.repositoryformatversion', '1');
    for (const [key, value] of [['extensions.objectFormat', 'sha256'], ['extensions.refStorage', 'reftable'], ['extensions.someFuture', 'true']] as const) {
      git('config', key, value);
      await refused(`${key} = ${value}`);
      git('config', '--unset', key);
    }
    for (const key of ['extensions.noop', 'extensions.preciousObjects', 'extensions.worktreeConfig']) git('config', key, 'true');
    git('config', 'extensions.objectFormat', 'sha1');
    await (await Repository.open(dir)).close();
  });
});

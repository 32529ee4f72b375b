/**
 * A committed symlink whose target is not UTF-8 (git stores any bytes): the working layer keeps
 * targets as text, so moving or touching such a link is refused (EINVAL) rather than storing an
 * altered target; a UTF-8 link moves as usual. Real repository, real git.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { Repository } from '../../src/repo/repository.js';
import { FsError } from '../../src/work/fs-error.js';
import { Workspace } from '../../src/work/workspace.js';
import { tempDirs } from '../support/tmp.js';

const main = parseBranchName('main');

function gitObject(gitDir: string, type: string, content: Buffer): string {
  return execFileSync('git', [`--git-dir=${gitDir}`, 'hash-object', '-t', type, '-w', '--stdin'], { input: content, encoding: 'utf8' }).trim();
}

describe('working layer: symlinks with targets that are not UTF-8', function () {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('refuses to move or touch them (EINVAL) and keeps their bytes; UTF-8 links move', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const raw = Buffer.from([0x74, 0xff, 0xfe]);
    const entries = [
      Buffer.concat([Buffer.from('120000 bad\0'), Buffer.from(gitObject(repo.gitDir, 'blob', raw), 'hex')]),
      Buffer.concat([Buffer.from('120000 good\0'), Buffer.from(gitObject(repo.gitDir, 'blob', Buffer.from('tæst')), 'hex')]),
    ];
    const tree = gitObject(repo.gitDir, 'tree', Buffer.concat(entries));
    const who = 'T <t@example.invalid> 1700000000 +0000';
    const commit = gitObject(repo.gitDir, 'commit', Buffer.from(`tree ${tree}\nauthor ${who}\ncommitter ${who}\n\nlinks\n`));
    execFileSync('git', [`--git-dir=${repo.gitDir}`, 'update-ref', 'refs/heads/main', commit]);
    const ws = await Workspace.open(repo);
    try {
      const fs = ws.fs(main);
      const einval = (e: unknown): boolean => e instanceof FsError && e.errno === 'EINVAL';
      await assert.rejects(fs.rename('bad', 'moved'), einval);
      await assert.rejects(fs.utimens('bad', 1_700_000_000_000, 1_700_000_000_000), einval);
      await fs.rename('good', 'renamed');
      const done = await ws.commit(main, 'renamed');
      assert.ok(done.commit !== undefined);
      const listing = execFileSync('git', [`--git-dir=${repo.gitDir}`, 'ls-tree', 'main'], { encoding: 'utf8' });
      assert.match(listing, /^120000 blob [0-9a-f]{40}\tbad$/m);
      assert.match(listing, /^120000 blob [0-9a-f]{40}\trenamed$/m);
      const bad = execFileSync('git', [`--git-dir=${repo.gitDir}`, 'cat-file', 'blob', 'main:bad']);
      assert.ok(bad.equals(raw), `target bytes ${bad.toString('hex')}`);
      assert.equal(execFileSync('git', [`--git-dir=${repo.gitDir}`, 'cat-file', 'blob', 'main:renamed'], { encoding: 'utf8' }), 'tæst');
    } finally {
      await ws.close();
      await repo.close();
    }
  });
});

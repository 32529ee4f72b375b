import assert from 'node:assert/strict';
import { execFileSync, execSync } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gitfsOk } from '../support/cli.js';
import { makeFixtureTree } from '../support/fixture-tree.js';
import { mountSuiteDirs, TestMount } from '../support/mount.js';

/** A real tree of some size: the TypeScript compiler's package (large files get chunked). */
const REAL_TREE = fileURLToPath(new URL('../../../node_modules/typescript', import.meta.url));

function sh(cmd: string): string {
  return execSync(cmd, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'], shell: '/bin/bash' });
}

/** Every regular file's SHA-256 and every symlink's target, by relative path. */
function manifest(dir: string): string {
  return sh(`cd '${dir}' && { find . -type f -print0 | sort -z | xargs -0 -r sha256sum; find . -type l -printf '%p -> %l\\n' | sort; find . -type d -empty | sort; }`);
}

function diffR(a: string, b: string): void {
  execFileSync('diff', ['-r', '--no-dereference', a, b], { stdio: 'pipe' });
}

describe('mount: a real tree copied in and out with cp -a, tar and rsync -a', function () {
  const tmp = mountSuiteDirs();

  it('round-trips byte for byte, through the mount, a commit and an export', async () => {
    const { base, repo, src, mnt } = tmp.place();
    cpSync(REAL_TREE, join(src, 'typescript'), { recursive: true });
    makeFixtureTree(join(src, 'fixture'));
    const want = manifest(src);
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'seed']);
    await TestMount.start(repo, mnt);
    const main = join(mnt, 'main');

    execFileSync('cp', ['-a', src, join(main, 'by-cp')]);
    mkdirSync(join(main, 'by-tar'));
    sh(`tar -C '${src}' -cf - . | tar -C '${main}/by-tar' -xf -`);
    execFileSync('rsync', ['-a', `${src}/`, join(main, 'by-rsync')]);
    for (const copy of ['by-cp', 'by-tar', 'by-rsync']) {
      diffR(src, join(main, copy));
      assert.equal(manifest(join(main, copy)), want, copy);
    }
    // rsync -a kept times and modes: a second run finds nothing to send
    const again = execFileSync('rsync', ['-a', '--itemize-changes', `${src}/`, join(main, 'by-rsync')], { encoding: 'utf8' });
    assert.equal(again.trim(), '', again);
    // the committed tree is read back through the mount too
    assert.equal(manifest(main).split('\n').filter((l) => l.includes('  ./typescript/')).length > 0, true);
    diffR(join(src, 'typescript'), join(main, 'typescript'));

    // out again, from the mount
    const out = join(base, 'out');
    mkdirSync(out);
    execFileSync('cp', ['-a', join(main, 'by-cp'), join(out, 'cp')]);
    sh(`tar -C '${main}/by-tar' -cf - . | { mkdir '${out}/tar' && tar -C '${out}/tar' -xf -; }`);
    execFileSync('rsync', ['-a', `${join(main, 'by-rsync')}/`, join(out, 'rsync')]);
    for (const copy of ['cp', 'tar', 'rsync']) assert.equal(manifest(join(out, copy)), want, `out ${copy}`);

    // and through a commit: the export equals the source
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '-m', 'copies']);
    for (const copy of ['by-cp', 'by-tar', 'by-rsync']) {
      const exported = join(base, `export-${copy}`);
      await gitfsOk(['export', '--repo', repo, `main:${copy}`, exported]);
      diffR(src, exported);
      assert.equal(manifest(exported), want, `export ${copy}`);
    }
    execFileSync('git', [`--git-dir=${repo}`, 'fsck', '--strict'], { stdio: 'pipe' });
  });
});

import assert from 'node:assert/strict';
import fs, { readFileSync } from 'node:fs';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { gitfsOk } from '../support/cli.js';
import { makeFixtureTree } from '../support/fixture-tree.js';
import { suiteDirs } from '../support/tmp.js';

describe('an independent git implementation (isomorphic-git) reads gitfs repositories', function () {
  const tmp = suiteDirs();

  it('log, trees, symlinks, chunked files and their chunks', async () => {
    const { repo, src } = tmp.place();
    makeFixtureTree(src);
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src, '-m', 'snapshot']);
    const [entry] = await git.log({ fs, gitdir: repo, ref: 'main' });
    assert.equal(entry?.commit.message, 'snapshot\n');
    const root = await git.readTree({ fs, gitdir: repo, oid: entry?.commit.tree ?? '' });
    const readme = root.tree.find((e) => e.path === 'README');
    assert.equal(Buffer.from((await git.readBlob({ fs, gitdir: repo, oid: readme?.oid ?? '' })).blob).toString(), 'hello gitfs\n');
    const etc = await git.readTree({ fs, gitdir: repo, oid: root.tree.find((e) => e.path === 'etc')?.oid ?? '' });
    const link = etc.tree.find((e) => e.path === 'link-relative');
    assert.equal(link?.mode, '120000');
    const images = await git.readTree({ fs, gitdir: repo, oid: root.tree.find((e) => e.path === 'images')?.oid ?? '' });
    const disk = images.tree.find((e) => e.path.startsWith('disk.img~gitfs~c'));
    assert.equal(disk?.path, 'disk.img~gitfs~c3145728');
    // Reassemble the chunked file by walking its chunk tree with isomorphic-git alone.
    const parts: Buffer[] = [];
    const walk = async (oid: string): Promise<void> => {
      for (const e of (await git.readTree({ fs, gitdir: repo, oid })).tree) {
        if (e.type === 'tree') await walk(e.oid);
        else parts.push(Buffer.from((await git.readBlob({ fs, gitdir: repo, oid: e.oid })).blob));
      }
    };
    await walk(disk?.oid ?? '');
    assert.ok(Buffer.concat(parts).equals(readFileSync(join(src, 'images/disk.img'))));
  });
});

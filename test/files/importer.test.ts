/** Importing a directory (importer.ts): depth, and width within a bounded heap. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitfsOk } from '../support/cli.js';
import { tempDirs } from '../support/tmp.js';

describe('files/importer: deep and wide trees', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('imports a tree 2 000 directories deep (it overflowed the stack), which git reads back', async () => {
    const base = tmp.make();
    const src = join(base, 's');
    const deep = join(src, ...Array.from({ length: 2000 }, () => 'd'));
    assert.ok(deep.length < 4096, `${deep.length} bytes`);
    try {
      mkdirSync(deep, { recursive: true });
      writeFileSync(join(deep, 'f'), 'bottom\n');
      const repo = join(base, 'r');
      await gitfsOk(['init', '--repo', repo]);
      await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
      const path = `${Array.from({ length: 2000 }, () => 'd').join('/')}/f`;
      assert.equal(execFileSync('git', [`--git-dir=${repo}`, 'show', `main:${path}`], { encoding: 'utf8' }), 'bottom\n');
    } finally {
      // Node's own recursive removal overflows its stack on a tree this deep.
      execFileSync('rm', ['-rf', src]);
    }
  });

  it('imports and exports a directory of 60 000 files within a 64 MiB heap (a task per file, all at once, held ~3 KB each: it ran out of heap at 96 MiB)', async () => {
    const base = tmp.make();
    const src = join(base, 's');
    mkdirSync(src);
    const count = 60_000;
    for (let i = 0; i < count; i++) writeFileSync(join(src, `f${i}`), `${i}\n`);
    const repo = join(base, 'r');
    const env = { ...process.env, NODE_OPTIONS: '--max-old-space-size=64' };
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src], { env });
    const listed = execFileSync('git', [`--git-dir=${repo}`, 'ls-tree', '--name-only', 'main'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(listed.split('\n').filter(Boolean).length, count);
    assert.equal(execFileSync('git', [`--git-dir=${repo}`, 'show', 'main:f59999'], { encoding: 'utf8' }), '59999\n');
    const out = join(base, 'out');
    await gitfsOk(['export', '--repo', repo, 'main', out], { env });
    assert.equal(readdirSync(out).length, count);
  });
});

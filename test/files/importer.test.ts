/** Importing a directory (importer.ts): depth. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitfsOk } from '../support/cli.js';
import { tempDirs } from '../support/tmp.js';

describe('files/importer: deep trees', function () {
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
});

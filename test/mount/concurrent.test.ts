import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { git, gitfsOk } from '../support/cli.js';
import { pseudoRandomBytes } from '../support/data.js';
import { mountSuiteDirs, TestMount } from '../support/mount.js';

const execFileP = promisify(execFile);

/** One worker process: writes, appends, renames and reads back its own files, and reads the shared big file. */
function worker(dir: string, name: string, big: string): Promise<{ stdout: string }> {
  const script = `
    set -e
    mkdir -p '${dir}/${name}'
    cd '${dir}/${name}'
    i=0
    while [ $i -lt 150 ]; do
      printf '%s-%d\\n' '${name}' $i > f$i
      printf 'more\\n' >> f$i
      mv f$i g$i
      i=$((i + 1))
    done
    i=0
    while [ $i -lt 150 ]; do
      [ "$(cat g$i)" = "$(printf '%s-%d\\nmore' '${name}' $i)" ] || { echo "bad g$i"; exit 1; }
      i=$((i + 1))
    done
    sha256sum '${big}' | cut -d' ' -f1
  `;
  return execFileP('sh', ['-c', script], { encoding: 'utf8' });
}

describe('mount: two processes using it at once', function () {
  const tmp = mountSuiteDirs();

  it('serves both correctly, and the result commits cleanly', async () => {
    const { repo, src, mnt } = tmp.place();
    const big = pseudoRandomBytes(6 << 20, 'concurrent big');
    writeFileSync(join(src, 'big.bin'), big);
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
    await TestMount.start(repo, mnt);
    const main = join(mnt, 'main');
    const want = (await execFileP('sha256sum', [join(src, 'big.bin')], { encoding: 'utf8' })).stdout.split(' ')[0];
    const [a, b] = await Promise.all([worker(main, 'alpha', join(main, 'big.bin')), worker(main, 'beta', join(main, 'big.bin'))]);
    assert.equal(a.stdout.trim(), want);
    assert.equal(b.stdout.trim(), want);
    assert.equal(readdirSync(join(main, 'alpha')).length, 150);
    assert.equal(readdirSync(join(main, 'beta')).length, 150);
    assert.equal(readFileSync(join(main, 'beta/g149'), 'utf8'), 'beta-149\nmore\n');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '-m', 'two writers']);
    assert.equal(git(repo, ['ls-tree', '-r', '--name-only', 'main', 'alpha', 'beta']).trim().split('\n').length, 300);
  });
});

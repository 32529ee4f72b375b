import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gitfsOk } from '../support/cli.js';
import { pseudoRandomBytes } from '../support/data.js';
import { mountSuiteDirs, TestMount } from '../support/mount.js';

function writeSynced(path: string, data: Buffer): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

describe('mount: kill -9 of the mount process', function () {
  const tmp = mountSuiteDirs();

  it('keeps every write and rename it acknowledged across kill -9, and the next mount shows it', async () => {
    const { repo, src, mnt } = tmp.place();
    execFileSync('sh', ['-c', `echo base > '${src}/base.txt'`]);
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
    const m = await TestMount.start(repo, mnt);
    const main = join(mnt, 'main');
    const big = pseudoRandomBytes(8 << 20, 'crash big');
    mkdirSync(join(main, 'dir'));
    writeSynced(join(main, 'dir/big.bin'), big);
    writeSynced(join(main, 'small.txt'), Buffer.from('small\n'));
    renameSync(join(main, 'small.txt'), join(main, 'renamed.txt'));
    writeSynced(join(main, 'base.txt'), Buffer.from('changed\n'));
    await m.kill();
    await TestMount.start(repo, mnt);
    assert.ok(readFileSync(join(main, 'dir/big.bin')).equals(big));
    assert.equal(readFileSync(join(main, 'renamed.txt'), 'utf8'), 'small\n');
    assert.ok(!existsSync(join(main, 'small.txt')));
    assert.equal(readFileSync(join(main, 'base.txt'), 'utf8'), 'changed\n');
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '-m', 'after crash']);
    execFileSync('git', [`--git-dir=${repo}`, 'fsck', '--strict'], { stdio: 'pipe' });
    assert.equal(execFileSync('git', [`--git-dir=${repo}`, 'show', 'main:renamed.txt'], { encoding: 'utf8' }), 'small\n');
  });

  it('leaves a consistent working layer when killed in the middle of a write storm', async () => {
    const { repo, src, mnt } = tmp.place();
    await gitfsOk(['init', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
    for (let round = 0; round < 3; round++) {
      const m = await TestMount.start(repo, mnt);
      // another process writes, renames and deletes files until the mount dies under it
      const storm = spawn('sh', ['-c', `cd '${mnt}/main' && i=0; while [ $i -lt 100000 ]; do mkdir -p d$((i % 7)) && head -c $((i * 37 % 70000)) /dev/urandom > d$((i % 7))/f$i && mv d$((i % 7))/f$i d$(((i + 1) % 7))/g$i && rm -f d$(((i + 3) % 7))/g$((i - 5)); i=$((i + 1)); done 2>/dev/null`], { stdio: 'ignore' });
      const exited = once(storm, 'exit');
      await sleep(400 + round * 300);
      await m.kill();
      storm.kill('SIGKILL');
      await exited;
    }
    await TestMount.start(repo, mnt);
    // every file listed is readable, its size matches its content
    let files = 0;
    for (const d of readdirSync(join(mnt, 'main'))) {
      for (const f of readdirSync(join(mnt, 'main', d))) {
        const p = join(mnt, 'main', d, f);
        assert.equal(readFileSync(p).length, Number(execFileSync('stat', ['-c', '%s', p], { encoding: 'utf8' })));
        files++;
      }
    }
    assert.ok(files > 0);
    await gitfsOk(['status', '--repo', repo]);
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '-m', 'after the storms']);
    execFileSync('git', [`--git-dir=${repo}`, 'fsck', '--strict'], { stdio: 'pipe' });
  });
});

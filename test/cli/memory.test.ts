import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { GITFS_BIN, gitfsOk } from '../support/cli.js';
import { suiteDirs } from '../support/tmp.js';
import { gitfsProcessEnv, NODE_FLAGS } from '../../src/cli/node-flags.js';

/** Writes `bytes` of AES-CTR keystream (incompressible, deterministic) without holding them. */
async function writeKeystream(path: string, bytes: number): Promise<void> {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16));
  const zeros = Buffer.alloc(8 << 20);
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < bytes; done += zeros.length) await fh.write(cipher.update(zeros.subarray(0, Math.min(zeros.length, bytes - done))));
  } finally {
    await fh.close();
  }
}

/** Peak resident set size (KiB) of a command, from GNU time. */
function peakRssKiB(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/time', ['-f', '%M', process.execPath, ...NODE_FLAGS, GITFS_BIN, ...args], { env: gitfsProcessEnv(process.env) }, (error, _stdout, stderr) => {
      if (error !== null) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(Number(stderr.trim().split('\n').pop()));
    });
  });
}

describe('memory stays bounded whatever the file size', function () {
  const tmp = suiteDirs();

  it('committing and reading back a 1 GiB file peak below 300 MiB RSS', async () => {
    const { repo, src } = tmp.place();
    await writeKeystream(join(src, 'big.bin'), 1 << 30);
    await gitfsOk(['init', '--repo', repo]);
    const commitKiB = await peakRssKiB(['commit', '--repo', repo, '--branch', 'big', '--from', src]);
    assert.ok(commitKiB < 300 * 1024, `commit peaked at ${(commitKiB / 1024).toFixed(0)} MiB`);
    const exportKiB = await peakRssKiB(['export', '--repo', repo, 'big', join(tmp.make(), 'out')]);
    assert.ok(exportKiB < 300 * 1024, `export peaked at ${(exportKiB / 1024).toFixed(0)} MiB`);
  });
});

/**
 * The walk of a closure (every commit and tree of a head, then the blob order pieces are cut
 * from), as a swarm node does it for a head committed here before serving it: one image of
 * pseudo-random data committed as a chunked file, then walked from the repository ROUNDS times in
 * one process (the first with V8's compiler still cold). Usage (after `make build`):
 *   node dist/bench/closure-walk.js [--mib 512] [--rounds 3]
 */
import { createCipheriv } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isBranchName } from '../src/branches/ref-name.js';
import { commitDirectory } from '../src/repo/commit-directory.js';
import { Repository } from '../src/repo/repository.js';
import { walkClosure } from '../src/swarm/closure.js';

const { values: opt } = parseArgs({ options: { mib: { type: 'string', default: '512' }, rounds: { type: 'string', default: '3' } }, strict: true });
const MIB = Number(opt.mib);
const ROUNDS = Number(opt.rounds);
if (!Number.isInteger(MIB) || MIB < 1 || MIB > 8192) throw new Error(`--mib must be an integer from 1 to 8192, not ${opt.mib}`);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 100) throw new Error(`--rounds must be an integer from 1 to 100, not ${opt.rounds}`);

const work = mkdtempSync(join(tmpdir(), 'gitfs-closure-walk-'));
try {
  const image = join(work, 'image');
  mkdirSync(image);
  // AES-128-CTR keystream of zeros, a fixed key: incompressible and the same every run.
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16, 2));
  const fd = openSync(join(image, 'disk.img'), 'w');
  const zeros = Buffer.alloc(1 << 20);
  for (let i = 0; i < MIB; i++) writeSync(fd, cipher.update(zeros));
  closeSync(fd);
  const branch = 'images/disk';
  if (!isBranchName(branch)) throw new Error('bad branch name');
  const repo = await Repository.init(join(work, 'repo'));
  try {
    const { commit } = await commitDirectory(repo, branch, image, { message: 'image' });
    if (commit === undefined) throw new Error('nothing committed');
    rmSync(image, { recursive: true });
    for (let round = 1; round <= ROUNDS; round++) {
      const started = performance.now();
      const closure = await walkClosure({ absent: (oids) => repo.objects.absent(oids), read: (o) => repo.objects.read(o) }, commit, 0);
      const ms = performance.now() - started;
      process.stdout.write(`round ${round}: ${ms.toFixed(0)} ms for ${closure.trees.length} trees and ${closure.blobs.length} blobs (${MIB} MiB)\n`);
    }
  } finally {
    await repo.close();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

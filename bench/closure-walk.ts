/**
 * The walk of a closure (every commit and tree of a head, then the blob order pieces are cut
 * from), as a swarm node does it for a head committed here before serving it: one image of
 * pseudo-random data committed as a chunked file, then walked from the repository ROUNDS times in
 * one process (the first with V8's compiler still cold). With `--versions N`, N versions of the
 * image are committed, each rewriting `--change-mib` of it with new bytes (a release that changed
 * that much), and the walk of the last with its whole history (a policy's default `history: all`)
 * is set beside the walk of the last alone (`history: 1`), of what the last adds to its parent
 * (by base, as a node holding the parent fetches it) and, from 6 versions, of what the last 5 add
 * to the version before them (a node that missed 4 releases): what every fetch of a new release
 * costs as the history grows. Usage (after `make build`):
 *   node dist/bench/closure-walk.js [--mib 512] [--rounds 3] [--versions 1] [--change-mib 0]
 */
import { createCipheriv } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isBranchName } from '../src/branches/ref-name.js';
import { commitDirectory } from '../src/repo/commit-directory.js';
import { Repository } from '../src/repo/repository.js';
import type { Oid } from '../src/objects/oid.js';
import { walkClosure } from '../src/swarm/closure.js';

const { values: opt } = parseArgs({
  options: { mib: { type: 'string', default: '512' }, rounds: { type: 'string', default: '3' }, versions: { type: 'string', default: '1' }, 'change-mib': { type: 'string', default: '0' } },
  strict: true,
});
const MIB = Number(opt.mib);
const ROUNDS = Number(opt.rounds);
const VERSIONS = Number(opt.versions);
const CHANGE_MIB = Number(opt['change-mib']);
if (!Number.isInteger(MIB) || MIB < 1 || MIB > 8192) throw new Error(`--mib must be an integer from 1 to 8192, not ${opt.mib}`);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 100) throw new Error(`--rounds must be an integer from 1 to 100, not ${opt.rounds}`);
if (!Number.isInteger(VERSIONS) || VERSIONS < 1 || VERSIONS > 1000) throw new Error(`--versions must be an integer from 1 to 1000, not ${opt.versions}`);
if (!Number.isInteger(CHANGE_MIB) || CHANGE_MIB < 0 || CHANGE_MIB > MIB) throw new Error(`--change-mib must be an integer from 0 to --mib, not ${opt['change-mib']}`);

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
    const commits: Oid[] = [];
    for (let v = 1; v <= VERSIONS; v++) {
      if (v > 1) {
        // The next release: CHANGE_MIB of new bytes at a place of its own.
        const fdv = openSync(join(image, 'disk.img'), 'r+');
        const at = ((v * 7919) % Math.max(1, MIB - CHANGE_MIB + 1)) * (1 << 20);
        for (let i = 0; i < CHANGE_MIB; i++) writeSync(fdv, cipher.update(zeros), 0, zeros.length, at + i * zeros.length);
        closeSync(fdv);
      }
      const { commit } = await commitDirectory(repo, branch, image, { message: `image ${v}` });
      if (commit === undefined) throw new Error(`version ${v} committed nothing`);
      commits.push(commit);
    }
    const commit = commits[VERSIONS - 1] as Oid;
    rmSync(image, { recursive: true });
    const source = { absent: (oids: readonly Oid[]) => repo.objects.absent(oids), read: (o: Oid) => repo.objects.read(o) };
    // By base: with the policy's history (all), the walk stops at the base.
    const byBase = (back: number): { what: string; history: number; base?: Oid } => ({ what: back === 1 ? 'what the last adds to its parent' : `what the last ${back} add to the version before them`, history: 0, base: commits[VERSIONS - 1 - back] as Oid });
    const scopes = [{ what: `all ${VERSIONS} versions`, history: 0 }, ...(VERSIONS > 1 ? [{ what: 'the last version', history: 1 }, byBase(1)] : []), ...(VERSIONS > 5 ? [byBase(5)] : [])];
    for (const scope of scopes) {
      for (let round = 1; round <= ROUNDS; round++) {
        globalThis.gc?.();
        const heapBefore = process.memoryUsage().heapUsed;
        const started = performance.now();
        const closure = await walkClosure(source, commit, scope.history, { base: scope.base });
        const ms = performance.now() - started;
        const heap = (process.memoryUsage().heapUsed - heapBefore) / (1 << 20);
        const what = VERSIONS > 1 ? `${scope.what}, ` : '';
        process.stdout.write(`round ${round}: ${what}${ms.toFixed(0)} ms for ${closure.trees.length} trees and ${closure.blobs.length} blobs (${MIB} MiB), heap +${heap.toFixed(0)} MiB\n`);
      }
    }
  } finally {
    await repo.close();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

/**
 * Self-healing (src/repo/repair.ts): the scrub's read of every pack (`scanStore`: SHA-1 and each
 * entry's CRC-32) beside git's own checks of the same packs (`git verify-pack`, which inflates and
 * hashes every object, and `git fsck`); every pack's index made again from the pack (`reindexPack`,
 * for an index the disk damaged) beside `git index-pack`; then one bit flipped in the pack and `repair` with a good
 * copy supplied by a second repository, beside `git repack -a -d`, which rewrites the same bytes.
 * The data: an image of `--mib` MiB (incompressible, as a disk image's used blocks are) and the
 * files of `--source` (default /usr/share), committed by gitfs. Warm: every run reads through the
 * page cache. Usage (after `make build`):
 *   node dist/bench/scrub.js [--mib 1024] [--source /usr/share] [--rounds 3]
 */
import { execFileSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { BranchName } from '../src/branches/ref-name.js';
import type { GitObject } from '../src/objects/object-store.js';
import type { Oid } from '../src/objects/oid.js';
import { reindexPack } from '../src/objects/pack-reindex.js';
import { commitDirectory } from '../src/repo/commit-directory.js';
import { repair } from '../src/repo/repair.js';
import { scanStore } from '../src/repo/store-scan.js';
import { writeKeystream } from './netns-bench.js';
import { Repository } from '../src/repo/repository.js';

const { values: opt } = parseArgs({
  options: { mib: { type: 'string', default: '1024' }, source: { type: 'string', default: '/usr/share' }, rounds: { type: 'string', default: '3' } },
  strict: true,
});
const MIB = Number(opt.mib);
const ROUNDS = Number(opt.rounds);
if (!Number.isInteger(MIB) || MIB < 1 || MIB > 65_536) throw new Error(`--mib must be an integer from 1 to 65536, not ${opt.mib}`);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 100) throw new Error(`--rounds must be an integer from 1 to 100, not ${opt.rounds}`);

const ms = async (work: () => unknown): Promise<number> => {
  const t = performance.now();
  await work();
  return performance.now() - t;
};
const git = (repo: string, args: readonly string[]): void => void execFileSync('git', ['--git-dir', repo, ...args], { stdio: 'ignore' });
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const row = (what: string, times: readonly number[], base: number): string => `| ${what} | ${median(times).toFixed(0)} ms | ${(median(times) / base).toFixed(2)}× |`;

const work = mkdtempSync(join(tmpdir(), 'gitfs-scrub-bench-'));
try {
  const tree = join(work, 'tree');
  cpSync(opt.source, join(tree, 'share'), { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(tree, 'images'), { recursive: true });
  writeKeystream(join(tree, 'images', 'disk.img'), 0, MIB, 7, true);
  const dir = join(work, 'repo');
  const repo = await Repository.init(dir);
  try {
    const made = await commitDirectory(repo, 'main' as BranchName, tree, { message: 'scrub bench' });
    if (made.commit === undefined) throw new Error('nothing committed');
    rmSync(tree, { recursive: true });
    const packs = readdirSync(join(dir, 'objects', 'pack')).filter((f) => f.endsWith('.idx'));
    const bytes = repo.objects.packs().reduce((n, p) => n + p.size, 0);
    console.log(`${packs.length} packs, ${(bytes / 2 ** 20).toFixed(0)} MiB, ${repo.objects.packs().reduce((n, p) => n + p.count, 0)} objects`);

    const scan: number[] = [];
    const verify: number[] = [];
    const fsck: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      scan.push(await ms(() => scanStore(repo)));
      verify.push(await ms(() => git(dir, ['verify-pack', ...packs.map((p) => join(dir, 'objects', 'pack', p))])));
      fsck.push(await ms(() => git(dir, ['fsck', '--strict', '--no-dangling'])));
    }
    const base = median(scan);
    console.log(`\n| check of every pack (warm, median of ${ROUNDS}) | time | vs gitfs |\n|---|---:|---:|`);
    console.log(row('gitfs scan (SHA-1, CRC-32 per entry)', scan, base));
    console.log(row('git verify-pack (inflate, hash every object)', verify, base));
    console.log(row('git fsck --strict', fsck, base));

    // Every index made again from its pack (what a repair does for a pack whose index the disk
    // damaged), beside `git index-pack` of the same pack; the bytes must be the index on disk.
    const reindex: number[] = [];
    const indexPack: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      let ours = 0;
      let theirs = 0;
      for (const p of repo.objects.packs()) {
        let made: Buffer | undefined;
        ours += await ms(async () => (made = await reindexPack(p.path, { maxObjectBytes: repo.objects.maxObjectBytes, resolveBase: () => Promise.resolve(undefined) })));
        if (made?.equals(readFileSync(p.path.replace(/\.pack$/, '.idx'))) !== true) throw new Error(`the index made again of ${p.name} is not the one on disk`);
        theirs += await ms(() => git(dir, ['index-pack', '-o', join(work, 'check.idx'), p.path]));
        rmSync(join(work, 'check.idx'));
      }
      reindex.push(ours);
      indexPack.push(theirs);
    }
    console.log(`\n| every index made again from its pack (warm, median of ${ROUNDS}) | time | vs gitfs |\n|---|---:|---:|`);
    console.log(row('gitfs reindexPack (one thread)', reindex, median(reindex)));
    console.log(row('git index-pack (its default threads)', indexPack, median(reindex)));

    // One bit flipped in the largest pack; a good copy in a second repository.
    const peerDir = join(work, 'peer');
    cpSync(dir, peerDir, { recursive: true });
    const peer = await Repository.open(peerDir);
    try {
      const largest = [...repo.objects.packs()].sort((a, b) => b.size - a.size)[0];
      if (largest === undefined) throw new Error('no pack');
      const fd = openSync(largest.path, 'r+');
      const at = Math.floor(largest.size / 2);
      const one = Buffer.alloc(1);
      readSync(fd, one, 0, 1, at);
      one[0] = (one[0] as number) ^ 0x01;
      writeSync(fd, one, 0, 1, at);
      closeSync(fd);
      const found = await scanStore(repo);
      const supplier = { name: 'the peer repository', supply: async (oids: readonly Oid[]) => new Map<Oid, GitObject>(await Promise.all(oids.map(async (o) => [o, await peer.objects.read(o)] as const))) };
      const t = await ms(() => repair(repo, [], found, supplier));
      const repack = await ms(() => git(peerDir, ['repack', '-a', '-d', '-q']));
      console.log(`\n| one flipped bit in a pack of ${(largest.size / 2 ** 20).toFixed(0)} MiB | time |\n|---|---:|`);
      console.log(`| gitfs repair (the object from a peer, the rest of the pack copied) | ${t.toFixed(0)} ms |`);
      console.log(`| git repack -a -d (every pack written again, of the good copy) | ${repack.toFixed(0)} ms |`);
      // The repair is complete: git fsck is clean, and the damaged pack gone from where git looks.
      git(dir, ['fsck', '--strict', '--no-dangling']);
      if (existsSync(largest.path)) throw new Error(`${largest.name} was not set aside`);
    } finally {
      await peer.close();
    }
  } finally {
    await repo.close();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

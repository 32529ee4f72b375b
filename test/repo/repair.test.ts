/**
 * Self-healing (src/repo/repair.ts, `gitfs fsck --repair`): a flipped bit in a pack is named
 * entry by entry; the object is got again (from another pack here, or from a supplier: here a
 * second real repository, in the cluster test the node daemon's peers), every other object of
 * the pack is copied, the damaged pack is set aside, and git fsck is clean again. What cannot be
 * had leaves the pack where it is, and nothing else is lost.
 */
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { GitObject } from '../../src/objects/object-store.js';
import type { Oid } from '../../src/objects/oid.js';
import type { ObjectSupplier } from '../../src/objects/promisor.js';
import { verifyPack } from '../../src/objects/pack-verify.js';
import { DAMAGED_DIR, recoverKilledRepair, setAsidePack } from '../../src/repo/damaged-dir.js';
import { repair } from '../../src/repo/repair.js';
import { scanStore } from '../../src/repo/store-scan.js';
import { Repository } from '../../src/repo/repository.js';
import { readUnhad, recordUnhad, UNHAD_MAX, unhadPath } from '../../src/repo/unhad.js';
import { Scrubber, scrubFilePath } from '../../src/node/scrub.js';
import { silentLogger, type Logger } from '../../src/util/log.js';
import { gitfs, gitfsOk } from '../support/cli.js';
import { waitFor } from '../support/cluster-nodes.js';
import { freeTcpPort, freeUdpPort, ServeProcess } from '../node/serve-process.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

const git = (repo: string, args: readonly string[]): string => execFileSync('git', ['--git-dir', repo, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Flips one bit inside the pack entry of `oid` (in the pack whose index is `idx`), 20 bytes in. */
function flipInEntry(repo: string, idx: string, oid: string): void {
  const line = git(repo, ['verify-pack', '-v', join(repo, 'objects/pack', idx)]).split('\n').find((l) => l.startsWith(oid));
  const offset = Number(line?.split(/\s+/)[4]);
  assert.ok(offset > 0, `${oid} in ${idx}`);
  const path = join(repo, 'objects/pack', idx.replace(/\.idx$/, '.pack'));
  const bytes = readFileSync(path);
  bytes[offset + 20] = (bytes[offset + 20] as number) ^ 0x01;
  writeFileSync(path, bytes);
}

/** A supplier that reads another real repository, and records what it was asked. */
function supplierOf(source: Repository, asked: Oid[] = []): ObjectSupplier {
  return {
    name: 'the peer repository',
    async supply(oids: readonly Oid[]): Promise<ReadonlyMap<Oid, GitObject>> {
      asked.push(...oids);
      return new Map(await Promise.all(oids.map(async (o) => [o, await source.objects.read(o)] as const)));
    },
  };
}

const indexes = (repo: string): string[] => readdirSync(join(repo, 'objects/pack')).filter((f) => f.endsWith('.idx'));

describe('repo: repair (self-healing)', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  /** A repository with one commit on main: victim.txt, other.txt, a chunked 3 MiB image; its ids. */
  async function committed(): Promise<{ repo: string; victim: Oid }> {
    const repo = join(tmp.make(), 'repo');
    await gitfsOk(['init', '--repo', repo]);
    const src = tmp.make();
    writeFileSync(join(src, 'victim.txt'), Buffer.alloc(50_000, 'v'));
    writeFileSync(join(src, 'other.txt'), 'fine\n');
    writeFileSync(join(src, 'disk.img'), pseudoRandomBytes(3 << 20, 'repair image'));
    await gitfsOk(['commit', '--repo', repo, '--branch', 'main', '--from', src]);
    return { repo, victim: git(repo, ['rev-parse', 'main:victim.txt']).trim() as Oid };
  }

  it('gets a damaged object from a supplier, rewrites the pack without the damage and sets it aside; git fsck is clean', async () => {
    const { repo, victim } = await committed();
    const peer = join(tmp.make(), 'peer');
    cpSync(repo, peer, { recursive: true });
    const [idx] = indexes(repo);
    flipInEntry(repo, idx as string, victim);
    const damagedName = (idx as string).replace(/\.idx$/, '');

    const found = await gitfs(['fsck', '--repo', repo]);
    assert.equal(found.code, 8, found.stdout);
    assert.match(found.stdout, new RegExp(`GITFS_CORRUPT_PACK ${damagedName}: checksum wrong, 1 entries fail their CRC-32: ${victim}`));
    assert.match(found.stdout, new RegExp(`GITFS_CORRUPT_OBJECT ${victim}`));

    // No daemon runs: nothing to get it from, and nothing else changes.
    const alone = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(alone.code, 8, alone.stdout);
    assert.match(alone.stdout, /not repaired \[supplier-down\]: the node daemon could not be asked: no node daemon runs/);
    assert.match(alone.stdout, new RegExp(`not repaired \\[no-good-copy\\]: ${damagedName}: stays, 1 of its objects could not be had \\(committing it again writes a good copy; then repair again\\): ${victim}`));
    assert.ok(existsSync(join(repo, 'objects/pack', `${damagedName}.pack`)), 'the damaged pack stays');
    assert.equal((await gitfsOk(['cat', '--repo', repo, 'main:other.txt'])), 'fine\n');

    const r = await Repository.open(repo);
    const source = await Repository.open(peer);
    const asked: Oid[] = [];
    try {
      const report = await repair(r, [victim], await scanStore(r), supplierOf(source, asked));
      assert.deepEqual(asked, [victim], 'only the damaged object is asked for');
      assert.deepEqual(report, { cachesSetAside: [], reindexed: [], healed: 1, supplied: 1, rewritten: [damagedName], setAside: [damagedName], looseSetAside: 0, left: [] });
    } finally {
      await r.close();
      await source.close();
    }
    assert.match(await gitfsOk(['fsck', '--repo', repo]), /: 0 problems\n$/);
    git(repo, ['fsck', '--strict', '--no-dangling']);
    assert.deepEqual(await gitfsOk(['cat', '--repo', repo, 'main:victim.txt']), 'v'.repeat(50_000));
    assert.deepEqual(readdirSync(join(repo, DAMAGED_DIR)).sort(), [`${damagedName}.idx`, `${damagedName}.pack`]);
    assert.equal(indexes(repo).includes(idx as string), false);
  });

  it('writes again what no copy mended once it is committed again: reads take the new copy at once, and the next repair mends the pack from it', async () => {
    const { repo, victim } = await committed();
    const [idx] = indexes(repo);
    flipInEntry(repo, idx as string, victim);
    const alone = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(alone.code, 8, alone.stdout);
    assert.deepEqual(readFileSync(unhadPath(repo), 'utf8'), `${victim}\n`, 'what no copy mends is listed');
    // The same content, committed again from elsewhere (another branch: main stays as it was).
    const src = tmp.make();
    writeFileSync(join(src, 'copy-of-victim.txt'), Buffer.alloc(50_000, 'v'));
    await gitfsOk(['commit', '--repo', repo, '--branch', 'again', '--from', src]);
    assert.deepEqual(await gitfsOk(['cat', '--repo', repo, 'main:victim.txt']), 'v'.repeat(50_000), 'read from the new copy');
    const fixed = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.equal(existsSync(unhadPath(repo)), false, 'nothing is listed any more');
    git(repo, ['fsck', '--strict', '--no-dangling']);
  });

  it('lists what a repair could not have and, of the ids listed before, those that still do not read; at most UNHAD_MAX ids; none: no file', async () => {
    const { repo, victim } = await committed();
    const other = git(repo, ['rev-parse', 'main:other.txt']).trim() as Oid;
    const absent = '1'.repeat(40) as Oid;
    // Listed before: one that reads (other.txt), one that does not (absent), a line that is no id; found now: victim.
    writeFileSync(unhadPath(repo), `${other}\n${absent}\nnot an id\n`);
    const r = await Repository.open(repo);
    try {
      await recordUnhad(repo, new Set([victim]), async (oids) => (await Promise.all(oids.map((o) => r.objects.read(o).then(() => [], () => [o])))).flat());
    } finally {
      await r.close();
    }
    assert.deepEqual(readFileSync(unhadPath(repo), 'utf8'), `${victim}\n${absent}\n`);
    const many = new Set(Array.from({ length: UNHAD_MAX + 5 }, (_, i) => i.toString(16).padStart(40, '0') as Oid));
    await recordUnhad(repo, many, async () => []);
    assert.equal((await readUnhad(repo)).size, UNHAD_MAX);
    await recordUnhad(repo, new Set(), async () => []);
    assert.equal(existsSync(unhadPath(repo)), false);
  });

  it('mends from a good copy in another pack with no daemon; a wrong trailer alone is a damaged pack, not opened by a new process, mended from the other copies', async () => {
    const { repo, victim } = await committed();
    const [first] = indexes(repo);
    // git writes every object again into a second pack, the first left in place.
    git(repo, ['repack', '-a', '-q']);
    assert.equal(indexes(repo).length, 2);
    flipInEntry(repo, first as string, victim);
    const damagedName = (first as string).replace(/\.idx$/, '');

    const fixed = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.match(fixed.stdout, new RegExp(`GITFS_CORRUPT_PACK ${damagedName}: checksum wrong, 1 entries fail their CRC-32: ${victim}\n`));
    assert.match(fixed.stdout, new RegExp(`repaired: 1 objects written again \\(0 through the node daemon\\), 1 damaged packs rewritten \\(1 set aside in `));
    assert.match(fixed.stdout, /checking again:\n[^]*: 0 problems\n$/);
    git(repo, ['fsck', '--strict', '--no-dangling']);

    // The trailer alone: every entry's CRC-32 holds, the checksum does not (seen by a database that
    // had the pack open already); a process started after it does not open the pack, whose every
    // object is then read from the other copies here, and the pack set aside.
    const r = await Repository.open(repo);
    let trailerOnly: string;
    try {
      const pack = r.objects.packs().find((p) => p.count > 1);
      assert.ok(pack !== undefined);
      trailerOnly = pack.name;
      const bytes = readFileSync(pack.path);
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x80;
      writeFileSync(pack.path, bytes);
      assert.deepEqual(await verifyPack(pack.path, pack.index), { checksumOk: false, damaged: [] });
    } finally {
      await r.close();
    }
    const again = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(again.code, 0, again.stdout);
    assert.match(again.stdout, new RegExp(`GITFS_CORRUPT_PACK ${trailerOnly}: checksum wrong, no entry fails its CRC-32 \\(not opened`));
    // Its objects, written again in the order of its index (as this pack, itself a rewrite, holds them), may make the very same pack: replaced in place.
    assert.match(again.stdout, /1 damaged packs rewritten \([01] set aside in /);
    git(repo, ['fsck', '--strict', '--no-dangling']);
  });

  it('a damaged pack written again under its own name (the same object written the same way) is replaced in place, not set aside', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    const peerDir = join(tmp.make(), 'peer');
    let peer: Repository | undefined;
    try {
      const w = await repo.newPackWriter();
      const blob = await w.write('blob', Buffer.from('one object, alone in its pack\n'.repeat(100)));
      const name = (await w.finish())?.names[0] as string;
      cpSync(repo.gitDir, peerDir, { recursive: true });
      peer = await Repository.open(peerDir);
      flipInEntry(repo.gitDir, `${name}.idx`, blob);
      const report = await repair(repo, [], await scanStore(repo), supplierOf(peer));
      assert.deepEqual(report, { cachesSetAside: [], reindexed: [], healed: 1, supplied: 1, rewritten: [name], setAside: [], looseSetAside: 0, left: [] });
      assert.deepEqual(indexes(repo.gitDir), [`${name}.idx`]);
      assert.equal(existsSync(join(repo.gitDir, DAMAGED_DIR)), false);
      assert.deepEqual(await scanStore(repo), { packs: [], loose: [], caches: [] });
      assert.equal((await repo.objects.read(blob)).content.toString(), 'one object, alone in its pack\n'.repeat(100));
      git(repo.gitDir, ['fsck', '--strict']);
    } finally {
      await repo.close();
      await peer?.close();
    }
  });

  it('a torn pack (cut short: not opened) and a damaged loose object are mended from good copies here; a killed set-aside is finished', async () => {
    const { repo, victim } = await committed();
    const [first] = indexes(repo);
    const torn = (first as string).replace(/\.idx$/, '');
    // Every object written again into a second pack; the victim also as a loose file, then damaged.
    git(repo, ['repack', '-a', '-q']);
    const loosePath = join(repo, 'objects', victim.slice(0, 2), victim.slice(2));
    mkdirSync(join(repo, 'objects', victim.slice(0, 2)), { recursive: true });
    writeFileSync(loosePath, deflateSync(Buffer.from(`blob 50000\0w${'v'.repeat(49_999)}`)));
    const packPath = join(repo, 'objects/pack', `${torn}.pack`);
    truncateSync(packPath, statSync(packPath).size - 100);

    const fixed = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.match(fixed.stdout, new RegExp(`GITFS_CORRUPT_PACK ${torn}: checksum wrong, \\d+ entries fail their CRC-32: [0-9a-f]{40}.* \\(not opened`));
    assert.match(fixed.stdout, new RegExp(`GITFS_CORRUPT_OBJECT ${victim}: its loose file does not hash to it`));
    assert.match(fixed.stdout, /1 damaged packs rewritten \(1 set aside in [^)]*\), 1 damaged loose files set aside\n/);
    assert.match(fixed.stdout, /checking again:\n[^]*: 0 problems\n$/);
    git(repo, ['fsck', '--strict', '--no-dangling']);
    assert.deepEqual(readdirSync(join(repo, DAMAGED_DIR)).sort(), [`loose-${victim}`, `${torn}.idx`, `${torn}.pack`]);

    // A repair killed between the two moves left the .pack behind: moved on once a minute old (by
    // its ctime, which the rename set), not before: it might be a writer's between its two renames.
    renameSync(join(repo, DAMAGED_DIR, `${torn}.pack`), packPath);
    assert.doesNotMatch(await gitfsOk(['fsck', '--repo', repo]), /killed repair/);
    const r = await Repository.open(repo);
    try {
      assert.equal(await recoverKilledRepair(r, Date.now() + 61_000), 1);
    } finally {
      await r.close();
    }
    assert.equal(existsSync(packPath), false);
    assert.deepEqual(readdirSync(join(repo, DAMAGED_DIR)).sort(), [`loose-${victim}`, `${torn}.idx`, `${torn}.pack`]);
    // A pack of that name in objects/pack/ with both its files set aside already is a new one: it stays.
    copyFileSync(join(repo, DAMAGED_DIR, `${torn}.pack`), packPath);
    const again = await Repository.open(repo);
    try {
      assert.equal(await recoverKilledRepair(again, Date.now() + 61_000), 0);
      assert.ok(existsSync(packPath));
      // Set aside in its turn, it does not write over what lies there under its name: that is renamed by the time.
      await setAsidePack(again, torn);
    } finally {
      await again.close();
    }
    const kept = readdirSync(join(repo, DAMAGED_DIR)).sort();
    assert.deepEqual(kept.map((f) => f.replace(/\.\d{13}$/, '.<ms>')), [`loose-${victim}`, `${torn}.idx.<ms>`, `${torn}.pack`, `${torn}.pack.<ms>`]);
  });

  it('with no other copy, a torn pack gives what of it is whole: every object when its trailer alone is wrong, all but the one cut when it is cut short', async () => {
    const { repo } = await committed();
    const [idx] = indexes(repo);
    const name = (idx as string).replace(/\.idx$/, '');
    const packPath = join(repo, 'objects/pack', `${name}.pack`);
    const original = readFileSync(packPath);
    const trailer = Buffer.from(original);
    trailer[trailer.length - 1] = (trailer[trailer.length - 1] as number) ^ 0x80;
    writeFileSync(packPath, trailer);
    const fixed = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.match(fixed.stdout, new RegExp(`GITFS_CORRUPT_PACK ${name}: checksum wrong, no entry fails its CRC-32 \\(not opened`));
    assert.match(fixed.stdout, /repaired: \d+ objects written again \(0 through the node daemon\), 1 damaged packs rewritten \(1 set aside in /);
    assert.match(fixed.stdout, /checking again:\n[^]*: 0 problems\n$/);
    git(repo, ['fsck', '--strict', '--no-dangling']);

    // Cut short by 100 bytes: the entry the cut runs through is lost (no copy anywhere), the rest is read again.
    const { repo: cut, victim } = await committed();
    const [cutIdx] = indexes(cut);
    const cutName = (cutIdx as string).replace(/\.idx$/, '');
    const cutPath = join(cut, 'objects/pack', `${cutName}.pack`);
    truncateSync(cutPath, statSync(cutPath).size - 100);
    const partly = await gitfs(['fsck', '--repair', '--repo', cut]);
    assert.equal(partly.code, 8, partly.stdout);
    assert.match(partly.stdout, new RegExp(`not repaired \\[no-good-copy\\]: ${cutName}: stays, 1 of its objects could not be had \\([^)]*\\): [0-9a-f]{40}\n`));
    assert.match(partly.stdout, /checking again:\n/);
    // The last entry gitfs writes is the root tree, which the cut took; the files' blobs read again.
    assert.equal(git(cut, ['cat-file', 'blob', victim]), 'v'.repeat(50_000));
    const entries = execFileSync('git', ['show-index'], { input: readFileSync(join(cut, 'objects/pack', cutIdx as string)), encoding: 'utf8' }).trim().split('\n').length;
    assert.match(partly.stdout, new RegExp(`repaired: ${entries - 1} objects written again \\(0 through the node daemon\\)`));
  });

  it('a delta whose base entry is damaged is resolved against the base\'s good copy elsewhere: one damaged base costs nothing more, with no daemon', async () => {
    const { repo } = await committed();
    for (let i = 0; i < 8; i++) {
      const src = tmp.make();
      writeFileSync(join(src, 'notes.txt'), `${'a line of notes that barely changes\n'.repeat(400)}edit ${i}\n`);
      await gitfsOk(['commit', '--repo', repo, '--branch', 'notes', '--from', src]);
    }
    git(repo, ['repack', '-a', '-d', '-f', '--depth=50', '-q']);
    const [idx] = indexes(repo);
    const name = (idx as string).replace(/\.idx$/, '');
    // A base with deltas on it (verify-pack -v: id type size packed offset [depth base]).
    const rows = git(repo, ['verify-pack', '-v', join(repo, 'objects/pack', idx as string)]).split('\n').map((l) => l.split(/\s+/));
    const bases = new Map<string, number>();
    for (const r of rows) if (r[6] !== undefined && /^[0-9a-f]{40}$/.test(r[6])) bases.set(r[6], (bases.get(r[6]) ?? 0) + 1);
    const [base] = [...bases].sort((a, b) => b[1] - a[1])[0] ?? [];
    assert.ok(base !== undefined && (bases.get(base) ?? 0) >= 2, `a base with deltas: ${JSON.stringify([...bases])}`);
    // Its good copy alone in another pack; then a bit flipped in its entry in the big one.
    execFileSync('git', ['--git-dir', repo, 'pack-objects', '-q', join(repo, 'objects/pack/pack')], { input: `${base}\n` });
    flipInEntry(repo, idx as string, base);
    const fixed = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.match(fixed.stdout, new RegExp(`GITFS_CORRUPT_PACK ${name}: checksum wrong, 1 entries fail their CRC-32: ${base}`));
    // Written again: the base, and every object whose delta chain runs through it.
    const baseOf = new Map(rows.filter((r) => r[6] !== undefined && /^[0-9a-f]{40}$/.test(r[6])).map((r) => [r[0] as string, r[6] as string]));
    const through = (oid: string): boolean => {
      for (let at = baseOf.get(oid); at !== undefined; at = baseOf.get(at)) if (at === base) return true;
      return false;
    };
    const onIt = [...baseOf.keys()].filter(through).length;
    assert.match(fixed.stdout, new RegExp(`repaired: ${1 + onIt} objects written again \\(0 through the node daemon\\), 1 damaged packs rewritten \\(1 set aside in [^)]*\\)\\n`));
    assert.doesNotMatch(fixed.stdout, /not repaired/);
    git(repo, ['fsck', '--strict', '--no-dangling']);
  });

  it('a damaged index is made again from its pack with no daemon, as git wrote it (deltas too); with the pack damaged as well, both stay and fsck says why', async () => {
    const { repo, victim } = await committed();
    // git packs everything again with deltas (OFS_DELTA chains), beside gitfs's chunked image.
    git(repo, ['repack', '-a', '-d', '-f', '-q']);
    const [idx] = indexes(repo);
    const name = (idx as string).replace(/\.idx$/, '');
    const idxPath = join(repo, 'objects/pack', idx as string);
    const good = readFileSync(idxPath);
    const flipped = Buffer.from(good);
    // A bit of one entry's CRC-32: the index's checksum fails, and no reader opens the pack.
    flipped[8 + 1024 + 20 * 3] = (flipped[8 + 1024 + 20 * 3] as number) ^ 0x04;
    writeFileSync(idxPath, flipped);
    const found = await gitfs(['fsck', '--repo', repo]);
    assert.equal(found.code, 8, found.stdout);
    assert.match(found.stdout, new RegExp(`GITFS_CORRUPT_PACK ${name}: its index cannot be read through: pack index .*checksum mismatch`));

    const fixed = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.match(fixed.stdout, new RegExp(`made again from their packs: the damaged indexes of ${name} \\(the damaged ones kept in `));
    assert.match(fixed.stdout, /repaired: 0 objects written again \(0 through the node daemon\), 0 damaged packs rewritten/);
    assert.match(fixed.stdout, /checking again:\n[^]*: 0 problems\n$/);
    assert.ok(readFileSync(idxPath).equals(good), 'the index git wrote, byte for byte');
    assert.ok(readFileSync(join(repo, DAMAGED_DIR, `${name}.bad-idx`)).equals(flipped), 'the damaged index is kept');
    git(repo, ['fsck', '--strict', '--no-dangling']);
    assert.equal(await gitfsOk(['cat', '--repo', repo, 'main:victim.txt']), 'v'.repeat(50_000));

    // The pack damaged too: its index cannot be made from it, and nothing moves.
    flipInEntry(repo, idx as string, victim);
    writeFileSync(idxPath, flipped);
    const stays = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(stays.code, 8, stays.stdout);
    assert.match(stays.stdout, new RegExp(`not repaired \\[index-unmade\\]: ${name}: stays, its index is damaged \\(.*checksum mismatch\\) and cannot be made again from the pack: .*(does not inflate|checksum does not match)`));
    assert.ok(readFileSync(idxPath).equals(flipped), 'the index stays as it was');
    assert.ok(existsSync(join(repo, 'objects/pack', `${name}.pack`)));
  });

  it('git caches that fail their checksum (commit-graph and its chain, multi-pack-index, .rev, .bitmap) fail git fsck; they are named and set aside, and git fsck is clean', async () => {
    const { repo } = await committed();
    git(repo, ['-c', 'pack.writeReverseIndex=true', 'repack', '-a', '-d', '-b', '-q']);
    git(repo, ['commit-graph', 'write', '--reachable']);
    git(repo, ['multi-pack-index', 'write']);
    const [idx] = indexes(repo);
    const name = (idx as string).replace(/\.idx$/, '');
    const caches = ['objects/info/commit-graph', 'objects/pack/multi-pack-index', `objects/pack/${name}.rev`, `objects/pack/${name}.bitmap`];
    for (const c of caches) {
      const bytes = readFileSync(join(repo, c));
      bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0x08;
      writeFileSync(join(repo, c), bytes);
    }
    assert.throws(() => git(repo, ['fsck', '--no-dangling']), 'git fsck fails on them');
    const found = await gitfs(['fsck', '--repo', repo]);
    assert.equal(found.code, 8, found.stdout);
    for (const c of caches) assert.match(found.stdout, new RegExp(`GITFS_CORRUPT_CACHE ${c}: its checksum does not match its content\n`));
    const fixed = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.match(fixed.stdout, /set aside in [^:]*: git's damaged caches /);
    assert.match(fixed.stdout, /checking again:\n[^]*: 0 problems\n$/);
    assert.deepEqual(readdirSync(join(repo, DAMAGED_DIR)).sort(), ['commit-graph', 'multi-pack-index', `${name}.bitmap`, `${name}.rev`]);
    git(repo, ['fsck', '--strict', '--no-dangling']);

    // A layer of a commit-graph chain: the chain goes whole; git writes it again.
    git(repo, ['commit-graph', 'write', '--reachable', '--split=no-merge']);
    const graphs = join(repo, 'objects/info/commit-graphs');
    const layer = readdirSync(graphs).find((f) => f.endsWith('.graph')) as string;
    const bytes = readFileSync(join(graphs, layer));
    bytes[100] = (bytes[100] as number) ^ 0x01;
    writeFileSync(join(graphs, layer), bytes);
    const chain = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(chain.code, 0, chain.stdout);
    assert.match(chain.stdout, new RegExp(`GITFS_CORRUPT_CACHE objects/info/commit-graphs: its layer ${layer}: its checksum does not match its content\n`));
    assert.equal(existsSync(graphs), false);
    assert.ok(readdirSync(join(repo, DAMAGED_DIR, 'commit-graphs')).includes(layer));
    git(repo, ['fsck', '--strict', '--no-dangling']);
    git(repo, ['commit-graph', 'write', '--reachable']);
    assert.match(await gitfsOk(['fsck', '--repo', repo]), /: 0 problems\n$/);
  });

  it('a damaged multi-pack-index goes first, so the damaged pack it kept in place is rewritten; a cruft pack gets a new .mtimes and stays one; a cache git wrote anew since the scan stays', async () => {
    const { repo, victim } = await committed();
    const [first] = indexes(repo);
    const damagedName = (first as string).replace(/\.idx$/, '');
    git(repo, ['repack', '-a', '-q']);
    git(repo, ['multi-pack-index', 'write']);
    flipInEntry(repo, first as string, victim);
    const midx = join(repo, 'objects/pack/multi-pack-index');
    const bytes = readFileSync(midx);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0x08;
    writeFileSync(midx, bytes);
    const fixed = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.match(fixed.stdout, /git's damaged caches objects\/pack\/multi-pack-index /);
    assert.match(fixed.stdout, /1 damaged packs rewritten \(1 set aside in /);
    assert.equal(existsSync(join(repo, 'objects/pack', `${damagedName}.pack`)), false);
    git(repo, ['fsck', '--strict', '--no-dangling']);

    // A cruft pack (git gc --cruft keeps an unreachable blob there) whose .mtimes is damaged.
    execFileSync('git', ['--git-dir', repo, 'hash-object', '-w', '--stdin'], { input: 'unreachable\n' });
    git(repo, ['gc', '--cruft', '--prune=never', '-q']);
    const mtimes = readdirSync(join(repo, 'objects/pack')).find((f) => f.endsWith('.mtimes')) as string;
    assert.ok(mtimes !== undefined, 'git wrote a cruft pack');
    const good = readFileSync(join(repo, 'objects/pack', mtimes));
    const flipped = Buffer.from(good);
    flipped[13] = (flipped[13] as number) ^ 0x40;
    writeFileSync(join(repo, 'objects/pack', mtimes), flipped);
    const cruft = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(cruft.code, 0, cruft.stdout);
    assert.match(cruft.stdout, new RegExp(`GITFS_CORRUPT_CACHE objects/pack/${mtimes}: its checksum does not match its content\n`));
    const fresh = readFileSync(join(repo, 'objects/pack', mtimes));
    assert.equal(fresh.length, good.length);
    assert.ok(fresh.subarray(0, 12).equals(good.subarray(0, 12)) && fresh.subarray(-40, -20).equals(good.subarray(-40, -20)), 'its header and the pack checksum as git wrote them');
    assert.ok(readFileSync(join(repo, DAMAGED_DIR, mtimes)).equals(flipped), 'the damaged one is kept');
    const r = await Repository.open(repo);
    try {
      assert.ok(r.objects.packs().some((p) => p.cruft), 'still a cruft pack');
      assert.deepEqual((await scanStore(r)).caches, []);

      // Damaged at the scan, written anew by git before the repair: nothing is moved.
      const graph = join(repo, 'objects/info/commit-graph');
      git(repo, ['commit-graph', 'write', '--reachable']);
      const graphBytes = readFileSync(graph);
      graphBytes[graphBytes.length >> 1] = (graphBytes[graphBytes.length >> 1] as number) ^ 0x02;
      writeFileSync(graph, graphBytes);
      const found = await scanStore(r);
      assert.deepEqual(found.caches.map((c) => c.path), ['objects/info/commit-graph']);
      rmSync(graph);
      git(repo, ['commit-graph', 'write', '--reachable']);
      const report = await repair(r, [], found, undefined);
      assert.deepEqual([report.cachesSetAside, report.left], [[], []]);
      assert.equal(existsSync(join(repo, DAMAGED_DIR, 'commit-graph')), false);
    } finally {
      await r.close();
    }
  });

  it('where git keeps a multi-pack-index, the good copies are written but the damaged pack stays, and fsck says why', async () => {
    const { repo, victim } = await committed();
    const [first] = indexes(repo);
    git(repo, ['repack', '-a', '-q']);
    git(repo, ['multi-pack-index', 'write']);
    flipInEntry(repo, first as string, victim);
    const r = await gitfs(['fsck', '--repair', '--repo', repo]);
    assert.equal(r.code, 8, r.stdout);
    assert.match(r.stdout, new RegExp(`not repaired \\[packs-stay\\]: ${(first as string).replace(/\.idx$/, '')}: stays \\(the good copies of its damaged objects are written\\): git keeps a multi-pack-index`));
    assert.ok(existsSync(join(repo, 'objects/pack', first as string)));
  });

  it('a scrub goes a step at a time (here a pack each), mending as it goes, and a pass cut short by a restart goes on where it was', async () => {
    const { repo, victim } = await committed();
    const [first] = indexes(repo);
    git(repo, ['repack', '-a', '-q']);
    for (const i of [1, 2]) {
      const src = tmp.make();
      writeFileSync(join(src, `more-${i}.txt`), `more ${i}\n`);
      await gitfsOk(['commit', '--repo', repo, '--branch', `more-${i}`, '--from', src]);
    }
    flipInEntry(repo, first as string, victim);
    const events: Array<{ event: string; fields: Record<string, unknown> }> = [];
    const log: Logger = { log: (_level, event, fields = {}) => void events.push({ event, fields }), child: () => log };
    const now = Date.now();
    const clock = { now: () => now };
    const signal = new AbortController().signal;
    const passOnDisk = (): { done: string[] } | undefined => (JSON.parse(readFileSync(scrubFilePath(repo), 'utf8')) as { pass?: { done: string[] } }).pass;
    const r = await Repository.open(repo);
    try {
      const packs = r.objects.packs().length;
      assert.equal(packs, 4);
      const first = await Scrubber.load(r, 1000, clock, 1);
      await first.run(undefined, new Set(), log, signal);
      assert.equal(passOnDisk()?.done.length, 1);
      assert.equal(first.due(now), true, 'the next step is due at once');
      // A restart: the pass goes on from the file, a pack a step, the first not read again.
      const again = await Scrubber.load(r, 1000, clock, 1);
      for (let step = 2; step <= packs; step++) {
        await again.run(undefined, new Set(), log, signal);
        if (step < packs) assert.equal(passOnDisk()?.done.length, step);
      }
      const scrubbed = events.filter((e) => e.event === 'scrubbed');
      assert.deepEqual(scrubbed.map((e) => [e.fields['packs'], e.fields['damaged']]), [[packs, 1]], JSON.stringify(events));
      const repaired = events.find((e) => e.event === 'repaired');
      assert.deepEqual([repaired?.fields['healed'], repaired?.fields['left']], [1, []], JSON.stringify(repaired));
      assert.deepEqual(JSON.parse(readFileSync(scrubFilePath(repo), 'utf8')), { at: now, packs, damaged: 1 });
      assert.equal(again.due(now + 999), false);
    } finally {
      await r.close();
    }
    git(repo, ['fsck', '--strict', '--no-dangling']);
  });

  it('gitfs serve scrubs every scrub.everyMs: a damaged pack is found and mended, and the time of the last scrub is kept across restarts', async () => {
    const { repo, victim } = await committed();
    const [first] = indexes(repo);
    git(repo, ['repack', '-a', '-q']);
    flipInEntry(repo, first as string, victim);
    const damagedName = (first as string).replace(/\.idx$/, '');
    writeFileSync(join(repo, 'gitfs', 'node.json'), JSON.stringify({ scrub: { everyMs: 1000 } }));
    await gitfsOk(['cluster', 'init', '--repo', repo]);
    const env = { GITFS_MULTICAST: 'off', GITFS_ADVERTISE: '127.0.0.1', GITFS_SERVICE_ADDRESS: '127.0.0.1', GITFS_MULTICAST_PORT: String(await freeUdpPort()), GITFS_SERVICE_PORT: String(await freeTcpPort()) };
    const node = await ServeProcess.start('scrubbing node', repo, env);
    try {
      const repaired = await waitFor('a repair', 30_000, () => node.find('repaired')[0], { diag: () => node.tail() });
      assert.deepEqual([repaired['healed'], repaired['setAside'], repaired['left']], [1, [damagedName], []], JSON.stringify(repaired));
      assert.deepEqual(node.find('damaged-packs')[0]?.['packs'], [damagedName]);
      await waitFor('a clean scrub after it', 30_000, () => node.find('scrubbed', { damaged: 0 })[0], { diag: () => node.tail() });
    } finally {
      await node.stop();
    }
    git(repo, ['fsck', '--strict', '--no-dangling']);
    assert.deepEqual(readdirSync(join(repo, DAMAGED_DIR)).sort(), [`${damagedName}.idx`, `${damagedName}.pack`]);

    // The next scrub is due a period after the last one kept, whenever the daemon starts.
    const at = (JSON.parse(readFileSync(scrubFilePath(repo), 'utf8')) as { at: number }).at;
    const r = await Repository.open(repo);
    try {
      const week = 7 * 86_400_000;
      const scrubber = await Scrubber.load(r, week, { now: () => at + 1000 });
      assert.deepEqual([scrubber.due(at + week - 1), scrubber.due(at + week)], [false, true]);
      const late = await Scrubber.load(r, week, { now: () => at + 3 * week });
      assert.deepEqual([late.due(at + 3 * week + 3_600_000 - 1), late.due(at + 3 * week + 3_600_000)], [false, true], 'overdue: an hour after the start, not at once');
      for (const torn of ['torn', 'null', '[1]']) {
        writeFileSync(scrubFilePath(repo), torn);
        const fresh = await Scrubber.load(r, week, { now: () => at });
        assert.deepEqual([fresh.due(at + 3_600_000 - 1), fresh.due(at + 3_600_000)], [false, true], `never scrubbed (or unreadable: ${torn}): an hour after the start`);
      }

      // A pass that leaves damage (no good copy anywhere) is tried again 6 hours later, after a restart too, not a period after the last clean one.
      const lone = await committed();
      const [idx] = indexes(lone.repo);
      flipInEntry(lone.repo, idx as string, lone.victim);
      writeFileSync(scrubFilePath(lone.repo), JSON.stringify({ at: at - 3 * 86_400_000, packs: 1, damaged: 0 }));
      const l = await Repository.open(lone.repo);
      try {
        const t = at + 60_000;
        await (await Scrubber.load(l, week, { now: () => t })).run(undefined, new Set(), silentLogger, new AbortController().signal);
        assert.equal((JSON.parse(readFileSync(scrubFilePath(lone.repo), 'utf8')) as { retryAt?: number }).retryAt, t + 6 * 3_600_000);
        const restarted = await Scrubber.load(l, week, { now: () => t + 3_600_000 });
        assert.deepEqual([restarted.due(t + 6 * 3_600_000 - 1), restarted.due(t + 6 * 3_600_000)], [false, true]);
      } finally {
        await l.close();
      }
    } finally {
      await r.close();
    }
  });
});

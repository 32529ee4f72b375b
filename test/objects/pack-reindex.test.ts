/**
 * A pack's index made again from the pack alone (src/objects/pack-reindex.ts): byte for byte the
 * index git wrote, for git's packs with OFS_DELTA chains and with REF_DELTAs, and for a pack git
 * does not make (a REF_DELTA whose base is a delta later in the pack, a base in no entry of it);
 * a pack damaged itself is refused with GITFS_CORRUPT_PACK, never indexed.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import type { GitObject } from '../../src/objects/object-store.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { reindexPack } from '../../src/objects/pack-reindex.js';
import { Repository } from '../../src/repo/repository.js';
import { compressibleBytes, pseudoRandomBytes } from '../support/data.js';
import { tempDir } from '../support/tmp.js';
import { makeDelta, makeRepo, packFiles, packEntryTypes, writeRawPack, type GitRepo } from './git-fixture.js';

const LIMIT = 64 << 20;
const noBase = (): Promise<undefined> => Promise.resolve(undefined);

/** A repository with 12 commits of a few growing text files and a binary, packed by git with deltas (OFS_DELTA unless `refDeltas`). */
function gitPack(refDeltas: boolean): { repo: GitRepo; idx: string } {
  const repo = makeRepo('reindex');
  for (let i = 0; i < 12; i++) {
    repo.write('notes.txt', compressibleBytes(20_000 + i * 500, 'notes').toString('latin1') + `edit ${i}\n`);
    repo.write(`dir/file-${i % 3}.txt`, `line ${i}\n`.repeat(200 + i));
    repo.write('image.bin', Buffer.concat([pseudoRandomBytes(50_000, 'image'), Buffer.from(`v${i}`)]));
    repo.commit(`commit ${i}`);
  }
  if (refDeltas) {
    // pack-objects without --delta-base-offset writes REF_DELTAs; index-pack writes git's index of it.
    const list = repo.git(['rev-list', '--objects', '--all']);
    const name = repo.gitText(['pack-objects', '--window=10', '--depth=10', 'objects/pack/pack'].map((a) => (a.startsWith('objects') ? `${repo.gitDir}/${a}` : a)), list);
    return { repo, idx: `${repo.gitDir}/objects/pack/pack-${name}.idx` };
  }
  repo.git(['repack', '-a', '-d', '-f', '--window=10', '--depth=10', '-q']);
  const [idx] = packFiles(repo.gitDir);
  return { repo, idx: idx as string };
}

async function refusal(path: string): Promise<string> {
  try {
    await reindexPack(path, { maxObjectBytes: LIMIT, resolveBase: noBase });
  } catch (e) {
    assert.ok(isGitfsError(e, ErrorCodes.CORRUPT_PACK), `CORRUPT_PACK, got ${String(e)}`);
    return e.message;
  }
  return assert.fail('a damaged pack was indexed');
}

describe('objects: a pack index made again from its pack (pack-reindex.ts)', function () {
  this.timeout(60_000);

  for (const refDeltas of [false, true]) {
    it(`writes the index git wrote, byte for byte, for git's pack with ${refDeltas ? 'REF_DELTA' : 'OFS_DELTA'} chains`, async () => {
      const { repo, idx } = gitPack(refDeltas);
      const kinds = new Set(packEntryTypes(repo, idx).map((e) => e.rawType));
      assert.ok(kinds.has(refDeltas ? 7 : 6), `the pack holds ${refDeltas ? 'REF' : 'OFS'}_DELTA entries: ${[...kinds].join(', ')}`);
      const made = await reindexPack(idx.replace(/\.idx$/, '.pack'), { maxObjectBytes: LIMIT, resolveBase: noBase });
      assert.ok(made.equals(readFileSync(idx)), 'the same bytes as git index-pack');
    });
  }

  it('resolves a REF_DELTA whose base is a delta later in the pack, and one whose base only the resolver has', async () => {
    const repo = makeRepo('reindex-raw', true);
    const blob = (text: string): { oid: Oid; content: Buffer } => ({ oid: hashObject('blob', Buffer.from(text)), content: Buffer.from(text) });
    const base = blob('base '.repeat(300));
    const middle = blob(`${'base '.repeat(300)}middle`);
    const top = blob(`${'base '.repeat(300)}middle top`);
    const outside = blob('outside '.repeat(100));
    const fromOutside = blob(`${'outside '.repeat(100)}!`);
    const path = writeRawPack(`${repo.gitDir}/objects/pack`, [
      { oid: top.oid, type: 'ref', base: middle.oid, delta: makeDelta(middle.content, top.content) },
      { oid: fromOutside.oid, type: 'ref', base: outside.oid, delta: makeDelta(outside.content, fromOutside.content) },
      { oid: middle.oid, type: 'ref', base: base.oid, delta: makeDelta(base.content, middle.content) },
      { oid: base.oid, type: 'blob', content: base.content },
    ]);
    const asked: Oid[] = [];
    const resolveBase = (oid: Oid): Promise<GitObject | undefined> => {
      asked.push(oid);
      return Promise.resolve(oid === outside.oid ? { type: 'blob', content: outside.content } : undefined);
    };
    const made = await reindexPack(`${path}.pack`, { maxObjectBytes: LIMIT, resolveBase });
    assert.ok(made.equals(readFileSync(`${path}.idx`)), 'the index the pack was written with');
    assert.deepEqual(asked, [outside.oid], 'only the base no entry makes is asked for, once');
    // Without the outside base, that delta cannot be named: refused, not indexed without it.
    assert.match(await refusal(`${path}.pack`), /1 deltas have a base found nowhere/);
  });

  it('a chain of 60 REF_DELTAs in reverse order (each base a later delta) is named in one go, each delta waiting for its base', async () => {
    const repo = makeRepo('reindex-chain', true);
    const versions = Array.from({ length: 61 }, (_, i) => Buffer.from(`${'chain '.repeat(200)}${'+'.repeat(i)}`));
    const ids = versions.map((v) => hashObject('blob', v));
    const entries = versions.slice(1).map((v, i) => ({ oid: ids[i + 1] as string, type: 'ref' as const, base: ids[i] as string, delta: makeDelta(versions[i] as Buffer, v) })).reverse();
    const path = writeRawPack(`${repo.gitDir}/objects/pack`, [...entries, { oid: ids[0] as string, type: 'blob', content: versions[0] as Buffer }]);
    const asked: Oid[] = [];
    const made = await reindexPack(`${path}.pack`, { maxObjectBytes: LIMIT, resolveBase: (oid) => (asked.push(oid), Promise.resolve(undefined)) });
    assert.ok(made.equals(readFileSync(`${path}.idx`)));
    assert.deepEqual(asked, [], 'every base is in the pack');
  });

  it('writes the index gitfs wrote for its own pack (stored and deflated entries, an empty blob, chunk trees)', async () => {
    const repo = await Repository.init(`${tempDir('reindex-gitfs')}/repo`);
    try {
      const w = await repo.newPackWriter();
      await w.write('blob', Buffer.alloc(0));
      await w.write('blob', pseudoRandomBytes(300_000, 'stored'));
      await w.write('blob', compressibleBytes(200_000, 'deflated'));
      await w.write('tree', Buffer.concat([Buffer.from('100644 a\0'), Buffer.alloc(20, 1)]));
      const name = (await w.finish())?.names[0] as string;
      const base = `${repo.gitDir}/objects/pack/${name}`;
      const made = await reindexPack(`${base}.pack`, { maxObjectBytes: LIMIT, resolveBase: noBase });
      assert.ok(made.equals(readFileSync(`${base}.idx`)), 'the index gitfs wrote');
    } finally {
      await repo.close();
    }
  });

  it('refuses a pack damaged itself: a flipped byte, a cut, a wrong trailer, bytes after its last entry', async () => {
    const { idx } = gitPack(false);
    const path = idx.replace(/\.idx$/, '.pack');
    const original = readFileSync(path);
    const damaged = (change: (b: Buffer) => Buffer): string => {
      const name = `${path}.damaged`;
      writeFileSync(name, change(Buffer.from(original)));
      return name;
    };
    const flipped = (at: number) => (b: Buffer): Buffer => {
      b[at] = (b[at] as number) ^ 0x10;
      return b;
    };
    // In a zlib stream (it no longer inflates to its size, or its checksum fails), and in the header's count.
    assert.match(await refusal(damaged(flipped(Math.floor(original.length / 2)))), /entry at \d+|checksum does not match/);
    assert.match(await refusal(damaged(flipped(11))), /claims \d+ entries|ends after|bytes lie between|entry at/);
    assert.match(await refusal(damaged((b) => b.subarray(0, b.length - 1000))), /entry at \d+|ends after|truncated/);
    assert.match(await refusal(damaged(flipped(original.length - 1))), /its checksum does not match its content/);
    assert.match(await refusal(damaged((b) => Buffer.concat([b.subarray(0, b.length - 20), Buffer.alloc(7), b.subarray(b.length - 20)]))), /7 bytes lie between its last entry and its checksum/);
  });

  it('an object above the read limit is OBJECT_TOO_LARGE, not held', async () => {
    const repo = makeRepo('reindex-large');
    repo.write('big.bin', pseudoRandomBytes(3 << 20, 'big'));
    repo.commit('big');
    repo.git(['repack', '-a', '-d', '-q']);
    const [idx] = packFiles(repo.gitDir);
    await assert.rejects(reindexPack((idx as string).replace(/\.idx$/, '.pack'), { maxObjectBytes: 1 << 20, resolveBase: noBase }), (e: unknown) => isGitfsError(e, ErrorCodes.OBJECT_TOO_LARGE));
  });
});

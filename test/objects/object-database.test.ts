import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, GitfsError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { ObjectDatabase } from '../../src/objects/object-database.js';
import { hashObject, objectHeader, type Oid } from '../../src/objects/oid.js';
import { pseudoRandomBytes } from '../support/data.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';
import { allObjects, makeDelta, makeRepo, packEntryTypes, packFiles, writeLooseRaw, writeRawPack } from './git-fixture.js';
import type { GitRepo, GitViewObject } from './git-fixture.js';

const OFS_DELTA = 6;
const REF_DELTA = 7;

async function expectError(p: Promise<unknown>, codes: ErrorCode | readonly ErrorCode[], oid?: string): Promise<GitfsError> {
  const allowed: readonly ErrorCode[] = typeof codes === 'string' ? [codes] : codes;
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof GitfsError, `expected a GitfsError, got ${String(e)}`);
    assert.ok(allowed.includes(e.code), `expected ${allowed.join('|')}, got ${e.code}: ${e.message}`);
    if (oid !== undefined) {
      assert.ok(e.message.includes(oid), `message names ${oid}: ${e.message}`);
      assert.equal(e.data['oid'], oid);
    }
    return e;
  }
  assert.fail(`expected ${allowed.join('|')}, got success`);
}

async function readAllAndCompare(db: ObjectDatabase, objects: readonly GitViewObject[]): Promise<void> {
  assert.ok(objects.length > 0);
  for (const o of objects) {
    const got = await db.read(o.oid as Oid);
    assert.equal(got.type, o.type, o.oid);
    assert.ok(got.content.equals(o.content), `content of ${o.oid} differs`);
  }
}

/** A text of ~6 KiB shared by every file, with a few lines varied per file and version. */
function similarText(file: number, version: number): string {
  const lines: string[] = [];
  for (let i = 0; i < 200; i++) {
    lines.push(i % 37 === file % 37 || i === version * 7 ? `line ${i}: file ${file} version ${version}` : `line ${i}: the quick brown fox jumps over the lazy dog`);
  }
  return lines.join('\n') + '\n';
}

function copyGitDir(repo: GitRepo, label: string): string {
  const dst = path.join(tempDir(label), 'git');
  fs.cpSync(repo.gitDir, dst, { recursive: true });
  return dst;
}

describe('ObjectDatabase', function () {
  this.timeout(120_000);
  let repo: GitRepo;
  let looseView: GitViewObject[];
  let dbBeforeGc: ObjectDatabase;
  const bigBlob = pseudoRandomBytes(700 * 1024, 'odb big blob');

  before(() => {
    repo = makeRepo('odb');
    for (let version = 0; version < 6; version++) {
      for (let f = 0; f < 40; f++) if (version === 0 || (f + version) % 3 === 0) repo.write(`dir${f % 4}/file${f}.txt`, similarText(f, version));
      if (version === 0) {
        repo.write('big.bin', bigBlob);
        repo.write('empty.txt', '');
      }
      if (version === 3) {
        const changed = Buffer.from(bigBlob);
        changed.write('a small change in the middle', 300 * 1024);
        repo.write('big.bin', changed);
      }
      repo.commit(`version ${version}`);
    }
    repo.git(['tag', '-a', '-m', 'a tag', 'v1']);
    looseView = allObjects(repo);
  });
  after(async () => {
    await dbBeforeGc?.close();
    cleanupTempDirs();
  });

  describe('loose objects (before gc)', () => {
    it('reads every object byte-exact', async () => {
      assert.equal(packFiles(repo.gitDir).length, 0);
      dbBeforeGc = await ObjectDatabase.open(repo.gitDir);
      await readAllAndCompare(dbBeforeGc, looseView);
      assert.ok(looseView.some((o) => o.type === 'tag') && looseView.some((o) => o.content.length > 500 * 1024));
    });

    it('refuses a directory that is not a repository', async () => {
      await expectError(ObjectDatabase.open(path.join(repo.dir, 'dir0')), ErrorCodes.NOT_A_REPOSITORY);
    });

    it('reports a missing object as OBJECT_NOT_FOUND and has() false', async () => {
      const oid = '0123456789012345678901234567890123456789' as Oid;
      await expectError(dbBeforeGc.read(oid), ErrorCodes.OBJECT_NOT_FOUND, oid);
      assert.equal(await dbBeforeGc.has(oid), false);
      assert.equal(await dbBeforeGc.has(looseView[0]!.oid as Oid), true);
      // absent() answers many at once as has() answers each: loose and packed objects are here.
      const here = looseView.map((o) => o.oid as Oid);
      assert.deepEqual(await dbBeforeGc.absent([oid, ...here, oid]), [oid, oid]);
    });
  });

  describe('packs (after git gc --aggressive)', () => {
    let db: ObjectDatabase;
    before(async () => {
      repo.git(['gc', '-q', '--aggressive', '--prune=now']);
      db = await ObjectDatabase.open(repo.gitDir);
    });
    after(() => db.close());

    it('holds OFS_DELTA chains', () => {
      const [idx] = packFiles(repo.gitDir);
      assert.equal(packFiles(repo.gitDir).length, 1);
      const types = packEntryTypes(repo, idx!);
      assert.ok(types.filter((t) => t.rawType === OFS_DELTA).length > 20, 'many OFS_DELTA entries');
      const verify = repo.gitText(['verify-pack', '-v', idx!]);
      assert.match(verify, /^chain length = [2-9]\d*: \d+ objects?$/m, 'some chains are at least 2 deep');
      assert.equal(fs.readdirSync(path.join(repo.gitDir, 'objects')).filter((n) => /^[0-9a-f]{2}$/.test(n)).length, 0, 'no loose objects left');
    });

    it('reads every object byte-exact', async () => {
      const packedView = allObjects(repo);
      assert.deepEqual(packedView.map((o) => o.oid).sort(), looseView.map((o) => o.oid).sort());
      await readAllAndCompare(db, packedView);
    });

    it('finds objects in a pack that appeared after opening (rescan on miss)', async () => {
      await readAllAndCompare(dbBeforeGc, looseView);
    });

    it('gives every object\'s declared size without reading it whole', async () => {
      for (const o of looseView) {
        assert.equal(await db.sizeOf(o.oid as Oid), o.content.length, o.oid);
        assert.equal(await dbBeforeGc.sizeOf(o.oid as Oid), o.content.length, o.oid);
      }
      const missing = 'abababababababababababababababababababab';
      await expectError(db.sizeOf(missing as Oid), ErrorCodes.OBJECT_NOT_FOUND, missing);
    });

    it("gives every object's type from entry headers, a delta's from its base down the chain, and a loose object's from its header", async () => {
      // From the headers alone: read() (which typeOf leaves what headers cannot tell to) is not called.
      const read = db.read.bind(db);
      db.read = () => Promise.reject(new Error('typeOf read an object whole'));
      try {
        for (const o of looseView) assert.equal(await db.typeOf(o.oid as Oid), o.type, o.oid);
      } finally {
        db.read = read;
      }
      const loose = repo.gitText(['hash-object', '-w', '--stdin'], 'a loose blob\n').trim() as Oid;
      assert.equal(await db.typeOf(loose), 'blob');
      const missing = 'abababababababababababababababababababab';
      await expectError(db.typeOf(missing as Oid), ErrorCodes.OBJECT_NOT_FOUND, missing);
    });

    it('reads 64-bit offsets written by git index-pack', async () => {
      const bare = makeRepo('odb64', true);
      const src = packFiles(repo.gitDir)[0]!.replace(/\.idx$/, '.pack');
      const dst = path.join(bare.gitDir, 'objects', 'pack', path.basename(src));
      fs.copyFileSync(src, dst);
      bare.git(['index-pack', '--index-version=2,0x100', dst]);
      const db64 = await ObjectDatabase.open(bare.gitDir);
      try {
        await readAllAndCompare(db64, looseView);
      } finally {
        await db64.close();
      }
    });

    it('refuses to read objects above maxObjectBytes whole with OBJECT_TOO_LARGE', async () => {
      const small = await ObjectDatabase.open(repo.gitDir, { maxObjectBytes: 100 * 1024 });
      try {
        const big = looseView.find((o) => o.content.length > 500 * 1024)!;
        await expectError(small.read(big.oid as Oid), ErrorCodes.OBJECT_TOO_LARGE, big.oid);
      } finally {
        await small.close();
      }
    });

    it('finds by prefix over packs and loose objects, deduplicated', async () => {
      const extra = repo.git(['hash-object', '-w', '--stdin'], 'a loose object next to the pack\n').toString().trim();
      const dup = looseView[0]!;
      writeLooseRaw(repo.gitDir, dup.oid, Buffer.concat([objectHeader(dup.type, dup.content.length), dup.content]));
      const all = [...looseView.map((o) => o.oid), extra].sort();
      for (const oid of [extra, dup.oid, ...all.slice(0, 10)]) {
        for (const len of [4, 5, 7, 40]) {
          const prefix = oid.slice(0, len);
          assert.deepEqual(await db.findByPrefix(prefix, 100), all.filter((o) => o.startsWith(prefix)), prefix);
        }
      }
      assert.deepEqual(await db.findByPrefix(extra.slice(0, 4), 0), []);
      await expectError(db.findByPrefix('ABCD', 10), ErrorCodes.BAD_ARGUMENT);
      await expectError(db.findByPrefix('abc', 10), ErrorCodes.BAD_ARGUMENT);
      assert.equal((await db.read(extra as Oid)).content.toString(), 'a loose object next to the pack\n');
    });

    it('ignores temporaries (tmp_*, git repack\'s .tmp-*) and packs without an index', async () => {
      const gitDir = copyGitDir(repo, 'odb-tmp');
      const packDir = path.join(gitDir, 'objects', 'pack');
      fs.writeFileSync(path.join(packDir, 'tmp_pack_abc.idx'), 'garbage');
      fs.writeFileSync(path.join(packDir, 'tmp_pack_abc.pack'), 'garbage');
      // git repack's own, renamed into place once whole.
      fs.writeFileSync(path.join(packDir, '.tmp-123-pack-abc.idx'), 'garbage');
      fs.writeFileSync(path.join(packDir, '.tmp-123-pack-abc.pack'), 'garbage');
      fs.writeFileSync(path.join(packDir, 'pack-0000000000000000000000000000000000000000.pack'), 'garbage');
      const d = await ObjectDatabase.open(gitDir);
      try {
        await readAllAndCompare(d, looseView.slice(0, 5));
        // None was opened, nor set aside as damaged (a miss would then be CORRUPT_PACK naming it).
        const absent = 'f'.repeat(40) as Oid;
        await expectError(d.read(absent), ErrorCodes.OBJECT_NOT_FOUND, absent);
      } finally {
        await d.close();
      }
    });

    it('reads a pack of any name beside its index, as git does (git maintenance packs loose objects as loose-<hash>.pack)', async () => {
      const gitDir = copyGitDir(repo, 'odb-loose-pack');
      const packDir = path.join(gitDir, 'objects', 'pack');
      const oids = looseView.map((o) => o.oid).join('\n');
      const name = execFileSync('git', [`--git-dir=${gitDir}`, 'pack-objects', '-q', path.join(packDir, 'loose')], { input: `${oids}\n` }).toString().trim();
      for (const f of fs.readdirSync(packDir)) if (f.startsWith('pack-')) fs.rmSync(path.join(packDir, f));
      execFileSync('git', [`--git-dir=${gitDir}`, 'prune-packed']);
      assert.deepEqual(fs.readdirSync(packDir).sort(), [`loose-${name}.idx`, `loose-${name}.pack`]);
      const d = await ObjectDatabase.open(gitDir);
      try {
        await readAllAndCompare(d, looseView);
      } finally {
        await d.close();
      }
    });

    it('sets a damaged index aside: CORRUPT_PACK naming the file, for what only it could hold', async () => {
      const gitDir = copyGitDir(repo, 'odb-badidx');
      const idx = packFiles(gitDir)[0]!;
      fs.chmodSync(idx, 0o644);
      const bytes = fs.readFileSync(idx);
      bytes[bytes.length - 100]! ^= 0x10;
      fs.writeFileSync(idx, bytes);
      const d = await ObjectDatabase.open(gitDir);
      try {
        const [damaged] = [...d.damagedPacks().values()];
        assert.equal(damaged?.code, ErrorCodes.CORRUPT_PACK);
        assert.ok(damaged.message.includes(path.basename(idx)), damaged.message);
        // Objects only the damaged pack holds fail with CORRUPT_PACK naming it; the rest still read.
        let setAside = 0;
        for (const { oid } of allObjects(repo)) {
          try {
            await d.read(oid as Oid);
          } catch (e) {
            assert.ok(e instanceof GitfsError && e.code === ErrorCodes.CORRUPT_PACK, String(e));
            assert.ok(e.message.includes(path.basename(idx, '.idx')), e.message);
            setAside++;
          }
        }
        assert.ok(setAside > 0);
      } finally {
        await d.close();
      }
    });

    it('sets aside a pack whose object count disagrees with its index', async () => {
      const gitDir = copyGitDir(repo, 'odb-badpack');
      const pack = packFiles(gitDir)[0]!.replace(/\.idx$/, '.pack');
      fs.chmodSync(pack, 0o644);
      const fd = fs.openSync(pack, 'r+');
      fs.writeSync(fd, Buffer.from([0, 0, 0, 1]), 0, 4, 8);
      fs.closeSync(fd);
      const d = await ObjectDatabase.open(gitDir);
      try {
        assert.equal([...d.damagedPacks().values()][0]?.code, ErrorCodes.CORRUPT_PACK);
      } finally {
        await d.close();
      }
    });

    it('reports a flipped bit inside a pack entry as CORRUPT_OBJECT naming the object', async () => {
      const gitDir = copyGitDir(repo, 'odb-flip');
      const idx = packFiles(gitDir)[0]!;
      const rows = repo.git(['verify-pack', '-v', idx])
        .toString()
        .split('\n')
        .map((l) => l.split(/\s+/))
        .filter((f) => f.length >= 5 && /^[0-9a-f]{40}$/.test(f[0]!));
      // A whole (non-delta) blob, and a delta whose base is a whole blob.
      const whole = rows.find((f) => f[1] === 'blob' && f.length === 5 && Number(f[3]) > 200)!;
      const dependent = rows.find((f) => f.length === 7 && f[6] !== whole[0] && rows.find((r) => r[0] === f[6])?.length === 5)!;
      const base = rows.find((r) => r[0] === dependent[6])!;
      const pack = idx.replace(/\.idx$/, '.pack');
      fs.chmodSync(pack, 0o644);
      const bytes = fs.readFileSync(pack);
      for (const row of [whole, base]) bytes[Number(row[4]) + Math.floor(Number(row[3]) / 2)]! ^= 0x04;
      fs.writeFileSync(pack, bytes);
      const d = await ObjectDatabase.open(gitDir);
      try {
        const codes = [ErrorCodes.CORRUPT_OBJECT, ErrorCodes.CORRUPT_PACK] as const;
        await expectError(d.read(whole[0] as Oid), codes, whole[0]);
        await expectError(d.read(dependent[0] as Oid), codes, dependent[0]);
        const other = rows.find((f) => f.length === 5 && f[0] !== whole[0] && f[0] !== base[0])!;
        assert.equal((await d.read(other[0] as Oid)).type, other[1]);
      } finally {
        await d.close();
      }
    });

    it('falls back to a good loose copy when the packed copy is damaged', async () => {
      const gitDir = copyGitDir(repo, 'odb-fallback');
      const idx = packFiles(gitDir)[0]!;
      const pack = idx.replace(/\.idx$/, '.pack');
      const target = repo.git(['verify-pack', '-v', idx])
        .toString()
        .split('\n')
        .map((l) => l.split(/\s+/))
        .find((f) => f[1] === 'blob' && f.length === 5 && Number(f[3]) > 200)!;
      fs.chmodSync(pack, 0o644);
      const bytes = fs.readFileSync(pack);
      bytes[Number(target[4]) + Math.floor(Number(target[3]) / 2)]! ^= 0x04;
      fs.writeFileSync(pack, bytes);
      const good = looseView.find((o) => o.oid === target[0])!;
      writeLooseRaw(gitDir, good.oid, Buffer.concat([objectHeader('blob', good.content.length), good.content]));
      const d = await ObjectDatabase.open(gitDir);
      try {
        assert.ok((await d.read(good.oid as Oid)).content.equals(good.content));
      } finally {
        await d.close();
      }
    });
  });

  describe('has() and packs added by other processes', () => {
    it('rescans on a miss when the pack directory changed, and only then', async () => {
      const bare = makeRepo('odb-has', true);
      const packDir = path.join(bare.gitDir, 'objects', 'pack');
      const past = new Date(Date.now() - 60_000);
      fs.utimesSync(packDir, past, past);
      const d = await ObjectDatabase.open(bare.gitDir);
      try {
        const oid = hashObject('blob', Buffer.from('x'));
        assert.equal(await d.has(oid as Oid), false);
        writeRawPack(packDir, [{ oid, type: 'blob', content: Buffer.from('x') }]);
        assert.deepEqual(await d.absent([oid as Oid]), [], 'absent() sees the new pack too');
        assert.equal(await d.has(oid as Oid), true, 'new pack seen: the directory changed');

        const other = hashObject('blob', Buffer.from('y'));
        fs.utimesSync(packDir, past, past);
        await d.refresh();
        writeRawPack(packDir, [{ oid: other, type: 'blob', content: Buffer.from('y') }]);
        fs.utimesSync(packDir, past, past); // as if nothing had changed
        assert.equal(await d.has(other as Oid), false, 'an unchanged directory is not rescanned');
        assert.equal((await d.read(other as Oid)).content.toString(), 'y', 'read() always rescans on a miss');
        assert.equal(await d.has(other as Oid), true);
      } finally {
        await d.close();
      }
    });

    it('coalesces concurrent rescans and closes vanished packs', async () => {
      const bare = makeRepo('odb-vanish', true);
      const packDir = path.join(bare.gitDir, 'objects', 'pack');
      const oid = hashObject('blob', Buffer.from('z'));
      const base = writeRawPack(packDir, [{ oid, type: 'blob', content: Buffer.from('z') }]);
      const d = await ObjectDatabase.open(bare.gitDir);
      try {
        assert.equal(await d.has(oid as Oid), true);
        await Promise.all(Array.from({ length: 20 }, () => d.refresh()));
        fs.rmSync(`${base}.idx`);
        fs.rmSync(`${base}.pack`);
        await d.refresh();
        await expectError(d.read(oid as Oid), ErrorCodes.OBJECT_NOT_FOUND, oid);
      } finally {
        await d.close();
      }
      await expectError(d.read(oid as Oid), ErrorCodes.IO);
    });
  });

  describe('REF_DELTA', () => {
    it('reads a pack written by plain git pack-objects (REF_DELTA, no reused deltas)', async () => {
      const bare = makeRepo('odb-ref', true);
      const list = repo.git(['rev-list', '--objects', '--all']);
      repo.git(['pack-objects', '-q', '--no-reuse-delta', '--window=50', '--depth=50', path.join(bare.gitDir, 'objects', 'pack', 'pack')], list);
      const [idx] = packFiles(bare.gitDir);
      const types = packEntryTypes(bare, idx!);
      assert.ok(types.filter((t) => t.rawType === REF_DELTA).length > 20, 'many REF_DELTA entries');
      assert.equal(types.filter((t) => t.rawType === OFS_DELTA).length, 0);
      const d = await ObjectDatabase.open(bare.gitDir);
      try {
        await readAllAndCompare(d, looseView);
      } finally {
        await d.close();
      }
    });

    describe('bases outside the pack', () => {
      let bare: GitRepo;
      let packDir: string;
      const base = Buffer.from(similarText(1, 1));
      const mid = Buffer.from(similarText(1, 2));
      const top = Buffer.from(similarText(1, 3));
      const baseOid = hashObject('blob', base);
      const midOid = hashObject('blob', mid);
      const topOid = hashObject('blob', top);

      beforeEach(() => {
        bare = makeRepo('odb-thin', true);
        packDir = path.join(bare.gitDir, 'objects', 'pack');
      });

      // git itself only resolves REF_DELTA bases inside the same pack; these packs are deliberately thin.
      it('resolves a base that is loose, and chains across packs', async () => {
        assert.equal(bare.git(['hash-object', '-w', '--stdin'], base).toString().trim(), baseOid);
        writeRawPack(packDir, [{ oid: midOid, type: 'ref', base: baseOid, delta: makeDelta(base, mid) }]);
        writeRawPack(packDir, [{ oid: topOid, type: 'ref', base: midOid, delta: makeDelta(mid, top) }]);
        const d = await ObjectDatabase.open(bare.gitDir);
        try {
          assert.ok((await d.read(topOid as Oid)).content.equals(top));
          assert.ok((await d.read(midOid as Oid)).content.equals(mid));
        } finally {
          await d.close();
        }
      });

      it('reports a missing base as CORRUPT_OBJECT naming the object', async () => {
        writeRawPack(packDir, [{ oid: midOid, type: 'ref', base: baseOid, delta: makeDelta(base, mid) }]);
        const d = await ObjectDatabase.open(bare.gitDir);
        try {
          const e = await expectError(d.read(midOid as Oid), ErrorCodes.CORRUPT_OBJECT, midOid);
          assert.ok(e.message.includes(baseOid));
        } finally {
          await d.close();
        }
      });

      it('bounds delta cycles, within one pack and across packs', async () => {
        writeRawPack(packDir, [
          { oid: midOid, type: 'ref', base: topOid, delta: makeDelta(top, mid) },
          { oid: topOid, type: 'ref', base: midOid, delta: makeDelta(mid, top) },
        ]);
        const other = makeRepo('odb-cycle2', true);
        const otherPackDir = path.join(other.gitDir, 'objects', 'pack');
        writeRawPack(otherPackDir, [{ oid: midOid, type: 'ref', base: topOid, delta: makeDelta(top, mid) }]);
        writeRawPack(otherPackDir, [{ oid: topOid, type: 'ref', base: midOid, delta: makeDelta(mid, top) }]);
        for (const gitDir of [bare.gitDir, other.gitDir]) {
          const d = await ObjectDatabase.open(gitDir);
          try {
            await expectError(d.read(topOid as Oid), [ErrorCodes.CORRUPT_PACK, ErrorCodes.CORRUPT_OBJECT], topOid);
          } finally {
            await d.close();
          }
        }
      });

      it('stops a delta chain that loops back within a pack at once (an entry naming itself as its base, two naming each other)', async () => {
        const self = makeRepo('odb-selfref', true);
        writeRawPack(path.join(self.gitDir, 'objects', 'pack'), [{ oid: midOid, type: 'ref', base: midOid, delta: makeDelta(base, mid) }]);
        writeRawPack(packDir, [
          { oid: midOid, type: 'ref', base: topOid, delta: makeDelta(top, mid) },
          { oid: topOid, type: 'ref', base: midOid, delta: makeDelta(mid, top) },
        ]);
        for (const [gitDir, oid] of [[self.gitDir, midOid], [bare.gitDir, topOid]] as const) {
          const d = await ObjectDatabase.open(gitDir);
          try {
            const e = await expectError(d.read(oid as Oid), ErrorCodes.CORRUPT_PACK, oid);
            assert.match(e.message, /loops back/, 'found as a loop, not after 4 096 reads');
          } finally {
            await d.close();
          }
        }
      });

      it('serves no object larger than the limit to a peer either (readToServe)', async () => {
        // 2 MiB of zeros: a pack entry of ~2 KiB that declares 2 MiB, and one of 2 MiB of random bytes.
        const zeros = Buffer.alloc(2 << 20);
        const random = pseudoRandomBytes(2 << 20, 'over the limit');
        writeRawPack(packDir, [
          { oid: hashObject('blob', zeros), type: 'blob', content: zeros },
          { oid: hashObject('blob', random), type: 'blob', content: random },
        ]);
        const d = await ObjectDatabase.open(bare.gitDir, { maxObjectBytes: 1 << 20 });
        try {
          for (const oid of [hashObject('blob', zeros), hashObject('blob', random)]) {
            await expectError(d.read(oid), ErrorCodes.OBJECT_TOO_LARGE, oid);
            await expectError(d.readToServe(oid), ErrorCodes.OBJECT_TOO_LARGE, oid);
          }
        } finally {
          await d.close();
        }
      });

      it('takes a small entry declaring more than the limit for a damaged header (CORRUPT_OBJECT: lost, not large)', async () => {
        const text = Buffer.from('a few bytes whose header says 300 MiB\n');
        const oid = hashObject('blob', text);
        writeRawPack(packDir, [{ oid, type: 'blob', content: text, declaredSize: 300 << 20 }]);
        const d = await ObjectDatabase.open(bare.gitDir);
        try {
          const e = await expectError(d.read(oid), ErrorCodes.CORRUPT_OBJECT, oid);
          assert.match(e.message, /more than its \d+ stored bytes inflate to/);
        } finally {
          await d.close();
        }
      });

      it('refuses pack entries that inflate beyond or short of their declared size', async () => {
        const zeros = Buffer.alloc(1 << 20);
        const bombOid = hashObject('blob', zeros);
        writeRawPack(packDir, [
          { oid: bombOid, type: 'blob', content: zeros, declaredSize: 10 },
          { oid: baseOid, type: 'blob', content: base, declaredSize: base.length + 1 },
        ]);
        const d = await ObjectDatabase.open(bare.gitDir);
        try {
          await expectError(d.read(bombOid as Oid), ErrorCodes.HOSTILE_OBJECT, bombOid);
          await expectError(d.read(baseOid as Oid), ErrorCodes.CORRUPT_OBJECT, baseOid);
        } finally {
          await d.close();
        }
      });
    });
  });

  describe('damaged loose objects', () => {
    let bare: GitRepo;
    let d: ObjectDatabase;
    const put = (text: string): Oid => bare.git(['hash-object', '-w', '--stdin'], text).toString().trim() as Oid;
    const loosePath = (oid: string): string => path.join(bare.gitDir, 'objects', oid.slice(0, 2), oid.slice(2));

    beforeEach(async () => {
      bare = makeRepo('odb-loose', true);
      d = await ObjectDatabase.open(bare.gitDir);
    });
    afterEach(() => d.close());

    it('detects content replaced under the same name', async () => {
      const oid = put('the real content\n');
      writeLooseRaw(bare.gitDir, oid, Buffer.from('blob 17\0the fake content\n'));
      await expectError(d.read(oid), ErrorCodes.CORRUPT_OBJECT, oid);
    });

    it('detects a truncated file', async () => {
      const oid = put('some content that is long enough to truncate meaningfully\n'.repeat(10));
      const p = loosePath(oid);
      const bytes = fs.readFileSync(p);
      fs.chmodSync(p, 0o644);
      fs.writeFileSync(p, bytes.subarray(0, bytes.length - 8));
      await expectError(d.read(oid), ErrorCodes.CORRUPT_OBJECT, oid);
      fs.writeFileSync(p, bytes.subarray(0, 3));
      await expectError(d.read(oid), ErrorCodes.CORRUPT_OBJECT, oid);
      fs.writeFileSync(p, Buffer.alloc(0));
      await expectError(d.read(oid), ErrorCodes.CORRUPT_OBJECT, oid);
    });

    it('detects a bad header', async () => {
      const oid = '1111111111111111111111111111111111111111' as Oid;
      for (const header of ['blob12\0', 'blub 1\0x', 'blob 01\0x', 'blob -1\0', 'blob 1', 'blob 1 \0x']) {
        writeLooseRaw(bare.gitDir, oid, Buffer.from(header, 'latin1'));
        await expectError(d.read(oid), ErrorCodes.CORRUPT_OBJECT, oid);
      }
    });

    it('refuses zlib bombs (declared small, inflating huge) with HOSTILE_OBJECT', async () => {
      const oid = '2222222222222222222222222222222222222222' as Oid;
      const big = writeLooseRaw(bare.gitDir, oid, Buffer.concat([Buffer.from('blob 10\0'), Buffer.alloc(64 << 20)]), 9);
      assert.ok(fs.statSync(big).size > 1024, 'a large compressed file');
      await expectError(d.read(oid), ErrorCodes.HOSTILE_OBJECT, oid);
      const small = writeLooseRaw(bare.gitDir, oid, Buffer.concat([Buffer.from('blob 10\0'), Buffer.alloc(500 << 10)]), 9);
      assert.ok(fs.statSync(small).size <= 1024, 'a small compressed file');
      await expectError(d.read(oid), ErrorCodes.HOSTILE_OBJECT, oid);
    });

    it('refuses a file longer than any zlib stream of the size it declares, by its header, before reading it whole', async () => {
      const oid = put('a small object\n');
      const p = loosePath(oid);
      const bytes = fs.readFileSync(p);
      fs.chmodSync(p, 0o644);
      fs.writeFileSync(p, Buffer.concat([bytes, Buffer.alloc(4 << 20)]));
      const e = await expectError(d.read(oid), ErrorCodes.CORRUPT_OBJECT, oid);
      assert.match(e.message, /longer than any zlib stream of the 15 bytes it declares/);
      // A few bytes after the stream's end are damage too, however small the file.
      fs.writeFileSync(p, Buffer.concat([bytes, Buffer.alloc(100)]));
      assert.match((await expectError(d.read(oid), ErrorCodes.CORRUPT_OBJECT, oid)).message, /100 byte\(s\) after the end of its zlib stream/);
      // What git writes of incompressible bytes, not compressed at all (stored blocks: the longest streams), is within the bound.
      const random = pseudoRandomBytes(3 << 20, 'odb large loose');
      const stored = execFileSync('git', ['--git-dir', bare.gitDir, '-c', 'core.looseCompression=0', 'hash-object', '-w', '--stdin'], { input: random }).toString().trim() as Oid;
      assert.ok(fs.statSync(loosePath(stored)).size > random.length, 'stored blocks: a stream longer than its content');
      assert.ok((await d.read(stored)).content.equals(random));
    });

    it('refuses to read a declared size above the limit whole with OBJECT_TOO_LARGE', async () => {
      const oid = '3333333333333333333333333333333333333333' as Oid;
      writeLooseRaw(bare.gitDir, oid, Buffer.from('blob 999999999999\0tiny'));
      await expectError(d.read(oid), ErrorCodes.OBJECT_TOO_LARGE, oid);
      const real = put('x'.repeat(5000));
      const strict = await ObjectDatabase.open(bare.gitDir, { maxObjectBytes: 1000 });
      try {
        await expectError(strict.read(real), ErrorCodes.OBJECT_TOO_LARGE, real);
        const bigReal = put(pseudoRandomBytes(5000, 'odb big real').toString('hex'));
        await expectError(strict.read(bigReal), ErrorCodes.OBJECT_TOO_LARGE, bigReal);
      } finally {
        await strict.close();
      }
    });

    it('reads empty and odd objects git writes', async () => {
      const empty = put('');
      assert.equal((await d.read(empty)).content.length, 0);
      const tree = bare.git(['mktree'], '').toString().trim() as Oid;
      const got = await d.read(tree);
      assert.equal(got.type, 'tree');
      assert.equal(got.content.length, 0);
    });
  });
});

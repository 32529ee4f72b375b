/**
 * Blobs git wrote above the read limit (here a limit of 1 MiB): streamed out of a loose file or a
 * whole pack entry and checked at the end; sizes read from headers; one stored as a delta is a
 * clear GITFS_OBJECT_TOO_LARGE for that blob alone.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { exportEntry } from '../../src/files/exporter.js';
import { fsck } from '../../src/files/fsck.js';
import { ObjectDatabase } from '../../src/objects/object-database.js';
import type { Oid } from '../../src/objects/oid.js';
import { compressibleBytes, pseudoRandomBytes } from '../support/data.js';
import { cleanupTempDirs } from '../support/tmp.js';
import { makeRepo, packFiles, writeLooseRaw, type GitRepo } from './git-fixture.js';

const LIMIT = 1 << 20;

async function collect(pieces: AsyncIterable<Buffer>): Promise<{ bytes: Buffer; pieces: number }> {
  const all: Buffer[] = [];
  for await (const piece of pieces) all.push(Buffer.from(piece));
  return { bytes: Buffer.concat(all), pieces: all.length };
}

async function withDb<T>(repo: GitRepo, use: (db: ObjectDatabase) => Promise<T>): Promise<T> {
  const db = await ObjectDatabase.open(repo.gitDir, { maxObjectBytes: LIMIT });
  try {
    return await use(db);
  } finally {
    await db.close();
  }
}

/** A repository holding `content` as the blob of `big.bin`, committed by git; its id. */
function bigBlob(label: string, content: Buffer): { repo: GitRepo; oid: Oid } {
  const repo = makeRepo(label);
  repo.write('big.bin', content);
  repo.commit('big');
  return { repo, oid: repo.gitText(['rev-parse', 'HEAD:big.bin']) as Oid };
}

describe('objects/blob-stream: blobs above the read limit', function () {
  this.timeout(60_000);
  after(() => cleanupTempDirs());
  const content = compressibleBytes(5 * LIMIT + 12345, 'a blob above the limit');

  it('a loose one: read() is OBJECT_TOO_LARGE; readBlob streams it in pieces, checked; sizeOf reads its header', async () => {
    const { repo, oid } = bigBlob('stream-loose', content);
    await withDb(repo, async (db) => {
      await assert.rejects(db.read(oid), (e) => isGitfsError(e, ErrorCodes.OBJECT_TOO_LARGE));
      const got = await collect(db.readBlob(oid));
      assert.ok(got.bytes.equals(content));
      assert.ok(got.pieces > 1, 'in pieces');
      assert.equal(await db.sizeOf(oid), content.length);
      const small = repo.gitText(['hash-object', '-w', '--stdin'], 'small\n') as Oid;
      assert.deepEqual(await collect(db.readBlob(small)), { bytes: Buffer.from('small\n'), pieces: 1 });
      const commit = repo.gitText(['rev-parse', 'HEAD']) as Oid;
      await assert.rejects(collect(db.readBlob(commit)), (e) => isGitfsError(e, ErrorCodes.WRONG_OBJECT_TYPE));
    });
  });

  it('a whole pack entry: streamed and checked; sizeOf reads its header (it was refused with the whole read before)', async () => {
    const { repo, oid } = bigBlob('stream-packed', content);
    repo.git(['repack', '-q', '-a', '-d']);
    assert.equal(packFiles(repo.gitDir).length, 1);
    await withDb(repo, async (db) => {
      assert.equal(await db.sizeOf(oid), content.length);
      assert.equal(await db.typeOf(oid), 'blob');
      assert.ok((await collect(db.readBlob(oid))).bytes.equals(content));
    });
  });

  it('a stream of a pack removed meanwhile (merged or pruned away) ends whole and checked: the pack is closed only once the stream ends', async () => {
    // Incompressible: its entry is read in many pieces.
    const random = pseudoRandomBytes(8 * LIMIT, 'a stream outliving its pack');
    const { repo, oid } = bigBlob('stream-removed', random);
    repo.git(['repack', '-q', '-a', '-d']);
    await withDb(repo, async (db) => {
      const pieces = db.readBlob(oid);
      const first = await pieces.next();
      assert.equal(first.done, false);
      const got = [Buffer.from(first.value as Buffer)];
      // The pack goes, as a merge or prune removes it, and the database lets it go.
      for (const idx of packFiles(repo.gitDir)) {
        rmSync(idx);
        rmSync(idx.replace(/\.idx$/, '.pack'));
      }
      await db.refresh();
      for await (const piece of { [Symbol.asyncIterator]: () => pieces }) got.push(Buffer.from(piece));
      assert.ok(Buffer.concat(got).equals(random));
      await assert.rejects(collect(db.readBlob(oid)), (e) => isGitfsError(e, ErrorCodes.OBJECT_NOT_FOUND), 'a new stream finds no pack');
    });
  });

  it('a damaged one: every piece but the last, then CORRUPT_OBJECT (the hash is checked at the end)', async () => {
    const { repo, oid } = bigBlob('stream-damaged', content);
    const damaged = Buffer.from(content);
    damaged.writeUInt8(damaged.readUInt8(damaged.length - 1) ^ 1, damaged.length - 1);
    writeLooseRaw(repo.gitDir, oid, Buffer.concat([Buffer.from(`blob ${damaged.length}\0`), damaged]));
    await withDb(repo, async (db) => {
      let seen = 0;
      await assert.rejects(
        (async () => {
          for await (const piece of db.readBlob(oid)) seen += piece.length;
        })(),
        (e) => isGitfsError(e, ErrorCodes.CORRUPT_OBJECT),
      );
      assert.ok(seen > 0 && seen < damaged.length, `${seen} bytes came before the failure`);
      // Exported, it fails the same way and leaves no file that looks like the blob.
      const target = join(repo.gitDir, '..', 'exported.bin');
      await assert.rejects(exportEntry(db, { name: 'big.bin', kind: 'file', executable: false, oid, chunked: false }, target), (e) => isGitfsError(e, ErrorCodes.CORRUPT_OBJECT));
      assert.ok(!existsSync(target), 'the file cut short was left');
    });
  });

  it('one git stores as a delta: OBJECT_TOO_LARGE for it alone, saying how git stores it whole; its whole base streams; fsck counts it, no problem', async () => {
    const { repo, oid: first } = bigBlob('stream-delta', content);
    const second = Buffer.concat([content, Buffer.from('one more line\n')]);
    repo.write('big.bin', second);
    repo.commit('bigger');
    repo.git(['repack', '-q', '-a', '-d', '-f']);
    const last = repo.gitText(['rev-parse', 'HEAD:big.bin']) as Oid;
    const head = repo.gitText(['rev-parse', 'HEAD']) as Oid;
    const deltas = repo.gitText(['verify-pack', '-v', packFiles(repo.gitDir)[0] as string]).split('\n').filter((l) => / blob +\d+ \d+ \d+ \d+ [0-9a-f]{40}$/.test(l));
    assert.equal(deltas.length, 1, 'git stored one version as a delta of the other');
    const [deltaOid, wholeOid] = deltas[0]?.startsWith(first) === true ? [first, last] : [last, first];
    await withDb(repo, async (db) => {
      await assert.rejects(collect(db.readBlob(deltaOid)), (e) => isGitfsError(e, ErrorCodes.OBJECT_TOO_LARGE) && /stored as a delta.*core\.bigFileThreshold=1048576 repack -a -d -F/.test(e.message));
      const whole = (await collect(db.readBlob(wholeOid))).bytes;
      assert.equal(createHash('sha1').update(`blob ${whole.length}\0`).update(whole).digest('hex'), wholeOid);
      assert.equal(await db.sizeOf(deltaOid), deltaOid === first ? content.length : second.length);
      // fsck leaves it to git fsck, and finds no problem: the repository is sound.
      const report = await fsck(db, [{ name: 'main', oid: head }]);
      assert.deepEqual([report.tooLarge, report.problems], [1, []]);
    });
    repo.git(['-c', `core.bigFileThreshold=${LIMIT}`, 'repack', '-q', '-a', '-d', '-F']);
    await withDb(repo, async (db) => {
      assert.equal((await collect(db.readBlob(deltaOid))).bytes.length, deltaOid === first ? content.length : second.length);
      const report = await fsck(db, [{ name: 'main', oid: head }]);
      assert.deepEqual([report.tooLarge, report.problems], [0, []]);
    });
  });
});

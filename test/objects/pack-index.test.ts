import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { ErrorCodes, GitfsError } from '../../src/errors.js';
import type { Oid } from '../../src/objects/oid.js';
import { PackIndex } from '../../src/objects/pack-index.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';
import { makeRepo, packFiles, writeRawPack } from './git-fixture.js';
import type { GitRepo } from './git-fixture.js';

function reseal(idx: Buffer): Buffer {
  const body = idx.subarray(0, idx.length - 20);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

function corruptCode(buf: Buffer): string | undefined {
  try {
    new PackIndex(buf, 'x.idx');
  } catch (e) {
    assert.ok(e instanceof GitfsError);
    assert.match(e.message, /x\.idx/);
    return e.code;
  }
  return undefined;
}

describe('PackIndex', () => {
  let repo: GitRepo;
  let idxBytes: Buffer;
  let packSize: number;
  let expected: { oid: Oid; offset: number }[];

  before(() => {
    repo = makeRepo('idx');
    for (let i = 0; i < 300; i++) repo.write(`f${i}.txt`, `file ${i}\n`);
    repo.commit('many');
    repo.git(['gc', '-q']);
    const [idxPath] = packFiles(repo.gitDir);
    idxBytes = fs.readFileSync(idxPath!);
    packSize = fs.statSync(idxPath!.replace(/\.idx$/, '.pack')).size;
    expected = repo
      .gitText(['show-index'], idxBytes)
      .trim()
      .split('\n')
      .map((l) => {
        const [offset, oid] = l.split(' ');
        return { oid: oid as Oid, offset: Number(offset) };
      });
  });
  after(cleanupTempDirs);

  it('finds every object at the offset git reports', () => {
    const idx = new PackIndex(idxBytes, 'p.idx');
    assert.equal(idx.count, expected.length);
    for (const { oid, offset } of expected) assert.equal(idx.lookup(oid), offset);
    assert.equal(idx.lookup('0'.repeat(40) as Oid), undefined);
    assert.equal(idx.lookup('f'.repeat(40) as Oid), undefined);
  });

  it('answers absent ids as absent, near misses too (its membership filter only ever lets ids through)', () => {
    const idx = new PackIndex(idxBytes, 'p.idx');
    const present = new Set(expected.map((e) => e.oid));
    for (let i = 0; i < 5000; i++) {
      const id = randomBytes(20).toString('hex') as Oid;
      if (!present.has(id)) assert.equal(idx.lookup(id), undefined);
    }
    // Same bytes as a present id where the filter looks (4 to 15), different after.
    for (const { oid } of expected) {
      const near = `${oid.slice(0, 38)}${((parseInt(oid.slice(38), 16) + 1) & 0xff).toString(16).padStart(2, '0')}` as Oid;
      if (!present.has(near)) assert.equal(idx.lookup(near), undefined, near);
    }
    for (const { oid, offset } of expected) assert.equal(idx.lookup(oid), offset);
  });

  it('gives each entry its end: the next offset, or the pack trailer', () => {
    const idx = new PackIndex(idxBytes, 'p.idx');
    const offsets = expected.map((e) => e.offset).sort((a, b) => a - b);
    offsets.forEach((o, i) => assert.equal(idx.entryEnd(o, packSize), offsets[i + 1] ?? packSize - 20));
    assert.equal(idx.entryEnd(offsets[0]! + 1, packSize), undefined);
  });

  it('finds by prefix, even and odd lengths, honouring the limit', () => {
    const idx = new PackIndex(idxBytes, 'p.idx');
    const all = expected.map((e) => e.oid).sort();
    for (const len of [4, 5, 6, 39, 40]) {
      for (const oid of all.slice(0, 20)) {
        const prefix = oid.slice(0, len);
        assert.deepEqual(idx.findByPrefix(prefix, 100), all.filter((o) => o.startsWith(prefix)));
      }
    }
    assert.deepEqual(idx.findByPrefix('0000', 1000), all.filter((o) => o.startsWith('0000')));
    assert.throws(() => idx.findByPrefix('abc', 10), (e: unknown) => e instanceof GitfsError && e.code === ErrorCodes.BAD_ARGUMENT);
  });

  it('finds by prefix among close neighbours, honouring the limit', () => {
    const ids = ['abcd00', 'abcd01', 'abcd0f', 'abcd10', 'abce00', 'abcc00', '00000', 'ffff'].map((p) => p.padEnd(40, '7') as Oid);
    const dir = tempDir('idx-prefix');
    const base = writeRawPack(dir, ids.map((oid) => ({ oid, type: 'blob' as const, content: Buffer.from(oid) })));
    const idx = new PackIndex(fs.readFileSync(`${base}.idx`), 'synthetic.idx');
    const sorted = [...ids].sort();
    const expect = (p: string): Oid[] => sorted.filter((o) => o.startsWith(p));
    for (const p of ['abcd', 'abcd0', 'abcd00', 'abcd1', 'abce', 'abcc', 'abcf', '0000', '00000', '00001', 'ffff', 'ffff7', 'fffe']) {
      assert.deepEqual(idx.findByPrefix(p, 100), expect(p), p);
    }
    assert.deepEqual(idx.findByPrefix('abcd', 2), expect('abcd').slice(0, 2));
    assert.deepEqual(idx.findByPrefix('abcd', 0), []);
    for (const oid of ids) assert.equal(typeof idx.lookup(oid), 'number');
  });

  it('tells apart ids that share their first five bytes (the numeric search key) and differ after', () => {
    const ids = ['0123456789', '0123456789ab', '0123456789ff', '01234567aa', '0123456700', 'ff00000000'].map((p) => p.padEnd(40, '0') as Oid);
    const dir = tempDir('idx-keys');
    const base = writeRawPack(dir, ids.map((oid) => ({ oid, type: 'blob' as const, content: Buffer.from(oid) })));
    const idx = new PackIndex(fs.readFileSync(`${base}.idx`), 'synthetic.idx');
    const offsets = new Set(ids.map((oid) => idx.lookup(oid)));
    assert.equal(offsets.size, ids.length);
    assert.ok(![...offsets].includes(undefined));
    for (const absent of ['0123456789a', '01234567890000000001', '0123456789fe', '0123456701']) {
      assert.equal(idx.lookup(absent.padEnd(40, '0') as Oid), undefined, absent);
    }
  });

  it('reads 64-bit offsets', () => {
    const pack = packFiles(repo.gitDir)[0]!.replace(/\.idx$/, '.pack');
    const copy = `${repo.dir}/copy.pack`;
    fs.copyFileSync(pack, copy);
    repo.git(['index-pack', '--index-version=2,0x40', copy]);
    const idx64 = fs.readFileSync(`${repo.dir}/copy.idx`);
    assert.ok(idx64.length > idxBytes.length, 'git wrote a 64-bit offset table');
    const idx = new PackIndex(idx64, 'copy.idx');
    for (const { oid, offset } of expected) assert.equal(idx.lookup(oid), offset);
  });

  it('refuses damaged indexes with CORRUPT_PACK naming the file', () => {
    assert.equal(corruptCode(idxBytes.subarray(0, 100)), ErrorCodes.CORRUPT_PACK);
    const flipped = Buffer.from(idxBytes);
    flipped[2000]! ^= 1;
    assert.equal(corruptCode(flipped), ErrorCodes.CORRUPT_PACK, 'checksum');
    const magic = Buffer.from(idxBytes);
    magic[0] = 0;
    assert.equal(corruptCode(reseal(magic)), ErrorCodes.CORRUPT_PACK, 'magic');
    const version = Buffer.from(idxBytes);
    version.writeUInt32BE(3, 4);
    assert.equal(corruptCode(reseal(version)), ErrorCodes.CORRUPT_PACK, 'version');
    const fanout = Buffer.from(idxBytes);
    fanout.writeUInt32BE(fanout.readUInt32BE(8 + 4 * 10) + 5, 8 + 4 * 9);
    assert.equal(corruptCode(reseal(fanout)), ErrorCodes.CORRUPT_PACK, 'fanout');
    const short = Buffer.concat([idxBytes.subarray(0, idxBytes.length - 40 - 4), idxBytes.subarray(idxBytes.length - 40)]);
    assert.equal(corruptCode(reseal(short)), ErrorCodes.CORRUPT_PACK, 'size');
    const order = Buffer.from(idxBytes);
    const shaStart = 8 + 1024;
    const a = Buffer.from(order.subarray(shaStart + 20, shaStart + 40));
    order.copy(order, shaStart + 20, shaStart, shaStart + 20);
    a.copy(order, shaStart);
    assert.equal(corruptCode(reseal(order)), ErrorCodes.CORRUPT_PACK, 'order');
    const big = Buffer.from(idxBytes);
    big.writeUInt32BE(0x80000005, shaStart + expected.length * 24);
    assert.equal(corruptCode(reseal(big)), ErrorCodes.CORRUPT_PACK, '64-bit reference');
  });
});

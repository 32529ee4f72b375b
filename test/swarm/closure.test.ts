import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import type { GitObject } from '../../src/objects/object-store.js';
import type { Oid } from '../../src/objects/oid.js';
import { commitDirectory } from '../../src/repo/commit-directory.js';
import { Repository } from '../../src/repo/repository.js';
import { PIECE_OBJECTS, pieceOids, walkClosure, type ObjectSource } from '../../src/swarm/closure.js';
import { suiteDirs } from '../support/tmp.js';

describe('swarm/closure', () => {
  const dirs = suiteDirs();
  let repo: Repository;
  const heads: Oid[] = [];
  const main = parseBranchName('main');

  before(async () => {
    const { repo: path, src } = dirs.place();
    repo = await Repository.init(path);
    writeFileSync(join(src, 'a.txt'), 'a\n');
    mkdirSync(join(src, 'd'));
    writeFileSync(join(src, 'd', 'b.txt'), 'b\n');
    writeFileSync(join(src, 'big.img'), randomBytes(3 << 20));
    heads.push((await commitDirectory(repo, main, src, { message: 'one' })).commit as Oid);
    writeFileSync(join(src, 'a.txt'), 'a, again\n');
    heads.push((await commitDirectory(repo, main, src, { message: 'two' })).commit as Oid);
    writeFileSync(join(src, 'c.txt'), 'c\n');
    heads.push((await commitDirectory(repo, main, src, { message: 'three' })).commit as Oid);
  });
  after(() => repo.close());

  it('lists every blob once, in the same order every time, cut into pieces of 128', async () => {
    const head = heads[2] as Oid;
    const a = await walkClosure(repo.objects, head, 0);
    const b = await walkClosure(repo.objects, head, 0);
    assert.deepEqual(a, b);
    assert.equal(new Set(a.blobs).size, a.blobs.length);
    assert.deepEqual(a.commits, [heads[2], heads[1], heads[0]]);
    assert.deepEqual(a.boundary, []);
    // 3 MiB of random data in chunks of about 8 KiB: hundreds of chunk blobs, several pieces.
    assert.ok(a.blobs.length > 300, `${a.blobs.length} blobs`);
    assert.equal(a.pieces, Math.ceil(a.blobs.length / PIECE_OBJECTS));
    assert.deepEqual(Array.from({ length: a.pieces }, (_, i) => pieceOids(a, i)).flat(), a.blobs);
    for (const oid of a.blobs) assert.equal((await repo.objects.read(oid)).type, 'blob');
    for (const oid of a.trees) assert.equal((await repo.objects.read(oid)).type, 'tree');
  });

  it('stops at the history limit and names the boundary commits', async () => {
    const one = await walkClosure(repo.objects, heads[2] as Oid, 1);
    assert.deepEqual(one.commits, [heads[2]]);
    assert.deepEqual(one.boundary, [heads[2]]);
    const two = await walkClosure(repo.objects, heads[2] as Oid, 2);
    assert.deepEqual(two.commits, [heads[2], heads[1]]);
    assert.deepEqual(two.boundary, [heads[1]]);
    const all = await walkClosure(repo.objects, heads[2] as Oid, 0);
    // The first commit's a.txt is only in the full history.
    assert.ok(all.blobs.length > two.blobs.length);
    assert.deepEqual(all.blobs.slice(0, one.blobs.length), [...one.blobs]);
  });

  it('asks for missing commits and trees in batches, level by level, and never for blobs', async () => {
    const head = heads[2] as Oid;
    const full = await walkClosure(repo.objects, head, 0);
    const present = new Set<Oid>();
    const asked: Oid[][] = [];
    const source: ObjectSource = {
      has: (oid) => present.has(oid),
      read: async (oid): Promise<GitObject> => {
        assert.ok(present.has(oid), `read of ${oid} before it was fetched`);
        return repo.objects.read(oid);
      },
    };
    const fetched = await walkClosure(source, head, 0, async (oids) => {
      asked.push([...oids]);
      for (const o of oids) present.add(o);
    });
    assert.deepEqual(fetched, full);
    const metadata = new Set([...full.commits, ...full.trees]);
    assert.equal(asked.flat().length, metadata.size, 'each commit and tree asked for once');
    for (const o of asked.flat()) assert.ok(metadata.has(o));
    assert.ok(asked.length < metadata.size, `batched: ${asked.length} requests for ${metadata.size} objects`);
  });

  it('without a fetcher, a missing tree is GITFS_OBJECT_NOT_FOUND', async () => {
    const head = heads[2] as Oid;
    const source: ObjectSource = { has: (oid) => oid === head, read: (oid) => repo.objects.read(oid) };
    await assert.rejects(walkClosure(source, head, 0), (e: unknown) => isGitfsError(e, ErrorCodes.OBJECT_NOT_FOUND));
  });
});

/** packed-refs: parsing git's format and removing one entry while keeping every other byte. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { deletePackedRef, parsePackedRefs, readPackedRefs, removeFromPackedRefs } from '../../src/branches/packed-refs.js';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';
import { ManualClock, fakeOid, filesBelow } from './helpers.js';

const A = fakeOid('a');
const B = fakeOid('b');
const T = fakeOid('tag');
const P = fakeOid('peeled');
const HEADER = '# pack-refs with: peeled fully-peeled sorted ';
const TEXT = `${HEADER}\n${A} refs/heads/a\n${B} refs/heads/kernel/stable\n${T} refs/tags/v1\n^${P}\n`;

describe('branches/packed-refs', () => {
  after(cleanupTempDirs);

  it('parses header, refs and peeled lines', () => {
    const p = parsePackedRefs(TEXT);
    assert.equal(p.header, HEADER);
    assert.deepEqual(p.refs, [
      { ref: 'refs/heads/a', oid: A },
      { ref: 'refs/heads/kernel/stable', oid: B },
      { ref: 'refs/tags/v1', oid: T, peeled: P },
    ]);
    assert.deepEqual(parsePackedRefs(''), { header: undefined, refs: [] });
    assert.deepEqual(parsePackedRefs(`${A} refs/heads/a`).refs, [{ ref: 'refs/heads/a', oid: A }]);
  });

  for (const [bad, why] of [
    [`${A}refs/heads/a\n`, 'missing space'],
    [`${A.slice(1)} refs/heads/a\n`, 'short id'],
    [`^${P}\n`, 'peel without ref'],
    [`${T} refs/tags/v1\n^${P}\n^${P}\n`, 'double peel'],
    [`${A} refs/heads/a\n# pack-refs with: peeled\n`, 'header not first'],
    [`# something else\n`, 'unknown comment'],
    [`${A} \n`, 'empty name'],
    [`${A} refs/heads/a b\n`, 'space in name'],
  ] as const) {
    it(`refuses ${why}`, () => {
      assert.throws(() => parsePackedRefs(bad), (e: unknown) => isGitfsError(e, ErrorCodes.IO));
    });
  }

  it('removes one entry and its peel line, keeping every other byte', () => {
    const text = Buffer.from(TEXT);
    assert.equal(removeFromPackedRefs(text, 'refs/heads/a')?.toString(), `${HEADER}\n${B} refs/heads/kernel/stable\n${T} refs/tags/v1\n^${P}\n`);
    assert.equal(removeFromPackedRefs(text, 'refs/tags/v1')?.toString(), `${HEADER}\n${A} refs/heads/a\n${B} refs/heads/kernel/stable\n`);
    assert.equal(removeFromPackedRefs(text, 'refs/heads/kernel'), undefined, 'prefix of a name is not a match');
    assert.equal(removeFromPackedRefs(text, 'refs/heads/missing'), undefined);
  });

  it('keeps ref names that are not UTF-8 intact when rewriting', () => {
    const weird = Buffer.concat([Buffer.from(`${A} refs/heads/x`), Buffer.from([0xff, 0xfe, 0xa0, 0x85]), Buffer.from(`\n${B} refs/heads/y\n`)]);
    const out = removeFromPackedRefs(weird, 'refs/heads/y');
    assert.ok(out !== undefined);
    assert.deepEqual(out, weird.subarray(0, weird.length - `${B} refs/heads/y\n`.length));
  });

  it('deletes from the file under packed-refs.lock', async () => {
    const dir = tempDir('packed');
    fs.writeFileSync(path.join(dir, 'packed-refs'), TEXT);
    const clock = new ManualClock();
    assert.equal(await deletePackedRef(dir, 'refs/heads/kernel/stable', { clock }), true);
    assert.equal(await deletePackedRef(dir, 'refs/heads/kernel/stable', { clock }), false);
    assert.deepEqual(
      (await readPackedRefs(dir)).refs.map((r) => r.ref),
      ['refs/heads/a', 'refs/tags/v1'],
    );
    assert.deepEqual(filesBelow(dir), ['packed-refs']);
    fs.writeFileSync(path.join(dir, 'packed-refs.lock'), '');
    await assert.rejects(deletePackedRef(dir, 'refs/heads/a', { clock }), (e: unknown) => isGitfsError(e, ErrorCodes.REF_CONFLICT));
    fs.rmSync(path.join(dir, 'packed-refs.lock'));
  });

  it('treats a missing file as empty', async () => {
    const dir = tempDir('packed');
    assert.deepEqual((await readPackedRefs(dir)).refs, []);
    assert.equal(await deletePackedRef(dir, 'refs/heads/a', { clock: new ManualClock() }), false);
    assert.deepEqual(filesBelow(dir), []);
  });
});

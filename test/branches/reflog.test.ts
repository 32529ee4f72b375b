/** Reflog lines exactly as git writes them; torn final lines after a crash. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { ZERO_OID } from '../../src/objects/oid.js';
import {
  appendReflog,
  formatReflogLine,
  formatTzOffset,
  normalizeReflogMessage,
  parseReflog,
  parseReflogLine,
  readReflog,
  readReflogNewestFirst,
  validateIdentity,
} from '../../src/branches/reflog.js';
import fc from 'fast-check';
import { cleanupTempDirs, tempDir } from '../support/tmp.js';
import { IDENTITY, fakeOid } from './helpers.js';

const A = fakeOid('a');
const B = fakeOid('b');

describe('branches/reflog', () => {
  after(cleanupTempDirs);

  it('formats a line exactly as git does', () => {
    const line = formatReflogLine({
      oldOid: ZERO_OID,
      newOid: A,
      identity: IDENTITY,
      timeMs: 1_700_000_000_999,
      tzOffsetMinutes: 60,
      message: 'branch: Created from main',
    });
    assert.equal(line, `${ZERO_OID} ${A} Gitfs Test <gitfs@example.com> 1700000000 +0100\tbranch: Created from main\n`);
  });

  it('formats time zones', () => {
    assert.equal(formatTzOffset(0), '+0000');
    assert.equal(formatTzOffset(-330), '-0530');
    assert.equal(formatTzOffset(845), '+1405');
    assert.throws(() => formatTzOffset(1.5), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT));
  });

  it('normalises messages like git and omits the tab when empty', () => {
    assert.equal(normalizeReflogMessage('  a\n\n b\t\tc  \r\n'), 'a b c');
    const line = formatReflogLine({ oldOid: A, newOid: B, identity: IDENTITY, timeMs: 0, tzOffsetMinutes: 0, message: ' \n ' });
    assert.equal(line, `${A} ${B} Gitfs Test <gitfs@example.com> 0 +0000\n`);
    assert.equal(parseReflogLine(line.slice(0, -1))?.message, '');
  });

  it('refuses identities that would break the line', () => {
    for (const identity of [
      { name: 'a<b', email: 'x' },
      { name: 'a', email: 'x>' },
      { name: 'a\nb', email: 'x' },
      { name: '  ', email: 'x' },
    ]) {
      assert.throws(() => validateIdentity(identity), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT));
    }
  });

  it('parses what it formats', () => {
    const entry = { oldOid: A, newOid: B, identity: IDENTITY, timeMs: 1_234_567_890_000, tzOffsetMinutes: -330, message: 'commit: x' };
    const parsed = parseReflog(formatReflogLine(entry));
    assert.deepEqual(parsed, [
      { oldOid: A, newOid: B, name: IDENTITY.name, email: IDENTITY.email, timestampSeconds: 1_234_567_890, tzOffsetMinutes: -330, message: 'commit: x' },
    ]);
  });

  it('ignores a torn last line and lines git would skip', () => {
    const good = formatReflogLine({ oldOid: ZERO_OID, newOid: A, identity: IDENTITY, timeMs: 1000, tzOffsetMinutes: 0, message: 'm' });
    const text = `${good}garbage line\n${good}${good.slice(0, 50)}`;
    assert.equal(parseReflog(text).length, 2);
  });

  it('appends after cutting off a torn line', async () => {
    const dir = tempDir('reflog');
    const file = path.join(dir, 'logs', 'refs', 'heads', 'a', 'b');
    const e1 = { oldOid: ZERO_OID, newOid: A, identity: IDENTITY, timeMs: 1000, tzOffsetMinutes: 0, message: 'one' };
    const e2 = { oldOid: A, newOid: B, identity: IDENTITY, timeMs: 2000, tzOffsetMinutes: 0, message: 'two' };
    assert.equal(await appendReflog(file, e1), 0);
    const len = fs.statSync(file).size;
    fs.appendFileSync(file, formatReflogLine(e2).slice(0, 30)); // crash mid-append
    assert.equal((await readReflog(file)).length, 1);
    assert.equal(await appendReflog(file, e2), len);
    assert.equal(fs.readFileSync(file, 'utf8'), formatReflogLine(e1) + formatReflogLine(e2));
    assert.deepEqual(
      (await readReflog(file)).map((e) => e.message),
      ['one', 'two'],
    );
    assert.deepEqual(await readReflog(path.join(dir, 'missing')), []);
  });

  it('cuts a torn line that spans more than one read chunk', async () => {
    const dir = tempDir('reflog');
    const file = path.join(dir, 'log');
    const e1 = { oldOid: ZERO_OID, newOid: A, identity: IDENTITY, timeMs: 1000, tzOffsetMinutes: 0, message: 'one' };
    await appendReflog(file, e1);
    fs.appendFileSync(file, 'x'.repeat(10_000));
    await appendReflog(file, { ...e1, message: 'two' });
    assert.deepEqual(
      (await readReflog(file)).map((e) => e.message),
      ['one', 'two'],
    );
    fs.writeFileSync(file, 'y'.repeat(9000));
    await appendReflog(file, e1);
    assert.equal(fs.readFileSync(file, 'utf8'), formatReflogLine(e1));
  });

  describe('read newest first (readReflogNewestFirst)', () => {
    const collect = async (file: string): Promise<unknown[]> => {
      const out: unknown[] = [];
      for await (const e of readReflogNewestFirst(file)) out.push(e);
      return out;
    };

    it('gives the entries readReflog gives, newest first: torn tails, lines git skips, lines longer than a block, UTF-8 across blocks (property)', async () => {
      const dir = tempDir('reflog-backward');
      const line = fc.oneof(
        fc.record({ message: fc.string({ maxLength: 40 }), name: fc.constantFrom('Ann', 'Zoë Åberg', '李小龍'), seconds: fc.integer({ min: 0, max: 2 ** 33 }) }).map(
          ({ message, name, seconds }) => formatReflogLine({ oldOid: A, newOid: B, identity: { name, email: 'x@y' }, timeMs: seconds * 1000, tzOffsetMinutes: 0, message }),
        ),
        fc.integer({ min: 60_000, max: 200_000 }).map((n) => formatReflogLine({ oldOid: A, newOid: B, identity: IDENTITY, timeMs: 0, tzOffsetMinutes: 0, message: 'é'.repeat(n) })),
        fc.constantFrom('garbage\n', '\n', `${A} ${B} no time\n`),
      );
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(line, { maxLength: 12 }), fc.constantFrom('', `${A} ${B} torn`, 'x'), async (lines, tail) => {
          const file = path.join(dir, `log-${run++}`);
          fs.writeFileSync(file, lines.join('') + tail);
          assert.deepEqual(await collect(file), (await readReflog(file)).reverse());
        }),
        { numRuns: 60 },
      );
      assert.deepEqual(await collect(path.join(dir, 'absent')), []);
    });

    it('reads only as far back as the caller goes: the newest entries of a 30 MB reflog cost one 64 KiB block', async () => {
      const file = path.join(tempDir('reflog-long'), 'log');
      const one = formatReflogLine({ oldOid: A, newOid: B, identity: IDENTITY, timeMs: 1_700_000_000_000, tzOffsetMinutes: 0, message: 'commit (mount): a change' });
      fs.writeFileSync(file, one.repeat(Math.ceil(30e6 / one.length)));
      const readBytes = (): number => Number(/^rchar: (\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'))?.[1]);
      const before = readBytes();
      let seen = 0;
      for await (const e of readReflogNewestFirst(file)) {
        assert.equal(e.newOid, B);
        if (++seen === 3) break;
      }
      const read = readBytes() - before;
      assert.ok(read < 96 * 1024, `read ${read} bytes for the 3 newest entries`);
    });
  });
});

/**
 * Announcement encoding: every valid announcement survives encode → decode unchanged, and
 * decode refuses (PacketError 'malformed') every field outside its bounds, checked on bytes
 * built straight from the protobuf schema so the encoder's own checks cannot hide a gap.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  compareNames,
  decodeAnnouncement,
  encodeAnnouncement,
  inRange,
  MAX_ENDPOINTS,
  type Announcement,
  type RolloutReport,
} from '../../src/multicast/announcement.js';
import type { BranchName } from '../../src/branches/ref-name.js';
import { MAX_RECALL_SIGNATURE } from '../../src/rollout/recall.js';
import { PacketError } from '../../src/multicast/packet-error.js';
import { AnnouncementMessage } from '../../src/multicast/schema.js';
import { announcementArb, branchNameArb } from './arbitraries.js';
import { announcement, head, randomOid } from './fixture.js';

/** The wire object of `a`, field for field as encodeAnnouncement builds it, before any override. */
function wire(a: Announcement): Record<string, unknown> {
  return {
    node_id: a.nodeId,
    instance: Buffer.from(a.instance, 'hex'),
    seq: a.seq,
    time_ms: a.timeMs,
    name: a.name,
    endpoints: a.endpoints.map((e) => ({ address: Buffer.from(e.address.split('.').map(Number)), port: e.port })),
    part: a.part,
    parts: a.parts,
    range_start: a.rangeStart,
    range_end: a.rangeEnd,
    heads: a.heads.map((h) => ({ branch: h.branch, oid: Buffer.from(h.oid, 'hex'), commit_time: h.commitTime })),
    revocation_version: a.revocationVersion,
    interval_ms: a.intervalMs,
  };
}

function encodeWire(fields: Record<string, unknown>): Uint8Array {
  return AnnouncementMessage.encode(AnnouncementMessage.fromObject(fields)).finish();
}

function assertMalformed(bytes: Uint8Array, what: string): void {
  assert.throws(
    () => decodeAnnouncement(bytes),
    (e: unknown) => e instanceof PacketError && e.reason === 'malformed',
    `${what}: expected PacketError malformed`,
  );
}

const BASE = announcement('0123456789abcdef', {
  heads: [head('alpha'), head('beta'), head('gamma')],
  endpoints: [{ address: '10.1.2.3', port: 7420 }],
});

describe('multicast/announcement: encoding and bounds', function () {
  it('round-trips every valid announcement unchanged (property)', () => {
    fc.assert(
      fc.property(announcementArb, (a) => {
        const decoded = decodeAnnouncement(encodeAnnouncement(a));
        assert.deepStrictEqual(decoded, a);
      }),
      { numRuns: 400 },
    );
  });

  it('the wire builder used below produces exactly what encodeAnnouncement produces', () => {
    assert.deepEqual(Buffer.from(encodeWire(wire(BASE))), Buffer.from(encodeAnnouncement(BASE)));
    assert.deepStrictEqual(decodeAnnouncement(encodeWire(wire(BASE))), BASE);
  });

  const cases: [string, Record<string, unknown>][] = [
    ['node id with upper-case hex', { node_id: '0123456789ABCDEF' }],
    ['node id of 15 digits', { node_id: '0123456789abcde' }],
    ['node id of 17 digits', { node_id: '0123456789abcdef0' }],
    ['empty node id', { node_id: '' }],
    ['node id that is not hex', { node_id: '0123456789abcdeg' }],
    ['instance of 15 bytes', { instance: Buffer.alloc(15, 1) }],
    ['instance of 17 bytes', { instance: Buffer.alloc(17, 1) }],
    ['empty instance', { instance: Buffer.alloc(0) }],
    ['sequence number 0', { seq: 0 }],
    ['sequence number beyond 2^53', { seq: '18446744073709551615' }],
    ['time 0', { time_ms: 0 }],
    ['name of 65 bytes', { name: 'x'.repeat(65) }],
    ['name of 33 two-byte characters (66 bytes)', { name: 'é'.repeat(33) }],
    ['name with a control character', { name: 'node\n' }],
    ['name with DEL', { name: 'node\x7f' }],
    ['parts 0', { parts: 0, part: 0 }],
    ['part equal to parts', { part: 2, parts: 2 }],
    ['part beyond parts', { part: 7, parts: 3 }],
    ['parts beyond MAX_PARTS', { parts: 4097, part: 0 }],
    ['interval 0', { interval_ms: 0 }],
    ['interval 99 ms', { interval_ms: 99 }],
    ['interval over an hour', { interval_ms: 3_600_001 }],
    ['revocation version beyond 2^53', { revocation_version: '18446744073709551615' }],
    ['too many endpoints', { endpoints: Array.from({ length: MAX_ENDPOINTS + 1 }, (_, i) => ({ address: Buffer.from([10, 0, 0, i]), port: 7420 })) }],
    ['endpoint address of 16 bytes', { endpoints: [{ address: Buffer.alloc(16), port: 7420 }] }],
    ['endpoint address of 3 bytes', { endpoints: [{ address: Buffer.from([10, 0, 0]), port: 7420 }] }],
    ['endpoint port 0', { endpoints: [{ address: Buffer.from([10, 0, 0, 1]), port: 0 }] }],
    ['endpoint port 65536', { endpoints: [{ address: Buffer.from([10, 0, 0, 1]), port: 65536 }] }],
    ['range start that is not a branch name', { range_start: 'a..b' }],
    ['range end that is not a branch name', { range_end: 'HEAD' }],
    ['empty range (start == end)', { range_start: 'm', range_end: 'm', heads: [] }],
    ['reversed range', { range_start: 'z', range_end: 'a', heads: [] }],
  ];

  const headCases: [string, unknown[], Record<string, unknown>?][] = [
    ['heads not sorted', [{ branch: 'beta' }, { branch: 'alpha' }]],
    ['a repeated head', [{ branch: 'alpha' }, { branch: 'alpha' }]],
    ['heads sorted by UTF-16, not by UTF-8 bytes', [{ branch: '\u{1F600}' }, { branch: '\uFF71' }]],
    ['a head before its range', [{ branch: 'alpha' }], { range_start: 'b' }],
    ['a head at its range end', [{ branch: 'm' }], { range_end: 'm' }],
    ['a head after its range', [{ branch: 'zeta' }], { range_start: 'a', range_end: 'n' }],
    ['a branch name with ".."', [{ branch: 'a..b' }]],
    ['an empty branch name', [{ branch: '' }]],
    ['the branch name HEAD', [{ branch: 'HEAD' }]],
    ['a branch name starting with "-"', [{ branch: '-x' }]],
    ['a branch name with a space', [{ branch: 'a b' }]],
    ['a branch name ending in .lock', [{ branch: 'x.lock' }]],
    ['a branch name of 201 bytes', [{ branch: 'b'.repeat(201) }]],
    ['an oid of 19 bytes', [{ branch: 'alpha', oid: Buffer.alloc(19, 7) }]],
    ['an oid of 21 bytes', [{ branch: 'alpha', oid: Buffer.alloc(21, 7) }]],
    ['an empty oid', [{ branch: 'alpha', oid: Buffer.alloc(0) }]],
    ['a commit time beyond 2^53', [{ branch: 'alpha', commit_time: '18446744073709551615' }]],
  ];

  for (const [what, override] of cases) {
    it(`refuses ${what}`, () => assertMalformed(encodeWire({ ...wire(BASE), ...override }), what));
  }

  for (const [what, heads, extra] of headCases) {
    it(`refuses ${what}`, () => {
      const full = heads.map((h) => ({ oid: Buffer.from(randomOid(), 'hex'), commit_time: 1, ...(h as object) }));
      assertMalformed(encodeWire({ ...wire(BASE), range_start: '', range_end: '', ...extra, heads: full }), what);
    });
  }

  it('refuses bytes that are not an announcement at all', () => {
    assertMalformed(Buffer.from([0xff, 0xff, 0xff, 0xff]), 'invalid wire type');
    assertMalformed(encodeAnnouncement(BASE).subarray(0, 40), 'truncated');
    assertMalformed(new Uint8Array(0), 'empty');
  });

  it('accepts the bounds themselves (so the refusals above are about the bounds)', () => {
    const edge = announcement('ffffffffffffffff', {
      seq: Number.MAX_SAFE_INTEGER,
      timeMs: Number.MAX_SAFE_INTEGER,
      name: 'é'.repeat(32),
      endpoints: Array.from({ length: MAX_ENDPOINTS }, (_, i) => ({ address: `255.255.255.${i}`, port: 65535 })),
      part: 4095,
      parts: 4096,
      intervalMs: 3_600_000,
      revocationVersion: Number.MAX_SAFE_INTEGER,
      rangeStart: 'a',
      rangeEnd: 'n',
      heads: [head('a'), head('m'.repeat(200), randomOid(), Number.MAX_SAFE_INTEGER)],
    });
    assert.deepStrictEqual(decodeAnnouncement(encodeAnnouncement(edge)), edge);
    const low = announcement('0000000000000000', { intervalMs: 100, seq: 1, timeMs: 1, name: '', endpoints: [], heads: [head('x', randomOid(), 0)] });
    assert.deepStrictEqual(decodeAnnouncement(encodeAnnouncement(low)), low);
  });

  it('a commit time past what decoding takes (git takes any digits) is sent as 0, the part and its other heads intact', () => {
    for (const odd of [2 ** 53 + 2, 1e20, Infinity, -1, NaN]) {
      const a = announcement('0000000000000000', { heads: [head('a', randomOid(), odd), head('b', randomOid(), 1_700_000_000)] });
      const got = decodeAnnouncement(encodeAnnouncement(a));
      assert.deepStrictEqual(got.heads.map((h) => [h.branch, h.commitTime]), [['a', 0], ['b', 1_700_000_000]], String(odd));
    }
  });

  it('a recall signature travels only beside a recall and within 512 bytes: a longer one is not sent (the part intact), and a packet carrying one otherwise is refused', () => {
    const recalled = randomOid();
    const report = (recallSignature: Buffer | null, withRecall = true): RolloutReport => ({ channel: 'site/prod' as BranchName, release: recalled, version: '2.0', state: 'blessed', failures: 0, blessed: recalled, blessedVersion: '2.0', paused: false, recalled: withRecall ? recalled : null, recallSignature });
    const sent = (r: RolloutReport): RolloutReport | undefined => decodeAnnouncement(encodeAnnouncement(announcement('0000000000000000', { heads: [head('a')], rollouts: [r] }))).rollouts[0];
    assert.deepStrictEqual(sent(report(Buffer.alloc(MAX_RECALL_SIGNATURE, 7)))?.recallSignature, Buffer.alloc(MAX_RECALL_SIGNATURE, 7));
    assert.equal(sent(report(Buffer.alloc(MAX_RECALL_SIGNATURE + 1, 7)))?.recallSignature, null);
    assert.deepStrictEqual(sent(report(Buffer.alloc(8, 7), false)), report(null, false));
    const raw = (signature: Buffer, withRecall: boolean): Uint8Array =>
      encodeWire({ ...wire(BASE), rollouts: [{ channel: 'site/prod', release: Buffer.alloc(20, 1), version: '2.0', state: 'blessed', failures: 0, blessed: Buffer.alloc(0), blessed_version: '', paused: false, recalled: withRecall ? Buffer.alloc(20, 1) : Buffer.alloc(0), recall_signature: signature }] });
    assert.deepStrictEqual(decodeAnnouncement(raw(Buffer.alloc(MAX_RECALL_SIGNATURE, 1), true)).rollouts[0]?.recallSignature, Buffer.alloc(MAX_RECALL_SIGNATURE, 1));
    assertMalformed(raw(Buffer.alloc(MAX_RECALL_SIGNATURE + 1, 1), true), 'a recall signature of 513 bytes');
    assertMalformed(raw(Buffer.alloc(8, 1), false), 'a recall signature without a recall');
  });

  it('decoding arbitrary bytes either throws PacketError or yields an announcement that re-encodes to itself (property)', () => {
    const valid = encodeAnnouncement(BASE);
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc.tuple(fc.nat(valid.length - 1), fc.nat(255)).map(([i, x]) => {
        const b = Buffer.from(valid);
        b[i] = x;
        return b;
      }),
    );
    fc.assert(
      fc.property(bytes, (b) => {
        let a: Announcement;
        try {
          a = decodeAnnouncement(b);
        } catch (e) {
          assert.ok(e instanceof PacketError, `not a PacketError: ${String(e)}`);
          return;
        }
        assert.deepStrictEqual(decodeAnnouncement(encodeAnnouncement(a)), a);
        for (const h of a.heads) assert.ok(inRange(h.branch, a.rangeStart, a.rangeEnd));
      }),
      { numRuns: 3000 },
    );
  });

  it('compareNames orders by UTF-8 bytes, as git sorts refs (property)', () => {
    fc.assert(
      fc.property(branchNameArb, branchNameArb, (a, b) => {
        assert.equal(Math.sign(compareNames(a, b)), Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
    );
    assert.ok(compareNames('\uFF71', '\u{1F600}') < 0);
  });
});

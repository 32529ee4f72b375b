/** fast-check generators for announcements: branch names (git's rules, UTF-8 byte order), heads, whole valid announcements. */
import fc from 'fast-check';
import { isBranchName, type BranchName } from '../../src/branches/ref-name.js';
import type { NodeId } from '../../src/cluster/node-id.js';
import { compareNames, inRange, type Announcement, type Endpoint, type Head, type RolloutReport } from '../../src/multicast/announcement.js';
import { NODE_ROLLOUT_STATES } from '../../src/rollout/waves.js';
import type { Oid } from '../../src/objects/oid.js';

const hex = (bytes: number): fc.Arbitrary<string> => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));

export const nodeIdArb: fc.Arbitrary<NodeId> = hex(8) as fc.Arbitrary<NodeId>;
export const instanceArb: fc.Arbitrary<string> = hex(16);
export const oidArb: fc.Arbitrary<Oid> = hex(20) as fc.Arbitrary<Oid>;

/**
 * Characters branch names are made of: plain ones, the ones git's rules single out ('.', '-',
 * '@', '{', '/'), and non-ASCII whose UTF-8 order differs from JavaScript's UTF-16 order
 * (U+FF71 sorts before U+1F600 in UTF-16 code units, after it in UTF-8).
 */
const ASCII_UNITS = [...'abcdefghijklmnopqrstuvwxyzABCZ0123456789_-.@{}+=,'];
const WIDE_UNITS = ['é', 'ß', '日', '本', '\uFF71', '\uE000', '😀', '𝄞'];
const unit = fc.oneof({ arbitrary: fc.constantFrom(...ASCII_UNITS), weight: 9 }, { arbitrary: fc.constantFrom(...WIDE_UNITS), weight: 1 });

function nameOf(componentMax: number, componentsMax: number): fc.Arbitrary<BranchName> {
  return fc
    .array(fc.string({ unit, minLength: 1, maxLength: componentMax, size: 'max' }), { minLength: 1, maxLength: componentsMax, size: 'max' })
    .map((cs) => cs.join('/'))
    .filter(isBranchName) as fc.Arbitrary<BranchName>;
}

/** Valid branch names, mostly short, some near the 200-byte limit. */
export const branchNameArb: fc.Arbitrary<BranchName> = fc.oneof(
  { arbitrary: nameOf(12, 3), weight: 6 },
  { arbitrary: nameOf(60, 5), weight: 3 },
  { arbitrary: fc.string({ unit: fc.constantFrom(...'abcdefghij0123456789'), minLength: 180, maxLength: 200 }) as fc.Arbitrary<BranchName>, weight: 1 },
);

export function sortNames<T extends string>(names: readonly T[]): T[] {
  return [...names].sort(compareNames);
}

export const commitTimeArb = fc.oneof(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.maxSafeNat());

/** Heads with distinct branch names, in no particular order. */
export function headsArb(maxLength: number): fc.Arbitrary<Head[]> {
  return fc.uniqueArray(
    fc.record({ branch: branchNameArb, oid: oidArb, commitTime: commitTimeArb }).map((h): Head => ({ ...h })),
    // size 'max': lengths spread over the whole 0..maxLength, not fast-check's default of about ten.
    { maxLength, selector: (h) => h.branch, size: 'max' },
  );
}

const wellFormed = (s: string): boolean => Buffer.from(s, 'utf8').toString('utf8') === s;
export const nodeNameArb = fc
  .oneof(fc.string({ unit: 'grapheme', maxLength: 64 }), fc.string({ unit: 'binary', maxLength: 40 }))
  .filter((s) => wellFormed(s) && Buffer.byteLength(s) <= 64 && !/[\x00-\x1f\x7f]/.test(s));

export const endpointArb: fc.Arbitrary<Endpoint> = fc
  .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 65535 }))
  .map(([a, b, c, d, port]): Endpoint => ({ address: `${a}.${b}.${c}.${d}`, port }));

const versionArb = fc.oneof(fc.constant(''), fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/));

/** Rollout reports with distinct channels, sorted. */
export const rolloutsArb: fc.Arbitrary<RolloutReport[]> = fc
  .uniqueArray(
    fc.record({
      channel: branchNameArb,
      release: fc.option(oidArb, { nil: null }),
      version: versionArb,
      state: fc.constantFrom(...NODE_ROLLOUT_STATES),
      failures: fc.nat(1000),
      blessed: fc.option(oidArb, { nil: null }),
      blessedVersion: versionArb,
      paused: fc.boolean(),
      recalled: fc.option(oidArb, { nil: null }),
      signature: fc.option(fc.uint8Array({ minLength: 1, maxLength: 512 }), { nil: null }),
    }).map(({ signature, ...r }): RolloutReport => ({ ...r, recallSignature: r.recalled === null || signature === null ? null : Buffer.from(signature) })),
    { maxLength: 8, selector: (r) => r.channel },
  )
  .map((rs) => [...rs].sort((a, b) => compareNames(a.channel, b.channel)));

const positiveSafe = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.maxSafeNat().map((n) => Math.max(1, n)));

/** Announcements decodeAnnouncement must accept: every field inside its bounds, heads sorted, unique and inside the part's range. */
export const announcementArb: fc.Arbitrary<Announcement> = fc
  .record({
    nodeId: nodeIdArb,
    instance: instanceArb,
    seq: positiveSafe,
    timeMs: positiveSafe,
    name: nodeNameArb,
    endpoints: fc.array(endpointArb, { maxLength: 8 }),
    parts: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 4096 })),
    partSeed: fc.nat(),
    heads: headsArb(12),
    boundedStart: fc.boolean(),
    boundedEnd: fc.boolean(),
    keep: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
    revocationVersion: fc.oneof(fc.constant(0), fc.maxSafeNat()),
    intervalMs: fc.integer({ min: 100, max: 3_600_000 }),
    rollouts: rolloutsArb,
  })
  .map((r): Announcement => {
    const sorted = [...r.heads].sort((a, b) => compareNames(a.branch, b.branch));
    let candidates = sorted;
    let rangeStart = '';
    let rangeEnd = '';
    if (r.boundedStart && candidates.length > 0) rangeStart = (candidates[0] as Head).branch;
    if (r.boundedEnd && candidates.length > (rangeStart === '' ? 0 : 1)) {
      rangeEnd = (candidates[candidates.length - 1] as Head).branch;
      candidates = candidates.slice(0, -1);
    }
    const heads = candidates.filter((_, i) => r.keep[i] !== false);
    return {
      nodeId: r.nodeId,
      instance: r.instance,
      seq: r.seq,
      timeMs: r.timeMs,
      name: r.name,
      endpoints: r.endpoints,
      part: r.partSeed % r.parts,
      parts: r.parts,
      rangeStart,
      rangeEnd,
      heads,
      revocationVersion: r.revocationVersion,
      intervalMs: r.intervalMs,
      rollouts: r.rollouts.filter((x) => inRange(x.channel, rangeStart, rangeEnd)),
    };
  });

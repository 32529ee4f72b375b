/**
 * What a node says about itself: typed, validated both ways. Encoding never produces what
 * decoding would refuse; decoding refuses anything out of bounds (PacketError with a reason
 * the receiver counts).
 */
import { isBranchName, type BranchName } from '../branches/ref-name.js';
import { isNodeId, type NodeId } from '../cluster/node-id.js';
import { OID_BYTES, oidFromBytes, oidToBytes, type Oid } from '../objects/oid.js';
import { MAX_RECALL_SIGNATURE } from '../rollout/recall.js';
import { NODE_ROLLOUT_STATES, type NodeRolloutState } from '../rollout/waves.js';
import { PacketError } from './packet-error.js';
import { AnnouncementHeaderMessage, AnnouncementMessage, TO_OBJECT } from './schema.js';

export interface Endpoint {
  /** IPv4 dotted quad or IPv6 text. */
  readonly address: string;
  readonly port: number;
}

export interface Head {
  readonly branch: BranchName;
  readonly oid: Oid;
  /** Committer time, seconds since the epoch. */
  readonly commitTime: number;
}

/** A node's rollout agent, for one channel (docs/PROTOCOL.md "Announcements"). */
export interface RolloutReport {
  readonly channel: BranchName;
  readonly release: Oid | null;
  readonly version: string;
  readonly state: NodeRolloutState;
  readonly failures: number;
  readonly blessed: Oid | null;
  readonly blessedVersion: string;
  readonly paused: boolean;
  /** A release rolled back cluster-wide: every node that blessed it goes back to the one before. */
  readonly recalled: Oid | null;
  /** The operator's signature of that recall (recall.ts; the binary SSHSIG blob): a node acts only on a recall it verified. */
  readonly recallSignature: Buffer | null;
}

/** A report as the CLI shows it (`gitfs peers`, `gitfs rollout status`): whether a recall is signed, not its signature. */
export type ReportView = Omit<RolloutReport, 'recallSignature'> & { readonly recallSigned: boolean };

export function reportView({ recallSignature, ...rest }: RolloutReport): ReportView {
  return { ...rest, recallSigned: recallSignature !== null };
}

export interface Announcement {
  readonly nodeId: NodeId;
  /** 32 hex digits, new at every daemon start. */
  readonly instance: string;
  readonly seq: number;
  readonly timeMs: number;
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
  readonly part: number;
  readonly parts: number;
  /** Every head whose branch is in [rangeStart, rangeEnd) is listed in this part; rangeEnd '' is unbounded. */
  readonly rangeStart: string;
  readonly rangeEnd: string;
  readonly heads: readonly Head[];
  readonly revocationVersion: number;
  readonly intervalMs: number;
  /** Every rollout report whose channel is in [rangeStart, rangeEnd), sorted by channel. */
  readonly rollouts: readonly RolloutReport[];
}

/** What a receiver reads of an announcement before its signature is checked: enough for the time window, the replay guard and the budget. */
export type AnnouncementHeader = Pick<Announcement, 'nodeId' | 'instance' | 'seq' | 'timeMs' | 'part'>;

export const MAX_NAME_BYTES = 64;
export const MAX_ENDPOINTS = 8;
export const MAX_PARTS = 4096;
/** Most rollout reports in one part (a datagram holds far fewer). */
export const MAX_ROLLOUTS = 64;
const MAX_FAILURES = 1000;
const VERSION_RE = /^(?:[A-Za-z0-9][A-Za-z0-9._+~-]{0,63})?$/;
const INSTANCE_BYTES = 16;
const MIN_INTERVAL_MS = 100;
const MAX_INTERVAL_MS = 3_600_000;

function encodeAddress(address: string): Buffer {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (v4 !== null) return Buffer.from(v4.slice(1).map(Number));
  throw new PacketError('malformed', `only IPv4 endpoints are announced: ${address}`);
}

function decodeAddress(bytes: Buffer): string {
  if (bytes.length !== 4) throw new PacketError('malformed', `endpoint address of ${bytes.length} bytes`);
  return [...bytes].join('.');
}

export function encodeAnnouncement(a: Announcement): Uint8Array {
  return AnnouncementMessage.encode(
    AnnouncementMessage.fromObject({
      node_id: a.nodeId,
      instance: Buffer.from(a.instance, 'hex'),
      seq: a.seq,
      time_ms: a.timeMs,
      name: a.name,
      endpoints: a.endpoints.map((e) => ({ address: encodeAddress(e.address), port: e.port })),
      part: a.part,
      parts: a.parts,
      range_start: a.rangeStart,
      range_end: a.rangeEnd,
      // A commit's time is whatever digits its committer line holds (git takes any): one past what
      // decoding takes is sent as 0, rather than make peers refuse the part and every head in it.
      heads: a.heads.map((h) => ({ branch: h.branch, oid: oidToBytes(h.oid), commit_time: Number.isSafeInteger(h.commitTime) && h.commitTime >= 0 ? h.commitTime : 0 })),
      revocation_version: a.revocationVersion,
      interval_ms: a.intervalMs,
      rollouts: a.rollouts.map((r) => ({
        channel: r.channel,
        release: r.release === null ? Buffer.alloc(0) : oidToBytes(r.release),
        version: r.version,
        state: r.state,
        failures: r.failures,
        blessed: r.blessed === null ? Buffer.alloc(0) : oidToBytes(r.blessed),
        blessed_version: r.blessedVersion,
        paused: r.paused,
        recalled: r.recalled === null ? Buffer.alloc(0) : oidToBytes(r.recalled),
        // One too long for peers to take (never made here) is not sent, rather than make them refuse the part.
        recall_signature: r.recalled === null || r.recallSignature === null || r.recallSignature.length > MAX_RECALL_SIGNATURE ? Buffer.alloc(0) : r.recallSignature,
      })),
    }),
  ).finish();
}

interface RawHeader {
  node_id: string;
  instance: Buffer;
  seq: number;
  time_ms: number;
  part: number;
}

interface RawAnnouncement extends RawHeader {
  name: string;
  endpoints: { address: Buffer; port: number }[];
  parts: number;
  range_start: string;
  range_end: string;
  heads: { branch: string; oid: Buffer; commit_time: number }[];
  revocation_version: number;
  interval_ms: number;
  rollouts: { channel: string; release: Buffer; version: string; state: string; failures: number; blessed: Buffer; blessed_version: string; paused: boolean; recalled: Buffer; recall_signature: Buffer }[];
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new PacketError('malformed', what);
}

function checkHeader(raw: RawHeader): void {
  check(isNodeId(raw.node_id), 'bad node id');
  check(raw.instance.length === INSTANCE_BYTES, 'bad instance id');
  check(Number.isSafeInteger(raw.seq) && raw.seq > 0, 'bad sequence number');
  check(Number.isSafeInteger(raw.time_ms) && raw.time_ms > 0, 'bad time');
}

/**
 * The header of an announcement, or undefined if it does not decode or is out of bounds (the whole
 * body's decoding, once its signature is checked, says why). Only the header's fields are read:
 * the heads and reports, most of a datagram, are skipped unread, as forgeries are many.
 */
export function decodeHeader(bytes: Uint8Array): AnnouncementHeader | undefined {
  try {
    const raw = AnnouncementHeaderMessage.toObject(AnnouncementHeaderMessage.decode(bytes), TO_OBJECT) as RawHeader;
    checkHeader(raw);
    return { nodeId: raw.node_id as NodeId, instance: raw.instance.toString('hex'), seq: raw.seq, timeMs: raw.time_ms, part: raw.part };
  } catch {
    return undefined;
  }
}

export function decodeAnnouncement(bytes: Uint8Array): Announcement {
  let raw: RawAnnouncement;
  try {
    raw = AnnouncementMessage.toObject(AnnouncementMessage.decode(bytes), TO_OBJECT) as RawAnnouncement;
  } catch (e) {
    throw new PacketError('malformed', `announcement does not decode: ${(e as Error).message}`);
  }
  checkHeader(raw);
  check(Buffer.byteLength(raw.name) <= MAX_NAME_BYTES && !/[\x00-\x1f\x7f]/.test(raw.name), 'bad name');
  check(raw.endpoints.length <= MAX_ENDPOINTS, 'too many endpoints');
  check(raw.parts >= 1 && raw.parts <= MAX_PARTS && raw.part < raw.parts, 'bad part numbers');
  check(raw.interval_ms >= MIN_INTERVAL_MS && raw.interval_ms <= MAX_INTERVAL_MS, 'bad interval');
  check(Number.isSafeInteger(raw.revocation_version) && raw.revocation_version >= 0, 'bad revocation version');
  check(raw.range_start === '' || isBranchName(raw.range_start), 'bad range start');
  check(raw.range_end === '' || isBranchName(raw.range_end), 'bad range end');
  check(raw.range_end === '' || compareNames(raw.range_start, raw.range_end) < 0, 'empty range');
  const endpoints = raw.endpoints.map((e) => {
    check(e.port >= 1 && e.port <= 65535, 'bad port');
    return { address: decodeAddress(e.address), port: e.port };
  });
  let previous: string | undefined;
  const heads = raw.heads.map((h): Head => {
    check(isBranchName(h.branch), 'bad branch name');
    check(h.oid.length === OID_BYTES, 'bad head id');
    check(Number.isSafeInteger(h.commit_time) && h.commit_time >= 0, 'bad commit time');
    check(inRange(h.branch, raw.range_start, raw.range_end), 'head outside its range');
    check(previous === undefined || compareNames(previous, h.branch) < 0, 'heads not sorted or repeated');
    previous = h.branch;
    return { branch: h.branch as BranchName, oid: oidFromBytes(h.oid), commitTime: h.commit_time };
  });
  check(raw.rollouts.length <= MAX_ROLLOUTS, 'too many rollout reports');
  const optionalOid = (b: Buffer, what: string): Oid | null => {
    check(b.length === 0 || b.length === OID_BYTES, `bad ${what}`);
    return b.length === 0 ? null : oidFromBytes(b);
  };
  let previousChannel: string | undefined;
  const rollouts = raw.rollouts.map((r): RolloutReport => {
    check(isBranchName(r.channel), 'bad rollout channel');
    check(inRange(r.channel, raw.range_start, raw.range_end), 'rollout report outside its range');
    check(previousChannel === undefined || compareNames(previousChannel, r.channel) < 0, 'rollouts not sorted or repeated');
    previousChannel = r.channel;
    check((NODE_ROLLOUT_STATES as readonly string[]).includes(r.state), 'bad rollout state');
    check(VERSION_RE.test(r.version) && VERSION_RE.test(r.blessed_version), 'bad rollout version');
    check(Number.isSafeInteger(r.failures) && r.failures >= 0 && r.failures <= MAX_FAILURES, 'bad rollout failure count');
    const recalled = optionalOid(r.recalled, 'recalled release');
    check(r.recall_signature.length <= MAX_RECALL_SIGNATURE && (recalled !== null || r.recall_signature.length === 0), 'bad recall signature');
    return {
      channel: r.channel as BranchName,
      release: optionalOid(r.release, 'rollout release'),
      version: r.version,
      state: r.state as NodeRolloutState,
      failures: r.failures,
      blessed: optionalOid(r.blessed, 'blessed release'),
      blessedVersion: r.blessed_version,
      paused: r.paused,
      recalled,
      // Checked (recall.ts) only by a node about to act on it.
      recallSignature: r.recall_signature.length === 0 ? null : Buffer.from(r.recall_signature),
    };
  });
  return {
    nodeId: raw.node_id as NodeId,
    instance: raw.instance.toString('hex'),
    seq: raw.seq,
    timeMs: raw.time_ms,
    name: raw.name,
    endpoints,
    part: raw.part,
    parts: raw.parts,
    rangeStart: raw.range_start,
    rangeEnd: raw.range_end,
    heads,
    revocationVersion: raw.revocation_version,
    intervalMs: raw.interval_ms,
    rollouts,
  };
}

/** Branch names compare bytewise (UTF-8), as git sorts refs. */
/**
 * UTF-8 byte order (= code point order) of two well-formed strings, without encoding them: UTF-16
 * code units order the same except that surrogates (code points from U+10000) sort below
 * U+E000–U+FFFF there and above them in UTF-8.
 */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

export function inRange(branch: string, start: string, end: string): boolean {
  return compareNames(branch, start) >= 0 && (end === '' || compareNames(branch, end) < 0);
}

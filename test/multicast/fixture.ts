/**
 * Real cluster members for in-process multicast and cluster tests: a CA made by initCluster in a
 * temporary directory, members certified by it (issueNodeCertificate + saveMembership), each
 * loaded back with loadMembership exactly as the daemon loads itself. Plus small helpers:
 * announcements, a settable clock, a logger that keeps its lines.
 */
import { X509Certificate, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { BranchName } from '../../src/branches/ref-name.js';
import { initCluster, issueNodeCertificate, loadAuthority, loadMembership, saveMembership } from '../../src/cluster/cluster-store.js';
import type { ClusterTrust, NodeIdentity } from '../../src/cluster/identity.js';
import type { NodeId } from '../../src/cluster/node-id.js';
import type { Announcement, Head } from '../../src/multicast/announcement.js';
import type { Oid } from '../../src/objects/oid.js';
import type { Clock } from '../../src/util/clock.js';
import type { Level, Logger } from '../../src/util/log.js';

export interface Member {
  readonly gitDir: string;
  readonly identity: NodeIdentity;
  readonly trust: ClusterTrust;
}

export interface Authority {
  readonly key: KeyObject;
  readonly cert: X509Certificate;
}

export interface TestCluster {
  /** The node where initCluster ran (holds the CA key). */
  readonly ca: Member;
  readonly authority: Authority;
  /** Certifies a new member whose files go to `gitDir`. */
  addMember(gitDir: string, nowMs?: number): Promise<Member>;
}

export async function makeCluster(gitDir: string, nowMs = Date.now()): Promise<TestCluster> {
  await initCluster(gitDir, nowMs);
  const ca = { gitDir, ...(await loadMembership(gitDir, nowMs)) };
  const authority = await loadAuthority(gitDir);
  return {
    ca,
    authority,
    async addMember(dir: string, now = nowMs) {
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const issued = issueNodeCertificate(authority, publicKey, now);
      await saveMembership(dir, { key: privateKey, certPem: issued.pem, caPem: authority.cert.toString() });
      return { gitDir: dir, ...(await loadMembership(dir, now)) };
    },
  };
}

export function randomOid(): Oid {
  return randomBytes(20).toString('hex') as Oid;
}

export function head(branch: string, oid: Oid = randomOid(), commitTime = 1_700_000_000): Head {
  return { branch: branch as BranchName, oid, commitTime };
}

/** A one-part announcement from `nodeId` listing `heads` (sorted by the caller). */
export function announcement(nodeId: NodeId | string, overrides: Partial<Announcement> = {}): Announcement {
  return {
    nodeId: nodeId as NodeId,
    instance: '11'.repeat(16),
    seq: 1,
    timeMs: Date.now(),
    name: 'node',
    endpoints: [{ address: '127.0.0.1', port: 7420 }],
    part: 0,
    parts: 1,
    rangeStart: '',
    rangeEnd: '',
    heads: [],
    revocationVersion: 0,
    intervalMs: 1000,
    rollouts: [],
    ...overrides,
  };
}

export class TestClock implements Clock {
  constructor(public ms = Date.now()) {}
  now(): number {
    return this.ms;
  }
}

export interface CapturedLine {
  readonly level: Level;
  readonly ns: string;
  readonly event: string;
  readonly fields: Record<string, unknown>;
}

/** A logger that keeps every line (all levels) in `lines`. */
export function captureLogger(lines: CapturedLine[] = [], ns = 'test'): Logger & { lines: CapturedLine[] } {
  return {
    lines,
    log(level, event, fields = {}) {
      lines.push({ level, ns, event, fields });
    },
    child(sub) {
      return captureLogger(lines, `${ns}:${sub}`);
    },
  };
}

/**
 * What a flood of forged announcements costs a node's receiver (src/multicast/receiver.ts, wired
 * as the daemon wires it): for each kind of forgery (another cluster's member certificate
 * tagged with ours, a member's certificate with a bad signature, a copy of a packet the member
 * sent), packets from as many source
 * addresses fed as fast as one thread takes them for 2 s, with the checking budget
 * (verify-budget.ts) and without. Prints the packets per second one thread takes (so the flood
 * that would fill it), how many of them have their certificate and signature checked, the cost per packet, and whether a member
 * heard before the flood is still heard.
 * Usage (after `make build`): node dist/bench/forged-flood.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { initCluster, issueNodeCertificate, loadAuthority, loadMembership, saveMembership } from '../src/cluster/cluster-store.js';
import type { NodeIdentity } from '../src/cluster/identity.js';
import { encodeAnnouncement } from '../src/multicast/announcement.js';
import { EnvelopeOpener, sealEnvelope } from '../src/multicast/envelope.js';
import { PeerTable } from '../src/multicast/peer-table.js';
import { Receiver } from '../src/multicast/receiver.js';
import { ReplayGuard } from '../src/multicast/replay-guard.js';
import { DEFAULT_RATES, type BudgetRates } from '../src/multicast/verify-budget.js';
import { silentLogger } from '../src/util/log.js';

const FLOOD_MS = 2000;
const UNLIMITED: BudgetRates = { sharedPerSecond: Infinity, sharedBurst: Infinity, sourcePerSecond: Infinity, sourceBurst: Infinity, perPartPerSecond: 0, perPartBurst: 0, sourceMaxPerSecond: Infinity, sourceMaxBurst: Infinity };

const dir = mkdtempSync(join(tmpdir(), 'gitfs-flood-'));
try {
  const now = Date.now();
  const member = async (name: string, caDir: string): Promise<Awaited<ReturnType<typeof loadMembership>>> => {
    const at = join(dir, name);
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const authority = await loadAuthority(caDir);
    await saveMembership(at, { key: privateKey, certPem: issueNodeCertificate(authority, publicKey, now).pem, caPem: authority.cert.toString() });
    return loadMembership(at, now);
  };
  await initCluster(join(dir, 'ca'), now);
  await initCluster(join(dir, 'other'), now);
  const self = await loadMembership(join(dir, 'ca'), now);
  const b = await member('b', join(dir, 'ca'));
  const stranger = await member('x', join(dir, 'other'));
  const packet = (who: NodeIdentity, seq: number): Uint8Array =>
    sealEnvelope(who, self.trust, encodeAnnouncement({ nodeId: who.nodeId, instance: '11'.repeat(16), seq, timeMs: Date.now(), name: 'n', endpoints: [], part: 0, parts: 1, rangeStart: '', rangeEnd: '', heads: [], revocationVersion: 0, intervalMs: 1000, rollouts: [] }));
  // A packet of the member's with a sequence number not seen yet, its signature damaged.
  const badSignature = Buffer.from(packet(b.identity, 1_000_000));
  badSignature[badSignature.length - 1] = (badSignature[badSignature.length - 1] ?? 0) ^ 1;
  // Each forgery, given the packet the member sent before the flood.
  const kinds: Array<[string, (taken: Uint8Array) => Uint8Array]> = [
    ["another cluster's certificate", () => packet(stranger.identity, 1)],
    ["a member's certificate, a bad signature", () => badSignature],
    ["a copy of the member's packet", (taken) => taken],
  ];
  process.stdout.write('| forgery | budget | packets/s one thread takes | of them checked | µs per packet | a member heard before, heard after |\n|---|---|---:|---:|---:|---|\n');
  let seq = 1;
  for (const [kind, forge] of kinds) {
    for (const [budget, rates] of [['none', UNLIMITED], ['default', DEFAULT_RATES]] as const) {
      const receiver = new Receiver(
        { opener: new EnvelopeOpener(self.trust, self.identity), guard: new ReplayGuard(120_000), table: new PeerTable({ expireIntervals: 3, maxPeers: 4096 }), clock: { now: () => Date.now() }, log: silentLogger, onAccepted: () => undefined },
        { windowMs: 120_000, rates },
      );
      const fromB = { address: '10.255.0.2', port: 7419 };
      const taken = packet(b.identity, seq++);
      receiver.receive(taken, fromB);
      const forged = forge(taken);
      const started = performance.now();
      let n = 0;
      while (performance.now() - started < FLOOD_MS) {
        for (let i = 0; i < 100; i++, n++) receiver.receive(forged, { address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, port: 7419 });
      }
      const ms = performance.now() - started;
      receiver.receive(packet(b.identity, seq++), fromB);
      const heard = receiver.stats.accepted === 2 ? 'yes' : 'no';
      process.stdout.write(`| ${kind} | ${budget} | ${Math.round(n / (ms / 1000))} | ${Math.round((n - receiver.stats.throttled - receiver.stats.duplicate - receiver.stats.replay) / (ms / 1000))}/s | ${((ms * 1000) / n).toFixed(1)} | ${heard} |\n`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

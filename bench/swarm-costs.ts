/**
 * What a swarm node spends per MiB it moves, stage by stage, in one process, on 8 KiB objects of
 * random data (the chunks of a disk image): encoding and decoding `objects` messages, the SHA-1
 * check of every object received, storing them (LocalObjects into a fresh repository: framing,
 * Adler-32, CRC-32, the entropy sample, the pack's own SHA-1, its index, fsync), and the wire
 * (mutual TLS with the cluster's options, the BitTorrent wire and its extension messages; both
 * ends, over loopback). CPU milliseconds per MiB of the whole process (every thread), best of 3.
 * Chunks of a compressible image cross the wire deflated, as their committer stored them: a relay
 * inflates each to check it and stores the stream as it came (the rows "deflated").
 * A relay in the chain pays decode + check + store on the way in and encode + wire on the way
 * out (the wire figure counts both its ends). It runs with the malloc settings every gitfs
 * process starts with (MALLOC_ENV, src/cli/node-flags.ts), starting itself again with them if
 * they are missing. Usage (after `make build`):
 *   node dist/bench/swarm-costs.js [--mib 128]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { deflateSync } from 'node:zlib';
import { gitfsProcessEnv, MALLOC_ENV } from '../src/cli/node-flags.js';
import { initCluster, loadMembership } from '../src/cluster/cluster-store.js';
import { clientOptions, serverOptions } from '../src/cluster/tls.js';
import { hashObject, type Oid } from '../src/objects/oid.js';
import { Repository } from '../src/repo/repository.js';
import { BlockPool } from '../src/swarm/block-pool.js';
import { SwarmConnection } from '../src/swarm/connection.js';
import { LocalObjects } from '../src/swarm/local-objects.js';
import { decodeMessage, encodeMessage, type WireObject } from '../src/swarm/messages.js';

// glibc reads them only when a process starts.
if (Object.entries(MALLOC_ENV).some(([k, v]) => process.env[k] !== v)) {
  const again = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { env: gitfsProcessEnv(process.env), stdio: 'inherit' });
  process.exit(again.status ?? 1);
}

const { values: opt } = parseArgs({ options: { mib: { type: 'string', default: '128' } }, strict: true });
const MIB = Number(opt.mib);
if (!Number.isInteger(MIB) || MIB < 1 || MIB > 4096) throw new Error(`--mib must be an integer from 1 to 4096, not ${opt.mib}`);
/** Objects per message: what the object server puts in one (1 MiB). */
const PER_MESSAGE = 128;

const blob = (content: Buffer): WireObject => ({ oid: hashObject('blob', content), type: 'blob', content });
/** Random chunks, as a gitfs peer sends them: content it holds uncompressed, flagged so (the receiver need not sample it). */
const objects: WireObject[] = Array.from({ length: MIB * 128 }, () => ({ ...blob(randomBytes(8192)), stored: true }));
/** Chunks of a compressible image: words from a small vocabulary (deflate at level 1 takes them to about a third). */
const WORDS = ['kernel', 'module', 'usr', 'lib', 'share', 'doc', 'locale', 'the', 'of', 'and', 'firmware', 'config', 'x86_64', 'linux', 'gnu', 'bin'];
const compressible: WireObject[] = Array.from({ length: MIB * 128 }, () => {
  const picks = randomBytes(2048);
  return blob(Buffer.from(Array.from(picks, (b) => WORDS[b & 15]).join(' ')).subarray(0, 8192));
});
const inMessages = (all: WireObject[]): WireObject[][] => {
  const out: WireObject[][] = [];
  for (let i = 0; i < all.length; i += PER_MESSAGE) out.push(all.slice(i, i + PER_MESSAGE));
  return out;
};
const batches = inMessages(objects);
const compressibleBatches = inMessages(compressible);
/** The same chunks as their committer stored them (deflated at level 1), as they now cross the wire. */
const deflatedBatches = inMessages(compressible.map((o) => ({ ...o, zlib: deflateSync(o.content, { level: 1 }) })));
const messages = batches.map((b) => encodeMessage({ kind: 'objects', request: 1, objects: b, done: false }));
const deflatedMessages = deflatedBatches.map((b) => encodeMessage({ kind: 'objects', request: 1, objects: b, done: false }));
const scratch = mkdtempSync(join(tmpdir(), 'gitfs-swarm-costs-'));

/** CPU ms per MiB of `run`, best of 3. */
async function cost(run: () => Promise<void> | void): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const before = process.cpuUsage();
    await run();
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1000 / MIB);
  }
  return best;
}

let repos = 0;
async function freshRepository(): Promise<Repository> {
  return Repository.init(join(scratch, `repo-${repos++}`));
}

async function store(messages: WireObject[][]): Promise<void> {
  const repo = await freshRepository();
  const local = new LocalObjects(repo, { flushBytes: 32 << 20, promisor: false, pool: new BlockPool(48) });
  await Promise.all(messages.map((b) => local.addAll(b)));
  await local.close();
  await repo.close();
}

/**
 * Every message through one mutual-TLS swarm connection (both ends in this process); `raw`: the
 * same bytes (encoded once beforehand) through the same mutual TLS, written and read as they
 * are, without the BitTorrent wire, framing or codec: what TLS and the sockets cost alone.
 */
async function wire(raw = false): Promise<void> {
  const repo = await freshRepository();
  await initCluster(repo.gitDir, Date.now());
  const { identity, trust } = await loadMembership(repo.gitDir, Date.now());
  const infoHash = Buffer.alloc(20, 7);
  const id = identity.nodeId;
  let received = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const rawBytes = messages.reduce((n, m) => n + m.length, 0);
  const server = createServer(serverOptions(identity, trust), (socket) => {
    if (raw) {
      socket.on('data', (chunk: Buffer) => {
        if ((received += chunk.length) === rawBytes) done();
      });
      return;
    }
    const pool = new BlockPool(48);
    new SwarmConnection(socket, id, { infoHash, selfId: id, initiator: false, pool }, {
      onMessage: (_c, m) => {
        if (m.kind !== 'objects') return;
        // Its block goes back, as a relay's does once the pack of its objects leaves memory:
        // otherwise every message would be assembled in fresh memory.
        const first = m.objects[0];
        if (first !== undefined) pool.give(first.content);
        if ((received += m.objects.length) === objects.length) done();
      },
      onClose: () => undefined,
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ...clientOptions(identity, trust) }, () => resolve(s));
    s.once('error', reject);
  });
  if (raw) {
    for (const m of messages) if (!socket.write(m)) await new Promise((resolve) => socket.once('drain', resolve));
    await finished;
    socket.destroy();
    server.close();
    await repo.close();
    return;
  }
  const conn = new SwarmConnection(socket, id, { infoHash, selfId: id, initiator: true, pool: new BlockPool(48) }, { onMessage: () => undefined, onClose: () => undefined });
  for (const b of batches) {
    conn.send({ kind: 'objects', request: 1, objects: b, done: false });
    await conn.drained(4 << 20);
  }
  await finished;
  conn.close('done');
  server.close();
  await repo.close();
}

const rows: Array<[string, number]> = [
  ['encode `objects` messages', await cost(() => void batches.map((b) => encodeMessage({ kind: 'objects', request: 1, objects: b, done: false })))],
  ['decode them', await cost(() => void messages.map((m) => decodeMessage(m)))],
  ['SHA-1 check of every object', await cost(() => void objects.map((o) => hashObject(o.type, o.content) === (o.oid as Oid)))],
  ['store into packs (LocalObjects, with fsync)', await cost(() => store(batches))],
  ['the same, chunks of a compressible image that came as content (each deflated)', await cost(() => store(compressibleBatches))],
  ['decode them deflated (each zlib stream inflated)', await cost(() => void deflatedMessages.map((m) => decodeMessage(m)))],
  ['store them as the zlib streams that came', await cost(() => store(deflatedBatches))],
  ['wire: TLS + BitTorrent extension, both ends', await cost(() => wire())],
  ['the same bytes through TLS alone, both ends', await cost(() => wire(true))],
];
rmSync(scratch, { recursive: true, force: true });
process.stdout.write(`| stage (${MIB} MiB of 8 KiB objects) | CPU ms per MiB, best of 3 |\n|---|---:|\n`);
for (const [name, ms] of rows) process.stdout.write(`| ${name} | ${ms.toFixed(2)} |\n`);

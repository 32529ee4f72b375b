/**
 * Swarm benchmark (issue 5): deliver one large commit (a disk image) from one node to all, on N
 * nodes in network namespaces (test/support/netns.ts) whose eth0 egress is shaped by tbf to
 * --rate-mbit, against the alternatives on the same bytes and the same links:
 *
 *   (d) the lower bound S/B (size / rate), and one HTTP transfer to one node as calibration;
 *   (b) naive fan-out: node 0 serves the file over HTTP (python3 -m http.server), every other node
 *       fetches it at once with curl, to a file;
 *   (c) BitTorrent: aria2c on every node (node 0 seeds the same file), tracker opentracker in node
 *       0's namespace, torrent by mktorrent with 1 MiB pieces; DHT, LPD off; peer exchange on
 *       (default); tracker interval 5 s; no file preallocation; every downloader keeps seeding
 *       until the last one is done (seed ratio 0 = unlimited), completion from
 *       --on-bt-download-complete (called before seeding); every copy's SHA-256 checked;
 *   (a) gitfs: `gitfs init` everywhere, `cluster init` on node 0 and `cluster join` on the others,
 *       `gitfs serve --config F` with policy {"branches":"images/*","replicas":"all"} on every node;
 *       then `gitfs commit --branch images/disk --from DIR` on node 0 (DIR holds disk.img).
 *       t0 = that process's exit; gitfs's time = the latest `t` of the `fetched` events of the
 *       others − t0 (the commit process is reported apart). Then a second version of the image
 *       (--change-mib MiB rewritten at --change-at-mib) committed the same way: time and bytes
 *       fetched per node (`fetched` event `bytes`), against rsync's delta transfer of the same
 *       file v1 → v2 from an rsync daemon on node 0 to node 1 (with and without -z).
 *
 * Per node: bytes sent on eth0 over each phase (/proc/net/dev in the namespace), CPU seconds and
 * peak RSS: of every gitfs daemon from /proc/<pid>/stat and VmHWM; of every other program (curl,
 * python3, aria2c, opentracker, rsync, gitfs commit) through /usr/bin/time.
 *
 * The image is deterministic pseudo-random data (AES-128-CTR keystream of zeros, a fixed key),
 * generated once per run into a temporary directory: nothing in it compresses or repeats, the
 * worst case for gitfs. With --image-from DIR it is instead an ext4 file system of --size-mib
 * made from DIR by `mke2fs -d` (for example a Debian root file system from
 * ../shared/bench/make-datasets.sh rootfs), as a real disk image is: gitfs stores and moves its
 * chunks deflated and each distinct chunk once, the other methods move every byte. Prints a markdown report and writes it to
 * --out. Progress on stderr. Needs root and: ip, tc, curl, python3, aria2c, opentracker, mktorrent,
 * rsync, /usr/bin/time (GNU). Usage (after `make build`):
 *   node dist/bench/swarm.js [--nodes 4,8,16] [--size-mib 512] [--rate-mbit 200] [--change-mib 4]
 *                            [--change-at-mib M] [--skip http,aria2,gitfs,rsync] [--out FILE]
 *                            [--daemon-logs DIR [--verbose]]   (every daemon's stderr and stdout kept, -v: with debug events)
 *                            [--cpu-prof DIR]   (every daemon writes a V8 CPU profile there when it stops)
 *                            [--warm-mib N]   (every daemon first fetches an image of N MiB, not timed)
 *                            [--idle-s S]     (seconds the daemons stay idle between the warm-up and v1; default 2)
 *                            [--image-from DIR]   (the image is an ext4 file system made from DIR)
 *                            [--chunk-size SIZE]   (every node's repository made by `gitfs init --chunk-size SIZE`)
 *                            [--aria2-encrypted]   (aria2c once more, every connection encrypted: MSE/PE with RC4)
 *                            [--daemon-flags="--flag ..."]   (more node/V8 flags for every daemon; with =)
 */
import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, closeSync, copyFileSync, createReadStream, existsSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GITFS_BIN } from '../test/support/cli.js';
import { createNetnsCluster, netnsSupported, type NetnsCluster, type NetnsNode } from '../test/support/netns.js';
import { benchLog, gitfsEnv, machineLine, shownArgs, until, writeKeystream, writeReport } from './netns-bench.js';
import { NODE_FLAGS } from '../src/cli/node-flags.js';

const log = benchLog('swarm-bench');

// ---------------------------------------------------------------- options
const { values: opt } = parseArgs({
  options: {
    nodes: { type: 'string', default: '4,8,16' },
    'size-mib': { type: 'string', default: '512' },
    'rate-mbit': { type: 'string', default: '200' },
    'change-mib': { type: 'string', default: '4' },
    'change-at-mib': { type: 'string' },
    'warm-mib': { type: 'string', default: '0' },
    'idle-s': { type: 'string', default: '2' },
    'image-from': { type: 'string' },
    'chunk-size': { type: 'string' },
    'aria2-encrypted': { type: 'boolean', default: false },
    skip: { type: 'string', default: '' },
    'daemon-logs': { type: 'string' },
    'cpu-prof': { type: 'string' },
    'daemon-flags': { type: 'string', default: '' },
    verbose: { type: 'boolean', default: false },
    'tcp-cc': { type: 'string', default: 'cubic' },
    out: { type: 'string', default: fileURLToPath(new URL('../../bench/results/swarm-latest.md', import.meta.url)) },
  },
  strict: true,
});

function fail(msg: string): never {
  process.stderr.write(`swarm bench: ${msg}\n`);
  process.exit(2);
}
function intOf(name: string, raw: string | undefined, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(raw)}`);
  return n;
}

const NODE_COUNTS = (opt.nodes ?? '').split(',').map((s) => intOf('nodes', s.trim(), 2, 64));
const SIZE_MIB = intOf('size-mib', opt['size-mib'], 4, 16384);
const RATE_MBIT = intOf('rate-mbit', opt['rate-mbit'], 1, 10_000);
const CHANGE_MIB = intOf('change-mib', opt['change-mib'], 1, SIZE_MIB);
/** A first image of this size, fetched by every daemon before v1 and not timed: the daemons of a cluster run for days, and V8 has compiled their transfer path by the time an image comes. */
const WARM_MIB = intOf('warm-mib', opt['warm-mib'], 0, 4096);
const IDLE_S = intOf('idle-s', opt['idle-s'], 0, 3600);
const WARM_BRANCH = 'images/warm-up';
const CHANGE_AT_MIB =
  opt['change-at-mib'] === undefined ? Math.min(SIZE_MIB - CHANGE_MIB, Math.floor((SIZE_MIB * 200) / 512)) : intOf('change-at-mib', opt['change-at-mib'], 0, SIZE_MIB - CHANGE_MIB);
const SKIP = new Set((opt.skip ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''));
for (const s of SKIP) if (!['http', 'aria2', 'gitfs', 'rsync'].includes(s)) fail(`--skip takes http, aria2, gitfs, rsync; not ${s}`);
const OUT = opt.out;
/** `gitfs init --chunk-size` for every node's repository (the default chunking without). */
const CHUNK_SIZE = opt['chunk-size'];
/** Directory for every daemon's stderr (n<i>-<N>.log), to look into a run; with --verbose the daemons log debug events too. */
const DAEMON_LOGS = opt['daemon-logs'];
const VERBOSE = opt.verbose === true;
/**
 * TCP congestion control in every namespace (a per-namespace sysctl): Debian's default, cubic,
 * unless said otherwise. Namespaces start with the host's, which on some machines is BBR; BBR's
 * periodic cwnd drain (PROBE_RTT) stalls each link of a relay chain in turn (BENCHMARKS.md).
 */
const TCP_CC = opt['tcp-cc'] ?? 'cubic';
const HOST_CC = readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim();

const MiB = 1 << 20;
const SIZE = SIZE_MIB * MiB;
/** S/B in ms: the image's bytes at the shaped rate (payload only; headers make the real floor a few % higher). */
const SB_MS = (SIZE * 8) / (RATE_MBIT * 1e6) * 1000;
const IMAGE = 'disk.img';
const IMAGE_FROM = opt['image-from'];
/** Node/V8 flags for every daemon beyond NODE_FLAGS (`--perf-basic-prof` for `perf`, compiler flags): NODE_OPTIONS refuses V8 flags. */
const DAEMON_FLAGS = (opt['daemon-flags'] ?? '').split(' ').filter((f) => f !== '');
if (DAEMON_FLAGS.some((f) => !f.startsWith('--'))) fail(`--daemon-flags takes flags only, not ${JSON.stringify(opt['daemon-flags'])}`);
if (IMAGE_FROM !== undefined && !existsSync(IMAGE_FROM)) fail(`--image-from: no directory ${IMAGE_FROM}`);
const BRANCH = 'images/disk';
const HTTP_PORT = 8000;
const TRACKER_PORT = 6969;
const BT_PORT = 6881;
const RSYNC_PORT = 873;
/** GNU time's line, found by its prefix among whatever else the wrapped program printed. */
const TIME_FMT = 'RUSAGE %e %U %S %M';
const CLK_TCK = 100;
/** With --aria2-encrypted: only the obfuscated handshake, and the payload encrypted (RC4), not just the handshake. */
const ARIA2_ENCRYPTED = ['--bt-require-crypto=true', '--bt-min-crypto-level=arc4'];
const ARIA2_COMMON = [
  '--enable-dht=false',
  '--enable-dht6=false',
  '--bt-enable-lpd=false',
  '--enable-peer-exchange=true',
  '--disable-ipv6=true',
  '--file-allocation=none',
  '--seed-ratio=0.0',
  '--bt-tracker-interval=5',
  '--auto-save-interval=0',
  '--allow-overwrite=true',
  '--summary-interval=0',
  '--console-log-level=warn',
  `--listen-port=${BT_PORT}`,
];

/** Bound on one phase's transfers: generous over what the slowest method should need. */
const phaseTimeoutMs = (n: number): number => Math.round(90_000 + 3 * (n - 1) * SB_MS);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Runs a command in the root namespace; never rejects. */
function sh(cmd: string, args: readonly string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}
async function checkedIn(node: NetnsNode, cmd: string, args: readonly string[], timeoutMs = 120_000, env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await node.exec(cmd, args, { timeoutMs, ...(env ? { env } : {}) });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${node.ns} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-600)}`);
  return r.stdout;
}

// ---------------------------------------------------------------- the image
async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

// ---------------------------------------------------------------- measurements
interface Usage {
  cpuS: number;
  rssKiB: number;
  wallS?: number;
}
function parseTime(file: string): Usage | undefined {
  if (!existsSync(file)) return undefined;
  const line = readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith('RUSAGE '));
  if (line === undefined) return undefined;
  const [, e, u, s, m] = line.split(' ').map(Number);
  return { wallS: e as number, cpuS: (u as number) + (s as number), rssKiB: m as number };
}
/** CPU seconds (self and waited-for children) and VmHWM of a live process. */
function procUsage(pid: number | undefined): Usage | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = [11, 12, 13, 14].reduce((a, i) => a + Number(f[i]), 0);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return { cpuS: ticks / CLK_TCK, rssKiB: Number(hwm ?? NaN) };
  } catch {
    return undefined;
  }
}
/** eth0 tx bytes of every node. */
async function txBytes(nodes: readonly NetnsNode[]): Promise<number[]> {
  return Promise.all(
    nodes.map(async (n) => {
      const r = await n.exec('cat', ['/proc/net/dev'], { timeoutMs: 10_000 });
      const line = r.stdout.split('\n').find((l) => l.trim().startsWith(`${n.iface}:`));
      const f = line?.split(':')[1]?.trim().split(/\s+/);
      return Number(f?.[8] ?? NaN);
    }),
  );
}
/** The pid of the one child of `pid` (the program /usr/bin/time runs). */
function childOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const c = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0];
    return c ? Number(c) : undefined;
  } catch {
    return undefined;
  }
}
/** Stops a program started under /usr/bin/time (SIGTERM to the program, so time reports), then waits for time, bounded. */
async function stopTimed(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const inner = childOf(child.pid);
  try {
    if (inner !== undefined) process.kill(inner, 'SIGTERM');
    else child.kill('SIGTERM');
  } catch {
    // gone
  }
  if (await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])) return;
  try {
    if (inner !== undefined) process.kill(inner, 'SIGKILL');
  } catch {
    // gone
  }
  child.kill('SIGKILL');
  await Promise.race([exited, sleep(3000)]);
}

// ---------------------------------------------------------------- results
interface NodeRow {
  node: number;
  /** Done, ms after the phase's t0 (undefined: not done). */
  doneMs?: number;
  txBytes?: number;
  usage?: Usage;
  /** Bytes the node says it fetched (gitfs), or the transfer counted (curl, rsync). */
  bytes?: number;
  note?: string;
}
interface Phase {
  name: string;
  rows: NodeRow[];
  lastMs?: number;
  error?: string;
  notes: string[];
}
interface Trial {
  n: number;
  calibration?: Phase;
  http?: Phase;
  aria2?: Phase;
  aria2Encrypted?: Phase;
  gitfs?: Phase;
  gitfsV2?: Phase;
  commitV1?: Usage & { ms: number };
  commitV2?: Usage & { ms: number };
  setupMs?: number;
  rsync: { z: boolean; ms: number; sent: number; received: number; tx0: number; tx1: number; usage?: Usage; ok: boolean }[];
  warnings: Map<string, number>;
  error?: string;
}

/**
 * CPU time the hypervisor gave to others while it was ours, so far, in vCPU seconds (/proc/stat's
 * steal, in USER_HZ of 100): a phase that ran slow for no reason of its own shows it here.
 */
function stealS(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]?.trim().split(/\s+/) ?? [];
  return Number(fields[8] ?? 0) / 100;
}

function stealNote(since: number, ms: number): string {
  return `CPU steal (time the hypervisor ran others on this machine's vCPUs) over the phase: ${(stealS() - since).toFixed(1)} of ${((availableParallelism() * ms) / 1000).toFixed(0)} vCPU s`;
}

function lastOf(rows: readonly NodeRow[]): number | undefined {
  if (rows.some((r) => r.doneMs === undefined)) return undefined;
  return Math.max(...rows.map((r) => r.doneMs as number));
}

// ---------------------------------------------------------------- (d) and (b): HTTP
async function httpPhase(name: string, server: NetnsNode, receivers: readonly NetnsNode[], all: readonly NetnsNode[], dir: string, work: string, sum: string): Promise<Phase> {
  const phase: Phase = { name, rows: [], notes: [] };
  const tag = `${name.replace(/\W+/g, '-')}-${receivers.length}`;
  const srvTime = join(work, `time-${tag}-server`);
  const srv = server.spawn('/usr/bin/time', ['-f', TIME_FMT, '-o', srvTime, '/usr/bin/python3', '-m', 'http.server', '--bind', server.address, '--directory', dir, String(HTTP_PORT)], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const url = `http://${server.address}:${HTTP_PORT}/${IMAGE}`;
  const probe = receivers[0] as NetnsNode;
  try {
    if (!(await until(async () => (await probe.exec('curl', ['-sfI', '-o', '/dev/null', url], { timeoutMs: 5000 })).code === 0, Date.now() + 20_000, 200))) {
      throw new Error(`the HTTP server on node ${server.index} did not answer within 20 s`);
    }
    const tx0 = await txBytes(all);
    const t0 = Date.now();
    const timeout = phaseTimeoutMs(receivers.length + 1);
    await Promise.all(
      receivers.map(async (r) => {
        const row: NodeRow = { node: r.index };
        phase.rows.push(row);
        const out = join(work, `http-${tag}-n${r.index}`);
        const tf = join(work, `time-${tag}-n${r.index}`);
        const res = await r.exec('/usr/bin/time', ['-f', TIME_FMT, '-o', tf, 'curl', '-sS', '-o', out, '-w', '%{size_download}', url], { timeoutMs: timeout });
        const t = Date.now() - t0;
        row.usage = parseTime(tf);
        row.bytes = Number(res.stdout.trim());
        if (res.code !== 0 || row.bytes !== SIZE) row.note = `curl exited ${res.code}, ${row.bytes} bytes: ${res.stderr.trim().slice(-200)}`;
        else row.doneMs = t;
      }),
    );
    const tx1 = await txBytes(all);
    phase.rows.sort((a, b) => a.node - b.node);
    phase.rows.unshift({ node: server.index, note: 'server (python3 -m http.server)' });
    for (const row of phase.rows) row.txBytes = (tx1[row.node] as number) - (tx0[row.node] as number);
    phase.lastMs = lastOf(phase.rows.filter((r) => r.node !== server.index));
    // One copy checked whole (the others by their size).
    const first = receivers[0];
    if (first !== undefined && phase.rows.find((r) => r.node === first.index)?.doneMs !== undefined) {
      const got = await sha256(join(work, `http-${tag}-n${first.index}`));
      phase.notes.push(`node ${first.index}'s copy ${got === sum ? 'has' : '**does not have**'} the image's SHA-256`);
    }
  } catch (e) {
    phase.error = (e as Error).message;
  } finally {
    await stopTimed(srv);
    const srvRow = phase.rows.find((r) => r.node === server.index);
    if (srvRow) srvRow.usage = parseTime(srvTime);
    for (const r of receivers) rmSync(join(work, `http-${tag}-n${r.index}`), { force: true });
  }
  return phase;
}

// ---------------------------------------------------------------- (c): aria2c
/** SHA-1 of the bencoded `info` value of a torrent file. */
function infoHash(t: Buffer): Buffer {
  const skip = (p: number, depth = 0): number => {
    if (p >= t.length || depth > 64) throw new Error('bad torrent');
    const c = t[p];
    if (c === 0x69) return t.indexOf(0x65, p) + 1; // i…e
    if (c === 0x6c || c === 0x64) {
      p++;
      while (t[p] !== 0x65) p = skip(p, depth + 1);
      return p + 1;
    }
    const colon = t.indexOf(0x3a, p);
    if (colon < 0) throw new Error('bad torrent');
    return colon + 1 + Number(t.subarray(p, colon).toString('latin1'));
  };
  if (t[0] !== 0x64) throw new Error('a torrent is a dictionary');
  let p = 1;
  while (p < t.length && t[p] !== 0x65) {
    const keyEnd = skip(p);
    const valueEnd = skip(keyEnd);
    if (t.subarray(p, keyEnd).toString('latin1') === '4:info') return createHash('sha1').update(t.subarray(keyEnd, valueEnd)).digest();
    p = valueEnd;
  }
  throw new Error('no info in the torrent');
}

/**
 * `encrypted`: every connection encrypted as gitfs's are (MSE/PE, BitTorrent's own, with RC4:
 * aria2c's strongest), none in the clear.
 */
async function aria2Phase(seed: NetnsNode, receivers: readonly NetnsNode[], all: readonly NetnsNode[], imageDir: string, work: string, sum: string, encrypted: boolean): Promise<Phase> {
  const phase: Phase = { name: encrypted ? 'aria2c, encrypted' : 'aria2c', rows: [], notes: [] };
  const base = join(work, `bt-${all.length}${encrypted ? '-enc' : ''}`);
  const settings = encrypted ? [...ARIA2_COMMON, ...ARIA2_ENCRYPTED] : ARIA2_COMMON;
  mkdirSync(base, { recursive: true });
  const announce = `http://${seed.address}:${TRACKER_PORT}/announce`;
  const torrent = join(base, 'image.torrent');
  const started: { node: NetnsNode; child: ChildProcess; timeFile: string }[] = [];
  let tracker: ChildProcess | undefined;
  const trackerTime = join(base, 'time-tracker');
  try {
    const t0m = Date.now();
    const mk = await sh('mktorrent', ['-l', '20', '-t', String(availableParallelism()), '-a', announce, '-o', torrent, join(imageDir, IMAGE)], 300_000);
    if (mk.code !== 0) throw new Error(`mktorrent exited ${mk.code}: ${mk.stderr.trim()}`);
    const hash = infoHash(readFileSync(torrent));
    phase.notes.push(`mktorrent (1 MiB pieces, ${availableParallelism()} threads) took ${((Date.now() - t0m) / 1000).toFixed(1)} s, before t0`);
    // opentracker as packaged in Debian only serves whitelisted torrents; it chroots into -d, where the list is.
    const root = join(base, 'tracker');
    mkdirSync(root);
    writeFileSync(join(root, 'whitelist'), `${hash.toString('hex')}\n`);
    writeFileSync(join(root, 'opentracker.conf'), 'access.whitelist /whitelist\n');
    tracker = seed.spawn('/usr/bin/time', ['-f', TIME_FMT, '-o', trackerTime, 'opentracker', '-f', join(root, 'opentracker.conf'), '-i', seed.address, '-p', String(TRACKER_PORT), '-P', String(TRACKER_PORT), '-d', root], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const enc = [...hash].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    const probe = receivers[0] as NetnsNode;
    const tq = (q: string): Promise<string> => probe.exec('curl', ['-s', '--max-time', '3', `http://${seed.address}:${TRACKER_PORT}/${q}`], { timeoutMs: 5000 }).then((r) => r.stdout);
    // It loads the whitelist a little after starting: until then every announce is refused.
    const stopped = `announce?info_hash=${enc}&peer_id=-BENCH0-000000000000&port=1&uploaded=0&downloaded=0&left=1&compact=1&event=stopped`;
    if (!(await until(async () => /^d/.test(await tq(stopped)) && !(await tq(stopped)).includes('failure'), Date.now() + 30_000, 250))) {
      throw new Error('opentracker did not accept the torrent within 30 s');
    }
    // The seeder: node 0 with the file (a hard link of the image, so aria2c's files stay out of the image's directory).
    const seedDir = join(base, 'n0');
    mkdirSync(seedDir);
    linkSync(join(imageDir, IMAGE), join(seedDir, IMAGE));
    const seedTime = join(base, 'time-n0');
    const seeder = seed.spawn('/usr/bin/time', ['-f', TIME_FMT, '-o', seedTime, 'aria2c', ...settings, '--bt-seed-unverified=true', `--log=${join(base, 'log-n0')}`, '--log-level=notice', '-d', seedDir, torrent], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    started.push({ node: seed, child: seeder, timeFile: seedTime });
    if (!(await until(async () => /8:completei[1-9]/.test(await tq(`scrape?info_hash=${enc}`)), Date.now() + 30_000, 200))) {
      throw new Error('the seeder did not show up at the tracker within 30 s');
    }
    const tx0 = await txBytes(all);
    const steal0 = stealS();
    const t0 = Date.now();
    for (const r of receivers) {
      const dir = join(base, `n${r.index}`);
      mkdirSync(dir);
      const hook = join(base, `hook-n${r.index}.sh`);
      writeFileSync(hook, `#!/bin/sh\ndate +%s%3N > ${join(base, `done-n${r.index}`)}\n`);
      chmodSync(hook, 0o755);
      const tf = join(base, `time-n${r.index}`);
      const child = r.spawn('/usr/bin/time', ['-f', TIME_FMT, '-o', tf, 'aria2c', ...settings, `--on-bt-download-complete=${hook}`, `--log=${join(base, `log-n${r.index}`)}`, '--log-level=notice', '-d', dir, torrent], {
        stdio: ['ignore', 'ignore', 'ignore'],
      });
      started.push({ node: r, child, timeFile: tf });
    }
    const doneAt = (i: number): number | undefined => {
      const f = join(base, `done-n${i}`);
      if (!existsSync(f)) return undefined;
      const t = Number(readFileSync(f, 'utf8').trim());
      return Number.isFinite(t) && t > 0 ? t : undefined;
    };
    const deadline = t0 + phaseTimeoutMs(all.length);
    await until(() => receivers.every((r) => doneAt(r.index) !== undefined) || started.some((s) => s.child.exitCode !== null), deadline, 50);
    const tx1 = await txBytes(all);
    for (const s of started) if (s.child.exitCode !== null) phase.notes.push(`aria2c on node ${s.node.index} exited ${s.child.exitCode} early`);
    phase.rows.push({ node: seed.index, note: 'seeder' });
    for (const r of receivers) {
      const t = doneAt(r.index);
      phase.rows.push({ node: r.index, ...(t === undefined ? { note: 'not done' } : { doneMs: t - t0 }) });
    }
    for (const row of phase.rows) row.txBytes = (tx1[row.node] as number) - (tx0[row.node] as number);
    phase.lastMs = lastOf(phase.rows.filter((r) => r.node !== seed.index));
    phase.notes.push(stealNote(steal0, Date.now() - t0));
  } catch (e) {
    phase.error = (e as Error).message;
  } finally {
    await Promise.all(started.map((s) => stopTimed(s.child)));
    if (tracker) await stopTimed(tracker);
  }
  for (const s of started) {
    const row = phase.rows.find((r) => r.node === s.node.index);
    if (row) row.usage = parseTime(s.timeFile);
  }
  const tr = parseTime(trackerTime);
  if (tr) phase.notes.push(`opentracker used ${tr.cpuS.toFixed(2)} CPU s, peak RSS ${(tr.rssKiB / 1024).toFixed(1)} MiB`);
  // Every copy checked (after the clock stopped).
  let bad = 0;
  for (const r of receivers) {
    const row = phase.rows.find((x) => x.node === r.index);
    if (row?.doneMs === undefined) continue;
    if ((await sha256(join(base, `n${r.index}`, IMAGE))) !== sum) {
      bad++;
      row.note = 'SHA-256 differs';
    }
  }
  if (phase.rows.length > 0) phase.notes.push(bad === 0 ? 'every copy has the image\'s SHA-256' : `**${bad} copies differ from the image**`);
  rmSync(base, { recursive: true, force: true });
  return phase;
}

// ---------------------------------------------------------------- (a): gitfs
interface LogLine {
  t?: number;
  level?: string;
  event?: string;
  [key: string]: unknown;
}
class Daemon {
  nodeId: string | undefined;
  readonly peers = new Set<string>();
  readonly events: LogLine[] = [];
  readonly warnings = new Map<string, number>();
  readonly tail: string[] = [];
  exit: string | undefined;
  private partial = '';
  constructor(
    readonly node: NetnsNode,
    readonly repo: string,
    readonly child: ChildProcess,
    readonly nodes: number,
  ) {
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      const lines = (this.partial + d).split('\n');
      this.partial = lines.pop() ?? '';
      for (const l of lines) this.line(l);
    });
    child.on('exit', (code, signal) => (this.exit = `exited ${code ?? signal}`));
    child.on('error', (e) => (this.exit = `failed: ${e.message}`));
  }
  private line(text: string): void {
    if (text.trim() === '') return;
    if (DAEMON_LOGS !== undefined) appendFileSync(join(DAEMON_LOGS, `n${this.node.index}-${this.nodes}.log`), `${text}\n`);
    this.tail.push(text);
    if (this.tail.length > 30) this.tail.shift();
    let l: LogLine;
    try {
      l = JSON.parse(text) as LogLine;
    } catch {
      this.count('non-JSON stderr');
      return;
    }
    if (l.level === 'warn' || l.level === 'error') this.count(`${l.level} ${l.event ?? '?'}`);
    if (l.event === 'serving' && typeof l.nodeId === 'string') this.nodeId = l.nodeId;
    if ((l.event === 'peer-up' || l.event === 'peer-restart') && typeof l.nodeId === 'string') this.peers.add(l.nodeId);
    if (l.event === 'peer-down' && typeof l.nodeId === 'string') this.peers.delete(l.nodeId);
    if (l.event === 'fetched' || l.event === 'fetch-start' || l.event === 'fetch-failed') this.events.push(l);
  }
  private count(k: string): void {
    this.warnings.set(k, (this.warnings.get(k) ?? 0) + 1);
  }
  find(event: string, commit: string): LogLine | undefined {
    return this.events.find((e) => e.event === event && e.commit === commit);
  }
}

/** The images (their directories, or their SHA-256s): v1, v2, and the warm-up image with --warm-mib. */
interface Images {
  readonly v1: string;
  readonly v2: string;
  readonly warm?: string;
}

async function gitfsPhases(trial: Trial, cluster: NetnsCluster, work: string, dirs: Images, sums: Images): Promise<Daemon[]> {
  const nodes = cluster.nodes;
  const daemons: Daemon[] = [];
  const tSetup = Date.now();
  const base = join(work, `gitfs-${nodes.length}`);
  mkdirSync(base, { recursive: true });
  const config = join(base, 'node.json');
  writeFileSync(config, `${JSON.stringify({ policies: [{ branches: 'images/*', replicas: 'all' }] }, null, 2)}\n`);
  const repos = nodes.map((n) => join(base, `n${n.index}`));
  const gitfs = (n: NetnsNode, args: string[], timeoutMs = 60_000): Promise<string> => checkedIn(n, process.execPath, [...NODE_FLAGS, GITFS_BIN, ...args, '--repo', repos[n.index] as string], timeoutMs, gitfsEnv());
  for (const n of nodes) await gitfs(n, ['init', ...(CHUNK_SIZE === undefined ? [] : ['--chunk-size', CHUNK_SIZE])]);
  const serve = async (n: NetnsNode): Promise<void> => {
    const profile = [...DAEMON_FLAGS, ...(opt['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${opt['cpu-prof']}`])];
    // V8's traces (--daemon-flags=--trace-deopt, ...) go to stdout: kept beside the log with --daemon-logs.
    const stdout = DAEMON_LOGS === undefined ? 'ignore' : openSync(join(DAEMON_LOGS, `n${n.index}-${nodes.length}.stdout`), 'a');
    const child = n.spawn(process.execPath, [...NODE_FLAGS, ...profile, GITFS_BIN, 'serve', '--repo', repos[n.index] as string, '--config', config, ...(VERBOSE ? ['-v'] : [])], { env: gitfsEnv({ GITFS_NODE_NAME: `bench-n${n.index}` }), stdio: ['ignore', stdout, 'pipe'] });
    if (typeof stdout === 'number') closeSync(stdout);
    const d = new Daemon(n, repos[n.index] as string, child, nodes.length);
    daemons.push(d);
    if (!(await until(() => d.nodeId !== undefined || d.exit !== undefined, Date.now() + 30_000)) || d.nodeId === undefined) {
      throw new Error(`daemon of node ${n.index} did not start (${d.exit ?? 'no "serving" within 30 s'}): ${d.tail.join('\n')}`);
    }
  };
  const first = nodes[0] as NetnsNode;
  await gitfs(first, ['cluster', 'init']);
  await serve(first);
  for (const n of nodes.slice(1)) {
    const token = (await gitfs(first, ['cluster', 'token'])).trim();
    await gitfs(n, ['cluster', 'join', token]);
    await serve(n);
  }
  const ids = daemons.map((d) => d.nodeId as string);
  const meshed = await until(() => daemons.every((d) => ids.every((id) => id === d.nodeId || d.peers.has(id))) || daemons.some((d) => d.exit !== undefined), Date.now() + 90_000, 50);
  const dead = daemons.find((d) => d.exit !== undefined);
  if (dead) throw new Error(`daemon of node ${dead.node.index} ${dead.exit}: ${dead.tail.join('\n')}`);
  if (!meshed) throw new Error(`the daemons did not all list each other within 90 s: ${daemons.map((d) => d.peers.size).join(' ')}`);
  trial.setupMs = Date.now() - tSetup;
  log(`N=${nodes.length} gitfs: ${nodes.length} daemons list each other (${(trial.setupMs / 1000).toFixed(1)} s of setup)`);

  const d0 = daemons[0] as Daemon;
  const others = daemons.slice(1);
  const version = async (label: string, dir: string, sum: string, branch = BRANCH): Promise<{ phase: Phase; commit: Usage & { ms: number } }> => {
    const phase: Phase = { name: `gitfs ${label}`, rows: [], notes: [] };
    const before = daemons.map((d) => procUsage(d.child.pid));
    const tx0 = await txBytes(nodes);
    const tf = join(base, `time-commit-${label}`);
    const tStart = Date.now();
    const r = await d0.node.exec('/usr/bin/time', ['-f', TIME_FMT, '-o', tf, process.execPath, ...NODE_FLAGS, GITFS_BIN, 'commit', '--repo', d0.repo, '--branch', branch, '--from', dir, '-m', `image ${label}`, '--json'], {
      env: gitfsEnv(),
      timeoutMs: 600_000,
    });
    const t0 = Date.now();
    const steal0 = stealS();
    const commit = { ms: t0 - tStart, ...(parseTime(tf) ?? { cpuS: NaN, rssKiB: NaN }) };
    let oid: string | undefined;
    try {
      oid = (JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { commit?: string | null }).commit ?? undefined;
    } catch {
      oid = undefined;
    }
    if (r.code !== 0 || oid === undefined) throw new Error(`gitfs commit (${label}) exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-400)}`);
    log(`N=${nodes.length} gitfs ${label}: commit ${oid.slice(0, 12)} in ${(commit.ms / 1000).toFixed(1)} s; waiting for ${others.length} nodes`);
    const done = (d: Daemon): boolean => d.find('fetched', oid) !== undefined;
    await until(() => others.every(done) || daemons.some((d) => d.exit !== undefined), t0 + phaseTimeoutMs(nodes.length), 20);
    const tx1 = await txBytes(nodes);
    const after = daemons.map((d) => procUsage(d.child.pid));
    for (const d of daemons) {
      const i = d.node.index;
      const b = before[i];
      const a = after[i];
      const row: NodeRow = { node: i, txBytes: (tx1[i] as number) - (tx0[i] as number) };
      if (a !== undefined && b !== undefined) row.usage = { cpuS: a.cpuS - b.cpuS, rssKiB: a.rssKiB };
      if (d === d0) row.note = 'committer';
      else {
        const e = d.find('fetched', oid);
        if (e !== undefined && typeof e.t === 'number') {
          row.doneMs = e.t - t0;
          row.bytes = Number(e.bytes);
          const s = d.find('fetch-start', oid);
          const ahead = typeof e.aheadAsked === 'number' && e.aheadAsked > 0 ? `, ${e.aheadAsked} pieces asked ahead (${Number(e.aheadMissed) || 0} not whole)` : '';
          const secs = (ms: unknown): string => ((Number(ms) || 0) / 1000).toFixed(2);
          const course = typeof e.walkMs === 'number' ? `, closure known after ${secs(e.walkMs)} s${typeof e.firstPieceMs === 'number' ? `, first piece after ${secs(e.firstPieceMs)} s` : ''}` : '';
          row.note = `fetch ${((Number(e.ms) || 0) / 1000).toFixed(1)} s${s && typeof s.t === 'number' ? `, started +${((s.t - t0) / 1000).toFixed(2)} s` : ''}${course}${ahead}`;
        } else row.note = d.exit ?? (d.find('fetch-failed', oid) ? `fetch failed: ${String(d.find('fetch-failed', oid)?.error)}` : 'not done');
      }
      phase.rows.push(row);
    }
    phase.lastMs = lastOf(phase.rows.filter((x) => x.node !== 0));
    phase.notes.push(stealNote(steal0, Date.now() - t0));
    // Every node's branch checked with git; the last node's file read back whole.
    let wrong = 0;
    for (const d of others) {
      const ref = await d.node.exec('git', ['--git-dir', d.repo, 'rev-parse', '-q', '--verify', `refs/heads/${branch}`], { timeoutMs: 20_000 });
      if (ref.stdout.trim() !== oid) wrong++;
    }
    phase.notes.push(wrong === 0 ? `every node's ${branch} is at ${oid.slice(0, 12)}` : `**${wrong} nodes do not hold ${oid.slice(0, 12)}**`);
    const lastRow = [...phase.rows].filter((x) => x.doneMs !== undefined).sort((a, b) => (b.doneMs as number) - (a.doneMs as number))[0];
    if (lastRow !== undefined) {
      const d = daemons[lastRow.node] as Daemon;
      const cat = await sh('bash', ['-c', 'set -o pipefail; "$0" "$1" cat --repo "$2" "$3" | sha256sum', process.execPath, GITFS_BIN, d.repo, `${branch}:${IMAGE}`], 600_000);
      const got = cat.stdout.split(' ')[0];
      phase.notes.push(`\`gitfs cat\` of ${IMAGE} on node ${lastRow.node} (the last) ${got === sum ? 'has' : '**does not have**'} the image's SHA-256`);
    }
    return { phase, commit };
  };
  if (dirs.warm !== undefined && sums.warm !== undefined) {
    const warm = await version('warm-up', dirs.warm, sums.warm, WARM_BRANCH);
    log(`N=${nodes.length} gitfs warm-up (${WARM_MIB} MiB, not timed): last node ${fmtS(warm.phase.lastMs)} s after the commit returned`);
    if (warm.phase.notes.some((n) => n.startsWith('**'))) throw new Error(`the warm-up image did not reach every node: ${warm.phase.notes.join('; ')}`);
    await sleep(IDLE_S * 1000);
  }
  const v1 = await version('v1', dirs.v1, sums.v1);
  trial.gitfs = v1.phase;
  trial.commitV1 = v1.commit;
  log(`N=${nodes.length} gitfs v1: last node ${fmtS(v1.phase.lastMs)} s after the commit returned`);
  await sleep(2000);
  const v2 = await version('v2', dirs.v2, sums.v2);
  trial.gitfsV2 = v2.phase;
  trial.commitV2 = v2.commit;
  log(`N=${nodes.length} gitfs v2: last node ${fmtS(v2.phase.lastMs)} s after the commit returned`);
  return daemons;
}

// ---------------------------------------------------------------- rsync
async function rsyncPhase(trial: Trial, from: NetnsNode, to: NetnsNode, work: string, dirs: { v1: string; v2: string }, sumV2: string): Promise<void> {
  const base = join(work, `rsync-${trial.n}`);
  mkdirSync(base, { recursive: true });
  const conf = join(base, 'rsyncd.conf');
  writeFileSync(conf, `uid = root\ngid = root\nuse chroot = no\n[img]\npath = ${dirs.v2}\nread only = yes\n`);
  const tf = join(base, 'time-rsyncd');
  const daemon = from.spawn('/usr/bin/time', ['-f', TIME_FMT, '-o', tf, 'rsync', '--daemon', '--no-detach', `--config=${conf}`, `--address=${from.address}`, `--port=${RSYNC_PORT}`], { stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    const url = `rsync://${from.address}:${RSYNC_PORT}/img/${IMAGE}`;
    if (!(await until(async () => (await to.exec('rsync', [`rsync://${from.address}:${RSYNC_PORT}/`], { timeoutMs: 5000 })).code === 0, Date.now() + 20_000, 200))) {
      throw new Error('rsync daemon did not answer within 20 s');
    }
    for (const z of [false, true]) {
      const dest = join(base, `dest-${z ? 'z' : 'plain'}`);
      mkdirSync(dest);
      copyFileSync(join(dirs.v1, IMAGE), join(dest, IMAGE));
      await sh('sync', []);
      const [a0, b0] = await txBytes([from, to]);
      const ctf = join(base, `time-client-${z}`);
      const t0 = Date.now();
      const r = await to.exec('/usr/bin/time', ['-f', TIME_FMT, '-o', ctf, 'rsync', '--stats', '-I', '--no-whole-file', ...(z ? ['-z'] : []), url, join(dest, IMAGE)], { timeoutMs: phaseTimeoutMs(2) });
      const ms = Date.now() - t0;
      const [a1, b1] = await txBytes([from, to]);
      const num = (label: string): number => Number((new RegExp(`${label}: ([\\d,.]+)`).exec(r.stdout)?.[1] ?? 'NaN').replace(/,/g, ''));
      const ok = r.code === 0 && (await sha256(join(dest, IMAGE))) === sumV2;
      if (r.code !== 0) log(`rsync${z ? ' -z' : ''} exited ${r.code}: ${r.stderr.trim().slice(-300)}`);
      trial.rsync.push({ z, ms, sent: num('Total bytes sent'), received: num('Total bytes received'), tx0: (a1 as number) - (a0 as number), tx1: (b1 as number) - (b0 as number), usage: parseTime(ctf), ok });
      rmSync(dest, { recursive: true, force: true });
      log(`N=${trial.n} rsync${z ? ' -z' : ''}: ${(ms / 1000).toFixed(1)} s, ${num('Total bytes received')} bytes received`);
    }
  } finally {
    await stopTimed(daemon);
    rmSync(base, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- report
const fmtS = (ms: number | undefined, d = 1): string => (ms === undefined || !Number.isFinite(ms) ? '–' : (ms / 1000).toFixed(d));
const fmtMiB = (b: number | undefined, d = 1): string => (b === undefined || !Number.isFinite(b) ? '–' : (b / MiB).toFixed(d));
const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? '–' : `${(a / b).toFixed(2)}×`);

function perNodeTable(p: Phase, withBytes: string | undefined): string[] {
  const o: string[] = [];
  o.push(`| node | done (s after t0) | sent on eth0 (MiB) | CPU s | peak RSS (MiB) |${withBytes ? ` ${withBytes} |` : ''} note |`);
  o.push(`|---:|---:|---:|---:|---:|${withBytes ? '---:|' : ''}---|`);
  for (const r of p.rows) {
    o.push(
      `| ${r.node} | ${fmtS(r.doneMs, 2)} | ${fmtMiB(r.txBytes)} | ${r.usage ? r.usage.cpuS.toFixed(2) : '–'} | ${r.usage ? (r.usage.rssKiB / 1024).toFixed(0) : '–'} |${withBytes ? ` ${fmtMiB(r.bytes, 2)} |` : ''} ${r.note ?? ''} |`,
    );
  }
  return o;
}

interface Report {
  started: Date;
  loadBefore: number[];
  loadAfter?: number[];
  imageMs?: number;
  trials: Trial[];
  error?: string;
  totalMs?: number;
}

function render(r: Report): string {
  const o: string[] = [];
  o.push(`# gitfs swarm benchmark (${r.started.toISOString().slice(0, 16)}Z)`, '');
  o.push(
    `${machineLine(r.loadBefore, r.loadAfter)} ` +
      `Every node, its daemon and its transfer programs share these ${availableParallelism()} vCPUs.`,
  );
  o.push(
    `Image: **${SIZE_MIB} MiB** ${IMAGE_FROM === undefined ? 'of pseudo-random data (AES-128-CTR keystream' : `ext4 file system made from ${IMAGE_FROM} (\`mke2fs -d\``}; generated in ${fmtS(r.imageMs)} s); version 2 has ${CHANGE_MIB} MiB rewritten at ${CHANGE_AT_MIB} MiB. ` +
      `Every node's eth0 egress shaped by tbf to **${RATE_MBIT} Mbit/s** (burst 10 ms, latency 50 ms), all on one bridge; TCP congestion control **${TCP_CC}** in every namespace (this machine's own: ${HOST_CC}). ` +
      `S/B = ${SIZE_MIB} MiB × 8 / ${RATE_MBIT} Mbit/s = **${fmtS(SB_MS, 2)} s** (payload only: Ethernet, IP and TCP headers take about 4.5 % of a full frame, so a TCP transfer cannot beat ~${fmtS(SB_MS * 1.045, 1)} s).`,
  );
  o.push('');
  if (r.error !== undefined) o.push(`**The run failed:** ${r.error}`, '');
  o.push(
    'Methods. **HTTP**: `python3 -m http.server` on node 0, `curl -o FILE` on the others, all started together (t0 = their spawn). ' +
      `**aria2c** ${'1.36'}: opentracker on node 0, torrent by \`mktorrent -l 20\` (1 MiB pieces); node 0 seeds (\`--bt-seed-unverified\`), the others start together at t0; ` +
      `settings on every node: \`${ARIA2_COMMON.join(' ')}\`${opt['aria2-encrypted'] === true ? `, and for "aria2c, encrypted" also \`${ARIA2_ENCRYPTED.join(' ')}\` (BitTorrent's MSE/PE: every connection encrypted with RC4, as gitfs's are with TLS)` : ''}; a node is done when \`--on-bt-download-complete\` runs (before it seeds); every node keeps seeding until the last is done. ` +
      `**gitfs**: one \`gitfs serve\` per node, policy \`{"branches":"images/*","replicas":"all"}\`, ${CHUNK_SIZE === undefined ? 'default settings otherwise' : `repositories made by \`gitfs init --chunk-size ${CHUNK_SIZE}\`, default settings otherwise`}; \`gitfs commit --branch ${BRANCH} --from DIR\` on node 0 (DIR holds ${IMAGE}); ` +
      't0 = that process\'s exit; a node is done at its `fetched` log event (branch moved, objects in packs on disk). ' +
      (WARM_MIB > 0 ? `Before v1, every daemon fetched a warm-up image of ${WARM_MIB} MiB (other bytes, branch ${WARM_BRANCH}, not timed), then stayed idle ${IDLE_S} s: the daemons' transfer path is compiled by V8, as in a cluster that has run for a while. ` : '') +
      'CPU s and peak RSS: /usr/bin/time for programs (aria2c and the HTTP server over their whole life, including the idle seeding), the daemon\'s /proc over the phase (CPU) and since its start (VmHWM). ' +
      '"sent on eth0": bytes transmitted by the node over the phase, all protocols and headers.',
    '',
  );

  if (r.trials.length > 0) {
    o.push('## Summary', '');
    o.push(
      '| nodes | S/B s | one HTTP transfer s | naive HTTP fan-out, last s | aria2c, last s | gitfs, last s (after commit exit) | gitfs ÷ S/B | gitfs ÷ one transfer | gitfs ÷ aria2c | aria2c ÷ S/B | `gitfs commit` s | node 0 sent, × image: aria2c / gitfs |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const t of r.trials) {
      const g = t.gitfs?.lastMs;
      o.push(
        `| ${t.n} | ${fmtS(SB_MS, 2)} | ${fmtS(t.calibration?.lastMs, 2)} | ${fmtS(t.http?.lastMs)} | ${fmtS(t.aria2?.lastMs)} | **${fmtS(g)}** | ${ratio(g, SB_MS)} | ${ratio(g, t.calibration?.lastMs)} | ${ratio(g, t.aria2?.lastMs)} | ${ratio(t.aria2?.lastMs, SB_MS)} | ${fmtS(t.commitV1?.ms)} | ${ratio(t.aria2?.rows.find((x) => x.node === 0)?.txBytes, SIZE)} / ${ratio(t.gitfs?.rows.find((x) => x.node === 0)?.txBytes, SIZE)} |`,
      );
    }
    o.push('');
    const at = (n: number): Trial | undefined => r.trials.find((t) => t.n === n);
    const t8 = at(8);
    o.push(
      IMAGE_FROM === undefined
        ? 'Goals (issue 5):'
        : 'Goals (issue 5), on this image (gitfs moves its distinct chunks deflated; the goals are judged on the pseudo-random image, which nothing shrinks):',
      '',
    );
    o.push(`- last node within 1.2× S/B at 8 nodes: ${t8?.gitfs?.lastMs === undefined ? 'not measured' : `${ratio(t8.gitfs.lastMs, SB_MS)} → ${t8.gitfs.lastMs <= 1.2 * SB_MS ? 'met' : '**not met**'}`}`);
    for (const n of [4, 8, 16]) {
      const t = at(n);
      const g = t?.gitfs?.lastMs;
      const a = t?.aria2?.lastMs;
      o.push(`- faster than aria2c at ${n} nodes: ${g === undefined || a === undefined ? 'not measured' : `${fmtS(g)} s vs ${fmtS(a)} s → ${g < a ? 'met' : '**not met**'}`}`);
    }
    if (r.trials.length >= 2) {
      const a = r.trials[0] as Trial;
      const b = r.trials[r.trials.length - 1] as Trial;
      o.push(`- growth from ${a.n} to ${b.n} nodes: gitfs ${ratio(b.gitfs?.lastMs, a.gitfs?.lastMs)}, aria2c ${ratio(b.aria2?.lastMs, a.aria2?.lastMs)}`);
    }
    o.push('');
    if (r.trials.some((t) => t.aria2Encrypted !== undefined)) {
      o.push('Against aria2c with every connection encrypted (MSE/PE, RC4), as gitfs\'s are (TLS 1.3, AES-GCM):', '');
      o.push('| nodes | aria2c, last s | aria2c encrypted, last s | gitfs, last s | gitfs ÷ aria2c encrypted | CPU s all nodes: aria2c / encrypted / gitfs |', '|---:|---:|---:|---:|---:|---:|');
      const cpu = (p: Phase | undefined): string => (p === undefined ? '–' : p.rows.reduce((sum, x) => sum + (x.usage?.cpuS ?? 0), 0).toFixed(1));
      for (const t of r.trials) {
        o.push(`| ${t.n} | ${fmtS(t.aria2?.lastMs)} | ${fmtS(t.aria2Encrypted?.lastMs)} | **${fmtS(t.gitfs?.lastMs)}** | ${ratio(t.gitfs?.lastMs, t.aria2Encrypted?.lastMs)} | ${cpu(t.aria2)} / ${cpu(t.aria2Encrypted)} / ${cpu(t.gitfs)} |`);
      }
      o.push('');
    }

    o.push('## Second version of the image', '');
    o.push(
      `${CHANGE_MIB} MiB rewritten at offset ${CHANGE_AT_MIB} MiB. gitfs: \`gitfs commit\` of the new version on node 0, every other node fetches it (bytes: the \`fetched\` event's). ` +
        'rsync: `rsync --stats -I --no-whole-file [-z] rsync://node0/img/disk.img DEST` on node 1 with v1 at DEST (rsync daemon on node 0; one receiver). Bytes: rsync\'s own totals, and eth0 of each side.',
      '',
    );
    o.push('| nodes | method | time s | fetched / received per node (MiB) | sent by the source on eth0 (MiB) | CPU s (receiver) |', '|---:|---|---:|---:|---:|---:|');
    for (const t of r.trials) {
      const v2 = t.gitfsV2;
      if (v2) {
        const fetched = v2.rows.filter((x) => x.bytes !== undefined).map((x) => x.bytes as number);
        const range = fetched.length === 0 ? '–' : `${fmtMiB(Math.min(...fetched), 2)}–${fmtMiB(Math.max(...fetched), 2)}`;
        const cpuR = v2.rows.filter((x) => x.node !== 0 && x.usage).map((x) => x.usage?.cpuS as number);
        o.push(
          `| ${t.n} | gitfs, to ${t.n - 1} nodes (last; after commit exit; the commit took ${fmtS(t.commitV2?.ms)} s) | ${fmtS(v2.lastMs, 2)} | ${range} | ${fmtMiB(v2.rows[0]?.txBytes, 2)} | ${cpuR.length ? `${Math.min(...cpuR).toFixed(2)}–${Math.max(...cpuR).toFixed(2)}` : '–'} |`,
        );
      }
      for (const x of t.rsync) {
        o.push(
          `| ${t.n} | rsync${x.z ? ' -z' : ''}, to node 1${x.ok ? '' : ' (**result differs**)'} | ${fmtS(x.ms, 2)} | ${fmtMiB(x.received, 2)} received, ${fmtMiB(x.sent, 2)} sent | ${fmtMiB(x.tx0, 2)} | ${x.usage ? x.usage.cpuS.toFixed(2) : '–'} |`,
        );
      }
    }
    o.push('');

    for (const t of r.trials) {
      o.push(`## ${t.n} nodes`, '');
      if (t.error) o.push(`**Failed:** ${t.error}`, '');
      if (t.setupMs !== undefined) o.push(`gitfs setup (init, cluster init, ${t.n - 1} joins, daemons started, all listing each other): ${fmtS(t.setupMs)} s.`, '');
      if (t.commitV1) o.push(`\`gitfs commit\` of v1: ${fmtS(t.commitV1.ms)} s, ${t.commitV1.cpuS.toFixed(2)} CPU s, peak RSS ${(t.commitV1.rssKiB / 1024).toFixed(0)} MiB; of v2: ${fmtS(t.commitV2?.ms)} s, ${t.commitV2?.cpuS.toFixed(2) ?? '–'} CPU s, peak RSS ${t.commitV2 ? (t.commitV2.rssKiB / 1024).toFixed(0) : '–'} MiB.`, '');
      const phases: [Phase | undefined, string | undefined][] = [
        [t.calibration, undefined],
        [t.http, undefined],
        [t.aria2, undefined],
        [t.aria2Encrypted, undefined],
        [t.gitfs, 'fetched (MiB)'],
        [t.gitfsV2, 'fetched (MiB)'],
      ];
      for (const [p, bytes] of phases) {
        if (!p) continue;
        o.push(`### ${p.name}: last ${fmtS(p.lastMs, 2)} s (${ratio(p.lastMs, SB_MS)} S/B)`, '');
        if (p.error) o.push(`**Failed:** ${p.error}`, '');
        o.push(...perNodeTable(p, bytes), '');
        if (p.notes.length > 0) o.push(...p.notes.map((x) => `- ${x}`), '');
      }
      if (t.warnings.size > 0) o.push('gitfs daemons logged: ' + [...t.warnings].map(([k, v]) => `${k} × ${v}`).join(', ') + '.', '');
    }
  }
  o.push(`Command: \`node dist/bench/swarm.js ${shownArgs().join(' ')}\`${r.totalMs === undefined ? '' : `; total time ${fmtS(r.totalMs, 0)} s`}.`);
  return `${o.join('\n')}\n`;
}

// ---------------------------------------------------------------- main
async function runTrial(n: number, work: string, dirs: Images, sums: Images): Promise<Trial> {
  const trial: Trial = { n, rsync: [], warnings: new Map() };
  let cluster: NetnsCluster | undefined;
  let daemons: Daemon[] = [];
  try {
    log(`N=${n}: ${n} namespaces, ${RATE_MBIT} Mbit/s each`);
    cluster = await createNetnsCluster(n, { label: 'swarm', rateMbit: RATE_MBIT, tcpCongestionControl: TCP_CC });
    const nodes = cluster.nodes;
    const n0 = nodes[0] as NetnsNode;
    const rest = nodes.slice(1);
    if (!SKIP.has('http')) {
      trial.calibration = await httpPhase('one HTTP transfer', n0, rest.slice(0, 1), nodes, dirs.v1, work, sums.v1);
      log(`N=${n} one HTTP transfer: ${fmtS(trial.calibration.lastMs, 2)} s${trial.calibration.error ? ` (${trial.calibration.error})` : ''}`);
      trial.http = await httpPhase('naive HTTP fan-out', n0, rest, nodes, dirs.v1, work, sums.v1);
      log(`N=${n} naive HTTP fan-out: last ${fmtS(trial.http.lastMs, 2)} s${trial.http.error ? ` (${trial.http.error})` : ''}`);
    }
    if (!SKIP.has('aria2')) {
      trial.aria2 = await aria2Phase(n0, rest, nodes, dirs.v1, work, sums.v1, false);
      log(`N=${n} aria2c: last ${fmtS(trial.aria2.lastMs, 2)} s${trial.aria2.error ? ` (${trial.aria2.error})` : ''}`);
      if (opt['aria2-encrypted'] === true) {
        trial.aria2Encrypted = await aria2Phase(n0, rest, nodes, dirs.v1, work, sums.v1, true);
        log(`N=${n} aria2c, encrypted: last ${fmtS(trial.aria2Encrypted.lastMs, 2)} s${trial.aria2Encrypted.error ? ` (${trial.aria2Encrypted.error})` : ''}`);
      }
    }
    if (!SKIP.has('gitfs')) {
      try {
        daemons = await gitfsPhases(trial, cluster, work, dirs, sums);
      } finally {
        for (const d of daemons) for (const [k, v] of d.warnings) trial.warnings.set(k, (trial.warnings.get(k) ?? 0) + v);
      }
    }
    if (!SKIP.has('rsync')) await rsyncPhase(trial, n0, rest[0] as NetnsNode, work, dirs, sums.v2);
  } catch (e) {
    trial.error = (e as Error).message;
    log(`N=${n} error: ${(e as Error).stack ?? String(e)}`);
  } finally {
    if (cluster !== undefined) await cluster.cleanup();
    rmSync(join(work, `gitfs-${n}`), { recursive: true, force: true });
  }
  return trial;
}

async function main(): Promise<number> {
  if (!netnsSupported()) {
    process.stderr.write('swarm bench: needs root and a working `ip netns`\n');
    return 2;
  }
  for (const tool of ['curl', '/usr/bin/python3', 'aria2c', 'opentracker', 'mktorrent', 'rsync', '/usr/bin/time', 'tc']) {
    const r = await sh('bash', ['-c', `command -v ${tool}`]);
    if (r.code !== 0) {
      process.stderr.write(`swarm bench: ${tool} missing (apt-get install curl python3 aria2 opentracker mktorrent rsync time iproute2)\n`);
      return 2;
    }
  }
  const report: Report = { started: new Date(), loadBefore: loadavg(), trials: [] };
  const t00 = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'gfsw-'));
  const removeWork = (): void => rmSync(work, { recursive: true, force: true });
  process.on('exit', removeWork);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)));
  let status = 0;
  try {
    if (DAEMON_LOGS !== undefined) mkdirSync(DAEMON_LOGS, { recursive: true });
    const dirs: Images = { v1: join(work, 'v1'), v2: join(work, 'v2'), ...(WARM_MIB > 0 ? { warm: join(work, 'warm') } : {}) };
    for (const dir of Object.values(dirs)) mkdirSync(dir);
    const ti = Date.now();
    if (IMAGE_FROM === undefined) writeKeystream(join(dirs.v1, IMAGE), 0, SIZE_MIB, 1, true);
    else {
      const made = await sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-d', IMAGE_FROM, join(dirs.v1, IMAGE), `${SIZE_MIB}M`]);
      if (made.code !== 0) throw new Error(`mke2fs -d ${IMAGE_FROM} failed: ${made.stderr.trim()}`);
    }
    copyFileSync(join(dirs.v1, IMAGE), join(dirs.v2, IMAGE));
    writeKeystream(join(dirs.v2, IMAGE), CHANGE_AT_MIB, CHANGE_MIB, 2, false);
    if (dirs.warm !== undefined) writeKeystream(join(dirs.warm, IMAGE), 0, WARM_MIB, 3, true);
    const sums: Images = {
      v1: await sha256(join(dirs.v1, IMAGE)),
      v2: await sha256(join(dirs.v2, IMAGE)),
      ...(dirs.warm !== undefined ? { warm: await sha256(join(dirs.warm, IMAGE)) } : {}),
    };
    report.imageMs = Date.now() - ti;
    log(`image: ${SIZE_MIB} MiB in ${work} (${fmtS(report.imageMs)} s), v1 ${sums.v1.slice(0, 12)}, v2 ${sums.v2.slice(0, 12)}; S/B ${fmtS(SB_MS, 2)} s`);
    for (const n of NODE_COUNTS) {
      const t = await runTrial(n, work, dirs, sums);
      report.trials.push(t);
      if (t.error !== undefined) status = 1;
      for (const p of [t.calibration, t.http, t.aria2, t.aria2Encrypted, t.gitfs, t.gitfsV2]) if (p?.error !== undefined) status = 1;
    }
  } catch (e) {
    report.error = (e as Error).message;
    log(`error: ${(e as Error).stack ?? String(e)}`);
    status = 1;
  } finally {
    report.loadAfter = loadavg();
    removeWork();
  }
  report.totalMs = Date.now() - t00;
  writeReport(OUT, render(report), log);
  return status;
}

process.exitCode = await main();

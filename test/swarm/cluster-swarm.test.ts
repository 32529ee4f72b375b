/**
 * The swarm (issue 5) end to end: real `gitfs serve` daemons, one per network namespace
 * (test/support/netns.ts), replicating branches by policy over mutual TLS on the node service
 * port (BitTorrent wire + gitfs_swarm). Checks are made with the real CLI (`gitfs log`, `gitfs
 * cat` piped into `cmp` against the source files, `gitfs fsck`, `gitfs policy --json`,
 * `gitfs peers --json`) and with git itself (`git fsck --strict`).
 *
 * One 5-node cluster (n0 holds the CA, n1-n4 joined with tokens). Each test writes its own
 * config file (`policies`, and what else it needs) and restarts every daemon with it
 * (`gitfs serve --config FILE -v`, -v for the debug event closure-known), so that a failure
 * names its own cause. Announce interval 2 s. The tests: replication to the nodes a policy names
 * and to no other (20 MiB); an on-demand branch (commits and trees everywhere, blobs only where
 * read through a real FUSE mount of a partial node, `gitfs fetch` completing one); history: 2
 * (shallow, and a node 3 commits behind catching up by fast-forward); SIGTERM with swarm connections open; replicas 3 with a holder killed
 * (graceMs 12 s, longer than the peer table keeps a silent node); a receiver killed mid-transfer (60 MiB, packs every 4 MiB) and restarted; a
 * 3|2 partition by nftables (UDP and TCP) that heals, a branch written on both sides merged; a
 * 2|1|2 partition, one branch written on all three sides, converging on one head; a merge that
 * fails on one node (its local head's tree lost), failing its branch alone; a stranger's and an anonymous TLS client
 * on the swarm port (TLS completes, because the port also takes joins, and the connection is
 * closed at the BitTorrent handshake with nothing sent back; a member's certificate is the
 * control); a member that sends corrupt blobs. The stranger and the liar are small node
 * scripts run inside a namespace (written to the suite's temporary directory), the liar built
 * on the product's own SwarmConnection. Every wait is bounded and fails with the daemons'
 * recent log lines; namespaces and processes go in the `after` hook, pass or fail.
 *
 * Measured on 2 CPUs: 20 MiB to 4 nodes 2.5-3.5 s after `gitfs commit` returned; a killed
 * holder replaced 13.1 s after the kill (graceMs 12 s); 60 MiB to 3 nodes in 4.2-7 s, the
 * killed one done 2-2.5 s after its restart, fetching 52-56 of 60 MiB again; a healed partition
 * converged in 0.5-0.9 s (the branch both sides wrote, merged on all 5, in 3.3 s); three sides
 * on one head 0.5-0.8 s after the heal, five nodes cut off alone 1.4-1.6 s (29-46 merge commits
 * written, 4 in the head's history); the liar caught by all 3 receivers within 2.6 s. Whole file about
 * 2 min (2 min 20 s while daemons hang on SIGTERM and are killed after 3 s at each restart).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { NodeId } from '../../src/cluster/node-id.js';
import type { BranchDecision } from '../../src/swarm/policy.js';
import type { FetchOutcome } from '../../src/swarm/swarm.js';
import { rendezvousOrder } from '../../src/swarm/rendezvous.js';
import { GITFS_BIN } from '../support/cli.js';
import { FaultyDisk } from '../support/faulty-disk.js';
import { Daemon, GitfsNode, logsOf, Roster, sleep, waitFor, waitMesh as waitMeshOf, type LogEvent, type PeersSnapshot } from '../support/cluster-nodes.js';
import { stopAllMounts, TestMount } from '../support/mount.js';
import { createNetnsCluster, netnsSupported, type NetnsCluster } from '../support/netns.js';
import { suiteDirs } from '../support/tmp.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

const INTERVAL_MS = 2000;
const COMMON_ENV = { GITFS_ANNOUNCE_INTERVAL_MS: String(INTERVAL_MS) };
const SERVICE_PORT = 7420;
/** dist/ (this file runs as dist/test/swarm/cluster-swarm.test.js). */
const DIST_URL = new URL('../../', import.meta.url);
const MiB = 1 << 20;
/** How long a daemon may take to stop on SIGTERM. */
const STOP_GRACE_MS = 3000;

interface PolicyAnswer {
  readonly decisions: BranchDecision[];
  readonly fetching: { commit: string; branches: string[]; pieces: number; held: number; bytes: number; ms: number }[];
  readonly outcomes: FetchOutcome[];
}

interface SourceTree {
  readonly dir: string;
  /** Paths relative to dir, '/'-separated. */
  readonly files: readonly string[];
}

interface Made {
  readonly oid: string;
  readonly started: number;
  readonly done: number;
}

/**
 * Connects to HOST:PORT with TLS (the given certificate, or none), sends a BitTorrent handshake
 * for INFOHASH and prints one JSON line: whether TLS completed, how many bytes came back (a
 * handshake reply is 68 bytes), and how the connection ended.
 */
const PROBE_SCRIPT = `
import { connect } from 'node:tls';
import { readFileSync } from 'node:fs';
const [host, port, infoHash, cert, key] = process.argv.slice(2);
const opts = { host, port: Number(port), rejectUnauthorized: false, minVersion: 'TLSv1.3', checkServerIdentity: () => undefined };
if (cert) { opts.cert = readFileSync(cert); opts.key = readFileSync(key); }
const out = { secure: false, received: 0, head: '', end: '', error: null, ms: 0 };
const t0 = Date.now();
let socket;
const done = (how) => {
  if (out.end) return;
  out.end = how;
  out.ms = Date.now() - t0;
  console.log(JSON.stringify(out));
  socket.destroy();
  process.exit(0);
};
setTimeout(() => done('timeout'), 8000);
socket = connect(opts);
socket.on('secureConnect', () => {
  out.secure = true;
  const reserved = Buffer.alloc(8);
  reserved[5] |= 0x10; // BEP 10 extension protocol
  socket.write(Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), reserved, Buffer.from(infoHash, 'hex'), Buffer.from('-PROBE0-abcdefghijkl')]));
});
socket.on('data', (d) => {
  out.received += d.length;
  if (out.head.length < 136) out.head += d.toString('hex').slice(0, 136 - out.head.length);
  if (out.received >= 68) done('handshake-reply');
});
socket.on('end', () => done('end'));
socket.on('close', () => done('close'));
socket.on('error', (e) => { out.error = e.message; done('error'); });
`;

/**
 * A lying member: listens on ADDRESS:PORT with the member's own certificate (read from GITDIR)
 * and speaks the swarm wire with the product's own SwarmConnection. It answers interest with a
 * complete bitfield, metadata wants honestly (so the receiver learns the closure) and blob wants
 * with the objects asked for, ids as asked, content altered. Logs JSON lines on stdout.
 */
const LIAR_SCRIPT = `
import { createServer } from 'node:tls';
import { createHash } from 'node:crypto';
const [dist, gitDir, address, port] = process.argv.slice(2);
const imp = (p) => import(new URL(p, dist).href);
const { loadMembership } = await imp('src/cluster/cluster-store.js');
const { serverOptions, peerNode } = await imp('src/cluster/tls.js');
const { SwarmConnection } = await imp('src/swarm/connection.js');
const { BlockPool } = await imp('src/swarm/block-pool.js');
const { Repository } = await imp('src/repo/repository.js');
const { walkClosure } = await imp('src/swarm/closure.js');
const log = (event, f = {}) => process.stdout.write(JSON.stringify({ t: Date.now(), event, ...f }) + '\\n');
const { identity, trust } = await loadMembership(gitDir, Date.now());
const repo = await Repository.open(gitDir);
const infoHash = createHash('sha1').update('gitfs-swarm-v1\\0' + trust.clusterId).digest();
const source = { absent: (oids) => repo.objects.absent(oids), read: (o) => repo.objects.read(o) };
const closures = new Map();
async function handle(conn, m) {
  if (m.kind === 'interested') {
    const key = m.commit + ':' + m.history + ':' + (m.base ?? '');
    if (!closures.has(key)) closures.set(key, await walkClosure(source, m.commit, m.history, { base: m.base }).catch(() => null));
    const cl = closures.get(key);
    const pieces = cl ? cl.pieces : 0;
    const bitfield = Buffer.alloc(Math.ceil(pieces / 8));
    for (let i = 0; i < pieces; i++) bitfield[i >> 3] |= 1 << (7 - (i & 7));
    conn.send({ kind: 'have', commit: m.commit, history: m.history, base: m.base, pieces, bitfield, complete: cl !== null });
    log('interested', { peer: conn.nodeId, commit: m.commit, pieces });
  } else if (m.kind === 'want') {
    let batch = [];
    let bytes = 0;
    let sent = 0;
    const missing = [];
    for (const oid of m.oids) {
      let o;
      try { o = await repo.objects.read(oid); } catch { missing.push(oid); continue; }
      let content = Buffer.from(o.content);
      if (m.want !== 'meta') {
        if (content.length === 0) content = Buffer.from('not empty');
        else content[content.length >> 1] ^= 0x5a;
      }
      if (bytes + content.length > (4 << 20) && batch.length > 0) {
        conn.send({ kind: 'objects', request: m.request, objects: batch, done: false });
        batch = [];
        bytes = 0;
      }
      batch.push({ oid, type: o.type, content });
      bytes += content.length;
      sent++;
    }
    conn.send({ kind: 'objects', request: m.request, objects: batch, done: true });
    if (missing.length > 0) conn.send({ kind: 'reject', request: m.request, reason: 'missing', missing });
    log(m.want === 'meta' ? 'served-meta' : 'sent-corrupt', { peer: conn.nodeId, request: m.request, objects: sent });
  }
}
const handlers = {
  onMessage(conn, m) { handle(conn, m).catch((e) => log('error', { error: String(e && e.message || e) })); },
  onClose(conn, reason) { log('closed', { peer: conn.nodeId, reason }); },
};
const server = createServer(serverOptions(identity, trust), (socket) => {
  socket.on('error', () => socket.destroy());
  socket.once('data', (first) => {
    socket.pause();
    socket.unshift(first);
    const peer = peerNode(socket, trust, Date.now());
    if (peer === undefined || first[0] !== 19) { log('refused', {}); socket.destroy(); return; }
    log('connection', { peer: peer.nodeId });
    new SwarmConnection(socket, peer.nodeId, { infoHash, selfId: identity.nodeId, initiator: false, pool: new BlockPool(8) }, handlers);
    socket.resume();
  });
});
server.listen(Number(port), address, () => log('listening', { address, port: Number(port) }));
`;

describe('swarm/cluster: policy replication between real daemons in network namespaces', function () {
  this.timeout(120_000);
  const clusters: NetnsCluster[] = [];
  const dirs = suiteDirs(async () => {
    try {
      await stopAllMounts();
    } finally {
      for (const c of clusters) await c.cleanup();
    }
  });
  let net: NetnsCluster;
  let base = '';
  let members: GitfsNode[] = [];
  let configPath = '';
  let clusterId = '';
  const { names, nameOf, others, member, byId, current } = new Roster(() => members);
  const diag = (): string => logsOf(members, 30);

  /** `gitfs serve --config <current config> -v` on `n`, waiting (bounded) for its `serving` line. */
  async function serve(n: GitfsNode, extraEnv: Record<string, string> = {}, timeoutMs = 20_000, config = configPath): Promise<Daemon> {
    if (n.serving) throw new Error(`${n.name}: a daemon runs already`);
    const child = n.net.spawn(process.execPath, [...NODE_FLAGS, GITFS_BIN, 'serve', '--repo', n.repo, '--config', config, '-v'], { env: n.env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
    const d = new Daemon(`${n.name} daemon #${n.daemons.length + 1}`, child);
    n.daemons.push(d);
    const deadline = Date.now() + timeoutMs;
    while (d.find('serving').length === 0) {
      if (!d.running) throw new Error(`${n.name}: gitfs serve exited before serving\n${d.tail()}`);
      if (Date.now() > deadline) throw new Error(`${n.name}: gitfs serve not serving within ${timeoutMs} ms\n${d.tail()}`);
      await sleep(20);
    }
    return d;
  }

  const waitMesh = (group: readonly GitfsNode[], timeoutMs: number, what: string): Promise<PeersSnapshot[]> =>
    waitMeshOf(group, timeoutMs, what, nameOf, diag);

  /**
   * SIGTERM to every running daemon; one still running STOP_GRACE_MS later is SIGKILLed and
   * named in the result (how a daemon stops is the subject of its own test, not of the others).
   */
  async function stopAll(): Promise<string[]> {
    const hung: string[] = [];
    await Promise.all(
      members.map(async (n) => {
        const d = n.daemon;
        if (d === undefined || !d.running) return;
        d.child.kill('SIGTERM');
        if (await Promise.race([d.exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)])) return;
        hung.push(n.name);
        d.child.kill('SIGKILL');
        await d.exited;
      }),
    );
    return hung;
  }

  /** Writes this test's config file and restarts every daemon with it (those in `skip` stay stopped). */
  async function configure(label: string, config: Record<string, unknown>, skip: readonly GitfsNode[] = []): Promise<void> {
    configPath = join(base, `config-${label}.json`);
    writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
    const hung = await stopAll();
    if (hung.length > 0) console.log(`      (restarting for ${label}: ${hung.join(' ')} still ran ${STOP_GRACE_MS} ms after SIGTERM and were SIGKILLed; see the SIGTERM test)`);
    const up = members.filter((n) => !skip.includes(n));
    await Promise.all(up.map((n) => serve(n)));
    await waitMesh(up, 4 * INTERVAL_MS, `precondition: the daemons restarted with ${configPath} to list each other`);
  }

  /** The first event named `event` (fields `match`, logged at or after `since`) of each node's current daemon. */
  async function waitEvents(
    group: readonly GitfsNode[],
    event: string,
    match: Record<string, unknown>,
    since: number,
    timeoutMs: number,
    what: string,
  ): Promise<Map<GitfsNode, LogEvent>> {
    const found = new Map<GitfsNode, LogEvent>();
    return waitFor(
      what,
      timeoutMs,
      () => {
        for (const n of group) {
          if (found.has(n)) continue;
          const e = n.daemon?.find(event, match).find((x) => x.t >= since);
          if (e !== undefined) found.set(n, e);
        }
        return found.size === group.length ? found : undefined;
      },
      { everyMs: 20, detail: () => `missing on: ${group.filter((n) => !found.has(n)).map((n) => n.name).join(' ')}`, diag },
    );
  }

  /** Runs git on `n`'s repository, as an author with an identity (its commits dated `seconds` when given); its output, trimmed. */
  function gitOn(n: GitfsNode, args: readonly string[], input?: string, seconds?: number): string {
    const at = seconds === undefined ? {} : { GIT_COMMITTER_DATE: `${seconds} +0000`, GIT_AUTHOR_DATE: `${seconds} +0000` };
    const env = { ...process.env, GIT_AUTHOR_NAME: 'A', GIT_AUTHOR_EMAIL: 'a@example.invalid', GIT_COMMITTER_NAME: 'A', GIT_COMMITTER_EMAIL: 'a@example.invalid', ...at };
    return execFileSync('git', ['--git-dir', n.repo, ...args], { input, env, encoding: 'utf8' }).trim();
  }

  /** A fresh directory: three small text files in two directories and `data/big.bin` of `bigBytes` random bytes. */
  function makeTree(label: string, bigBytes: number): SourceTree {
    const dir = join(base, `src-${label}-${Date.now()}`);
    mkdirSync(join(dir, 'notes'), { recursive: true });
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'README.txt'), `${label}: ${randomBytes(16).toString('hex')}\n`);
    writeFileSync(join(dir, 'notes', 'a.txt'), `${randomBytes(300).toString('base64')}\n`);
    writeFileSync(join(dir, 'notes', 'b.txt'), `${randomBytes(3000).toString('base64')}\n`);
    writeFileSync(join(dir, 'data', 'big.bin'), randomBytes(bigBytes));
    return { dir, files: ['README.txt', 'notes/a.txt', 'notes/b.txt', 'data/big.bin'] };
  }

  /** A copy of `tree` with `writes` (path → content) written and `removes` removed. */
  function editedCopy(tree: SourceTree, label: string, writes: Record<string, string>, removes: readonly string[]): SourceTree {
    const dir = join(base, `src-${label}-${Date.now()}`);
    cpSync(tree.dir, dir, { recursive: true });
    for (const [path, content] of Object.entries(writes)) writeFileSync(join(dir, path), content);
    for (const path of removes) rmSync(join(dir, path));
    return { dir, files: [...new Set([...tree.files.filter((f) => !removes.includes(f)), ...Object.keys(writes)])] };
  }

  async function commitTree(n: GitfsNode, branch: string, tree: SourceTree, message: string): Promise<Made> {
    const started = Date.now();
    const out = await n.ok(['commit', '--branch', branch, '--from', tree.dir, '-m', message, '--json'], { timeoutMs: 120_000 });
    const done = Date.now();
    const oid = (JSON.parse(out) as { commit: string | null }).commit;
    assert.ok(oid, `${n.name}: commit made nothing: ${out}`);
    return { oid, started, done };
  }

  /** A commit made by git on n at `seconds` (a tree of one file, README, holding `text`) with `parents`; no branch moves. */
  function commitAt(n: GitfsNode, seconds: number, text: string, parents: readonly string[]): string {
    const blob = gitOn(n, ['hash-object', '-w', '--stdin'], text);
    const tree = gitOn(n, ['mktree'], `100644 blob ${blob}\tREADME\n`);
    return gitOn(n, ['commit-tree', tree, ...parents.flatMap((p) => ['-p', p]), '-m', text], undefined, seconds);
  }

  /** The branch's commit in n's repository (read by git), or undefined. */
  async function refOf(n: GitfsNode, branch: string): Promise<string | undefined> {
    const r = await n.net.exec('git', ['--git-dir', n.repo, 'rev-parse', '-q', '--verify', `refs/heads/${branch}`]);
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  async function policyOf(n: GitfsNode): Promise<PolicyAnswer> {
    return JSON.parse(await n.ok(['policy', '--json'])) as PolicyAnswer;
  }

  async function gitFsck(n: GitfsNode): Promise<string> {
    const r = await n.net.exec('git', ['--git-dir', n.repo, 'fsck', '--strict'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, `${n.name}: git fsck --strict exited ${r.code}\n${r.stdout}${r.stderr}\n${n.tail()}`);
    return r.stderr.trim();
  }

  /**
   * n holds `branch` at `oid` (git rev-parse), the chunked `data/big.bin` read back with `gitfs cat`
   * is byte-identical to the source (cmp), and `git fsck --strict` passes (so every reachable
   * object matches its id). `full` adds `gitfs log`, `gitfs cat | cmp` of every other file and
   * `gitfs fsck` (a process each: on 2 CPUs the tests do that on one node per commit).
   */
  async function verifyCopy(n: GitfsNode, branch: string, oid: string, tree: SourceTree, full = false): Promise<void> {
    assert.equal(await refOf(n, branch), oid, `${n.name}: ${branch} is not at ${oid}`);
    for (const f of full ? tree.files : tree.files.filter((x) => x === 'data/big.bin')) {
      const r = await n.net.exec('bash', ['-c', 'set -o pipefail; "$0" "$1" cat --repo "$2" "$3" | cmp - "$4"', process.execPath, GITFS_BIN, n.repo, `${branch}:${f}`, join(tree.dir, f)], {
        env: n.env(),
        timeoutMs: 60_000,
      });
      assert.equal(r.code, 0, `${n.name}: gitfs cat ${branch}:${f} differs from the source (exit ${r.code}): ${r.stdout}${r.stderr}`);
    }
    await gitFsck(n);
    if (!full) return;
    const log = await n.ok(['log', branch, '-n', '1']);
    assert.match(log, new RegExp(`^commit ${oid}$`, 'm'), `${n.name}: gitfs log ${branch} shows\n${log}`);
    const fsck = await n.ok(['fsck'], { timeoutMs: 120_000 });
    assert.match(fsck, / 0 problems$/m, `${n.name}: gitfs fsck: ${fsck}`);
  }

  /** Drops every packet between `n` and `away` (`tcp`: TCP alone, so that multicast announcements still pass) until heal(n). */
  async function cutOff(n: GitfsNode, away: readonly GitfsNode[], only: 'tcp' | 'all' = 'all'): Promise<void> {
    const set = away.map((o) => o.net.address).join(', ');
    const proto = only === 'tcp' ? ' meta l4proto tcp' : '';
    const script =
      'table inet gitfs_part\ndelete table inet gitfs_part\n' +
      `table inet gitfs_part {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    ip saddr { ${set} }${proto} drop\n  }\n` +
      `  chain output {\n    type filter hook output priority 0; policy accept;\n    ip daddr { ${set} }${proto} drop\n  }\n}\n`;
    const r = await n.net.exec('nft', ['-f', '-'], { input: script, timeoutMs: 10_000 });
    assert.equal(r.code, 0, `nft in ${n.net.ns}: ${r.stderr}`);
  }

  async function heal(n: GitfsNode): Promise<void> {
    const r = await n.net.exec('nft', ['-f', '-'], { input: 'table inet gitfs_part\ndelete table inet gitfs_part\n', timeoutMs: 10_000 });
    if (r.code !== 0) console.error(`      could not heal ${n.net.ns}: ${r.stderr}`);
  }

  /** The swarm's BitTorrent info hash of this cluster (src/swarm/swarm.ts). */
  const infoHash = (): string => createHash('sha1').update(`gitfs-swarm-v1\0${clusterId}`).digest('hex');

  before(async function () {
    this.timeout(120_000);
    assert.equal(netnsSupported(), true, 'these tests need root and a working `ip netns`');
    net = await createNetnsCluster(5, { label: 'swarm' });
    clusters.push(net);
    base = dirs.make('gitfs-swarm-');
    configPath = join(base, 'config-initial.json');
    writeFileSync(configPath, '{}\n');
    members = net.nodes.map((x, i) => GitfsNode.make(x, base, `n${i}`, COMMON_ENV));
    const [ca, ...joiners] = members;
    assert.ok(ca);
    await Promise.all(members.map((n) => n.ok(['init'])));
    await ca.ok(['cluster', 'init']);
    await serve(ca);
    const tokens: string[] = [];
    for (const _ of joiners) tokens.push((await ca.ok(['cluster', 'token', '--ttl', '10m'])).trim());
    await Promise.all(joiners.map((n, i) => n.ok(['cluster', 'join', tokens[i] ?? ''])));
    for (const n of members) {
      const show = await n.show();
      n.nodeId = show.nodeId;
      clusterId = show.cluster;
      names.set(n.nodeId, n.name);
    }
  });

  it('a commit (3 small files + a 20 MiB chunked file) reaches every node its policy names, byte-identical; a branch no policy matches never leaves its node; bits flipped on disk there are mended from peers, by gitfs fsck --repair and by its daemon scrubbing', async function () {
    this.timeout(150_000);
    await configure('site', { policies: [{ branches: 'site/*', replicas: 'all' }] });
    const author = member(1);
    const receivers = others(author);
    const priv = await commitTree(author, 'private/x', makeTree('private', 256 << 10), 'not replicated');
    const tree = makeTree('site', 20 * MiB);
    const c = await commitTree(author, 'site/a', tree, 'site a');
    const got = await waitEvents(receivers, 'fetched', { branch: 'site/a', commit: c.oid }, c.started, 90_000, `every other node to fetch site/a ${c.oid}`);
    const last = Math.max(...[...got.values()].map((e) => e.t));
    console.log(
      `      20 MiB commit: \`gitfs commit\` took ${c.done - c.started} ms; last node fetched ${last - c.done} ms after it returned (${last - c.started} ms after it started); ` +
        [...got].map(([n, e]) => `${n.name} +${e.t - c.done} ms (fetch ${String(e.ms)} ms, ${((e.bytes as number) / MiB).toFixed(1)} MiB, ${String(e.objects)} objects)`).join(', '),
    );
    for (const [n, e] of got) {
      assert.equal(e.history, 0, `${n.name} fetched history ${String(e.history)}`);
      assert.ok((e.bytes as number) >= 20 * MiB && (e.bytes as number) < 22 * MiB, `${n.name} fetched ${String(e.bytes)} bytes for a 20 MiB commit`);
      // The fetch's course: the closure known, then the first piece whole, within the fetch.
      const { walkMs, firstPieceMs, ms } = e as { walkMs?: unknown; firstPieceMs?: unknown; ms?: unknown };
      assert.ok(typeof walkMs === 'number' && typeof firstPieceMs === 'number' && typeof ms === 'number', `${n.name}'s fetched event lacks its course: ${JSON.stringify(e)}`);
      assert.ok(walkMs >= 0 && walkMs <= firstPieceMs && firstPieceMs <= ms, `${n.name}: closure known after ${walkMs} ms, first piece after ${firstPieceMs} ms, fetch ${ms} ms`);
    }
    await Promise.all(receivers.map((n, i) => verifyCopy(n, 'site/a', c.oid, tree, i === 0)));

    // Each receiver announces its new head: the author's table shows every other node holding it.
    let table = '';
    await waitFor(
      `${author.name}'s peer table to show every other node announcing site/a ${c.oid}`,
      3 * INTERVAL_MS,
      async () => {
        const s = await author.peers();
        table = s.peers.map((p) => `${nameOf(p.nodeId)}: ${JSON.stringify(p.heads.map((h) => [h.branch, h.oid.slice(0, 12)]))}`).join('\n');
        return s.peers.length === 4 && s.peers.every((p) => p.heads.some((h) => h.branch === 'site/a' && h.oid === c.oid)) ? true : undefined;
      },
      { detail: () => table, diag },
    );

    // private/x: announced (every other node saw it) but wanted by no policy, so never fetched.
    for (const n of receivers) {
      const s = await n.peers();
      const heads = s.peers.find((p) => p.nodeId === author.nodeId)?.heads ?? [];
      assert.ok(heads.some((h) => h.branch === 'private/x' && h.oid === priv.oid), `${n.name} never saw ${author.name} announce private/x: ${JSON.stringify(heads)}`);
      assert.equal(await refOf(n, 'private/x'), undefined, `${n.name} has private/x, which no policy matches`);
      assert.deepEqual(current(n).find('fetch-start', { branch: 'private/x' }), [], `${n.name} started fetching private/x`);
      const p = await policyOf(n);
      assert.equal(p.decisions.find((d) => d.branch === 'private/x'), undefined, `${n.name}: gitfs policy has a decision for private/x`);
      const d = p.decisions.find((x) => x.branch === 'site/a');
      assert.ok(d, `${n.name}: gitfs policy has no decision for site/a: ${JSON.stringify(p)}`);
      assert.equal(d.state, 'held');
      assert.equal(d.local, c.oid);
      assert.equal(d.holders.length, 5, `${n.name}: replicas all over 5 live nodes lists holders ${d.holders.map(nameOf).join(' ')}`);
    }
    const own = (await policyOf(author)).decisions;
    assert.deepEqual(
      own.map((d) => [d.branch, d.state]),
      [['site/a', 'held']],
      `${author.name}: gitfs policy decisions ${JSON.stringify(own)}`,
    );
 
    // The next version rewrites 1 MiB inside the big file and one small file: every receiver holds its
    // parent, so it fetches only what the commit adds to that (by base), not the 20 MiB again.
    const fd = openSync(join(tree.dir, 'data', 'big.bin'), 'r+');
    writeSync(fd, randomBytes(MiB), 0, MiB, 8 * MiB);
    closeSync(fd);
    writeFileSync(join(tree.dir, 'README.txt'), `site, again: ${randomBytes(16).toString('hex')}\n`);
    const c2 = await commitTree(author, 'site/a', tree, 'site a, again');
    const got2 = await waitEvents(receivers, 'fetched', { branch: 'site/a', commit: c2.oid }, c2.started, 60_000, `every other node to fetch site/a ${c2.oid}`);
    console.log(`      the next version: ${[...got2].map(([n, e]) => `${n.name} ${((e.bytes as number) / MiB).toFixed(2)} MiB, ${String(e.objects)} objects in ${String(e.ms)} ms`).join(', ')}`);
    for (const [n, e] of got2) {
      assert.equal(e.base, c.oid, `${n.name} fetched ${c2.oid} whole, not by its parent: ${JSON.stringify(e)}`);
      assert.ok((e.bytes as number) >= MiB && (e.bytes as number) < 3 * MiB, `${n.name} fetched ${String(e.bytes)} bytes for a change of 1 MiB`);
    }
    await Promise.all(receivers.map((n, i) => verifyCopy(n, 'site/a', c2.oid, tree, i === 0)));

    // Self-healing, on one receiver. A bit is flipped on disk in a chunk while its daemon is down (so
    // that no window of the pack it read before holds the good bytes). (1) `gitfs fsck --repair` gets
    // it through the daemon, which finds its own copy damaged and fetches it from a peer; (2) with
    // another chunk flipped, the daemon restarted with a scrub every second finds and mends it alone;
    // (3) a sector that does not read is mended as (1).
    const sick = receivers[1] as GitfsNode;
    const packDir = join(sick.repo, 'objects', 'pack');
    const flipped: { path: string; bytes: Buffer }[] = [];
    let faulty: FaultyDisk | undefined;
    /** A chunk (4 KiB or more) of some pack of several objects, whose entry spans `minBytes` in the pack; the pack's name and path, the chunk's id and its entry's offset. */
    const chunkEntry = (minBytes: number): { pack: string; path: string; oid: string; offset: number } => {
      for (const idx of readdirSync(packDir).filter((f) => f.endsWith('.idx'))) {
        const entries = gitOn(sick, ['verify-pack', '-v', join(packDir, idx)]).split('\n').map((l) => l.split(/\s+/)).filter((x) => /^[0-9a-f]{40}$/.test(x[0] ?? ''));
        const f = entries.find((x) => x[1] === 'blob' && Number(x[2]) >= 4096 && Number(x[3]) > minBytes);
        if (f === undefined || entries.length < 2) continue;
        return { pack: idx.replace(/\.idx$/, ''), path: join(packDir, idx.replace(/\.idx$/, '.pack')), oid: f[0] as string, offset: Number(f[4]) };
      }
      throw new Error(`${sick.name}: no chunk of ${minBytes} bytes in any pack`);
    };
    /**
     * Flips a bit in a chunk of some pack of several objects (one of one object would be written
     * again under its own name: replaced in place, not set aside); the pack's name and the chunk's id.
     */
    const flipChunk = (): { pack: string; oid: string } => {
      const c = chunkEntry(200);
      const bytes = readFileSync(c.path);
      flipped.push({ path: c.path, bytes: Buffer.from(bytes) });
      bytes[c.offset + 100] = (bytes[c.offset + 100] as number) ^ 0x04;
      writeFileSync(c.path, bytes);
      return c;
    };
    const down = (): Promise<void> => sick.stop('SIGTERM', STOP_GRACE_MS).catch(() => sick.stop('SIGKILL'));
    /** With the daemon started again, `gitfs fsck --repair` names the damaged chunk and mends it through the daemon, which finds its own copy damaged. */
    const mendedThroughDaemon = async (damage: { pack: string; oid: string }): Promise<void> => {
      await serve(sick);
      await waitMesh(members, 4 * INTERVAL_MS, `the restarted ${sick.name} to list its peers`);
      const repaired = await sick.ok(['fsck', '--repair'], { timeoutMs: 60_000 });
      assert.match(repaired, new RegExp(`GITFS_CORRUPT_PACK ${damage.pack}: checksum wrong, 1 entries fail their CRC-32: ${damage.oid}`), repaired);
      assert.match(repaired, /repaired: 1 objects written again \(1 through the node daemon\), 1 damaged packs rewritten \(1 set aside/, repaired);
      assert.match(repaired, /checking again:\n[^]*: 0 problems\n$/, repaired);
      assert.equal(current(sick).find('damaged-here', { first: damage.oid }).length, 1, `${sick.name}: the daemon did not find its copy damaged\n${sick.tail()}`);
    };
    try {
      await down();
      await mendedThroughDaemon(flipChunk());

      await down();
      const two = flipChunk();
      const scrubbing = join(dirname(configPath), 'config-scrub.json');
      writeFileSync(scrubbing, JSON.stringify({ ...JSON.parse(readFileSync(configPath, 'utf8')), scrub: { everyMs: 1000 } }));
      await serve(sick, {}, 20_000, scrubbing);
      // A scrub before the peers are known leaves the damage, and the next (a second later) mends it.
      const mended = await waitFor(`${sick.name}'s scrub to mend ${two.pack}`, 30_000, () => current(sick).find('repaired').find((e) => Array.isArray(e['left']) && e['left'].length === 0), { detail: () => sick.tail(), diag });
      assert.deepEqual([mended['supplied'], mended['rewritten'], mended['setAside'], mended['left']], [1, [two.pack], [two.pack], []], JSON.stringify(mended));
      assert.equal(current(sick).find('damaged-here', { first: two.oid }).length, 1, `${sick.name}: the swarm did not find its copy damaged\n${sick.tail()}`);
      flipped.length = 0;

      // (3) A sector of a chunk that does not read (EIO, from a real FUSE disk the pack is
      // linked to): `gitfs fsck --repair` gets it through the daemon, which counts the lost
      // copy as damaged and fetches it from a peer.
      await down();
      // An entry holding a whole 4 KiB sector: the scan's read by sectors names it alone.
      const three = chunkEntry(3 * 4096);
      const sector = Math.ceil(three.offset / 4096) * 4096;
      const disk = join(dirname(configPath), 'faulty-disk');
      mkdirSync(join(disk, 'files'), { recursive: true });
      mkdirSync(join(disk, 'mnt'), { recursive: true });
      copyFileSync(three.path, join(disk, 'files', `${three.pack}.pack`));
      flipped.push({ path: three.path, bytes: readFileSync(three.path) });
      faulty = await FaultyDisk.start(join(disk, 'mnt'), join(disk, 'files'), `${three.pack}.pack`, sector, sector + 1);
      rmSync(three.path);
      symlinkSync(join(disk, 'mnt', `${three.pack}.pack`), three.path);
      await mendedThroughDaemon(three);
      flipped.length = 0;
    } finally {
      // A failure above leaves the repository as it was for the cases after this one.
      for (const f of flipped) {
        if (!existsSync(f.path.replace(/\.pack$/, '.idx'))) continue;
        rmSync(f.path, { force: true });
        writeFileSync(f.path, f.bytes);
      }
      await faulty?.stop();
    }
    await verifyCopy(sick, 'site/a', c2.oid, tree);
  });

  it('a level of 1 100 trees is shared out: the chain head takes it whole from the committer, the other nodes take batches from their owners; every node ends with the commit, git fsck clean', async function () {
    this.timeout(150_000);
    await configure('wide', { policies: [{ branches: 'wide/*', replicas: 'all' }] });
    const author = member(0);
    const receivers = others(author);
    const dir = join(base, `src-wide-${Date.now()}`);
    for (let i = 0; i < 1100; i++) {
      mkdirSync(join(dir, `d${i}`), { recursive: true });
      writeFileSync(join(dir, `d${i}`, 'f'), `${i}\n`);
    }
    const c = await commitTree(author, 'wide/a', { dir, files: [] }, 'wide');
    await waitEvents(receivers, 'fetched', { branch: 'wide/a', commit: c.oid }, c.started, 90_000, `every other node to fetch wide/a ${c.oid}`);
    const shared = new Map(receivers.map((n) => [n, current(n).find('walk-level-shared', { commit: c.oid })]));
    const summary = [...shared].map(([n, e]) => `${n.name}: ${JSON.stringify(e.map(({ objects, owners, fromOwners, ms }) => ({ objects, owners, fromOwners, ms })))}`).join('; ');
    console.log(`      ${summary}`);
    // The chain's head takes the level whole; the others share it as far as their views of who
    // fetches allow: normally three owners of 367 trees each, but a node whose walk reaches the
    // level before it has heard every other fetcher's `Interested` (a loaded machine) takes it
    // whole. Every node that shares takes at least a batch from another owner.
    const events = [...shared.values()].flat();
    assert.ok(receivers.some((n) => shared.get(n)?.length === 0), `a chain head takes the level whole: ${summary}`);
    assert.ok(events.length >= 1, `some node shared the level: ${summary}`);
    for (const e of events) {
      assert.equal(e.objects, 1100, `only the level of 1 100 trees is shared: ${summary}`);
      assert.ok((e.owners as number) >= 2 && (e.fromOwners as number) >= 366, `a node that shares takes a batch or more from owners: ${summary}`);
    }
    await Promise.all(receivers.map(async (n) => (assert.equal(await refOf(n, 'wide/a'), c.oid, `${n.name}: wide/a`), await gitFsck(n))));
  });

  it('fetch: on-demand: every node takes the commits and trees at once and no blob; reading through the mount fetches what is read, byte-identical (a 20 MiB blob git wrote too, in parts); `gitfs fetch` completes the rest', async function () {
    this.timeout(120_000);
    await configure('cold', {
      policies: [
        { branches: 'cold/*', replicas: 'all', fetch: 'on-demand' },
        { branches: 'warm/*', replicas: 'all' },
      ],
    });
    const author = member(2);
    const tree = makeTree('cold', 4 * MiB);
    const c = await commitTree(author, 'cold/x', tree, 'cold x');
    const receivers = others(author);
    await waitEvents(receivers, 'fetched', { branch: 'cold/x' }, c.started, 6 * INTERVAL_MS, 'every node takes the commits and trees of cold/x');
    /** `gitfs fsck` on n: its count of blobs not here (kept on demand); no problems either way. */
    const absentOn = async (n: GitfsNode): Promise<number> => {
      const out = await n.ok(['fsck'], { timeoutMs: 60_000 });
      assert.match(out, / 0 problems$/m, `${n.name}: gitfs fsck: ${out}`);
      return Number(/\((\d+) blobs not here/.exec(out)?.[1] ?? 0);
    };
    // 4 MiB in ~8 KiB chunks, and the 3 small files: hundreds of blobs, none of them here.
    const blobs = await absentOn(member(4));
    assert.ok(blobs > 100, `${member(4).name}: only ${blobs} blobs absent`);
    for (const n of receivers) {
      assert.equal(await refOf(n, 'cold/x'), c.oid, `${n.name}: cold/x`);
      assert.equal(await absentOn(n), blobs, `${n.name}: blobs absent`);
      // git accepts the partial repository (promisor packs), and lists it.
      await gitFsck(n);
      const d = (await policyOf(n)).decisions.find((x) => x.branch === 'cold/x');
      assert.equal(d?.state, 'held', `${n.name}: gitfs policy says ${JSON.stringify(d)}`);
    }
    // A blob above what one swarm message carries (20 MiB), written whole by git itself on the author: it travels in parts.
    const image = join(base, 'cold-image.bin');
    writeFileSync(image, randomBytes(20 * MiB));
    const imageTree = gitOn(author, ['mktree'], `100644 blob ${gitOn(author, ['hash-object', '-w', image])}\timage.bin\n`);
    const imageCommit = gitOn(author, ['commit-tree', imageTree, '-m', 'an image git wrote']);
    const imageSince = Date.now();
    gitOn(author, ['update-ref', 'refs/heads/cold/image', imageCommit]);
    await waitEvents(receivers, 'fetched', { branch: 'cold/image', commit: imageCommit }, imageSince, 6 * INTERVAL_MS, 'every node takes the commit and tree of cold/image');
    // Reader: member 4 reads every file through its mount (the mount asks its daemon, which asks peers).
    const reader = member(4);
    const mnt = join(base, 'mnt-cold');
    const m = await TestMount.start(reader.repo, mnt);
    try {
      const t0 = Date.now();
      for (const f of tree.files) {
        const got = readFileSync(join(mnt, 'cold', 'x', f));
        assert.ok(got.equals(readFileSync(join(tree.dir, f))), `${reader.name}: ${f} read through the mount differs from the source`);
      }
      console.log(`      read ${tree.files.length} files (4 MiB) through a partial node's mount in ${Date.now() - t0} ms`);
      const t1 = Date.now();
      assert.ok(readFileSync(join(mnt, 'cold', 'image', 'image.bin')).equals(readFileSync(image)), `${reader.name}: the image git wrote, read through the mount, differs`);
      console.log(`      read a 20 MiB blob git wrote (in parts) through a partial node's mount in ${Date.now() - t1} ms`);
    } finally {
      await m.stop();
    }
    // What was read is kept (a pack within 2 s); the other nodes still hold no blob.
    await waitFor('the reader keeps every blob it read', 10_000, async () => ((await absentOn(reader)) === 0 ? true : undefined), { everyMs: 500, diag });
    await gitFsck(reader);
    // cold/x's blobs and the image.
    assert.equal(await absentOn(member(3)), blobs + 1, `${member(3).name} holds blobs it never read`);
    // `gitfs fetch` completes a partial copy.
    const out = await member(3).ok(['fetch', 'cold/x'], { timeoutMs: 60_000 });
    assert.match(out, new RegExp(`^fetched cold/x at ${c.oid.slice(0, 12)}: `), out);
    assert.equal(await absentOn(member(3)), 1, `${member(3).name}: blobs absent after gitfs fetch of cold/x (the image alone)`);
    await verifyCopy(member(3), 'cold/x', c.oid, tree, true);
    await member(3).ok(['fetch', 'cold/image'], { timeoutMs: 60_000 });
    assert.equal(await absentOn(member(3)), 0, `${member(3).name}: blobs absent after gitfs fetch of cold/image`);
    assert.ok(execFileSync('git', ['--git-dir', member(3).repo, 'cat-file', 'blob', `${imageCommit}:image.bin`], { maxBuffer: 64 << 20 }).equals(readFileSync(image)), `${member(3).name}: the image fetched in parts differs`);
    const missing = await reader.net.exec(process.execPath, [...NODE_FLAGS, GITFS_BIN, 'fetch', '--repo', reader.repo, 'cold/nobody-has-this'], { env: reader.env() });
    assert.equal(missing.code, 4, `gitfs fetch of an unannounced branch: exit ${missing.code} ${missing.stderr}`);
    assert.match(missing.stderr, /GITFS_UNKNOWN_BRANCH/);

    // A branch kept whole beside them: partial repositories, yet the daemon knows warm/a came whole
    // (gitfs/whole-heads.json, across a restart too), so its next commit comes by base; but not
    // where the branch was deleted and made again at the same commit by another hand (git).
    const warm = makeTree('warm', 2 * MiB);
    const w1 = await commitTree(author, 'warm/a', warm, 'warm a');
    await waitEvents(receivers, 'fetched', { branch: 'warm/a', commit: w1.oid }, w1.started, 6 * INTERVAL_MS, 'every node to fetch warm/a');
    const [restarted, remade] = receivers as [GitfsNode, GitfsNode];
    for (const n of [restarted, remade]) {
      const d = current(n);
      d.child.kill('SIGTERM');
      await d.exited;
    }
    gitOn(remade, ['update-ref', '-d', 'refs/heads/warm/a']);
    gitOn(remade, ['update-ref', 'refs/heads/warm/a', w1.oid]);
    await Promise.all([serve(restarted), serve(remade)]);
    await waitMesh(members, 4 * INTERVAL_MS, 'the restarted daemons to list their peers');
    writeFileSync(join(warm.dir, 'notes', 'a.txt'), 'warm, again\n');
    const w2 = await commitTree(author, 'warm/a', warm, 'warm a, again');
    const got = await waitEvents(receivers, 'fetched', { branch: 'warm/a', commit: w2.oid }, w2.started, 6 * INTERVAL_MS, 'every node to fetch warm/a again');
    for (const [n, e] of got) {
      if (n === remade) assert.equal(e.base, undefined, `${n.name}: its warm/a, made again by git, was taken as whole: ${JSON.stringify(e)}`);
      else assert.equal(e.base, w1.oid, `${n.name}, partial${n === restarted ? ', restarted' : ''}, fetched the next warm/a whole: ${JSON.stringify(e)}`);
    }
    await Promise.all(receivers.map((n, i) => verifyCopy(n, 'warm/a', w2.oid, warm, i === 0)));
  });

  it('history: 2: a node that was down while 3 commits were made catches up by fast-forward (not as diverged), fetching the last 2 by its head (what they add to it; git shallow, fsck clean); the author, pruned to 2 while serving, commits the next and every node fetches it by its parent, which the author walked once, ahead', async function () {
    this.timeout(120_000);
    await configure('history', { policies: [{ branches: 'keep/*', history: 2 }] });
    const author = member(1);
    const late = member(3);
    const branch = 'keep/h';
    const made: Made[] = [];
    for (let i = 0; i < 3; i++) made.push(await commitTree(author, branch, makeTree(`keep${i}`, 64 << 10), `keep ${i}`));
    const third = made[2] as Made;
    await waitEvents(others(author), 'fetched', { branch, commit: third.oid }, third.started, 6 * INTERVAL_MS, `every node to fetch ${branch}`);
    const shallowOf = (n: GitfsNode): string[] => readFileSync(join(n.repo, 'shallow'), 'utf8').trim().split('\n');
    const walked = async (n: GitfsNode): Promise<string> => (await n.net.exec('git', ['--git-dir', n.repo, 'rev-list', '--count', `refs/heads/${branch}`])).stdout.trim();
    // Each fetched every commit as it was made, so each holds all three (history K keeps at least K).
    for (const n of others(author)) assert.equal(await refOf(n, branch), third.oid, `${n.name}: ${branch}`);
    // `late` stops; three more commits; it comes back 3 commits behind, past its 2 commits of history.
    const down = current(late);
    down.child.kill('SIGTERM');
    await down.exited;
    for (let i = 3; i < 6; i++) made.push(await commitTree(author, branch, makeTree(`keep${i}`, 64 << 10), `keep ${i}`));
    const last = made[5] as Made;
    await waitEvents(others(author).filter((n) => n !== late), 'fetched', { branch, commit: last.oid }, last.started, 6 * INTERVAL_MS, `the live nodes to fetch ${branch}`);
    const back = Date.now();
    await serve(late);
    const caught = await waitEvents([late], 'fetched', { branch, commit: last.oid }, back, 6 * INTERVAL_MS, `${late.name} to catch up on ${branch}`);
    // Its head, whole here, is an ancestor in a line: what the commits since add to it comes, not their whole closure.
    assert.equal(caught.get(late)?.base, third.oid, `${late.name} fetched ${last.oid} whole, not by its head: ${JSON.stringify(caught.get(late))}`);
    assert.deepEqual([...current(late).find('fetch-diverged', { branch }), ...current(late).find('merged', { branch })], [], `${late.name} took a lagging branch for a diverged one`);
    assert.equal(await refOf(late, branch), last.oid);
    // It fetched the last 2 only: git walks those and stops at the boundary the shallow file names.
    assert.equal(await walked(late), '2', `${late.name}: commits of ${branch} that git walks`);
    assert.ok(shallowOf(late).includes((made[4] as Made).oid), `${late.name}: shallow ${shallowOf(late).join(' ')}`);
    await gitFsck(late);
    // gitfs's own fsck stops at the shallow boundary too.
    assert.match(await late.ok(['fsck']), / 0 problems$/m);

    // The author, which made all six, prunes to two while its daemon serves; its next commit still reaches every node.
    const full = author;
    assert.equal(await walked(full), '6', `precondition: ${full.name} holds all six`);
    const pruned = JSON.parse(await full.ok(['prune', '--grace', '0', '--json', '--config', configPath])) as { removedObjects: number; boundary: string[] };
    assert.ok(pruned.removedObjects > 0, `${full.name}: nothing pruned`);
    assert.deepEqual(pruned.boundary, [(made[4] as Made).oid]);
    assert.equal(await walked(full), '2', `${full.name}: commits of ${branch} that git walks after the prune`);
    await gitFsck(full);
    const next = await commitTree(author, branch, makeTree('keep6', 64 << 10), 'keep 6');
    const fetched = await waitEvents(others(author), 'fetched', { branch, commit: next.oid }, next.started, 6 * INTERVAL_MS, `every node to fetch ${branch} after the prune`);
    for (const [n, e] of fetched) assert.equal(e.base, last.oid, `${n.name} fetched ${next.oid} whole`);
    // The author walked what it adds to its parent once, ahead of the first ask, under the name every fetcher asked for it by.
    const walks = current(author).find('closure-walked', { commit: next.oid });
    assert.deepEqual(walks.map((w) => [w.base, w.history]), [[last.oid, 1]], `${author.name}'s walks of ${next.oid}`);
    assert.equal(await refOf(full, branch), next.oid);
    await gitFsck(full);
    assert.match(await full.ok(['fsck']), / 0 problems$/m);
  });

  it('history: 1: a node back after every peer pruned the release it holds (and restarted) tries what the next adds to it, is told at once that no peer can list that (they lack the base), and takes the whole closure; made in the same second, the old release is not taken for a newer one by anybody', async function () {
    this.timeout(120_000);
    await configure('pruned-base', { policies: [{ branches: 'one/*', history: 1 }] });
    const author = member(1);
    const late = member(3);
    const branch = 'one/p';
    // Both releases claim the same second: each node weighs the other's head by ancestry, not time.
    const second = Math.floor(Date.now() / 1000);
    const first = { oid: commitAt(author, second, 'one 0\n', []), started: Date.now() };
    gitOn(author, ['update-ref', `refs/heads/${branch}`, first.oid]);
    await waitEvents(others(author), 'fetched', { branch, commit: first.oid }, first.started, 6 * INTERVAL_MS, `every node to fetch ${branch}`);
    const down = current(late);
    down.child.kill('SIGTERM');
    await down.exited;
    const next = { oid: commitAt(author, second, 'one 1\n', [first.oid]), started: Date.now() };
    gitOn(author, ['update-ref', `refs/heads/${branch}`, next.oid, first.oid]);
    const live = members.filter((n) => n !== late);
    await waitEvents(others(author).filter((n) => n !== late), 'fetched', { branch, commit: next.oid }, next.started, 6 * INTERVAL_MS, `the live nodes to fetch ${branch}`);
    // Every holder prunes to the one commit kept: the first release leaves them all.
    for (const n of live) {
      const pruned = JSON.parse(await n.ok(['prune', '--grace', '0', '--json', '--config', configPath])) as { removedObjects: number };
      assert.ok(pruned.removedObjects > 0, `${n.name}: nothing pruned`);
    }
    // Restarted: a daemon that fetched the release by base still knows that closure (and serves it); these know none.
    await configure('pruned-base', { policies: [{ branches: 'one/*', history: 1 }] }, [late]);
    for (const n of live) {
      const r = await n.net.exec('git', ['--git-dir', n.repo, 'cat-file', '-t', first.oid]);
      assert.notEqual(r.code, 0, `${n.name} still holds ${first.oid}: ${r.stdout}${r.stderr}`);
    }
    const gone = (n: GitfsNode): Promise<boolean> => n.net.exec('git', ['--git-dir', n.repo, 'cat-file', '-e', first.oid]).then((r) => r.code !== 0);
    const back = (await serve(late)).find('serving')[0]?.t ?? Date.now();
    const got = await waitEvents([late], 'fetched', { branch, commit: next.oid }, back, 6 * INTERVAL_MS, `${late.name} to catch up on ${branch}`);
    // Nobody took the late node's older head (of the same second) for a newer one: had they, the fetch by base would have found its base again.
    for (const n of live) {
      assert.deepEqual(current(n).find('fetch-start', { commit: first.oid }).filter((e) => e.t >= back), [], `${n.name} fetched ${first.oid} again`);
      assert.ok(await gone(n), `${n.name} holds ${first.oid} again`);
    }
    const failed = current(late).find('fetch-failed', { commit: next.oid });
    assert.equal(failed.length, 1, `${late.name}: one failed fetch (by base) first: ${JSON.stringify(failed)}\n${diag()}`);
    assert.match(String(failed[0]?.error), /cannot list what it adds to/);
    assert.equal(got.get(late)?.base, undefined, `${late.name}: the second fetch takes the whole closure`);
    const took = (got.get(late)?.t ?? Infinity) - back;
    // Waited out, the fetch by base stalls 30 s before it fails.
    assert.ok(took < 20_000, `${late.name} caught up ${took} ms after it served`);
    console.log(`      ${late.name}: the fetch by base failed ${(failed[0]?.t ?? 0) - back} ms after it served, the whole closure came ${took} ms after it`);
    assert.equal(await refOf(late, branch), next.oid);
    await gitFsck(late);
  });

  it('SIGTERM stops a daemon that holds swarm connections, at once and cleanly', async function () {
    this.timeout(60_000);
    // The previous test left swarm connections between the nodes (idle ones live 120 s); make some if it did not run.
    const HANG_MS = 8000;
    const n = member(0);
    const sockets = async (): Promise<string[]> => {
      const r = await n.net.exec('ss', ['-Htn', 'state', 'established', '( sport = :7420 or dport = :7420 )']);
      return r.stdout.split('\n').filter((l) => l.trim() !== '');
    };
    if (!n.serving || (await sockets()).length === 0) {
      await configure('sigterm', { policies: [{ branches: 'term/*' }] });
      const c = await commitTree(member(1), 'term/a', makeTree('term', 1 * MiB), 'term');
      await waitEvents(others(member(1)), 'fetched', { branch: 'term/a', commit: c.oid }, c.started, 30_000, 'every node to fetch term/a');
    }
    const open = await sockets();
    assert.ok(open.length > 0, `precondition: ${n.name} has swarm connections open`);
    const d = current(n);
    const sent = Date.now();
    d.child.kill('SIGTERM');
    const gone = await Promise.race([d.exited.then(() => true), sleep(HANG_MS).then(() => false)]);
    const still = gone ? [] : await sockets();
    if (!gone) {
      d.child.kill('SIGKILL');
      await d.exited;
    }
    const ms = Date.now() - sent;
    console.log(`      ${n.name} with ${open.length} TCP connections on :7420 ${gone ? `exited ${ms} ms after SIGTERM` : `still ran ${HANG_MS} ms after SIGTERM`}`);
    assert.ok(
      gone,
      `${n.name}: gitfs serve still ran ${HANG_MS} ms after SIGTERM with these connections on :7420 open:\n${still.join('\n')}\n` +
        '(cause, from src/node/daemon.ts: stop() runs its closers in reverse order of start, so it awaits the node service close() (which waits for every accepted connection to end) before swarm.stop() (which would close the swarm connections among them))\n' +
        d.tail(),
    );
    assert.deepEqual(await d.exited, { code: 0, signal: null }, d.tail());
    assert.equal(d.find('stopped').length, 1, `no 'stopped' line\n${d.tail()}`);
    assert.ok(ms < STOP_GRACE_MS, `${n.name} took ${ms} ms to stop`);
  });

  it('replicas 3 over 5 nodes: exactly the top 3 by rendezvous hold it, as `gitfs policy` says everywhere; a SIGKILLed holder is replaced after graceMs', async function () {
    this.timeout(120_000);
    // Longer than the peer table keeps a silent node (3 intervals): the policy's grace, not the table, decides.
    const GRACE_MS = 12_000;
    await configure('rep3', { policies: [{ branches: 'rep3/*', replicas: 3, graceMs: GRACE_MS }] });
    const branch = 'rep3/b';
    const ranked = rendezvousOrder(branch, members.map((n) => n.nodeId as NodeId)).map(byId);
    const [first, second, third, fourth, fifth] = ranked;
    assert.ok(first && second && third && fourth && fifth);
    console.log(`      rendezvous order for ${branch}: ${ranked.map((n) => n.name).join(' > ')}`);
    // The committer holds what it made; make it one of the top 3 so that exactly 3 copies is the goal.
    const author = first;
    const top3 = [first, second, third];
    const tree = makeTree('rep3', 2 * MiB);
    const c = await commitTree(author, branch, tree, 'three copies');
    await waitEvents([second, third], 'fetched', { branch, commit: c.oid }, c.started, 60_000, `${second.name} and ${third.name} (ranked 2 and 3) to fetch ${branch}`);
    // Every node agrees on the holders; let two more swarm ticks go by so a wrong fetch by a non-holder would show.
    await sleep(2 * 2000 + 500);
    const expectIds = top3.map((n) => n.nodeId);
    for (const n of members) {
      const d = (await policyOf(n)).decisions.find((x) => x.branch === branch);
      assert.ok(d, `${n.name}: no decision for ${branch}`);
      assert.deepEqual(d.holders, expectIds, `${n.name}: gitfs policy lists holders ${d.holders.map(nameOf).join(' ')}, rendezvous says ${top3.map((x) => x.name).join(' ')}`);
      assert.equal(d.shouldHold, top3.includes(n), `${n.name}: shouldHold ${d.shouldHold}`);
      assert.equal(d.state, top3.includes(n) ? 'held' : 'not-wanted', `${n.name}: state ${d.state}`);
      assert.equal(d.target?.oid, c.oid, `${n.name}: gitfs policy's target for ${branch} is not ${c.oid}: ${JSON.stringify(d)}\n${n.tail()}`);
    }
    const holding = (await Promise.all(members.map(async (n) => ((await refOf(n, branch)) === c.oid ? n : undefined)))).filter((n): n is GitfsNode => n !== undefined);
    assert.deepEqual(
      holding.map((n) => n.name).sort(),
      top3.map((n) => n.name).sort(),
      'the repositories holding the branch are not the holders gitfs policy names',
    );
    for (const n of [fourth, fifth]) assert.deepEqual(current(n).find('fetch-start', { branch }), [], `${n.name} is not a holder but started a fetch`);
    await verifyCopy(third, branch, c.oid, tree, true);

    // Kill a holder that is not the committer: after graceMs of silence the next in order takes its place.
    const victim = second;
    const d = current(victim);
    const killedAt = Date.now();
    d.child.kill('SIGKILL');
    await d.exited;
    const got = await waitEvents([fourth], 'fetched', { branch, commit: c.oid }, killedAt, GRACE_MS + 3 * INTERVAL_MS + 20_000, `${fourth.name} (ranked 4) to take over ${branch} from the killed ${victim.name}`);
    const start = current(fourth).find('fetch-start', { branch }).find((e) => e.t >= killedAt);
    const fetchedAt = got.get(fourth)?.t ?? 0;
    console.log(`      ${victim.name} SIGKILLed; ${fourth.name} started fetching ${(start?.t ?? NaN) - killedAt} ms later (graceMs ${GRACE_MS}), held it ${fetchedAt - killedAt} ms after the kill`);
    // Its last announcement came at most ~2.4 s before the kill, so it cannot drop out much sooner than graceMs - 2.4 s.
    assert.ok(start !== undefined && start.t - killedAt >= GRACE_MS - 1.25 * INTERVAL_MS - 500, `${fourth.name} took over ${(start?.t ?? NaN) - killedAt} ms after the kill, before graceMs ${GRACE_MS} could have passed`);
    const live = members.filter((n) => n !== victim);
    const newIds = [first, third, fourth].map((n) => n.nodeId);
    let problems: string[] = [];
    await waitFor(
      'every live node to list the 3 live holders in gitfs policy',
      3 * INTERVAL_MS,
      async () => {
        problems = [];
        for (const n of live) {
          const x = (await policyOf(n)).decisions.find((y) => y.branch === branch);
          if (JSON.stringify(x?.holders) !== JSON.stringify(newIds)) problems.push(`${n.name}: ${x?.holders.map(nameOf).join(' ')}`);
          if (x?.shouldHold === true && x.state !== 'held') problems.push(`${n.name}: state ${x.state}`);
        }
        return problems.length === 0 ? true : undefined;
      },
      { detail: () => problems.join('\n'), diag },
    );
    const liveHolding = (await Promise.all(live.map(async (n) => ((await refOf(n, branch)) === c.oid ? n.name : undefined)))).filter((x) => x !== undefined);
    assert.deepEqual(liveHolding.sort(), [first, third, fourth].map((n) => n.name).sort(), 'live repositories holding the branch');
    assert.deepEqual(current(fifth).find('fetch-start', { branch }), [], `${fifth.name} (ranked 5) fetched too`);
    await verifyCopy(fourth, branch, c.oid, tree);
  });

  it('a receiver SIGKILLed mid-transfer of a 60 MiB commit does not stop the others; restarted, it resumes and completes', async function () {
    this.timeout(180_000);
    // Packs are finished every 4 MiB here, so a killed fetch leaves most of what it had on disk.
    await configure('big', { policies: [{ branches: 'big/*' }], swarm: { flushBytes: 4 * MiB } });
    const author = member(0);
    const victim = member(3);
    const rest = others(author).filter((n) => n !== victim);
    const tree = makeTree('big', 60 * MiB);
    const first = current(victim);
    const packsBefore = new Set(readdirSync(join(victim.repo, 'objects', 'pack')).filter((f) => f.endsWith('.pack')));
    const t0 = Date.now();
    // Killed once it knows the closure (closure-known, a debug event: the daemons run with -v) and
    // has finished its first pack of blobs: mid-way, with something on disk to resume from.
    const packDir = join(victim.repo, 'objects', 'pack');
    const killer = (async () => {
      const start = await waitFor(`${victim.name} to start fetching big/m`, 120_000, () => first.find('fetch-start', { branch: 'big/m' }).find((e) => e.t >= t0), { everyMs: 5, diag });
      const known = await waitFor(`${victim.name} to learn the closure of big/m`, 60_000, () => first.find('closure-known', { commit: start.commit }).at(0), { everyMs: 5, diag });
      await waitFor(`${victim.name} to finish a pack of big/m`, 60_000, () => (readdirSync(packDir).some((f) => /^pack-[0-9a-f]{40}\.idx$/.test(f) && !packsBefore.has(f.replace(/\.idx$/, '.pack'))) ? true : undefined), { everyMs: 5, diag });
      first.child.kill('SIGKILL');
      const killedAt = Date.now();
      await first.exited;
      return { start, known, killedAt };
    })();
    killer.catch(() => undefined);
    const c = await commitTree(author, 'big/m', tree, '60 MiB');
    const { start, known, killedAt } = await killer;
    assert.equal(start.commit, c.oid);
    assert.deepEqual(first.find('fetched', { branch: 'big/m' }), [], `${victim.name} completed before it was killed; the test needs a bigger commit\n${first.tail()}`);
    const leftovers = readdirSync(packDir);
    const keptPacks = leftovers.filter((f) => f.endsWith('.pack') && !packsBefore.has(f));
    // Packs are finished every 4 MiB and the content is random (stored as is): what they hold need not come again.
    const keptBytes = keptPacks.reduce((sum, f) => sum + statSync(join(packDir, f)).size, 0);
    assert.ok(keptBytes >= 4 * MiB, `${victim.name} finished no pack before it was killed (${keptBytes} bytes); the test needs a later kill`);
    console.log(
      `      ${victim.name} SIGKILLed ${killedAt - start.t} ms after its fetch-start, ${killedAt - known.t} ms after closure-known (${String(known.blobs)} blobs in ${String(known.pieces)} pieces); ` +
        `its pack directory now holds ${leftovers.filter((f) => f.endsWith('.pack')).length} packs (it had ${packsBefore.size}) and ${leftovers.filter((f) => !/^pack-[0-9a-f]+\.(pack|idx|rev)$/.test(f)).join(' ') || 'nothing else'}`,
    );

    const got = await waitEvents(rest, 'fetched', { branch: 'big/m', commit: c.oid }, c.started, 120_000, `the other receivers to fetch big/m ${c.oid} although ${victim.name} died`);
    const last = Math.max(...[...got.values()].map((e) => e.t));
    console.log(`      60 MiB commit: \`gitfs commit\` took ${c.done - c.started} ms; the other 3 fetched it ${last - c.done} ms after it returned: ${[...got].map(([n, e]) => `${n.name} ${String(e.ms)} ms`).join(', ')}`);

    const restartedAt = Date.now();
    const second = await serve(victim);
    const again = await waitEvents([victim], 'fetched', { branch: 'big/m', commit: c.oid }, restartedAt, 90_000, `the restarted ${victim.name} to complete big/m`);
    const e = again.get(victim) as LogEvent;
    const full = (got.get(rest[0] as GitfsNode)?.bytes as number) ?? NaN;
    console.log(
      `      restarted ${victim.name} completed ${e.t - restartedAt} ms after restarting; fetched ${((e.bytes as number) / MiB).toFixed(1)} MiB the second time, ` +
        `vs ${(full / MiB).toFixed(1)} MiB for a whole fetch (${(e.bytes as number) < full ? 'resumed from what it had stored' : 'nothing reused'})`,
    );
    assert.ok(second.running);
    assert.ok((e.bytes as number) <= full - keptBytes / 2, `fetched ${e.bytes} bytes again of ${full}, though ${keptBytes} bytes of packs were kept`);
    await verifyCopy(victim, 'big/m', c.oid, tree, true);
    const warnings = await gitFsck(victim);
    if (warnings !== '') console.log(`      git fsck --strict on ${victim.name} passes, with: ${warnings.split('\n').join(' | ')}`);
    await Promise.all(rest.map(async (n) => {
      assert.equal(await refOf(n, 'big/m'), c.oid);
      await gitFsck(n);
    }));
  });

  it('a partition (every packet between {n0,n1,n2} and {n3,n4} dropped) that heals converges: every node ends with the branches committed on both sides, and a branch both sides wrote merged into one head, a file both changed kept twice', async function () {
    this.timeout(150_000);
    await configure('part', { policies: [{ branches: 'part/*' }] });
    const left = members.slice(0, 3);
    const right = members.slice(3);
    const [a0] = left;
    const b1 = right[1];
    assert.ok(a0 && b1);
    try {
      // part/both: one commit everywhere, then written on both sides of the partition.
      const shared = makeTree('both', 64 * 1024);
      const c0 = await commitTree(a0, 'part/both', shared, 'before the partition');
      await waitEvents(others(a0, members), 'fetched', { branch: 'part/both', commit: c0.oid }, c0.started, 30_000, 'every node to fetch part/both before the partition');
      const cutAt = Date.now();
      await Promise.all([...left.map((n) => cutOff(n, right)), ...right.map((n) => cutOff(n, left))]);
      const treeL = makeTree('left', 1 * MiB);
      const treeR = makeTree('right', 1 * MiB);
      const [cl, cr] = await Promise.all([commitTree(a0, 'part/left', treeL, 'left side'), commitTree(b1, 'part/right', treeR, 'right side')]);
      const bothL = editedCopy(shared, 'both-left', { 'notes/a.txt': 'edited on the left\n', 'left.txt': 'left\n' }, []);
      const bothR = editedCopy(shared, 'both-right', { 'notes/a.txt': 'edited on the right\n', 'right.txt': 'right\n' }, ['notes/b.txt']);
      const [bl, br] = await Promise.all([commitTree(a0, 'part/both', bothL, 'left side'), commitTree(b1, 'part/both', bothR, 'right side')]);
      // Each side replicates within itself, and stops hearing the other (announcements are UDP, fetches TCP: both cut).
      await waitEvents(others(a0, left), 'fetched', { branch: 'part/left', commit: cl.oid }, cl.started, 60_000, 'the left side to replicate part/left during the partition');
      await waitEvents(others(b1, right), 'fetched', { branch: 'part/right', commit: cr.oid }, cr.started, 60_000, 'the right side to replicate part/right during the partition');
      for (const n of left) await waitEvents([n], 'peer-down', { nodeId: (right[0] as GitfsNode).nodeId }, cutAt, 4 * INTERVAL_MS + 3000, `${n.name} to lose the other side`);
      for (const n of right) await waitEvents([n], 'peer-down', { nodeId: a0.nodeId }, cutAt, 4 * INTERVAL_MS + 3000, `${n.name} to lose the other side`);
      for (const n of left) assert.equal(await refOf(n, 'part/right'), undefined, `${n.name} got part/right through the partition`);
      for (const n of right) assert.equal(await refOf(n, 'part/left'), undefined, `${n.name} got part/left through the partition`);

      const healedAt = Date.now();
      await Promise.all(members.map(heal));
      const gotL = await waitEvents(right, 'fetched', { branch: 'part/left', commit: cl.oid }, healedAt, 30_000, 'the right side to fetch part/left after the partition healed');
      const gotR = await waitEvents(left, 'fetched', { branch: 'part/right', commit: cr.oid }, healedAt, 30_000, 'the left side to fetch part/right after the partition healed');
      const last = Math.max(...[...gotL.values(), ...gotR.values()].map((e) => e.t));
      console.log(`      partition of ${Math.round((healedAt - cutAt) / 1000)} s healed; all 5 nodes held both branches ${last - healedAt} ms later`);
      for (const n of members) {
        assert.equal(await refOf(n, 'part/left'), cl.oid, `${n.name}: part/left`);
        assert.equal(await refOf(n, 'part/right'), cr.oid, `${n.name}: part/right`);
      }
      await Promise.all([verifyCopy(member(4), 'part/left', cl.oid, treeL, true), verifyCopy(member(0), 'part/right', cr.oid, treeR, true)]);

      // part/both: one merge of the two heads on every node, whichever merged it or fetched it.
      const merged = await waitFor('every node to hold one merge of part/both', 30_000, async () => {
        const heads = new Set(await Promise.all(members.map((n) => refOf(n, 'part/both'))));
        const [head] = heads;
        return heads.size === 1 && head !== undefined && head !== bl.oid && head !== br.oid ? head : undefined;
      }, { everyMs: 200, diag });
      const merges = members.flatMap((n) => (n.daemon?.find('merged', { branch: 'part/both' }) ?? []).filter((e) => e.t >= healedAt).map((e) => ({ node: n.name, commit: e.commit })));
      console.log(`      part/both merged by ${merges.map((m) => m.node).join(' ')}; held by all 5 ${Date.now() - healedAt} ms after the heal`);
      assert.ok(merges.length > 0, 'no node logged the merge');
      assert.deepEqual(merges.filter((m) => m.commit !== merged), [], 'every node that merged wrote the very same commit');
      const reader = member(2);
      const parents = gitOn(reader, ['rev-list', '--parents', '-n', '1', merged]).split(' ').slice(1);
      assert.deepEqual([...parents].sort(), [bl.oid, br.oid].sort(), 'the merge has both sides as parents');
      // The newer head by committer time (then the greater id) comes first, and keeps the names.
      const [tl, tr] = [bl.oid, br.oid].map((c) => Number(gitOn(reader, ['show', '-s', '--format=%ct', c])));
      const leftNewer = (tl as number) > (tr as number) || (tl === tr && bl.oid > br.oid);
      const [newer, older] = leftNewer ? [bl.oid, br.oid] : [br.oid, bl.oid];
      assert.deepEqual(parents, [newer, older], 'the newer head is the first parent');
      const [newerTree, olderTree] = leftNewer ? [bothL, bothR] : [bothR, bothL];
      const cat = (path: string): Promise<string> => reader.ok(['cat', `part/both:${path}`]);
      assert.equal(await cat('left.txt'), 'left\n');
      assert.equal(await cat('right.txt'), 'right\n');
      assert.equal(await cat('notes/a.txt'), readFileSync(join(newerTree.dir, 'notes/a.txt'), 'utf8'), 'the newer side keeps the name');
      // Set aside under its own id.
      const olderVersion = gitOn(reader, ['rev-parse', `${older}:notes/a.txt`]).slice(0, 12);
      assert.equal(await cat(`notes/a.conflict-${olderVersion}.txt`), readFileSync(join(olderTree.dir, 'notes/a.txt'), 'utf8'), 'the older side is kept beside');
      assert.equal((await reader.run(['cat', 'part/both:notes/b.txt'])).code, 4, 'the right side removed notes/b.txt (not found)');
      await verifyCopy(reader, 'part/both', merged, { dir: shared.dir, files: ['README.txt', 'data/big.bin'] }, true);
      await gitFsck(member(3));
    } finally {
      await Promise.all(members.map(heal));
    }
  });

  /**
   * The branch `label/all` written on one node of each side of a partition at once (notes/a.txt
   * differently, and a file of its own each), replicated within each side; then healed: every
   * node must come to one head holding every side's file and each version of notes/a.txt once,
   * and stay there.
   */
  async function writtenApart(label: string, sides: readonly (readonly GitfsNode[])[]): Promise<void> {
    await configure(label, { policies: [{ branches: `${label}/*` }] });
    const writers = sides.map((side) => side[0] as GitfsNode);
    const branch = `${label}/all`;
    try {
      const shared = makeTree(label, 64 * 1024);
      const c0 = await commitTree(member(0), branch, shared, 'before the partition');
      await waitEvents(others(member(0), members), 'fetched', { branch, commit: c0.oid }, c0.started, 30_000, `every node to fetch ${branch} before the partition`);
      await Promise.all(sides.flatMap((side) => side.map((n) => cutOff(n, members.filter((m) => !side.includes(m))))));
      const trees = sides.map((_, i) => editedCopy(shared, `${label}-${i}`, { 'notes/a.txt': `written on side ${i}\n`, [`side-${i}.txt`]: `${i}\n` }, []));
      // Written at once on every side (most likely within one second).
      const heads = await Promise.all(writers.map((w, i) => commitTree(w, branch, trees[i] as SourceTree, `side ${i}`)));
      for (const [i, side] of sides.entries()) {
        const head = heads[i] as Made;
        if (side.length > 1) await waitEvents(others(writers[i] as GitfsNode, side), 'fetched', { branch, commit: head.oid }, head.started, 30_000, `side ${i} to replicate its head`);
      }

      const healedAt = Date.now();
      await Promise.all(members.map(heal));
      const inHead = (n: GitfsNode, head: string): string[] => gitOn(n, ['ls-tree', '-r', '--format=%(path) %(objectname)', head]).split('\n');
      const one = await waitFor(`every node to hold one head of ${branch}, with every side's file`, 60_000, async () => {
        const held = new Set(await Promise.all(members.map((n) => refOf(n, branch))));
        const [head] = held;
        if (held.size !== 1 || head === undefined) return undefined;
        const paths = inHead(member(0), head).map((l) => l.split(' ')[0]);
        return sides.every((_, i) => paths.includes(`side-${i}.txt`)) ? head : undefined;
      }, { everyMs: 200, diag });
      const converged = Date.now();
      const merged = members.flatMap((n) => (n.daemon?.find('merged', { branch }) ?? []).filter((e) => e.t >= healedAt).map((e) => ({ at: `${n.name}:${String(e.commit).slice(0, 8)}`, merges: Number(e.merges) })));
      const alike = members.flatMap((n) => (n.daemon?.find('merged-alike', { branch }) ?? []).filter((e) => e.t >= healedAt));
      // The writes joined newest first (merge-heads.ts): one merge for each but the newest, whatever the order nodes met them in.
      const inHistory = Number(gitOn(member(0), ['rev-list', '--merges', '--count', one, `^${c0.oid}`]));
      console.log(`      ${sides.length} sides healed; one head on all 5 ${converged - healedAt} ms later, after ${merged.length} merges writing ${merged.reduce((n, m) => n + m.merges, 0)} merge commits (${merged.map((m) => m.at).join(' ')}), ${inHistory} in its history; ${alike.length} times a merge of the same writes was kept, with no merge more`);
      assert.equal(inHistory, sides.length - 1, 'the head joins the writes in one merge each but the newest');
      // It stays: no node writes another merge of it.
      await sleep(3000);
      for (const n of members) assert.equal(await refOf(n, branch), one, `${n.name} moved on from the head all held`);

      const listing = inHead(member(2), one).map((l) => l.split(' ') as [string, string]);
      const versions = listing.filter(([path]) => path.startsWith('notes/a.')).map(([, oid]) => oid);
      const written = heads.map((h) => gitOn(member(2), ['rev-parse', `${h.oid}:notes/a.txt`]));
      assert.deepEqual([...versions].sort(), [...written].sort(), 'notes/a.txt and a copy beside for every other side: each side\'s version once');
      for (const [path, oid] of listing.filter(([p]) => p.startsWith('notes/a.conflict-'))) assert.equal(path, `notes/a.conflict-${oid.slice(0, 12)}.txt`, 'a copy is named by its own id');
      for (const [i] of sides.entries()) assert.equal(await member(4).ok(['cat', `${branch}:side-${i}.txt`]), `${i}\n`);
      // Each fetch that merged says where its branch went (what `gitfs fetch` prints).
      for (const n of members) {
        const { outcomes } = await policyOf(n);
        for (const e of (n.daemon?.find('merged', { branch }) ?? []).filter((m) => m.t >= healedAt)) {
          // One commit may be fetched more than once (a fetch the branch moved under first): the one that merged says so.
          const landed = outcomes.filter((o) => o.commit === e.fetched).flatMap((o) => o.landed.filter((l) => l.branch === branch));
          assert.ok(
            landed.some((l) => isDeepStrictEqual(l, { branch, at: e.commit, how: 'merged', setAside: e.setAsideCount })),
            `${n.name}: the outcomes of its fetches of ${String(e.fetched)} say ${JSON.stringify(landed)}, not that it merged into ${String(e.commit)}`,
          );
        }
      }
      await gitFsck(member(1));
    } finally {
      await Promise.all(members.map(heal));
    }
  }

  it('three sides of a partition ({n0,n1}, {n2}, {n3,n4}), each writing one branch: healed, every node ends at one head holding all three, the file all three changed kept three times, each version once', async function () {
    this.timeout(150_000);
    await writtenApart('three', [members.slice(0, 2), members.slice(2, 3), members.slice(3)]);
  });

  it('five nodes cut off from each other, each writing one branch: healed, every node ends at one head holding all five, the file all five changed kept five times, each version once', async function () {
    this.timeout(150_000);
    await writtenApart('five', members.map((n) => [n]));
  });

  it('a merge that fails (the local head lacks a tree) fails its branch alone: the fetch is not counted failed, the other branch moves, and `gitfs fetch` of the branch says it stayed, and why; the tree back, the merge is tried again after swarm.mergeRetryMs, and made', async function () {
    this.timeout(120_000);
    const retryMs = 6 * INTERVAL_MS;
    await configure('merge-fails', { policies: [{ branches: 'mf/*' }], swarm: { mergeRetryMs: retryMs } });
    const author = member(0);
    const victim = member(3);
    const shared = makeTree('mf', 64 * 1024);
    const c0 = await commitTree(author, 'mf/one', shared, 'both branches here');
    gitOn(author, ['update-ref', 'refs/heads/mf/two', c0.oid]);
    await waitFor('every node to hold mf/one and mf/two', 30_000, async () => ((await Promise.all(members.flatMap((n) => [refOf(n, 'mf/one'), refOf(n, 'mf/two')]))).every((r) => r === c0.oid) ? true : undefined), { everyMs: 100, diag });
    // On the victim, mf/one moves to a local commit whose notes/ tree is then lost (a damaged
    // store; the loose object is moved away, and back later).
    const notes = gitOn(victim, ['mktree'], `100644 blob ${gitOn(victim, ['hash-object', '-w', '--stdin'], `${randomBytes(8).toString('hex')}\n`)}\ta.txt\n`);
    const root = gitOn(victim, ['ls-tree', c0.oid]).split('\n').map((l) => (l.endsWith('\tnotes') ? l.replace(/tree [0-9a-f]{40}/, `tree ${notes}`) : l));
    const lacking = gitOn(victim, ['commit-tree', gitOn(victim, ['mktree'], `${root.join('\n')}\n`), '-p', c0.oid, '-m', 'local, its notes/ lost']);
    const loose = join(victim.repo, 'objects', notes.slice(0, 2), notes.slice(2));
    const aside = join(base, `lost-${notes}`);
    renameSync(loose, aside);
    try {
      gitOn(victim, ['update-ref', 'refs/heads/mf/one', lacking, c0.oid]);
      // Then the author moves both branches to one commit on c0 that edits notes/, in one transaction.
      gitOn(author, ['update-ref', 'refs/heads/mf-scratch', c0.oid]);
      const c1 = await commitTree(author, 'mf-scratch', editedCopy(shared, 'mf-c1', { 'notes/a.txt': 'edited\n' }, []), 'edits notes/');
      gitOn(author, ['update-ref', '--stdin'], `start\nupdate refs/heads/mf/one ${c1.oid} ${c0.oid}\nupdate refs/heads/mf/two ${c1.oid} ${c0.oid}\ncommit\n`);
      const failed = await waitEvents([victim], 'merge-failed', { branch: 'mf/one', fetched: c1.oid }, c1.started, 30_000, 'the victim to fail its merge of mf/one');
      assert.equal(failed.get(victim)?.code, 'GITFS_OBJECT_NOT_FOUND');
      assert.equal(failed.get(victim)?.retryMs, retryMs);
      await waitEvents([victim], 'fetched', { branch: 'mf/two', commit: c1.oid }, c1.started, 10_000, 'the victim to move mf/two');
      assert.equal(await refOf(victim, 'mf/two'), c1.oid);
      const starts = victim.daemon?.find('fetch-start', { commit: c1.oid }).length;
      // Two announcements later, within mergeRetryMs: nothing more was tried.
      await sleep(2 * INTERVAL_MS + 500);
      assert.deepEqual(victim.daemon?.find('fetch-failed', { commit: c1.oid }) ?? [], [], 'a failed merge is no failed fetch');
      assert.equal(victim.daemon?.find('fetch-start', { commit: c1.oid }).length, starts, 'c1 fetched again');
      assert.equal(victim.daemon?.find('merge-failed', { branch: 'mf/one' }).length, 1, 'the merge tried again');
      assert.equal(await refOf(victim, 'mf/one'), lacking, 'the branch whose merge failed stays where it was');
      const apart = (await policyOf(victim)).decisions.find((d) => d.branch === 'mf/one')?.apart;
      assert.equal(apart?.head, c1.oid, `gitfs policy: mf/one apart: ${JSON.stringify(apart)}`);
      assert.match(apart?.why ?? '', /^its merge with the local head [0-9a-f]{12} failed: object [0-9a-f]{40} not found/);
      // Asked for by hand, the head comes, and the command says the branch stayed, and why.
      const asked = await victim.run(['fetch', 'mf/one', '--quiet']);
      assert.equal(asked.code, 5, `gitfs fetch mf/one: ${asked.stdout}${asked.stderr}`);
      assert.match(asked.stderr, /mf\/one stays where it was: its merge with the local head [0-9a-f]{12} failed: object [0-9a-f]{40} not found \[GITFS_REF_CONFLICT\]/);
      // The store mended (the tree back): the swarm tries the merge again by itself, and makes it.
      // (Cut off from the others' fetches meanwhile, TCP alone, or one of them might merge first
      // with the head it can now serve; announcements still pass, and both heads are here.)
      await cutOff(victim, others(victim), 'tcp');
      renameSync(aside, loose);
      const mended = Date.now();
      const merged = await waitEvents([victim], 'merged', { branch: 'mf/one', local: lacking, fetched: c1.oid }, mended, retryMs + 4 * INTERVAL_MS, 'the victim to merge mf/one once its tree is back');
      const commit = merged.get(victim)?.commit as string;
      assert.equal(await refOf(victim, 'mf/one'), commit);
      assert.deepEqual(gitOn(victim, ['rev-list', '--parents', '-n', '1', commit]).split(' ').slice(1).sort(), [lacking, c1.oid].sort());
      assert.equal(victim.daemon?.find('merge-failed', { branch: 'mf/one' }).length, 2, 'failed twice (once by hand), then merged');
      assert.equal((await policyOf(victim)).decisions.find((d) => d.branch === 'mf/one')?.apart, undefined, 'merged: no longer apart');
      gitOn(victim, ['fsck', '--strict']);
    } finally {
      await heal(victim);
      if (!existsSync(loose)) renameSync(aside, loose);
    }
  });

  it('a branch file that holds no object id is not fetched into (logged branch-broken once), the other branches move; `gitfs branch delete` mends it and the branch comes', async function () {
    this.timeout(90_000);
    await configure('broken-file', { policies: [{ branches: 'bf/*' }] });
    const author = member(0);
    const victim = member(3);
    const file = join(victim.repo, 'refs', 'heads', 'bf', 'one');
    const alias = join(victim.repo, 'refs', 'heads', 'bf', 'alias');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, 'not an object id\n');
    // A symbolic branch file (an alias, as git symbolic-ref makes) cannot be written either.
    writeFileSync(alias, 'ref: refs/heads/bf/two\n');
    try {
      const made = await commitTree(author, 'bf/one', makeTree('bf', 16 << 10), 'one');
      gitOn(author, ['update-ref', 'refs/heads/bf/two', made.oid]);
      gitOn(author, ['update-ref', 'refs/heads/bf/alias', made.oid]);
      await waitEvents([victim], 'fetched', { branch: 'bf/two', commit: made.oid }, made.started, 30_000, 'the victim to fetch bf/two');
      await waitEvents([victim], 'branch-broken', { branch: 'bf/one' }, made.started, 10_000, 'the victim to log its broken bf/one');
      await waitEvents([victim], 'branch-broken', { branch: 'bf/alias' }, made.started, 10_000, 'the victim to log its symbolic bf/alias');
      // Ticks pass (one every announcement, and every 2 s): nothing is tried on either, nor logged again.
      await sleep(3 * INTERVAL_MS);
      for (const branch of ['bf/one', 'bf/alias']) {
        assert.equal(victim.daemon?.find('branch-broken', { branch }).length, 1, `${branch} logged once`);
        assert.deepEqual(victim.daemon?.find('fetch-ref-moved', { branch }), [], `a fetch tried to move ${branch}`);
      }
      assert.equal(readFileSync(alias, 'utf8'), 'ref: refs/heads/bf/two\n', 'the alias is left as it is');
      // Each is told how it is mended.
      assert.match(String(victim.daemon?.find('branch-broken', { branch: 'bf/one' })[0]?.['hint']), /^gitfs branch delete bf\/one removes the file/);
      assert.match(String(victim.daemon?.find('branch-broken', { branch: 'bf/alias' })[0]?.['hint']), /^git symbolic-ref --delete refs\/heads\/bf\/alias removes the alias/);
      assert.equal(readFileSync(file, 'utf8'), 'not an object id\n', 'the file is left as it is');
      const r = await victim.run(['branch', 'delete', 'bf/one']);
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
      const mended = Date.now();
      await waitEvents([victim], 'fetched', { branch: 'bf/one', commit: made.oid }, mended, 30_000, 'the victim to fetch bf/one once its file is removed');
      assert.equal(await refOf(victim, 'bf/one'), made.oid);
    } finally {
      rmSync(file, { force: true });
      rmSync(alias, { force: true });
    }
  });

  it('a branch made apart on a node cut off, with no commit in common with the one the others hold, is not merged: the node keeps its own, and `gitfs policy` and `gitfs fetch` there say it stays apart from the others\' head, and why', async function () {
    this.timeout(120_000);
    await configure('unrelated', { policies: [{ branches: 'un/*' }] });
    const [loner, author] = [member(0), member(1)];
    const now = Math.floor(Date.now() / 1000);
    await cutOff(loner, others(loner));
    try {
      const theirs = commitAt(author, now, 'made on n1\n', []);
      const since = Date.now();
      gitOn(author, ['update-ref', 'refs/heads/un/x', theirs]);
      await waitEvents(others(author, others(loner)), 'fetched', { branch: 'un/x', commit: theirs }, since, 30_000, 'every node but the one cut off to fetch un/x');
      // Made a minute before, on the node cut off: older, and of another history.
      const mine = commitAt(loner, now - 60, 'made on n0\n', []);
      gitOn(loner, ['update-ref', 'refs/heads/un/x', mine]);
      const healed = Date.now();
      await heal(loner);
      const diverged = await waitEvents([loner], 'fetch-diverged', { branch: 'un/x', local: mine, fetched: theirs }, healed, 30_000, 'the node cut off to find the others\' head of another history');
      assert.match(String(diverged.get(loner)?.why), /\(no-common-commit\)$/);
      await sleep(2 * INTERVAL_MS);
      assert.equal(await refOf(loner, 'un/x'), mine, 'the node keeps its own');
      for (const n of others(loner)) assert.equal(await refOf(n, 'un/x'), theirs, `${n.name} keeps the others' head`);
      assert.deepEqual(members.flatMap((n) => n.daemon?.find('merged', { branch: 'un/x' }) ?? []), [], 'nothing merged');
      const apart = (await policyOf(loner)).decisions.find((d) => d.branch === 'un/x')?.apart;
      assert.equal(apart?.head, theirs, `gitfs policy: ${JSON.stringify(apart)}`);
      assert.deepEqual(apart?.from, others(loner).map((n) => n.nodeId).sort());
      assert.match(apart?.why ?? '', /^the local branch has commits the fetched head lacks; left as it is \(no-common-commit\)$/);
      for (const n of others(loner)) assert.equal((await policyOf(n)).decisions.find((d) => d.branch === 'un/x')?.apart, undefined, `${n.name} is apart from nothing: it holds the newest`);
      const asked = await loner.run(['fetch', 'un/x', '--quiet']);
      assert.equal(asked.code, 5, `gitfs fetch un/x: ${asked.stdout}${asked.stderr}`);
      assert.match(asked.stderr, /un\/x stays where it was: the local branch has commits the fetched head lacks; left as it is \(no-common-commit\) \[GITFS_REF_CONFLICT\]/);
      // A commit more on the node's own line: still apart from the others' head, and still not merged.
      const next = commitAt(loner, now - 30, 'more on n0\n', [mine]);
      gitOn(loner, ['update-ref', 'refs/heads/un/x', next, mine]);
      await sleep(2 * INTERVAL_MS);
      assert.equal((await policyOf(loner)).decisions.find((d) => d.branch === 'un/x')?.apart?.head, theirs, 'apart after a commit of its own');
      assert.equal(await refOf(loner, 'un/x'), next);
      // The others' head taken by hand: apart from nothing.
      gitOn(loner, ['update-ref', 'refs/heads/un/x', theirs, next]);
      await sleep(INTERVAL_MS);
      assert.equal((await policyOf(loner)).decisions.find((d) => d.branch === 'un/x')?.apart, undefined, 'apart from the head it holds');
      // Cut off again, a commit on their head: fetched by hand, their head leaves the branch at it.
      await cutOff(loner, others(loner));
      const after = commitAt(loner, now + 1, 'on theirs, cut off\n', [theirs]);
      gitOn(loner, ['update-ref', 'refs/heads/un/x', after, theirs]);
      const holds = await loner.run(['fetch', 'un/x', '--quiet']);
      assert.equal(holds.code, 0, `gitfs fetch un/x: ${holds.stdout}${holds.stderr}`);
      assert.match(holds.stdout, new RegExp(`^fetched un/x at ${theirs.slice(0, 12)}: .*; un/x stays at ${after.slice(0, 12)}, which holds it\n$`));
    } finally {
      await heal(loner);
    }
  });

  it('a node of another cluster, or one without a certificate, gets no swarm handshake: the member port closes the connection (a member gets one)', async function () {
    this.timeout(60_000);
    await Promise.all(members.filter((n) => !n.serving).map((n) => serve(n)));
    const victim = member(0);
    const stranger = GitfsNode.make(await net.addNode(), base, 'stranger', COMMON_ENV);
    await stranger.ok(['init']);
    await stranger.ok(['cluster', 'init']);
    const show = await stranger.show();
    assert.notEqual(show.cluster, clusterId, 'the stranger must have its own CA');
    const script = join(base, 'probe.mjs');
    writeFileSync(script, PROBE_SCRIPT);
    const hash = infoHash();
    const to = [victim.net.address, String(SERVICE_PORT), hash];
    const probe = async (from: GitfsNode, withCert: boolean): Promise<{ secure: boolean; received: number; head: string; end: string; error: string | null; ms: number }> => {
      const dir = join(from.repo, 'gitfs', 'cluster');
      const args = [script, ...to, ...(withCert ? [join(dir, 'node.pem'), join(dir, 'node.key')] : [])];
      const r = await from.net.exec(process.execPath, args, { timeoutMs: 20_000 });
      assert.equal(r.code, 0, `probe from ${from.name}: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as { secure: boolean; received: number; head: string; end: string; error: string | null; ms: number };
    };
    // Control: a member's certificate and the cluster's info hash get a handshake back, so the probe can tell.
    const ok = await probe(member(1), true);
    assert.equal(ok.end, 'handshake-reply', `a member got no handshake reply: ${JSON.stringify(ok)}\n${victim.tail()}`);
    assert.ok(ok.head.startsWith(`13${Buffer.from('BitTorrent protocol').toString('hex')}`), `the reply is not a BitTorrent handshake: ${ok.head}`);
    assert.equal(ok.head.slice(56, 96), hash, 'the reply carries another info hash');
    const foreign = await probe(stranger, true);
    const anonymous = await probe(stranger, false);
    console.log(`      member: ${JSON.stringify(ok)}\n      other cluster's certificate: ${JSON.stringify(foreign)}\n      no certificate: ${JSON.stringify(anonymous)}`);
    for (const [what, r] of [
      ["another cluster's certificate", foreign],
      ['no certificate', anonymous],
    ] as const) {
      assert.equal(r.received, 0, `${what}: the swarm port sent ${r.received} bytes back (${r.head})`);
      assert.notEqual(r.end, 'timeout', `${what}: the connection was left open`);
      assert.notEqual(r.end, 'handshake-reply', `${what}: got a handshake`);
    }
    assert.ok(victim.serving, `${victim.name} died\n${victim.tail()}`);
    await victim.peers();
  });

  it('a commit git fsck would refuse, made with git on one node (a .gitmodules with a hostile url; a directory git reads as .gitmodules; a commit without identity), moves no branch elsewhere, leaves nothing git fsck refuses, and is not fetched again; a good commit after it arrives', async function () {
    this.timeout(120_000);
    await configure('refused', { policies: [{ branches: 'fsck/*', replicas: 'all' }] });
    const author = member(2);
    const receivers = others(author);
    const gitIn = (args: string[], input?: string): string => gitOn(author, args, input);
    const hostile = gitIn(['hash-object', '-w', '--stdin'], '[submodule "x"]\n\tpath = x\n\turl = --upload-pack=touch /tmp/pwned\n');
    const modulesTree = gitIn(['mktree'], `100644 blob ${hostile}\t.gitmodules\n`);
    const modules = gitIn(['commit-tree', modulesTree, '-m', 'a hostile .gitmodules']);
    const inner = gitIn(['mktree'], `100644 blob ${hostile}\tx\n`);
    const directoryTree = gitIn(['mktree'], `040000 tree ${inner}\tGITMOD~1\n`);
    const directory = gitIn(['commit-tree', directoryTree, '-m', 'a directory git reads as .gitmodules']);
    // A commit that does not parse (no identity): announced all the same (with time 0).
    const broken = gitIn(['hash-object', '-t', 'commit', '--literally', '-w', '--stdin'], `tree ${inner}\nauthor nobody\ncommitter nobody\n\nno identity\n`);
    const refs = ['refs/heads/fsck/modules', 'refs/heads/fsck/directory', 'refs/heads/fsck/broken'];
    const since = Date.now();
    for (const [i, c] of [modules, directory, broken].entries()) gitIn(['update-ref', refs[i] as string, c]);
    // Each receiver's refusal of `commit`, by its error (a fetch that failed for another reason first would be tried again).
    const refusals = (commit: string, why: RegExp, what: string): Promise<Map<GitfsNode, LogEvent>> =>
      waitFor(what, 60_000, () => {
        const found = new Map(receivers.flatMap((n) => n.daemon?.find('fetch-failed', { commit }).filter((e) => e.t >= since && why.test(String(e.error))).slice(0, 1).map((e): [GitfsNode, LogEvent] => [n, e]) ?? []));
        return found.size === receivers.length ? found : undefined;
      }, { everyMs: 50, diag });
    try {
      const refused = [
        ...(await refusals(modules, /git would refuse [0-9a-f]{40} as \.gitmodules: disallowed submodule url: --upload-pack/, 'every receiver to refuse the hostile .gitmodules')).values(),
        ...(await refusals(directory, /refused: a directory git reads as \.gitmodules/, 'every receiver to refuse the directory named GITMOD~1')).values(),
        ...(await refusals(broken, /does not parse/, 'every receiver to refuse the commit that does not parse')).values(),
      ];
      // `gitfs policy` names each refused head the branch stays apart from, and why.
      const said = (await policyOf(receivers[0] as GitfsNode)).decisions;
      for (const [branch, c, why] of [['fsck/modules', modules, /its content was refused: .*disallowed submodule url/], ['fsck/directory', directory, /its content was refused: .*a directory git reads as \.gitmodules/], ['fsck/broken', broken, /its content was refused: .*does not parse/]] as const) {
        const apart = said.find((d) => d.branch === branch)?.apart;
        assert.equal(apart?.head, c, `${branch}: ${JSON.stringify(apart)}`);
        assert.match(apart?.why ?? '', why);
        assert.deepEqual(apart?.from, [author.nodeId]);
      }
      assert.match(await (receivers[0] as GitfsNode).ok(['policy']), new RegExp(`fsck/modules .*; here nothing; apart from ${modules.slice(0, 12)} \\(from 1 node\\): its content was refused`));
      // Several announcement rounds later, with a good commit fetched after them: neither was fetched again, and no branch moved.
      const good = await commitTree(author, 'fsck/good', makeTree('fsck', 64 << 10), 'good');
      await waitEvents(receivers, 'fetched', { branch: 'fsck/good', commit: good.oid }, good.started, 60_000, 'every receiver to fetch the good commit');
      await sleep(3 * INTERVAL_MS);
      const lastRefusal = Math.max(...refused.map((e) => e.t));
      for (const n of receivers) {
        assert.equal(await refOf(n, 'fsck/modules'), undefined, `${n.name} moved fsck/modules`);
        assert.equal(await refOf(n, 'fsck/directory'), undefined, `${n.name} moved fsck/directory`);
        assert.equal(await refOf(n, 'fsck/broken'), undefined, `${n.name} moved fsck/broken`);
        for (const c of [modules, directory, broken]) assert.deepEqual(current(n).find('fetch-start', { commit: c }).filter((e) => e.t > lastRefusal), [], `${n.name} fetched ${c} again after refusing it`);
        assert.ok(n.serving, `${n.name}'s daemon died\n${n.tail()}`);
        // Neither refused tree was stored (the one naming the .gitmodules was held until its blob was checked): git fsck finds nothing.
        await gitFsck(n);
      }
      // Read by id through a mount (on demand, no policy asked for them), they are refused all the same.
      const reader = receivers[0] as GitfsNode;
      const mnt = join(base, 'mnt-refused');
      const m = await TestMount.start(reader.repo, mnt);
      try {
        // The refused commits are here (unreachable), their trees are not to be had: EIO; the one that does not parse is nowhere.
        for (const [c, code] of [[modules, 'EIO'], [directory, 'EIO'], [broken, 'ENOENT']] as const) {
          assert.throws(() => readdirSync(join(mnt, '.commits', c)), { code }, `${reader.name}: .commits/${c} listed`);
        }
      } finally {
        await m.stop();
      }
      await gitFsck(reader);
    } finally {
      // The author's repository holds what git fsck refuses (written by git, loose): gone, for the tests after this one.
      for (const ref of refs) gitIn(['update-ref', '-d', ref]);
      for (const oid of [hostile, inner, modulesTree, directoryTree, modules, directory, broken]) {
        rmSync(join(author.repo, 'objects', oid.slice(0, 2), oid.slice(2)), { force: true });
      }
    }
    await gitFsck(author);
  });

  it('commit times that contradict ancestry freeze nothing: a commit made while the publisher\'s clock ran an hour ahead, then one made on it after the clock was set right, both reach every node', async function () {
    this.timeout(120_000);
    await configure('skew', { policies: [{ branches: 'skew/*', replicas: 'all' }] });
    const author = member(1);
    const receivers = others(author);
    const now = Math.floor(Date.now() / 1000);
    const ahead = commitAt(author, now + 3600, 'made with the clock an hour ahead\n', []);
    let since = Date.now();
    gitOn(author, ['update-ref', 'refs/heads/skew/x', ahead]);
    await waitEvents(receivers, 'fetched', { branch: 'skew/x', commit: ahead }, since, 60_000, 'every receiver to fetch the commit made an hour ahead');
    // Every receiver now announces that commit, an hour later than the next one claims to be.
    const fixed = commitAt(author, now, 'made after the clock was set right\n', [ahead]);
    since = Date.now();
    gitOn(author, ['update-ref', 'refs/heads/skew/x', fixed, ahead]);
    const got = await waitEvents(receivers, 'fetched', { branch: 'skew/x', commit: fixed }, since, 60_000, 'every receiver to fetch the next commit, whose time is an hour before its parent\'s');
    console.log(`      the commit an hour "older" than its parent reached every receiver within ${Math.max(...[...got.values()].map((e) => e.t)) - since} ms`);
    for (const n of receivers) {
      assert.equal(await refOf(n, 'skew/x'), fixed, `${n.name}'s skew/x`);
      assert.ok(current(n).find('head-probed', { head: fixed, found: true }).length > 0, `${n.name} fetched it without probing its ancestry`);
      await gitFsck(n);
    }
  });

  it('a head nobody can serve (its tree is nowhere), announced with the latest time, holds back a head that can be had for one failed fetch only', async function () {
    this.timeout(150_000);
    await configure('ghost', { policies: [{ branches: 'ghost/*', replicas: 'all' }] });
    const author = member(1);
    const maker = member(2);
    const receivers = members.filter((n) => n !== author && n !== maker);
    // A commit whose tree no node has, an hour ahead: every node wants it first, and no fetch of it can end well.
    const when = Math.floor(Date.now() / 1000) + 3600;
    const content = `tree ${randomBytes(20).toString('hex')}\nauthor A <a@example.invalid> ${when} +0000\ncommitter A <a@example.invalid> ${when} +0000\n\nits tree is nowhere\n`;
    const gitIn = (args: string[], input?: string): string => gitOn(author, args, input);
    const ghost = gitIn(['hash-object', '-t', 'commit', '-w', '--stdin'], content);
    const set = Date.now();
    gitIn(['update-ref', 'refs/heads/ghost/x', ghost]);
    let good: Made | undefined;
    try {
      // Every receiver is after the ghost before the head that can be had exists: heard the other
      // way round, a receiver fetches that head first and tries the ghost only after the check below.
      await waitEvents(receivers, 'fetch-start', { branch: 'ghost/x', commit: ghost }, set, 30_000, 'every receiver to start fetching the head nobody can serve');
      const since = Date.now();
      good = await commitTree(maker, 'ghost/x', makeTree('ghost', 64 << 10), 'can be had');
      const got = await waitEvents(receivers, 'fetched', { branch: 'ghost/x', commit: good.oid }, since, 90_000, 'every receiver to fetch the head that can be had');
      console.log(`      the head that can be had arrived ${[...got].map(([n, e]) => `${n.name} +${e.t - since} ms`).join(', ')}`);
      for (const n of receivers) {
        const failed = current(n)
          .find('fetch-failed', { commit: ghost })
          .filter((e) => e.t >= set);
        const goodStart = current(n).find('fetch-start', { branch: 'ghost/x', commit: good.oid })[0];
        const heard = current(n).find('head', { branch: 'ghost/x', oid: good.oid })[0];
        const at = (e: LogEvent | undefined): string => (e === undefined ? '-' : `${e.t - since} ms`);
        const times = `ghost failures at ${failed.map(at).join(', ')}, the good head heard at ${at(heard)}, its fetch began at ${at(goodStart)} (from when it was made)`;
        assert.ok(failed.length > 0, `${n.name} never tried the head nobody can serve: the test proves nothing`);
        // Alone, the ghost is tried again and again; once the good head is heard, one failure at most holds it back.
        const after = failed.filter((e) => e.t >= (heard?.t ?? since));
        assert.ok(after.length <= 1, `${n.name}: the ghost held the good head back for ${after.length} failed fetches: ${times}`);
        assert.ok(goodStart !== undefined && goodStart.t >= (after[0]?.t ?? since), `${n.name} began fetching the good head before its fetch of the ghost failed: ${times}`);
        console.log(`      ${n.name}: ${times}`);
        assert.equal(await refOf(n, 'ghost/x'), good.oid);
      }
    } finally {
      gitIn(['update-ref', '-d', 'refs/heads/ghost/x']);
      rmSync(join(author.repo, 'objects', ghost.slice(0, 2), ghost.slice(2)), { force: true });
    }
    // Its branch gone, the author fetches the head that can be had: git fsck once that is done.
    const deleted = Date.now();
    await waitEvents([author], 'fetched', { branch: 'ghost/x', commit: good.oid }, deleted, 60_000, 'the author to fetch the head that can be had once its own is deleted');
    await gitFsck(author);
  });

  it('a member that answers wants with corrupt objects is detected (peer-sent-wrong-object), changes nothing, and is avoided; the branch comes byte-identical from an honest node', async function () {
    this.timeout(150_000);
    const liar = member(4);
    const honest = member(3);
    const receivers = members.slice(0, 3);
    // Every daemon stopped; the honest node stays down until the receivers have met the liar.
    await configure('liar', { policies: [{ branches: 'liar/*' }] }, members);
    const tree = makeTree('liar', 4 * MiB);
    const c = await commitTree(liar, 'liar/x', tree, 'served corrupt');
    // The liar's address:7420 is a fake that lies; its real daemon (bound to 127.0.0.1) still announces the head there.
    const script = join(base, 'liar.mjs');
    writeFileSync(script, LIAR_SCRIPT);
    const fake = liar.net.spawn(process.execPath, [script, DIST_URL.href, liar.repo, liar.net.address, String(SERVICE_PORT)], { env: liar.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    const fakeLog = new Daemon(`${liar.name} lying server`, fake);
    let fakeOut = '';
    fake.stdout?.setEncoding('utf8').on('data', (s: string) => (fakeOut += s));
    const fakeEvents = (): { t: number; event: string; peer?: string; objects?: number; reason?: string }[] =>
      fakeOut
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { t: number; event: string });
    const fakeDiag = (): string => `--- lying server stdout:\n${fakeOut.split('\n').slice(-20).join('\n')}\n${fakeLog.tail(10)}\n${diag()}`;
    await waitFor('the lying server to listen', 15_000, () => (fakeEvents().some((e) => e.event === 'listening') ? true : undefined), { diag: fakeDiag });
    // Without policies the real daemon announces its heads but dials no one (no warm connections):
    // the receivers reach this node only at its announced address, the fake's.
    const alone = join(base, 'config-liar-alone.json');
    writeFileSync(alone, `${JSON.stringify({ policies: [] }, null, 2)}\n`);
    await serve(liar, { GITFS_SERVICE_ADDRESS: '127.0.0.1' }, 20_000, alone);
    const since = Date.now();
    await Promise.all(receivers.map((n) => serve(n)));
    await waitMesh([liar, ...receivers], 4 * INTERVAL_MS, 'the liar and the receivers to list each other');
    const snap = await member(0).peers();
    assert.deepEqual(snap.peers.find((p) => p.nodeId === liar.nodeId)?.endpoints, [`${liar.net.address}:${SERVICE_PORT}`], 'the liar announces its address:7420, where the fake listens');

    const caught = await waitEvents(receivers, 'peer-sent-wrong-object', { peer: liar.nodeId }, since, 30_000, 'every receiver to catch the corrupt objects of the liar');
    const corrupt = fakeEvents().filter((e) => e.event === 'sent-corrupt');
    console.log(
      `      caught the liar: ${[...caught].map(([n, e]) => `${n.name} +${e.t - since} ms`).join(', ')}; the fake served metadata ${fakeEvents().filter((e) => e.event === 'served-meta').length} times and sent ${corrupt.length} corrupt batches`,
    );
    for (const n of receivers) {
      assert.ok(corrupt.some((e) => e.peer === n.nodeId), `the fake sent no corrupt objects to ${n.name}: it was not tested\n${fakeDiag()}`);
      assert.equal(await refOf(n, 'liar/x'), undefined, `${n.name} moved liar/x after corrupt objects`);
      assert.ok(n.serving, `${n.name}'s daemon died\n${n.tail()}`);
      await n.peers();
      await gitFsck(n);
    }

    // An honest copy appears on another node (its packs copied from the liar's repository).
    for (const f of readdirSync(join(liar.repo, 'objects', 'pack'))) {
      const to = join(honest.repo, 'objects', 'pack', f);
      if (/^pack-[0-9a-f]+\.(pack|idx)$/.test(f) && !existsSync(to)) copyFileSync(join(liar.repo, 'objects', 'pack', f), to);
    }
    await honest.ok(['branch', 'create', 'liar/x', c.oid]);
    const honestAt = Date.now();
    await serve(honest);
    const got = await waitEvents(receivers, 'fetched', { branch: 'liar/x', commit: c.oid }, honestAt, 60_000, `every receiver to fetch liar/x from ${honest.name}`);
    const last = Math.max(...[...got.values()].map((e) => e.t));
    console.log(`      with an honest holder up, all receivers held liar/x ${last - honestAt} ms later`);
    for (const n of receivers) {
      const caughtAt = caught.get(n)?.t ?? 0;
      // A dial already under way when the receiver caught the liar may be accepted a little later on
      // a loaded machine; one begun after catching would come at the receiver's next fetch attempt,
      // while the honest node was still starting (seconds).
      const back = fakeEvents().filter((e) => e.event === 'connection' && e.peer === n.nodeId && e.t > caughtAt + 1000);
      assert.deepEqual(back, [], `${n.name} went back to the liar after catching it`);
      const wrong = current(n).find('peer-sent-wrong-object');
      assert.ok(wrong.every((e) => e.peer === liar.nodeId), `${n.name} blamed an honest peer: ${JSON.stringify(wrong)}`);
      await verifyCopy(n, 'liar/x', c.oid, tree, n === receivers[0]);
    }
    fake.kill('SIGKILL');
  });
});


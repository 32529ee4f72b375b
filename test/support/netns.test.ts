import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { createNetnsCluster, netnsSupported } from './netns.js';
import type { NetnsCluster, NetnsNode } from './netns.js';

const NODE_ARGS = ['--input-type=commonjs', '-e'];

/** Prints every datagram on PORT as a line (after `ready`); joins GROUP on ADDR if set; exits when stdin ends. */
const RECEIVER = `
const dgram = require('node:dgram');
const { PORT, GROUP, ADDR } = process.env;
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true, recvBufferSize: 1 << 20 });
s.on('message', (m) => process.stdout.write(m.toString() + '\\n'));
s.bind(Number(PORT), () => {
  if (GROUP) s.addMembership(GROUP, ADDR);
  process.stdout.write('ready\\n');
});
process.stdin.on('end', () => process.exit(0)).resume();
`;

/** Sends COUNT datagrams TAG<i> to TARGET:PORT from IFADDR, one per ms; multicast with TTL 1 when MCAST is set. */
const SENDER = `
const dgram = require('node:dgram');
const { PORT, TARGET, IFADDR, COUNT, TAG, MCAST } = process.env;
const s = dgram.createSocket('udp4');
s.bind(0, IFADDR, async () => {
  if (MCAST) { s.setMulticastTTL(1); s.setMulticastInterface(IFADDR); }
  for (let i = 0; i < Number(COUNT); i++) {
    await new Promise((resolve, reject) => s.send(TAG + i, Number(PORT), TARGET, (e) => (e ? reject(e) : resolve())));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  s.close();
});
`;

interface Receiver {
  readonly child: ChildProcess;
  readonly lines: string[];
}

async function startReceiver(node: NetnsNode, env: Record<string, string>): Promise<Receiver> {
  const child = node.spawn(process.execPath, [...NODE_ARGS, RECEIVER], { env: { ...process.env, ...env } });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout?.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  await until(() => lines.includes('ready'), 10_000, () => `receiver in ${node.ns} not ready: ${stderr}`);
  lines.splice(lines.indexOf('ready'), 1);
  return { child, lines };
}

async function send(from: NetnsNode, env: Record<string, string>): Promise<void> {
  const r = await from.exec(process.execPath, [...NODE_ARGS, SENDER], { env: { ...process.env, IFADDR: from.address, ...env }, timeoutMs: 20_000 });
  assert.equal(r.code, 0, `sender in ${from.ns} failed: ${r.stderr}`);
}

async function until(cond: () => boolean, ms: number, why: () => string): Promise<void> {
  for (const end = Date.now() + ms; !cond(); await sleep(20)) {
    if (Date.now() > end) throw new Error(why());
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

/** Names of the links in the root namespace. */
function rootLinks(): Set<string> {
  const out = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
  return new Set(out.split('\n').flatMap((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? []));
}

function rootAddrs(): string {
  return execFileSync('ip', ['-o', 'addr'], { encoding: 'utf8' }).replace(/^\d+: /gm, '');
}

/** The namespace-name prefix of a cluster: `gfs<pid>-<k>[-label]`. */
function clusterBase(c: NetnsCluster): string {
  return (c.nodes[0]?.ns ?? '').replace(/-n0$/, '');
}

function namespacesOf(base: string): string[] {
  return namespaces().filter((n) => n.startsWith(`${base}-`));
}

describe('support/netns: network-namespace cluster harness', function () {
  this.timeout(30_000);
  const clusters: NetnsCluster[] = [];
  after(async () => {
    for (const c of clusters) await c.cleanup();
  });
  async function cluster(count: number, opts?: { label?: string; rateMbit?: number; tcpCongestionControl?: string }): Promise<NetnsCluster> {
    const c = await createNetnsCluster(count, opts);
    clusters.push(c);
    return c;
  }

  it('is supported here (root, ip netns)', () => {
    assert.equal(netnsSupported(), true);
  });

  it('carries multicast from n0 to n1 and n2, and unicast from n1 to n2', async () => {
    const c = await cluster(3, { label: 'mcast' });
    const [n0, n1, n2] = c.nodes;
    assert.ok(n0 && n1 && n2);
    assert.match(c.subnet, /^10\.\d+\.\d+\.0\/24$/);
    assert.equal(new Set(c.nodes.map((n) => n.address)).size, 3);
    const group = '239.255.42.99';
    const port = '42999';
    const r1 = await startReceiver(n1, { PORT: port, GROUP: group, ADDR: n1.address });
    const r2 = await startReceiver(n2, { PORT: port, GROUP: group, ADDR: n2.address });
    await send(n0, { PORT: port, TARGET: group, COUNT: '3', TAG: 'mc', MCAST: '1' });
    await until(() => r1.lines.length >= 3 && r2.lines.length >= 3, 5000, () => `multicast: n1 got ${r1.lines}, n2 got ${r2.lines}`);
    assert.deepEqual(r1.lines, ['mc0', 'mc1', 'mc2']);
    assert.deepEqual(r2.lines, ['mc0', 'mc1', 'mc2']);

    await send(n1, { PORT: port, TARGET: n2.address, COUNT: '1', TAG: 'uni' });
    await until(() => r2.lines.includes('uni0'), 5000, () => `unicast: n2 got ${r2.lines}`);
    assert.ok(!r1.lines.includes('uni0'), 'unicast to n2 must not reach n1');
    await c.cleanup();
  });

  it('creates nothing in the root namespace and deletes every namespace on cleanup()', async () => {
    const linksBefore = rootLinks();
    const addrsBefore = rootAddrs();
    const hostCc = readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim();
    const cc = hostCc === 'reno' ? 'cubic' : 'reno';
    const c = await cluster(2, { label: 'links', rateMbit: 100, tcpCongestionControl: cc });
    const late = await c.addNode();
    assert.equal(late.index, 2);
    assert.equal(c.nodes.length, 3);
    const base = clusterBase(c);
    assert.deepEqual(namespacesOf(base).sort(), [`${base}-hub`, `${base}-n0`, `${base}-n1`, `${base}-n2`].sort());
    assert.deepEqual([...rootLinks()].filter((l) => !linksBefore.has(l)), [], 'no new links in the root namespace');
    assert.equal(rootAddrs(), addrsBefore, 'no new addresses in the root namespace');
    const qdisc = await late.exec('tc', ['qdisc', 'show', 'dev', 'eth0']);
    assert.match(qdisc.stdout, /tbf .*rate 100Mbit/);
    assert.equal((await late.exec('sysctl', ['-n', 'net.ipv4.tcp_congestion_control'])).stdout.trim(), cc, 'the congestion control asked for');
    assert.equal(readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim(), hostCc, 'the host keeps its own');
    const n0 = c.nodes[0];
    assert.ok(n0);
    const rx = await startReceiver(n0, { PORT: '43001' });
    await send(late, { PORT: '43001', TARGET: n0.address, COUNT: '1', TAG: 'late' });
    await until(() => rx.lines.includes('late0'), 5000, () => 'the late joiner does not reach n0');

    late.spawn('sleep', ['600'], { stdio: 'ignore' });
    await c.cleanup();
    await c.cleanup(); // idempotent
    assert.deepEqual(namespacesOf(base), []);
    assert.deepEqual([...rootLinks()].filter((l) => !linksBefore.has(l)), []);
  });

  it('dropUdp(20) drops about a fifth of incoming UDP, dropUdp(0) none', async () => {
    const c = await cluster(2, { label: 'drop' });
    const [n0, n1] = c.nodes;
    assert.ok(n0 && n1);
    const rx = await startReceiver(n1, { PORT: '43000' });

    await c.dropUdp(20);
    await send(n0, { PORT: '43000', TARGET: n1.address, COUNT: '500', TAG: 'a' });
    // a marker sent after them, with nothing dropped, arrives after every one that got through
    await c.dropUdp(0);
    await send(n0, { PORT: '43000', TARGET: n1.address, COUNT: '1', TAG: 'end' });
    await until(() => rx.lines.includes('end0'), 5000, () => `the marker never arrived: ${rx.lines.length} lines`);
    const arrived = rx.lines.splice(0).filter((l) => l.startsWith('a')).length;
    assert.ok(arrived >= 300 && arrived <= 470, `with 20% drop, ${arrived} of 500 arrived`);

    await send(n0, { PORT: '43000', TARGET: n1.address, COUNT: '500', TAG: 'b' });
    await until(() => rx.lines.length >= 500, 5000, () => `without drop, ${rx.lines.length} of 500 arrived`);
    assert.equal(new Set(rx.lines).size, 500);
    await c.cleanup();
  });

  it('cleans up after a test body that throws', async () => {
    let base = '';
    async function failingTest(): Promise<void> {
      const c = await createNetnsCluster(2, { label: 'throws' });
      try {
        base = clusterBase(c);
        assert.equal(namespacesOf(base).length, 3);
        throw new Error('boom');
      } finally {
        await c.cleanup();
      }
    }
    await assert.rejects(failingTest(), /boom/);
    assert.notEqual(base, '');
    assert.deepEqual(namespacesOf(base), []);
  });

  describe('when the creating process dies', () => {
    const moduleUrl = new URL('./netns.js', import.meta.url).href;
    const script = `
      const { createNetnsCluster } = await import(process.env.NETNS_MODULE);
      const c = await createNetnsCluster(2, { label: 'child' });
      c.nodes[0].spawn('sleep', ['600'], { stdio: 'ignore' });
      process.stdout.write('made\\n');
      if (process.env.HOW === 'sigkill') process.kill(process.pid, 'SIGKILL');
      else process.exit(3);
    `;
    function runChild(how: 'exit' | 'sigkill'): Promise<{ pid: number; out: string }> {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
          env: { ...process.env, NETNS_MODULE: moduleUrl, HOW: how },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', reject);
        child.on('close', () => resolve({ pid: child.pid ?? -1, out }));
      });
    }

    it('process.exit() deletes its namespaces synchronously', async () => {
      const { pid, out } = await runChild('exit');
      assert.equal(out, 'made\n');
      assert.deepEqual(namespaces().filter((n) => n.startsWith(`gfs${pid}-`)), []);
    });

    it('namespaces left by a SIGKILLed process are removed by the next createNetnsCluster()', async () => {
      const { pid, out } = await runChild('sigkill');
      assert.equal(out, 'made\n');
      const stale = namespaces().filter((n) => n.startsWith(`gfs${pid}-`));
      assert.equal(stale.length, 3, `expected hub + 2 nodes left behind, got ${stale}`);
      await cluster(1, { label: 'after' });
      assert.deepEqual(namespaces().filter((n) => n.startsWith(`gfs${pid}-`)), []);
    });
  });
});

/**
 * The cluster part of `make demo`: three members and one stranger; node0 keeps disk images on
 * demand and reads one through its mount. As root, each node lives in
 * a network namespace of its own on a private bridge (multicast never leaves them); otherwise
 * they share loopback with distinct ports and announce by unicast to each other (static peers);
 * GITFS_DEMO_LOOPBACK=1 asks for that way as root too.
 * Usage: node dist/scripts/demo-cluster.js WORKDIR
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetnsCluster, netnsSupported, type NetnsCluster } from '../test/support/netns.js';
import { demoRollouts, prepareRollouts } from './demo-rollout.js';

const GITFS = fileURLToPath(new URL('../../bin/gitfs', import.meta.url));
const work = process.argv[2] ?? '/tmp/gitfs-demo-cluster';
const BASE_ENV = { ...process.env, GITFS_AUTHOR_NAME: 'Demo', GITFS_AUTHOR_EMAIL: 'demo@example.invalid', GITFS_ANNOUNCE_INTERVAL_MS: '5000' };

interface DemoNode {
  readonly name: string;
  readonly repo: string;
  readonly address: string;
  run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  start(args: readonly string[], log: string): ChildProcess;
  spawn(cmd: string, args: readonly string[]): ChildProcess;
  exec(cmd: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

const bold = (s: string): string => `\n\x1b[1m== ${s}\x1b[0m`;

function localNode(i: number, count: number): DemoNode {
  const env = {
    ...BASE_ENV,
    GITFS_NODE_NAME: `node${i}`,
    GITFS_MULTICAST: 'off',
    GITFS_MULTICAST_PORT: String(17419 + 10 * i),
    GITFS_SERVICE_PORT: String(17420 + 10 * i),
    GITFS_ADVERTISE: '127.0.0.1',
    GITFS_STATIC_PEERS: [...Array(count).keys()].filter((k) => k !== i).map((k) => `127.0.0.1:${17419 + 10 * k}`).join(','),
  };
  return nodeWith(`node${i}`, '127.0.0.1', (cmd, args) => ({ cmd, args, env }));
}

function nodeWith(name: string, address: string, wrap: (cmd: string, args: string[]) => { cmd: string; args: string[]; env: NodeJS.ProcessEnv }): DemoNode {
  const repo = join(work, name);
  const exec = (cmd: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const w = wrap(cmd, [...args]);
      execFile(w.cmd, w.args, { env: w.env, encoding: 'utf8' }, (e, stdout, stderr) => resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : 1, stdout, stderr }));
    });
  return {
    name,
    repo,
    address,
    run: (args) => exec(process.execPath, [GITFS, ...args]),
    exec,
    spawn: (cmd, args) => {
      const w = wrap(cmd, [...args]);
      return spawn(w.cmd, w.args, { env: w.env, stdio: 'ignore' });
    },
    start: (args, log) => {
      const w = wrap(process.execPath, [GITFS, ...args]);
      const child = spawn(w.cmd, w.args, { env: w.env, stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr?.pipe(createWriteStream(log));
      return child;
    },
  };
}

async function show(node: DemoNode, args: readonly string[]): Promise<string> {
  console.log(`[${node.name}]$ gitfs ${args.join(' ')}`);
  const r = await node.run([...args, '--repo', node.repo]);
  process.stdout.write(r.stdout);
  if (r.code !== 0) throw new Error(`gitfs ${args.join(' ')} on ${node.name} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting until ${what}`);
}

interface PeerJson {
  readonly nodeId: string;
  readonly heads: { branch: string; oid: string }[];
}

async function peersOf(node: DemoNode): Promise<PeerJson[]> {
  const r = await node.run(['peers', '--json', '--repo', node.repo]);
  return r.code === 0 ? (JSON.parse(r.stdout) as { peers: PeerJson[] }).peers : [];
}

/** A bit flipped on `node`'s disk, in a chunk of a pack of several objects: `gitfs fsck` names it, `gitfs fsck --repair` gets it again through the node's daemon, from a peer. */
async function healFlippedBit(node: DemoNode): Promise<void> {
  console.log(bold(`a bit flipped on ${node.name}'s disk, in a chunk of the image: gitfs fsck names it, gitfs fsck --repair gets it again from a peer`));
  const packDir = join(node.repo, 'objects', 'pack');
  for (const idx of (await readdir(packDir)).filter((f) => f.endsWith('.idx'))) {
    const entries = execFileSync('git', ['verify-pack', '-v', join(packDir, idx)], { encoding: 'utf8' }).split('\n').map((l) => l.split(/\s+/)).filter((x) => /^[0-9a-f]{40}$/.test(x[0] ?? ''));
    const chunk = entries.find((x) => x[1] === 'blob' && Number(x[3]) > 200);
    if (chunk === undefined || entries.length < 2) continue;
    const path = join(packDir, idx.replace(/\.idx$/, '.pack'));
    const at = Number(chunk[4]) + 100;
    const bytes = await readFile(path);
    bytes[at] = (bytes[at] as number) ^ 0x04;
    // Packs are read-only files: made writable for the flip (as root it makes no difference).
    await chmod(path, 0o644);
    await writeFile(path, bytes);
    await chmod(path, 0o444);
    console.log(`flipped one bit at byte ${at} of ${path}, inside chunk ${chunk[0]}`);
    console.log(`[${node.name}]$ gitfs fsck`);
    process.stdout.write((await node.run(['fsck', '--repo', node.repo])).stdout);
    await show(node, ['fsck', '--repair']);
    return;
  }
  throw new Error(`no chunk to flip on ${node.name}`);
}

/** A bit flipped in a pack's index on `node` (no reader opens the pack then): gitfs fsck --repair makes the index again from the pack, needing no peer. */
async function healDamagedIndex(node: DemoNode): Promise<void> {
  console.log(bold(`a bit flipped in a pack index on ${node.name}: the whole pack seems lost; gitfs fsck --repair makes the index again from the pack`));
  const packDir = join(node.repo, 'objects', 'pack');
  const indexes = await Promise.all((await readdir(packDir)).filter((f) => f.endsWith('.idx')).map(async (f) => ({ f, size: (await stat(join(packDir, f))).size })));
  // The smallest: every object of the pack becomes a line of gitfs fsck.
  const idx = indexes.sort((a, b) => a.size - b.size)[0]?.f;
  if (idx === undefined) throw new Error(`no pack index on ${node.name}`);
  const path = join(packDir, idx);
  const bytes = await readFile(path);
  // A byte of the first entry's CRC-32: after the header and fanout (1 032 bytes) and the ids (20 bytes each).
  const at = 1032 + 20 * bytes.readUInt32BE(8 + 255 * 4) + 2;
  bytes[at] = (bytes[at] as number) ^ 0x10;
  await chmod(path, 0o644);
  await writeFile(path, bytes);
  await chmod(path, 0o444);
  console.log(`flipped one bit at byte ${at} of ${path}`);
  console.log(`[${node.name}]$ gitfs fsck | head -4`);
  process.stdout.write(`${(await node.run(['fsck', '--repo', node.repo])).stdout.split('\n').slice(0, 4).join('\n')}\n`);
  await show(node, ['fsck', '--repair']);
}

/** Mounts node0's repository (in this namespace: FUSE needs root) and reads the image through it: the chunks come from peers. */
async function readOnDemand(n0: DemoNode, source: string): Promise<void> {
  console.log(bold("node0's mount reads the image: each chunk absent there is fetched from a peer as it is read"));
  const mnt = join(work, 'node0-mnt');
  const local = (args: readonly string[]): Promise<void> =>
    new Promise((resolve, reject) => execFile(process.execPath, [GITFS, ...args], { env: BASE_ENV }, (e) => (e === null ? resolve() : reject(e))));
  await mkdir(mnt, { recursive: true });
  console.log(`$ gitfs mount --background --repo ${n0.repo} ${mnt}`);
  await local(['mount', '--background', '--repo', n0.repo, mnt]);
  try {
    const started = Date.now();
    console.log(`$ cmp ${mnt}/images/disk/disk.img ${source}`);
    await new Promise<void>((resolve, reject) => execFile('cmp', [join(mnt, 'images', 'disk', 'disk.img'), source], (e) => (e === null ? resolve() : reject(e))));
    console.log(`identical: 32 MiB read on demand in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await local(['umount', mnt]);
  }
  // What was read is kept: within 2 s it is in a pack of node0's own.
  await until('node0 keeps what it read', async () => !/blobs not here/.test((await n0.run(['fsck', '--repo', n0.repo])).stdout), 10_000);
  await show(n0, ['fsck']);
}

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  let cluster: NetnsCluster | undefined;
  const children: ChildProcess[] = [];
  try {
    let nodes: DemoNode[];
    if (netnsSupported() && process.env.GITFS_DEMO_LOOPBACK !== '1') {
      cluster = await createNetnsCluster(4, { label: 'demo' });
      console.log(`four network namespaces on a private bridge (${cluster.subnet}); multicast stays inside them`);
      nodes = cluster.nodes.map((n) => nodeWith(`node${n.index}`, n.address, (cmd, args) => ({ cmd: 'ip', args: ['netns', 'exec', n.ns, cmd, ...args], env: { ...BASE_ENV, GITFS_NODE_NAME: `node${n.index}` } })));
    } else {
      console.log('not root: four nodes on loopback with distinct ports, announcing by unicast (static peers)');
      nodes = [0, 1, 2, 3].map((i) => localNode(i, 4));
    }
    const [n0, n1, n2, stranger] = nodes as [DemoNode, DemoNode, DemoNode, DemoNode];
    // Rollouts need the nodes' own namespaces (a web server per node on the same port).
    const rolloutFor = cluster === undefined ? undefined : await prepareRollouts(work);
    console.log(bold('node0 creates the cluster and serves'));
    // Every member keeps every site/* and images/* branch (REPO/gitfs/node.json, read by gitfs
    // serve); node0 keeps images/* on demand: commits and trees at once, file content when read.
    for (const n of nodes) {
      const images = n === n0 ? { branches: 'images/*', replicas: 'all', fetch: 'on-demand' } : { branches: 'images/*', replicas: 'all' };
      await n.run(['init', '--repo', n.repo]);
      await mkdir(join(n.repo, 'gitfs'), { recursive: true });
      const rollout = rolloutFor === undefined || n === stranger ? {} : { rollout: await rolloutFor(n) };
      const kernels = { branches: 'kernel/*', replicas: 'all' };
      await writeFile(join(n.repo, 'gitfs', 'node.json'), JSON.stringify({ policies: [{ branches: 'site/*', replicas: 'all' }, images, kernels], ...rollout }));
    }
    await show(n0, ['cluster', 'init']);
    children.push(n0.start(['serve', '--repo', n0.repo], join(work, 'node0.log')));
    await until('node0 serves', async () => (await n0.run(['peers', '--repo', n0.repo])).code === 0);

    console.log(bold('node1 and node2 join with one-time tokens'));
    for (const n of [n1, n2]) {
      const token = (await show(n0, ['cluster', 'token', '--ttl', '10m'])).trim();
      await show(n, ['cluster', 'join', token]);
      children.push(n.start(['serve', '--repo', n.repo], join(work, `${n.name}.log`)));
    }
    console.log(bold('a stranger with a cluster of its own, on the same LAN'));
    await show(stranger, ['cluster', 'init']);
    children.push(stranger.start(['serve', '--repo', stranger.repo], join(work, 'stranger.log')));

    console.log(bold('commits on node1 and node2'));
    const src = join(work, 'src');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'index.html'), '<h1>hello from node1</h1>\n');
    await show(n1, ['commit', '--branch', 'site/prod', '--from', src, '-m', 'site v1']);
    await writeFile(join(src, 'index.html'), '<h1>kernel notes from node2</h1>\n');
    await show(n2, ['commit', '--branch', 'kernel/stable', '--from', src, '-m', 'notes']);
    await until('node0 lists both peers and their heads', async () => {
      const peers = await peersOf(n0);
      const branches = new Set(peers.flatMap((p) => p.heads.map((h) => h.branch)));
      return peers.length === 2 && branches.has('site/prod') && branches.has('kernel/stable');
    });
    console.log(bold('what node0 knows: the two members and their heads (site/* is replicated to all); the stranger is heard but never listed'));
    await show(n0, ['peers', '--stats']);
    await show(n0, ['cluster', 'show']);

    console.log(bold('a 32 MiB disk image committed on node1 reaches node2 through the swarm, and node0 (on demand) learns its commits and trees'));
    const image = join(work, 'image');
    await mkdir(image, { recursive: true });
    await writeFile(join(image, 'disk.img'), randomBytes(32 << 20));
    const started = Date.now();
    await show(n1, ['commit', '--branch', 'images/disk', '--from', image, '-m', 'disk image v1']);
    for (const n of [n0, n2]) await until(`${n.name} holds images/disk`, async () => (await n.run(['log', '--repo', n.repo, '-n', '1', 'images/disk'])).code === 0, 120_000);
    console.log(`both have it ${((Date.now() - started) / 1000).toFixed(1)} s after the commit started`);
    await show(n2, ['policy']);
    await show(n2, ['log', '--oneline', 'images/disk']);
    await show(n2, ['ls', 'images/disk']);
    await show(n2, ['fsck']);
    await healFlippedBit(n2);
    await healDamagedIndex(n2);
    console.log(bold('node0 lists the image but holds none of its content'));
    await show(n0, ['ls', 'images/disk']);
    await show(n0, ['fsck']);
    if (cluster !== undefined) {
      await readOnDemand(n0, join(image, 'disk.img'));
      children.push(...(await demoRollouts([n0, n1, n2], n1, { work, show, until, bold })));
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    await cluster?.cleanup();
  }
}

await main();

/**
 * The rollout part of `make demo` (scripts/demo-cluster.ts runs it when the nodes live in
 * network namespaces): a release key, every member trusting it and applying two channels:
 * `site/prod` through sites/hooks/symlink behind a web server in its namespace, and
 * `kernel/stable` through kernel-images/hooks/qemu (test ISOs built from Debian packages by
 * kernel-images/build-test-isos.sh). A good and a bad release of each are published on node1;
 * `gitfs rollout status` shows the good ones blessed everywhere and the bad ones rolled back on
 * their canary and halted.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GITFS = join(ROOT, 'bin', 'gitfs');
const WEB_PORT = 8080;

export interface RolloutNode {
  readonly name: string;
  readonly repo: string;
  run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Starts a program inside the node's namespace. */
  spawn(cmd: string, args: readonly string[]): ChildProcess;
  exec(cmd: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

interface Demo<N extends RolloutNode> {
  readonly work: string;
  readonly show: (node: N, args: readonly string[]) => Promise<string>;
  readonly until: (what: string, check: () => Promise<boolean>, timeoutMs?: number) => Promise<void>;
  readonly bold: (s: string) => string;
}

function exec(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(cmd, args, { maxBuffer: 16 << 20 }, (e, out, err) => (e === null ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: ${err || e.message}`)))));
}

/** Makes the release key and the test ISOs; returns the `rollout` config section for `node`. */
export async function prepareRollouts(work: string): Promise<(node: RolloutNode) => Promise<unknown>> {
  const key = join(work, 'release-key');
  await exec(process.execPath, [GITFS, 'key', 'new', key]);
  const pub = (await readFile(`${key}.pub`, 'utf8')).trim();
  console.log(`release key ${key}.pub: ${pub.slice(0, 60)}…`);
  console.log('building two test kernel ISOs (a Debian kernel, a busybox initramfs; one boots, one panics)');
  await exec('bash', [join(ROOT, 'kernel-images', 'build-test-isos.sh'), '--with-qemu', join(work, 'isos'), '6.1.0-demo']);
  return async (node) => {
    const siteRoot = join(work, `${node.name}-www`);
    await mkdir(siteRoot, { recursive: true });
    return {
      trustedKeys: [pub],
      channels: [
        { channel: 'site/prod', apply: join(ROOT, 'sites', 'hooks', 'symlink'), env: { GITFS_SITE_ROOT: siteRoot, GITFS_SITE_URL: `http://127.0.0.1:${WEB_PORT}/`, GITFS_SITE_CHECK: '/index.html' }, healthTimeoutMs: 6000 },
        { channel: 'kernel/stable', apply: join(ROOT, 'kernel-images', 'hooks', 'qemu'), healthTimeoutMs: 180_000, waves: [1] },
      ],
    };
  };
}

export async function demoRollouts<N extends RolloutNode>(nodes: readonly N[], publisher: N, d: Demo<N>): Promise<ChildProcess[]> {
  const servers = nodes.map((n) => n.spawn('python3', ['-m', 'http.server', String(WEB_PORT), '--bind', '127.0.0.1', '--directory', join(d.work, `${n.name}-www`, 'current')]));
  const key = join(d.work, 'release-key');
  const blessedOn = async (n: N, channel: string): Promise<string> => (await readFile(join(n.repo, 'refs', 'gitfs', 'blessed', channel), 'utf8').catch(() => '')).trim();
  const publish = async (channel: string, path: string, version: string): Promise<string> => {
    const out = await d.show(publisher, ['rollout', 'publish', '--channel', channel, path, '--version', version, '--sign', key]);
    return /\[\S+ ([0-9a-f]{12})\]/.exec(out)?.[1] ?? '';
  };
  const halted = async (channel: string): Promise<boolean> => {
    for (const n of nodes) if (!/HALTED/.test((await n.run(['rollout', 'status', channel, '--repo', n.repo])).stdout)) return false;
    return true;
  };

  console.log(d.bold('a website, signed with the release key, rolled out: each node swaps it in atomically and checks it over HTTP'));
  const site = join(d.work, 'release-site');
  await mkdir(site, { recursive: true });
  await writeFile(join(site, 'index.html'), '<h1>release 1.0</h1>\n');
  const v1 = await publish('site/prod', site, '1.0');
  await d.until('every node blesses site 1.0', async () => (await Promise.all(nodes.map((n) => blessedOn(n, 'site/prod')))).every((b) => b.startsWith(v1)), 60_000);
  for (const n of nodes) console.log(`${n.name} serves: ${(await n.exec('curl', ['-s', `http://127.0.0.1:${WEB_PORT}/`])).stdout.trim()}`);
  await d.show(nodes[0] as N, ['rollout', 'status', 'site/prod']);

  console.log(d.bold('a broken website (no index.html): it fails its health check on the canary, which rolls back; the rollout halts'));
  await rm(join(site, 'index.html'));
  await writeFile(join(site, 'oops.html'), 'where is the index?\n');
  await publish('site/prod', site, '2.0');
  await d.until('the rollout of site 2.0 halts everywhere', () => halted('site/prod'), 60_000);
  await d.show(nodes[0] as N, ['rollout', 'status', 'site/prod']);
  for (const n of nodes) console.log(`${n.name} serves: ${(await n.exec('curl', ['-s', `http://127.0.0.1:${WEB_PORT}/`])).stdout.trim()}`);

  console.log(d.bold('a kernel image: each node boots it in qemu and checks its serial console; then one that panics'));
  const good = await publish('kernel/stable', join(d.work, 'isos', 'good.iso'), '6.1.0-demo');
  await d.until('every node boots and blesses the kernel', async () => (await Promise.all(nodes.map((n) => blessedOn(n, 'kernel/stable')))).every((b) => b.startsWith(good)), 300_000);
  await d.show(nodes[0] as N, ['rollout', 'status', 'kernel/stable']);
  await publish('kernel/stable', join(d.work, 'isos', 'bad.iso'), '6.1.0-demo-bad');
  await d.until('the bad kernel halts after its canary', () => halted('kernel/stable'), 240_000);
  await d.show(nodes[0] as N, ['rollout', 'status', 'kernel/stable']);
  return servers;
}

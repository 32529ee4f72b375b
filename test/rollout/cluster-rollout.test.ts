/**
 * Rollouts (issue 6) end to end: four real `gitfs serve` daemons in network namespaces
 * (test/support/netns.ts) replicate the channel branches through the swarm and apply what is
 * published on them with the real hooks: sites/hooks/symlink behind a real web server in each
 * namespace (python3 -m http.server serving the site root's `current`), and
 * kernel-images/hooks/qemu booting real Debian kernels from ISOs built by
 * kernel-images/build-test-isos.sh in qemu-system-x86_64. Releases are signed with a key made
 * by `gitfs key new`; every node trusts it in its config.
 *
 * Checked from the outside: the refs refs/gitfs/{blessed,pending}/<channel> in each repository,
 * what each node's web server serves (curl inside its namespace), `gitfs rollout status --json`,
 * the daemons' JSON log events (hook-start names every hook run), and git itself
 * (`git verify-commit` with an allowed-signers file), and a real FUSE mount of one node (every
 * release browsable in `.history`). Every wait is bounded; namespaces,
 * daemons, web servers and VMs go in the `after` hook, pass or fail.
 */
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeId } from '../../src/cluster/node-id.js';
import { assignWaves } from '../../src/rollout/waves.js';
import { GITFS_BIN } from '../support/cli.js';
import { run } from '../support/run.js';
import { GitfsNode, logsOf, Roster, sleep, waitFor, waitMesh } from '../support/cluster-nodes.js';
import { stopAllMounts, TestMount } from '../support/mount.js';
import { createNetnsCluster, netnsSupported, type NetnsCluster } from '../support/netns.js';
import { suiteDirs } from '../support/tmp.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SITE_HOOK = join(ROOT, 'sites', 'hooks', 'symlink');
const QEMU_HOOK = join(ROOT, 'kernel-images', 'hooks', 'qemu');
const BUILD_ISOS = join(ROOT, 'kernel-images', 'build-test-isos.sh');
const DEB_CACHE = process.env['GITFS_DEB_CACHE'] ?? '/var/cache/gitfs-test-debs';
const INTERVAL_MS = 2000;
const WEB_PORT = 8080;
const SITE = 'site/prod';
const KERNEL = 'kernel/stable';
const FRAGILE = 'fragile/app';

interface StatusAnswer {
  readonly channels: { channel: string; phase: string; report: { state: string; version: string; blessedVersion: string; release: string | null; paused: boolean; recalled: string | null; recallSigned: boolean }; plan: { halted: string | null; done: boolean } | null }[];
}

describe('rollout/cluster: signed releases applied, checked and rolled back across real daemons in network namespaces', function () {
  this.timeout(600_000);
  let net: NetnsCluster | undefined;
  const servers: ChildProcess[] = [];
  let members: GitfsNode[] = [];
  const dirs = suiteDirs(async () => {
    try {
      await stopAllMounts();
    } finally {
      for (const n of members) await n.stop('SIGKILL').catch(() => undefined);
      for (const s of servers) s.kill('SIGKILL');
      // The qemu hook's VMs (their command lines name pid files under the suite's directory): any a failed test left.
      if (base !== '') await run('pkill', ['-9', '-f', base]).catch(() => undefined);
      await net?.cleanup();
    }
  });
  let base = '';
  let key = '';
  let untrusted = '';
  const { names, nameOf } = new Roster(() => members);
  const diag = (): string => logsOf(members, 25);
  /** Each node's rollout steps on `channel` and what it saw of node `peer` come and go, for a failure message. */
  const trail = (channel: string, peer: string): string =>
    members
      .map((n) => {
        const seen = (n.daemon?.events ?? []).filter((e) => (e.event === 'rollout' && e['channel'] === channel) || (e.event.startsWith('peer-') && e['nodeId'] === peer));
        return `${n.name}: ${seen.map((e) => `${new Date(e.t).toISOString().slice(14, 23)} ${e.event === 'rollout' ? `${String(e['step'])} -> ${String(e['to'])}` : e.event}`).join(', ')}`;
      })
      .join('\n');

  const gitfs = async (args: readonly string[]): Promise<string> => {
    const r = await run(process.execPath, [...NODE_FLAGS, GITFS_BIN, ...args], process.env, 120_000);
    assert.equal(r.code, 0, `gitfs ${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const publish = async (channel: string, path: string, version: string, signWith = key): Promise<string> =>
    (JSON.parse(await (members[0] as GitfsNode).ok(['rollout', 'publish', '--channel', channel, path, '--version', version, '--sign', signWith, '--json'], { timeoutMs: 120_000 })) as { commit: string }).commit;
  const refOf = (n: GitfsNode, kind: 'blessed' | 'pending', channel: string): string | undefined => {
    const p = join(n.repo, 'refs', 'gitfs', kind, channel);
    return existsSync(p) ? readFileSync(p, 'utf8').trim() : undefined;
  };
  const served = async (n: GitfsNode, path = '/'): Promise<string> => (await n.net.exec('curl', ['-s', '-m', '5', `http://127.0.0.1:${WEB_PORT}${path}`])).stdout;
  const statusOf = async (n: GitfsNode, channel: string): Promise<StatusAnswer['channels'][number] | undefined> =>
    (JSON.parse(await n.ok(['rollout', 'status', '--json'])) as StatusAnswer).channels.find((c) => c.channel === channel);
  /** Nodes whose daemon ran `action` for `version` of `channel` (hook-start events, current daemons and earlier ones). */
  const ran = (action: string, channel: string, version: string): string[] =>
    members.filter((n) => n.daemons.some((d) => d.find('hook-start', { action, channel, version }).length > 0)).map((n) => n.name);
  const canaryOf = (commit: string): string => {
    const id = assignWaves(commit, members.map((n) => n.nodeId as NodeId), 1, [1])[0]?.[0];
    return members.find((n) => n.nodeId === id)?.name ?? `unknown ${id}`;
  };

  function site(label: string, files: Record<string, string>): string {
    const dir = join(base, `site-${label}`);
    mkdirSync(dir, { recursive: true });
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return dir;
  }

  async function allBlessed(channel: string, commit: string, timeoutMs: number, what: string): Promise<void> {
    await waitFor(what, timeoutMs, () => (members.every((n) => refOf(n, 'blessed', channel) === commit) ? true : undefined), {
      everyMs: 200,
      detail: () => members.map((n) => `${n.name}: blessed ${refOf(n, 'blessed', channel)?.slice(0, 12)} pending ${refOf(n, 'pending', channel)?.slice(0, 12)}`).join('\n'),
      diag,
    });
  }

  /** Every node's `gitfs rollout status` says the channel's rollout is halted. */
  async function allHalted(channel: string, timeoutMs: number, what: string): Promise<void> {
    await waitFor(
      what,
      timeoutMs,
      async () => {
        for (const n of members) if ((await statusOf(n, channel))?.plan?.halted == null) return undefined;
        return true;
      },
      { everyMs: 300, diag },
    );
  }

  before(async function () {
    this.timeout(1_200_000);
    assert.equal(netnsSupported(), true, 'these tests need root and a working `ip netns`');
    base = dirs.make('gitfs-rollout-');
    // Test kernels: 1.0 (good) and 1.0-bad (panics), from Debian's kernel and busybox.
    const isos = join(base, 'isos');
    const built = await run('bash', [BUILD_ISOS, '--with-qemu', isos, '1.0'], { ...process.env, GITFS_DEB_CACHE: DEB_CACHE }, 1_150_000);
    assert.equal(built.code, 0, `build-test-isos.sh: ${built.stdout}${built.stderr}`);
    net = await createNetnsCluster(4, { label: 'rollout' });
    members = net.nodes.map((x, i) => GitfsNode.make(x, base, `n${i}`, { GITFS_ANNOUNCE_INTERVAL_MS: String(INTERVAL_MS) }));
    key = join(base, 'release-key');
    untrusted = join(base, 'stranger-key');
    await gitfs(['key', 'new', key]);
    await gitfs(['key', 'new', untrusted]);
    const [ca, ...joiners] = members as [GitfsNode, ...GitfsNode[]];
    await Promise.all(members.map((n) => n.ok(['init'])));
    await ca.ok(['cluster', 'init']);
    for (const n of members) {
      const siteRoot = join(base, `${n.name}-www`);
      const slowRoot = join(base, `${n.name}-slow`);
      mkdirSync(siteRoot, { recursive: true });
      mkdirSync(slowRoot, { recursive: true });
      const config = {
        policies: [{ branches: 'site/*' }, { branches: 'kernel/*' }, { branches: 'slow/*' }, { branches: 'fragile/*' }],
        rollout: {
          trustedKeys: [readFileSync(`${key}.pub`, 'utf8').trim()],
          channels: [
            { channel: SITE, apply: SITE_HOOK, env: { GITFS_SITE_ROOT: siteRoot, GITFS_SITE_URL: `http://127.0.0.1:${WEB_PORT}/`, GITFS_SITE_CHECK: '/index.html' }, healthTimeoutMs: 6000 },
            { channel: 'slow/app', apply: join(base, 'slow-hook'), env: { GITFS_SITE_ROOT: slowRoot, GITFS_SITE_URL: `http://127.0.0.1:${WEB_PORT + 1}/` }, healthTimeoutMs: 15_000 },
            { channel: KERNEL, apply: QEMU_HOOK, healthTimeoutMs: 180_000, waves: [1] },
            { channel: FRAGILE, apply: join(base, 'fragile-hook'), healthTimeoutMs: 5000 },
          ],
        },
      };
      mkdirSync(join(n.repo, 'gitfs'), { recursive: true });
      writeFileSync(join(n.repo, 'gitfs', 'node.json'), `${JSON.stringify(config, null, 2)}\n`);
      // Web servers for each site root's `current` (the symlink is resolved at every request).
      servers.push(n.net.spawn('python3', ['-m', 'http.server', String(WEB_PORT), '--bind', '127.0.0.1', '--directory', join(siteRoot, 'current')], { stdio: 'ignore' }));
      servers.push(n.net.spawn('python3', ['-m', 'http.server', String(WEB_PORT + 1), '--bind', '127.0.0.1', '--directory', join(slowRoot, 'current')], { stdio: 'ignore' }));
    }
    // The slow channel's hook: the site hook, with an apply that takes 4 s (time to kill the daemon in it).
    // Its apply records its pid (kept by the exec), so a test can tell whether it outlived its daemon.
    writeFileSync(join(base, 'slow-hook'), `#!/bin/bash\nif [ "$1" = apply ]; then echo $$ >"$GITFS_STATE/apply.pid"; sleep 4; fi\nexec ${SITE_HOOK} "$@"\n`);
    chmodSync(join(base, 'slow-hook'), 0o755);
    // The fragile channel's hook: every release fails its health check, and the rollback fails while a flag file exists.
    writeFileSync(join(base, 'fragile-hook'), `#!/bin/bash\ncase "$1" in\n  health) exit 1 ;;\n  rollback) [ -e ${join(base, 'rollback-breaks')} ] && { echo 'the rollback breaks' >&2; exit 1; } ;;\nesac\nexit 0\n`);
    chmodSync(join(base, 'fragile-hook'), 0o755);
    await ca.start();
    const tokens: string[] = [];
    for (const _ of joiners) tokens.push((await ca.ok(['cluster', 'token', '--ttl', '10m'])).trim());
    await Promise.all(joiners.map((n, i) => n.ok(['cluster', 'join', tokens[i] ?? ''])));
    for (const n of members) {
      n.nodeId = (await n.show()).nodeId;
      names.set(n.nodeId, n.name);
    }
    await Promise.all(joiners.map((n) => n.start()));
    await waitMesh(members, 4 * INTERVAL_MS, 'precondition: every node lists the others', nameOf, diag);
  });

  it('a signed site release reaches every node, which swaps it in, checks it over HTTP and blesses it; git verifies the signature', async function () {
    const v1 = await publish(SITE, site('v1', { 'index.html': '<h1>release 1.0</h1>\n' }), '1.0');
    await allBlessed(SITE, v1, 30_000, 'every node to bless site 1.0');
    for (const n of members) {
      assert.equal(await served(n), '<h1>release 1.0</h1>\n', `${n.name} serves`);
      assert.equal(refOf(n, 'pending', SITE), undefined, `${n.name}: pending ref left`);
      assert.equal((await statusOf(n, SITE))?.report.state, 'blessed');
    }
    const n0 = members[0] as GitfsNode;
    const signers = join(base, 'allowed-signers');
    writeFileSync(signers, `release@gitfs ${readFileSync(`${key}.pub`, 'utf8').trim()}\n`);
    const v = await run('git', ['--git-dir', n0.repo, '-c', 'gpg.format=ssh', '-c', `gpg.ssh.allowedSignersFile=${signers}`, 'verify-commit', v1]);
    assert.equal(v.code, 0, `git verify-commit: ${v.stderr}`);
    assert.match(v.stderr, /Good "git" signature/);
  });

  it('a bad site release fails its health check on the canary, which rolls back; the rollout halts and no other node applies it', async function () {
    const before = refOf(members[0] as GitfsNode, 'blessed', SITE);
    const bad = await publish(SITE, site('bad', { 'broken.html': 'no index\n' }), '2.0-bad');
    const canary = canaryOf(bad);
    await allHalted(SITE, 40_000, 'every node to see the rollout of 2.0-bad halted');
    assert.deepEqual(ran('apply', SITE, '2.0-bad'), [canary], 'nodes that applied the bad release');
    assert.deepEqual(ran('rollback', SITE, '1.0'), [canary], 'nodes that rolled back');
    for (const n of members) {
      assert.equal(refOf(n, 'blessed', SITE), before, `${n.name}: blessed`);
      assert.equal(await served(n), '<h1>release 1.0</h1>\n', `${n.name} serves`);
    }
  });

  it('unsigned, wrongly signed and tampered (a file swapped under a valid signature) heads are refused by every node as no release, halting nothing; one replayed (signed for another channel) is refused too; none is applied', async function () {
    const n0 = members[0] as GitfsNode;
    const before = refOf(n0, 'blessed', SITE);
    // Unsigned: an ordinary commit on the channel.
    const manifestOf = async (commit: string): Promise<string> => (await run('git', ['--git-dir', n0.repo, 'show', `${commit}:gitfs-release.json`])).stdout;
    const unsignedDir = site('unsigned', { 'index.html': '<h1>unsigned</h1>\n' });
    const good = await publish(SITE, site('v3', { 'index.html': '<h1>release 3.0</h1>\n' }), '3.0');
    await allBlessed(SITE, good, 30_000, 'every node to bless 3.0 (the base of this test)');
    mkdirSync(join(unsignedDir, 'site'));
    writeFileSync(join(unsignedDir, 'site', 'index.html'), '<h1>unsigned</h1>\n');
    writeFileSync(join(unsignedDir, 'gitfs-release.json'), (await manifestOf(good)).replace('"3.0"', '"4.0-unsigned"'));
    // Not signed by a trusted key: refused before anything is verified or counted (no failure, no halt).
    const refused = (n: GitfsNode, commit: string): string[] => (n.daemon?.find('release-refused', { commit }) ?? []).map((e) => String(e['why']));
    const failedOrHalted = (n: GitfsNode, commit: string): number =>
      (n.daemon?.find('rollout', { step: 'verify-failed', commit }).length ?? 0) + (n.daemon?.find('rollout', { step: 'halted', commit }).length ?? 0);
    // One at a time: a node considers the channel's head, so a head superseded before it arrives is never seen.
    const refusedEverywhere = async (commit: string, why: RegExp): Promise<void> => {
      await waitFor(`every node to refuse ${commit.slice(0, 12)}`, 30_000, () => (members.every((n) => refused(n, commit).length > 0) ? true : undefined), { everyMs: 200, diag });
      for (const n of members) {
        for (const r of refused(n, commit)) assert.match(r, why, `why ${n.name} refused ${commit.slice(0, 12)}`);
        assert.equal(failedOrHalted(n, commit), 0, `${n.name} counted ${commit.slice(0, 12)} as a failed release`);
      }
    };
    const unsigned = (JSON.parse(await n0.ok(['commit', '--branch', SITE, '--from', unsignedDir, '-m', 'unsigned', '--json'])) as { commit: string }).commit;
    await refusedEverywhere(unsigned, /not signed/);
    const wrongKey = await publish(SITE, site('wrong', { 'index.html': '<h1>wrong key</h1>\n' }), '5.0-wrong-key', untrusted);
    await refusedEverywhere(wrongKey, /trust/i);
    // Tampered: 3.0's commit, signature and all, over a tree whose index.html was swapped.
    const git = (args: string[], input?: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const c = execFile('git', ['--git-dir', n0.repo, ...args], (e, out) => (e === null ? resolve(out.trim()) : reject(e)));
        if (input !== undefined) c.stdin?.end(input);
      });
    const swapped = await git(['hash-object', '-w', '--stdin'], '<h1>tampered</h1>\n');
    const siteTree = await git(['mktree'], `100644 blob ${swapped}\tindex.html\n`);
    // Under a version of its own: one that names a release already is refused before any signature is looked at.
    const forgedManifest = await git(['hash-object', '-w', '--stdin'], `${(await manifestOf(good)).replace('"3.0"', '"3.1-tampered"').trim()}\n`);
    const rootTree = await git(['mktree'], `100644 blob ${forgedManifest}\tgitfs-release.json\n040000 tree ${siteTree}\tsite\n`);
    // A newer committer time, as a forger would set (peers fetch the newest head).
    const raw = (await git(['cat-file', 'commit', good]))
      .replace(/^tree [0-9a-f]{40}$/m, `tree ${rootTree}`)
      .replace(/^parent [0-9a-f]{40}$/m, `parent ${wrongKey}`)
      .replace(/^(committer .*> )\d+ /m, `$1${Math.floor(Date.now() / 1000) + 5} `);
    const tampered = await git(['hash-object', '-t', 'commit', '-w', '--stdin'], `${raw}\n`);
    await git(['repack', '-q']);
    await git(['update-ref', `refs/heads/${SITE}`, tampered, wrongKey]);
    await refusedEverywhere(tampered, /signature/i);
    // Replayed: a release the trusted key signed for another channel, put on this one. Published
    // on top of this channel's head (as a channel promoted from it would be), and a second after
    // the forged commit's time, so that peers take it as the newer head and fast-forward to it.
    const forgedAt = Number(/^committer .*> (\d+) /m.exec(raw)?.[1]);
    for (let i = 0; i < 40 && Date.now() / 1000 <= forgedAt + 1; i++) await sleep(200);
    await git(['update-ref', 'refs/heads/site/staging', tampered]);
    const elsewhere = await publish('site/staging', site('staging', { 'index.html': '<h1>staging</h1>\n' }), '6.0-other-channel');
    await git(['update-ref', `refs/heads/${SITE}`, elsewhere, tampered]);
    await waitFor(`every node to refuse ${elsewhere.slice(0, 12)} on ${SITE}`, 30_000, () => (members.every((n) => (n.daemon?.find('release-wrong-channel', { channel: SITE, commit: elsewhere }).length ?? 0) > 0) ? true : undefined), { everyMs: 200, diag });
    for (const n of members) {
      assert.equal(refOf(n, 'blessed', SITE), good, `${n.name}: blessed`);
      assert.equal(await served(n), '<h1>release 3.0</h1>\n', `${n.name} serves`);
    }
    for (const v of ['4.0-unsigned', '5.0-wrong-key', '6.0-other-channel']) assert.deepEqual(ran('apply', SITE, v), [], `nodes that applied ${v}`);
    assert.notEqual(before, good);
  });

  it('`gitfs rollout rollback --sign KEY` on one node returns every node to the previous release; unsigned, or signed by a key the channel does not trust, it is refused and recalls nothing', async function () {
    const n2 = members[2] as GitfsNode;
    const unsigned = await n2.run(['rollout', 'rollback', SITE]);
    assert.equal(unsigned.code, 2, `${unsigned.stdout}${unsigned.stderr}`);
    assert.match(unsigned.stderr, /--sign KEY.*\[GITFS_BAD_ARGUMENT\]/);
    const stranger = await n2.run(['rollout', 'rollback', SITE, '--sign', untrusted]);
    assert.notEqual(stranger.code, 0);
    assert.match(stranger.stderr, /\[GITFS_UNTRUSTED_KEY\]/);
    for (const n of members) assert.deepEqual([(await statusOf(n, SITE))?.report.recalled, (await statusOf(n, SITE))?.report.blessedVersion], [null, '3.0'], `${n.name}: recalled, blessed`);
    const out = await n2.ok(['rollout', 'rollback', SITE, '--sign', key]);
    assert.match(out, /rolling back from 3\.0 to 1\.0/);
    await waitFor(
      'every node to serve 1.0 again with 1.0 blessed',
      30_000,
      async () => {
        for (const n of members) if ((await served(n)) !== '<h1>release 1.0</h1>\n' || (await statusOf(n, SITE))?.report.blessedVersion !== '1.0') return undefined;
        return true;
      },
      { everyMs: 300, diag },
    );
    // Each passes the recall on, with the operator's signature (a node acts only on one it verified).
    const recalled = (await statusOf(n2, SITE))?.report.recalled;
    assert.ok(recalled !== null && recalled !== undefined);
    for (const n of members) assert.deepEqual([(await statusOf(n, SITE))?.report.recalled, (await statusOf(n, SITE))?.report.recallSigned], [recalled, true], `${n.name} passes the recall on`);
  });

  it("every release stays browsable in the mount's history (.history/<channel>/…: manifest and files as published)", async function () {
    const n1 = members[1] as GitfsNode;
    const mnt = join(base, 'mnt-n1');
    const m = await TestMount.start(n1.repo, mnt);
    try {
      const history = join(mnt, '.history', 'site', 'prod');
      // Every commit of the channel is there, refused ones too (the tampered one carries 3.0's manifest).
      const pages = new Map<string, string[]>();
      for (const entry of readdirSync(history)) {
        const manifest = join(history, entry, 'gitfs-release.json');
        const page = join(history, entry, 'site', 'index.html');
        if (!existsSync(manifest)) continue;
        const version = (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
        pages.set(version, [...(pages.get(version) ?? []), existsSync(page) ? readFileSync(page, 'utf8') : '(no index.html)']);
      }
      assert.ok(pages.get('1.0')?.includes('<h1>release 1.0</h1>\n'), JSON.stringify([...pages]));
      assert.ok(pages.get('3.0')?.includes('<h1>release 3.0</h1>\n'), JSON.stringify([...pages]));
      assert.deepEqual(pages.get('2.0-bad'), ['(no index.html)'], JSON.stringify([...pages]));
    } finally {
      await m.stop();
    }
  });

  it('a node SIGKILLed while its apply hook runs comes back consistent: it stops the hook left running, rolls the release back and the cluster halts it', async function () {
    const slow = 'slow/app';
    const rel = await publish(slow, site('slow', { 'index.html': '<h1>slow 1</h1>\n' }), '1.0');
    const canary = members.find((n) => n.name === canaryOf(rel)) as GitfsNode;
    const first = canary.daemon;
    // Killed once the apply hook has surely started: it has written its pid (then sleeps 4 s). Only
    // this release's apply writes the file (the channel's first; the publisher may be the canary
    // and start applying before publish returns).
    const applyPid = join(canary.repo, 'gitfs', 'rollout', slow, 'hook', 'apply.pid');
    await waitFor(`${canary.name} to start applying`, 30_000, () => (first?.find('hook-start', { channel: slow, action: 'apply' }).length ?? 0) > 0 && existsSync(applyPid) && readFileSync(applyPid, 'utf8').endsWith('\n') ? true : undefined, { everyMs: 20, diag });
    await canary.stop('SIGKILL');
    assert.equal(refOf(canary, 'pending', slow), rel, 'the pending ref names the release being applied');
    const again = await canary.start();
    await waitFor(`${canary.name} to roll back after the restart`, 30_000, () => again.find('rollout', { step: 'rollback-done', channel: slow }).at(0), { everyMs: 100, diag });
    const recovery = again.find('rollout', { step: 'crash-recovery', channel: slow })[0];
    assert.ok(recovery !== undefined && /restarted while applying/.test(String(recovery['note'])), JSON.stringify(recovery));
    // The apply the killed daemon started (still sleeping) was stopped before the rollback ran.
    const leftover = Number(readFileSync(applyPid, 'utf8'));
    assert.ok(!existsSync(`/proc/${leftover}`) || /\) Z /.test(readFileSync(`/proc/${leftover}/stat`, 'latin1')), `the killed daemon's apply hook (pid ${leftover}) still runs\n${again.tail()}`);
    const stopped = again.find('hook-leftover-stopped', { channel: slow }).at(0);
    const rollback = again.find('hook-start', { channel: slow, action: 'rollback' }).at(0);
    assert.ok(stopped !== undefined && rollback !== undefined && Number(stopped['t']) <= Number(rollback['t']), `leftover stopped ${JSON.stringify(stopped)}, rollback ${JSON.stringify(rollback)}`);
    await waitFor(`${canary.name} to drop the pending ref`, 10_000, () => (refOf(canary, 'pending', slow) === undefined ? true : undefined), { everyMs: 100, diag });
    assert.equal(refOf(canary, 'blessed', slow), undefined);
    await sleep(2 * INTERVAL_MS);
    assert.deepEqual(ran('apply', slow, '1.0'), [canary.name], `nodes that applied it; what each did and saw of ${canary.name}:\n${trail(slow, canary.nodeId)}`);
  });

  it('a node whose rollback hook keeps failing stops (stuck) and the cluster halts; `gitfs rollout rollback` there runs the rollback again once it is fixed', async function () {
    writeFileSync(join(base, 'rollback-breaks'), '');
    const rel = await publish(FRAGILE, site('fragile', { 'index.html': '<h1>fragile</h1>\n' }), '1.0');
    const canary = members.find((n) => n.name === canaryOf(rel)) as GitfsNode;
    await waitFor(`${canary.name} to be stuck`, 40_000, async () => ((await statusOf(canary, FRAGILE))?.phase === 'stuck' ? true : undefined), { everyMs: 300, diag });
    await allHalted(FRAGILE, 20_000, 'every node to see the fragile rollout halted');
    const rollbacks = (): number => canary.daemon?.find('hook-start', { channel: FRAGILE, action: 'rollback' }).length ?? 0;
    assert.equal(rollbacks(), 3, 'the rollback hook ran 3 times before the node stopped');
    assert.deepEqual(ran('apply', FRAGILE, '1.0'), [canary.name], 'nodes that applied it');
    assert.equal(refOf(canary, 'pending', FRAGILE), undefined, 'the release is given up');
    rmSync(join(base, 'rollback-breaks'));
    assert.match(await canary.ok(['rollout', 'rollback', FRAGILE]), /nothing recalled/);
    await waitFor(`${canary.name} to leave stuck`, 20_000, async () => ((await statusOf(canary, FRAGILE))?.phase === 'idle' ? true : undefined), { everyMs: 300, diag });
    assert.equal(rollbacks(), 4);
    assert.deepEqual(ran('apply', FRAGILE, '1.0'), [canary.name], 'still only the canary applied it');
  });

  it('`gitfs rollout pause` on one node holds a new release everywhere, survives a kill -9 of that node, and `resume` lets it roll out', async function () {
    const n1 = members[1] as GitfsNode;
    assert.match(await n1.ok(['rollout', 'pause', SITE]), /paused/);
    await n1.stop('SIGKILL');
    await n1.start();
    assert.equal((await statusOf(n1, SITE))?.report.paused, true, 'still paused after the restart');
    const v4 = await publish(SITE, site('v4', { 'index.html': '<h1>release 4.0</h1>\n' }), '4.0');
    await waitFor(
      'every node to hold site 4.0 staged, none applying it',
      60_000,
      async () => {
        for (const n of members) if ((await statusOf(n, SITE))?.phase !== 'staged') return undefined;
        return true;
      },
      { everyMs: 300, diag },
    );
    await sleep(3 * INTERVAL_MS);
    assert.deepEqual(ran('apply', SITE, '4.0'), [], 'nodes that applied 4.0 while paused');
    // Commits put on top of the staged release do not cancel it: an unsigned one, then one
    // (unsigned too) whose manifest reuses 4.0's version. Each node refuses both before any verification.
    const n0 = members[0] as GitfsNode;
    const manifest4 = (await run('git', ['--git-dir', n0.repo, 'show', `${v4}:gitfs-release.json`])).stdout;
    const onTop = async (name: string, manifest: string): Promise<string> => {
      const dir = site(name, {});
      mkdirSync(join(dir, 'site'));
      writeFileSync(join(dir, 'site', 'index.html'), `<h1>${name}</h1>\n`);
      writeFileSync(join(dir, 'gitfs-release.json'), manifest);
      const commit = (JSON.parse(await n0.ok(['commit', '--branch', SITE, '--from', dir, '-m', name, '--json'])) as { commit: string }).commit;
      await waitFor(`every node to refuse ${name}`, 30_000, () => (members.every((n) => (n.daemon?.find('release-refused', { commit }).length ?? 0) > 0) ? true : undefined), { everyMs: 200, diag });
      return commit;
    };
    const unsigned = await onTop('unsigned-over-staged', manifest4.replace('"4.0"', '"4.1-unsigned"'));
    for (const n of members) assert.match(String(n.daemon?.find('release-refused', { commit: unsigned })[0]?.['why']), /not a release: .*not signed/);
    const reused = await onTop('version-reused', manifest4);
    for (const n of members) assert.match(String(n.daemon?.find('release-refused', { commit: reused })[0]?.['why']), /version 4\.0 names [0-9a-f]{40} already/);
    for (const n of members) {
      const st = await statusOf(n, SITE);
      assert.deepEqual([st?.phase, st?.report.release], ['staged', v4], `${n.name} still holds 4.0 staged`);
    }
    assert.match(await n1.ok(['rollout', 'resume', SITE]), /resumed/);
    await allBlessed(SITE, v4, 60_000, 'every node to bless site 4.0 after the resume');
    assert.equal((await statusOf(n1, SITE))?.report.paused, false);
  });

  it('a kernel image boots on every node (qemu, health by the serial console marker); a bad one panics on the canary, is rolled back there, and no other node ever applies it', async function () {
    const isos = join(base, 'isos');
    const good = await publish(KERNEL, join(isos, 'good.iso'), '1.0');
    await allBlessed(KERNEL, good, 300_000, 'every node to boot and bless kernel 1.0');
    for (const n of members) {
      assert.equal(readFileSync(join(n.repo, 'gitfs', 'rollout', 'kernel', 'stable', 'hook', 'current'), 'utf8').trim(), '1.0', `${n.name}: the VM that runs`);
      assert.match(readFileSync(join(n.repo, 'gitfs', 'rollout', 'kernel', 'stable', 'hook', 'serial-1.0.log'), 'utf8'), /GITFS-BOOT-OK 1\.0/);
    }
    const bad = await publish(KERNEL, join(isos, 'bad.iso'), '1.0-bad');
    const canary = canaryOf(bad);
    await allHalted(KERNEL, 240_000, 'every node to see the bad kernel halted');
    assert.deepEqual(ran('apply', KERNEL, '1.0-bad'), [canary], 'nodes that booted the bad kernel');
    const c = members.find((n) => n.name === canary) as GitfsNode;
    assert.match(readFileSync(join(c.repo, 'gitfs', 'rollout', 'kernel', 'stable', 'hook', 'serial-1.0-bad.log'), 'utf8'), /Kernel panic/);
    for (const n of members) assert.equal(refOf(n, 'blessed', KERNEL), good, `${n.name}: blessed kernel`);
  });
});

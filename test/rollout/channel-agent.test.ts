/**
 * One channel agent on its own (no cluster: it is its own canary), with a real repository and a
 * real hook script: a hook's outcome whose state could not be stored is not lost, nor a release
 * ref that could not be moved; the refs follow the stored state at start; a recall is taken only
 * signed by a trusted key; no recall while a release is applied.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BranchName } from '../../src/branches/ref-name.js';
import type { NodeId } from '../../src/cluster/node-id.js';
import type { Oid } from '../../src/objects/oid.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { Repository } from '../../src/repo/repository.js';
import { initialAgentState } from '../../src/rollout/agent-state.js';
import { decodeAgentState, encodeAgentState } from '../../src/rollout/agent-state-codec.js';
import { ChannelAgent } from '../../src/rollout/channel-agent.js';
import { publishRelease } from '../../src/rollout/publish.js';
import { prune } from '../../src/repo/prune.js';
import { POLICY_DEFAULTS } from '../../src/swarm/policy.js';
import { signRecall } from '../../src/rollout/recall.js';
import type { RolloutReport } from '../../src/multicast/announcement.js';
import type { Peer } from '../../src/multicast/peer-table.js';
import { generateReleaseKey, type ReleaseKeyPair } from '../../src/rollout/release-key.js';
import { readGitfsRef, gitfsRefPath, setGitfsRef } from '../../src/branches/gitfs-refs.js';
import { CHANNEL_DEFAULTS } from '../../src/rollout/rollout-config.js';
import { captureLogger } from '../multicast/fixture.js';
import { systemClock } from '../../src/util/clock.js';
import { tempDirs } from '../support/tmp.js';

const CHANNEL = 'site/prod' as BranchName;
const CLUSTER = '0123456789abcdef0123456789abcdef';

/** Pokes `agent` every 25 ms until `done` holds, at most `tries` times. */
/** `n` commits made in `repo` with git (empty trees, each its own message). */
function commitsIn(repo: Repository, n: number): Oid[] {
  const git = (args: string[]): string => execFileSync('git', ['--git-dir', repo.gitDir, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], { encoding: 'utf8', input: '' }).trim();
  const tree = git(['mktree']);
  return Array.from({ length: n }, (_, i) => git(['commit-tree', tree, '-m', `commit ${i}`]) as Oid);
}

async function pokeUntil(agent: ChannelAgent, done: () => boolean, tries = 200): Promise<void> {
  for (let i = 0; i < tries && !done(); i++) {
    agent.poke();
    await sleep(25);
  }
}

describe('rollout/channel-agent on its own', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  /**
   * An agent whose only release (1.0) is staged, signed by `signer` (default: a key it trusts),
   * with a hook that takes a second and succeeds; `phase` is where it is once started.
   */
  async function stagedAgent(
    untrusted = false,
    phase: 'applying' | 'idle' = 'applying',
  ): Promise<{ agent: ChannelAgent; repo: Repository; log: ReturnType<typeof captureLogger>; dir: string; commit: Oid }> {
    const base = tmp.make();
    const repo = await Repository.init(join(base, 'repo'));
    const dir = join(base, 'agent');
    mkdirSync(dir);
    const hook = join(base, 'hook.sh');
    writeFileSync(hook, '#!/bin/sh\nsleep 1\nexit 0\n');
    chmodSync(hook, 0o755);
    const site = join(base, 'site');
    mkdirSync(site);
    writeFileSync(join(site, 'index.html'), 'v1\n');
    const key = generateReleaseKey('test');
    const { commit } = await publishRelease(repo, { channel: CHANNEL, path: site, version: '1.0', key });
    // A release verified and staged before the agent started: it is its own canary, so it applies it.
    writeFileSync(join(dir, 'state.json'), encodeAgentState({ ...initialAgentState(CHANNEL), phase: 'staged', pending: { commit, version: '1.0', triesLeft: 3 } }));
    const log = captureLogger();
    const trusted = untrusted ? [generateReleaseKey('another').publicKey] : [key.publicKey];
    const agent = new ChannelAgent({ repo, log, now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: CLUSTER, trusted, peers: () => [], changed: () => undefined, dir }, { ...CHANNEL_DEFAULTS, channel: CHANNEL, apply: hook, healthTimeoutMs: 30_000 }, CHANNEL);
    await agent.start();
    agent.poke();
    for (let i = 0; i < 200 && agent.status().phase !== phase; i++) await sleep(50);
    assert.equal(agent.status().phase, phase);
    return { agent, repo, log, dir, commit };
  }

  it('hands a hook outcome whose state could not be stored (a full disk) to the machine again, and goes on once it can be', async () => {
    const { agent, repo, log, dir, commit } = await stagedAgent();
    try {
      // While the apply hook runs, the state file cannot be replaced (a non-empty directory in its place).
      const state = join(dir, 'state.json');
      rmSync(state);
      mkdirSync(join(state, 'x'), { recursive: true });
      for (let i = 0; i < 100 && !log.lines.some((e) => e.event === 'rollout-event-not-stored'); i++) await sleep(50);
      assert.ok(log.lines.some((e) => e.event === 'rollout-event-not-stored' && e.fields['step'] === 'applied'), 'the outcome met the full disk');
      rmSync(state, { recursive: true });
      for (let i = 0; i < 300 && agent.status().phase !== 'idle'; i++) await sleep(50);
      assert.equal(agent.status().phase, 'idle', 'applied, checked and blessed once the state could be stored');
      assert.equal(agent.status().report.blessed, commit);
    } finally {
      await agent.stop();
      await repo.close();
    }
  });

  it('a stop while the apply hook runs lets it finish and stores its outcome (checking, no failure counted), and starts nothing more', async () => {
    const { agent, repo, log, dir } = await stagedAgent();
    try {
      await agent.stop();
      assert.ok(log.lines.some((e) => e.event === 'stop-waits-for-hook' && e.fields['action'] === 'apply'));
      const stored = decodeAgentState(readFileSync(join(dir, 'state.json')));
      assert.deepEqual([stored.phase, stored.failedVersions], ['checking', {}]);
      assert.ok(!log.lines.some((e) => e.event === 'hook-start' && e.fields['action'] === 'health'), 'no health check started after the stop');
    } finally {
      await repo.close();
    }
  });

  it('verifies a release staged before a restart again, and does not apply it once its key is no longer trusted', async () => {
    const { agent, repo, log, commit } = await stagedAgent(true, 'idle');
    try {
      const steps = log.lines.filter((e) => e.event === 'rollout').map((e) => [e.fields['step'], e.fields['to'], e.fields['note']]);
      assert.deepEqual(steps[0], ['crash-recovery', 'verifying', 'verify again']);
      assert.equal(steps[1]?.[0], 'verify-failed');
      assert.match(String(steps[1]?.[2]), /trusted/);
      assert.ok(!steps.some(([, to]) => to === 'applying'), 'the apply hook never ran');
      assert.deepEqual([agent.status().report.blessed, agent.status().report.release, agent.status().report.state], [null, commit, 'failed']);
    } finally {
      await agent.stop();
      await repo.close();
    }
  });

  it('tries a release ref it could not move (a full disk) again until it can, and the release is blessed (the outcome was redelivered and ignored: the ref stayed behind)', async () => {
    const { agent, repo, log, commit } = await stagedAgent();
    try {
      // A ref below it in the way (the same failure as a full disk's, and one the agent cannot clear itself).
      const ref = gitfsRefPath(repo.gitDir, 'blessed', CHANNEL);
      mkdirSync(ref, { recursive: true });
      writeFileSync(join(ref, 'x'), '');
      for (let i = 0; i < 100 && !log.lines.some((e) => e.event === 'rollout-action-failed'); i++) await sleep(50);
      assert.ok(log.lines.some((e) => e.event === 'rollout-action-failed' && e.fields['action'] === 'set-ref'), 'blessing met the full disk');
      rmSync(ref, { recursive: true });
      for (let i = 0; i < 100 && (await readGitfsRef(repo.gitDir, 'blessed', CHANNEL)) !== commit; i++) await sleep(50);
      assert.equal(await readGitfsRef(repo.gitDir, 'blessed', CHANNEL), commit);
      assert.equal(agent.status().phase, 'idle');
    } finally {
      await agent.stop();
      await repo.close();
    }
  });

  it('a stop while a rollback hook runs, whose release ref then cannot be moved (a full disk), ends: the ref is tried once, the actions after it wait, and the next start carries them out', async () => {
    const { repo, dir, key, v1, v2 } = await twoBlessed();
    // An operator's rollback (2.0 to 1.0) under way when the daemon was killed; its hook takes a second.
    writeFileSync(join(dir, 'state.json'), encodeAgentState({ ...initialAgentState(CHANNEL), phase: 'rolling-back', blessed: { commit: v2, version: '2.0' }, previous: { commit: v1, version: '1.0' }, rollback: { from: { commit: v2, version: '2.0' }, to: { commit: v1, version: '1.0' }, reason: 'requested', failedAttempts: 0 }, givenUp: [v2] }));
    const hook = join(dir, 'slow-hook.sh');
    writeFileSync(hook, '#!/bin/sh\nsleep 1\nexit 0\n', { mode: 0o755 });
    const log = captureLogger();
    const make = (): ChannelAgent => new ChannelAgent({ repo, log, now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: CLUSTER, trusted: [key.publicKey], peers: () => [], changed: () => undefined, dir }, { ...CHANNEL_DEFAULTS, channel: CHANNEL, apply: hook }, CHANNEL);
    const agent = make();
    const ref = gitfsRefPath(repo.gitDir, 'blessed', CHANNEL);
    try {
      await agent.start();
      for (let i = 0; i < 100 && !log.lines.some((e) => e.event === 'hook-start'); i++) await sleep(20);
      // The disk fills while the hook runs (a directory in the ref's place fails the same way).
      rmSync(ref, { force: true });
      mkdirSync(ref, { recursive: true });
      writeFileSync(join(ref, 'x'), '');
      const started = Date.now();
      await agent.stop();
      assert.ok(Date.now() - started < 10_000, `stop() took ${Date.now() - started} ms`);
      assert.equal(log.lines.filter((e) => e.event === 'rollout-action-failed').length, 1, 'the ref was tried once');
      // The actions after it wait too: 1.0, running now, is still named (by previous) until the next start moves blessed to it.
      assert.equal(await readGitfsRef(repo.gitDir, 'previous', CHANNEL), v1);
      assert.ok(log.lines.some((e) => e.event === 'rollout-actions-left'));
    } finally {
      rmSync(ref, { recursive: true, force: true });
    }
    const again = make();
    try {
      await again.start();
      assert.equal(await readGitfsRef(repo.gitDir, 'blessed', CHANNEL), v1, 'restored at the next start');
      assert.equal(await readGitfsRef(repo.gitDir, 'previous', CHANNEL), undefined);
    } finally {
      await again.stop();
      await repo.close();
    }
  });

  /**
   * A repository whose channel holds releases 1.0 and 2.0, signed by `key`; the agent's stored
   * state has 2.0 blessed, 1.0 before it. `hook` succeeds and appends the action it ran to `ran`.
   */
  async function twoBlessed(): Promise<{ repo: Repository; dir: string; key: ReleaseKeyPair; v1: Oid; v2: Oid; hook: string; ran: string }> {
    const base = tmp.make();
    const repo = await Repository.init(join(base, 'repo'));
    const dir = join(base, 'agent');
    mkdirSync(dir);
    const key = generateReleaseKey('test');
    const release = async (version: string): Promise<Oid> => {
      const site = join(base, `site-${version}`);
      mkdirSync(site);
      writeFileSync(join(site, 'index.html'), `${version}\n`);
      return (await publishRelease(repo, { channel: CHANNEL, path: site, version, key })).commit;
    };
    const v1 = await release('1.0');
    const v2 = await release('2.0');
    writeFileSync(join(dir, 'state.json'), encodeAgentState({ ...initialAgentState(CHANNEL), blessed: { commit: v2, version: '2.0' }, previous: { commit: v1, version: '1.0' } }));
    const ran = join(base, 'ran');
    const hook = join(base, 'hook.sh');
    writeFileSync(hook, `#!/bin/sh\necho "$1" >>${ran}\nexit 0\n`);
    chmodSync(hook, 0o755);
    return { repo, dir, key, v1, v2, hook, ran };
  }

  it('a new release that could not be read when first seen (its pack away for a moment) is read again at the next look, and staged', async () => {
    const { repo, dir, key } = await twoBlessed();
    const site = join(dir, 'site-3.0');
    mkdirSync(site);
    writeFileSync(join(site, 'index.html'), '3.0\n');
    const packs = (): string[] => readdirSync(join(repo.gitDir, 'objects', 'pack')).filter((f) => f.endsWith('.pack'));
    const before = new Set(packs());
    const v3 = (await publishRelease(repo, { channel: CHANNEL, path: site, version: '3.0', key })).commit;
    const [pack] = packs().filter((f) => !before.has(f));
    assert.ok(pack !== undefined, 'the release is one pack');
    const moved = (f: string): [string, string] => [join(repo.gitDir, 'objects', 'pack', f), join(dir, f)];
    const files = [pack, pack.replace(/\.pack$/, '.idx')];
    for (const f of files) renameSync(...moved(f));
    await repo.objects.refresh();
    const log = captureLogger();
    const agent = new ChannelAgent({ repo, log, now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: CLUSTER, trusted: [key.publicKey], peers: () => [], changed: () => undefined, dir }, { ...CHANNEL_DEFAULTS, channel: CHANNEL, apply: '/bin/true' }, CHANNEL);
    try {
      await agent.start();
      await pokeUntil(agent, () => log.lines.some((e) => e.event === 'release-unreadable' && e.fields['commit'] === v3));
      assert.ok(log.lines.some((e) => e.event === 'release-unreadable' && e.fields['commit'] === v3), 'the head could not be read');
      for (const f of files) renameSync(...(moved(f).reverse() as [string, string]));
      const seen = (): boolean => agent.status().history.some((t) => t.event === 'release-seen' && t.commit === v3);
      await pokeUntil(agent, seen);
      assert.ok(seen(), JSON.stringify(agent.status().history.slice(-3)));
    } finally {
      await agent.stop();
      await repo.close();
    }
  });

  it('never applies a release older than the blessed one (the channel moved back to it), however validly signed', async () => {
    const { repo, dir, key, v1, v2 } = await twoBlessed();
    await repo.refs.update(CHANNEL, { expected: v2, next: v1, message: 'moved back by hand' });
    const log = captureLogger();
    const agent = new ChannelAgent({ repo, log, now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: CLUSTER, trusted: [key.publicKey], peers: () => [], changed: () => undefined, dir }, { ...CHANNEL_DEFAULTS, channel: CHANNEL, apply: '/bin/true' }, CHANNEL);
    try {
      await agent.start();
      agent.poke();
      for (let i = 0; i < 100 && !log.lines.some((e) => e.event === 'release-refused'); i++) await sleep(50);
      const why = log.lines.filter((e) => e.event === 'release-refused').map((e) => String(e.fields['why']));
      assert.equal(why.length, 1);
      assert.match(why[0] as string, /older than the blessed release 2\.0.*downgrade/);
      assert.deepEqual([agent.status().phase, agent.status().report.blessed], ['idle', v2]);
    } finally {
      await agent.stop();
      await repo.close();
    }
  });

  it('at start, points the release refs where the stored state says (a kill -9 between storing the state and moving the refs), and leaves them without one', async () => {
    const base = tmp.make();
    const repo = await Repository.init(join(base, 'repo'));
    const dir = join(base, 'agent');
    mkdirSync(dir);
    const [blessed, stale] = commitsIn(repo, 2) as [Oid, Oid];
    await setGitfsRef(repo.gitDir, 'pending', CHANNEL, blessed, systemClock);
    await setGitfsRef(repo.gitDir, 'blessed', CHANNEL, stale, systemClock);
    const started = async (): Promise<ReturnType<typeof captureLogger>> => {
      const log = captureLogger();
      const agent = new ChannelAgent({ repo, log, now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: CLUSTER, trusted: [], peers: () => [], changed: () => undefined, dir }, { ...CHANNEL_DEFAULTS, channel: CHANNEL, apply: '/bin/true' }, CHANNEL);
      await agent.start();
      await agent.stop();
      return log;
    };
    try {
      // No stored state (a first start, or a lost agent directory): the refs say more than the initial state, and stay.
      await started();
      assert.equal(await readGitfsRef(repo.gitDir, 'blessed', CHANNEL), stale);
      assert.equal(await readGitfsRef(repo.gitDir, 'pending', CHANNEL), blessed);
      rmSync(join(dir, 'state.json'), { force: true });
      writeFileSync(join(dir, 'state.json'), encodeAgentState({ ...initialAgentState(CHANNEL), blessed: { commit: blessed, version: '2.0' } }));
      const log = await started();
      assert.equal(await readGitfsRef(repo.gitDir, 'blessed', CHANNEL), blessed);
      assert.equal(await readGitfsRef(repo.gitDir, 'pending', CHANNEL), undefined);
      assert.deepEqual(log.lines.filter((e) => e.event === 'release-ref-restored').map((e) => e.fields['ref']).sort(), ['blessed', 'pending']);
    } finally {
      await repo.close();
    }
  });

  it('at start, a release ref a killed process left locked (<ref>.lock) is restored once the lock goes, not given up after one try', async () => {
    const base = tmp.make();
    const repo = await Repository.init(join(base, 'repo'));
    const dir = join(base, 'agent');
    mkdirSync(dir);
    const [blessed] = commitsIn(repo, 1) as [Oid];
    writeFileSync(join(dir, 'state.json'), encodeAgentState({ ...initialAgentState(CHANNEL), blessed: { commit: blessed, version: '2.0' } }));
    const lock = `${gitfsRefPath(repo.gitDir, 'blessed', CHANNEL)}.lock`;
    mkdirSync(dirname(lock), { recursive: true });
    writeFileSync(lock, '');
    const log = captureLogger();
    const agent = new ChannelAgent({ repo, log, now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: CLUSTER, trusted: [], peers: () => [], changed: () => undefined, dir }, { ...CHANNEL_DEFAULTS, channel: CHANNEL, apply: '/bin/true' }, CHANNEL);
    try {
      const starting = agent.start();
      // Past the first try's wait for the lock (5 s): it failed, and is tried again.
      for (let i = 0; i < 200 && !log.lines.some((e) => e.event === 'rollout-action-failed'); i++) await sleep(50);
      assert.ok(log.lines.some((e) => e.event === 'rollout-action-failed' && e.fields['action'] === 'set-ref'));
      rmSync(lock);
      await starting;
      assert.equal(await readGitfsRef(repo.gitDir, 'blessed', CHANNEL), blessed);
      assert.ok(log.lines.some((e) => e.event === 'release-ref-restored' && e.fields['ref'] === 'blessed'));
    } finally {
      await agent.stop();
      await repo.close();
    }
  });

  it("acts only on a recall signed by a key the channel trusts: a peer's unsigned recall, one signed by another key or for another channel or cluster, is logged once and changes nothing; a signed one rolls back, is passed on and kept across a restart", async () => {
    const { repo, dir, key, v1, v2, hook, ran } = await twoBlessed();
    const peers: Peer[] = [];
    const recallBy = (n: number, signature: Buffer | null): void => {
      const report: RolloutReport = { channel: CHANNEL, release: v2, version: '2.0', state: 'blessed', failures: 0, blessed: v2, blessedVersion: '2.0', paused: false, recalled: v2, recallSignature: signature };
      peers.push({ nodeId: `${n}`.repeat(16) as NodeId, name: `n${n}`, instance: '0'.repeat(32), endpoints: [], firstSeen: 0, lastSeen: Date.now(), intervalMs: 1000, revocationVersion: 0, restarts: 0, heads: new Map(), rollouts: new Map([[CHANNEL, report]]) });
    };
    const log = captureLogger();
    const make = (): ChannelAgent =>
      new ChannelAgent({ repo, log, now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: CLUSTER, trusted: [key.publicKey], peers: () => peers, changed: () => undefined, dir }, { ...CHANNEL_DEFAULTS, channel: CHANNEL, apply: hook }, CHANNEL);
    let agent = make();
    const refusals = (): string[] => log.lines.filter((e) => e.event === 'recall-refused').map((e) => `${String(e.fields['from'])}: ${String(e.fields['why'])}`);
    try {
      await agent.start();
      recallBy(1, null);
      recallBy(2, signRecall({ cluster: CLUSTER, channel: CHANNEL, release: v2 }, generateReleaseKey('stranger')));
      recallBy(3, signRecall({ cluster: CLUSTER, channel: 'site/other' as BranchName, release: v2 }, key));
      recallBy(5, signRecall({ cluster: 'another cluster', channel: CHANNEL, release: v2 }, key));
      await pokeUntil(agent, () => false, 20);
      const why = refusals();
      assert.equal(why.length, 4, why.join('\n'));
      assert.match(why[0] as string, /^1{16}: the recall is not signed/);
      assert.match(why[1] as string, /^2{16}: .*not a trusted release key/);
      assert.match(why[2] as string, /^3{16}: .*does not verify/);
      assert.match(why[3] as string, /^5{16}: .*does not verify/);
      assert.deepEqual([agent.status().report.blessed, agent.status().report.recalled, agent.status().phase], [v2, null, 'idle']);
      assert.equal(existsSync(ran), false, 'no hook ran');
      // The operator's signature, passed on by a fourth peer: this node goes back to 1.0 and passes it on.
      const signature = signRecall({ cluster: CLUSTER, channel: CHANNEL, release: v2 }, key);
      recallBy(4, signature);
      await pokeUntil(agent, () => agent.status().report.blessed === v1);
      assert.deepEqual([agent.status().report.blessed, agent.current().recalled, agent.current().recallSignature], [v1, v2, signature]);
      assert.deepEqual(readFileSync(ran, 'utf8').split('\n').filter(Boolean), ['rollback']);
      assert.equal(refusals().length, 4, 'each refusal logged once');
      await agent.stop();
      agent = make();
      await agent.start();
      assert.deepEqual([agent.current().recalled, agent.current().recallSignature], [v2, signature], 'kept in control.json');
    } finally {
      await agent.stop();
      await repo.close();
    }
  });

  it('carries out, at its next start, a signed recall it stored and was killed before acting on (no peer passes it back)', async () => {
    const { repo, dir, key, v1, v2, hook, ran } = await twoBlessed();
    const signature = signRecall({ cluster: CLUSTER, channel: CHANNEL, release: v2 }, key);
    writeFileSync(join(dir, 'control.json'), `${JSON.stringify({ paused: false, recalled: v2, signature: signature.toString('base64') })}\n`);
    const agent = new ChannelAgent({ repo, log: captureLogger(), now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: CLUSTER, trusted: [key.publicKey], peers: () => [], changed: () => undefined, dir }, { ...CHANNEL_DEFAULTS, channel: CHANNEL, apply: hook }, CHANNEL);
    try {
      await agent.start();
      await pokeUntil(agent, () => agent.status().report.blessed === v1);
      assert.deepEqual([agent.status().report.blessed, readFileSync(ran, 'utf8')], [v1, 'rollback\n']);
    } finally {
      await agent.stop();
      await repo.close();
    }
  });

  it('names the previous release (refs/gitfs/previous/<channel>), so a prune keeping one generation of the channel keeps it and a rollback goes back to a release here; one an earlier version let prune take stays unnamed, and prune still runs', async () => {
    const { repo, dir, key, v1, v2, hook, ran } = await twoBlessed();
    const policies = [{ ...POLICY_DEFAULTS, branches: CHANNEL, history: 1 }];
    const log = captureLogger();
    const make = (): ChannelAgent => new ChannelAgent({ repo, log, now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: CLUSTER, trusted: [key.publicKey], peers: () => [], changed: () => undefined, dir }, { ...CHANNEL_DEFAULTS, channel: CHANNEL, apply: hook }, CHANNEL);
    let agent = make();
    try {
      await agent.start();
      // The stored state (of a version before the ref) says 1.0 went before: named at start.
      assert.equal(await readGitfsRef(repo.gitDir, 'previous', CHANNEL), v1);
      await prune(repo, { policies, graceMs: 0, clock: systemClock, removeNow: true });
      assert.equal(await repo.objects.has(v1), true, 'the previous release survives a prune of all but the channel head');
      await agent.recall({ release: v2, signature: signRecall({ cluster: CLUSTER, channel: CHANNEL, release: v2 }, key) });
      await pokeUntil(agent, () => agent.status().report.blessed === v1);
      // The report follows the stored state; the refs follow it once its actions ran (bounded wait).
      const refs = async (): Promise<unknown[]> => [await readGitfsRef(repo.gitDir, 'blessed', CHANNEL), await readGitfsRef(repo.gitDir, 'previous', CHANNEL)];
      for (let i = 0; i < 100 && JSON.stringify(await refs()) !== JSON.stringify([v1, undefined]); i++) await sleep(20);
      assert.deepEqual([...(await refs()), readFileSync(ran, 'utf8')], [v1, undefined, 'rollback\n']);
      await agent.stop();
      // A previous release that is not here (an earlier version's prune took it): no ref names it.
      const gone = 'e'.repeat(40) as Oid;
      writeFileSync(join(dir, 'state.json'), encodeAgentState({ ...initialAgentState(CHANNEL), blessed: { commit: v2, version: '2.0' }, previous: { commit: gone, version: '0.9' } }));
      agent = make();
      await agent.start();
      assert.equal(await readGitfsRef(repo.gitDir, 'previous', CHANNEL), undefined);
      assert.ok(log.lines.some((e) => e.event === 'release-ref-absent' && e.fields['ref'] === 'previous' && e.fields['commit'] === gone));
      await prune(repo, { policies, graceMs: 0, clock: systemClock, removeNow: true });
      execFileSync('git', ['--git-dir', repo.gitDir, 'fsck', '--strict'], { stdio: 'pipe' });
    } finally {
      await agent.stop();
      await repo.close();
    }
  });

  it('a node holding a recall of the only release it ever blessed keeps it, and takes the next release published', async () => {
    const { repo, dir, key, v2, hook, ran } = await twoBlessed();
    writeFileSync(join(dir, 'state.json'), encodeAgentState({ ...initialAgentState(CHANNEL), blessed: { commit: v2, version: '2.0' } }));
    const signature = signRecall({ cluster: CLUSTER, channel: CHANNEL, release: v2 }, key);
    writeFileSync(join(dir, 'control.json'), `${JSON.stringify({ paused: false, recalled: v2, signature: signature.toString('base64') })}\n`);
    const site = join(dir, '..', 'site-3.0');
    mkdirSync(site);
    writeFileSync(join(site, 'index.html'), '3.0\n');
    const v3 = (await publishRelease(repo, { channel: CHANNEL, path: site, version: '3.0', key })).commit;
    const agent = new ChannelAgent({ repo, log: captureLogger(), now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: CLUSTER, trusted: [key.publicKey], peers: () => [], changed: () => undefined, dir }, { ...CHANNEL_DEFAULTS, channel: CHANNEL, apply: hook }, CHANNEL);
    try {
      await agent.start();
      // Past the 3 s it listens to the cluster after a start.
      await pokeUntil(agent, () => agent.status().report.blessed === v3, 400);
      assert.deepEqual([agent.status().report.blessed, agent.current().recalled], [v3, v2]);
      assert.deepEqual(readFileSync(ran, 'utf8').split('\n').filter(Boolean), ['apply', 'health']);
    } finally {
      await agent.stop();
      await repo.close();
    }
  });

  it('keeps the recall signature it holds while that verifies, against another valid one; takes another once its key is no longer trusted', async () => {
    const { repo, dir, key, v2, hook } = await twoBlessed();
    // Nothing blessed before 2.0: the recall keeps being heard, and nothing rolls back.
    writeFileSync(join(dir, 'state.json'), encodeAgentState({ ...initialAgentState(CHANNEL), blessed: { commit: v2, version: '2.0' } }));
    const other = generateReleaseKey('second operator');
    const recall = { cluster: CLUSTER, channel: CHANNEL, release: v2 };
    const [first, second] = [signRecall(recall, key), signRecall(recall, other)];
    const peers = [first, second].map((signature, i): Peer => {
      const report: RolloutReport = { channel: CHANNEL, release: v2, version: '2.0', state: 'blessed', failures: 0, blessed: v2, blessedVersion: '2.0', paused: false, recalled: v2, recallSignature: signature };
      return { nodeId: `${i + 1}`.repeat(16) as NodeId, name: `n${i + 1}`, instance: '0'.repeat(32), endpoints: [], firstSeen: 0, lastSeen: Date.now(), intervalMs: 1000, revocationVersion: 0, restarts: 0, heads: new Map(), rollouts: new Map([[CHANNEL, report]]) };
    });
    let heard = [peers[0] as Peer];
    const make = (trusted: ReleaseKeyPair[]): ChannelAgent =>
      new ChannelAgent({ repo, log: captureLogger(), now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: CLUSTER, trusted: trusted.map((k) => k.publicKey), peers: () => heard, changed: () => undefined, dir }, { ...CHANNEL_DEFAULTS, channel: CHANNEL, apply: hook }, CHANNEL);
    let agent = make([key, other]);
    try {
      await agent.start();
      await pokeUntil(agent, () => agent.current().recalled === v2);
      heard = [peers[1] as Peer, peers[0] as Peer];
      await pokeUntil(agent, () => false, 20);
      assert.deepEqual(agent.current().recallSignature, first, 'the signature held, not the other');
      await agent.stop();
      agent = make([other]);
      await agent.start();
      await pokeUntil(agent, () => agent.current().recallSignature?.equals(second) === true);
      assert.deepEqual([agent.current().recalled, agent.current().recallSignature], [v2, second], 'the one that verifies now');
      assert.equal(agent.status().report.blessed, v2);
    } finally {
      await agent.stop();
      await repo.close();
    }
  });

  it('refuses gitfs rollout rollback to a release that was recalled (heard while the release now blessed was staged)', async () => {
    const { repo, dir, key, v1, v2, hook } = await twoBlessed();
    // The recall of 1.0 held (signed as it came), 2.0 blessed over it since.
    writeFileSync(join(dir, 'control.json'), `${JSON.stringify({ paused: false, recalled: v1, signature: signRecall({ cluster: CLUSTER, channel: CHANNEL, release: v1 }, key).toString('base64') })}\n`);
    const agent = new ChannelAgent({ repo, log: captureLogger(), now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: CLUSTER, trusted: [key.publicKey], peers: () => [], changed: () => undefined, dir }, { ...CHANNEL_DEFAULTS, channel: CHANNEL, apply: hook }, CHANNEL);
    try {
      await agent.start();
      const signed = { release: v2, signature: signRecall({ cluster: CLUSTER, channel: CHANNEL, release: v2 }, key) };
      await assert.rejects(agent.recall(signed), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT) && /the release before 2\.0, 1\.0 .* was recalled/.test((e as Error).message));
      assert.equal(agent.status().report.blessed, v2, 'still on 2.0');
    } finally {
      await agent.stop();
      await repo.close();
    }
  });

  it('refuses gitfs rollout rollback while a release is being applied (it would recall the release it goes back to)', async () => {
    const { agent, repo } = await stagedAgent();
    try {
      await assert.rejects(agent.recall(), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT) && /1\.0 is being applied here/.test((e as Error).message));
      assert.equal(agent.status().report.recalled, null);
    } finally {
      await agent.stop();
      await repo.close();
    }
  });
});

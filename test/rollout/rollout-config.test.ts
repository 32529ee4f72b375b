/**
 * The `rollout` section of a node's config: its keys and channels are checked and filled in, every
 * refusal names its key; a channel with keys of its own trusts them instead of the section's, so
 * that a release signed by another team's key is refused there (a real repository, real
 * signatures, the node's RolloutAgent).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BranchName } from '../../src/branches/ref-name.js';
import type { NodeId } from '../../src/cluster/node-id.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { Repository } from '../../src/repo/repository.js';
import { publishRelease } from '../../src/rollout/publish.js';
import { formatPublicKey, generateReleaseKey, type ReleaseKeyPair } from '../../src/rollout/release-key.js';
import { RolloutAgent } from '../../src/rollout/rollout-agent.js';
import { CHANNEL_DEFAULTS, channelKeys, parseRolloutConfig } from '../../src/rollout/rollout-config.js';
import { captureLogger } from '../multicast/fixture.js';
import { tempDirs } from '../support/tmp.js';

const ops = generateReleaseKey('ops');
const web = generateReleaseKey('web');
const line = (k: ReleaseKeyPair): string => formatPublicKey(k.publicKey);

/** Throws GITFS_BAD_CONFIG naming `key`, in its data and first in its message. */
function refused(raw: unknown, key: string): void {
  assert.throws(
    () => parseRolloutConfig(raw, 'node.json'),
    (e: unknown) => {
      assert.ok(isGitfsError(e, ErrorCodes.BAD_CONFIG), String(e));
      assert.equal(e.data['key'], key, e.message);
      assert.ok(e.message.startsWith(`node.json: ${key} `), e.message);
      return true;
    },
  );
}

describe('rollout/rollout-config', function () {
  this.timeout(60_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('fills in each channel from the defaults; a channel without keys of its own trusts the section\'s, one with its own trusts only those', () => {
    const cfg = parseRolloutConfig(
      {
        trustedKeys: [line(ops)],
        channels: [
          { channel: 'kernel/stable', apply: '/bin/true', waves: [0.5, 1] },
          { channel: 'site/prod', apply: '/bin/true', trustedKeys: [line(web), line(ops)] },
        ],
      },
      'node.json',
    );
    const [kernel, site] = cfg.channels as [(typeof cfg.channels)[0], (typeof cfg.channels)[0]];
    assert.deepEqual({ ...kernel, trustedKeys: undefined }, { ...CHANNEL_DEFAULTS, channel: 'kernel/stable', apply: '/bin/true', waves: [0.5, 1], trustedKeys: undefined });
    assert.deepEqual(channelKeys(cfg, kernel).map((k) => k.fingerprint), [ops.publicKey.fingerprint]);
    assert.deepEqual(channelKeys(cfg, site).map((k) => k.fingerprint), [web.publicKey.fingerprint, ops.publicKey.fingerprint]);
    // Every channel with keys of its own: the section needs none.
    const own = parseRolloutConfig({ channels: [{ channel: 'site/prod', apply: '/bin/true', trustedKeys: [line(web)] }] }, 'node.json');
    assert.deepEqual([own.trustedKeys, channelKeys(own, own.channels[0] as (typeof own.channels)[0]).map((k) => k.comment)], [[], ['web']]);
    assert.deepEqual(parseRolloutConfig({}, 'node.json'), { trustedKeys: [], channels: [] });
  });

  const bad: [string, unknown, string][] = [
    ['a section that is not an object', [], 'rollout'],
    ['an unknown key', { bogus: 1 }, 'rollout.bogus'],
    ['keys that are not a list', { trustedKeys: line(ops) }, 'rollout.trustedKeys'],
    ['a key that is not one', { trustedKeys: [line(ops), 'ssh-rsa AAAA x'] }, 'rollout.trustedKeys[1]'],
    ['channels but no key for one of them', { channels: [{ channel: 'site/prod', apply: '/bin/true', trustedKeys: [line(web)] }, { channel: 'kernel/stable', apply: '/bin/true' }] }, 'rollout.trustedKeys'],
    ["a channel's keys, an empty list", { trustedKeys: [line(ops)], channels: [{ channel: 'site/prod', apply: '/bin/true', trustedKeys: [] }] }, 'rollout.channels[0].trustedKeys'],
    ["a channel's key that is not one", { trustedKeys: [line(ops)], channels: [{ channel: 'site/prod', apply: '/bin/true', trustedKeys: [line(web), 'garbage'] }] }, 'rollout.channels[0].trustedKeys[1]'],
    ['a channel without a hook', { trustedKeys: [line(ops)], channels: [{ channel: 'site/prod' }] }, 'rollout.channels[0].apply'],
    ['a relative hook', { trustedKeys: [line(ops)], channels: [{ channel: 'site/prod', apply: 'hooks/x' }] }, 'rollout.channels[0].apply'],
    ['a channel that is no branch name', { trustedKeys: [line(ops)], channels: [{ channel: 'site/*', apply: '/bin/true' }] }, 'rollout.channels[0].channel'],
    ['an unknown channel key', { trustedKeys: [line(ops)], channels: [{ channel: 'site/prod', apply: '/bin/true', keys: [] }] }, 'rollout.channels[0].keys'],
    ['waves that do not end with 1', { trustedKeys: [line(ops)], channels: [{ channel: 'site/prod', apply: '/bin/true', waves: [0.5] }] }, 'rollout.channels[0].waves'],
    ['an environment past 32 KiB in all', { trustedKeys: [line(ops)], channels: [{ channel: 'site/prod', apply: '/bin/true', env: { A: 'x'.repeat(20_000), B: 'y'.repeat(20_000) } }] }, 'rollout.channels[0].env'],
    ['a channel named twice', { trustedKeys: [line(ops)], channels: [{ channel: 'site/prod', apply: '/bin/true' }, { channel: 'site/prod', apply: '/bin/false' }] }, 'rollout.channels[1].channel'],
  ];
  for (const [what, raw, key] of bad) it(`refuses ${what}: GITFS_BAD_CONFIG naming ${key}`, () => refused(raw, key));

  it('a node applies a release on a channel with keys of its own only when one of them signed it: the section\'s key is refused there, and the channel\'s own elsewhere', async () => {
    const base = tmp.make();
    const repo = await Repository.init(join(base, 'repo'));
    const cfg = parseRolloutConfig(
      {
        trustedKeys: [line(ops)],
        channels: [
          { channel: 'site/prod', apply: '/bin/true', trustedKeys: [line(web)] },
          { channel: 'kernel/stable', apply: '/bin/true' },
        ],
      },
      'node.json',
    );
    const log = captureLogger();
    const agent = new RolloutAgent({ repo, log, now: () => Date.now(), self: 'aaaaaaaaaaaaaaaa' as NodeId, clusterId: '0123456789abcdef0123456789abcdef', peers: () => [], changed: () => undefined }, cfg);
    const publish = async (channel: BranchName, version: string, key: ReleaseKeyPair): Promise<string> => {
      const dir = join(base, `${channel.replace('/', '-')}-${version}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'index.html'), `${version}\n`);
      return (await publishRelease(repo, { channel, path: dir, version, key })).commit;
    };
    /** Pokes the agent until `done` holds (at most 10 s). */
    const until = async (done: () => boolean, what: string): Promise<void> => {
      for (let i = 0; i < 200 && !done(); i++) {
        await agent.refresh();
        await sleep(50);
      }
      assert.ok(done(), `${what}:\n${log.lines.map((e) => JSON.stringify(e)).join('\n')}`);
    };
    const refusedAs = (commit: string): string[] => log.lines.filter((e) => e.event === 'release-refused' && e.fields['commit'] === commit).map((e) => String(e.fields['why']));
    const blessed = (channel: string): string | null | undefined => agent.status(channel)[0]?.report.blessed;
    try {
      const siteByOps = await publish('site/prod' as BranchName, '1.0', ops);
      const kernelByWeb = await publish('kernel/stable' as BranchName, '1.0', web);
      await until(() => refusedAs(siteByOps).length > 0 && refusedAs(kernelByWeb).length > 0, 'both releases refused');
      assert.match(refusedAs(siteByOps)[0] as string, new RegExp(`${ops.publicKey.fingerprint.replace(/[+/]/g, '\\$&')}.*not a trusted release key`));
      assert.match(refusedAs(kernelByWeb)[0] as string, /not a trusted release key/);
      assert.deepEqual([blessed('site/prod'), blessed('kernel/stable')], [null, null]);
      // Each signed by its own channel's key: both applied and blessed.
      const site = await publish('site/prod' as BranchName, '2.0', web);
      const kernel = await publish('kernel/stable' as BranchName, '2.0', ops);
      await until(() => blessed('site/prod') === site && blessed('kernel/stable') === kernel, 'both releases blessed');
    } finally {
      await agent.stop();
      await repo.close();
    }
  });
});

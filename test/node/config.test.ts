/**
 * The node daemon's configuration: defaults, the JSON file (default path or --config), GITFS_*
 * environment overrides that win over the file, and GITFS_BAD_CONFIG naming the key and the
 * source for anything unknown, mistyped or out of range; `gitfs serve` refuses to start on it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { decodeAnnouncement, encodeAnnouncement } from '../../src/multicast/announcement.js';
import { DEFAULT_CONFIG, defaultConfigPath, loadConfig } from '../../src/node/config.js';
import { gitfs } from '../support/cli.js';
import { suiteDirs } from '../support/tmp.js';
import { announcement } from '../multicast/fixture.js';
import { cleanEnv } from '../support/cluster-nodes.js';

function badConfig(key: string | undefined, source?: string | RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isGitfsError(e), `not a GitfsError: ${String(e)}`);
    assert.equal(e.code, ErrorCodes.BAD_CONFIG, e.message);
    if (key !== undefined) assert.equal(e.data['key'], key, e.message);
    if (typeof source === 'string') assert.equal(e.data['source'], source, e.message);
    else if (source !== undefined) assert.match(String(e.data['source']), source, e.message);
    return true;
  };
}

describe('node/config: loadConfig', function () {
  const tmp = suiteDirs();

  /** A git dir whose default config file holds `content` (a string is written as is). */
  function withFile(content: unknown): string {
    const gitDir = tmp.make();
    mkdirSync(join(gitDir, 'gitfs'));
    writeFileSync(defaultConfigPath(gitDir), typeof content === 'string' ? content : JSON.stringify(content));
    return gitDir;
  }

  it('without a file or environment: the defaults', async () => {
    const c = await loadConfig(tmp.make(), undefined, {});
    assert.deepStrictEqual(c, DEFAULT_CONFIG);
    assert.deepEqual(c.multicast, { enabled: true, group: '239.255.77.77', port: 7419, interface: '', ttl: 1 });
    assert.deepEqual(c.service, { address: '0.0.0.0', port: 7420 });
    assert.equal(c.announce.intervalMs, 30_000);
    assert.equal(c.announce.expireIntervals, 3);
    assert.equal(c.announce.windowMs, 120_000);
    assert.deepEqual(c.staticPeers, []);
    assert.deepEqual(c.advertise, []);
    assert.ok(c.name.length >= 1 && c.name.length <= 64);
  });

  it('the default file overrides the keys it names and keeps the rest of each section', async () => {
    const gitDir = withFile({ name: 'edge-1', multicast: { port: 9000, ttl: 4 }, announce: { intervalMs: 5000 }, staticPeers: ['10.0.0.2:9000'] });
    const c = await loadConfig(gitDir, undefined, {});
    assert.equal(c.name, 'edge-1');
    assert.deepEqual(c.multicast, { ...DEFAULT_CONFIG.multicast, port: 9000, ttl: 4 });
    assert.deepEqual(c.announce, { ...DEFAULT_CONFIG.announce, intervalMs: 5000 });
    assert.deepEqual(c.staticPeers, ['10.0.0.2:9000']);
    assert.deepEqual(c.service, DEFAULT_CONFIG.service);
  });

  it('--config names another file, and then the default file is not read', async () => {
    const gitDir = withFile({ name: 'from-default-path' });
    const other = join(tmp.make(), 'node.json');
    writeFileSync(other, JSON.stringify({ service: { port: 8000 } }));
    const c = await loadConfig(gitDir, other, {});
    assert.equal(c.service.port, 8000);
    assert.equal(c.name, DEFAULT_CONFIG.name);
  });

  it('the environment wins over the file', async () => {
    const gitDir = withFile({ name: 'file', multicast: { port: 9000, enabled: true }, staticPeers: ['10.0.0.2:9000'], announce: { intervalMs: 5000 } });
    const c = await loadConfig(gitDir, undefined, {
      GITFS_NODE_NAME: 'env',
      GITFS_MULTICAST: 'off',
      GITFS_MULTICAST_PORT: '9100',
      GITFS_MULTICAST_GROUP: '239.1.2.3',
      GITFS_MULTICAST_TTL: '2',
      GITFS_SERVICE_ADDRESS: '127.0.0.1',
      GITFS_SERVICE_PORT: '9101',
      GITFS_ADVERTISE: '127.0.0.1, 10.0.0.9',
      GITFS_ANNOUNCE_INTERVAL_MS: '1000',
      GITFS_STATIC_PEERS: '127.0.0.1:1, host.example:2,',
      UNRELATED: 'x',
    });
    assert.equal(c.name, 'env');
    assert.deepEqual(c.multicast, { ...DEFAULT_CONFIG.multicast, enabled: false, port: 9100, group: '239.1.2.3', ttl: 2 });
    assert.deepEqual(c.service, { address: '127.0.0.1', port: 9101 });
    assert.deepEqual(c.advertise, ['127.0.0.1', '10.0.0.9']);
    assert.equal(c.announce.intervalMs, 1000);
    assert.deepEqual(c.staticPeers, ['127.0.0.1:1', 'host.example:2']);
    for (const [v, want] of [['on', true], ['1', true], ['true', true], ['0', false], ['false', false]] as const) {
      assert.equal((await loadConfig(gitDir, undefined, { GITFS_MULTICAST: v })).multicast.enabled, want);
    }
  });

  const badFiles: [string, unknown, string][] = [
    ['an unknown top-level key', { bogus: 1 }, 'bogus'],
    ['an unknown key in a section', { multicast: { bogus: 1 } }, 'multicast.bogus'],
    ['a section that is not an object', { multicast: 5 }, 'multicast'],
    ['a section that is null', { announce: null }, 'announce'],
    ['a port given as a string', { multicast: { port: '7419' } }, 'multicast.port'],
    ['a fractional port', { service: { port: 7420.5 } }, 'service.port'],
    ['port 0', { service: { port: 0 } }, 'service.port'],
    ['port 65536', { multicast: { port: 65536 } }, 'multicast.port'],
    ['a negative port', { multicast: { port: -1 } }, 'multicast.port'],
    ['enabled as a string', { multicast: { enabled: 'yes' } }, 'multicast.enabled'],
    ['a unicast group', { multicast: { group: '10.0.0.1' } }, 'multicast.group'],
    ['a group in 240.0.0.0/4', { multicast: { group: '240.0.0.1' } }, 'multicast.group'],
    ['a group of three octets', { multicast: { group: '239.255.77' } }, 'multicast.group'],
    ['a group with an octet over 255', { multicast: { group: '239.255.77.256' } }, 'multicast.group'],
    ['TTL 0', { multicast: { ttl: 0 } }, 'multicast.ttl'],
    ['a service address that is a host name', { service: { address: 'localhost' } }, 'service.address'],
    ['advertise not a list', { advertise: '127.0.0.1' }, 'advertise'],
    ['advertise with a host name', { advertise: ['example.com'] }, 'advertise'],
    ['nine advertised addresses', { advertise: Array.from({ length: 9 }, (_, i) => `10.0.0.${i}`) }, 'advertise'],
    ['static peers not a list', { staticPeers: '10.0.0.1:1' }, 'staticPeers'],
    ['a static peer without a port', { staticPeers: ['10.0.0.1'] }, 'staticPeers'],
    ['a static peer on port 0', { staticPeers: ['10.0.0.1:0'] }, 'staticPeers'],
    ['a static peer on port 65536', { staticPeers: ['10.0.0.1:65536'] }, 'staticPeers'],
    ['a static peer on port 99999', { staticPeers: ['peer.example:99999'] }, 'staticPeers'],
    ['a key named like a method of every object', { valueOf: 1 }, 'valueOf'],
    ['a key named like a method of every object, in a section', { multicast: { toLocaleString: 1 } }, 'multicast.toLocaleString'],
    ['a __proto__ key', '{"__proto__": {"name": "x"}}', '__proto__'],
    ['jitter over 0.5', { announce: { jitter: 0.6 } }, 'announce.jitter'],
    ['an interval under a second', { announce: { intervalMs: 999 } }, 'announce.intervalMs'],
    ['an interval over an hour', { announce: { intervalMs: 3_600_001 } }, 'announce.intervalMs'],
    ['expiry after 1 interval', { announce: { expireIntervals: 1 } }, 'announce.expireIntervals'],
    ['a window under a second', { announce: { windowMs: 999 } }, 'announce.windowMs'],
    ['repeat delays not numbers', { announce: { repeatMs: ['200'] } }, 'announce.repeatMs'],
    ['an empty name', { name: '' }, 'name'],
    ['a name of 65 characters', { name: 'n'.repeat(65) }, 'name'],
    ['a name with a newline', { name: 'a\nb' }, 'name'],
  ];
  for (const [what, content, key] of badFiles) {
    it(`refuses ${what}: GITFS_BAD_CONFIG naming ${key}`, async () => {
      const gitDir = withFile(content);
      await assert.rejects(loadConfig(gitDir, undefined, {}), badConfig(key, defaultConfigPath(gitDir)));
    });
  }

  it('refuses a file that is not a JSON object: a top-level array, a number, malformed JSON, an empty file', async () => {
    await assert.rejects(loadConfig(withFile([1]), undefined, {}), badConfig('(top level)'));
    await assert.rejects(loadConfig(withFile('5'), undefined, {}), badConfig('(top level)'));
    const broken = withFile('{"name": "x",');
    await assert.rejects(loadConfig(broken, undefined, {}), badConfig(undefined, defaultConfigPath(broken)));
    await assert.rejects(loadConfig(withFile(''), undefined, {}), badConfig(undefined));
  });

  it('refuses a --config file that does not exist or cannot be read', async () => {
    const missing = join(tmp.make(), 'absent.json');
    await assert.rejects(loadConfig(tmp.make(), missing, {}), badConfig(undefined, missing));
    const dir = tmp.make();
    await assert.rejects(loadConfig(tmp.make(), dir, {}), badConfig(undefined, dir));
  });

  const badEnv: [string, string, string][] = [
    ['GITFS_MULTICAST_PORT', 'abc', 'multicast.port'],
    ['GITFS_MULTICAST_PORT', '0', 'multicast.port'],
    ['GITFS_MULTICAST_PORT', '70000', 'multicast.port'],
    ['GITFS_SERVICE_PORT', '-5', 'service.port'],
    ['GITFS_MULTICAST', 'maybe', 'multicast.enabled'],
    ['GITFS_MULTICAST_GROUP', '192.168.1.1', 'multicast.group'],
    ['GITFS_MULTICAST_TTL', '256', 'multicast.ttl'],
    ['GITFS_SERVICE_ADDRESS', '::1', 'service.address'],
    ['GITFS_ADVERTISE', '127.0.0.1,nohost', 'advertise'],
    ['GITFS_ANNOUNCE_INTERVAL_MS', '999', 'announce.intervalMs'],
    ['GITFS_STATIC_PEERS', '127.0.0.1', 'staticPeers'],
    ['GITFS_NODE_NAME', '', 'name'],
  ];
  for (const [name, value, key] of badEnv) {
    it(`refuses ${name}=${JSON.stringify(value)}: GITFS_BAD_CONFIG naming ${key} and the variable`, async () => {
      await assert.rejects(loadConfig(tmp.make(), undefined, { [name]: value }), badConfig(key, `environment ${name}`));
    });
  }

  it('refuses an announcement interval under a second, saying why (the peers’ checking budget does not carry it); a second is taken', async () => {
    await assert.rejects(loadConfig(tmp.make(), undefined, { GITFS_ANNOUNCE_INTERVAL_MS: '100' }), (e: unknown) => {
      assert.ok(badConfig('announce.intervalMs')(e) && isGitfsError(e));
      assert.match(e.message, /from 1000 to 3600000 \(ms; more often than once a second floods the peers' budget/);
      return true;
    });
    assert.equal((await loadConfig(tmp.make(), undefined, { GITFS_ANNOUNCE_INTERVAL_MS: '1000' })).announce.intervalMs, 1000);
  });

  it('a bad value in the file is refused even when the environment overrides that key', async () => {
    const gitDir = withFile({ multicast: { port: 0 } });
    await assert.rejects(loadConfig(gitDir, undefined, { GITFS_MULTICAST_PORT: '9000' }), badConfig('multicast.port', defaultConfigPath(gitDir)));
  });

  it('every node name the configuration accepts can be announced', async () => {
    for (const name of ['n'.repeat(64), 'node ü', 'é'.repeat(64), '日本'.repeat(32)]) {
      let accepted: string;
      try {
        accepted = (await loadConfig(tmp.make(), undefined, { GITFS_NODE_NAME: name })).name;
      } catch (e) {
        assert.ok(isGitfsError(e, ErrorCodes.BAD_CONFIG), String(e));
        continue; // refused at the configuration: fine
      }
      const a = announcement('0123456789abcdef', { name: accepted });
      assert.doesNotThrow(() => decodeAnnouncement(encodeAnnouncement(a)), `the name ${JSON.stringify(name)} (${Buffer.byteLength(name)} bytes) is accepted by the configuration but every receiver drops the announcements carrying it`);
    }
  });

  describe('gitfs serve with a bad configuration', function () {
    this.timeout(60_000);
    let repo = '';
    before(async () => {
      repo = join(tmp.make(), 'repo');
      const r = await gitfs(['init', '--repo', repo], { env: cleanEnv() });
      assert.equal(r.code, 0, r.stderr);
    });

    const cases: [string, string[], Record<string, string>, () => void][] = [
      ['an out-of-range port in the environment', [], { GITFS_MULTICAST_PORT: '0' }, () => undefined],
      ['a missing --config file', ['--config', '/nonexistent/gitfs-node.json'], {}, () => undefined],
      ['an unknown key in the default file', [], {}, () => {
          mkdirSync(join(repo, 'gitfs'), { recursive: true });
          writeFileSync(defaultConfigPath(repo), JSON.stringify({ multicast: { grup: '239.1.1.1' } }));
        },
      ],
      // Found at start, not when a release comes (its apply would fail, then its rollback: stuck, the rollout halted).
      ['a rollout hook that does not exist', [], {}, () => {
          mkdirSync(join(repo, 'gitfs'), { recursive: true });
          writeFileSync(defaultConfigPath(repo), JSON.stringify({ rollout: { channels: [{ channel: 'site/prod', apply: '/nonexistent/gitfs-hook' }] } }));
        },
      ],
      ['a rollout hook that is not executable', [], {}, () => {
          const hook = join(tmp.make(), 'hook');
          writeFileSync(hook, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
          writeFileSync(defaultConfigPath(repo), JSON.stringify({ rollout: { channels: [{ channel: 'site/prod', apply: hook }] } }));
        },
      ],
    ];
    for (const [what, args, env, prepare] of cases) {
      it(`exits non-zero with GITFS_BAD_CONFIG on stderr: ${what}`, async () => {
        prepare();
        const r = await gitfs(['serve', '--repo', repo, ...args], { env: cleanEnv(env) });
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /\[GITFS_BAD_CONFIG\]/);
        assert.doesNotMatch(r.stderr, /"event":"serving"/);
      });
    }
  });
});

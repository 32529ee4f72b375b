/**
 * The node daemon's configuration: a JSON file (`<git dir>/gitfs/node.json` unless --config
 * names one; absent means all defaults), then GITFS_* environment overrides. Every key is
 * checked: an unknown key, a wrong type or a value out of range is GITFS_BAD_CONFIG naming the
 * key and where it came from. Defaults and meanings: README "Node configuration".
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { EMPTY_ROLLOUT, parseRolloutConfig, type RolloutConfig } from '../rollout/rollout-config.js';
import { parsePolicies, type Policy } from '../swarm/policy.js';

export interface NodeConfig {
  readonly name: string;
  readonly multicast: { readonly enabled: boolean; readonly group: string; readonly port: number; readonly interface: string; readonly ttl: number };
  readonly service: { readonly address: string; readonly port: number };
  readonly advertise: readonly string[];
  readonly announce: {
    readonly intervalMs: number;
    readonly jitter: number;
    readonly debounceMs: number;
    readonly repeatMs: readonly number[];
    readonly greetMs: number;
    readonly expireIntervals: number;
    readonly windowMs: number;
  };
  readonly staticPeers: readonly string[];
  /** Replication policies, first match wins (src/swarm/policy.ts); none: nothing is fetched. */
  readonly policies: readonly Policy[];
  readonly swarm: { readonly flushBytes: number; readonly mergeRetryMs: number };
  /** The daemon's prune (src/repo/prune.ts): how often (0: never) and how old an unreachable object's file must be to go. */
  readonly prune: { readonly everyMs: number; readonly graceMs: number };
  /** The daemon's scrub (src/node/scrub.ts): how often every pack is read through and its damage mended (0: never). */
  readonly scrub: { readonly everyMs: number };
  /** Trusted release keys and the channels this node applies (src/rollout/rollout-config.ts). */
  readonly rollout: RolloutConfig;
}

/**
 * The shortest announcement period. Peers check a member's signatures within a budget sized for
 * its parts sent once every few seconds (src/multicast/verify-budget.ts): announcing more often
 * spends that member's bucket at every peer, then the one all other sources share.
 */
export const MIN_ANNOUNCE_INTERVAL_MS = 1000;

/** The longest grace period a prune takes (`prune.graceMs`, `gitfs prune --grace`). */
export const MAX_PRUNE_GRACE_MS = 90 * 86_400_000;

export const DEFAULT_CONFIG: NodeConfig = {
  name: hostname().slice(0, 64),
  multicast: { enabled: true, group: '239.255.77.77', port: 7419, interface: '', ttl: 1 },
  service: { address: '0.0.0.0', port: 7420 },
  advertise: [],
  announce: { intervalMs: 30_000, jitter: 0.2, debounceMs: 50, repeatMs: [200, 600, 1400, 3000], greetMs: 500, expireIntervals: 3, windowMs: 120_000 },
  staticPeers: [],
  policies: [],
  swarm: { flushBytes: 16 << 20, mergeRetryMs: 600_000 },
  prune: { everyMs: 3_600_000, graceMs: 86_400_000 },
  scrub: { everyMs: 7 * 86_400_000 },
  rollout: EMPTY_ROLLOUT,
};

type Check = (v: unknown) => string | undefined;

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const int = (min: number, max: number): Check => (v) => (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? undefined : `an integer from ${min} to ${max}`);
const num = (min: number, max: number): Check => (v) => (typeof v === 'number' && v >= min && v <= max ? undefined : `a number from ${min} to ${max}`);
const str = (re: RegExp, what: string): Check => (v) => (typeof v === 'string' && re.test(v) ? undefined : what);
const bool: Check = (v) => (typeof v === 'boolean' ? undefined : 'true or false');
const list = (item: Check, max: number): Check => (v) => {
  if (!Array.isArray(v) || v.length > max) return `a list of at most ${max}`;
  for (const x of v) {
    const bad = item(x);
    if (bad !== undefined) return `a list of ${bad}`;
  }
  return undefined;
};
const hostPort: Check = (v) => {
  const m = typeof v === 'string' ? /^[A-Za-z0-9.-]{1,253}:(\d{1,5})$/.exec(v) : null;
  return m !== null && Number(m[1]) >= 1 && Number(m[1]) <= 65535 ? undefined : 'host:port (port 1 to 65535)';
};
const multicastGroup: Check = (v) => (typeof v === 'string' && IPV4.test(v) && Number(v.split('.')[0]) >= 224 && Number(v.split('.')[0]) <= 239 ? undefined : 'an IPv4 multicast address (224.0.0.0/4)');

const SPEC: Record<string, Check | Record<string, Check>> = {
  // Announcements carry at most 64 bytes of name (src/multicast/announcement.ts): count UTF-8 bytes, not characters.
  name: (v) => (typeof v === 'string' && /^[^\x00-\x1f\x7f]+$/.test(v) && Buffer.byteLength(v, 'utf8') <= 64 ? undefined : 'a name of 1 to 64 bytes (UTF-8) of printable characters'),
  multicast: { enabled: bool, group: multicastGroup, port: int(1, 65535), interface: str(/^[A-Za-z0-9.:_@-]{0,40}$/, 'an interface name or IPv4 address, or ""'), ttl: int(1, 255) },
  service: { address: str(IPV4, 'an IPv4 address'), port: int(1, 65535) },
  advertise: list(str(IPV4, 'IPv4 addresses'), 8),
  announce: {
    intervalMs: (v) => (int(MIN_ANNOUNCE_INTERVAL_MS, 3_600_000)(v) === undefined ? undefined : `an integer from ${MIN_ANNOUNCE_INTERVAL_MS} to 3600000 (ms; more often than once a second floods the peers' budget for checking announcements)`),
    jitter: num(0, 0.5),
    debounceMs: int(0, 60_000),
    repeatMs: list(int(1, 600_000), 16),
    greetMs: int(0, 600_000),
    expireIntervals: int(2, 100),
    windowMs: int(1000, 86_400_000),
  },
  staticPeers: list(hostPort, 256),
  policies: (v) => {
    try {
      parsePolicies(v, 'policies');
      return undefined;
    } catch (e) {
      return `a list of policies (${(e as Error).message})`;
    }
  },
  // A daemon holds about five packs of it in memory (the disk's backlog, the block pool).
  swarm: { flushBytes: int(1 << 20, 256 << 20), mergeRetryMs: int(1000, 86_400_000) },
  // A grace shorter than a minute would remove the packs of a commit or fetch still under way.
  prune: { everyMs: (v) => (v === 0 ? undefined : int(1000, 7 * 86_400_000)(v) === undefined ? undefined : '0 (never) or an integer from 1000 to 604800000'), graceMs: int(60_000, MAX_PRUNE_GRACE_MS) },
  scrub: { everyMs: (v) => (v === 0 ? undefined : int(1000, 90 * 86_400_000)(v) === undefined ? undefined : '0 (never) or an integer from 1000 to 7776000000') },
  rollout: (v) => {
    try {
      parseRolloutConfig(v, 'rollout');
      return undefined;
    } catch (e) {
      return `a rollout section (${(e as Error).message})`;
    }
  },
};

function fail(source: string, key: string, want: string, got: unknown): GitfsError {
  return new GitfsError(ErrorCodes.BAD_CONFIG, `${source}: ${key} must be ${want}, not ${JSON.stringify(got)?.slice(0, 80)}`, { source, key });
}

function merge(base: Record<string, unknown>, over: unknown, spec: Record<string, Check | Record<string, Check>>, source: string, prefix: string): Record<string, unknown> {
  if (typeof over !== 'object' || over === null || Array.isArray(over)) throw fail(source, prefix.replace(/\.$/, '') || '(top level)', 'an object', over);
  const out = { ...base };
  for (const [key, value] of Object.entries(over)) {
    // Own keys only: `valueOf` or `__proto__` in a file are unknown keys, not Object's.
    const check = Object.hasOwn(spec, key) ? spec[key] : undefined;
    const path = prefix + key;
    if (check === undefined) throw new GitfsError(ErrorCodes.BAD_CONFIG, `${source}: unknown key ${path}`, { source, key: path });
    if (typeof check === 'function') {
      const bad = check(value);
      if (bad !== undefined) throw fail(source, path, bad, value);
      out[key] = value;
    } else {
      out[key] = merge(base[key] as Record<string, unknown>, value, check as Record<string, Check>, source, `${path}.`);
    }
  }
  return out;
}

const splitList = (s: string): string[] => s.split(',').map((x) => x.trim()).filter((x) => x !== '');
const asNumber = (s: string): unknown => (/^-?\d+(\.\d+)?$/.test(s) ? Number(s) : s);

/** GITFS_* variables and the config keys they set. */
const ENV: Record<string, { path: [string] | [string, string]; parse: (s: string) => unknown }> = {
  GITFS_NODE_NAME: { path: ['name'], parse: (s) => s },
  GITFS_MULTICAST: { path: ['multicast', 'enabled'], parse: (s) => (s === 'on' || s === '1' || s === 'true' ? true : s === 'off' || s === '0' || s === 'false' ? false : s) },
  GITFS_MULTICAST_GROUP: { path: ['multicast', 'group'], parse: (s) => s },
  GITFS_MULTICAST_PORT: { path: ['multicast', 'port'], parse: asNumber },
  GITFS_MULTICAST_INTERFACE: { path: ['multicast', 'interface'], parse: (s) => s },
  GITFS_MULTICAST_TTL: { path: ['multicast', 'ttl'], parse: asNumber },
  GITFS_SERVICE_ADDRESS: { path: ['service', 'address'], parse: (s) => s },
  GITFS_SERVICE_PORT: { path: ['service', 'port'], parse: asNumber },
  GITFS_ADVERTISE: { path: ['advertise'], parse: splitList },
  GITFS_ANNOUNCE_INTERVAL_MS: { path: ['announce', 'intervalMs'], parse: asNumber },
  GITFS_STATIC_PEERS: { path: ['staticPeers'], parse: splitList },
};

export function defaultConfigPath(gitDir: string): string {
  return join(gitDir, 'gitfs', 'node.json');
}

/** Defaults, then the file (if `path` is given it must exist), then the environment. */
export async function loadConfig(gitDir: string, path: string | undefined, env: NodeJS.ProcessEnv): Promise<NodeConfig> {
  const file = path ?? defaultConfigPath(gitDir);
  let config = DEFAULT_CONFIG as unknown as Record<string, unknown>;
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT' || path !== undefined) throw new GitfsError(ErrorCodes.BAD_CONFIG, `cannot read ${file}: ${(e as Error).message}`, { source: file });
  }
  if (text !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new GitfsError(ErrorCodes.BAD_CONFIG, `${file}: not JSON: ${(e as Error).message}`, { source: file });
    }
    config = merge(config, parsed, SPEC, file, '');
  }
  for (const [name, { path: key, parse }] of Object.entries(ENV)) {
    const raw = env[name];
    if (raw === undefined) continue;
    const value = parse(raw);
    const over = key.length === 1 ? { [key[0]]: value } : { [key[0]]: { [key[1]]: value } };
    config = merge(config, over, SPEC, `environment ${name}`, '');
  }
  const rollout = config['rollout'] === EMPTY_ROLLOUT ? EMPTY_ROLLOUT : parseRolloutConfig(config['rollout'], file);
  return { ...(config as unknown as NodeConfig), policies: parsePolicies(config['policies'], file), rollout };
}

/**
 * The `rollout` section of a node's config: the release keys this node trusts, and the channels
 * it applies, each with its hook and how its rollouts go (README "Rollouts"). A channel is a
 * branch, named exactly (so that every subscribed node reports it from the start, and all plan
 * the same waves); it must also be replicated here (a `policies` entry). A channel may name keys
 * of its own, which it trusts instead of the section's (the web team's key signs no kernel).
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { isBranchName } from '../branches/ref-name.js';
import { ErrorCodes, GitfsError, errnoCode } from '../errors.js';
import { parsePublicKey, type ReleasePublicKey } from './release-key.js';
import { MAX_FRACTIONS, WAVE_DEFAULTS } from './waves.js';

export interface ChannelConfig {
  readonly channel: string;
  /** The hook executable (kernel-images/hooks/*, sites/hooks/*). */
  readonly apply: string;
  /** Extra environment for the hook (GITFS_SITE_ROOT, GITFS_REBOOT, …). */
  readonly env: Readonly<Record<string, string>>;
  readonly healthTimeoutMs: number;
  readonly maxTries: number;
  /** The apply hook may restart the host (kernel hooks with GITFS_REBOOT=1). */
  readonly restartingApply: boolean;
  readonly canary: number;
  readonly waves: readonly number[];
  readonly maxFailures: number;
  /** The keys this channel's releases may be signed with, instead of RolloutConfig.trustedKeys. */
  readonly trustedKeys?: readonly ReleasePublicKey[];
}

export interface RolloutConfig {
  readonly trustedKeys: readonly ReleasePublicKey[];
  readonly channels: readonly ChannelConfig[];
}

export const CHANNEL_DEFAULTS: Omit<ChannelConfig, 'channel' | 'apply' | 'trustedKeys'> = {
  env: {},
  healthTimeoutMs: 120_000,
  maxTries: 3,
  restartingApply: false,
  canary: WAVE_DEFAULTS.canary,
  waves: WAVE_DEFAULTS.fractions,
  maxFailures: WAVE_DEFAULTS.maxFailures,
};

export const EMPTY_ROLLOUT: RolloutConfig = { trustedKeys: [], channels: [] };

const MAX_CHANNELS = 64;
const MAX_KEYS = 64;
/** The hook's extra environment in all: far below what exec takes (a larger one failed every run with E2BIG). */
const MAX_ENV_BYTES = 32_768;

type Check = (v: unknown) => string | undefined;
const int = (min: number, max: number): Check => (v) => (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? undefined : `an integer from ${min} to ${max}`);

const CHECKS: Record<keyof ChannelConfig, Check> = {
  channel: (v) => (typeof v === 'string' && isBranchName(v) ? undefined : 'a branch name'),
  apply: (v) => (typeof v === 'string' && v.startsWith('/') && v.length < 4096 ? undefined : 'the absolute path of a hook executable'),
  env: (v) =>
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.entries(v).every(([k, x]) => /^[A-Z_][A-Z0-9_]{0,63}$/.test(k) && typeof x === 'string' && !x.includes('\0')) &&
    Object.entries(v).reduce((n, [k, x]) => n + k.length + String(x).length + 2, 0) <= MAX_ENV_BYTES
      ? undefined
      : `an object of environment variables (NAME: "value"), ${MAX_ENV_BYTES} bytes at most in all`,
  healthTimeoutMs: int(1000, 86_400_000),
  maxTries: int(1, 100),
  restartingApply: (v) => (typeof v === 'boolean' ? undefined : 'true or false'),
  canary: int(1, 10_000),
  waves: (v) =>
    Array.isArray(v) && v.length >= 1 && v.length <= MAX_FRACTIONS && v.every((f, i) => typeof f === 'number' && f > 0 && f <= 1 && (i === 0 || f > (v[i - 1] as number))) && v[v.length - 1] === 1
      ? undefined
      : `1 to ${MAX_FRACTIONS} increasing shares of the nodes, ending with 1`,
  maxFailures: int(0, 10_000),
  // Each key is parsed once the list passes (parseKeys).
  trustedKeys: (v) => (Array.isArray(v) && v.length >= 1 && v.length <= MAX_KEYS ? undefined : `a list of 1 to ${MAX_KEYS} public keys ("ssh-ed25519 AAAA… comment")`),
};

function fail(source: string, key: string, message: string): GitfsError {
  return new GitfsError(ErrorCodes.BAD_CONFIG, `${source}: ${key} ${message}`, { source, key });
}

/** The public keys of a list already checked to be one (`at` names it in messages). */
function parseKeys(keys: readonly unknown[], source: string, at: string): ReleasePublicKey[] {
  return keys.map((k, i) => {
    try {
      return parsePublicKey(String(k));
    } catch (e) {
      throw fail(source, `${at}[${i}]`, `is refused: ${(e as Error).message}`);
    }
  });
}

/** The keys a channel trusts: its own, else the section's. */
export function channelKeys(rollout: RolloutConfig, channel: ChannelConfig): readonly ReleasePublicKey[] {
  return channel.trustedKeys ?? rollout.trustedKeys;
}

/** Checks a `rollout` section (from `source`, for messages) and fills in defaults. */
export function parseRolloutConfig(raw: unknown, source: string): RolloutConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail(source, 'rollout', 'must be an object');
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) if (key !== 'trustedKeys' && key !== 'channels') throw fail(source, `rollout.${key}`, 'is not a rollout key (trustedKeys, channels)');
  const keys = r['trustedKeys'] ?? [];
  if (!Array.isArray(keys) || keys.length > MAX_KEYS) throw fail(source, 'rollout.trustedKeys', `must be a list of at most ${MAX_KEYS} public keys ("ssh-ed25519 AAAA… comment")`);
  const trustedKeys = parseKeys(keys, source, 'rollout.trustedKeys');
  const list = r['channels'] ?? [];
  if (!Array.isArray(list) || list.length > MAX_CHANNELS) throw fail(source, 'rollout.channels', `must be a list of at most ${MAX_CHANNELS} channels`);
  const channels = list.map((entry: unknown, i): ChannelConfig => {
    const at = `rollout.channels[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw fail(source, at, 'must be an object');
    const given = entry as Record<string, unknown>;
    for (const [key, value] of Object.entries(given)) {
      const check = Object.hasOwn(CHECKS, key) ? CHECKS[key as keyof ChannelConfig] : undefined;
      if (check === undefined) throw fail(source, `${at}.${key}`, `is not a channel key (${Object.keys(CHECKS).join(', ')})`);
      const problem = check(value);
      if (problem !== undefined) throw fail(source, `${at}.${key}`, `must be ${problem}, not ${JSON.stringify(value)?.slice(0, 80)}`);
    }
    for (const required of ['channel', 'apply'] as const) if (!Object.hasOwn(given, required)) throw fail(source, `${at}.${required}`, 'is missing');
    const own = given['trustedKeys'] === undefined ? {} : { trustedKeys: parseKeys(given['trustedKeys'] as unknown[], source, `${at}.trustedKeys`) };
    return { ...CHANNEL_DEFAULTS, ...(given as Partial<ChannelConfig>), ...own } as ChannelConfig;
  });
  const seen = new Set<string>();
  channels.forEach((ch, i) => {
    if (seen.has(ch.channel)) throw fail(source, `rollout.channels[${i}].channel`, `repeats ${ch.channel}`);
    seen.add(ch.channel);
  });
  const keyless = channels.findIndex((ch) => ch.trustedKeys === undefined);
  if (keyless >= 0 && trustedKeys.length === 0) throw fail(source, 'rollout.trustedKeys', `must name at least one key, as rollout.channels[${keyless}] names none of its own (nothing unsigned is ever applied)`);
  return { trustedKeys, channels };
}

/**
 * Throws GITFS_BAD_CONFIG for a channel whose apply hook is not an executable file here: found
 * when the daemon starts, not when a release comes (its apply fails, then its rollback, and the
 * node is stuck and halts the rollout).
 */
export async function checkHooksRunnable(rollout: RolloutConfig, source: string): Promise<void> {
  for (const ch of rollout.channels) {
    const why = await stat(ch.apply)
      .then(async (st) => (st.isFile() ? void (await access(ch.apply, constants.X_OK)) : 'not a file'))
      .catch((e: unknown) => errnoCode(e) ?? String(e));
    if (why !== undefined) throw fail(source, `rollout channel ${ch.channel}: apply`, `${ch.apply} is not an executable this node can run (${why})`);
  }
}

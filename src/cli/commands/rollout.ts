import { readFile } from 'node:fs/promises';
import { parseBranchName } from '../../branches/ref-name.js';
import { ErrorCodes, GitfsError, errnoCode } from '../../errors.js';
import type { ChannelStatus } from '../../rollout/channel-agent.js';
import { publishRelease } from '../../rollout/publish.js';
import { signRecall } from '../../rollout/recall.js';
import { parsePrivateKey, type ReleaseKeyPair } from '../../rollout/release-key.js';
import { parse, positionals, repoPath, withRepo, type Command, type CommandContext } from '../context.js';
import { askDaemon } from '../daemon-client.js';

const usage = [
  'gitfs rollout publish --channel BRANCH IMAGE|DIR --sign KEY [--version V] [--cmdline TEXT] [-m MSG] [--json]',
  'gitfs rollout status [CHANNEL] [--json]',
  'gitfs rollout rollback CHANNEL --sign KEY',
  'gitfs rollout pause CHANNEL',
  'gitfs rollout resume CHANNEL',
].join('\n       ');

const OPTIONS = {
  channel: { type: 'string' },
  sign: { type: 'string' },
  version: { type: 'string' },
  cmdline: { type: 'string' },
  message: { type: 'string', short: 'm' },
  json: { type: 'boolean' },
} as const;

type Values = { channel?: string | boolean; sign?: string | boolean; version?: string | boolean; cmdline?: string | boolean; message?: string | boolean; json?: string | boolean; repo?: string | boolean };

function str(v: string | boolean | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The release key in `file` (--sign). */
async function readKey(file: string): Promise<ReleaseKeyPair> {
  const text = await readFile(file).catch((e: unknown) => {
    throw new GitfsError(errnoCode(e) === 'ENOENT' ? ErrorCodes.BAD_ARGUMENT : ErrorCodes.IO, `cannot read the key ${file}: ${(e as Error).message}`, { path: file });
  });
  return parsePrivateKey(text);
}

async function publish(ctx: CommandContext, values: Values, args: string[]): Promise<number> {
  const [path] = positionals(args, 1, 1, usage);
  const channel = str(values.channel);
  const keyFile = str(values.sign);
  if (channel === undefined || keyFile === undefined) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `publish needs --channel and --sign\nusage: ${usage}`);
  const key = await readKey(keyFile);
  // Default version: the UTC time, to the second (sorts, and is a valid file name).
  const version = str(values.version) ?? new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return withRepo(ctx, values.repo, async (repo) => {
    const cmdline = str(values.cmdline);
    const message = str(values.message);
    const r = await publishRelease(repo, { channel: parseBranchName(channel), path: path as string, version, key, ...(cmdline === undefined ? {} : { cmdline }), ...(message === undefined ? {} : { message }) });
    await ctx.stdout.write(
      values.json === true
        ? `${JSON.stringify({ commit: r.commit, parent: r.parent ?? null, manifest: r.manifest })}\n`
        : `[${channel} ${r.commit.slice(0, 12)}] ${r.manifest.kind} ${r.manifest.version}, ${r.manifest.size} bytes, sha256 ${r.manifest.sha256.slice(0, 16)}…, signed by ${key.publicKey.fingerprint}\n`,
    );
    return 0;
  });
}

function renderStatus(channels: readonly ChannelStatus[]): string {
  if (channels.length === 0) return 'no channel is applied here (config: rollout.channels)\n';
  let out = '';
  for (const c of channels) {
    out += `${c.channel}: this node ${c.phase}${c.triesLeft === null ? '' : `, ${c.triesLeft} tries left`}${c.report.paused ? ', PAUSED' : ''}\n`;
    if (c.plan !== null) {
      // Node ids in the halt's reason, by name where a peer's is known.
      const halted = c.peers.reduce((text, p) => text.replaceAll(p.nodeId, p.name), c.plan.halted ?? '');
      out += `  rollout ${c.report.release?.slice(0, 12) ?? '-'}: ${c.plan.halted !== null ? `HALTED: ${halted}` : c.plan.done ? 'done' : `wave ${c.plan.open} of ${c.plan.waves.length - 1} open`}\n`;
    }
    const rows = [{ name: '(this node)', nodeId: '', report: c.report }, ...c.peers];
    for (const r of rows) {
      const rep = r.report;
      out += `  ${r.name.padEnd(14)} ${rep.state.padEnd(12)} ${(rep.version || '-').padEnd(22)} blessed ${rep.blessedVersion || '-'}${rep.paused ? ' (paused)' : ''}${rep.failures > 0 ? ` (${rep.failures} failed tries)` : ''}\n`;
    }
  }
  return out;
}

export const rollout: Command = {
  summary: 'roll releases out: publish a signed kernel image or site on a channel, see where the cluster stands, roll back, pause',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, OPTIONS, usage);
    const [sub, ...args] = rest;
    const gitDir = repoPath(ctx, values.repo);
    switch (sub) {
      case 'publish':
        return publish(ctx, values, args);
      case 'status': {
        const [channel] = positionals(args, 0, 1, usage);
        const a = (await askDaemon(gitDir, { op: 'rollout-status', ...(channel === undefined ? {} : { channel }) })) as { channels: ChannelStatus[] };
        await ctx.stdout.write(values.json === true ? `${JSON.stringify(a)}\n` : renderStatus(a.channels));
        return 0;
      }
      case 'rollback': {
        const [channel] = positionals(args, 1, 1, usage);
        const keyFile = str(values.sign);
        // The recall names the release blessed here now; the daemon refuses it if that changed meanwhile.
        let signed = {};
        if (keyFile !== undefined) {
          const key = await readKey(keyFile);
          const status = (await askDaemon(gitDir, { op: 'rollout-status', channel })) as { cluster?: unknown; channels: ChannelStatus[] };
          if (typeof status.cluster !== 'string') throw new GitfsError(ErrorCodes.PEER_FAILED, 'the running daemon names no cluster id to sign the recall for: it is older than this gitfs; restart gitfs serve');
          const here = status.channels[0]?.report.blessed;
          if (here !== undefined && here !== null) signed = { release: here, signature: signRecall({ cluster: status.cluster, channel: parseBranchName(channel as string), release: here }, key).toString('base64') };
        }
        const r = (await askDaemon(gitDir, { op: 'rollout-rollback', channel, ...signed })) as { from: string; to: string; recalled: boolean };
        const to = r.to === '' ? 'nothing' : r.to;
        await ctx.stdout.write(`${channel}: rolling back from ${r.from} to ${to} here${r.recalled ? `; every node that blessed ${r.from} follows` : ' (running the rollback that failed again; nothing recalled)'}\n`);
        return 0;
      }
      case 'pause':
      case 'resume': {
        const [channel] = positionals(args, 1, 1, usage);
        await askDaemon(gitDir, { op: 'rollout-pause', channel, paused: sub === 'pause' });
        await ctx.stdout.write(`${channel}: ${sub === 'pause' ? 'paused (no node starts a new apply while this node says so)' : 'resumed'}\n`);
        return 0;
      }
      default:
        throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `usage: ${usage}`);
    }
  },
};

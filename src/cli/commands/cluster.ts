import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { certificateFingerprint } from '../../cluster/certificate.js';
import { adoptRenewal, clusterDir, holdsAuthority, initCluster, loadAuthority, loadMembership, renewOnAuthority, revokeNode } from '../../cluster/cluster-store.js';
import { joinCluster } from '../../cluster/join.js';
import { parseNodeId } from '../../cluster/node-id.js';
import { createToken, MAX_TOKEN_TTL_MS, parseIssuerAddress, pruneTokens, formatToken } from '../../cluster/token.js';
import { ErrorCodes, GitfsError } from '../../errors.js';
import { loadConfig } from '../../node/config.js';
import { nodeAddresses } from '../../node/interfaces.js';
import { fetchRenewal } from '../../node/node-service.js';
import { systemClock } from '../../util/clock.js';
import { parse, positionals, repoPath, type Command, type CommandContext } from '../context.js';
import { parseDuration } from '../format.js';

const usage = [
  'gitfs cluster init',
  'gitfs cluster token [--ttl 1h] [--issuer IPV4:PORT]... [--config FILE]   (--ttl in ms, s, m, h or d: 90s, 15m, 7d; a bare number is milliseconds)',
  'gitfs cluster join TOKEN',
  'gitfs cluster revoke NODE_ID',
  'gitfs cluster renew [--issuer IPV4:PORT]',
  'gitfs cluster show [--json]',
].join('\n       ');

async function show(ctx: CommandContext, gitDir: string, json: boolean): Promise<number> {
  const { identity, trust } = await loadMembership(gitDir, systemClock.now());
  const issuer = await holdsAuthority(gitDir);
  const info = {
    cluster: trust.clusterId,
    caFingerprint: certificateFingerprint(trust.ca),
    nodeId: identity.nodeId,
    certificateExpires: new Date(identity.certificate.validTo).toISOString(),
    issuer,
    revocationVersion: trust.revocationVersion,
    revoked: trust.revocations?.nodeIds ?? [],
  };
  if (json) await ctx.stdout.write(`${JSON.stringify(info)}\n`);
  else
    await ctx.stdout.write(
      `cluster ${info.cluster} (CA sha256 ${info.caFingerprint})\nnode ${info.nodeId}${issuer ? ' (holds the CA key)' : ''}, certificate valid until ${info.certificateExpires}\n` +
        `revocations: version ${info.revocationVersion}${info.revoked.length > 0 ? `, revoked ${info.revoked.join(' ')}` : ''}\n`,
    );
  return 0;
}

/**
 * A new certificate for this node's key: issued here on the CA node (whatever state the old one
 * is in), else asked of the CA node at `issuers[0]` with the certificate held (still valid).
 */
async function renew(gitDir: string, issuers: readonly string[], now: number): Promise<{ nodeId: string; validTo: string }> {
  if (await holdsAuthority(gitDir)) return renewOnAuthority(gitDir, now);
  const issuer = issuers[0];
  if (issuer === undefined || issuers.length > 1) {
    throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'this node does not hold the CA key: pass --issuer IPV4:PORT of the node that does, once (gitfs serve renews by itself in the last 120 days)');
  }
  const { identity, trust } = await loadMembership(gitDir, now);
  const certificate = await adoptRenewal(gitDir, identity, trust, await fetchRenewal(identity, trust, parseIssuerAddress(issuer)), now);
  return { nodeId: identity.nodeId, validTo: certificate.validTo };
}

export const cluster: Command = {
  summary: 'cluster membership: create the CA, issue join tokens, join, revoke, renew, show',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(
      ctx,
      { ttl: { type: 'string' }, issuer: { type: 'string', multiple: true }, config: { type: 'string' }, json: { type: 'boolean' } },
      usage,
    );
    const [sub, ...args] = rest;
    const gitDir = repoPath(ctx, values.repo);
    const now = systemClock.now();
    // Only a repository can hold a cluster identity.
    await readFile(join(gitDir, 'config')).catch(() => {
      throw new GitfsError(ErrorCodes.NOT_A_REPOSITORY, `${gitDir} is not a gitfs repository (run gitfs init)`, { path: gitDir });
    });
    switch (sub) {
      case 'init': {
        positionals(args, 0, 0, usage);
        const r = await initCluster(gitDir, now);
        await ctx.stdout.write(`created cluster ${r.clusterId}; this node is ${r.nodeId} and holds the CA key (${join(clusterDir(gitDir), 'ca.key')})\n`);
        return 0;
      }
      case 'token': {
        positionals(args, 0, 0, usage);
        const { cert } = await loadAuthority(gitDir);
        const ttlMs = parseDuration(values.ttl ?? '1h', 'ttl');
        if (ttlMs <= 0 || ttlMs > MAX_TOKEN_TTL_MS) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `--ttl must be more than 0 and at most ${MAX_TOKEN_TTL_MS / 86_400_000}d`);
        let issuers = values.issuer ?? [];
        if (issuers.length === 0) {
          const config = await loadConfig(gitDir, values.config, ctx.env);
          issuers = nodeAddresses(config).endpoints.map((e) => `${e.address}:${e.port}`);
        }
        if (issuers.length === 0) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, 'no address for the token: this host has no IPv4 interface; pass --issuer IPV4:PORT');
        await pruneTokens(gitDir, now);
        const token = await createToken(gitDir, { caFingerprint: certificateFingerprint(new X509Certificate(cert.raw)), issuers, expiresMs: now + ttlMs });
        await ctx.stdout.write(`${formatToken(token)}\n`);
        return 0;
      }
      case 'join': {
        const [text] = positionals(args, 1, 1, usage);
        const r = await joinCluster(gitDir, text as string, now);
        await ctx.stdout.write(`joined; this node is ${r.nodeId} (${r.clusterDir})\n`);
        if (r.chunkingDiffers !== undefined) {
          await ctx.stderr.write(
            `gitfs: warning: this repository cuts large files otherwise than the issuer's (here: ${r.chunkingDiffers.here}; issuer: ${r.chunkingDiffers.issuer}). ` +
              'The same file committed on both is stored as other objects, shared by neither dedup nor the swarm; ' +
              'to share them, make this repository again with the issuer\'s `gitfs init --chunk-size` before it holds data.\n',
          );
        }
        return 0;
      }
      case 'revoke': {
        const [id] = positionals(args, 1, 1, usage);
        const { list, changed } = await revokeNode(gitDir, parseNodeId(id as string), now);
        await ctx.stdout.write(
          changed
            ? `revoked ${id}; revocation list version ${list.version} (${list.nodeIds.length} nodes); running nodes pick it up from this node\n`
            : `${id} was revoked already; revocation list version ${list.version} (${list.nodeIds.length} nodes), unchanged\n`,
        );
        return 0;
      }
      case 'renew': {
        positionals(args, 0, 0, usage);
        const r = await renew(gitDir, values.issuer ?? [], now);
        await ctx.stdout.write(`renewed the certificate of ${r.nodeId}; valid until ${new Date(r.validTo).toISOString()}\n`);
        return 0;
      }
      case 'show':
        positionals(args, 0, 0, usage);
        return show(ctx, gitDir, values.json === true);
      default:
        throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `usage: ${usage}`);
    }
  },
};

import { ErrorCodes, GitfsError } from '../../errors.js';
import { loadConfig, MAX_PRUNE_GRACE_MS } from '../../node/config.js';
import { prune as pruneRepository } from '../../repo/prune.js';
import { systemClock } from '../../util/clock.js';
import { parse, positionals, withRepo, type Command } from '../context.js';
import { humanBytes, parseDuration } from '../format.js';

const usage = 'gitfs prune [--grace 1d] [--dry-run] [--json] [--config FILE]   (--grace in ms, s, m, h or d; default: the config\'s prune.graceMs)';

export const prune: Command = {
  summary: 'remove what no ref keeps, and history past each branch policy\'s `history: K`, once older than the grace period',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { grace: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, config: { type: 'string' } }, usage);
    positionals(rest, 0, 0, usage);
    return withRepo(ctx, values.repo, async (repo) => {
      const config = await loadConfig(repo.gitDir, values.config, ctx.env);
      const graceMs = values.grace === undefined ? config.prune.graceMs : parseDuration(values.grace, 'grace');
      if (graceMs > MAX_PRUNE_GRACE_MS) throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `--grace must be at most ${MAX_PRUNE_GRACE_MS / 86_400_000}d`);
      const dryRun = values['dry-run'] === true;
      const pruned = await pruneRepository(repo, { policies: config.policies, graceMs, clock: systemClock, dryRun, removeNow: true });
      const removed = pruned.removed;
      const left = pruned.doomed.filter((d) => !removed.includes(d.name));
      const gone = pruned.doomed.filter((d) => dryRun || removed.includes(d.name));
      const freed = gone.reduce((n, d) => n + d.size, 0) + pruned.looseBytes - pruned.written.bytes;
      // Packs left in the end (touched since) keep their objects.
      const removedObjects = pruned.looseFiles + gone.reduce((n, d) => n + d.dead, 0);
      if (values.json === true) {
        await ctx.stdout.write(`${JSON.stringify({ ...pruned, removedObjects, dryRun, removedPacks: removed, touchedPacks: dryRun ? [] : left.map((d) => d.name), freedBytes: freed })}\n`);
        return 0;
      }
      const would = dryRun ? 'would remove' : 'removed';
      let out = `kept ${pruned.keptObjects} objects in ${pruned.keptCommits} commits, from ${pruned.roots} refs and reflog entries\n`;
      out += `${would} ${removedObjects} objects: ${pruned.doomed.length} packs rewritten${dryRun ? '' : ` (${pruned.written.objects} objects kept in ${pruned.written.packs} new)`}, ${pruned.looseFiles} loose files; ${dryRun ? 'at most ' : ''}${humanBytes(Math.max(0, freed))} freed\n`;
      if (pruned.boundary.length > 0) out += `history cut at ${pruned.boundary.length} commits (git's shallow file)${dryRun ? '' : `; ${pruned.reflogEntriesDropped} reflog entries dropped`}\n`;
      if (pruned.youngObjects > 0) {
        const held = pruned.heldSince === undefined ? '' : ` (a gitfs writer under way holds what was touched since ${new Date(pruned.heldSince).toISOString()})`;
        out += `${pruned.youngObjects} objects no ref keeps are in files touched within the grace period${held}: left for now\n`;
      }
      if (!dryRun && left.length > 0) out += `${left.length} packs were touched meanwhile (a writer names their objects again), or a ref moved meanwhile: left in place for the next prune\n`;
      await ctx.stdout.write(out);
      return 0;
    });
  },
};

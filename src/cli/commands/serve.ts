import { defaultConfigPath, loadConfig } from '../../node/config.js';
import { NodeDaemon } from '../../node/daemon.js';
import { checkHooksRunnable } from '../../rollout/rollout-config.js';
import { systemClock } from '../../util/clock.js';
import { jsonLogger } from '../../util/log.js';
import { parse, positionals, withRepo, type Command } from '../context.js';

const usage = 'gitfs serve [--config FILE] [--verbose]';

export const serve: Command = {
  summary: 'run the node daemon: announce, replicate by policy, serve peers and on-demand reads, apply rollout channels (JSON log lines on stderr)',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { config: { type: 'string' }, verbose: { type: 'boolean', short: 'v' } }, usage);
    positionals(rest, 0, 0, usage);
    return withRepo(ctx, values.repo, async (repo) => {
      const config = await loadConfig(repo.gitDir, values.config, ctx.env);
      await checkHooksRunnable(config.rollout, values.config ?? defaultConfigPath(repo.gitDir));
      const log = jsonLogger((line) => void ctx.stderr.write(line), systemClock, { minLevel: values.verbose === true ? 'debug' : 'info' });
      // The first of the two signals stops the daemon; both listeners go then, so a second
      // signal is not swallowed (the default action ends the process, whatever still runs). They
      // listen before the daemon starts: one that comes while it starts stops it once started
      // (it used to end the process, its serve lock left behind).
      let stop = (): void => undefined;
      const stopped = new Promise<void>((resolve) => {
        stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      const daemon = await NodeDaemon.start({ repo, clock: systemClock, log }, config).catch((e: unknown) => {
        stop();
        throw e;
      });
      await stopped;
      await daemon.stop();
      log.log('info', 'stopped');
      return 0;
    });
  },
};

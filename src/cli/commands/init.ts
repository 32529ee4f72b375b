import { DEFAULT_FORMAT, formatWithChunkSize } from '../../repo/repo-format.js';
import { Repository } from '../../repo/repository.js';
import { parse, positionals, repoPath, type Command } from '../context.js';
import { humanBytes, parseByteSize } from '../format.js';

const usage = 'gitfs init [--repo DIR] [--chunk-size SIZE]';

export const init: Command = {
  summary: 'create a repository',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { 'chunk-size': { type: 'string' } }, usage);
    positionals(rest, 0, 0, usage);
    const size = values['chunk-size'];
    const format = size === undefined ? DEFAULT_FORMAT : formatWithChunkSize(parseByteSize(size, '--chunk-size'));
    const repo = await Repository.init(repoPath(ctx, values.repo), { env: ctx.env }, format);
    const { chunker, tree, chunkThreshold } = repo.format;
    await ctx.stdout.write(
      `Initialized gitfs repository in ${repo.gitDir}\n` +
        `chunking: files over ${humanBytes(chunkThreshold)} cut at ${humanBytes(chunker.minSize)}/${humanBytes(chunker.avgSize)}/${humanBytes(chunker.maxSize)} (min/avg/max), tree fanout ${2 ** tree.fanoutBits}\n`,
    );
    await repo.close();
    return 0;
  },
};

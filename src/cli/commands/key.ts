import { ErrorCodes, GitfsError, errnoCode } from '../../errors.js';
import { formatOpenSshPrivateKey, formatPublicKey, generateReleaseKey } from '../../rollout/release-key.js';
import { createFileAtomic, writeFileAtomic } from '../../util/durable.js';
import { parse, positionals, type Command } from '../context.js';

const usage = 'gitfs key new FILE [--comment TEXT]';

export const key: Command = {
  summary: 'release keys: `new` writes an Ed25519 key pair (FILE, mode 0600, and FILE.pub) that signs rollouts',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { comment: { type: 'string' } }, usage);
    const [sub, file] = positionals(rest, 2, 2, usage);
    if (sub !== 'new') throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `usage: ${usage}`);
    const pair = generateReleaseKey(typeof values.comment === 'string' ? values.comment : 'gitfs release key');
    // OpenSSH's own format, so ssh-keygen -Y sign and git commit -S can use the key too.
    // Whole or not at all: a key cut short by a crash would be refused by every later run (EEXIST).
    const create = (path: string, data: string, mode: number): Promise<void> =>
      createFileAtomic(path, data, mode).catch((e: unknown) => {
        throw new GitfsError(errnoCode(e) === 'EEXIST' ? ErrorCodes.BAD_ARGUMENT : ErrorCodes.IO, `cannot create ${path}: ${(e as Error).message}`, { path });
      });
    await create(file as string, formatOpenSshPrivateKey(pair), 0o600);
    const pub = formatPublicKey(pair.publicKey);
    await writeFileAtomic(`${file}.pub`, `${pub}\n`, 0o644);
    await ctx.stdout.write(`${pub}\nfingerprint ${pair.publicKey.fingerprint}\nprivate key ${file} (keep it safe); public key ${file}.pub: trust it in each node's config (rollout.trustedKeys)\n`);
    return 0;
  },
};

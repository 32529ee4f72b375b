import { lstat, rm } from 'node:fs/promises';
import { ErrorCodes, GitfsError, errnoCode } from '../../errors.js';
import { formatOpenSshPrivateKey, formatPublicKey, generateReleaseKey } from '../../rollout/release-key.js';
import { createFileAtomic, removeLeftTemporaries } from '../../util/durable.js';
import { parse, positionals, type Command } from '../context.js';

const usage = 'gitfs key new FILE [--comment TEXT]';

export const key: Command = {
  summary: 'release keys: `new` writes an Ed25519 key pair (FILE, mode 0600, and FILE.pub) that signs rollouts',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { comment: { type: 'string' } }, usage);
    const [sub, file] = positionals(rest, 2, 2, usage) as [string, string];
    if (sub !== 'new') throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `usage: ${usage}`);
    const pubPath = `${file}.pub`;
    // A run killed while writing leaves temporaries beside the files, each a whole copy of its key.
    const left = (await removeLeftTemporaries(file)) + (await removeLeftTemporaries(pubPath));
    if (left > 0) await ctx.stderr.write(`gitfs key: removed ${left} temporary file(s) a killed run left beside ${file}\n`);
    // Never over a key: a public key beside a new private key that is not its pair would be trusted for it.
    if (await lstat(pubPath).then(() => true, () => false)) {
      throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `cannot create ${pubPath}: it exists (gitfs key new never replaces a key)`, { path: pubPath });
    }
    const pair = generateReleaseKey(typeof values.comment === 'string' ? values.comment : 'gitfs release key');
    // OpenSSH's own format, so ssh-keygen -Y sign and git commit -S can use the key too.
    // Whole or not at all: a key cut short by a crash would be refused by every later run (EEXIST).
    const create = (path: string, data: string, mode: number): Promise<void> =>
      createFileAtomic(path, data, mode).catch((e: unknown) => {
        throw new GitfsError(errnoCode(e) === 'EEXIST' ? ErrorCodes.BAD_ARGUMENT : ErrorCodes.IO, `cannot create ${path}: ${(e as Error).message}`, { path });
      });
    await create(file, formatOpenSshPrivateKey(pair), 0o600);
    const pub = formatPublicKey(pair.publicKey);
    await create(pubPath, `${pub}\n`, 0o644).catch(async (e: unknown) => {
      await rm(file, { force: true });
      throw e;
    });
    await ctx.stdout.write(`${pub}\nfingerprint ${pair.publicKey.fingerprint}\nprivate key ${file} (keep it safe); public key ${pubPath}: trust it in each node's config (rollout.trustedKeys, or a channel's own trustedKeys)\n`);
    return 0;
  },
};

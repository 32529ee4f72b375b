import type { DirEntry } from '../../objects/entry-names.js';
import { listDirectory } from '../../files/tree-reader.js';
import type { Repository } from '../../repo/repository.js';
import { parse, positionals, withRepo, type Command, type Output } from '../context.js';
import { modeString, printable } from '../format.js';
import { resolveEntry } from '../resolve.js';

const usage = 'gitfs ls REV[:path] [-r] [--json]';

export const ls: Command = {
  summary: 'list a directory of a commit',
  usage,
  async run(ctx) {
    const { values, positionals: rest } = parse(ctx, { recursive: { type: 'boolean', short: 'r' }, json: { type: 'boolean' } }, usage);
    const [expr] = positionals(rest, 1, 1, usage) as [string];
    return withRepo(ctx, values.repo, async (repo) => {
      const { entry } = await resolveEntry(repo, expr);
      const print = values.json === true ? printJson : printLine;
      if (entry.kind !== 'dir') {
        await print(repo, ctx.stdout, entry, entry.name);
        return 0;
      }
      await walk(repo, entry, '', values.recursive === true, (e, path) => print(repo, ctx.stdout, e, path));
      return 0;
    });
  },
};

async function walk(repo: Repository, dir: DirEntry, prefix: string, recursive: boolean, visit: (e: DirEntry, path: string) => Promise<void>): Promise<void> {
  for (const e of await listDirectory(repo.objects, dir.oid)) {
    const path = `${prefix}${e.name}`;
    await visit(e, path);
    if (recursive && e.kind === 'dir') await walk(repo, e, `${path}/`, recursive, visit);
  }
}

async function sizeOf(repo: Repository, e: DirEntry): Promise<number | undefined> {
  if (e.kind === 'dir' || e.kind === 'gitlink') return undefined;
  return e.size ?? (await repo.objects.sizeOf(e.oid));
}

async function printLine(repo: Repository, out: Output, e: DirEntry, path: string): Promise<void> {
  const size = await sizeOf(repo, e);
  await out.write(`${modeString(e)} ${String(size ?? '-').padStart(12)} ${e.oid.slice(0, 12)}${e.chunked ? '*' : ' '} ${printable(path)}${e.kind === 'dir' ? '/' : ''}\n`);
}

async function printJson(repo: Repository, out: Output, e: DirEntry, path: string): Promise<void> {
  const size = await sizeOf(repo, e);
  await out.write(`${JSON.stringify({ path, kind: e.kind, executable: e.executable, chunked: e.chunked, size: size ?? null, oid: e.oid })}\n`);
}

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseBranchName } from '../../src/branches/ref-name.js';
import { isGitfsError } from '../../src/errors.js';
import { lookupPath, readCommit, rootEntry } from '../../src/files/tree-reader.js';
import { ChunkedFileReader, type PlacedChunk } from '../../src/objects/chunked-file-reader.js';
import type { ObjectDatabase } from '../../src/objects/object-database.js';
import { PackIndex } from '../../src/objects/pack-index.js';
import { commitDirectory } from '../../src/repo/commit-directory.js';
import { Repository } from '../../src/repo/repository.js';
import { pseudoRandomBytes } from '../support/data.js';
import { tempDirs } from '../support/tmp.js';

/** Text-like bytes: deflate shrinks them, so their chunks are stored compressed. */
function compressible(bytes: number): Buffer {
  const words = ['kernel', 'image', 'chunk', 'tree', 'blob', 'pack', 'swarm', 'mount', 'commit', 'branch'];
  const out: string[] = [];
  let seed = 7;
  for (let n = 0; n < bytes; ) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const w = `${words[seed % words.length] as string}${seed % 1000} `;
    out.push(w);
    n += w.length;
  }
  return Buffer.from(out.join('')).subarray(0, bytes);
}

describe('chunked files read in bulk (blob runs)', function () {
  this.timeout(120_000);
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  /** A repository whose branch main holds `files`, and the chunked entry of each. */
  async function repoWith(files: Record<string, Buffer>): Promise<{ dir: string; entries: Map<string, { oid: string; size: number }> }> {
    const dir = join(tmp.make(), 'repo');
    const src = tmp.make();
    for (const [name, data] of Object.entries(files)) writeFileSync(join(src, name), data);
    const repo = await Repository.init(dir);
    const entries = new Map<string, { oid: string; size: number }>();
    try {
      const r = await commitDirectory(repo, parseBranchName('main'), src, { message: 'runs' });
      const root = rootEntry((await readCommit(repo.objects, r.commit as never)).tree);
      for (const name of Object.keys(files)) {
        const e = await lookupPath(repo.objects, root, name);
        assert.equal(e.chunked, true, `${name} is chunked`);
        entries.set(name, { oid: e.oid, size: e.size ?? 0 });
      }
    } finally {
      await repo.close();
    }
    return { dir, entries };
  }

  async function withReader<T>(dir: string, entry: { oid: string; size: number }, use: (r: ChunkedFileReader, objects: ObjectDatabase) => Promise<T>): Promise<T> {
    const repo = await Repository.open(dir);
    try {
      return await use(new ChunkedFileReader(repo.objects, entry.oid as never, entry.size), repo.objects);
    } finally {
      await repo.close();
    }
  }

  async function streamed(r: ChunkedFileReader, offset?: number, length?: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const p of r.stream(offset, length)) parts.push(p);
    return Buffer.concat(parts);
  }

  it('reads stored and deflated chunks, whole and in ranges, byte for byte', async () => {
    const random = pseudoRandomBytes(5 << 20, 'runs');
    const text = compressible(3 << 20);
    const { dir, entries } = await repoWith({ 'random.bin': random, 'text.txt': text });
    for (const [name, data] of [['random.bin', random], ['text.txt', text]] as const) {
      await withReader(dir, entries.get(name) as never, async (r, objects) => {
        // In bulk: the chunks are not read one by one (only the chunk tree's nodes are).
        let reads = 0;
        const readOne = objects.read.bind(objects);
        objects.read = (oid) => (reads++, readOne(oid));
        let chunks = 0;
        for await (const leaves of r.chunks()) chunks += leaves.length;
        assert.ok((await streamed(r)).equals(data), `${name} streamed whole`);
        assert.ok(reads < chunks / 4, `${reads} objects read one by one for ${chunks} chunks`);
        assert.ok((await streamed(r, 1_234_567, 2_500_000)).equals(data.subarray(1_234_567, 3_734_567)), `${name} streamed range`);
        // A range is read in one worker job: not even the tree's nodes are read here.
        reads = 0;
        assert.ok((await r.read(3_000_001, 1)).equals(data.subarray(3_000_001, 3_000_002)));
        assert.ok((await r.read(0, 3 << 20)).equals(data.subarray(0, 3 << 20)));
        for (let k = 0; k < 20; k++) {
          const at = (k * 262_147) % data.length;
          assert.ok((await r.read(at, 1 << 20)).equals(data.subarray(at, at + (1 << 20))), `${name} range at ${at}`);
        }
        assert.equal(reads, 0, 'objects read one by one for ranges');
      });
    }
  });

  it('reads loose chunks, and chunks that git repack stored as deltas, the general way', async () => {
    const base = pseudoRandomBytes(2 << 20, 'delta');
    const { dir, entries } = await repoWith({ 'a.bin': base });
    // An edited copy fetched by git (few new objects: git leaves them loose), then a repack makes deltas.
    const edited = Buffer.from(base);
    edited.fill(7, 1 << 20, (1 << 20) + 100);
    const edit = await repoWith({ 'b.bin': edited });
    execFileSync('git', [`--git-dir=${dir}`, '-c', 'fetch.unpackLimit=1000000', 'fetch', '-q', edit.dir, 'main:other'], { stdio: 'pipe' });
    assert.notEqual(execFileSync('git', [`--git-dir=${dir}`, 'count-objects'], { encoding: 'utf8' }).trim(), '0 objects, 0 kilobytes', 'the fetch left loose objects');
    await withReader(dir, edit.entries.get('b.bin') as never, async (r) => {
      assert.ok((await streamed(r)).equals(edited));
      assert.ok((await r.read(1000, 2 << 20)).equals(edited.subarray(1000)), 'a range over loose chunks');
    });
    execFileSync('git', [`--git-dir=${dir}`, 'repack', '-adf', '-q', '--window=50', '--depth=10'], { stdio: 'pipe' });
    const verify = execFileSync('git', [`--git-dir=${dir}`, 'verify-pack', '-v', ...readdirSync(join(dir, 'objects/pack')).filter((f) => f.endsWith('.idx')).map((f) => join(dir, 'objects/pack', f))], { encoding: 'utf8' });
    assert.match(verify, /chain length = 1/, 'git stored some objects as deltas');
    await withReader(dir, entries.get('a.bin') as never, async (r) => assert.ok((await streamed(r)).equals(base)));
    await withReader(dir, edit.entries.get('b.bin') as never, async (r) => {
      assert.ok((await streamed(r)).equals(edited));
      assert.ok((await r.read(0, 2 << 20)).equals(edited), 'a range over delta chunks');
    });
  });

  it('names a chunk whose bytes were damaged in the pack, and still reads the ranges that do not need it', async () => {
    const data = pseudoRandomBytes(3 << 20, 'damage');
    const { dir, entries } = await repoWith({ 'd.bin': data });
    const entry = entries.get('d.bin') as { oid: string; size: number };
    const victim = await withReader(dir, entry, async (r) => {
      const all: PlacedChunk[] = [];
      for await (const leaves of r.chunks()) all.push(...leaves);
      return all[Math.floor(all.length / 2)] as PlacedChunk;
    });
    const packDir = join(dir, 'objects/pack');
    const idxName = readdirSync(packDir).find((f) => f.endsWith('.idx')) as string;
    const offset = new PackIndex(readFileSync(join(packDir, idxName)), idxName).lookup(victim.oid) as number;
    const fd = openSync(join(packDir, idxName.replace(/\.idx$/, '.pack')), 'r+');
    try {
      const byte = Buffer.alloc(1);
      const at = offset + 64; // inside the stored content, past the entry and zlib headers
      readSync(fd, byte, 0, 1, at);
      byte[0] = (byte[0] as number) ^ 0x10;
      writeSync(fd, byte, 0, 1, at);
    } finally {
      closeSync(fd);
    }
    await withReader(dir, entry, async (r) => {
      await assert.rejects(streamed(r), (e: unknown) => isGitfsError(e, 'GITFS_CORRUPT_OBJECT') && (e as { data: { oid?: string } }).data.oid === victim.oid);
      await assert.rejects(r.read(victim.start, 10), (e: unknown) => isGitfsError(e, 'GITFS_CORRUPT_OBJECT'));
      assert.ok((await r.read(0, victim.start)).equals(data.subarray(0, victim.start)));
      const after = victim.start + victim.size;
      assert.ok((await streamed(r, after)).equals(data.subarray(after)));
    });
  });
});

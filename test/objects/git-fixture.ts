/**
 * Test helpers for the object-store tests: throwaway repositories driven by the
 * real `git` CLI (test/support/git-env.ts, with fixed dates), git's own view of every
 * object, and a tiny pack/idx writer for packs git itself would not produce
 * (thin packs, hostile entries).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { isObjectType, type ObjectType } from '../../src/objects/oid.js';
import { PackTypes, encodeEntryHeader } from '../../src/objects/pack-format.js';
import { gitBytes, gitText } from '../support/git-env.js';
import { tempDir } from '../support/tmp.js';

export interface GitRepo {
  readonly dir: string;
  readonly gitDir: string;
  git(args: readonly string[], input?: Buffer | string): Buffer;
  /** stdout as text without trailing white space. */
  gitText(args: readonly string[], input?: Buffer | string): string;
  write(rel: string, content: string | Buffer): void;
  commit(message: string): void;
}

/** A fresh non-bare repository (`bare`: a bare one) in a temp dir. */
export function makeRepo(label: string, bare = false): GitRepo {
  const dir = tempDir(label);
  const git = (args: readonly string[], input?: Buffer | string): Buffer => gitBytes(args, { cwd: dir, input, fixedDates: true });
  git(['init', '-q', ...(bare ? ['--bare'] : []), '-b', 'main', '.']);
  git(['config', 'gc.auto', '0']);
  const gitDir = bare ? dir : path.join(dir, '.git');
  return {
    dir,
    gitDir,
    git,
    gitText: (args, input) => gitText(args, { cwd: dir, input, fixedDates: true }),
    write(rel, content) {
      const p = path.join(dir, rel);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, content);
    },
    commit(message) {
      git(['add', '-A']);
      git(['commit', '-q', '--allow-empty', '-m', message]);
    },
  };
}

export interface GitViewObject {
  readonly oid: string;
  readonly type: ObjectType;
  readonly content: Buffer;
}

/** Every object of the repository, as `git cat-file --batch --batch-all-objects` prints it. */
export function allObjects(repo: GitRepo): GitViewObject[] {
  const out = repo.git(['cat-file', '--batch', '--batch-all-objects']);
  const objects: GitViewObject[] = [];
  let pos = 0;
  while (pos < out.length) {
    const nl = out.indexOf(0x0a, pos);
    const [oid, type, size] = out.toString('latin1', pos, nl).split(' ');
    const start = nl + 1;
    const end = start + Number(size);
    if (oid === undefined || type === undefined || !isObjectType(type)) throw new Error(`unexpected cat-file line at ${pos}`);
    objects.push({ oid, type, content: Buffer.from(out.subarray(start, end)) });
    pos = end + 1;
  }
  return objects;
}

/** The pack entries' (offset, raw type) pairs, from git's index of the pack. */
export function packEntryTypes(repo: GitRepo, idxPath: string): { oid: string; offset: number; rawType: number }[] {
  const packBytes = fs.readFileSync(idxPath.replace(/\.idx$/, '.pack'));
  return repo
    .gitText(['show-index'], fs.readFileSync(idxPath))
    .trim()
    .split('\n')
    .map((line) => {
      const [offset, oid] = line.split(' ');
      return { oid: oid!, offset: Number(offset), rawType: (packBytes[Number(offset)]! >> 4) & 7 };
    });
}

export function packFiles(gitDir: string): string[] {
  const dir = path.join(gitDir, 'objects', 'pack');
  return fs.readdirSync(dir).filter((n) => n.endsWith('.idx')).map((n) => path.join(dir, n));
}

// ---- a minimal pack writer for packs git will not make ----

export type RawEntry =
  | { readonly oid: string; readonly type: 'commit' | 'tree' | 'blob' | 'tag'; readonly content: Buffer; readonly declaredSize?: number }
  | { readonly oid: string; readonly type: 'ref'; readonly base: string; readonly delta: Buffer; readonly declaredSize?: number };

/** Writes `<dir>/pack-<sha>.pack` and `.idx` (v2) holding `entries`; returns the base path. */
export function writeRawPack(dir: string, entries: readonly RawEntry[]): string {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.write('PACK', 0, 'latin1');
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(entries.length, 8);
  parts.push(header);
  let offset = 12;
  const rows: { oid: Buffer; offset: number; crc: number }[] = [];
  for (const e of entries) {
    const body = e.type === 'ref' ? e.delta : e.content;
    const chunks = [encodeEntryHeader(e.type === 'ref' ? PackTypes.refDelta : PackTypes[e.type], e.declaredSize ?? body.length)];
    if (e.type === 'ref') chunks.push(Buffer.from(e.base, 'hex'));
    chunks.push(deflateSync(body));
    const entry = Buffer.concat(chunks);
    rows.push({ oid: Buffer.from(e.oid, 'hex'), offset, crc: crc32(entry) });
    parts.push(entry);
    offset += entry.length;
  }
  const packBody = Buffer.concat(parts);
  const packSum = createHash('sha1').update(packBody).digest();
  const pack = Buffer.concat([packBody, packSum]);

  rows.sort((a, b) => Buffer.compare(a.oid, b.oid));
  const fanout = Buffer.alloc(1024);
  for (let b = 0; b < 256; b++) fanout.writeUInt32BE(rows.filter((r) => r.oid[0]! <= b).length, b * 4);
  const crcs = Buffer.alloc(rows.length * 4);
  const offs = Buffer.alloc(rows.length * 4);
  rows.forEach((r, i) => {
    crcs.writeUInt32BE(r.crc, i * 4);
    offs.writeUInt32BE(r.offset, i * 4);
  });
  const idxBody = Buffer.concat([Buffer.from([0xff, 0x74, 0x4f, 0x63, 0, 0, 0, 2]), fanout, ...rows.map((r) => r.oid), crcs, offs, packSum]);
  const idx = Buffer.concat([idxBody, createHash('sha1').update(idxBody).digest()]);
  const base = path.join(dir, `pack-${packSum.toString('hex')}`);
  fs.writeFileSync(`${base}.pack`, pack);
  fs.writeFileSync(`${base}.idx`, idx);
  return base;
}

/** A git delta turning `base` into `target`: one copy of their common prefix, then inserts. */
export function makeDelta(base: Buffer, target: Buffer): Buffer {
  const varint = (n: number): number[] => {
    const out: number[] = [];
    do {
      let b = n & 0x7f;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      out.push(b);
    } while (n > 0);
    return out;
  };
  const ops: number[] = [...varint(base.length), ...varint(target.length)];
  let pos = 0;
  while (pos < 0xffff && pos < base.length && pos < target.length && base[pos] === target[pos]) pos++;
  if (pos > 0) ops.push(0x80 | 0x10 | 0x20, pos & 0xff, (pos >> 8) & 0xff); // offset 0, 2 size bytes
  while (pos < target.length) {
    const n = Math.min(127, target.length - pos);
    ops.push(n, ...target.subarray(pos, pos + n));
    pos += n;
  }
  return Buffer.from(ops);
}

/** Writes a loose object file with arbitrary (possibly lying) inflated bytes. */
export function writeLooseRaw(gitDir: string, oid: string, inflated: Buffer, level = 6): string {
  const dir = path.join(gitDir, 'objects', oid.slice(0, 2));
  fs.mkdirSync(dir, { recursive: true });
  const p = path.join(dir, oid.slice(2));
  fs.rmSync(p, { force: true });
  fs.writeFileSync(p, deflateSync(inflated, { level }));
  return p;
}

/**
 * How the chunking parameters trade dedup against chunk count: cuts images/a.raw and
 * images/b.raw with several parameter sets and reports the bytes of b's chunks that a does not
 * have (before compression), the number of chunks, and the cutting speed.
 * Usage: node dist/bench/chunk-params.js [DATASET_DIR]   (default /var/tmp/gitfs-bench)
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Chunker, type ChunkerParams } from '../src/objects/chunker.js';
import { chunkFile } from '../src/objects/chunk-stream.js';
import { formatWithChunkSize } from '../src/repo/repo-format.js';

/** The parameter sets `gitfs init --chunk-size` makes (min a quarter, max eight times the average); 8 KiB is the default. */
const SETS: ChunkerParams[] = [4096, 8192, 16384, 65536].map((avg) => formatWithChunkSize(avg).chunker);

async function chunkIds(path: string, chunker: Chunker): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  const fh = await open(path, 'r');
  try {
    for await (const runs of chunkFile(fh, chunker)) {
      for (const { block, offset, lengths } of runs) {
        let at = offset;
        for (const n of lengths) {
          ids.set(createHash('sha1').update(block.subarray(at, at + n)).digest('base64'), n);
          at += n;
        }
      }
    }
  } finally {
    await fh.close();
  }
  return ids;
}

const base = process.argv[2] ?? '/var/tmp/gitfs-bench';
const MiB = 1 << 20;
process.stdout.write('| min / avg / max | chunks in a | distinct bytes of a | bytes b adds | cut + hash MB/s |\n|---|---|---|---|---|\n');
for (const params of SETS) {
  const chunker = new Chunker(params);
  const started = performance.now();
  const a = await chunkIds(join(base, 'images/a.raw'), chunker);
  const seconds = (performance.now() - started) / 1000;
  const b = await chunkIds(join(base, 'images/b.raw'), chunker);
  let aBytes = 0;
  for (const n of a.values()) aBytes += n;
  let added = 0;
  for (const [id, n] of b) if (!a.has(id)) added += n;
  const label = `${params.minSize / 1024}K / ${params.avgSize / 1024}K / ${params.maxSize / 1024}K`;
  process.stdout.write(`| ${label} | ${a.size} | ${(aBytes / MiB).toFixed(1)} MiB | ${(added / MiB).toFixed(1)} MiB | ${(1536 / seconds).toFixed(0)} |\n`);
}

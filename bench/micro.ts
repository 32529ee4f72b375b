/**
 * Per-byte costs of the commit pipeline in isolation, on 256 MiB of incompressible data held in
 * memory (no I/O): cutting, the chunk id hash (per chunk with a hash object, per chunk in one
 * call, and the whole buffer at once: the difference is the cost per call), Adler-32, CRC-32, the
 * entropy sample, deflate level 0. Usage (after `make build`): node dist/bench/micro.js
 */
import { createHash, hash, randomBytes } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import { Chunker } from '../src/objects/chunker.js';
import { sampleEntropy } from '../src/objects/compress.js';
import { adler32 } from '../src/objects/kernels.js';
import { objectIdBytes } from '../src/objects/oid.js';
import { DEFAULT_FORMAT } from '../src/repo/repo-format.js';

const data = randomBytes(256 << 20);
const CHUNK = DEFAULT_FORMAT.chunker.avgSize;
const chunker = new Chunker(DEFAULT_FORMAT.chunker);

function perChunk(work: (piece: Buffer) => void): () => void {
  return () => {
    for (let at = 0; at < data.length; at += CHUNK) work(data.subarray(at, at + CHUNK));
  };
}

const cases: Array<[string, () => void]> = [
  ['cut (gear CDC)', () => void chunker.cutAll(data)],
  ['SHA-1 per 8 KiB chunk', perChunk((p) => void createHash('sha1').update(p).digest())],
  ['SHA-1 per 8 KiB chunk, one-shot (crypto.hash)', perChunk((p) => void hash('sha1', p, 'buffer'))],
  ['git blob id per 8 KiB chunk: header and copy, one call (objectIdBytes)', perChunk((p) => void objectIdBytes('blob', p))],
  ['SHA-1 of the whole 256 MiB, one call', () => void hash('sha1', data, 'buffer')],
  ['Adler-32 per chunk', perChunk((p) => void adler32(p))],
  ['CRC-32 per chunk', perChunk((p) => void crc32(p))],
  ['entropy sample per chunk', perChunk((p) => void sampleEntropy(p))],
  ['deflate level 0 per chunk', perChunk((p) => void deflateSync(p, { level: 0 }))],
];

process.stdout.write('| work (256 MiB, in memory) | MB/s, best of 3 |\n|---|---:|\n');
for (const [name, run] of cases) {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    run();
    best = Math.min(best, performance.now() - t);
  }
  process.stdout.write(`| ${name} | ${((data.length / 1e6) / (best / 1000)).toFixed(0)} |\n`);
}

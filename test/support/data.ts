/** Deterministic test data: an AES-CTR-like keystream made of SHA-256 blocks (seeded, reproducible). */
import { createHash } from 'node:crypto';

export function pseudoRandomBytes(length: number, seed: string): Buffer {
  const out = Buffer.allocUnsafe(length);
  let counter = 0;
  for (let at = 0; at < length; at += 32) {
    const block = createHash('sha256').update(`${seed}:${counter++}`).digest();
    block.copy(out, at, 0, Math.min(32, length - at));
  }
  return out;
}

/** Text-like data that compresses: words drawn from a small vocabulary. */
export function compressibleBytes(length: number, seed: string): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'kernel', 'image', 'chunk', 'tree', 'blob', 'commit', '\n'];
  const noise = pseudoRandomBytes(length, seed);
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < length; i++) {
    const w = words[(noise[i % length] as number) % words.length] as string;
    parts.push(w, ' ');
    size += w.length + 1;
  }
  return Buffer.from(parts.join('').slice(0, length));
}

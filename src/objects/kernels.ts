/**
 * The byte loops of ingest, in WebAssembly (src/objects/kernels.wat): the gear hash that finds
 * chunk boundaries and Adler-32 (16 bytes a step). `node dist/bench/micro.js` measures them in
 * place; BENCHMARKS.md compares its figures with the TypeScript loops they replaced. One instance
 * per thread, created on first use; the bytes are copied into its memory, which grows as needed.
 */
import { readFileSync } from 'node:fs';

/** The part of the WebAssembly global used here (its types come with the DOM library only). */
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Exports {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  cut(p: number, normal: number, limit: number, strict: number, loose: number): number;
  adler32(p: number, n: number, adler: number): number;
}

/** Where the bytes being worked on start in the instance's memory (the gear table lies below). */
const DATA = 1024;
const PAGE = 65536;
/** Adler-32 takes longer inputs through memory in slices of this size. */
const ADLER_SLICE = 1 << 20;

let instance: Exports | undefined;
let bytes = new Uint8Array(0);
let gearLoaded: Int32Array | undefined;

function kernels(): Exports {
  if (instance === undefined) {
    const module = new wasm.Module(readFileSync(new URL('./kernels.wasm', import.meta.url)));
    instance = new wasm.Instance(module, {}).exports as Exports;
    bytes = new Uint8Array(instance.memory.buffer);
  }
  return instance;
}

/** The instance's memory, with room for `length` bytes at DATA. */
function room(length: number): Exports {
  const k = kernels();
  const need = DATA + length;
  if (k.memory.buffer.byteLength < need) {
    k.memory.grow(Math.ceil((need - k.memory.buffer.byteLength) / PAGE));
    bytes = new Uint8Array(k.memory.buffer);
  }
  return k;
}

/** Adler-32 of `data`, continuing from `adler` (1 starts a stream), as zlib computes it. */
export function adler32(data: Uint8Array, adler = 1): number {
  const k = room(Math.min(data.length, ADLER_SLICE));
  let value = adler;
  for (let at = 0; at < data.length; at += ADLER_SLICE) {
    const slice = data.subarray(at, at + ADLER_SLICE);
    bytes.set(slice, DATA);
    value = k.adler32(DATA, slice.length, value);
  }
  return value >>> 0;
}

export interface GearCut {
  /** The gear table: one 32-bit value per byte value. */
  readonly gear: Int32Array;
  readonly minSize: number;
  readonly avgSize: number;
  readonly maxSize: number;
  readonly strict: number;
  readonly loose: number;
}

/**
 * Cuts `buf[start, end)` into consecutive chunks from `start` until a chunk starts at or after
 * `until` or more bytes are needed to decide (the same rule as one cut at a time: a chunk ends
 * where the hash's masked bits are zero, at maxSize, or, with `eof`, at `end`). Pushes the
 * lengths and returns where the next chunk starts.
 */
export function gearCuts(c: GearCut, buf: Uint8Array, start: number, end: number, eof: boolean, until: number, lengths: number[]): number {
  const k = room(end - start);
  if (gearLoaded !== c.gear) {
    new Int32Array(k.memory.buffer, 0, 256).set(c.gear);
    gearLoaded = c.gear;
  }
  bytes.set(buf.subarray(start, end), DATA);
  const base = DATA - start;
  let at = start;
  while (at < until) {
    const available = end - at;
    let n: number;
    if (available <= c.minSize) {
      if (!eof) break;
      n = available;
    } else {
      const limit = at + Math.min(available, c.maxSize);
      const found = k.cut(base + at + c.minSize, base + at + Math.min(available, c.avgSize), base + limit, c.strict, c.loose);
      if (found >= 0) n = found - base - at;
      else if (limit - at === c.maxSize || eof) n = limit - at;
      else break;
    }
    lengths.push(n);
    at += n;
  }
  return at;
}

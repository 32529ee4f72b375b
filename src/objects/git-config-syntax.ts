/**
 * git's config syntax, read byte by byte the way git's own parser does (config.c:
 * git_parse_source, get_base_var, get_extended_base_var, get_value, parse_value), so that what
 * it makes of a file is what git makes of it, odd input included. Used for the repository's own
 * config and for `.gitmodules`, whose entries git fsck checks (special-file-check.ts).
 *
 * Entries are handed over as they are read; at a syntax error the reading stops and `ok` is
 * false, as in git, which has by then acted on the entries before it.
 *
 * One quirk matters for `.gitmodules`: git reads a blob from memory through a plain `char`. Where
 * `char` is signed (x86), a byte 0xFF sets git's end-of-file flag (what follows on that line is
 * still read; the next newline outside a value ends the reading), and a UTF-8 byte order mark is
 * never skipped: `signedChar: true` reads that way. Otherwise (a file, or a blob where `char` is
 * unsigned: arm64) 0xFF is just a byte, and a byte order mark at the start is skipped (a partial
 * one is an error).
 */

const EOF = -1;
const LF = 0x0a;
const CR = 0x0d;

/** git's isspace (sane_ctype): tab, newline, carriage return, space; not \v or \f. */
const isSpace = (c: number): boolean => c === 0x09 || c === LF || c === CR || c === 0x20;
const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isKeyChar = (c: number): boolean => isAlpha(c) || (c >= 0x30 && c <= 0x39) || c === 0x2d;
const lower = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 32 : c);

export interface ConfigEntry {
  /** `section.key` or `section.subsection.key`: section and key lower-cased, the subsection as written. */
  readonly name: Buffer;
  /** The value, or null for a key without `=` (git's boolean true). */
  readonly value: Buffer | null;
  /** The line it ends on, from 1. */
  readonly line: number;
}

export interface ConfigScan {
  readonly ok: boolean;
  /** Where the syntax error is (a line number from 1), when not ok. */
  readonly errorLine: number;
}

class Source {
  private pos = 0;
  /** Sticky, as git's cf->eof: set by the end of input, or by a byte that reads as EOF. */
  eof = false;
  line = 1;

  constructor(
    private readonly buf: Uint8Array,
    private readonly signed: boolean,
  ) {}

  private raw(): number {
    if (this.pos >= this.buf.length) return EOF;
    const b = this.buf[this.pos++] as number;
    return this.signed && b >= 0x80 ? b - 256 : b;
  }

  /** git's get_next_char: CR LF reads as LF, the end as LF with `eof` set. */
  next(): number {
    let c = this.raw();
    if (c === CR) {
      const d = this.raw();
      if (d === LF) c = LF;
      else if (d !== EOF) this.pos--;
    }
    if (c === LF) this.line++;
    if (c === EOF) {
      this.eof = true;
      this.line++;
      return LF;
    }
    return c;
  }
}

class Bytes {
  private b: number[] = [];
  get length(): number {
    return this.b.length;
  }
  push(c: number): void {
    this.b.push(c & 0xff);
  }
  truncate(n: number): void {
    this.b.length = n;
  }
  toBuffer(): Buffer {
    return Buffer.from(this.b);
  }
}

/** Reads `buf` as git reads a config, calling `onEntry` for every entry until the end or a syntax error. */
export function scanGitConfig(buf: Uint8Array, onEntry: (e: ConfigEntry) => void, { signedChar = false } = {}): ConfigScan {
  const bom = signedChar ? 0 : byteOrderMark(buf);
  if (bom < 0) return { ok: false, errorLine: 1 };
  const src = new Source(buf.subarray(bom), signedChar);
  const name = new Bytes();
  let baseLength = 0;
  let comment = false;
  for (;;) {
    const c = src.next();
    if (c === LF) {
      if (src.eof) return { ok: true, errorLine: 0 };
      comment = false;
      continue;
    }
    if (comment || isSpace(c)) continue;
    if (c === 0x23 || c === 0x3b) {
      comment = true;
      continue;
    }
    if (c === 0x5b) {
      name.truncate(0);
      if (!sectionName(src, name) || name.length < 1) break;
      name.push(0x2e);
      baseLength = name.length;
      continue;
    }
    if (!isAlpha(c)) break;
    name.truncate(baseLength);
    name.push(lower(c));
    if (!entry(src, name, onEntry)) break;
  }
  return { ok: false, errorLine: src.line };
}

const UTF8_BOM = [0xef, 0xbb, 0xbf];

/** How many bytes a UTF-8 byte order mark at the start takes (0: none), or -1 for a partial one. */
function byteOrderMark(buf: Uint8Array): number {
  let n = 0;
  while (n < UTF8_BOM.length && buf[n] === UTF8_BOM[n]) n++;
  return n === 0 || n === UTF8_BOM.length ? n : -1;
}

/** `[section]`, `[section.sub]` or `[section "sub"]` after its `[` (get_base_var). */
function sectionName(src: Source, name: Bytes): boolean {
  for (;;) {
    const c = src.next();
    if (src.eof) return false;
    if (c === 0x5d) return true;
    if (isSpace(c)) return quotedSubsection(src, name, c);
    if (!isKeyChar(c) && c !== 0x2e) return false;
    name.push(lower(c));
  }
}

/** The ` "sub"]` of a section header (get_extended_base_var): any byte but a newline, `\` escaping the next. */
function quotedSubsection(src: Source, name: Bytes, first: number): boolean {
  let c = first;
  do {
    if (c === LF) return false;
    c = src.next();
  } while (isSpace(c));
  if (c !== 0x22) return false;
  name.push(0x2e);
  for (;;) {
    let d = src.next();
    if (d === LF) return false;
    if (d === 0x22) break;
    if (d === 0x5c) {
      d = src.next();
      if (d === LF) return false;
    }
    name.push(d);
  }
  return src.next() === 0x5d;
}

/** The rest of a key, then ` = value` or nothing (get_value). */
function entry(src: Source, name: Bytes, onEntry: (e: ConfigEntry) => void): boolean {
  let c: number;
  for (;;) {
    c = src.next();
    if (src.eof || !isKeyChar(c)) break;
    name.push(lower(c));
  }
  while (c === 0x20 || c === 0x09) c = src.next();
  let value: Buffer | null = null;
  if (c !== LF) {
    if (c !== 0x3d) return false;
    value = entryValue(src);
    if (value === null) return false;
  }
  onEntry({ name: name.toBuffer(), value, line: src.line - 1 });
  return true;
}

/** A value up to its line's end (parse_value): quotes, escapes, `\` newline, comments, inner spaces kept as one. */
function entryValue(src: Source): Buffer | null {
  const value = new Bytes();
  let quote = false;
  let comment = false;
  let spaces = 0;
  for (;;) {
    let c = src.next();
    if (c === LF) return quote ? null : value.toBuffer();
    if (comment) continue;
    if (isSpace(c) && !quote) {
      if (value.length > 0) spaces++;
      continue;
    }
    if (!quote && (c === 0x3b || c === 0x23)) {
      comment = true;
      continue;
    }
    for (; spaces > 0; spaces--) value.push(0x20);
    if (c === 0x5c) {
      c = src.next();
      if (c === LF) continue;
      const escaped = ESCAPES.get(c);
      if (escaped === undefined) return null;
      value.push(escaped);
      continue;
    }
    if (c === 0x22) {
      quote = !quote;
      continue;
    }
    value.push(c);
  }
}

/** `\t`, `\b`, `\n`, `\\`, `\"`; any other escape is an error. */
const ESCAPES = new Map<number, number>([
  [0x74, 0x09],
  [0x62, 0x08],
  [0x6e, LF],
  [0x5c, 0x5c],
  [0x22, 0x22],
]);

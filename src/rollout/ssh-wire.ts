/**
 * The SSH wire encoding (RFC 4251 §5) that OpenSSH keys and SSHSIG signatures are made of:
 * `uint32` big-endian, and `string` = uint32 length + bytes. Plus strict base64 and the
 * `-----BEGIN …-----` armor OpenSSH wraps binary blobs in (70-character lines).
 *
 * The reader never reads past its buffer and takes a `fail` callback, so each caller turns a
 * malformed blob into its own GitfsError code (a bad key is not a bad signature).
 */
import type { GitfsError } from '../errors.js';

export function sshUint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** An SSH `string`: uint32 length, then the bytes (text as UTF-8). */
export function sshString(value: Uint8Array | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  return Buffer.concat([sshUint32(bytes.length), bytes]);
}

export class SshReader {
  private at = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly fail: (why: string) => GitfsError,
  ) {}

  get remaining(): number {
    return this.buf.length - this.at;
  }

  bytes(n: number, what: string): Buffer {
    if (n > this.remaining) throw this.fail(`${what} runs past the end`);
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  uint32(what: string): number {
    return this.bytes(4, what).readUInt32BE(0);
  }

  /** A `string` of at most `max` bytes (checked before anything is sliced). */
  string(what: string, max: number): Buffer {
    const n = this.uint32(`${what} length`);
    if (n > max) throw this.fail(`${what} is ${n} bytes, more than ${max}`);
    return this.bytes(n, what);
  }

  /** A `string` that must be exactly `expected` (a type name, a magic value). */
  expectString(what: string, expected: string): void {
    const got = this.string(what, expected.length + 64);
    if (!got.equals(Buffer.from(expected, 'utf8'))) throw this.fail(`${what} is ${JSON.stringify(got.toString('latin1').slice(0, 40))}, not ${JSON.stringify(expected)}`);
  }

  /** Refuses trailing bytes: every structure here has exactly one encoding. */
  end(what: string): void {
    if (this.remaining !== 0) throw this.fail(`${this.remaining} bytes after the end of ${what}`);
  }
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Canonical base64 only (Node's decoder skips junk silently): undefined for anything else. */
export function strictBase64(text: string): Buffer | undefined {
  if (!BASE64_RE.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** OpenSSH's armor: BEGIN line, base64 in lines of 70 characters, END line, final newline. */
export function armor(label: string, blob: Uint8Array): string {
  const b64 = Buffer.from(blob).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 70) lines.push(b64.slice(i, i + 70));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * The blob inside `text` armored with `label`, or a reason it is not one. Strict: LF line ends,
 * one optional final newline, nothing around the markers, base64 lines of 1 to 76 characters
 * (OpenSSH writes 70) that join into canonical base64.
 */
export function dearmor(label: string, text: string, maxChars: number): Buffer | string {
  if (text.length > maxChars) return `longer than ${maxChars} characters`;
  const lines = (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
  if (lines[0] !== `-----BEGIN ${label}-----`) return `does not start with "-----BEGIN ${label}-----"`;
  if (lines.length < 3 || lines[lines.length - 1] !== `-----END ${label}-----`) return `does not end with "-----END ${label}-----"`;
  const body = lines.slice(1, -1);
  if (body.some((l) => l.length === 0 || l.length > 76)) return 'has an empty or overlong base64 line';
  const blob = strictBase64(body.join(''));
  return blob ?? 'is not canonical base64';
}

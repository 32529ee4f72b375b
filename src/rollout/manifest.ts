/**
 * The release manifest: `gitfs-release.json` at the root of a release commit's tree. It says
 * what the release is (kind, version), where its payload is in the tree, and what the payload
 * must hash to, so a node checks the bytes it is about to apply before it applies them.
 *
 *   { "format": 2, "kind": "kernel" | "site", "channel": "kernel/stable", "version": "6.6.12-3",
 *     "payload": "vmlinuz", "sha256": "<64 hex>", "size": <bytes>,
 *     "cmdline": "console=ttyS0" (kernel only, optional), "created": "2024-05-01T12:00:00Z" }
 *
 * kernel: `payload` is the image file; `sha256` and `size` are of its bytes.
 * site: `payload` is a directory; `sha256` is of its canonical listing (siteListing below) and
 * `size` is the sum of its entries' sizes.
 * `channel` is the branch the release was published to: the signature covers it, so a signed
 * release copied onto another channel's branch is refused there (checkChannel).
 *
 * A manifest has one byte form: renderManifest writes the keys in the order above, two-space
 * indented, with a final newline, and parseManifest refuses any other form (duplicate keys,
 * other order, other spacing or escapes), unless asked to read a hand-written one. Unknown keys
 * are refused: a newer format is a new `format` number. Pure; errors are GITFS_BAD_MANIFEST.
 */
import { createHash } from 'node:crypto';
import { isBranchName, type BranchName } from '../branches/ref-name.js';
import { ErrorCodes, GitfsError } from '../errors.js';

export const MANIFEST_FILE = 'gitfs-release.json';
// Format 1 had no `channel`; its releases are refused (they could be replayed on any channel).
export const MANIFEST_FORMAT = 2;
export const MAX_MANIFEST_BYTES = 16 * 1024;
export const MAX_CMDLINE = 4096;
export const MAX_PAYLOAD_PATH = 4096;

export type ReleaseKind = 'kernel' | 'site';

export interface ReleaseManifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly kind: ReleaseKind;
  readonly channel: BranchName;
  readonly version: string;
  readonly payload: string;
  readonly sha256: string;
  readonly size: number;
  readonly cmdline?: string;
  readonly created: string;
}

const KEYS = ['format', 'kind', 'channel', 'version', 'payload', 'sha256', 'size', 'cmdline', 'created'] as const;

function bad(message: string, key?: string): GitfsError {
  return new GitfsError(ErrorCodes.BAD_MANIFEST, `${MANIFEST_FILE}: ${message}`, key === undefined ? {} : { key });
}

// The kernel hooks' rule (kernel-images/README.md), at most 64: a version becomes a file name,
// so it must not be "." or "..", nor start like an option.
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/;

/** 1-64 characters of [A-Za-z0-9._+~-], the first a letter or digit: safe as a file name, a log word, a shell word. */
export function isReleaseVersion(s: unknown): s is string {
  return typeof s === 'string' && VERSION_RE.test(s);
}

/**
 * Why `p` is not a relative path inside a tree, or undefined: `/`-separated, no empty, `.`,
 * `..` or `.git` components, no NUL or line breaks, at most 4096 characters.
 */
export function treePathProblem(p: string): string | undefined {
  if (p.length === 0 || p.length > MAX_PAYLOAD_PATH) return `must be 1-${MAX_PAYLOAD_PATH} characters`;
  if (/[\0\n\r]/.test(p)) return 'must not contain NUL or line breaks';
  for (const c of p.split('/')) {
    if (c === '' || c === '.' || c === '..' || c.toLowerCase() === '.git') return 'must be relative, without empty, ".", ".." or ".git" components';
  }
  return undefined;
}

const CMDLINE_RE = /^[A-Za-z0-9 ._,:=/+@%-]*$/;

// YYYY-MM-DDTHH:MM:SS with optional milliseconds, UTC only: one spelling per instant, sortable.
const CREATED_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{3})?Z$/;

function isCreated(s: unknown): boolean {
  if (typeof s !== 'string') return false;
  const m = CREATED_RE.exec(s);
  if (m === null) return false;
  const t = Date.parse(s);
  // Date.parse accepts Feb 30 and rolls over; the round trip refuses it.
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 19) === s.slice(0, 19);
}

/** Checks a value parsed from JSON (or built by a caller) and returns it as a manifest. */
export function checkManifest(value: unknown): ReleaseManifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('must be a JSON object');
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) if (!(KEYS as readonly string[]).includes(key)) throw bad(`unknown key ${JSON.stringify(key.slice(0, 40))}`, key);
  const need = (key: string, ok: boolean, what: string): void => {
    if (!Object.hasOwn(v, key)) throw bad(`${key} is missing`, key);
    if (!ok) throw bad(`${key} must be ${what}, not ${JSON.stringify(v[key])?.slice(0, 80)}`, key);
  };
  need('format', v['format'] === MANIFEST_FORMAT, `${MANIFEST_FORMAT} (this build reads format ${MANIFEST_FORMAT} only)`);
  need('kind', v['kind'] === 'kernel' || v['kind'] === 'site', '"kernel" or "site"');
  need('channel', typeof v['channel'] === 'string' && isBranchName(v['channel']), 'a branch name');
  need('version', isReleaseVersion(v['version']), '1-64 characters of [A-Za-z0-9._+~-] starting with a letter or digit');
  const payload = v['payload'];
  const pathProblem = typeof payload === 'string' ? treePathProblem(payload) : 'must be a string';
  need('payload', pathProblem === undefined && payload !== MANIFEST_FILE, `a path inside the tree other than ${MANIFEST_FILE} (it ${pathProblem ?? 'names the manifest'})`);
  need('sha256', typeof v['sha256'] === 'string' && /^[0-9a-f]{64}$/.test(v['sha256']), '64 lowercase hex digits');
  const kernel = v['kind'] === 'kernel';
  const size = v['size'];
  need('size', Number.isSafeInteger(size) && (size as number) >= (kernel ? 1 : 0), kernel ? 'a positive integer (bytes)' : 'a non-negative integer (bytes)');
  if (Object.hasOwn(v, 'cmdline')) {
    const c = v['cmdline'];
    if (!kernel) throw bad('cmdline is for kernel releases only', 'cmdline');
    // The kernel hooks' character set: nothing that needs quoting in a boot loader entry, no
    // second line. Refused here, a bad cmdline fails verification instead of every node's apply.
    if (typeof c !== 'string' || c.length > MAX_CMDLINE || !CMDLINE_RE.test(c)) throw bad(`cmdline must be at most ${MAX_CMDLINE} characters of letters, digits, space and ._,:=/+@%-`, 'cmdline');
  }
  need('created', isCreated(v['created']), 'a UTC time like 2024-05-01T12:00:00Z');
  const m: ReleaseManifest = {
    format: MANIFEST_FORMAT,
    kind: v['kind'] as ReleaseKind,
    channel: v['channel'] as BranchName,
    version: v['version'] as string,
    payload: payload as string,
    sha256: v['sha256'] as string,
    size: size as number,
    ...(Object.hasOwn(v, 'cmdline') ? { cmdline: v['cmdline'] as string } : {}),
    created: v['created'] as string,
  };
  return m;
}

/** The canonical bytes: keys in the documented order, two-space indent, final newline. */
export function renderManifest(manifest: ReleaseManifest): Buffer {
  const m = checkManifest(manifest);
  const ordered: Record<string, unknown> = {};
  for (const key of KEYS) if (m[key] !== undefined) ordered[key] = m[key];
  return Buffer.from(`${JSON.stringify(ordered, null, 2)}\n`, 'utf8');
}

/**
 * Reads `gitfs-release.json`. By default the bytes must be exactly the canonical form (what
 * renderManifest writes); `{ canonical: false }` reads any JSON spelling, for a hand-written
 * manifest that the release tooling then renders.
 */
export function parseManifest(bytes: Uint8Array, options: { canonical?: boolean } = {}): ReleaseManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) throw bad(`is larger than ${MAX_MANIFEST_BYTES} bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw bad('is not UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad('is not JSON');
  }
  const m = checkManifest(value);
  if (options.canonical !== false && !renderManifest(m).equals(Buffer.from(bytes))) throw bad('is not in canonical form (keys in order, two-space indent, final newline, no duplicates)');
  return m;
}

export interface SiteEntry {
  /** Relative to the site directory, `/`-separated. */
  readonly path: string;
  /** Git's modes: a file, an executable file, a symlink (whose content is its target). */
  readonly mode: '100644' | '100755' | '120000';
  /** SHA-256 of the content (of the target, for a symlink), lowercase hex. */
  readonly sha256: string;
  readonly size: number;
}

/**
 * The canonical listing of a site directory: one line `<mode> <sha256> <path>\n` per file and
 * symlink, sorted by the UTF-8 bytes of the path. Directories are not listed (they are implied
 * by the paths; an empty directory is not part of a site). The manifest's `sha256` is the
 * SHA-256 of `text` (returned as `sha256`), its `size` is `size`. Throws GITFS_BAD_MANIFEST for a
 * bad or repeated path.
 */
export function siteListing(entries: readonly SiteEntry[]): { text: Buffer; sha256: string; size: number } {
  const rows: Array<{ key: Buffer; line: Buffer }> = [];
  let size = 0;
  for (const e of entries) {
    const problem = treePathProblem(e.path);
    if (problem !== undefined) throw bad(`site path ${JSON.stringify(e.path.slice(0, 80))} ${problem}`);
    if (e.mode !== '100644' && e.mode !== '100755' && e.mode !== '120000') throw bad(`site entry ${e.path} has mode ${String(e.mode)}`);
    if (!/^[0-9a-f]{64}$/.test(e.sha256) || !Number.isSafeInteger(e.size) || e.size < 0) throw bad(`site entry ${e.path} has a bad sha256 or size`);
    size += e.size;
    rows.push({ key: Buffer.from(e.path, 'utf8'), line: Buffer.from(`${e.mode} ${e.sha256} ${e.path}\n`, 'utf8') });
  }
  if (!Number.isSafeInteger(size)) throw bad('the site is too large');
  rows.sort((a, b) => Buffer.compare(a.key, b.key));
  rows.forEach((row, i) => {
    if (i > 0 && row.key.equals((rows[i - 1] as { key: Buffer }).key)) throw bad(`site path ${row.key.toString('utf8').slice(0, 80)} is listed twice`);
  });
  const text = Buffer.concat(rows.map((r) => r.line));
  return { text, sha256: createHash('sha256').update(text).digest('hex'), size };
}

/** Refuses a release published to another channel than `channel` (GITFS_WRONG_CHANNEL). */
export function checkChannel(manifest: ReleaseManifest, channel: BranchName): void {
  if (manifest.channel !== channel) {
    throw new GitfsError(ErrorCodes.WRONG_CHANNEL, `${manifest.kind} ${manifest.version} was published to ${manifest.channel}, not ${channel}`, { published: manifest.channel, channel });
  }
}

/** Refuses a payload whose measured size or SHA-256 differs from the manifest (GITFS_PAYLOAD_MISMATCH). */
export function checkPayload(manifest: ReleaseManifest, measured: { readonly sha256: string; readonly size: number }): void {
  if (measured.size !== manifest.size || measured.sha256 !== manifest.sha256) {
    throw new GitfsError(ErrorCodes.PAYLOAD_MISMATCH, `${manifest.kind} payload ${manifest.payload} is ${measured.size} bytes with SHA-256 ${measured.sha256}; the manifest says ${manifest.size} bytes with ${manifest.sha256}`, {
      expected: { size: manifest.size, sha256: manifest.sha256 },
      measured: { size: measured.size, sha256: measured.sha256 },
    });
  }
}

/**
 * The release manifest: canonical rendering and strict parsing (every field, every bound, the
 * one byte form), the site listing (exact text, byte order, refusals) and the payload check.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BranchName } from '../../src/branches/ref-name.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { checkChannel, checkManifest, checkPayload, isReleaseVersion, parseManifest, renderManifest, siteListing, treePathProblem, type ReleaseManifest, type SiteEntry } from '../../src/rollout/manifest.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const KERNEL: ReleaseManifest = { format: 2, kind: 'kernel', channel: 'kernel/stable' as BranchName, version: '6.6.12-gitfs.3', payload: 'boot/vmlinuz', sha256: sha('image'), size: 12_345_678, cmdline: 'console=ttyS0 root=/dev/vda1 quiet', created: '2024-05-01T12:00:00Z' };
const SITE: ReleaseManifest = { format: 2, kind: 'site', channel: 'site/prod' as BranchName, version: '2024.05.01+1', payload: 'public', sha256: sha('listing'), size: 0, created: '2024-05-01T12:00:00.123Z' };

const badManifest = (key?: string) => (e: unknown): boolean => isGitfsError(e, ErrorCodes.BAD_MANIFEST) && (key === undefined || e.data['key'] === key);
const bytes = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

describe('rollout/manifest', () => {
  it('renders canonical JSON in the documented key order and parses it back', () => {
    const text = renderManifest(KERNEL).toString('utf8');
    assert.equal(
      text,
      `{\n  "format": 2,\n  "kind": "kernel",\n  "channel": "kernel/stable",\n  "version": "6.6.12-gitfs.3",\n  "payload": "boot/vmlinuz",\n  "sha256": "${sha('image')}",\n  "size": 12345678,\n  "cmdline": "console=ttyS0 root=/dev/vda1 quiet",\n  "created": "2024-05-01T12:00:00Z"\n}\n`,
    );
    assert.deepEqual(parseManifest(Buffer.from(text)), KERNEL);
    assert.deepEqual(parseManifest(renderManifest(SITE)), SITE);
    assert.ok(!renderManifest(SITE).toString().includes('cmdline'));
    // Key order in the input object does not matter to the rendering.
    const shuffled = Object.fromEntries(Object.entries(KERNEL).reverse()) as unknown as ReleaseManifest;
    assert.ok(renderManifest(shuffled).equals(renderManifest(KERNEL)));
    const unicode = { ...SITE, payload: 'sites/café' };
    assert.deepEqual(parseManifest(renderManifest(unicode)), unicode);
  });

  it('refuses any other spelling unless asked to read a hand-written one', () => {
    const canonical = renderManifest(KERNEL).toString('utf8');
    const spellings: Record<string, string> = {
      compact: JSON.stringify(KERNEL),
      'other key order': JSON.stringify(Object.fromEntries(Object.entries(KERNEL).reverse()), null, 2) + '\n',
      'no final newline': canonical.trimEnd(),
      'CRLF': canonical.replace(/\n/g, '\r\n'),
      'escaped character': canonical.replace('"kernel"', '"\\u006bernel"'),
      'number spelled 2.0': canonical.replace('"format": 2', '"format": 2.0'),
      'duplicate key (last wins in JSON.parse)': canonical.replace('"format": 2,', '"format": 2,\n  "version": "0.0.1",'),
    };
    for (const [name, text] of Object.entries(spellings)) {
      assert.throws(() => parseManifest(Buffer.from(text)), badManifest(), name);
      const lenient = parseManifest(Buffer.from(text), { canonical: false });
      assert.equal(lenient.kind, 'kernel', name);
    }
  });

  it('refuses every bad field, naming it', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ format: 1 }, 'format'],
      [{ format: 3 }, 'format'],
      [{ format: '2' }, 'format'],
      [{ channel: '' }, 'channel'],
      [{ channel: 'kernel/../stable' }, 'channel'],
      [{ channel: 'kernel stable' }, 'channel'],
      [{ channel: 7 }, 'channel'],
      [{ kind: 'initrd' }, 'kind'],
      [{ version: '' }, 'version'],
      [{ version: 'v'.repeat(65) }, 'version'],
      [{ version: '1.0 beta' }, 'version'],
      [{ version: '1/2' }, 'version'],
      [{ version: '..' }, 'version'],
      [{ version: '-rf' }, 'version'],
      [{ version: '.hidden' }, 'version'],
      [{ version: 7 }, 'version'],
      [{ payload: '' }, 'payload'],
      [{ payload: '/boot/vmlinuz' }, 'payload'],
      [{ payload: 'boot/../vmlinuz' }, 'payload'],
      [{ payload: 'boot//vmlinuz' }, 'payload'],
      [{ payload: 'boot/' }, 'payload'],
      [{ payload: '.' }, 'payload'],
      [{ payload: '.git/config' }, 'payload'],
      [{ payload: 'a\nb' }, 'payload'],
      [{ payload: 'gitfs-release.json' }, 'payload'],
      [{ payload: 'x'.repeat(4097) }, 'payload'],
      [{ sha256: sha('x').toUpperCase() }, 'sha256'],
      [{ sha256: sha('x').slice(1) }, 'sha256'],
      [{ size: 0 }, 'size'],
      [{ size: -1 }, 'size'],
      [{ size: 1.5 }, 'size'],
      [{ size: 2 ** 53 }, 'size'],
      [{ size: '10' }, 'size'],
      [{ cmdline: 'a\nb' }, 'cmdline'],
      [{ cmdline: 'a\u0000b' }, 'cmdline'],
      [{ cmdline: 'x'.repeat(4097) }, 'cmdline'],
      [{ cmdline: 3 }, 'cmdline'],
      [{ cmdline: 'dyndbg="file x +p"' }, 'cmdline'],
      [{ cmdline: 'a;reboot' }, 'cmdline'],
      [{ cmdline: 'a\tb' }, 'cmdline'],
      [{ created: '2024-05-01 12:00:00Z' }, 'created'],
      [{ created: '2024-05-01T12:00:00+02:00' }, 'created'],
      [{ created: '2024-02-30T12:00:00Z' }, 'created'],
      [{ created: '2024-05-01T24:00:00Z' }, 'created'],
      [{ created: '2024-05-01T12:00:00.1Z' }, 'created'],
      [{ created: 1714564800 }, 'created'],
      [{ extra: true }, 'extra'],
    ];
    for (const [change, key] of cases) {
      const m = { ...KERNEL, ...change };
      assert.throws(() => parseManifest(bytes(m), { canonical: false }), badManifest(key), JSON.stringify(change).slice(0, 80));
      assert.throws(() => renderManifest(m as ReleaseManifest), badManifest(key));
    }
    for (const key of ['format', 'kind', 'channel', 'version', 'payload', 'sha256', 'size', 'created']) {
      const m: Record<string, unknown> = { ...KERNEL };
      delete m[key];
      assert.throws(() => checkManifest(m), badManifest(key), `missing ${key}`);
    }
    assert.throws(() => checkManifest({ ...SITE, cmdline: 'quiet' }), badManifest('cmdline'), 'cmdline is kernel only');
    assert.deepEqual(checkManifest({ ...SITE, size: 0 }).size, 0, 'an empty site is a site');
    assert.equal(checkManifest({ ...KERNEL, cmdline: '' }).cmdline, '');
    assert.equal(checkManifest({ ...KERNEL, version: 'v'.repeat(64) }).version.length, 64);
    assert.equal(checkManifest({ ...KERNEL, created: '2024-02-29T23:59:59Z' }).created, '2024-02-29T23:59:59Z');
  });

  it('refuses what is not a small UTF-8 JSON object', () => {
    const canonical = renderManifest(KERNEL);
    const cases: Record<string, Buffer> = {
      empty: Buffer.alloc(0),
      array: Buffer.from('[]'),
      null: Buffer.from('null'),
      'not JSON': Buffer.from('format: 1'),
      'not UTF-8': Buffer.concat([canonical.subarray(0, 20), Buffer.from([0xff]), canonical.subarray(20)]),
      BOM: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), canonical]),
      huge: Buffer.from(`{"format":2,"pad":"${'x'.repeat(17 * 1024)}"}`),
    };
    for (const [name, b] of Object.entries(cases)) assert.throws(() => parseManifest(b, { canonical: false }), badManifest(), name);
    // JSON.parse makes "__proto__" an own key: refused as unknown, not merged into the prototype.
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify(KERNEL).replace('{', '{"__proto__":{"x":1},')), { canonical: false }), badManifest('__proto__'));
  });

  it('checks versions and tree paths', () => {
    for (const v of ['1', '6.6.12-3', '2024.05.01+build.7', '1.0~rc1', 'A_b']) assert.ok(isReleaseVersion(v), v);
    for (const v of ['', ' 1', '1.0/2', 'é', 'a'.repeat(65), null, '.', '..', '-1', '+1', '~1', '_1']) assert.ok(!isReleaseVersion(v), String(v));
    assert.equal(treePathProblem('a/b/c'), undefined);
    for (const p of ['', '/a', 'a/', 'a//b', './a', 'a/..', '.GIT', 'a\rb', 'a\0b']) assert.notEqual(treePathProblem(p), undefined, JSON.stringify(p));
  });

  describe('siteListing', () => {
    const e = (path: string, content: string, mode: SiteEntry['mode'] = '100644'): SiteEntry => ({ path, mode, sha256: sha(content), size: Buffer.byteLength(content) });

    it('lists files and symlinks by the bytes of their paths, and hashes the text', () => {
      const entries = [e('index.html', '<h1>hi</h1>'), e('a/b.css', 'b{}'), e('a-b.js', 'x'), e('B.txt', 'upper'), e('cgi/run', '#!/bin/sh', '100755'), e('latest', 'a/b.css', '120000'), e('é.txt', 'accent')];
      const listing = siteListing(entries);
      const expected =
        `100644 ${sha('upper')} B.txt\n` +
        `100644 ${sha('x')} a-b.js\n` + // '-' (0x2d) sorts before '/' (0x2f)
        `100644 ${sha('b{}')} a/b.css\n` +
        `100755 ${sha('#!/bin/sh')} cgi/run\n` +
        `100644 ${sha('<h1>hi</h1>')} index.html\n` +
        `120000 ${sha('a/b.css')} latest\n` +
        `100644 ${sha('accent')} é.txt\n`;
      assert.equal(listing.text.toString('utf8'), expected);
      assert.equal(listing.sha256, sha(expected));
      assert.equal(listing.size, 11 + 3 + 1 + 5 + 9 + 7 + 6);
      assert.deepEqual(siteListing([...entries].reverse()), listing, 'input order does not matter');
      assert.deepEqual(siteListing([]), { text: Buffer.alloc(0), sha256: sha(''), size: 0 });
      const m = checkManifest({ ...SITE, sha256: listing.sha256, size: listing.size });
      assert.doesNotThrow(() => checkPayload(m, listing));
    });

    it('refuses bad and repeated paths, modes and hashes', () => {
      const bad = (entries: SiteEntry[]): void => assert.throws(() => siteListing(entries), badManifest(), JSON.stringify(entries).slice(0, 100));
      bad([e('a', '1'), e('a', '2')]);
      bad([e('../a', '1')]);
      bad([e('a\nb', '1')]);
      bad([e('', '1')]);
      bad([{ ...e('a', '1'), mode: '40000' as SiteEntry['mode'] }]);
      bad([{ ...e('a', '1'), mode: '160000' as SiteEntry['mode'] }]);
      bad([{ ...e('a', '1'), sha256: 'x' }]);
      bad([{ ...e('a', '1'), size: -1 }]);
      bad([{ ...e('a', '1'), size: 2 ** 53 }, { ...e('b', '1'), size: 2 ** 52 }]);
    });
  });

  it('is read the same by the kernel hooks: their JSON reader and their version rule', () => {
    const lib = fileURLToPath(new URL('../../../kernel-images/hooks/gitfs-hook-lib.sh', import.meta.url));
    const dir = mkdtempSync(join(tmpdir(), 'gitfs-manifest-'));
    try {
      const file = join(dir, 'gitfs-release.json');
      writeFileSync(file, renderManifest(KERNEL));
      const script = 'source "$1"; for k in sha256 version cmdline kind; do json_string "$2" "$k" || echo "(none)"; done; shift 2; for v in "$@"; do [[ "$v" =~ $VERSION_RE ]] && echo yes || echo no; done';
      const versions = ['1', '6.6.12-3', '1.0~rc1', '..', '-1', '.x', '_1', 'a b', 'v'.repeat(64)];
      const r = spawnSync('bash', ['-c', script, 'bash', lib, file, ...versions], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      assert.deepEqual(lines.slice(0, 4), [KERNEL.sha256, KERNEL.version, KERNEL.cmdline, 'kernel']);
      assert.deepEqual(lines.slice(4), versions.map((v) => (isReleaseVersion(v) ? 'yes' : 'no')), 'the same versions pass both rules');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checks a measured payload against the manifest', () => {
    assert.doesNotThrow(() => checkPayload(KERNEL, { sha256: KERNEL.sha256, size: KERNEL.size }));
    const mismatch = (e: unknown): boolean => isGitfsError(e, ErrorCodes.PAYLOAD_MISMATCH) && (e.data['expected'] as { size: number }).size === KERNEL.size;
    assert.throws(() => checkPayload(KERNEL, { sha256: KERNEL.sha256, size: KERNEL.size + 1 }), mismatch);
    assert.throws(() => checkPayload(KERNEL, { sha256: sha('other'), size: KERNEL.size }), mismatch);
  });

  it('refuses a release found on another channel than the one it was published to', () => {
    assert.doesNotThrow(() => checkChannel(KERNEL, 'kernel/stable' as BranchName));
    const wrong = (e: unknown): boolean => isGitfsError(e, ErrorCodes.WRONG_CHANNEL) && e.data['published'] === 'kernel/stable' && e.data['channel'] === 'kernel/canary';
    assert.throws(() => checkChannel(KERNEL, 'kernel/canary' as BranchName), wrong);
  });
});

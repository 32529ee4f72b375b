/**
 * The site side of rollouts (sites/): the `symlink` hook against a REAL nginx that this suite
 * starts on 127.0.0.1 and a free port, with its own configuration (`daemon off;`, every path in
 * a temporary directory, `root <site root>/current;`, workers as nobody when run as root), and
 * stops in its `after` hook, pass or fail.
 *
 * Releases are directories with a real manifest (the listing of src/rollout/manifest.ts), so the
 * hook's own listing is checked against the project's. What is checked: apply + health of two
 * releases, nginx serving each; a burst of requests during the swap sees only complete v1 or v2
 * pages (never an error, never v1 again once v2 was served); a bad release fails health within
 * the deadline and a rollback serves the good one again; a rollback to nothing removes
 * `current`; refused calls exit non-zero and change nothing.
 *
 * Needs the Debian package `nginx` (installed with apt-get in `before` when missing, as root).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkManifest, renderManifest, siteListing } from '../../src/rollout/manifest.js';
import { siteEntries } from '../../src/rollout/site-files.js';
import { suiteDirs } from '../support/tmp.js';
import { run, show, type Run } from '../support/run.js';

const HOOK = fileURLToPath(new URL('../../../sites/hooks/symlink', import.meta.url));
const NGINX = '/usr/sbin/nginx';
const CHANNEL = 'site/prod';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A port that was free a moment ago on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port (within 500 ms). */
function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('connect', () => done(true));
    socket.on('error', () => done(false));
  });
}

/**
 * The state of a directory tree, to compare before and after a refused call: every entry's
 * path, type, mode, size, mtime, symlink target and file content hash.
 */
function snapshot(dir: string): string {
  const rows: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(dir, path));
      const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : '?';
      const extra = kind === 'l' ? readlinkSync(join(dir, path)) : kind === 'f' ? sha256(readFileSync(join(dir, path))) : '';
      rows.push(`${kind} ${(st.mode & 0o7777).toString(8)} ${st.size} ${st.mtimeMs} ${path} ${extra}`);
      if (kind === 'd') walk(path);
    }
  };
  if (existsSync(dir)) walk('');
  return rows.join('\n');
}

/** A page big enough (about 64 KiB) that a torn or mixed read could not pass for a whole one. */
function page(version: string): string {
  const filler = Array.from({ length: 1000 }, (_, i) => `<p>release ${version}, line ${i}: the quick brown fox.</p>`).join('\n');
  return `<!doctype html>\n<html><head><title>gitfs site ${version}</title><link rel="stylesheet" href="/style.css"></head>\n<body>\n<h1>gitfs site ${version}</h1>\n${filler}\n</body></html>\n`;
}

interface Release {
  readonly version: string;
  readonly dir: string;
  readonly manifest: string;
}

describe('sites: the symlink hook with a real nginx (apply, health, atomic swap, rollback, refusals)', function () {
  this.timeout(60_000);
  let nginx: ChildProcess | undefined;
  let nginxErr = '';
  const tmp = suiteDirs(async () => {
    await stopNginx();
  });
  let base = '';
  let site = '';
  let port = 0;
  let url = '';
  const releases = new Map<string, Release>();

  /** Stops the suite's nginx: SIGTERM to its process group (master and workers), then SIGKILL. */
  async function stopNginx(): Promise<void> {
    const child = nginx;
    nginx = undefined;
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const kill = (signal: NodeJS.Signals): void => {
      try {
        process.kill(-(child.pid as number), signal);
      } catch {
        /* gone */
      }
    };
    kill('SIGTERM');
    const gone = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
    // the workers are in the group too: whatever is left of it goes now
    kill('SIGKILL');
    if (!gone) await Promise.race([exited, sleep(5000)]);
  }

  /** nginx's configuration: everything under base/nginx/, the site served from current. */
  function nginxConfig(dir: string, listenPort: number): string {
    const user = process.getuid?.() === 0 ? 'user nobody nogroup;\n' : '';
    return `${user}daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  types { text/html html; text/css css; text/plain txt; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${listenPort};
    server_name _;
    root ${site}/current;
    disable_symlinks off;
    index index.html;
    location = /.gitfs-version {
      default_type text/plain;
      add_header Cache-Control "no-store";
    }
  }
}
`;
  }

  /** Starts nginx on a free port (a few tries: the port could be taken between look and bind). */
  async function startNginx(): Promise<void> {
    const dir = join(base, 'nginx');
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const conf = join(dir, 'nginx.conf');
      writeFileSync(conf, nginxConfig(dir, port));
      nginxErr = '';
      const child = spawn(NGINX, ['-p', `${dir}/`, '-c', conf, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      nginx = child;
      child.stdout?.setEncoding('utf8').on('data', (s: string) => (nginxErr += s));
      child.stderr?.setEncoding('utf8').on('data', (s: string) => (nginxErr += s));
      const spawned = await new Promise<Error | undefined>((r) => {
        child.once('spawn', () => r(undefined));
        child.once('error', (e) => r(e));
      });
      if (spawned !== undefined) throw spawned;
      const until = Date.now() + 10_000;
      while (Date.now() < until && child.exitCode === null && child.signalCode === null && !(await accepting(port))) await sleep(50);
      if (child.exitCode === null && child.signalCode === null && (await accepting(port))) break;
      const log = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '';
      await stopNginx();
      if (attempt >= 3 || !/Address already in use/.test(nginxErr + log)) throw new Error(`nginx did not start:\n${nginxErr}\n${log}`);
    }
    url = `http://127.0.0.1:${port}/`;
  }

  /** A release directory as the agent exports it, and its manifest (gitfs-release.json). */
  async function release(version: string, files: Record<string, string>, links: Record<string, string> = {}, modes: Record<string, number> = {}): Promise<Release> {
    const dir = join(base, 'exports', version);
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), content);
      chmodSync(join(dir, path), modes[path] ?? 0o644);
    }
    for (const [path, target] of Object.entries(links)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      symlinkSync(target, join(dir, path));
    }
    mkdirSync(dir, { recursive: true });
    // the listing the agent checks an exported site with (src/rollout/site-files.ts)
    const listing = siteListing(await siteEntries(dir));
    const manifest = join(base, 'exports', `${version}.json`);
    const m = checkManifest({ format: 2, kind: 'site', channel: 'site/prod', version, payload: 'site', sha256: listing.sha256, size: listing.size, created: '2024-05-01T12:00:00Z' });
    // v1: the canonical gitfs-release.json; the others as the agent writes GITFS_MANIFEST (one line)
    writeFileSync(manifest, version === 'v1' ? renderManifest(m) : `${JSON.stringify(m)}\n`);
    const r: Release = { version, dir, manifest };
    releases.set(version, r);
    return r;
  }

  function hookEnv(rel: Release | undefined, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      PATH: process.env['PATH'],
      GITFS_CHANNEL: CHANNEL,
      GITFS_COMMIT: 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00',
      GITFS_KIND: 'site',
      GITFS_STATE: join(base, 'state'),
      GITFS_VERSION: rel?.version ?? '',
      GITFS_PAYLOAD: rel?.dir ?? '',
      GITFS_MANIFEST: rel?.manifest ?? '',
      GITFS_PREVIOUS: '',
      GITFS_SITE_ROOT: site,
      GITFS_SITE_URL: url,
      ...extra,
    };
  }

  function hook(action: string, env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<Run> {
    return run(HOOK, [action], env, timeoutMs);
  }

  async function get(path: string): Promise<{ status: number; body: string }> {
    const res = await fetch(new URL(path, url), { signal: AbortSignal.timeout(5000), headers: { 'cache-control': 'no-cache' } });
    return { status: res.status, body: await res.text() };
  }

  const current = (): string | undefined => (lstatIs(join(site, 'current')) ? readlinkSync(join(site, 'current')) : undefined);
  function lstatIs(path: string): boolean {
    try {
      return lstatSync(path).isSymbolicLink();
    } catch {
      return false;
    }
  }
  const installed = (): string[] => readdirSync(join(site, 'releases')).sort();

  before(async function () {
    // the first run on a machine installs nginx (apt-get, bounded); later runs only start it
    this.timeout(1_200_000);
    if (!existsSync(NGINX)) {
      assert.equal(process.getuid?.(), 0, 'nginx is not installed and installing it needs root: apt-get install nginx');
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      const started = Date.now();
      let r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'nginx'], env, 600_000);
      if (r.code !== 0) {
        const u = await run('apt-get', ['update'], env, 300_000);
        assert.equal(u.code, 0, `apt-get update failed: ${show(u)}`);
        r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'nginx'], env, 600_000);
      }
      assert.equal(r.code, 0, `apt-get install nginx failed: ${show(r)}`);
      assert.ok(existsSync(NGINX), `apt-get installed nginx but there is no ${NGINX}`);
      console.log(`      installed nginx with apt-get in ${Date.now() - started} ms`);
    }
    base = tmp.make('gitfs-sites-');
    // nginx's workers run as nobody: they must be able to reach the site through the temp dir
    chmodSync(base, 0o755);
    site = join(base, 'site');
    mkdirSync(join(base, 'state'));
    const started = Date.now();
    await startNginx();
    console.log(`      nginx started on 127.0.0.1:${port} in ${Date.now() - started} ms`);
    await release('v1', { 'index.html': page('v1'), 'css/site.css': 'body { color: #111; }\n', 'bin/hello.sh': '#!/bin/sh\necho hello\n' }, { 'style.css': 'css/site.css' }, { 'bin/hello.sh': 0o755 });
    // a file executable by its group only counts as executable (100755), as in site-files.ts
    await release('v2', { 'index.html': page('v2'), 'css/site.css': 'body { color: #222; }\n', 'bin/group.sh': '#!/bin/sh\n' }, { 'style.css': 'css/site.css' }, { 'bin/group.sh': 0o654 });
    // a bad release: no index.html, so / answers 403 (a directory without an index)
    await release('v3-bad', { 'about.html': '<p>about</p>\n' });
  });

  it('apply v1: copied with modes and symlinks, current -> releases/v1; health passes; nginx serves v1', async function () {
    const apply = await hook('apply', hookEnv(releases.get('v1')));
    assert.equal(apply.code, 0, show(apply));
    assert.equal(current(), 'releases/v1');
    assert.deepEqual(installed(), ['v1']);
    const rel = join(site, 'releases', 'v1');
    assert.equal(readFileSync(join(rel, '.gitfs-version'), 'utf8'), 'v1\n');
    assert.equal(readlinkSync(join(rel, 'style.css')), 'css/site.css');
    assert.equal(lstatSync(join(rel, 'bin/hello.sh')).mode & 0o777, 0o755);
    assert.equal(lstatSync(join(rel, 'index.html')).mode & 0o777, 0o644);
    assert.equal(lstatSync(rel).mode & 0o777, 0o755);
    const health = await hook('health', hookEnv(releases.get('v1'), { GITFS_DEADLINE_MS: '10000' }));
    assert.equal(health.code, 0, show(health));
    assert.match(health.stdout, /gitfs-hook symlink health: healthy: /);
    const index = await get('/');
    assert.equal(index.status, 200);
    assert.equal(index.body, page('v1'));
    assert.deepEqual(await get('/.gitfs-version'), { status: 200, body: 'v1\n' });
    assert.deepEqual(await get('/style.css'), { status: 200, body: 'body { color: #111; }\n' });
    // a site by name (a name-based virtual host): connect to nginx, send the site's Host
    const byName = await hook('health', hookEnv(releases.get('v1'), { GITFS_SITE_URL: 'http://www.example.test/', GITFS_SITE_CONNECT: `127.0.0.1:${port}`, GITFS_SITE_CHECK: 'style.css', GITFS_DEADLINE_MS: '10000' }));
    assert.equal(byName.code, 0, show(byName));
    assert.match(byName.stdout, /http:\/\/www\.example\.test\/style\.css answers 200/);
    console.log(`      apply v1 ${apply.ms} ms, health ${health.ms} ms`);
  });

  it('apply v2 during a burst of requests: every answer is a complete v1 or v2 page, never v1 after v2; health passes; nginx serves v2', async function () {
    const pages = new Map([
      [page('v1'), 'v1'],
      [page('v2'), 'v2'],
    ]);
    let applying = true;
    let answered = 0;
    let afterApply = 0;
    const problems: string[] = [];
    /** One client: requests back to back until apply is over and 200 more were answered. */
    const client = async (): Promise<string[]> => {
      const seen: string[] = [];
      while ((applying || afterApply < 200 || seen.length < 50) && seen.length < 5000) {
        const r = await get('/').catch((e: unknown) => ({ status: 0, body: `request failed: ${String(e)}` }));
        const v = pages.get(r.body);
        if (r.status !== 200 || v === undefined) problems.push(`status ${r.status}, ${r.body.length} bytes: ${r.body.slice(0, 60)}`);
        seen.push(v ?? `bad ${r.status}`);
        answered++;
        if (!applying) afterApply++;
      }
      return seen;
    };
    const clients = [client(), client(), client(), client()];
    // let the clients get going on v1 before the swap
    for (const until = Date.now() + 10_000; answered < 40 && Date.now() < until; ) await sleep(10);
    const apply = await hook('apply', hookEnv(releases.get('v2'), { GITFS_PREVIOUS: 'v1' }));
    applying = false;
    const seen = await Promise.all(clients);
    assert.equal(apply.code, 0, show(apply));
    assert.deepEqual(problems, [], `requests during the swap got incomplete or failed answers`);
    const all = seen.flat();
    for (const [i, s] of seen.entries()) {
      const firstV2 = s.indexOf('v2');
      assert.ok(firstV2 > 0, `client ${i} saw no v1 then v2: ${s.join(' ')}`);
      assert.ok(!s.slice(firstV2).includes('v1'), `client ${i} saw v1 again after v2: ${s.join(' ')}`);
    }
    assert.ok(all.length >= 200, `only ${all.length} requests`);
    console.log(
      `      apply v2 ${apply.ms} ms under ${all.length} requests by 4 clients (${all.filter((v) => v === 'v1').length} v1, ${all.filter((v) => v === 'v2').length} v2, no other answer)`,
    );
    assert.equal(current(), 'releases/v2');
    assert.deepEqual(installed(), ['v1', 'v2']);
    assert.equal(lstatSync(join(site, 'releases', 'v2', 'bin/group.sh')).mode & 0o777, 0o654);
    const health = await hook('health', hookEnv(releases.get('v2'), { GITFS_PREVIOUS: 'v1', GITFS_DEADLINE_MS: '10000' }));
    assert.equal(health.code, 0, show(health));
    assert.equal((await get('/')).body, page('v2'));
    assert.deepEqual(await get('/.gitfs-version'), { status: 200, body: 'v2\n' });
    assert.deepEqual(await get('/style.css'), { status: 200, body: 'body { color: #222; }\n' });
    // repeating apply is safe: the same release is left as it is, nginx still serves it
    const before = snapshot(join(site, 'releases'));
    const again = await hook('apply', hookEnv(releases.get('v2'), { GITFS_PREVIOUS: 'v1' }));
    assert.equal(again.code, 0, show(again));
    assert.match(again.stdout, /already installed/);
    assert.equal(snapshot(join(site, 'releases')), before);
    assert.equal(current(), 'releases/v2');
    assert.equal((await get('/')).body, page('v2'));
  });

  it('a bad release (no index.html) fails health within the deadline; rollback to v2 serves v2 again and its health passes', async function () {
    const apply = await hook('apply', hookEnv(releases.get('v3-bad'), { GITFS_PREVIOUS: 'v2' }));
    assert.equal(apply.code, 0, show(apply));
    assert.equal(current(), 'releases/v3-bad');
    // kept: the new one, the previous (v2) and the one served before (v2); v1 is gone
    assert.deepEqual(installed(), ['v2', 'v3-bad']);
    // the hook gives up a tenth before the deadline: 600 ms for spawning it and its last round
    const deadline = 6000;
    const health = await hook('health', hookEnv(releases.get('v3-bad'), { GITFS_PREVIOUS: 'v2', GITFS_DEADLINE_MS: String(deadline) }), deadline + 10_000);
    assert.equal(health.code, 1, show(health));
    assert.ok(health.ms < deadline, `health took ${health.ms} ms with a deadline of ${deadline} ms: the agent would have killed it`);
    assert.ok(health.ms >= deadline / 2, `health gave up after ${health.ms} ms, long before the deadline`);
    const lines = health.stderr.trim().split('\n');
    assert.equal(lines.length, 1, health.stderr);
    assert.match(lines[0] ?? '', /^gitfs-hook symlink health: error: not healthy within the deadline \(6000 ms, \d+ attempts\)/);
    assert.match(lines[0] ?? '', /\/ 403 x\d+/, 'the status codes seen are in the message');
    assert.equal((await get('/')).status, 403);
    // the agent rolls back to the previously blessed version
    const rollback = await hook('rollback', hookEnv(releases.get('v2'), { GITFS_PREVIOUS: 'v2' }));
    assert.equal(rollback.code, 0, show(rollback));
    assert.equal(current(), 'releases/v2');
    assert.deepEqual(installed(), ['v2'], 'the failed release is deleted once current no longer points at it');
    assert.equal((await get('/')).body, page('v2'));
    const health2 = await hook('health', hookEnv(releases.get('v2'), { GITFS_DEADLINE_MS: '10000' }));
    assert.equal(health2.code, 0, show(health2));
    // health of a version that is not current fails at once, without waiting for the deadline
    const other = await hook('health', hookEnv(releases.get('v1'), { GITFS_DEADLINE_MS: '20000' }));
    assert.equal(other.code, 1, show(other));
    assert.ok(other.ms < 5000, `${other.ms} ms`);
    assert.match(other.stderr, /points at 'releases\/v2', not releases\/v1/);
    console.log(`      bad release: apply ${apply.ms} ms, health failed after ${health.ms} ms (deadline ${deadline} ms); rollback ${rollback.ms} ms; health of v2 ${health2.ms} ms`);
  });

  it('refused calls (bad version, kind kernel, payload not a directory, a symlink out of the release, wrong manifest) exit non-zero and change nothing', async function () {
    const v2 = releases.get('v2');
    assert.ok(v2 !== undefined);
    const outside = await release('v4', { 'index.html': page('v4') }, { 'leak.txt': '../../../../etc/passwd' });
    const absolute = await release('v5', { 'index.html': page('v5') }, { 'passwd.txt': '/etc/passwd' });
    // a link to the release's own top, then up through it: names alone would say "inside"
    const sneaky = await release('v6', { 'index.html': page('v6') }, { 'self': '.', 'sneak.html': 'self/../v2/index.html' });
    const other = await release('v7', { 'index.html': page('v7') });
    const cases: Array<[string, string, NodeJS.ProcessEnv, RegExp, number]> = [
      ['bad version (..)', 'apply', hookEnv(v2, { GITFS_VERSION: '../v2' }), /GITFS_VERSION is not a version name/, 1],
      ['bad version (leading dot)', 'apply', hookEnv(v2, { GITFS_VERSION: '.v2' }), /GITFS_VERSION is not a version name/, 1],
      ['bad version (129 characters)', 'apply', hookEnv(v2, { GITFS_VERSION: 'v'.repeat(129) }), /GITFS_VERSION is not a version name/, 1],
      ['bad rollback version', 'rollback', hookEnv(v2, { GITFS_VERSION: 'v2/../v1' }), /GITFS_VERSION is not a version name/, 1],
      ['kind kernel', 'apply', hookEnv(v2, { GITFS_KIND: 'kernel' }), /GITFS_KIND is 'kernel': this hook handles sites only/, 1],
      ['kind kernel (rollback)', 'rollback', hookEnv(undefined, { GITFS_KIND: 'kernel' }), /handles sites only/, 1],
      ['payload a file', 'apply', hookEnv(v2, { GITFS_PAYLOAD: join(v2.dir, 'index.html') }), /is not a directory/, 1],
      ['payload missing', 'apply', hookEnv(v2, { GITFS_PAYLOAD: join(base, 'nowhere') }), /is not a directory/, 1],
      ['symlink out of the release (..)', 'apply', hookEnv(outside), /the symlink leak\.txt -> \.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd points outside the release/, 1],
      ['symlink out of the release (absolute)', 'apply', hookEnv(absolute), /points at the absolute path \/etc\/passwd/, 1],
      ['symlink out of the release (through a link to itself)', 'apply', hookEnv(sneaky), /the symlink sneak\.html -> self\/\.\.\/v2\/index\.html points outside the release/, 1],
      ['manifest of another version', 'apply', hookEnv(v2, { GITFS_MANIFEST: other.manifest }), /the manifest is for version 'v7', GITFS_VERSION is 'v2'/, 1],
      ['content other than the manifest says', 'apply', hookEnv(other, { GITFS_PAYLOAD: v2.dir, GITFS_VERSION: 'v7' }), /listing has SHA-256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}/, 1],
      ['no site root', 'apply', hookEnv(v2, { GITFS_SITE_ROOT: '' }), /GITFS_SITE_ROOT is not set/, 1],
      ['relative site root', 'apply', hookEnv(v2, { GITFS_SITE_ROOT: 'site' }), /must be an absolute path/, 1],
      ['rollback to a version that is not installed, without payload', 'rollback', hookEnv(undefined, { GITFS_VERSION: 'v1' }), /releases\/v1 is not installed/, 1],
      ['health without a URL', 'health', hookEnv(v2, { GITFS_SITE_URL: '' }), /GITFS_SITE_URL is not set/, 1],
      ['unknown action', 'restart', hookEnv(v2), /unknown action 'restart'/, 2],
    ];
    const before = snapshot(site);
    const served = await get('/');
    for (const [what, action, env, message, code] of cases) {
      const r = await hook(action, env);
      assert.equal(r.code, code, `${what}: ${show(r)}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${what}: one error line: ${show(r)}`);
      assert.match(lines[0] ?? '', /^gitfs-hook symlink( apply| health| rollback)?: error: /, what);
      assert.match(lines[0] ?? '', message, what);
      assert.equal(snapshot(site), before, `${what}: the site root changed`);
    }
    assert.deepEqual(await get('/'), served);
    assert.equal(current(), 'releases/v2');
  });

  it('rollback with an empty version removes current: nginx serves nothing (404); health fails at once', async function () {
    const rollback = await hook('rollback', hookEnv(undefined));
    assert.equal(rollback.code, 0, show(rollback));
    assert.equal(current(), undefined);
    assert.equal(lstatIs(join(site, 'current')), false);
    assert.deepEqual(installed(), [], 'the release current pointed at is deleted after current is gone');
    assert.equal((await get('/')).status, 404);
    assert.equal((await get('/.gitfs-version')).status, 404);
    const again = await hook('rollback', hookEnv(undefined));
    assert.equal(again.code, 0, show(again));
    const health = await hook('health', hookEnv(releases.get('v2'), { GITFS_DEADLINE_MS: '10000' }));
    assert.equal(health.code, 1, show(health));
    assert.match(health.stderr, /points at 'nothing', not releases\/v2/);
    // and a rollback to a version whose release is gone reinstalls it from the payload
    const back = await hook('rollback', hookEnv(releases.get('v2')));
    assert.equal(back.code, 0, show(back));
    assert.equal(current(), 'releases/v2');
    assert.equal((await get('/')).body, page('v2'));
  });

  it('republishing the served version with other content: a copy that fails midway leaves a release served, never nothing', async function () {
    const first = await release('v3', { 'index.html': '<h1>v3</h1>\n' });
    const served3 = await hook('apply', hookEnv(first));
    assert.equal(served3.code, 0, show(served3));
    assert.equal(current(), 'releases/v3');
    const again = await release('v3', { 'index.html': '<h1>v3, republished</h1>\n' });
    // A cp that fails for the second copy (cp -a of the staged release), as on a full disk.
    const bin = join(base, 'failing-cp');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'cp'), '#!/bin/sh\n[ "$1" = -a ] && { echo "cp: no space left on device" >&2; exit 1; }\nexec /bin/cp "$@"\n', { mode: 0o755 });
    const failed = await hook('apply', hookEnv(again, { PATH: `${bin}:${process.env['PATH'] ?? ''}` }));
    assert.notEqual(failed.code, 0, show(failed));
    const served = current();
    assert.ok(served !== undefined && existsSync(join(site, served, 'index.html')), `current -> ${served}, which must exist`);
    assert.equal((await get('/')).status, 200, 'something is still served');
    // With a working cp the same apply goes through.
    const ok = await hook('apply', hookEnv(again));
    assert.equal(ok.code, 0, show(ok));
    assert.equal(current(), 'releases/v3');
    assert.equal((await get('/')).body, '<h1>v3, republished</h1>\n');
  });

  it('rollback to a version republished with other content (the one that failed) serves the content of the release rolled back to', async function () {
    const good = await release('v9', { 'index.html': '<h1>v9</h1>\n' });
    const applied = await hook('apply', hookEnv(good));
    assert.equal(applied.code, 0, show(applied));
    // What the agent keeps of the good release, before the same version comes again with other content.
    const aside = join(base, 'exports', 'v9-good');
    cpSync(good.dir, aside, { recursive: true });
    copyFileSync(good.manifest, `${aside}.json`);
    const republished = await release('v9', { 'index.html': '<h1>v9, broken</h1>\n' });
    const reapplied = await hook('apply', hookEnv(republished));
    assert.equal(reapplied.code, 0, show(reapplied));
    assert.equal((await get('/')).body, '<h1>v9, broken</h1>\n');
    const back = await hook('rollback', hookEnv({ version: 'v9', dir: aside, manifest: `${aside}.json` }));
    assert.equal(back.code, 0, show(back));
    assert.equal((await get('/')).body, '<h1>v9</h1>\n');
  });
});

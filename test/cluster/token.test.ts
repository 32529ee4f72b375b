/**
 * Join tokens: the text format (parse refuses anything malformed with GITFS_BAD_TOKEN), the
 * issuer's token files (0600, one use, expiry, pruning), and `gitfs cluster token` on the CA
 * node and on a member that is not the CA.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterDir, loadAuthority } from '../../src/cluster/cluster-store.js';
import { consumeToken, createToken, formatToken, parseToken, pruneTokens, tokenSecret, type JoinToken } from '../../src/cluster/token.js';
import { ErrorCodes } from '../../src/errors.js';
import { gitfs } from '../support/cli.js';
import { suiteDirs } from '../support/tmp.js';
import { makeCluster } from '../multicast/fixture.js';
import { cleanEnv } from '../support/cluster-nodes.js';
import { rejectsWith } from '../support/gitfs-error.js';

const HOUR = 3_600_000;

/** A token text whose JSON is `json`, base64url-encoded behind the prefix. */
function rawToken(json: unknown): string {
  return `gitfs1-${Buffer.from(JSON.stringify(json)).toString('base64url')}`;
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('cluster/token: join tokens', function () {
  const tmp = suiteDirs();
  const sample: JoinToken = {
    id: 'ab'.repeat(16),
    secret: randomBytes(32),
    caFingerprint: 'cd'.repeat(32),
    issuers: ['127.0.0.1:7420', '10.0.0.1:1'],
    expiresMs: 1_900_000_000_000,
  };
  const good = { id: sample.id, s: sample.secret.toString('base64url'), ca: sample.caFingerprint, at: sample.issuers, exp: sample.expiresMs };

  it('formats and parses back unchanged, surrounding white space ignored', () => {
    const text = formatToken(sample);
    assert.match(text, /^gitfs1-[A-Za-z0-9_-]+$/);
    assert.deepStrictEqual(parseToken(text), sample);
    assert.deepStrictEqual(parseToken(`  ${text}\n`), sample);
    assert.deepStrictEqual(parseToken(rawToken(good)), sample);
  });

  const bad: [string, string][] = [
    ['an empty string', ''],
    ['another prefix', formatToken(sample).replace('gitfs1-', 'gitfs2-')],
    ['no prefix', formatToken(sample).slice('gitfs1-'.length)],
    ['base64 of something not JSON', `gitfs1-${Buffer.from('not json').toString('base64url')}`],
    ['JSON null', rawToken(null)],
    ['a short id', rawToken({ ...good, id: 'ab'.repeat(15) })],
    ['an upper-case id', rawToken({ ...good, id: 'AB'.repeat(16) })],
    ['an id with a path in it', rawToken({ ...good, id: '../'.repeat(10) + 'ab' })],
    ['a secret of 31 bytes', rawToken({ ...good, s: randomBytes(31).toString('base64url') })],
    ['a secret that is a number', rawToken({ ...good, s: 5 })],
    ['a short CA fingerprint', rawToken({ ...good, ca: 'cd'.repeat(31) })],
    ['a CA fingerprint with colons', rawToken({ ...good, ca: 'cd:'.repeat(31) + 'cd' })],
    ['no issuers', rawToken({ ...good, at: [] })],
    ['nine issuers', rawToken({ ...good, at: Array.from({ length: 9 }, (_, i) => `10.0.0.${i}:1`) })],
    ['an issuer without a port', rawToken({ ...good, at: ['127.0.0.1'] })],
    ['an issuer host name', rawToken({ ...good, at: ['example.com:7420'] })],
    ['an issuer on port 0', rawToken({ ...good, at: ['10.0.0.1:0'] })],
    ['an issuer on port 65536', rawToken({ ...good, at: ['10.0.0.1:65536'] })],
    ['an issuer with an octet over 255', rawToken({ ...good, at: ['10.0.0.256:7420'] })],
    ['an expiry that is a string', rawToken({ ...good, exp: '1900000000000' })],
    ['a fractional expiry', rawToken({ ...good, exp: 1.5 })],
    ['more than 4096 characters', `gitfs1-${'A'.repeat(4096)}`],
  ];
  for (const [what, text] of bad) {
    it(`refuses ${what} (GITFS_BAD_TOKEN)`, () => assert.throws(() => parseToken(text), rejectsWith(ErrorCodes.BAD_TOKEN)));
  }

  describe('token files on the issuer', function () {
    let gitDir = '';
    before(async () => {
      gitDir = tmp.make();
      await makeCluster(gitDir);
    });

    it('createToken writes tokens/<id>.json, mode 0600, holding the secret and the expiry', async () => {
      const now = Date.now();
      const t = await createToken(gitDir, { caFingerprint: 'ab'.repeat(32), issuers: ['127.0.0.1:1'], expiresMs: now + HOUR });
      const path = join(clusterDir(gitDir), 'tokens', `${t.id}.json`);
      assert.equal(mode(path), 0o600);
      assert.equal(mode(join(clusterDir(gitDir), 'tokens')), 0o700);
      assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { secret: t.secret.toString('base64url'), expiresMs: now + HOUR });
      assert.deepEqual(await tokenSecret(gitDir, t.id, now), t.secret);
      assert.deepStrictEqual(parseToken(formatToken(t)), t);
    });

    it('createToken refuses what a join would refuse: no issuer, nine, a host name, a bad port; nothing is written', async () => {
      const before = readdirSync(join(clusterDir(gitDir), 'tokens')).length;
      const cases: string[][] = [[], Array.from({ length: 9 }, (_, i) => `10.0.0.${i}:1`), ['example.com:7420'], ['bad host:1'], ['10.0.0.1:99999'], ['10.0.0.1:0']];
      for (const issuers of cases) {
        await assert.rejects(createToken(gitDir, { caFingerprint: 'ab'.repeat(32), issuers, expiresMs: Date.now() + HOUR }), rejectsWith(ErrorCodes.BAD_ARGUMENT), JSON.stringify(issuers));
      }
      await assert.rejects(createToken(gitDir, { caFingerprint: 'ab'.repeat(32), issuers: ['127.0.0.1:1'], expiresMs: 2 ** 60 }), rejectsWith(ErrorCodes.BAD_ARGUMENT));
      assert.equal(readdirSync(join(clusterDir(gitDir), 'tokens')).length, before);
    });

    it('a token is used up exactly once', async () => {
      const now = Date.now();
      const t = await createToken(gitDir, { caFingerprint: 'ab'.repeat(32), issuers: ['127.0.0.1:1'], expiresMs: now + HOUR });
      assert.deepEqual(await tokenSecret(gitDir, t.id, now), t.secret, 'reading the secret does not use the token');
      const both = await Promise.all([consumeToken(gitDir, t.id), consumeToken(gitDir, t.id)]);
      assert.deepEqual(both.sort(), [false, true]);
      await assert.rejects(tokenSecret(gitDir, t.id, now), rejectsWith(ErrorCodes.BAD_TOKEN));
      assert.equal(await consumeToken(gitDir, t.id), false);
    });

    it('an expired or unknown token, or a malformed id, is GITFS_BAD_TOKEN', async () => {
      const now = Date.now();
      const t = await createToken(gitDir, { caFingerprint: 'ab'.repeat(32), issuers: ['127.0.0.1:1'], expiresMs: now + 1000 });
      await assert.rejects(tokenSecret(gitDir, t.id, now + 1000), rejectsWith(ErrorCodes.BAD_TOKEN));
      assert.deepEqual(await tokenSecret(gitDir, t.id, now + 999), t.secret);
      await assert.rejects(tokenSecret(gitDir, 'ef'.repeat(16), now), rejectsWith(ErrorCodes.BAD_TOKEN));
      await assert.rejects(tokenSecret(gitDir, '../../ca', now), rejectsWith(ErrorCodes.BAD_TOKEN));
    });

    it('pruneTokens deletes the expired tokens and keeps the others', async () => {
      const dir = tmp.make();
      await makeCluster(dir);
      const now = Date.now();
      const keep = await createToken(dir, { caFingerprint: 'ab'.repeat(32), issuers: ['127.0.0.1:1'], expiresMs: now + HOUR });
      const gone = await createToken(dir, { caFingerprint: 'ab'.repeat(32), issuers: ['127.0.0.1:1'], expiresMs: now + 10 });
      assert.equal(await pruneTokens(dir, now + 100), 1);
      assert.deepEqual(readdirSync(join(clusterDir(dir), 'tokens')), [`${keep.id}.json`]);
      assert.ok(!existsSync(join(clusterDir(dir), 'tokens', `${gone.id}.json`)));
    });

    it('pruneTokens leaves a token being written, or one it cannot read now (it may be another run\'s fresh token)', async () => {
      const dir = tmp.make();
      await makeCluster(dir);
      const tokens = join(clusterDir(dir), 'tokens');
      // As createToken leaves them for a moment: empty under its name (before), half written under a temporary one (now).
      const empty = `${'ab'.repeat(16)}.json`;
      const writing = `${'cd'.repeat(16)}.json.tmp-0a1b2c3d4e5f`;
      writeFileSync(join(tokens, empty), '');
      writeFileSync(join(tokens, writing), '{"secret":');
      assert.equal(await pruneTokens(dir, Date.now()), 0);
      assert.deepEqual(readdirSync(tokens).sort(), [empty, writing].sort());
      // An hour later the half-written one was left by a run that died: it goes (it holds a secret).
      assert.equal(await pruneTokens(dir, Date.now() + 3_600_001), 0);
      assert.deepEqual(readdirSync(tokens), [empty]);
    });
  });

  describe('gitfs cluster token', function () {
    it('on the CA node prints a token pinning the CA, recorded 0600; keys are 0600', async () => {
      const repo = join(tmp.make(), 'repo');
      const env = cleanEnv();
      assert.equal((await gitfs(['init', '--repo', repo], { env })).code, 0);
      assert.equal((await gitfs(['cluster', 'init', '--repo', repo], { env })).code, 0);
      const r = await gitfs(['cluster', 'token', '--repo', repo, '--issuer', '127.0.0.1:7420', '--ttl', '10m'], { env });
      assert.equal(r.code, 0, r.stderr);
      const t = parseToken(r.stdout);
      const { cert } = await loadAuthority(repo);
      assert.equal(t.caFingerprint, createHash('sha256').update(new X509Certificate(cert.raw).raw).digest('hex'));
      assert.deepEqual(t.issuers, ['127.0.0.1:7420']);
      assert.ok(Math.abs(t.expiresMs - (Date.now() + 10 * 60_000)) < 60_000);
      const dir = clusterDir(repo);
      assert.equal(mode(join(dir, 'tokens', `${t.id}.json`)), 0o600);
      assert.equal(mode(join(dir, 'ca.key')), 0o600);
      assert.equal(mode(join(dir, 'node.key')), 0o600);
      assert.equal(mode(dir), 0o700);
      for (const args of [['--issuer', 'bad host:1'], ['--issuer', 'node.example:7420'], ['--ttl', '0'], ['--ttl', '999999999d'], ['--ttl', '366d']]) {
        const refused = await gitfs(['cluster', 'token', '--repo', repo, ...(args[0] === '--ttl' ? ['--issuer', '127.0.0.1:7420'] : []), ...args], { env });
        assert.equal(refused.code, 2, `${args.join(' ')}: ${refused.stderr}`);
        assert.match(refused.stderr, /GITFS_BAD_ARGUMENT/);
      }
      assert.equal(readdirSync(join(dir, 'tokens')).length, 1, 'no token recorded for a refused call');
    });

    it('on a repository without a cluster, and on a member without the CA key: GITFS_NOT_IN_CLUSTER', async () => {
      const env = cleanEnv();
      const plain = join(tmp.make(), 'repo');
      assert.equal((await gitfs(['init', '--repo', plain], { env })).code, 0);
      const r1 = await gitfs(['cluster', 'token', '--repo', plain, '--issuer', '127.0.0.1:7420'], { env });
      assert.notEqual(r1.code, 0);
      assert.match(r1.stderr, /\[GITFS_NOT_IN_CLUSTER\]/);

      const caDir = tmp.make();
      const cluster = await makeCluster(caDir);
      const member = join(tmp.make(), 'repo');
      assert.equal((await gitfs(['init', '--repo', member], { env })).code, 0);
      await cluster.addMember(member);
      const show = await gitfs(['cluster', 'show', '--json', '--repo', member], { env });
      assert.equal(show.code, 0, show.stderr);
      assert.equal((JSON.parse(show.stdout) as { issuer: boolean }).issuer, false);
      const r2 = await gitfs(['cluster', 'token', '--repo', member, '--issuer', '127.0.0.1:7420'], { env });
      assert.notEqual(r2.code, 0);
      assert.match(r2.stderr, /\[GITFS_NOT_IN_CLUSTER\]/);
      assert.ok(!existsSync(join(clusterDir(member), 'tokens')) || readdirSync(join(clusterDir(member), 'tokens')).length === 0);
    });
  });
});

/** `gitfs key new`: the key pair whole, never over an existing key, nothing else left beside it. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitfs, gitfsOk } from '../support/cli.js';
import { tempDirs } from '../support/tmp.js';

describe('gitfs key new', function () {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('writes the private key (0600) and the public key, and refuses to write over a key (exit 2), leaving it as it was', async () => {
    const dir = tmp.make();
    const key = join(dir, 'release');
    await gitfsOk(['key', 'new', key, '--comment', 'ops']);
    assert.equal(statSync(key).mode & 0o777, 0o600);
    assert.match(readFileSync(key, 'utf8'), /^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]+-----END OPENSSH PRIVATE KEY-----\n$/);
    assert.match(readFileSync(`${key}.pub`, 'utf8'), /^ssh-ed25519 \S+ ops\n$/);
    assert.deepEqual(readdirSync(dir).sort(), ['release', 'release.pub']);
    const before = readFileSync(key);
    const again = await gitfs(['key', 'new', key]);
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, /GITFS_BAD_ARGUMENT/);
    assert.deepEqual(readFileSync(key), before);
    assert.deepEqual(readdirSync(dir).sort(), ['release', 'release.pub']);
  });

  it('refuses to write beside a public key that is there (exit 2), which stays as it was, and writes no private key', async () => {
    const dir = tmp.make();
    const key = join(dir, 'release');
    writeFileSync(`${key}.pub`, 'ssh-ed25519 AAAA trusted\n');
    const r = await gitfs(['key', 'new', key]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /release\.pub: it exists.*GITFS_BAD_ARGUMENT/);
    assert.equal(readFileSync(`${key}.pub`, 'utf8'), 'ssh-ed25519 AAAA trusted\n');
    assert.deepEqual(readdirSync(dir), ['release.pub']);
  });

  it('removes the temporaries a killed run left beside the key (each a whole copy of it), and says so', async () => {
    const dir = tmp.make();
    const key = join(dir, 'release');
    writeFileSync(`${key}.tmp-0123456789ab`, 'a private key a killed run left\n', { mode: 0o600 });
    writeFileSync(`${key}.pub.tmp-ba9876543210`, 'ssh-ed25519 AAAA\n');
    writeFileSync(`${key}.tmp-notours`, 'kept\n');
    const r = await gitfs(['key', 'new', key]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /removed 2 temporary file\(s\)/);
    assert.deepEqual(readdirSync(dir).sort(), ['release', 'release.pub', 'release.tmp-notours']);
  });
});

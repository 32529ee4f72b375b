/**
 * Release keys: the OpenSSH public line, fingerprints, PKCS#8 and OpenSSH private files, each
 * checked against the real ssh-keygen both ways, and every malformed form refused with
 * GITFS_BAD_KEY (never another exception, also under random mutation).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import {
  allowedSignersLine,
  fingerprintOf,
  formatOpenSshPrivateKey,
  formatPrivateKey,
  formatPublicKey,
  generateReleaseKey,
  parsePrivateKey,
  parsePublicKey,
  publicKeyFromBlob,
  type ReleaseKeyPair,
} from '../../src/rollout/release-key.js';
import { armor, sshString } from '../../src/rollout/ssh-wire.js';
import { tempDirs } from '../support/tmp.js';
import { nonCanonical, sshKeygen, sshKeygenKey, sshKeygenOk } from './ssh-tools.js';

const isBadKey = (e: unknown): boolean => isGitfsError(e, ErrorCodes.BAD_KEY);
const sameKey = (a: ReleaseKeyPair, b: ReleaseKeyPair): void => {
  assert.ok(a.publicKey.blob.equals(b.publicKey.blob));
  // Ed25519 is deterministic: the same key signs the same message identically.
  assert.ok(sign(null, Buffer.from('m'), a.privateKey).equals(sign(null, Buffer.from('m'), b.privateKey)));
};

describe('rollout/release-key', () => {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  it('writes the public key as OpenSSH does, with the fingerprint ssh-keygen -l prints', () => {
    const dir = tmp.make();
    const pair = generateReleaseKey('release@example.com');
    const line = formatPublicKey(pair.publicKey);
    assert.match(line, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} release@example\.com$/);
    writeFileSync(join(dir, 'k.pub'), `${line}\n`);
    const printed = sshKeygenOk(['-l', '-f', join(dir, 'k.pub')]).trim();
    assert.equal(printed, `256 ${pair.publicKey.fingerprint} release@example.com (ED25519)`);
    assert.match(pair.publicKey.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(formatPublicKey(generateReleaseKey().publicKey).split(' ').length, 2, 'no trailing space without a comment');
  });

  it('reads back what it writes: public line, PKCS#8 and OpenSSH private files', () => {
    const pair = generateReleaseKey('ops team key');
    const pub = parsePublicKey(`${formatPublicKey(pair.publicKey)}\n`);
    assert.ok(pub.blob.equals(pair.publicKey.blob));
    assert.equal(pub.comment, 'ops team key');
    assert.equal(pub.fingerprint, pair.publicKey.fingerprint);
    const pem = formatPrivateKey(pair);
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    sameKey(parsePrivateKey(pem), pair);
    sameKey(parsePrivateKey(Buffer.from(pem)), pair);
    const openssh = formatOpenSshPrivateKey(pair);
    const back = parsePrivateKey(openssh);
    sameKey(back, pair);
    assert.equal(back.publicKey.comment, 'ops team key', 'the OpenSSH file keeps the comment');
    assert.equal(parsePrivateKey(openssh, 'other').publicKey.comment, 'other');
  });

  it('writes OpenSSH private keys that ssh-keygen loads, and loads the ones it makes', () => {
    const dir = tmp.make();
    const pair = generateReleaseKey('gitfs-made');
    const path = join(dir, 'gitfs_key');
    writeFileSync(path, formatOpenSshPrivateKey(pair), { mode: 0o600 });
    assert.equal(sshKeygenOk(['-y', '-f', path]).trim(), `${formatPublicKey(pair.publicKey)}`);

    const made = sshKeygenKey(dir, 'ssh_made', 'made@ssh-keygen');
    const loaded = parsePrivateKey(made.privateText);
    const pub = parsePublicKey(made.publicText);
    assert.ok(loaded.publicKey.blob.equals(pub.blob));
    assert.equal(loaded.publicKey.comment, 'made@ssh-keygen');
    assert.equal(pub.comment, 'made@ssh-keygen');
    assert.equal(`256 ${pub.fingerprint} made@ssh-keygen (ED25519)`, sshKeygenOk(['-l', '-f', `${made.path}.pub`]).trim());
    assert.equal(formatPublicKey(pub), made.publicText.trim());
  });

  it('formats an allowed-signers line and refuses odd principals', () => {
    const pair = generateReleaseKey('x');
    const line = allowedSignersLine('release@gitfs', pair.publicKey);
    assert.equal(line, `release@gitfs namespaces="git" ${formatPublicKey(generateReleaseKey().publicKey).split(' ')[0]} ${pair.publicKey.blob.toString('base64')}`);
    for (const p of ['', 'a b', 'a,b', '*', 'x'.repeat(257)]) assert.throws(() => allowedSignersLine(p, pair.publicKey), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT), p);
  });

  it('refuses malformed public keys with GITFS_BAD_KEY', () => {
    const pair = generateReleaseKey();
    const b64 = pair.publicKey.blob.toString('base64');
    const raw = pair.publicKey.blob.subarray(-32);
    const blobOf = (...parts: Buffer[]): string => Buffer.concat(parts).toString('base64');
    const cases: Record<string, string> = {
      empty: '',
      'type only': 'ssh-ed25519',
      'another type': `ssh-rsa ${blobOf(sshString('ssh-rsa'), sshString(Buffer.alloc(3, 1)), sshString(Buffer.alloc(64, 2)))} x`,
      'type differs from the blob': `ssh-ed25519 ${blobOf(sshString('ssh-rsa'), sshString(raw))}`,
      'security key type': `sk-ssh-ed25519@openssh.com ${b64}`,
      'authorized_keys options': `restrict ssh-ed25519 ${b64}`,
      'short key': `ssh-ed25519 ${blobOf(sshString('ssh-ed25519'), sshString(raw.subarray(0, 31)))}`,
      'long key': `ssh-ed25519 ${blobOf(sshString('ssh-ed25519'), sshString(Buffer.concat([raw, Buffer.from([0])])))}`,
      'trailing bytes': `ssh-ed25519 ${blobOf(pair.publicKey.blob, Buffer.from([0]))}`,
      'truncated blob': `ssh-ed25519 ${blobOf(pair.publicKey.blob.subarray(0, 40))}`,
      'length past the end': `ssh-ed25519 ${blobOf(sshString('ssh-ed25519'), Buffer.from([0, 0, 0, 33]), raw)}`,
      // 51 bytes fill 68 characters exactly; a 50-byte prefix leaves 2 spare bits, here set.
      'non-canonical base64': `ssh-ed25519 ${nonCanonical(pair.publicKey.blob.subarray(0, 50).toString('base64'))}`,
      'base64 junk': `ssh-ed25519 ${b64.slice(0, 10)}!${b64.slice(11)}`,
      'base64 of the wrong length': `ssh-ed25519 ${b64.slice(0, -1)}`,
      'padded past the data': `ssh-ed25519 ${b64}==`,
      'two lines': `ssh-ed25519 ${b64} a\nssh-ed25519 ${b64} b`,
      'CR inside': `ssh-ed25519 ${b64} a\r`,
      'control character in the comment': `ssh-ed25519 ${b64} a\u0007b`,
      'huge': `ssh-ed25519 ${b64} ${'c'.repeat(17 * 1024)}`,
      'long comment': `ssh-ed25519 ${b64} ${'c'.repeat(1025)}`,
    };
    for (const [name, text] of Object.entries(cases)) assert.throws(() => parsePublicKey(text), isBadKey, name);
    assert.equal(parsePublicKey(`  ssh-ed25519\t${b64}   spaced  comment  `).comment, 'spaced  comment');
  });

  it('refuses other private keys with GITFS_BAD_KEY: other algorithms, encrypted, damaged', () => {
    const dir = tmp.make();
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pair = generateReleaseKey('k');
    const encryptedPkcs8 = pair.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }).toString();
    const encryptedOpenSsh = sshKeygenKey(dir, 'locked', 'locked', 'a passphrase').privateText;
    const pem = formatPrivateKey(pair);
    const good = formatOpenSshPrivateKey(pair);
    const b64 = good.split('\n').slice(1, -2).join('');
    const blob = Buffer.from(b64, 'base64');
    const reArmor = (b: Buffer): string => armor('OPENSSH PRIVATE KEY', b);
    const flipped = (at: number): string => {
      const b = Buffer.from(blob);
      b[at] = (b[at] as number) ^ 1;
      return reArmor(b);
    };
    // The unencrypted layout: magic (15), "none" (8), "none" (8), "" (4), count (4), public blob
    // (4 + 51), section length (4); then the section: two check words, type (15), public key (4 + 32)…
    const sectionStart = 15 + 8 + 8 + 4 + 4 + 55 + 4;
    assert.equal(blob.readUInt32BE(sectionStart), blob.readUInt32BE(sectionStart + 4), 'the check words are where the test thinks');
    const cases: Record<string, string | Buffer> = {
      empty: '',
      garbage: 'hello',
      'EC key': ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      'SEC1 EC key': ec.privateKey.export({ type: 'sec1', format: 'pem' }).toString(),
      'encrypted PKCS#8': encryptedPkcs8,
      'encrypted OpenSSH': encryptedOpenSsh,
      'broken PKCS#8 body': pem.replace(/\n(.)/, '\n!$1'),
      'PKCS#8 truncated': pem.slice(0, 60) + '\n-----END PRIVATE KEY-----\n',
      'public key as private': pair.publicKey.key.export({ type: 'spki', format: 'pem' }).toString(),
      'check words differ': flipped(sectionStart),
      'public key in the section differs': flipped(sectionStart + 8 + 15 + 4 + 5),
      'trailing bytes': reArmor(Buffer.concat([blob, Buffer.from([0])])),
      'truncated OpenSSH': reArmor(blob.subarray(0, blob.length - 10)),
      'bad magic': reArmor(Buffer.concat([Buffer.from('openssh-key-v2\0'), blob.subarray(15)])),
      'no END line': good.replace('-----END OPENSSH PRIVATE KEY-----\n', ''),
      'huge': `${pem}${' '.repeat(17 * 1024)}`,
    };
    for (const [name, text] of Object.entries(cases)) assert.throws(() => parsePrivateKey(text), isBadKey, name);
    // The private section is padded 1, 2, 3… to a multiple of 8 (a 7-character comment leaves 6 bytes).
    const padded = Buffer.from(formatOpenSshPrivateKey(generateReleaseKey('padding')).split('\n').slice(1, -2).join(''), 'base64');
    assert.deepEqual([...padded.subarray(-6)], [1, 2, 3, 4, 5, 6]);
    padded[padded.length - 1] = 7;
    assert.throws(() => parsePrivateKey(reArmor(padded)), (e: unknown) => isBadKey(e) && /padding/.test((e as Error).message));
    assert.throws(() => parsePrivateKey(encryptedOpenSsh), (e: unknown) => isBadKey(e) && /passphrase/.test((e as Error).message));
  });

  it('never throws anything but GITFS_BAD_KEY on mutated key texts', () => {
    const pair = generateReleaseKey('fuzz');
    const texts = [formatPublicKey(pair.publicKey), formatOpenSshPrivateKey(pair), formatPrivateKey(pair)];
    const mutation = fc.record({ which: fc.nat({ max: 2 }), at: fc.nat(), char: fc.integer({ min: 0, max: 127 }), cut: fc.boolean() });
    fc.assert(
      fc.property(mutation, ({ which, at, char, cut }) => {
        const t = texts[which] as string;
        const i = at % t.length;
        const mutated = cut ? t.slice(0, i) : t.slice(0, i) + String.fromCharCode(char) + t.slice(i + 1);
        try {
          const parsed = which === 0 ? parsePublicKey(mutated).blob : parsePrivateKey(mutated).publicKey.blob;
          // A mutation that still parses (a comment byte, base64 padding-free change) must be a whole Ed25519 key.
          assert.equal(parsed.length, 51);
        } catch (e) {
          assert.ok(isBadKey(e), `${String(e)}`);
        }
      }),
      { numRuns: 600 },
    );
  });

  it('computes the fingerprint of a blob like ssh-keygen, and keys from blobs', () => {
    const made = sshKeygenKey(tmp.make(), 'k', 'c');
    const pub = parsePublicKey(made.publicText);
    assert.equal(fingerprintOf(pub.blob), pub.fingerprint);
    const fromBlob = publicKeyFromBlob(pub.blob);
    assert.equal(fromBlob.fingerprint, pub.fingerprint);
    assert.equal(sshKeygen(['-l', '-f', `${made.path}.pub`]).stdout.includes(pub.fingerprint), true);
  });
});

/**
 * SSH signatures: what gitfs signs, ssh-keygen -Y verify accepts; what ssh-keygen -Y sign
 * makes, gitfs verifies (and gitfs makes byte for byte the same signature from the same key);
 * tampering, untrusted keys, other namespaces and every structural oddity are refused with
 * GITFS_BAD_SIGNATURE or GITFS_UNTRUSTED_KEY, and nothing else is ever thrown.
 */
import assert from 'node:assert/strict';
import { createHash, sign as edSign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { allowedSignersLine, generateReleaseKey, parsePrivateKey, parsePublicKey, type ReleaseKeyPair } from '../../src/rollout/release-key.js';
import { armor, dearmor, sshString, sshUint32, strictBase64 } from '../../src/rollout/ssh-wire.js';
import { createSshSignature, parseSshSignature, verifySshSignature } from '../../src/rollout/sshsig.js';
import { tempDirs } from '../support/tmp.js';
import { nonCanonical, sshKeygen, sshKeygenKey, sshKeygenOk } from './ssh-tools.js';

const isBadSignature = (e: unknown): boolean => isGitfsError(e, ErrorCodes.BAD_SIGNATURE);
const PAYLOAD = Buffer.from('tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nrelease 1\n');

interface Parts {
  magic?: string;
  version?: number;
  key?: Buffer;
  namespace?: string;
  reserved?: string;
  /** The reserved value the signature covers, if not the one in the blob. */
  signedReserved?: string;
  hash?: string;
  sigType?: string;
  sig?: Buffer;
  trailing?: Buffer;
  sigTrailing?: Buffer;
}

/** An SSHSIG blob with any part replaced; by default a correct signature of PAYLOAD by `pair`. */
function blob(pair: ReleaseKeyPair, p: Parts = {}): Buffer {
  const namespace = p.namespace ?? 'git';
  const reserved = p.reserved ?? '';
  const hash = p.hash ?? 'sha512';
  const digest = createHash(hash === 'sha256' ? 'sha256' : 'sha512').update(PAYLOAD).digest();
  const signed = Buffer.concat([Buffer.from('SSHSIG'), sshString(namespace), sshString(p.signedReserved ?? reserved), sshString(hash), sshString(digest)]);
  const sig = p.sig ?? edSign(null, signed, pair.privateKey);
  return Buffer.concat([
    Buffer.from(p.magic ?? 'SSHSIG'),
    sshUint32(p.version ?? 1),
    sshString(p.key ?? pair.publicKey.blob),
    sshString(namespace),
    sshString(reserved),
    sshString(hash),
    sshString(Buffer.concat([sshString(p.sigType ?? 'ssh-ed25519'), sshString(sig), p.sigTrailing ?? Buffer.alloc(0)])),
    p.trailing ?? Buffer.alloc(0),
  ]);
}

const armored = (b: Buffer): string => armor('SSH SIGNATURE', b);

describe('rollout/sshsig', () => {
  const tmp = tempDirs();
  after(() => tmp.cleanup());
  const signer = generateReleaseKey('release@gitfs');
  const stranger = generateReleaseKey('stranger');

  it('signs in the armored SSHSIG form and verifies, naming the key', () => {
    const text = createSshSignature(PAYLOAD, signer);
    const lines = text.split('\n');
    assert.equal(lines[0], '-----BEGIN SSH SIGNATURE-----');
    assert.equal(lines.at(-2), '-----END SSH SIGNATURE-----');
    assert.equal(lines.at(-1), '', 'a final newline');
    for (const l of lines.slice(1, -3)) assert.equal(l.length, 70);
    assert.ok((lines.at(-3) as string).length <= 70);
    assert.ok(text.startsWith('-----BEGIN SSH SIGNATURE-----\nU1NIU0lH'), 'the blob starts with the SSHSIG magic');
    const key = verifySshSignature(PAYLOAD, text, [stranger.publicKey, signer.publicKey]);
    assert.equal(key, signer.publicKey);
    const parsed = parseSshSignature(text);
    assert.deepEqual([parsed.namespace, parsed.hashAlgorithm, parsed.signature.length], ['git', 'sha512', 64]);
    assert.ok(parsed.publicKeyBlob.equals(signer.publicKey.blob));
    assert.equal(verifySshSignature(PAYLOAD.toString('latin1'), text, [signer.publicKey]), signer.publicKey, 'text payloads are UTF-8');
  });

  it('makes signatures ssh-keygen -Y verify accepts, in the git namespace and others', () => {
    const dir = tmp.make();
    const allowed = join(dir, 'allowed_signers');
    const fileLine = `files@gitfs namespaces="file" ssh-ed25519 ${signer.publicKey.blob.toString('base64')}`;
    writeFileSync(allowed, `${allowedSignersLine('release@gitfs', signer.publicKey)}\n${fileLine}\n`);
    const check = (text: string, principal: string, namespace: string, payload = PAYLOAD): ReturnType<typeof sshKeygen> => {
      const sigFile = join(dir, 'sig');
      writeFileSync(sigFile, text);
      return sshKeygen(['-Y', 'verify', '-f', allowed, '-I', principal, '-n', namespace, '-s', sigFile], payload);
    };
    const good = check(createSshSignature(PAYLOAD, signer), 'release@gitfs', 'git');
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /Good "git" signature for release@gitfs with ED25519 key SHA256:/);
    assert.ok(good.stdout.includes(signer.publicKey.fingerprint));
    const sha256 = check(createSshSignature(PAYLOAD, signer, { hashAlgorithm: 'sha256' }), 'release@gitfs', 'git');
    assert.equal(sha256.status, 0, sha256.stderr);
    const file = check(createSshSignature(PAYLOAD, signer, { namespace: 'file' }), 'files@gitfs', 'file');
    assert.equal(file.status, 0, file.stderr);
    // And ssh-keygen refuses what gitfs refuses.
    assert.notEqual(check(createSshSignature(PAYLOAD, signer), 'release@gitfs', 'git', Buffer.concat([PAYLOAD, Buffer.from('x')])).status, 0);
    assert.notEqual(check(createSshSignature(PAYLOAD, stranger), 'release@gitfs', 'git').status, 0);
    assert.notEqual(check(createSshSignature(PAYLOAD, signer, { namespace: 'file' }), 'release@gitfs', 'git').status, 0);
  });

  it('verifies what ssh-keygen -Y sign makes, and makes the very same bytes from the same key', () => {
    const dir = tmp.make();
    const made = sshKeygenKey(dir, 'release', 'made@ssh-keygen');
    for (const namespace of ['git', 'file']) {
      const theirs = sshKeygenOk(['-Y', 'sign', '-n', namespace, '-f', made.path], PAYLOAD);
      const pub = parsePublicKey(made.publicText);
      assert.ok(verifySshSignature(PAYLOAD, theirs, [pub], { namespace }).blob.equals(pub.blob));
      const ours = createSshSignature(PAYLOAD, parsePrivateKey(made.privateText), { namespace });
      assert.equal(ours, theirs, 'Ed25519 is deterministic: same key, same payload, same signature');
    }
  });

  it('refuses a changed payload and keys it does not trust', () => {
    const text = createSshSignature(PAYLOAD, signer);
    for (let i = 0; i < PAYLOAD.length; i += 7) {
      const changed = Buffer.from(PAYLOAD);
      changed[i] = (changed[i] as number) ^ 0x20;
      assert.throws(() => verifySshSignature(changed, text, [signer.publicKey]), isBadSignature, `byte ${i}`);
    }
    assert.throws(() => verifySshSignature(Buffer.concat([PAYLOAD, Buffer.from('\n')]), text, [signer.publicKey]), isBadSignature);
    const untrusted = (e: unknown): boolean => isGitfsError(e, ErrorCodes.UNTRUSTED_KEY) && e.data['fingerprint'] === signer.publicKey.fingerprint && e.message.includes(signer.publicKey.fingerprint);
    assert.throws(() => verifySshSignature(PAYLOAD, text, [stranger.publicKey]), untrusted);
    assert.throws(() => verifySshSignature(PAYLOAD, text, []), untrusted);
    // A signature that names a trusted key but was made by another is bad, not untrusted.
    const forged = armored(blob(signer, { sig: edSign(null, Buffer.from('x'), stranger.privateKey) }));
    assert.throws(() => verifySshSignature(PAYLOAD, forged, [signer.publicKey]), isBadSignature);
  });

  it('checks the namespace: a signature for files is not a signature for git', () => {
    const file = createSshSignature(PAYLOAD, signer, { namespace: 'file' });
    assert.throws(() => verifySshSignature(PAYLOAD, file, [signer.publicKey]), isBadSignature);
    assert.equal(verifySshSignature(PAYLOAD, file, [signer.publicKey], { namespace: 'file' }), signer.publicKey);
    assert.throws(() => verifySshSignature(PAYLOAD, file, [signer.publicKey], { namespace: 'a b' }), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT));
    assert.throws(() => createSshSignature(PAYLOAD, signer, { namespace: '' }), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT));
  });

  it('accepts a hand-built correct blob (the builder is right) and refuses every structural oddity', () => {
    assert.equal(verifySshSignature(PAYLOAD, armored(blob(signer)), [signer.publicKey]), signer.publicKey);
    assert.equal(verifySshSignature(PAYLOAD, armored(blob(signer, { hash: 'sha256' })), [signer.publicKey]), signer.publicKey);
    const good = armored(blob(signer));
    const body = good.split('\n').slice(1, -2).join('');
    const cases: Record<string, string> = {
      'magic': armored(blob(signer, { magic: 'SSHSIH' })),
      'version 2': armored(blob(signer, { version: 2 })),
      'reserved not empty, signed as such': armored(blob(signer, { reserved: 'x' })),
      // ssh-keygen ignores the field and would accept this one: gitfs keeps one encoding per signature.
      'reserved not empty, signed as empty': armored(blob(signer, { reserved: 'x', signedReserved: '' })),
      'hash md5': armored(blob(signer, { hash: 'md5' })),
      'hash SHA512': armored(blob(signer, { hash: 'SHA512' })),
      'signature type ssh-rsa': armored(blob(signer, { sigType: 'ssh-rsa' })),
      'rsa-sha2-512 signature': armored(blob(signer, { sigType: 'rsa-sha2-512' })),
      'signature of 63 bytes': armored(blob(signer, { sig: Buffer.alloc(63) })),
      'signature of 65 bytes': armored(blob(signer, { sig: Buffer.alloc(65) })),
      'bytes after the signature blob': armored(blob(signer, { sigTrailing: Buffer.from([0]) })),
      'bytes after the signature': armored(blob(signer, { trailing: Buffer.from([0]) })),
      'key of another type': armored(blob(signer, { key: Buffer.concat([sshString('ssh-rsa'), sshString(Buffer.alloc(32))]) })),
      'key of 31 bytes': armored(blob(signer, { key: Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.alloc(31))]) })),
      'truncated': armored(blob(signer).subarray(0, 100)),
      'empty blob': '-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n',
      'no END line': good.replace('-----END SSH SIGNATURE-----\n', ''),
      'no BEGIN line': good.replace('-----BEGIN SSH SIGNATURE-----\n', ''),
      'text before': `x\n${good}`,
      'text after': `${good}x\n`,
      'two final newlines': `${good}\n`,
      'CRLF line ends': good.replace(/\n/g, '\r\n'),
      'an empty line inside': good.replace('\n', '\n\n'),
      'one long line': `-----BEGIN SSH SIGNATURE-----\n${body}\n-----END SSH SIGNATURE-----\n`,
      'lines of 64 (a commit of another id)': `-----BEGIN SSH SIGNATURE-----\n${(body.match(/.{1,64}/g) as string[]).join('\n')}\n-----END SSH SIGNATURE-----\n`,
      'non-canonical base64': `-----BEGIN SSH SIGNATURE-----\n${(nonCanonical(body).match(/.{1,70}/g) as string[]).join('\n')}\n-----END SSH SIGNATURE-----\n`,
      'base64 junk': good.replace('U1NI', 'U1N*'),
      'a GPG signature': '-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE\n-----END PGP SIGNATURE-----\n',
      'huge': `-----BEGIN SSH SIGNATURE-----\n${'QUFB\n'.repeat(3000)}-----END SSH SIGNATURE-----\n`,
      'empty': '',
    };
    for (const [name, text] of Object.entries(cases)) assert.throws(() => verifySshSignature(PAYLOAD, text, [signer.publicKey]), isBadSignature, name);
    assert.ok(body.length > 76, 'the one-line case is over the line limit');
  });

  it('never throws anything but its two codes on mutated signatures, and never accepts one', () => {
    const text = createSshSignature(PAYLOAD, signer);
    const raw = dearmor('SSH SIGNATURE', text, 8192) as Buffer;
    const mutation = fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), inBlob: fc.boolean(), cut: fc.boolean() });
    fc.assert(
      fc.property(mutation, ({ at, value, inBlob, cut }) => {
        let mutated: string;
        if (inBlob) {
          const b = Buffer.from(raw);
          const i = at % b.length;
          if (cut) mutated = armored(b.subarray(0, i));
          else {
            if (b[i] === value) return;
            b[i] = value;
            mutated = armored(b);
          }
        } else {
          const i = at % text.length;
          if (cut && i === text.length - 1) return; // only the optional final newline goes
          if (cut) mutated = text.slice(0, i);
          else {
            if (text.charCodeAt(i) === value) return;
            mutated = text.slice(0, i) + String.fromCharCode(value) + text.slice(i + 1);
          }
        }
        try {
          verifySshSignature(PAYLOAD, mutated, [signer.publicKey]);
        } catch (e) {
          assert.ok(isBadSignature(e) || isGitfsError(e, ErrorCodes.UNTRUSTED_KEY), String(e));
          return;
        }
        assert.fail(`a mutated signature verified: ${JSON.stringify(mutated)}`);
      }),
      { numRuns: 1500 },
    );
  });

  it('decodes base64 strictly and armor exactly', () => {
    assert.deepEqual(strictBase64('QUJD'), Buffer.from('ABC'));
    assert.deepEqual(strictBase64(''), Buffer.alloc(0));
    assert.deepEqual(strictBase64('QUI='), Buffer.from('AB'));
    assert.deepEqual(strictBase64('QQ=='), Buffer.from('A'));
    for (const s of ['QUJ', 'QQ=', 'Q===', 'QU JD', 'QUJD\n', '====', 'QUJD=', '-_8=']) assert.equal(strictBase64(s), undefined, s);
    assert.equal(strictBase64('QR=='), undefined, 'spare bits set');
    assert.equal(strictBase64('QUJ='), undefined, 'spare bits set');
    assert.deepEqual(dearmor('X', armor('X', Buffer.from('hello')), 100), Buffer.from('hello'));
    assert.equal(typeof dearmor('X', armor('X', Buffer.alloc(200)), 100), 'string', 'over the size bound');
  });
});

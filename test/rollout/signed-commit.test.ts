/**
 * Signed commits against the real git and ssh-keygen: a commit gitfs signs is a good signature
 * to `git verify-commit` and `git log --show-signature`; a commit git signs (commit-tree -S,
 * gpg.format=ssh) or ssh-keygen signs verifies with gitfs, and gitfs signs the same payload to
 * the very same bytes; a changed byte or an untrusted key fails in both; the gpgsig header is
 * taken apart strictly.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, isGitfsError, type GitfsError } from '../../src/errors.js';
import { decodeCommit, encodeCommit, type Signature } from '../../src/objects/commit.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { allowedSignersLine, formatOpenSshPrivateKey, generateReleaseKey, parsePrivateKey, parsePublicKey, type ReleaseKeyPair } from '../../src/rollout/release-key.js';
import { addSignature, signCommit, splitSignature, verifyCommit } from '../../src/rollout/signed-commit.js';
import { createSshSignature } from '../../src/rollout/sshsig.js';
import { gitRun, gitText } from '../support/git-env.js';
import { tempDirs } from '../support/tmp.js';
import { sshKeygenKey, sshKeygenOk } from './ssh-tools.js';

const isBadSignature = (e: unknown): e is GitfsError => isGitfsError(e, ErrorCodes.BAD_SIGNATURE);
const WHO: Signature = { name: 'Release Bot', email: 'release@gitfs', timestamp: 1_700_000_000, tzOffsetMinutes: 60 };

describe('rollout/signed-commit', () => {
  const tmp = tempDirs();
  after(() => tmp.cleanup());

  /** A repository with one tree (a kernel image file), and an allowed-signers file for `trusted`. */
  function setup(trusted: ReleaseKeyPair[]): { gitDir: string; tree: Oid; allowed: string; unsigned: (message: string, parents?: Oid[]) => Buffer } {
    const dir = tmp.make();
    gitText(['init', '-q', join(dir, 'repo')]);
    const gitDir = join(dir, 'repo', '.git');
    const blob = gitText(['hash-object', '-w', '--stdin'], { gitDir, input: 'pretend kernel image\n' });
    const tree = gitText(['mktree'], { gitDir, input: `100644 blob ${blob}\tvmlinuz\n` }) as Oid;
    const allowed = join(dir, 'allowed_signers');
    writeFileSync(allowed, trusted.map((k) => `${allowedSignersLine('release@gitfs', k.publicKey)}\n`).join(''));
    const unsigned = (message: string, parents: Oid[] = []): Buffer => encodeCommit({ tree, parents, author: WHO, committer: WHO, extraHeaders: [], message });
    return { gitDir, tree, allowed, unsigned };
  }

  function store(gitDir: string, content: Buffer, branch = 'kernel/stable'): Oid {
    const id = gitText(['hash-object', '-t', 'commit', '-w', '--stdin'], { gitDir, input: content }) as Oid;
    assert.equal(id, hashObject('commit', content));
    gitText(['update-ref', `refs/heads/${branch}`, id], { gitDir });
    return id;
  }

  const sshConfig = (allowed: string): string[] => ['-c', 'gpg.format=ssh', '-c', `gpg.ssh.allowedSignersFile=${allowed}`];
  const gitVerify = (gitDir: string, allowed: string, id: string): ReturnType<typeof gitRun> => gitRun([...sshConfig(allowed), 'verify-commit', id], { gitDir });

  it('signs commits that git verify-commit and git log --show-signature call good', () => {
    const key = generateReleaseKey('release@gitfs');
    const { gitDir, allowed, unsigned } = setup([key]);
    const first = signCommit(unsigned('kernel 6.6.1\n\nbuilt by CI\n'), key);
    const firstId = store(gitDir, first);
    const second = signCommit(unsigned('kernel 6.6.2\n', [firstId]), key);
    const id = store(gitDir, second);

    const v = gitVerify(gitDir, allowed, id);
    assert.equal(v.status, 0, v.stderr);
    assert.ok(v.stderr.includes(`Good "git" signature for release@gitfs with ED25519 key ${key.publicKey.fingerprint}`), v.stderr);
    const log = gitRun([...sshConfig(allowed), 'log', '--show-signature', 'kernel/stable'], { gitDir });
    assert.equal(log.status, 0, log.stderr);
    assert.equal(log.stdout.match(/Good "git" signature for release@gitfs/g)?.length, 2, log.stdout);
    assert.equal(gitRun(['fsck', '--strict'], { gitDir }).status, 0);

    // git keeps the bytes; gitfs's own commit codec reads the header and writes it back the same.
    assert.deepEqual(gitRun(['cat-file', 'commit', id], { gitDir }).stdout, second.toString('utf8').trimEnd());
    const decoded = decodeCommit(second);
    assert.deepEqual(decoded.extraHeaders.map(([k]) => k), ['gpgsig']);
    assert.equal(`${decoded.extraHeaders[0]?.[1]}\n`, splitSignature(second).armored);
    assert.ok(encodeCommit(decoded).equals(second));
    assert.equal(verifyCommit(second, [key.publicKey]), key.publicKey);
    assert.ok(splitSignature(second).payload.equals(unsigned('kernel 6.6.2\n', [firstId])));
  });

  it('verifies commits git signs with ssh-keygen keys, and signs their payload to the same bytes', () => {
    const made = sshKeygenKey(tmp.make(), 'release', 'release@gitfs');
    const pair = parsePrivateKey(made.privateText);
    const { gitDir, tree, allowed } = setup([pair]);
    let parent: string | undefined;
    for (const encoding of [undefined, 'ISO-8859-1']) {
      const config = [...sshConfig(allowed), '-c', `user.signingkey=${made.path}`, ...(encoding === undefined ? [] : ['-c', `i18n.commitEncoding=${encoding}`])];
      const id = gitText([...config, 'commit-tree', '-S', ...(parent === undefined ? [] : ['-p', parent]), '-m', 'signed by git', tree], { gitDir, fixedDates: true });
      parent = id;
      const content = Buffer.from(gitText(['cat-file', 'commit', id], { gitDir }) + '\n');
      assert.equal(hashObject('commit', content), id, 'the content as git stores it');
      if (encoding !== undefined) assert.match(content.toString('latin1'), /\nencoding ISO-8859-1\ngpgsig /, 'git puts gpgsig after the other headers');
      assert.ok(verifyCommit(content, [parsePublicKey(made.publicText)]).blob.equals(pair.publicKey.blob));
      const { payload } = splitSignature(content);
      assert.ok(signCommit(payload, pair).equals(content), 'same key, same payload: the same signed commit');
    }
  });

  it('adds an ssh-keygen -Y sign signature that both git and gitfs accept', () => {
    const made = sshKeygenKey(tmp.make(), 'release', 'release@gitfs');
    const pair = parsePrivateKey(made.privateText);
    const { gitDir, allowed, unsigned } = setup([pair]);
    const payload = unsigned('site 2024.05.01\n');
    const armored = sshKeygenOk(['-Y', 'sign', '-n', 'git', '-f', made.path], payload);
    const content = addSignature(payload, armored);
    const id = store(gitDir, content);
    const v = gitVerify(gitDir, allowed, id);
    assert.equal(v.status, 0, v.stderr);
    assert.ok(v.stderr.includes('Good "git" signature'));
    assert.ok(verifyCommit(content, [pair.publicKey]).blob.equals(pair.publicKey.blob));
  });

  it('writes keys that git commit-tree -S signs with', () => {
    const key = generateReleaseKey('release@gitfs');
    const dir = tmp.make();
    const keyFile = join(dir, 'release_key');
    writeFileSync(keyFile, formatOpenSshPrivateKey(key), { mode: 0o600 });
    const { gitDir, tree, allowed } = setup([key]);
    const id = gitText([...sshConfig(allowed), '-c', `user.signingkey=${keyFile}`, 'commit-tree', '-S', '-m', 'x', tree], { gitDir, fixedDates: true });
    const content = Buffer.from(gitText(['cat-file', 'commit', id], { gitDir }) + '\n');
    assert.equal(verifyCommit(content, [key.publicKey]), key.publicKey);
    assert.equal(gitVerify(gitDir, allowed, id).status, 0);
  });

  it('fails a commit with one byte changed, in git and in gitfs', () => {
    const key = generateReleaseKey('release@gitfs');
    const { gitDir, allowed, unsigned } = setup([key]);
    const signed = signCommit(unsigned('kernel 6.6.3\n'), key);
    const text = signed.toString('latin1');
    for (const [what, at] of [['message', text.indexOf('6.6.3')], ['author', text.indexOf('Release Bot')], ['time', text.indexOf('1700000000')]] as const) {
      const tampered = Buffer.from(signed);
      tampered[at + 2] = (tampered[at + 2] as number) + 1;
      const id = store(gitDir, tampered, `tampered/${what}`);
      const v = gitVerify(gitDir, allowed, id);
      assert.notEqual(v.status, 0, what);
      assert.ok(!v.stderr.includes('Good'), v.stderr);
      assert.throws(() => verifyCommit(tampered, [key.publicKey]), isBadSignature, what);
    }
  });

  it('fails a commit signed by an untrusted key, in git and in gitfs', () => {
    const trusted = generateReleaseKey('release@gitfs');
    const stranger = generateReleaseKey('someone');
    const { gitDir, allowed, unsigned } = setup([trusted]);
    const signed = signCommit(unsigned('kernel 6.6.4\n'), stranger);
    const v = gitVerify(gitDir, allowed, store(gitDir, signed));
    assert.notEqual(v.status, 0);
    assert.ok(!v.stderr.includes('Good "git" signature for'), v.stderr);
    assert.throws(() => verifyCommit(signed, [trusted.publicKey]), (e: unknown) => isGitfsError(e, ErrorCodes.UNTRUSTED_KEY) && e.data['fingerprint'] === stranger.publicKey.fingerprint);
    assert.equal(verifyCommit(signed, [trusted.publicKey, stranger.publicKey]), stranger.publicKey);
  });

  describe('the gpgsig header', () => {
    const key = generateReleaseKey('k');
    const base = encodeCommit({ tree: '4b825dc642cb6eb9a060e54bf8d69288fbee4904' as Oid, parents: [], author: WHO, committer: WHO, extraHeaders: [], message: 'm\n' });
    const armored = createSshSignature(base, key);
    const header = `gpgsig ${armored.slice(0, -1).replace(/\n/g, '\n ')}\n`;
    const text = base.toString('latin1');
    const at = (marker: string): number => text.indexOf(marker);
    const insert = (pos: number, what: string): Buffer => Buffer.from(text.slice(0, pos) + what + text.slice(pos), 'latin1');
    const headerEnd = text.indexOf('\n\n') + 1;

    it('splits a signed commit into the unsigned payload and the armor, and leaves unsigned ones alone', () => {
      const signed = addSignature(base, armored);
      assert.ok(signed.equals(insert(headerEnd, header)));
      const split = splitSignature(signed);
      assert.ok(split.payload.equals(base));
      assert.equal(split.armored, armored);
      assert.deepEqual(splitSignature(base), { payload: base, armored: undefined });
      assert.ok(addSignature(base, armored.slice(0, -1)).equals(signed), 'the final newline is optional');
      // In the message, "gpgsig" is just text.
      const inMessage = Buffer.concat([base, Buffer.from(`\n${header}`)]);
      assert.equal(splitSignature(inMessage).armored, undefined);
      assert.throws(() => verifyCommit(base, [key.publicKey]), (e: unknown) => isBadSignature(e) && e.data['reason'] === 'unsigned');
    });

    it('refuses a second, misplaced, empty or other gpgsig header', () => {
      const signed = addSignature(base, armored);
      const cases: Record<string, Buffer> = {
        twice: insert(headerEnd, header + header),
        'before committer': insert(at('committer '), header),
        'before author': insert(at('author '), header),
        'gpgsig-sha256': insert(headerEnd, header.replace('gpgsig ', 'gpgsig-sha256 ')),
        'gpgsig-sha256 besides gpgsig': Buffer.concat([signed.subarray(0, signed.indexOf('\n\n') + 1), Buffer.from(header.replace('gpgsig ', 'gpgsig-sha256 ')), signed.subarray(signed.indexOf('\n\n') + 1)]),
        'bare gpgsig': insert(headerEnd, 'gpgsig\n'),
        empty: insert(headerEnd, 'gpgsig \n \n'),
        'starts with a continuation': Buffer.concat([Buffer.from(' x\n'), base]),
      };
      for (const [name, content] of Object.entries(cases)) {
        assert.throws(() => splitSignature(content), isBadSignature, name);
        assert.throws(() => verifyCommit(content, [key.publicKey]), isBadSignature, name);
      }
    });

    it('accepts the header git would accept after other extra headers', () => {
      const withEncoding = insert(headerEnd, 'encoding ISO-8859-1\n');
      const signed = signCommit(withEncoding, key);
      assert.match(signed.toString('latin1'), /\nencoding ISO-8859-1\ngpgsig -----BEGIN SSH SIGNATURE-----\n U1NI/);
      assert.ok(splitSignature(signed).payload.equals(withEncoding));
      assert.equal(verifyCommit(signed, [key.publicKey]), key.publicKey);
    });

    it('refuses to add a signature twice or a malformed one', () => {
      const bad = (e: unknown): boolean => isGitfsError(e, ErrorCodes.BAD_ARGUMENT);
      assert.throws(() => addSignature(addSignature(base, armored), armored), bad);
      assert.throws(() => addSignature(base, ''), bad);
      assert.throws(() => addSignature(base, armored.replace('\n', '\n\n')), bad);
      assert.throws(() => addSignature(base, armored.replace(/\n/g, '\r\n')), bad);
      assert.throws(() => addSignature(Buffer.from('tree x\nauthor a <b> 1 +0000\n\nm'), armored), bad);
      assert.throws(() => addSignature(Buffer.from(text.slice(0, headerEnd - 1), 'latin1'), armored), bad);
    });
  });
});

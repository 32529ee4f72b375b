/**
 * Recall signatures: made by a release key over the channel and the release, in a namespace of
 * their own; verified only for that channel and release, by a trusted key; bounded in size.
 */
import assert from 'node:assert/strict';
import type { BranchName } from '../../src/branches/ref-name.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import type { Oid } from '../../src/objects/oid.js';
import { MAX_RECALL_SIGNATURE, RECALL_NAMESPACE, recallStatement, signRecall, verifyRecall } from '../../src/rollout/recall.js';
import { generateReleaseKey } from '../../src/rollout/release-key.js';
import { createSshSignatureBlob } from '../../src/rollout/sshsig.js';

const CHANNEL = 'kernel/stable' as BranchName;
const RELEASE = 'a'.repeat(40) as Oid;

const code = (c: string) => (e: unknown): boolean => isGitfsError(e) && e.code === c;

describe('rollout/recall', () => {
  const key = generateReleaseKey('ops');

  it('verifies a recall signed by a trusted key, naming that key; the signature is a small binary blob', () => {
    const sig = signRecall(CHANNEL, RELEASE, key);
    assert.ok(sig.length > 100 && sig.length < 256, `${sig.length} bytes`);
    const other = generateReleaseKey('other');
    assert.equal(verifyRecall(CHANNEL, RELEASE, sig, [other.publicKey, key.publicKey]).fingerprint, key.publicKey.fingerprint);
  });

  it('refuses it for another release or channel, by a key not trusted, in another namespace, or damaged or too long', () => {
    const sig = signRecall(CHANNEL, RELEASE, key);
    assert.throws(() => verifyRecall(CHANNEL, 'b'.repeat(40) as Oid, sig, [key.publicKey]), code(ErrorCodes.BAD_SIGNATURE));
    assert.throws(() => verifyRecall('kernel/testing' as BranchName, RELEASE, sig, [key.publicKey]), code(ErrorCodes.BAD_SIGNATURE));
    assert.throws(() => verifyRecall(CHANNEL, RELEASE, sig, [generateReleaseKey('stranger').publicKey]), code(ErrorCodes.UNTRUSTED_KEY));
    // The same statement signed as git signs a release: never taken for a recall.
    const asRelease = createSshSignatureBlob(recallStatement(CHANNEL, RELEASE), key);
    assert.throws(() => verifyRecall(CHANNEL, RELEASE, asRelease, [key.publicKey]), (e: unknown) => code(ErrorCodes.BAD_SIGNATURE)(e) && /namespace "git", not "gitfs-recall"/.test((e as Error).message));
    assert.equal(RECALL_NAMESPACE, 'gitfs-recall');
    const flipped = Buffer.from(sig);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
    assert.throws(() => verifyRecall(CHANNEL, RELEASE, flipped, [key.publicKey]), code(ErrorCodes.BAD_SIGNATURE));
    assert.throws(() => verifyRecall(CHANNEL, RELEASE, sig.subarray(0, 40), [key.publicKey]), code(ErrorCodes.BAD_SIGNATURE));
    assert.throws(() => verifyRecall(CHANNEL, RELEASE, Buffer.alloc(MAX_RECALL_SIGNATURE + 1), [key.publicKey]), (e: unknown) => code(ErrorCodes.BAD_SIGNATURE)(e) && /at most 512/.test((e as Error).message));
  });
});

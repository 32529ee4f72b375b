/**
 * Recall signatures: made by a release key over the cluster, the channel and the release, in a
 * namespace of their own; verified only for those, by a trusted key; bounded in size.
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
const RECALL = { cluster: '0123456789abcdef0123456789abcdef', channel: CHANNEL, release: RELEASE };

const code = (c: string) => (e: unknown): boolean => isGitfsError(e) && e.code === c;

describe('rollout/recall', () => {
  const key = generateReleaseKey('ops');

  it('verifies a recall signed by a trusted key, naming that key; the signature is a small binary blob', () => {
    const sig = signRecall(RECALL, key);
    assert.ok(sig.length > 100 && sig.length < 256, `${sig.length} bytes`);
    const other = generateReleaseKey('other');
    assert.equal(verifyRecall(RECALL, sig, [other.publicKey, key.publicKey]).fingerprint, key.publicKey.fingerprint);
  });

  it('refuses it for another release, channel or cluster, by a key not trusted, in another namespace, or damaged or too long', () => {
    const sig = signRecall(RECALL, key);
    assert.throws(() => verifyRecall({ ...RECALL, release: 'b'.repeat(40) as Oid }, sig, [key.publicKey]), code(ErrorCodes.BAD_SIGNATURE));
    assert.throws(() => verifyRecall({ ...RECALL, channel: 'kernel/testing' as BranchName }, sig, [key.publicKey]), code(ErrorCodes.BAD_SIGNATURE));
    assert.throws(() => verifyRecall({ ...RECALL, cluster: 'fedcba9876543210fedcba9876543210' }, sig, [key.publicKey]), code(ErrorCodes.BAD_SIGNATURE));
    assert.throws(() => verifyRecall(RECALL, sig, [generateReleaseKey('stranger').publicKey]), code(ErrorCodes.UNTRUSTED_KEY));
    // The same statement signed as git signs a release: never taken for a recall.
    const asRelease = createSshSignatureBlob(recallStatement(RECALL), key);
    assert.throws(() => verifyRecall(RECALL, asRelease, [key.publicKey]), (e: unknown) => code(ErrorCodes.BAD_SIGNATURE)(e) && /namespace "git", not "gitfs-recall"/.test((e as Error).message));
    assert.equal(RECALL_NAMESPACE, 'gitfs-recall');
    const flipped = Buffer.from(sig);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
    assert.throws(() => verifyRecall(RECALL, flipped, [key.publicKey]), code(ErrorCodes.BAD_SIGNATURE));
    assert.throws(() => verifyRecall(RECALL, sig.subarray(0, 40), [key.publicKey]), code(ErrorCodes.BAD_SIGNATURE));
    assert.throws(() => verifyRecall(RECALL, Buffer.alloc(MAX_RECALL_SIGNATURE + 1), [key.publicKey]), (e: unknown) => code(ErrorCodes.BAD_SIGNATURE)(e) && /at most 512/.test((e as Error).message));
  });
});

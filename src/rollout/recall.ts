/**
 * A recall (a release rolled back cluster-wide) is the operator's word, signed as a release is:
 * by a release key the channel trusts, over a statement naming the cluster, the channel and the
 * release, in a namespace of its own (a release's signature is never taken for a recall, nor the
 * reverse; a recall made in a staging cluster that shares the key and the releases is none in
 * production).
 * Members pass a recall on as they heard it; a node acts only on one whose signature it checked
 * itself. Without this, any member (root on any one node) could roll the whole fleet back to the
 * release before, a downgrade the signed releases exist to prevent.
 *
 * On the wire (multicast) and on disk (`control.json`) a signature is its binary SSHSIG blob
 * (about 190 bytes): the armor is OpenSSH's one spelling of it, made again to verify.
 */
import type { BranchName } from '../branches/ref-name.js';
import { ErrorCodes, GitfsError } from '../errors.js';
import type { Oid } from '../objects/oid.js';
import type { ReleaseKeyPair, ReleasePublicKey } from './release-key.js';
import { armor } from './ssh-wire.js';
import { createSshSignatureBlob, SSHSIG_LABEL, verifySshSignature } from './sshsig.js';

export const RECALL_NAMESPACE = 'gitfs-recall';
/** The largest recall signature taken (an Ed25519 one is about 190 bytes). */
export const MAX_RECALL_SIGNATURE = 512;

/** What a recall names: the cluster (its id, as `gitfs cluster show` gives it), the channel, the release. */
export interface Recall {
  readonly cluster: string;
  readonly channel: BranchName;
  readonly release: Oid;
}

/** What a recall's signature covers. */
export function recallStatement({ cluster, channel, release }: Recall): string {
  return `gitfs recall\ncluster ${cluster}\nchannel ${channel}\nrelease ${release}\n`;
}

/** The signature of `recall`, made with `key`. */
export function signRecall(recall: Recall, key: ReleaseKeyPair): Buffer {
  return createSshSignatureBlob(recallStatement(recall), key, { namespace: RECALL_NAMESPACE });
}

/**
 * The key among `trusted` that signed `recall`. Throws GITFS_BAD_SIGNATURE (malformed, too long,
 * or not over this statement) or GITFS_UNTRUSTED_KEY.
 */
export function verifyRecall(recall: Recall, signature: Buffer, trusted: readonly ReleasePublicKey[]): ReleasePublicKey {
  if (signature.length > MAX_RECALL_SIGNATURE) throw new GitfsError(ErrorCodes.BAD_SIGNATURE, `bad SSH signature: a recall signature of ${signature.length} bytes (at most ${MAX_RECALL_SIGNATURE})`, { reason: 'too long' });
  return verifySshSignature(recallStatement(recall), armor(SSHSIG_LABEL, signature), trusted, { namespace: RECALL_NAMESPACE });
}

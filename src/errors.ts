/**
 * One error class for everything gitfs reports, with a stable `code`.
 * Tests and callers match on `code`, never on messages. Codes map to CLI exit
 * codes in one place (src/cli/exit-codes.ts) and, later, to FUSE errnos in one place.
 */
export const ErrorCodes = {
  /** The caller passed something malformed (an id, a path, an option). */
  BAD_ARGUMENT: 'GITFS_BAD_ARGUMENT',
  /** The directory is not a gitfs repository (or its format is newer than this build). */
  NOT_A_REPOSITORY: 'GITFS_NOT_A_REPOSITORY',
  /** `init` on a directory that already holds a repository. */
  REPOSITORY_EXISTS: 'GITFS_REPOSITORY_EXISTS',
  /** The repository config is unreadable or contradicts itself. */
  BAD_CONFIG: 'GITFS_BAD_CONFIG',
  /** An object id is well-formed but the object is not in the store. */
  OBJECT_NOT_FOUND: 'GITFS_OBJECT_NOT_FOUND',
  /** An object's bytes do not hash to its id, or do not parse (truncated, bad zlib, bad header). */
  CORRUPT_OBJECT: 'GITFS_CORRUPT_OBJECT',
  /** An object parses but what it says is refused (bad tree entry names, absurd sizes, zlib bombs). */
  HOSTILE_OBJECT: 'GITFS_HOSTILE_OBJECT',
  /**
   * An object declares more bytes than gitfs reads into memory at once (the read limit, 256 MiB):
   * git may write such a blob; it is streamed where it can be (a loose object, a whole pack
   * entry), and this is the answer where it cannot (a delta: its base would be held whole).
   */
  OBJECT_TOO_LARGE: 'GITFS_OBJECT_TOO_LARGE',
  /** An object is of another type than the caller needs (a blob where a tree is wanted). */
  WRONG_OBJECT_TYPE: 'GITFS_WRONG_OBJECT_TYPE',
  /** A pack or pack index is damaged. */
  CORRUPT_PACK: 'GITFS_CORRUPT_PACK',
  /** A file git keeps beside the objects to speed its reads (commit-graph, multi-pack-index, a pack's .rev, .bitmap, .mtimes) fails its checksum. */
  CORRUPT_CACHE: 'GITFS_CORRUPT_CACHE',
  /** A revision expression does not parse. */
  BAD_REVISION: 'GITFS_BAD_REVISION',
  /** A revision parses but names nothing (no such branch, no reflog entry, history too short). */
  UNKNOWN_REVISION: 'GITFS_UNKNOWN_REVISION',
  /** An abbreviated id matches more than one object. */
  AMBIGUOUS_REVISION: 'GITFS_AMBIGUOUS_REVISION',
  /** A path does not exist in a tree. */
  PATH_NOT_FOUND: 'GITFS_PATH_NOT_FOUND',
  /** A branch name is not acceptable as a git ref name. */
  BAD_BRANCH_NAME: 'GITFS_BAD_BRANCH_NAME',
  /** A branch does not exist. */
  UNKNOWN_BRANCH: 'GITFS_UNKNOWN_BRANCH',
  /** A branch to be created exists already. */
  BRANCH_EXISTS: 'GITFS_BRANCH_EXISTS',
  /** A compare-and-swap ref update lost (the ref moved, or another writer holds its lock), or a fetched head did not move its branch. */
  REF_CONFLICT: 'GITFS_REF_CONFLICT',
  /** A source file or directory could not be read. */
  SOURCE_UNREADABLE: 'GITFS_SOURCE_UNREADABLE',
  /** The source holds things git cannot store and the caller asked for strictness. */
  UNSUPPORTED_FILE_TYPE: 'GITFS_UNSUPPORTED_FILE_TYPE',
  /** A file git reads as its own (`.gitmodules`, `.gitattributes`) holds what git fsck refuses, or is too large for gitfs to check. */
  FSCK_REFUSED: 'GITFS_FSCK_REFUSED',
  /** An export target exists and is not empty, or a path would escape it. */
  EXPORT_TARGET: 'GITFS_EXPORT_TARGET',
  /** The working layers are held by another process (a running mount without a control socket). */
  WORK_BUSY: 'GITFS_WORK_BUSY',
  /** Uncommitted changes overlap changes made to the branch since they were started. */
  WORK_CONFLICT: 'GITFS_WORK_CONFLICT',
  /** A mount could not be set up, or no mount answers at that path. */
  MOUNT_FAILED: 'GITFS_MOUNT_FAILED',
  /** A signature (announcement, revocation list, join proof) does not verify. */
  BAD_SIGNATURE: 'GITFS_BAD_SIGNATURE',
  /** This node has no cluster identity yet (run gitfs cluster init or join), or it is unreadable. */
  NOT_IN_CLUSTER: 'GITFS_NOT_IN_CLUSTER',
  /** `cluster init` or `join` where a cluster identity exists already. */
  CLUSTER_EXISTS: 'GITFS_CLUSTER_EXISTS',
  /** A join token is malformed, expired, used already, or unknown to its issuer. */
  BAD_TOKEN: 'GITFS_BAD_TOKEN',
  /** A cluster peer (the join issuer, a node daemon) could not be reached or answered wrongly. */
  PEER_FAILED: 'GITFS_PEER_FAILED',
  /** An answer on a local or node socket is longer than one line carries (over 64 Mi characters, or past the longest string JavaScript holds): the request was done, its answer not sent. */
  ANSWER_TOO_LARGE: 'GITFS_ANSWER_TOO_LARGE',
  /** No node daemon answers for this repository (gitfs serve is not running). */
  NOT_SERVING: 'GITFS_NOT_SERVING',
  /** A `gitfs serve` already runs for this repository (it answers on the daemon's socket). */
  ALREADY_SERVING: 'GITFS_ALREADY_SERVING',
  /** Something on disk failed in a way the caller cannot fix by changing arguments. */
  IO: 'GITFS_IO',
  /** A cluster certificate is refused: wrong issuer, bad signature, outside its validity, wrong kind, or a malformed node id. */
  BAD_CERTIFICATE: 'GITFS_BAD_CERTIFICATE',
  /** A release key (OpenSSH public key, PKCS#8 or OpenSSH private key) is malformed, encrypted, or not Ed25519. */
  BAD_KEY: 'GITFS_BAD_KEY',
  /** A release signature is well-formed but made by a key the caller does not trust. */
  UNTRUSTED_KEY: 'GITFS_UNTRUSTED_KEY',
  /** A release manifest (gitfs-release.json) is malformed or says something refused. */
  BAD_MANIFEST: 'GITFS_BAD_MANIFEST',
  /** A signed release sits on another channel's branch than the one its manifest names. */
  WRONG_CHANNEL: 'GITFS_WRONG_CHANNEL',
  /** A release payload does not match its manifest (size or SHA-256). */
  PAYLOAD_MISMATCH: 'GITFS_PAYLOAD_MISMATCH',
  /** A stored rollout agent state does not decode (malformed, inconsistent, or a newer format). */
  BAD_AGENT_STATE: 'GITFS_BAD_AGENT_STATE',
  /** A prune would be unsafe here: git keeps a multi-pack-index, objects are marked precious, or a pack is damaged. */
  PRUNE_REFUSED: 'GITFS_PRUNE_REFUSED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCodes));

/** Whether `code` is one of ErrorCodes (a code read from another process may be anything). */
export function isErrorCode(code: string): code is ErrorCode {
  return KNOWN_CODES.has(code);
}

export class GitfsError extends Error {
  readonly code: ErrorCode;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GitfsError';
    this.code = code;
    this.data = data;
  }
}

export function isGitfsError(e: unknown, code?: ErrorCode): e is GitfsError {
  return e instanceof GitfsError && (code === undefined || e.code === code);
}

/** What `read` returns, or the GitfsError it throws (for refusals that are answers, not failures). */
export function gitfsErrorOr<T>(read: () => T): T | GitfsError {
  try {
    return read();
  } catch (e) {
    if (e instanceof GitfsError) return e;
    throw e;
  }
}

/** The errno code of a Node system error (`ENOENT`, …), or undefined. */
/** Whether `e`, or an error it was caused by (followed through `cause`, a few deep), has the errno code `code` (`EIO`: bytes the disk cannot read). */
export function causedBy(e: unknown, code: string): boolean {
  let at: unknown = e;
  for (let depth = 0; depth < 8 && typeof at === 'object' && at !== null; depth++) {
    if (errnoCode(at) === code) return true;
    at = (at as { cause?: unknown }).cause;
  }
  return false;
}

/** Whether `e` is a failure of the world (a GitfsError, or a system call's errno: EIO, ENOSPC, EACCES), not of the code (a TypeError, a RangeError). */
export function isOperationalError(e: unknown): boolean {
  return e instanceof GitfsError || /^E[A-Z0-9]+$/.test(errnoCode(e) ?? '');
}

export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

/** GITFS_IO for a file system call on `path` that failed with `cause`: its errno in the message and details. */
export function ioError(message: string, path: string, cause: unknown, extra: Record<string, unknown> = {}): GitfsError {
  const errno = errnoCode(cause);
  return new GitfsError(ErrorCodes.IO, errno === undefined ? message : `${message}: ${errno}`, { path, errno, ...extra }, { cause });
}

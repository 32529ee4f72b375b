/** The one place where error codes become process exit codes (documented in README.md). */
import { ErrorCodes, type ErrorCode } from '../errors.js';

export const ExitCodes = {
  OK: 0,
  /** Unexpected failure (a bug, or an error without a gitfs code). */
  FAILURE: 1,
  USAGE: 2,
  NOT_A_REPOSITORY: 3,
  NOT_FOUND: 4,
  CONFLICT: 5,
  CORRUPT: 6,
  IO: 7,
  /** `fsck` found problems, `commit --strict` met something git cannot store, or a commit holds a `.gitmodules` git would refuse. */
  CHECK_FAILED: 8,
} as const;

const BY_CODE: Record<ErrorCode, number> = {
  [ErrorCodes.BAD_ARGUMENT]: ExitCodes.USAGE,
  [ErrorCodes.BAD_REVISION]: ExitCodes.USAGE,
  [ErrorCodes.BAD_BRANCH_NAME]: ExitCodes.USAGE,
  [ErrorCodes.NOT_A_REPOSITORY]: ExitCodes.NOT_A_REPOSITORY,
  [ErrorCodes.REPOSITORY_EXISTS]: ExitCodes.CONFLICT,
  [ErrorCodes.BAD_CONFIG]: ExitCodes.NOT_A_REPOSITORY,
  [ErrorCodes.OBJECT_NOT_FOUND]: ExitCodes.NOT_FOUND,
  [ErrorCodes.UNKNOWN_REVISION]: ExitCodes.NOT_FOUND,
  [ErrorCodes.AMBIGUOUS_REVISION]: ExitCodes.NOT_FOUND,
  [ErrorCodes.PATH_NOT_FOUND]: ExitCodes.NOT_FOUND,
  [ErrorCodes.UNKNOWN_BRANCH]: ExitCodes.NOT_FOUND,
  [ErrorCodes.WRONG_OBJECT_TYPE]: ExitCodes.NOT_FOUND,
  [ErrorCodes.BRANCH_EXISTS]: ExitCodes.CONFLICT,
  [ErrorCodes.REF_CONFLICT]: ExitCodes.CONFLICT,
  [ErrorCodes.CORRUPT_OBJECT]: ExitCodes.CORRUPT,
  [ErrorCodes.HOSTILE_OBJECT]: ExitCodes.CORRUPT,
  [ErrorCodes.OBJECT_TOO_LARGE]: ExitCodes.CORRUPT,
  [ErrorCodes.CORRUPT_PACK]: ExitCodes.CORRUPT,
  [ErrorCodes.CORRUPT_CACHE]: ExitCodes.CORRUPT,
  [ErrorCodes.BAD_CERTIFICATE]: ExitCodes.CORRUPT,
  [ErrorCodes.SOURCE_UNREADABLE]: ExitCodes.IO,
  [ErrorCodes.EXPORT_TARGET]: ExitCodes.IO,
  [ErrorCodes.IO]: ExitCodes.IO,
  [ErrorCodes.WORK_BUSY]: ExitCodes.CONFLICT,
  [ErrorCodes.ALREADY_SERVING]: ExitCodes.CONFLICT,
  [ErrorCodes.WORK_CONFLICT]: ExitCodes.CONFLICT,
  [ErrorCodes.MOUNT_FAILED]: ExitCodes.IO,
  [ErrorCodes.BAD_SIGNATURE]: ExitCodes.CORRUPT,
  [ErrorCodes.NOT_IN_CLUSTER]: ExitCodes.NOT_A_REPOSITORY,
  [ErrorCodes.CLUSTER_EXISTS]: ExitCodes.CONFLICT,
  [ErrorCodes.BAD_TOKEN]: ExitCodes.USAGE,
  [ErrorCodes.PEER_FAILED]: ExitCodes.IO,
  [ErrorCodes.ANSWER_TOO_LARGE]: ExitCodes.IO,
  [ErrorCodes.NOT_SERVING]: ExitCodes.NOT_FOUND,
  [ErrorCodes.UNSUPPORTED_FILE_TYPE]: ExitCodes.CHECK_FAILED,
  [ErrorCodes.FSCK_REFUSED]: ExitCodes.CHECK_FAILED,
  [ErrorCodes.BAD_KEY]: ExitCodes.USAGE,
  [ErrorCodes.UNTRUSTED_KEY]: ExitCodes.CORRUPT,
  [ErrorCodes.BAD_MANIFEST]: ExitCodes.CORRUPT,
  [ErrorCodes.PAYLOAD_MISMATCH]: ExitCodes.CORRUPT,
  [ErrorCodes.WRONG_CHANNEL]: ExitCodes.CORRUPT,
  [ErrorCodes.BAD_AGENT_STATE]: ExitCodes.CORRUPT,
  [ErrorCodes.PRUNE_REFUSED]: ExitCodes.CONFLICT,
};

export function exitCodeFor(code: ErrorCode): number {
  return BY_CODE[code];
}

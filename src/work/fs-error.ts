/**
 * File-system answers (ENOENT, ENOTEMPTY, …) from the working layer and the mount's views.
 * They are expected outcomes, not failures: the mount turns them into errnos, and gitfs errors
 * (corrupt objects, I/O) into EIO after logging them.
 */
export type Errno =
  | 'ENOENT'
  | 'EEXIST'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'ENOTEMPTY'
  | 'EINVAL'
  | 'EPERM'
  | 'EACCES'
  | 'EROFS'
  | 'EBADF'
  | 'EBUSY'
  | 'EXDEV'
  | 'ENAMETOOLONG'
  | 'EAGAIN'
  | 'EIO';

export class FsError extends Error {
  constructor(
    readonly errno: Errno,
    readonly path = '',
  ) {
    super(`${errno}${path === '' ? '' : `: ${path}`}`);
    this.name = 'FsError';
  }
}

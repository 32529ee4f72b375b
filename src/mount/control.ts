/**
 * The mount's control socket, `<git dir>/gitfs/control.sock` (mode 0600): while a mount owns
 * the working layers, `gitfs commit/status/reset/umount` send it one JSON request per
 * connection and get one JSON answer (docs/PROTOCOL.md, "Control socket").
 */
import type { Server } from 'node:net';
import { join } from 'node:path';
import { ErrorCodes } from '../errors.js';
import { askUnixSocket, checkSocketPath, serveUnixSocket } from '../util/unix-socket.js';

export type ControlRequest =
  | { readonly op: 'ping' }
  | { readonly op: 'commit'; readonly branch: string; readonly message: string }
  | { readonly op: 'status'; readonly branch?: string }
  | { readonly op: 'reset'; readonly branch: string }
  | { readonly op: 'refs' }
  | { readonly op: 'unmount' };

export function controlPath(gitDir: string): string {
  return join(gitDir, 'gitfs', 'control.sock');
}

/** Serves requests until closed. Call only while holding the working layers (no other owner). */
export function serveControl(gitDir: string, handle: (req: ControlRequest) => Promise<unknown>): Promise<Server> {
  return serveUnixSocket(checkSocketPath(controlPath(gitDir), "mount's control socket"), (req) => handle(req as ControlRequest));
}

/** Sends one request; undefined when no mount answers (no socket, or one left by a dead process). */
export function askMount(gitDir: string, req: ControlRequest, timeoutMs = 600_000): Promise<unknown> {
  // A path too long for a socket can have no mount behind it (the mount refuses such a repository).
  return askUnixSocket(controlPath(gitDir), req, { timeoutMs, peer: 'the mount', failCode: ErrorCodes.MOUNT_FAILED });
}

const TELL_TIMEOUT_MS = 2000;
/** After a mount did not answer in time, it is not asked again for this long (ms). */
const QUIET_AFTER_TIMEOUT_MS = 60_000;

/** Repositories this process mounts itself (how many times): their mount publishes this process's moves without being asked. */
const ownMounts = new Map<string, number>();
/** Repositories whose mount did not answer in time, until when (ms, monotonic). */
const unresponsive = new Map<string, number>();

/** Registers a mount run by this process (until the returned function is called). */
export function mountedHere(gitDir: string): () => void {
  ownMounts.set(gitDir, (ownMounts.get(gitDir) ?? 0) + 1);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const left = (ownMounts.get(gitDir) ?? 1) - 1;
    if (left === 0) ownMounts.delete(gitDir);
    else ownMounts.set(gitDir, left);
  };
}

/**
 * Tells a running mount that this process moved branch refs and waits until the mount shows
 * them (it makes the kernel forget what they change): a command's change is then seen through
 * the mount as soon as the command returns. Quiet when no mount runs or it does not answer; a
 * mount that did not answer in time is left alone for a minute (its ref watch still catches up).
 */
export async function tellMountRefsMoved(gitDir: string): Promise<void> {
  if (ownMounts.has(gitDir) || (unresponsive.get(gitDir) ?? 0) > performance.now()) return;
  await askMount(gitDir, { op: 'refs' }, TELL_TIMEOUT_MS).catch(() => unresponsive.set(gitDir, performance.now() + QUIET_AFTER_TIMEOUT_MS));
}

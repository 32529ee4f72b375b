/**
 * Crash points, for the tests of crash safety: a process whose environment has
 * `GITFS_CRASH_AT=<name>` (or `<name>#<n>`: the n-th time it gets there) kills itself with
 * SIGKILL when it reaches the point of that name, so a test can stop it between any two durable
 * steps instead of at a guessed moment. Unset (always, in service) a point costs one lookup.
 */
export const CRASH_AT_VAR = 'GITFS_CRASH_AT';

const reached = new Map<string, number>();

export function crashPoint(name: string): void {
  const at = process.env[CRASH_AT_VAR];
  if (at === undefined || !at.startsWith(name)) return;
  const times = (reached.get(name) ?? 0) + 1;
  reached.set(name, times);
  if (at === name || at === `${name}#${times}`) process.kill(process.pid, 'SIGKILL');
}

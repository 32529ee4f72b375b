/**
 * How every gitfs process is started: bin/gitfs's first line sets both of these, and a background
 * mount is started with them (a test keeps the three the same).
 */

/**
 * V8 flags. gitfs streams GiBs through buffers while its live heap stays near 10 MB. V8 sizes the
 * old generation's limit from that small heap, leaving less headroom than its young generation
 * holds, so it starts a full mark-compact every few MB promoted: ~100 per GiB read or committed,
 * about a second of the main thread. A 128 MiB initial old-space limit removes them; peak RSS
 * does not move (BENCHMARKS.md, "Limits").
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

/**
 * glibc's malloc settings (mallopt(3)), read when the process starts, so they go in the
 * environment that starts it. gitfs moves GiBs through blocks of about 1 MiB (a swarm message
 * joined from its TLS records, a pack's output): by default glibc maps each such block anew and
 * unmaps it when it is freed (above 128 KiB), and gives the freed top of its heap back beyond
 * 128 KiB, so the kernel faults in and zeroes every page of every block again: the zeroing alone
 * was 7 % of a relay's CPU (`perf`). Blocks up to 32 MiB come from the heap, and up to 64 MiB of
 * freed heap is kept for the next ones (BENCHMARKS.md, "The swarm"). Two variables rather than one
 * GLIBC_TUNABLES: glibc writes into that one where it parses it, and a child started through
 * another program (`ip netns exec`) would get only its first setting. Children (git) inherit them.
 */
export const MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '33554432', MALLOC_TRIM_THRESHOLD_: '67108864' };

/** `env` as a gitfs process is started with. */
export function gitfsProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, ...MALLOC_ENV };
}

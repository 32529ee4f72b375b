/**
 * V8 flags every gitfs process runs with: bin/gitfs's first line passes them, and a background
 * mount is started with them (a test keeps the two the same).
 *
 * gitfs streams GiBs through buffers while its live heap stays near 10 MB. V8 sizes the old
 * generation's limit from that small heap, leaving less headroom than its young generation
 * holds, so it starts a full mark-compact every few MB promoted: ~100 per GiB read or committed,
 * about a second of the main thread. A 128 MiB initial old-space limit removes them; peak RSS
 * does not move (BENCHMARKS.md, "Limits").
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

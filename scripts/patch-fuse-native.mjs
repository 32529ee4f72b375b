// Patches @cocalc/fuse-native 2.4.3, then rebuilds its addon (docs/DEPENDENCIES.md,
// "@cocalc/fuse-native"). Runs as this package's postinstall; idempotent, each patch marked.
// utimens:
//  1. The mtime argument is filled from atime (`FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)`).
//  2. libfuse 2.9 drops a change of only one of the two times (touch -m, touch -a) unless the
//     file system sets flag_utime_omit_ok; with it set, UTIME_NOW and UTIME_OMIT arrive as tv_nsec
//     values that the binding turned into bogus millisecond counts. Now UTIME_NOW becomes the
//     current time and UTIME_OMIT becomes 2^53 ms, which the mount reads as "leave unchanged".
// open: bit 30 of the handle number an open answers sets keep_cache (FOPEN_KEEP_CACHE), which
//  the binding has no other way to set (src/mount/page-cache.ts).
// thread locals: libfuse 2's multi-threaded loop starts a thread whenever none is idle and ends
//  one whenever more than ten are, so a burst of reads starts hundreds of threads. The binding
//  gave each new thread new locals: a round trip to the main thread, a JS buffer and a uv_async
//  handle that was never closed. libuv scans every async handle of the loop at each wake-up, so
//  every request grew slower over the mount's life (730 threads in one 1 GiB read). Locals now
//  go back to a free list when their thread ends, and a new thread takes one from it.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const UTIMENS = '/* gitfs patch: utimens */';
const KEEP_CACHE = '/* gitfs patch: keep_cache */';
const LOCALS = '/* gitfs patch: thread locals */';
const pkgDir = dirname(createRequire(import.meta.url).resolve('@cocalc/fuse-native/package.json'));
const source = join(pkgDir, 'fuse-native.c');
let text = readFileSync(source, 'utf8');

/** Replaces `from`, which must occur exactly once in `within` (itself exactly once in the text). */
function edit(from, to, within = from) {
  if (text.split(within).length !== 2) throw new Error(`patch-fuse-native: expected exactly one "${within.split('\n')[0]}" in ${source}`);
  const part = within.replace(from, to);
  if (part === within) throw new Error(`patch-fuse-native: no "${from}" in "${within.split('\n')[0]}"`);
  text = text.replace(within, part);
}

const before = text;
if (!text.includes(UTIMENS)) {
  const edits = [
    ['FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)', 'FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)'],
    ['l->atime = timespec_to_uint64(&tv[0]);', 'l->atime = gitfs_utime_ms(&tv[0]);'],
    ['l->mtime = timespec_to_uint64(&tv[1]);', 'l->mtime = gitfs_utime_ms(&tv[1]);'],
    [
      'if (implemented[op_utimens]) ops.utimens = fuse_native_utimens;',
      'if (implemented[op_utimens]) { ops.utimens = fuse_native_utimens; ops.flag_utime_omit_ok = 1; }',
    ],
    [
      'static void populate_stat (',
      `${UTIMENS}
static uint64_t gitfs_utime_ms (const struct timespec* ts) {
  if (ts->tv_nsec == UTIME_OMIT) return 9007199254740992ULL;
  if (ts->tv_nsec == UTIME_NOW) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return timespec_to_uint64(&now);
  }
  return timespec_to_uint64(ts);
}

static void populate_stat (`,
    ],
  ];
  for (const [from, to] of edits) edit(from, to);
}
if (!text.includes(KEEP_CACHE)) {
  const open = text.slice(text.indexOf('FUSE_METHOD(open,'), text.indexOf('FUSE_METHOD(opendir,'));
  edit(
    '    l->info->fh = fd;\n',
    `    ${KEEP_CACHE}\n    l->info->fh = fd & 0x3fffffff;\n    l->info->keep_cache = (fd >> 30) & 1;\n`,
    open,
  );
}
if (!text.includes(LOCALS)) {
  edit('  uv_async_t async;\n\n} fuse_thread_locals_t;', '  uv_async_t async;\n  void *gitfs_next;\n} fuse_thread_locals_t;');
  edit(
    'static fuse_thread_locals_t* get_thread_locals () {\n',
    `${LOCALS}
static pthread_mutex_t gitfs_idle_lock = PTHREAD_MUTEX_INITIALIZER;
static fuse_thread_locals_t *gitfs_idle = NULL;

/* Runs as a thread ends: its locals (never freed: the JS buffer is referenced) wait for the next thread. */
static void gitfs_release_locals (void *data) {
  fuse_thread_locals_t *l = (fuse_thread_locals_t *) data;
  pthread_mutex_lock(&gitfs_idle_lock);
  l->gitfs_next = gitfs_idle;
  gitfs_idle = l;
  pthread_mutex_unlock(&gitfs_idle_lock);
}

/* Idle locals made for this mount, if any. */
static fuse_thread_locals_t* gitfs_reuse_locals (fuse_thread_t *ft) {
  pthread_mutex_lock(&gitfs_idle_lock);
  fuse_thread_locals_t **at = &gitfs_idle;
  while (*at != NULL && (*at)->fuse != ft) at = (fuse_thread_locals_t **) &((*at)->gitfs_next);
  fuse_thread_locals_t *l = *at;
  if (l != NULL) *at = (fuse_thread_locals_t *) l->gitfs_next;
  pthread_mutex_unlock(&gitfs_idle_lock);
  return l;
}

static fuse_thread_locals_t* get_thread_locals () {
`,
  );
  edit(
    '  // Need to lock the mutation of l->async.\n',
    `  fuse_thread_locals_t *reused = gitfs_reuse_locals(ft);
  if (reused != NULL) {
    pthread_setspecific(thread_locals_key, (void *) reused);
    return reused;
  }

  // Need to lock the mutation of l->async.
`,
  );
  edit('pthread_key_create(&(thread_locals_key), NULL); // TODO: add destructor', 'pthread_key_create(&(thread_locals_key), gitfs_release_locals);');
}
if (text !== before) {
  writeFileSync(source, text);
  rmSync(join(pkgDir, 'build'), { recursive: true, force: true });
}

try {
  createRequire(import.meta.url)('@cocalc/fuse-native');
} catch {
  // npm puts its bundled node-gyp on the PATH of lifecycle scripts; npm_config_node_gyp names it otherwise.
  const gyp = process.env.npm_config_node_gyp;
  const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
  execFileSync(cmd, args, { cwd: pkgDir, stdio: 'inherit' });
}

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
// big reads: libfuse 2 never offers the kernel FUSE_MAX_PAGES, so every read request carries at
//  most 128 KiB (8192 requests per GiB, each a round trip to Node's main thread). The session
//  now talks to the kernel through a channel of its own over the same descriptor, which adds
//  FUSE_MAX_PAGES and max_pages = 256 (1 MiB) to the reply to INIT. Only reads grow: libfuse's
//  answer keeps max_write at what its receive buffer holds.
// replies: the binding's JS answer wakes a libfuse thread, which then writes the reply to the
//  kernel; nothing told JS when that had happened. Now each thread notes that it owes a reply
//  from the answer until its reply is written, and `gitfs_replies_due` counts those threads
//  (src/mount/fuse-binding.ts): a mount that makes the kernel forget what older answers told it
//  waits until no reply is still on its way.
// null paths: a file held open whose directory was removed (rm -rf while a process holds a file
//  in it) has no path left; libfuse then failed every request on it with ENOENT (reads, writes,
//  fstat; a page fault of a mapping: SIGBUS). With flag_nullpath_ok libfuse passes such requests
//  on with a NULL path, which the binding hands to JS as "" (the mount answers them by handle).
//  The package's JS answered fgetattr (a request that carries the handle: after ftruncate, on
//  lseek SEEK_END) with the file system's getattr of the path, so the handle never reached it;
//  it now calls fgetattr with the handle.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const UTIMENS = '/* gitfs patch: utimens */';
const KEEP_CACHE = '/* gitfs patch: keep_cache */';
const LOCALS = '/* gitfs patch: thread locals */';
const BIG_READS = '/* gitfs patch: big reads */';
const REPLIES = '/* gitfs patch: replies */';
const NULL_PATHS = '/* gitfs patch: null paths */';
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
if (!text.includes(BIG_READS)) {
  edit(
    'static void* start_fuse_thread (void *data) {\n',
    `${BIG_READS}
#include <errno.h>
#include <sys/uio.h>

#define GITFS_FUSE_INIT 26
#define GITFS_FUSE_MAX_PAGES (1u << 22)
#define GITFS_MAX_PAGES 256

/* The channel the session reads requests from and writes replies to: the kernel's descriptor,
   as libfuse's own channel does, noting the INIT request to widen its reply. */
typedef struct {
  struct fuse_chan *kernel; /* from fuse_mount: owns the descriptor, unmounts */
  uint64_t init_unique;
} gitfs_chan_t;

static int gitfs_chan_receive (struct fuse_chan **chp, char *buf, size_t size) {
  struct fuse_chan *ch = *chp;
  gitfs_chan_t *gc = (gitfs_chan_t *) fuse_chan_data(ch);
  for (;;) {
    ssize_t res = read(fuse_chan_fd(ch), buf, size);
    if (res == -1) {
      int err = errno;
      if (err == ENOENT) continue; /* the request was interrupted before we read it */
      if (err == ENODEV) {
        fuse_session_exit(fuse_chan_session(ch));
        return 0;
      }
      if (err != EINTR && err != EAGAIN) perror("fuse: reading device");
      return -err;
    }
    if ((size_t) res < 40) {
      fprintf(stderr, "short read on fuse device\\n");
      return -EIO;
    }
    uint32_t opcode;
    memcpy(&opcode, buf + 4, 4);
    if (opcode == GITFS_FUSE_INIT) memcpy(&gc->init_unique, buf + 8, 8);
    return (int) res;
  }
}

static int gitfs_chan_send (struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  if (iov == NULL) return 0;
  gitfs_chan_t *gc = (gitfs_chan_t *) fuse_chan_data(ch);
  /* The INIT reply: libfuse 2 answers the 24 bytes of protocol 7.22; the kernel reads the longer
     fuse_init_out of later minors when it is sent (max_pages at byte 28). */
  unsigned char header[16];
  unsigned char init_out[64];
  struct iovec widened[2];
  if (gc->init_unique != 0 && count == 2 && iov[0].iov_len == sizeof(header) && iov[1].iov_len >= 16 && iov[1].iov_len <= sizeof(init_out)) {
    uint64_t unique;
    int32_t error;
    memcpy(header, iov[0].iov_base, sizeof(header));
    memcpy(&error, header + 4, 4);
    memcpy(&unique, header + 8, 8);
    if (unique == gc->init_unique && error == 0) {
      gc->init_unique = 0;
      uint32_t len = sizeof(header) + sizeof(init_out);
      uint32_t flags;
      uint16_t max_pages = GITFS_MAX_PAGES;
      memset(init_out, 0, sizeof(init_out));
      memcpy(init_out, iov[1].iov_base, iov[1].iov_len);
      memcpy(&flags, init_out + 12, 4);
      flags |= GITFS_FUSE_MAX_PAGES;
      memcpy(init_out + 12, &flags, 4);
      memcpy(init_out + 28, &max_pages, 2);
      memcpy(header, &len, 4);
      widened[0].iov_base = header;
      widened[0].iov_len = sizeof(header);
      widened[1].iov_base = init_out;
      widened[1].iov_len = sizeof(init_out);
      iov = widened;
    }
  }
  ssize_t res = writev(fuse_chan_fd(ch), iov, count);
  if (res == -1) {
    int err = errno;
    /* ENOENT: the request was interrupted and the reply is dropped */
    if (!fuse_session_exited(fuse_chan_session(ch)) && err != ENOENT) perror("fuse: writing device");
    return -err;
  }
  return 0;
}

static void gitfs_chan_destroy (struct fuse_chan *ch) {
  free(fuse_chan_data(ch));
}

static struct fuse_chan_ops gitfs_chan_ops = {
  .receive = gitfs_chan_receive,
  .send = gitfs_chan_send,
  .destroy = gitfs_chan_destroy,
};

/* A channel over the kernel channel's descriptor; NULL if none could be made. */
static struct fuse_chan* gitfs_chan_new (struct fuse_chan *kernel) {
  gitfs_chan_t *gc = (gitfs_chan_t *) calloc(1, sizeof(gitfs_chan_t));
  if (gc == NULL) return NULL;
  gc->kernel = kernel;
  struct fuse_chan *ch = fuse_chan_new(&gitfs_chan_ops, fuse_chan_fd(kernel), fuse_chan_bufsize(kernel), gc);
  if (ch == NULL) free(gc);
  return ch;
}

static void* start_fuse_thread (void *data) {
`,
  );
  edit(
    '  fuse_unmount(ft->mnt, ft->ch);\n  fuse_session_remove_chan(ft->ch);\n',
    '  struct fuse_chan *kernel = ((gitfs_chan_t *) fuse_chan_data(ft->ch))->kernel;\n  fuse_chan_destroy(ft->ch);\n  fuse_unmount(ft->mnt, kernel);\n',
  );
  edit(
    '  struct fuse *fuse = fuse_new(ch, &args, &ops, sizeof(struct fuse_operations), ft);\n',
    `  struct fuse_chan *kernel = ch;
  ch = gitfs_chan_new(kernel);
  if (ch == NULL) {
    fuse_unmount(mnt, kernel);
    napi_throw_error(env, "fuse failed", "fuse failed");
    return NULL;
  }

  struct fuse *fuse = fuse_new(ch, &args, &ops, sizeof(struct fuse_operations), ft);
`,
  );
}
if (!text.includes(REPLIES)) {
  edit(
    'static int IS_ARRAY_BUFFER_DETACH_SUPPORTED = 0;\n',
    `static int IS_ARRAY_BUFFER_DETACH_SUPPORTED = 0;

${REPLIES}
/* libfuse threads holding an answer from JS whose reply they have not written yet. */
static int64_t gitfs_replies_owed = 0;
`,
  );
  edit('  void *gitfs_next;\n} fuse_thread_locals_t;', '  void *gitfs_next;\n  int gitfs_owes_reply;\n} fuse_thread_locals_t;');
  // One request may take several answers (create, then getattr) and gets one reply: a thread owes
  // one reply however many answers it took since its last.
  edit(
    '    l->res = res;\\\n    uv_sem_post(&(l->sem));\\\n',
    '    l->res = res;\\\n    if (__atomic_exchange_n(&(l->gitfs_owes_reply), 1, __ATOMIC_SEQ_CST) == 0) __atomic_add_fetch(&gitfs_replies_owed, 1, __ATOMIC_SEQ_CST);\\\n    uv_sem_post(&(l->sem));\\\n',
  );
  edit(
    'static pthread_mutex_t gitfs_idle_lock = PTHREAD_MUTEX_INITIALIZER;\n',
    `/* The reply \`l\`'s thread owed is written (or the thread ends without one). */
static void gitfs_reply_written (fuse_thread_locals_t *l) {
  if (l != NULL && __atomic_exchange_n(&(l->gitfs_owes_reply), 0, __ATOMIC_SEQ_CST) == 1) __atomic_sub_fetch(&gitfs_replies_owed, 1, __ATOMIC_SEQ_CST);
}

/* How many libfuse threads still owe the kernel the reply to an answer they took. */
NAPI_METHOD(gitfs_replies_due) {
  int64_t owed = __atomic_load_n(&gitfs_replies_owed, __ATOMIC_SEQ_CST);
  uint32_t due = owed > 0 ? (uint32_t) owed : 0;
  NAPI_RETURN_UINT32(due)
}

static pthread_mutex_t gitfs_idle_lock = PTHREAD_MUTEX_INITIALIZER;
`,
  );
  edit(
    '  fuse_thread_locals_t *l = (fuse_thread_locals_t *) data;\n  pthread_mutex_lock(&gitfs_idle_lock);\n',
    '  fuse_thread_locals_t *l = (fuse_thread_locals_t *) data;\n  gitfs_reply_written(l);\n  pthread_mutex_lock(&gitfs_idle_lock);\n',
  );
  edit(
    '  ssize_t res = writev(fuse_chan_fd(ch), iov, count);\n',
    '  ssize_t res = writev(fuse_chan_fd(ch), iov, count);\n  gitfs_reply_written((fuse_thread_locals_t *) pthread_getspecific(thread_locals_key));\n',
  );
  // a thread back for its next request has nothing left to write (libfuse answers a release it
  // makes after a reply the kernel refused with none)
  edit(
    '  gitfs_chan_t *gc = (gitfs_chan_t *) fuse_chan_data(ch);\n  for (;;) {\n',
    '  gitfs_chan_t *gc = (gitfs_chan_t *) fuse_chan_data(ch);\n  gitfs_reply_written((fuse_thread_locals_t *) pthread_getspecific(thread_locals_key));\n  for (;;) {\n',
  );
  edit('  NAPI_EXPORT_FUNCTION(fuse_native_unmount)\n', '  NAPI_EXPORT_FUNCTION(fuse_native_unmount)\n  NAPI_EXPORT_FUNCTION(gitfs_replies_due)\n');
}
if (!text.includes(NULL_PATHS)) {
  const call = 'napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH';
  if (!text.includes(call)) throw new Error(`patch-fuse-native: no "${call}" in ${source}`);
  text = text.replaceAll(call, 'napi_create_string_utf8(env, l->path == NULL ? "" : l->path, NAPI_AUTO_LENGTH');
  edit('  struct fuse_operations ops = { };\n', `  struct fuse_operations ops = { };\n  ${NULL_PATHS}\n  ops.flag_nullpath_ok = 1;\n`);
}
if (text !== before) {
  writeFileSync(source, text);
  rmSync(join(pkgDir, 'build'), { recursive: true, force: true });
}

const glue = join(pkgDir, 'index.js');
const FGETATTR = '/* gitfs patch: fgetattr */';
let js = readFileSync(glue, 'utf8');
if (!js.includes(FGETATTR)) {
  const from = "    this.ops.getattr(path, (err, stat) => {\n      if (err) return signal(err)\n      return signal(0, getStatArray(stat))\n    })\n  }\n\n  _op_access";
  if (js.split(from).length !== 2) throw new Error(`patch-fuse-native: expected exactly one fgetattr body in ${glue}`);
  js = js.replace(from, `    ${FGETATTR}\n    this.ops.fgetattr(path, fd, (err, stat) => {\n      if (err) return signal(err)\n      return signal(0, getStatArray(stat))\n    })\n  }\n\n  _op_access`);
  writeFileSync(glue, js);
}

try {
  createRequire(import.meta.url)('@cocalc/fuse-native');
} catch {
  // npm puts its bundled node-gyp on the PATH of lifecycle scripts; npm_config_node_gyp names it otherwise.
  const gyp = process.env.npm_config_node_gyp;
  const [cmd, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
  execFileSync(cmd, args, { cwd: pkgDir, stdio: 'inherit' });
}

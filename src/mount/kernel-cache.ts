/**
 * The kernel's caches of a mount, dropped on request. The kernel keeps a mount's names and
 * attributes for the timeouts the mount gave it; when the branches change behind its back (a
 * commit elsewhere, a fetch), the mount tells it to forget them with FUSE notifications
 * written to the mount's own `/dev/fuse` descriptor (docs/PROTOCOL.md, "Kernel cache").
 *
 * The binding (libfuse 2's high-level API) hides its descriptor and its node ids; the descriptor
 * is found in /proc/self/fd as the one `/dev/fuse` that mounting opened. The root's node id is 1;
 * dropping a name at the root drops every cached name beneath it that nothing uses, so a branch
 * is forgotten through its first path component. Names in use (a file held open, a working
 * directory) are not dropped but cut off from their path (the kernel's d_invalidate) until a
 * lookup of the name takes them back, which the session makes at once (session.ts, `forget`);
 * for files held open the node id is the inode number libfuse reports (it reports node ids as
 * inode numbers), which the mount learns by a stat off the main thread.
 *
 * Each notification takes the root directory's lock in the kernel, which a request in progress
 * there may hold while it waits for this process to answer: notifications are therefore written
 * on the mount's own thread (self-thread.ts), in order, never on the main thread or libuv's pool,
 * and a request handler never waits for them.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { ENDED, type SelfThread } from './self-thread.js';

const ROOT_ID = 1n;
const OUT_HEADER = 16;
const NOTIFY_INVAL_INODE = 2;
const NOTIFY_INVAL_ENTRY = 3;

/** The `/dev/fuse` descriptors this process holds now. */
export function fuseDescriptors(): Set<number> {
  const found = new Set<number>();
  let names: string[] = [];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return found;
  }
  for (const name of names) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) === '/dev/fuse') found.add(Number(name));
    } catch {
      // closed meanwhile
    }
  }
  return found;
}

function header(length: number, code: number): Buffer {
  const b = Buffer.alloc(length);
  b.writeUInt32LE(length, 0);
  b.writeInt32LE(code, 4); // a notification: the code rides in the error field, unique is 0
  return b;
}

/** FUSE_NOTIFY_INVAL_ENTRY: forget `name` under directory `parent` (and all cached below it). */
export function invalEntryMessage(parent: bigint, name: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  const b = header(OUT_HEADER + 16 + bytes.length + 1, NOTIFY_INVAL_ENTRY);
  b.writeBigUInt64LE(parent, OUT_HEADER);
  b.writeUInt32LE(bytes.length, OUT_HEADER + 8);
  bytes.copy(b, OUT_HEADER + 16); // then the NUL the kernel expects, already zero
  return b;
}

/**
 * FUSE_NOTIFY_INVAL_INODE: forget the node's attributes, and with `pages` its cached pages too
 * (offset 0, length 0: all of them; offset -1 keeps them).
 */
export function invalInodeMessage(node: bigint, pages = false): Buffer {
  const b = header(OUT_HEADER + 24, NOTIFY_INVAL_INODE);
  b.writeBigUInt64LE(node, OUT_HEADER);
  b.writeBigInt64LE(pages ? 0n : -1n, OUT_HEADER + 8);
  return b;
}

export class KernelCache {
  constructor(
    private readonly fd: number,
    private readonly thread: SelfThread,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Makes the kernel forget the given names at the mount's root, and the root's own attributes.
   * Resolves when the kernel has done so (never await it inside a request handler).
   */
  forgetRootNames(names: Iterable<string>): Promise<void> {
    const messages = [...new Set(names)].map((n) => invalEntryMessage(ROOT_ID, n));
    messages.push(invalInodeMessage(ROOT_ID));
    return this.send(messages);
  }

  /** Makes the kernel forget the attributes and pages of the file with this node id. */
  forgetNode(node: bigint): Promise<void> {
    return this.send([invalInodeMessage(node, true)]);
  }

  /** The thread writes them in the order given, after those sent before. */
  private async send(messages: readonly Buffer[]): Promise<void> {
    const failed = await Promise.all(messages.map((m) => this.thread.write(this.fd, m)));
    for (const code of failed) {
      // ENOENT: nothing cached under that name. EBADF/ENODEV: unmounted meanwhile. ENDED: the mount is stopping (or its thread said why it is gone).
      if (code !== undefined && !['ENOENT', 'EBADF', 'ENODEV', ENDED].includes(code)) this.log(`gitfs mount: kernel cache notification failed: ${code}`);
    }
  }
}

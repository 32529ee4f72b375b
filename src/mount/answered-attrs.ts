/**
 * The attributes the mount last told the kernel, per path, for as long as the kernel may keep
 * them (the mount's attribute timeout). When a branch changes behind the kernel's back, these
 * are the sizes the kernel may still hold for the branch's files, whatever happened to their
 * names meanwhile: a name in use while the kernel forgot its branch, or an answer from the old
 * view that reached the kernel after the forget, keeps them. The session compares each with
 * what the path names now and makes the kernel forget the node of every one that differs
 * (src/mount/session.ts); a forget by node cannot miss, and an answer older than it is
 * discarded by the kernel.
 */
import type { Attr } from './attrs.js';

/** What of an answer must still hold for the kernel's copy to be right. */
export interface AnsweredAttr {
  readonly mode: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/** At most this many paths are remembered; past it the oldest answers are let go. */
const MAX_PATHS = 65536;

export class AnsweredAttrs {
  /** In the order answered (a path answered again moves to the end). */
  private readonly byPath = new Map<string, { readonly attr: AnsweredAttr; readonly at: number }>();

  constructor(
    private readonly keepMs: number,
    private readonly now: () => number,
  ) {}

  /** The kernel was told `attr` for `path` just now. */
  note(path: string, attr: Attr): void {
    const at = this.now();
    this.byPath.delete(path);
    this.byPath.set(path, { attr: { mode: attr.mode, size: attr.size, mtimeMs: attr.mtime.getTime() }, at });
    this.expire(at);
  }

  /**
   * The paths (with what the kernel was told) that `within` accepts, answered recently enough
   * that the kernel may hold them, and not before `since`.
   */
  held(within: (path: string) => boolean, since = -Infinity): Array<[string, AnsweredAttr]> {
    this.expire(this.now());
    const out: Array<[string, AnsweredAttr]> = [];
    for (const [path, { attr, at }] of this.byPath) if (at >= since && within(path)) out.push([path, attr]);
    return out;
  }

  private expire(now: number): void {
    for (const [path, { at }] of this.byPath) {
      if (now - at <= this.keepMs && this.byPath.size <= MAX_PATHS) break;
      this.byPath.delete(path);
    }
  }
}

/** Whether the kernel's copy of `told` is wrong for the attributes of now (`undefined`: the path is gone). */
export function differs(told: AnsweredAttr, now: Attr | undefined): boolean {
  return now === undefined || now.mode !== told.mode || now.size !== told.size || now.mtime.getTime() !== told.mtimeMs;
}

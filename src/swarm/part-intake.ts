/**
 * The blobs in parts that one request's answer brings (docs/PROTOCOL.md "Blobs in parts"): one at
 * a time, each assembled into a pack of its own as its parts come (part-assembly.ts), the
 * connection not read meanwhile, so at most a part or two wait in memory whatever the disk's
 * pace. The rest of the answer (objects, rejects) is dealt with in its turn behind the parts
 * (after()). A blob whose parts stop short (another blob's first part comes, or anything else of
 * the answer, or the request ends) is dropped, no fault of the peer's (its entry may have failed
 * its CRC), but once: a blob started again in the same answer gets the peer blamed (or a peer could
 * keep a request, and its reader, for ever by starting over); so does a part that breaks a rule,
 * or a blob not asked for (object-read.ts `blamePeer`), and nothing of it is kept.
 */
import { ErrorCodes, GitfsError, isGitfsError } from '../errors.js';
import type { Oid } from '../objects/oid.js';
import type { SwarmConnection } from './connection.js';
import type { LocalObjects } from './local-objects.js';
import type { PartMessage } from './messages.js';
import { blamePeer, type BlameComponents } from './blame.js';
import { PartAssembly } from './part-assembly.js';

export interface PartIntakeComponents extends BlameComponents {
  readonly local: Pick<LocalObjects, 'receiveLarge'>;
}

export interface PartIntakeEvents {
  /** A blob came whole, checked, and is stored (where its sink keeps anything). */
  stored(oid: Oid, size: number): void;
  /** Storing failed here (not the peer's fault). */
  failed(e: GitfsError): void;
}

export class PartIntake {
  private assembly: PartAssembly | undefined;
  private chain: Promise<void> = Promise.resolve();
  /** Steps queued on `chain` and not done. */
  private waiting = 0;
  private ended = false;
  /** Blobs begun in this answer: each may begin once. */
  private readonly begun = new Set<Oid>();

  constructor(
    private readonly conn: SwarmConnection,
    /** What the request asked for and has not had yet. */
    private readonly wanted: ReadonlySet<Oid>,
    private readonly c: PartIntakeComponents,
    private readonly events: PartIntakeEvents,
  ) {}

  /** The blob being assembled, if one is: its id and the size its parts declare. */
  get open(): { readonly oid: Oid; readonly size: number } | undefined {
    return this.assembly;
  }

  part(m: PartMessage): void {
    this.conn.pauseWhile(this.step(() => this.take(m)));
  }

  /** Runs `then` once every part received so far is dealt with (at once when none waits); a blob still open stopped short. */
  after(then: () => void): void {
    if (this.waiting === 0 && this.assembly === undefined) return then();
    void this.step(async () => {
      await this.dropOpen();
      then();
    });
  }

  /** The request ended: a blob still open is dropped, parts still to come are not looked at. */
  end(): void {
    this.ended = true;
    void this.step(() => this.dropOpen());
  }

  private async take(m: PartMessage): Promise<void> {
    if (this.ended) return;
    if (this.assembly !== undefined && this.assembly.oid !== m.oid) await this.dropOpen();
    let assembly = this.assembly;
    if (assembly === undefined) {
      if (!this.wanted.has(m.oid)) return blamePeer(this.conn, m.oid, `parts of ${m.oid}, not asked for`, this.c);
      if (m.offset !== 0) return blamePeer(this.conn, m.oid, `parts of ${m.oid} from ${m.offset}, not from its start`, this.c);
      if (this.begun.has(m.oid)) return blamePeer(this.conn, m.oid, `parts of ${m.oid} begun again in one answer`, this.c);
      this.begun.add(m.oid);
      assembly = this.assembly = new PartAssembly(m.oid, m.size, await this.c.local.receiveLarge(m.oid, m.size));
    }
    try {
      if (!(await assembly.add(m))) return;
      this.assembly = undefined;
      this.events.stored(m.oid, m.size);
    } catch (e) {
      this.assembly = undefined;
      if (isGitfsError(e, ErrorCodes.HOSTILE_OBJECT)) blamePeer(this.conn, m.oid, e.message, this.c);
      else this.events.failed(e instanceof GitfsError ? e : new GitfsError(ErrorCodes.IO, `storing ${m.oid} failed: ${(e as Error).message}`, { oid: m.oid }, { cause: e }));
    }
  }

  private async dropOpen(): Promise<void> {
    const open = this.assembly;
    this.assembly = undefined;
    await open?.abort().catch(() => undefined);
  }

  /** Runs `work` after every step before it; a failure of one is reported, never left to break the chain. */
  private step(work: () => Promise<void>): Promise<void> {
    this.waiting++;
    const run = this.chain.then(work).catch((e: unknown) => this.events.failed(e instanceof GitfsError ? e : new GitfsError(ErrorCodes.IO, (e as Error).message, {}, { cause: e })));
    this.chain = run.finally(() => void this.waiting--);
    return this.chain;
  }
}

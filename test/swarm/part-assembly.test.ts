import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { hashObject, type Oid } from '../../src/objects/oid.js';
import { LIMITS, type PartMessage } from '../../src/swarm/messages.js';
import { maxStreamBytes } from '../../src/objects/compress.js';
import { PartAssembly, type PartFault, type PartSink } from '../../src/swarm/part-assembly.js';
import { compressibleBytes, pseudoRandomBytes } from '../support/data.js';

/** A sink that keeps what it is given, and says whether it was committed or aborted. */
function memorySink(): PartSink & { readonly bytes: Buffer[]; state: 'open' | 'committed' | 'aborted' } {
  const sink = {
    bytes: [] as Buffer[],
    state: 'open' as 'open' | 'committed' | 'aborted',
    write: async (zlib: Buffer) => void sink.bytes.push(Buffer.from(zlib)),
    commit: async () => void (sink.state = 'committed'),
    abort: async () => void (sink.state = 'aborted'),
  };
  return sink;
}

/** `zlib` cut into parts at `cuts` (offsets into it), as a sender makes them for `oid` of `size` bytes. */
function partsOf(oid: Oid, size: number, zlib: Buffer, cuts: readonly number[]): PartMessage[] {
  const bounds = [0, ...cuts, zlib.length];
  return bounds.slice(1).map((end, i) => ({ kind: 'part', request: 7, oid, size, offset: bounds[i] as number, zlib: zlib.subarray(bounds[i], end), last: i === bounds.length - 2 }));
}

/** Feeds `parts` to a fresh assembly of `oid`/`size`: what add() said, or the reason of the HOSTILE_OBJECT it threw. */
async function assemble(oid: Oid, size: number, parts: readonly PartMessage[]): Promise<{ outcome: boolean[] | PartFault; sink: ReturnType<typeof memorySink> }> {
  const sink = memorySink();
  const assembly = new PartAssembly(oid, size, sink);
  const outcome: boolean[] = [];
  try {
    for (const p of parts) outcome.push(await assembly.add(p));
  } catch (e) {
    assert.ok(isGitfsError(e, ErrorCodes.HOSTILE_OBJECT), String(e));
    return { outcome: e.data['reason'] as PartFault, sink };
  }
  return { outcome, sink };
}

describe('blobs in parts: the receiver (part-assembly.ts)', function () {
  this.timeout(60_000);
  const content = pseudoRandomBytes(3 << 20, 'parted');
  const oid = hashObject('blob', content);
  const zlib = deflateSync(content, { level: 1 });
  // As a sender cuts: every part but the last of LIMITS.partBytes.
  const cuts = [LIMITS.partBytes, 2 * LIMITS.partBytes, 3 * LIMITS.partBytes];
  /** The parts of `content` at `cuts`, those numbered `which`, in that order. */
  const pick = (which: readonly number[]): PartMessage[] => {
    const all = partsOf(oid, content.length, zlib, cuts);
    return which.map((i) => all[i] as PartMessage);
  };

  it('stores a blob whose parts come in order: the sink gets the stream as it came, committed only at the end', async () => {
    const { outcome, sink } = await assemble(oid, content.length, partsOf(oid, content.length, zlib, cuts));
    assert.deepEqual(outcome, [false, false, false, true]);
    assert.equal(sink.state, 'committed');
    assert.ok(Buffer.concat(sink.bytes).equals(zlib));
    // Compressible content too, where a part inflates to far more than its bytes.
    const text = compressibleBytes(16 << 20, 'parted-text');
    const textZlib = deflateSync(text);
    assert.ok(textZlib.length > LIMITS.partBytes);
    const r = await assemble(hashObject('blob', text), text.length, partsOf(hashObject('blob', text), text.length, textZlib, [LIMITS.partBytes]));
    assert.deepEqual(r.outcome, [false, true]);
  });

  const cases: Array<[string, PartFault, () => { oid?: Oid; size?: number; parts: PartMessage[] }]> = [
    ['a part out of order', 'order', () => ({ parts: pick([0, 2, 1, 3]) })],
    ['a part overlapping the one before', 'order', () => {
      const [p0, p1, p2] = pick([0, 1, 2]) as [PartMessage, PartMessage, PartMessage];
      return { parts: [p0, p1, { ...p2, offset: p2.offset - 5, zlib: zlib.subarray(p2.offset - 5, p2.offset + p2.zlib.length) }] };
    }],
    ['a part before the last shorter than LIMITS.partBytes', 'cut', () => ({ parts: partsOf(oid, content.length, zlib, [1, ...cuts]) })],
    ['a part of another size midway', 'mixed', () => {
      const [p0, p1] = pick([0, 1]) as [PartMessage, PartMessage];
      return { parts: [p0, { ...p1, size: content.length + 1 }] };
    }],
    ['content of another id', 'hash', () => ({ oid: hashObject('blob', Buffer.from('something else')), parts: partsOf(hashObject('blob', Buffer.from('something else')), content.length, zlib, cuts) })],
    ['a stream that says less than its content', 'oversize', () => ({ size: content.length - 1, parts: partsOf(oid, content.length - 1, zlib, cuts) })],
    ['a stream that says more than its content', 'short', () => ({ size: content.length + 1, parts: partsOf(oid, content.length + 1, zlib, cuts) })],
    ['a stream cut short: its last part flagged before its end', 'short', () => {
      const p = partsOf(oid, content.length, zlib.subarray(0, zlib.length - 100), cuts);
      return { parts: p };
    }],
    ['bytes after the end of the zlib stream', 'stream', () => ({ parts: partsOf(oid, content.length, Buffer.concat([zlib, Buffer.from('more')]), cuts) })],
    ['damaged zlib data', 'stream', () => {
      const damaged = Buffer.from(zlib);
      damaged[0] = 0x00;
      return { parts: partsOf(oid, content.length, damaged, cuts) };
    }],
    ['a stream longer than deflate makes of its size (empty stored blocks without end)', 'oversize', () => {
      const size = 1000;
      const empty = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]); // a stored block of 0 bytes, not final
      const stream = Buffer.concat([Buffer.from([0x78, 0x01]), ...Array.from<Buffer>({ length: Math.ceil(maxStreamBytes(size) / 5) + 1 }).fill(empty)]);
      const fake = createHash('sha1').update('x').digest('hex') as Oid;
      return { oid: fake, size, parts: partsOf(fake, size, stream, []) };
    }],
  ];
  for (const [what, reason, make] of cases) {
    it(`refuses ${what} (${reason}): nothing is committed, the sink is aborted`, async () => {
      const c = make();
      const r = await assemble(c.oid ?? oid, c.size ?? content.length, c.parts);
      assert.equal(r.outcome, reason);
      assert.equal(r.sink.state, 'aborted');
    });
  }

  it('a stream that stops (no last part) is never committed; aborted, its sink is dropped', async () => {
    const sink = memorySink();
    const assembly = new PartAssembly(oid, content.length, sink);
    const parts = partsOf(oid, content.length, zlib, cuts);
    for (const p of parts.slice(0, 2)) assert.equal(await assembly.add(p), false);
    assert.equal(sink.state, 'open');
    await assembly.abort();
    assert.equal(sink.state, 'aborted');
  });
});

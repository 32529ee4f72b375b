import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { BLOCK_BYTES, BlockPool, MIN_POOLED_BYTES } from '../../src/swarm/block-pool.js';
import { FrameError, FrameGuard } from '../../src/swarm/frame-guard.js';
import { decodeObjects } from '../../src/swarm/objects-codec.js';
import { decodeMessage, encodeMessage, LIMITS, SCHEMA, WireError, type SwarmMessage, type WantKind } from '../../src/swarm/messages.js';
import type { Oid } from '../../src/objects/oid.js';

const oid = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex') as Oid);
const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** Records with ordinary prototypes, as decoding builds them. */
const record = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> => fc.record(model, { noNullPrototype: true });

const message: fc.Arbitrary<SwarmMessage> = fc.oneof(
  record({ kind: fc.constant('interested' as const), commit: oid, history: fc.integer({ min: 0, max: LIMITS.history }) }),
  // What a commit adds to a base, as deep as the history asks.
  record({ kind: fc.constant('interested' as const), commit: oid, history: fc.integer({ min: 0, max: LIMITS.history }), base: oid }),
  fc.integer({ min: 0, max: 2000 }).chain((pieces) =>
    record({
      kind: fc.constant('have' as const),
      commit: oid,
      history: fc.integer({ min: 0, max: 100 }),
      pieces: fc.constant(pieces),
      bitfield: fc.uint8Array({ minLength: Math.ceil(pieces / 8), maxLength: Math.ceil(pieces / 8) }).map((b) => Buffer.from(b)),
      complete: fc.boolean(),
    }),
  ),
  record({ kind: fc.constant('have_piece' as const), commit: oid, history: fc.nat(100), piece: fc.nat(LIMITS.pieces - 1) }),
  record({ kind: fc.constant('have_piece' as const), commit: oid, history: fc.nat(100), piece: fc.nat(LIMITS.pieces - 1), base: oid }),
  record({ kind: fc.constant('have' as const), commit: oid, history: fc.nat(100), pieces: fc.constant(9), bitfield: fc.uint8Array({ minLength: 2, maxLength: 2 }).map((b) => Buffer.from(b)), complete: fc.boolean(), base: oid }),
  record({ kind: fc.constant('want' as const), request: u32, want: fc.constantFrom('blobs' as const, 'meta' as const, 'read' as const), oids: fc.array(oid, { minLength: 1, maxLength: 50 }), ahead: fc.boolean() }),
  record({
    kind: fc.constant('objects' as const),
    request: u32,
    objects: fc.array(
      fc.oneof(
        record({ oid, type: fc.constantFrom('blob' as const, 'tree' as const, 'commit' as const), content: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) }),
        // Held uncompressed by its sender: the flag goes with the content.
        record({ oid, type: fc.constant('blob' as const), content: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), stored: fc.constant(true) }),
        // Deflated: the content goes as its zlib stream, and comes out inflated beside it.
        fc.tuple(oid, fc.uint8Array({ maxLength: 300 }), fc.nat(9)).map(([id, b, level]) => ({ oid: id, type: 'blob' as const, content: Buffer.from(b), zlib: deflateSync(b, { level }) })),
      ),
      { maxLength: 5 },
    ),
    done: fc.boolean(),
  }),
  record({ kind: fc.constant('cancel' as const), request: u32 }),
  record({ kind: fc.constant('free' as const) }),
  record({ kind: fc.constant('reject' as const), request: u32, reason: fc.constantFrom('busy' as const, 'missing' as const, 'refused' as const), missing: fc.array(oid, { maxLength: 5 }) }),
  record({
    kind: fc.constant('part' as const),
    request: u32,
    oid,
    size: fc.integer({ min: 0, max: LIMITS.partedObjectBytes }),
    offset: fc.maxSafeNat(),
    zlib: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)),
    last: fc.boolean(),
  }),
);

describe('swarm/messages', () => {
  it('round-trips every message kind', () => {
    fc.assert(
      fc.property(message, (m) => {
        assert.deepEqual(decodeMessage(encodeMessage(m)), m);
      }),
      { numRuns: 500 },
    );
  });

  it('leaves the headroom asked for before the same bytes (the wire writes its extension id there)', () => {
    fc.assert(
      fc.property(message, fc.integer({ min: 1, max: 8 }), (m, headroom) => {
        const plain = Buffer.from(encodeMessage(m));
        const roomy = Buffer.from(encodeMessage(m, headroom));
        assert.equal(roomy.length, headroom + plain.length);
        assert.ok(roomy.subarray(headroom).equals(plain));
      }),
      { numRuns: 300 },
    );
  });

  it('hand-codes objects messages exactly as protobufjs reads and writes them', () => {
    const objects = message.filter((m) => m.kind === 'objects');
    fc.assert(
      fc.property(objects, (m) => {
        const fast = encodeMessage(m);
        assert.deepEqual(decodeMessage(fast, true), m, 'protobufjs reads the hand encoding');
        assert.equal(decodeObjects(Buffer.from(fast)) !== undefined, true, 'the hand decoder takes its own shape');
      }),
      { numRuns: 300 },
    );
    // protobufjs's own encoding (it writes defaults the hand encoder leaves out) decodes the same by hand.
    const generic = Buffer.from(protobuf.parse(SCHEMA, { keepCase: true }).root.lookupType('gitfs.swarm.v1.SwarmMessage').encode({ objects: { request: 0, objects: [{ oid: Buffer.alloc(20, 1), type: 'blob', content: Buffer.alloc(0) }], done: false } }).finish());
    assert.notEqual(decodeObjects(generic), undefined);
    assert.deepEqual(decodeMessage(generic), decodeMessage(generic, true));
  });

  it('the hand decoder and protobufjs agree on any bytes in the objects shape: same message or both WireError', () => {
    const outcome = (bytes: Buffer, generic: boolean): unknown => {
      try {
        return decodeMessage(bytes, generic);
      } catch (e) {
        assert.ok(e instanceof WireError, String(e));
        return 'WireError';
      }
    };
    // Bodies built from valid and invalid fields (wrong wire types, unknown fields, truncations).
    const field = fc.oneof(
      fc.constant(Buffer.from([0x08, 0x05])),
      fc.constant(Buffer.from([0x18, 0x01])),
      fc.constant(Buffer.from([0x0a, 0x01, 0x00])),
      fc.constant(Buffer.from([0x20, 0x01])),
      fc.constant(Buffer.from([0x0d, 1, 2, 3, 4])),
      fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b)),
      fc.tuple(fc.uint8Array({ minLength: 20, maxLength: 21 }), fc.constantFrom('blob', 'tree', 'bolb', ''), fc.uint8Array({ maxLength: 20 })).map(([id, type, content]) => {
        const obj = Buffer.concat([Buffer.from([0x0a, id.length]), id, Buffer.from([0x12, type.length]), Buffer.from(type), Buffer.from([0x1a, content.length]), content]);
        return Buffer.concat([Buffer.from([0x12, obj.length]), obj]);
      }),
    );
    fc.assert(
      fc.property(fc.array(field, { maxLength: 6 }), (fields) => {
        const body = Buffer.concat(fields);
        if (body.length > 127) return;
        const bytes = Buffer.concat([Buffer.from([0x2a, body.length]), body]);
        assert.deepEqual(outcome(bytes, false), outcome(bytes, true));
      }),
      { numRuns: 3000 },
    );
  });

  it('takes a deflated object only as a zlib stream consumed whole that inflates to the size it says, and bounds what one message inflates to', () => {
    const id = 'ef'.repeat(20) as Oid;
    const content = Buffer.from('kernel module firmware '.repeat(40));
    const zlib = deflateSync(content);
    const objectsWith = (o: { content?: Buffer; zlib?: Buffer; size?: number; stored?: boolean }, count = 1): Buffer => {
      const Message = protobuf.parse(SCHEMA, { keepCase: true }).root.lookupType('gitfs.swarm.v1.SwarmMessage');
      const one = { oid: Buffer.from(id, 'hex'), type: 'blob', ...o };
      return Buffer.from(Message.encode({ objects: { request: 1, objects: Array.from({ length: count }, () => one), done: true } }).finish());
    };
    const good = decodeMessage(objectsWith({ zlib, size: content.length }));
    assert.ok(good.kind === 'objects' && good.objects[0]?.content.equals(content) === true && good.objects[0].zlib?.equals(zlib) === true);
    const damaged = Buffer.from(zlib);
    damaged.writeUInt8((damaged.at(-1) ?? 0) ^ 1, damaged.length - 1); // the Adler-32
    const bad: Array<[string, Buffer]> = [
      ['a damaged stream', objectsWith({ zlib: damaged, size: content.length })],
      ['a cut stream', objectsWith({ zlib: zlib.subarray(0, zlib.length - 3), size: content.length })],
      ['bytes after the stream', objectsWith({ zlib: Buffer.concat([zlib, Buffer.from([0])]), size: content.length })],
      ['a size too small', objectsWith({ zlib, size: content.length - 1 })],
      ['a size too large', objectsWith({ zlib, size: content.length + 1 })],
      ['content and a stream', objectsWith({ content, zlib, size: content.length })],
      ['a size without a stream', objectsWith({ content, size: content.length })],
      ['a stream said to be stored uncompressed', objectsWith({ zlib, size: content.length, stored: true })],
      // 8 MiB of zeros deflates to ~8 KiB: five of them in one message would inflate to 40 MiB.
      ['a message inflating past the limit', objectsWith({ zlib: deflateSync(Buffer.alloc(8 << 20)), size: 8 << 20 }, 5)],
    ];
    for (const [what, bytes] of bad) {
      for (const generic of [false, true]) assert.throws(() => decodeMessage(bytes, generic), WireError, `${what}${generic ? ' (protobufjs)' : ''}`);
    }
    assert.equal(LIMITS.inflatedBytes < 5 * (8 << 20), true);
    // Objects for a request not awaited (cancelled, or never made) come without them: nothing inflated, nothing checked.
    const bomb = objectsWith({ zlib: deflateSync(Buffer.alloc(8 << 20)), size: 8 << 20 }, 4);
    let asked: number | undefined;
    for (const [what, bytes] of [...bad, ['a bomb', bomb] as [string, Buffer]]) {
      for (const generic of [false, true]) {
        assert.deepEqual(decodeMessage(bytes, generic, (r) => ((asked = r), false)), { kind: 'objects', request: 1, objects: [], done: true }, `${what}, not awaited${generic ? ' (protobufjs)' : ''}`);
        assert.equal(asked, 1);
      }
    }
    const awaited = decodeMessage(bomb, false, () => true);
    assert.ok(awaited.kind === 'objects' && awaited.objects.length === 4 && awaited.objects.every((o) => o.content.length === 8 << 20), 'awaited, the same message is inflated');
  });

  it('decodes from a plain Uint8Array (as the wire hands it over), with Buffers out', () => {
    const m: SwarmMessage = { kind: 'interested', commit: 'ab'.repeat(20) as Oid, history: 3 };
    const bytes = encodeMessage(m);
    const plain = new Uint8Array(bytes.length);
    plain.set(bytes);
    assert.deepEqual(decodeMessage(plain), m);
  });

  it('refuses out-of-bounds and malformed messages with WireError, never anything else', () => {
    const bad: SwarmMessage[] = [
      { kind: 'have', commit: 'ab'.repeat(20) as Oid, history: 0, pieces: 9, bitfield: Buffer.alloc(1), complete: false },
      // A base that is no commit id.
      { kind: 'interested', commit: 'ab'.repeat(20) as Oid, history: 0, base: 'cd'.repeat(3) as Oid },
      { kind: 'have_piece', commit: 'ab'.repeat(20) as Oid, history: 2, piece: 0, base: 'cd'.repeat(21) as Oid },
      { kind: 'want', request: 1, want: 'blobs', oids: [], ahead: false },
      { kind: 'want', request: 1, want: 'blobs', oids: Array.from({ length: LIMITS.wantOids + 1 }, () => 'cd'.repeat(20) as Oid), ahead: false },
      // A want kind this build does not know (encoded as enum value -1).
      { kind: 'want', request: 1, want: 'later' as WantKind, oids: ['cd'.repeat(20) as Oid], ahead: false },
      // Parts: empty, longer than a part carries, of a blob above the largest sent in parts.
      { kind: 'part', request: 1, oid: 'cd'.repeat(20) as Oid, size: 10, offset: 0, zlib: Buffer.alloc(0), last: true },
      { kind: 'part', request: 1, oid: 'cd'.repeat(20) as Oid, size: 10 << 20, offset: 0, zlib: Buffer.alloc(LIMITS.partBytes + 1), last: false },
      { kind: 'part', request: 1, oid: 'cd'.repeat(20) as Oid, size: LIMITS.partedObjectBytes + 1, offset: 0, zlib: Buffer.alloc(10), last: false },
    ];
    for (const m of bad) assert.throws(() => decodeMessage(encodeMessage(m)), WireError);
    assert.throws(() => decodeMessage(Buffer.from([0x0a, 0x03, 0x0a, 0x01, 0x00])), WireError, 'a 1-byte commit id');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
        try {
          decodeMessage(junk);
        } catch (e) {
          assert.ok(e instanceof WireError, String(e));
        }
      }),
      { numRuns: 3000 },
    );
  });
});

function frames(input: readonly Buffer[], limit: number, pool?: BlockPool): { out: Buffer[]; error?: Error } {
  const guard = new FrameGuard(limit, pool);
  const out: Buffer[] = [];
  try {
    for (const b of input) out.push(...guard.frames(b));
  } catch (error) {
    assert.ok(error instanceof FrameError);
    return { out, error };
  }
  return { out };
}

function frame(payload: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(payload.length);
  return Buffer.concat([len, payload]);
}

describe('swarm/frame-guard', () => {
  it('passes the handshake and each message on as one buffer, however the bytes arrive', () => {
    const handshake = randomBytes(68);
    const messages = [randomBytes(1), Buffer.alloc(0), randomBytes(70_000), randomBytes(5)];
    const stream = Buffer.concat([handshake, ...messages.map(frame)]);
    for (const cut of [1, 3, 7, 1000, stream.length]) {
      const pieces: Buffer[] = [];
      for (let i = 0; i < stream.length; i += cut) pieces.push(stream.subarray(i, i + cut));
      const { out, error } = frames(pieces, 1 << 20);
      assert.equal(error, undefined);
      assert.deepEqual(out, [handshake, ...messages.map(frame)], `cut every ${cut} bytes`);
    }
  });

  it('assembles each frame of a pooled size in a block of the pool, the same bytes, each in its own block', () => {
    const handshake = randomBytes(68);
    const messages = [randomBytes(10), randomBytes(MIN_POOLED_BYTES - 4), randomBytes(MIN_POOLED_BYTES - 5), randomBytes(300_000), randomBytes(BLOCK_BYTES - 4), randomBytes(BLOCK_BYTES - 3)];
    const stream = Buffer.concat([handshake, ...messages.map(frame)]);
    for (const cut of [999, 16 << 10, stream.length]) {
      const pool = new BlockPool(8);
      const pieces: Buffer[] = [];
      for (let i = 0; i < stream.length; i += cut) pieces.push(stream.subarray(i, i + cut));
      const { out, error } = frames(pieces, 2 * BLOCK_BYTES, pool);
      assert.equal(error, undefined);
      assert.deepEqual(out, [handshake, ...messages.map(frame)], `cut every ${cut} bytes`);
      assert.deepEqual(out.map((f) => pool.owns(f)), [false, false, true, false, true, true, false]);
      assert.equal(new Set(out.filter((f) => pool.owns(f)).map((f) => f.buffer)).size, 3);
    }
  });

  it('fails at a length prefix over the limit, before the body arrives', () => {
    const { out, error } = frames([randomBytes(68), frame(randomBytes(10)), Buffer.from([0x7f, 0xff, 0xff, 0xff])], 1024);
    assert.match(String(error?.message), /message of 2147483647 bytes/);
    assert.equal(out.length, 2);
  });
});

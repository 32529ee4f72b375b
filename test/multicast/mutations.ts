/**
 * Packet mutations for fuzzing the receive path, shared by the in-process fuzz
 * (test/multicast/hostile.test.ts) and the daemon fuzz (test/node/fuzz-daemon.test.ts). A
 * seeded PRNG makes a failing run repeatable from the seed it reports.
 */
import { decodeAnnouncement, encodeAnnouncement } from '../../src/multicast/announcement.js';
import { EnvelopeMessage, TO_OBJECT } from '../../src/multicast/schema.js';
import { head } from './fixture.js';

export interface Rng {
  int(n: number): number;
  bytes(n: number): Buffer;
  pick<T>(xs: readonly T[]): T;
}

/** mulberry32. */
export function prng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    int,
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => int(256))),
    pick: <T>(xs: readonly T[]): T => xs[int(xs.length)] as T,
  };
}

/** The seed from GITFS_FUZZ_SEED, or a new one. */
export function fuzzSeed(): number {
  const given = process.env['GITFS_FUZZ_SEED'];
  return given !== undefined && /^\d+$/.test(given) ? Number(given) : Date.now() % 2 ** 31;
}

export interface EnvelopeFields {
  version: number;
  cluster: Buffer;
  certificate: Buffer;
  body: Buffer;
  signature: Buffer;
}

export function envelopeFields(packet: Uint8Array): EnvelopeFields {
  return EnvelopeMessage.toObject(EnvelopeMessage.decode(packet), TO_OBJECT) as EnvelopeFields;
}

export function encodeEnvelope(f: Partial<EnvelopeFields>): Uint8Array {
  return EnvelopeMessage.encode(EnvelopeMessage.fromObject(f)).finish();
}

const FIELD_NAMES = ['version', 'cluster', 'certificate', 'body', 'signature'] as const;

export type Mutation = [packet: Uint8Array, how: string];

/**
 * Mutations of `bases` (well-formed envelopes): random datagrams, bit flips, byte changes,
 * truncations, extensions (random bytes, or a well-formed field that overrides an earlier one),
 * field swaps between packets, body and certificate bit flips under an intact envelope,
 * announcements of `legit` changed under their signatures, splices, inserted or deleted bytes,
 * and unchanged copies.
 */
export function mutator(rnd: Rng, bases: readonly Uint8Array[], legit: readonly Uint8Array[]): () => Mutation {
  const decodable = bases.map(envelopeFields);
  return () => {
    const base = Buffer.from(rnd.pick(bases));
    switch (rnd.int(13)) {
      case 0:
        return [rnd.bytes(rnd.int(1600)), 'random bytes'];
      case 1: {
        for (let k = 1 + rnd.int(8); k > 0; k--) {
          const i = rnd.int(base.length);
          base[i] = (base[i] as number) ^ (1 << rnd.int(8));
        }
        return [base, 'bits flipped'];
      }
      case 2: {
        for (let k = 1 + rnd.int(4); k > 0; k--) base[rnd.int(base.length)] = rnd.int(256);
        return [base, 'bytes replaced'];
      }
      case 3:
        return [base.subarray(0, rnd.int(base.length)), 'truncated'];
      case 4:
        return [Buffer.concat([base, rnd.bytes(1 + rnd.int(64))]), 'extended with random bytes'];
      case 5: {
        // A later field with the same number replaces the earlier one.
        const f = rnd.pick(FIELD_NAMES);
        const other = rnd.pick(decodable);
        const extra = encodeEnvelope(f === 'version' ? { version: rnd.pick([0, 1, 2, 255]) } : { [f]: rnd.int(2) === 0 ? other[f] : rnd.bytes(rnd.int(100)) });
        return [Buffer.concat([base, extra]), `extended with field ${f}`];
      }
      case 6: {
        const into = { ...rnd.pick(decodable) };
        const f = rnd.pick(FIELD_NAMES);
        return [encodeEnvelope({ ...into, [f]: rnd.pick(decodable)[f] }), `field ${f} swapped`];
      }
      case 7: {
        const into = { ...rnd.pick(decodable) };
        const body = Buffer.from(into.body);
        if (body.length > 0) {
          const i = rnd.int(body.length);
          body[i] = (body[i] as number) ^ (1 << rnd.int(8));
        }
        return [encodeEnvelope({ ...into, body }), 'body bit flipped'];
      }
      case 8: {
        const into = envelopeFields(rnd.pick(legit));
        const ann = decodeAnnouncement(into.body);
        const changed =
          rnd.int(2) === 0 || ann.heads.length === 0 ? { ...ann, seq: ann.seq + 100 } : { ...ann, heads: ann.heads.map((h, i) => (i === 0 ? head(h.branch) : h)) };
        return [encodeEnvelope({ ...into, body: Buffer.from(encodeAnnouncement(changed)) }), 'announcement changed under its signature'];
      }
      case 9: {
        const other = rnd.pick(bases);
        const cut = rnd.int(Math.min(base.length, other.length));
        return [Buffer.concat([base.subarray(0, cut), other.subarray(cut)]), 'spliced'];
      }
      case 10: {
        const i = rnd.int(base.length);
        return rnd.int(2) === 0
          ? [Buffer.concat([base.subarray(0, i), rnd.bytes(1), base.subarray(i)]), 'byte inserted']
          : [Buffer.concat([base.subarray(0, i), base.subarray(i + 1)]), 'byte deleted'];
      }
      case 11:
        return [base, 'verbatim'];
      default: {
        const into = { ...rnd.pick(decodable) };
        const cert = Buffer.from(into.certificate);
        const i = rnd.int(cert.length);
        cert[i] = (cert[i] as number) ^ (1 << rnd.int(8));
        return [encodeEnvelope({ ...into, certificate: cert }), 'certificate bit flipped'];
      }
    }
  };
}

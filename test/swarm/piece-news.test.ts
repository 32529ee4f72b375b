import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SwarmConnection } from '../../src/swarm/connection.js';
import type { SwarmMessage } from '../../src/swarm/messages.js';
import type { Oid } from '../../src/objects/oid.js';
import { ASKED_WITHIN_MS, PieceNews, type NewsSource } from '../../src/swarm/piece-news.js';

/** A connection that records what is sent on it. */
function peer(): SwarmConnection & { readonly got: SwarmMessage['kind'][] } {
  const got: SwarmMessage['kind'][] = [];
  return { got, send: (m: SwarmMessage) => void got.push(m.kind) } as unknown as SwarmConnection & { readonly got: SwarmMessage['kind'][] };
}

const commit = 'ab'.repeat(20) as Oid;
const piece = (n: number): SwarmMessage => ({ kind: 'have_piece', commit, history: 0, piece: n });

describe('news of pieces gained (piece-news.ts)', () => {
  it('tells a peer that asked lately each piece at once, the others their first piece at once and then what accumulated in one bitfield per round', async () => {
    let now = 1_000;
    const news = new PieceNews(() => now, 40);
    const [downstream, other, gone] = [peer(), peer(), peer()];
    const source: NewsSource = { subscribers: new Set([downstream, other, gone]), known: true, haveMessage: () => ({ kind: 'have', commit, history: 0, pieces: 8, bitfield: Buffer.alloc(1), complete: false }) };
    news.asked(downstream);
    for (let i = 0; i < 5; i++) news.gained(source, piece(i));
    news.forget(gone);
    (source.subscribers as Set<SwarmConnection>).delete(gone);
    assert.deepEqual(downstream.got, ['have_piece', 'have_piece', 'have_piece', 'have_piece', 'have_piece']);
    assert.deepEqual(other.got, ['have_piece'], 'the first piece at once, the rest not yet');
    await sleep(80);
    assert.deepEqual(other.got, ['have_piece', 'have'], 'one bitfield for four pieces');
    assert.deepEqual(gone.got, ['have_piece'], 'a connection forgotten hears nothing more');

    // Asking counts for ASKED_WITHIN_MS: after that the downstream is told with the others.
    now += ASKED_WITHIN_MS + 1;
    news.gained(source, piece(5));
    assert.equal(downstream.got.length, 5);
    await sleep(80);
    assert.deepEqual([downstream.got.at(-1), other.got], ['have', ['have_piece', 'have', 'have']]);
  });

  it('says nothing for a source that forgot its closure before the round (a failed fetch): no bitfield of 0 pieces', async () => {
    const news = new PieceNews(() => 1_000, 40);
    const [first, later] = [peer(), peer()];
    let known = true;
    const source = {
      subscribers: new Set([first, later]),
      get known(): boolean {
        return known;
      },
      haveMessage: (): SwarmMessage => ({ kind: 'have', commit, history: 0, pieces: known ? 8 : 0, bitfield: Buffer.alloc(known ? 1 : 0), complete: false }),
    };
    news.gained(source, piece(0));
    news.gained(source, piece(1));
    known = false;
    await sleep(80);
    assert.deepEqual([first.got, later.got], [['have_piece'], ['have_piece']]);
  });
});

/**
 * Which member a node asks for a newer revocation list: a member claiming a version it never
 * serves is backed off alone, so the list still comes from the others (it used to hold the one
 * fetch the node made, every gap, and so kept its own revocation from spreading).
 */
import assert from 'node:assert/strict';
import type { NodeId } from '../../src/cluster/node-id.js';
import { REVOCATION_ASK_GAP_MS, REVOCATION_ASK_MAX_GAP_MS, RevocationSources, type Claim } from '../../src/node/revocation-sources.js';

const LIAR = '1111111111111111' as NodeId;
const HONEST = '2222222222222222' as NodeId;
const OTHER = '3333333333333333' as NodeId;

describe('node/revocation-sources: which member to ask for a newer revocation list', () => {
  it('asks the least recently asked member claiming a newer list; one that brings nothing newer is backed off alone, doubling to 5 minutes, and the others are asked meanwhile', () => {
    const s = new RevocationSources();
    const members: Claim[] = [
      { nodeId: LIAR, revocationVersion: Number.MAX_SAFE_INTEGER },
      { nodeId: HONEST, revocationVersion: 3 },
      { nodeId: OTHER, revocationVersion: 2 },
    ];
    let now = 1_000_000;
    // The liar is asked first (never asked, listed first), and its answer brings nothing.
    assert.equal(s.choose(members, 2, now)?.nodeId, LIAR);
    s.asking(LIAR, now);
    s.answered(LIAR, false);
    // At once, while the liar's announcements keep coming: the honest member is asked (OTHER claims nothing newer).
    assert.equal(s.choose(members, 2, now)?.nodeId, HONEST);
    s.asking(HONEST, now);
    assert.equal(s.choose(members, 2, now), undefined, 'one ask a gap per member');
    s.answered(HONEST, true);
    // Version 3 adopted. The liar, backed off for twice the gap, is the only one claiming more.
    assert.equal(s.choose(members, 3, now + REVOCATION_ASK_GAP_MS), undefined);
    assert.equal(s.nextAt(LIAR), now + 2 * REVOCATION_ASK_GAP_MS);
    let gaps = 0;
    for (let i = 0; i < 20; i++) {
      now = s.nextAt(LIAR) as number;
      assert.equal(s.choose(members, 3, now - 1), undefined, 'not before its gap is over');
      assert.equal(s.choose(members, 3, now)?.nodeId, LIAR);
      s.asking(LIAR, now);
      s.answered(LIAR, false);
      gaps = (s.nextAt(LIAR) as number) - now;
    }
    assert.equal(gaps, REVOCATION_ASK_MAX_GAP_MS);
    // A member that brings a newer list is asked again after the first gap.
    const bumped = members.map((m) => (m.nodeId === HONEST ? { ...m, revocationVersion: 4 } : m));
    now += 1;
    assert.equal(s.choose(bumped, 3, now)?.nodeId, HONEST);
    s.asking(HONEST, now);
    s.answered(HONEST, true);
    assert.equal(s.nextAt(HONEST), now + REVOCATION_ASK_GAP_MS);
  });

  it('forgets members gone from the table', () => {
    const s = new RevocationSources();
    s.asking(LIAR, 0);
    s.answered(LIAR, false);
    assert.equal(s.nextAt(LIAR), 2 * REVOCATION_ASK_GAP_MS);
    assert.equal(s.choose([{ nodeId: HONEST, revocationVersion: 5 }], 1, 0)?.nodeId, HONEST);
    assert.equal(s.nextAt(LIAR), undefined);
  });
});

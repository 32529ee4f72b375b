import assert from 'node:assert/strict';
import { overLimit } from '../../src/swarm/swarm.js';

describe('overLimit (swarm.ts: at most CONNECTIONS_PER_MEMBER connections with one member)', () => {
  it('closes the oldest first, and the connection fetches use last', () => {
    assert.deepEqual(overLimit(['a', 'b', 'c', 'd'], undefined, 3), ['a']);
    assert.deepEqual(overLimit(['a', 'b', 'c', 'd'], 'a', 3), ['b'], 'the oldest is the one fetches use: the next goes');
    assert.deepEqual(overLimit(['a', 'b', 'c', 'd', 'e'], 'b', 3), ['a', 'c']);
    assert.deepEqual(overLimit(['a', 'b'], 'a', 3), [], 'under the limit: none');
    assert.deepEqual(overLimit(['a', 'b', 'c'], 'a', 0), ['b', 'c', 'a']);
  });
});

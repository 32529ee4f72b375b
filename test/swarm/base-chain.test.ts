import assert from 'node:assert/strict';
import type { Oid } from '../../src/objects/oid.js';
import { BASE_CHAIN_MAX, baseHistory, lineToBase } from '../../src/swarm/base-chain.js';
import { ErrorCodes, GitfsError, isGitfsError } from '../../src/errors.js';

describe('swarm/base-chain', () => {
  const id = (n: number): Oid => n.toString(16).padStart(40, '0') as Oid;
  /** Commit n's parents: n-1 (0 is a root), but for the merges named. */
  const history = (merges: ReadonlyMap<number, readonly number[]> = new Map()) => {
    const read: Oid[] = [];
    const parentsOf = async (c: Oid): Promise<readonly Oid[]> => {
      read.push(c);
      const n = Number.parseInt(c, 16);
      return (merges.get(n) ?? (n === 0 ? [] : [n - 1])).map(id);
    };
    return { read, parentsOf };
  };

  it('finds a base one generation back or many (how many), reading each commit of the line once', async () => {
    const h = history();
    assert.equal(await lineToBase(id(10), id(9), h.parentsOf), 1);
    assert.deepEqual(h.read, [id(10)]);
    const far = history();
    assert.equal(await lineToBase(id(10), id(3), far.parentsOf), 7);
    assert.deepEqual(far.read, [10, 9, 8, 7, 6, 5, 4].map(id));
  });

  it('no line: a merge on the way, a root, a base that is not an ancestor, or one past the limit', async () => {
    assert.equal(await lineToBase(id(10), id(3), history(new Map([[6, [5, 2]]])).parentsOf), undefined, 'a merge');
    assert.equal(await lineToBase(id(10), id(11), history().parentsOf), undefined, 'the root reached');
    const limited = history();
    assert.equal(await lineToBase(id(100), id(100 - BASE_CHAIN_MAX - 1), limited.parentsOf), undefined, 'past the limit');
    assert.equal(limited.read.length, BASE_CHAIN_MAX, 'reads no more than the limit');
    assert.equal(await lineToBase(id(100), id(100 - BASE_CHAIN_MAX), history().parentsOf), BASE_CHAIN_MAX, 'at the limit');
    const itself = history();
    assert.equal(await lineToBase(id(10), id(10), itself.parentsOf), undefined, 'the head itself');
    assert.deepEqual(itself.read, [], 'the head itself: nothing read');
  });

  it('names a closure by base with the line\'s length when the history asks as much or more, else with the history', () => {
    assert.equal(baseHistory(0, 1), 1, 'all history, the daily release: history 1');
    assert.equal(baseHistory(0, 5), 5);
    assert.equal(baseHistory(7, 5), 5);
    assert.equal(baseHistory(5, 5), 5);
    assert.equal(baseHistory(2, 5), 2, 'a history shorter than the line is kept');
    assert.equal(baseHistory(1, 1), 1);
  });

  it('fails as reading a commit fails (one no peer supplied)', async () => {
    const parentsOf = async (): Promise<readonly Oid[]> => {
      throw new GitfsError(ErrorCodes.PEER_FAILED, 'no peer supplied it');
    };
    await assert.rejects(lineToBase(id(10), id(3), parentsOf), (e: unknown) => isGitfsError(e, ErrorCodes.PEER_FAILED));
  });
});

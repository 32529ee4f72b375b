import assert from 'node:assert/strict';
import type { Oid } from '../../src/objects/oid.js';
import { BASE_CHAIN_MAX, descendsInLine } from '../../src/swarm/base-chain.js';
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

  it('finds a base one generation back or many, reading each commit of the line once', async () => {
    const h = history();
    assert.equal(await descendsInLine(id(10), id(9), h.parentsOf), true);
    assert.deepEqual(h.read, [id(10)]);
    const far = history();
    assert.equal(await descendsInLine(id(10), id(3), far.parentsOf), true);
    assert.deepEqual(far.read, [10, 9, 8, 7, 6, 5, 4].map(id));
  });

  it('no line: a merge on the way, a root, a base that is not an ancestor, or one past the limit', async () => {
    assert.equal(await descendsInLine(id(10), id(3), history(new Map([[6, [5, 2]]])).parentsOf), false, 'a merge');
    assert.equal(await descendsInLine(id(10), id(11), history().parentsOf), false, 'the root reached');
    const limited = history();
    assert.equal(await descendsInLine(id(100), id(100 - BASE_CHAIN_MAX - 1), limited.parentsOf), false, 'past the limit');
    assert.equal(limited.read.length, BASE_CHAIN_MAX, 'reads no more than the limit');
    assert.equal(await descendsInLine(id(100), id(100 - BASE_CHAIN_MAX), history().parentsOf), true, 'at the limit');
    assert.equal(await descendsInLine(id(10), id(10), history().parentsOf), false, 'the head itself');
  });

  it('fails as reading a commit fails (one no peer supplied)', async () => {
    const parentsOf = async (): Promise<readonly Oid[]> => {
      throw new GitfsError(ErrorCodes.PEER_FAILED, 'no peer supplied it');
    };
    await assert.rejects(descendsInLine(id(10), id(3), parentsOf), (e: unknown) => isGitfsError(e, ErrorCodes.PEER_FAILED));
  });
});

import assert from 'node:assert/strict';
import { historyNames } from '../../src/mount/router.js';

describe('.history names (router.ts)', () => {
  const at = (iso: string): number => Date.parse(iso);
  const id = (c: string): string => c.repeat(40);

  it('names each commit by its UTC second and short id', () => {
    const names = historyNames([
      { timeMs: at('2026-11-22T06:03:29.000Z'), commit: id('b') },
      { timeMs: at('2026-11-22T06:01:02.000Z'), commit: id('a') },
    ]);
    assert.deepEqual([...names], [
      ['20261122T060102Z_aaaaaaaaaaaa', id('a')],
      ['20261122T060329Z_bbbbbbbbbbbb', id('b')],
    ]);
  });

  it('sorts commits of one second in commit order whatever their ids, and keeps older names when newer ones come', () => {
    const second = at('2026-12-04T06:00:01.000Z');
    // Newest first, as the first-parent walk gives them; the ids sort the other way round.
    const chain = [
      { timeMs: second, commit: id('1') },
      { timeMs: second, commit: id('5') },
      { timeMs: second, commit: id('9') },
      { timeMs: at('2026-12-04T06:00:00.000Z'), commit: id('f') },
    ];
    const names = historyNames(chain);
    const sorted = [...names.keys()].sort();
    assert.deepEqual(
      sorted.map((n) => names.get(n)),
      [id('f'), id('9'), id('5'), id('1')],
      sorted.join(' '),
    );
    assert.deepEqual(sorted.slice(1), ['20261204T060001Z_999999999999', '20261204T060001Z~00001_555555555555', '20261204T060001Z~00002_111111111111']);
    const before = historyNames(chain.slice(1));
    for (const [name, commit] of before) assert.equal(names.get(name), commit, `${name} still names the same commit`);
  });
});

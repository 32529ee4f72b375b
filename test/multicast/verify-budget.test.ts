/**
 * The checking budget alone, time passed in: how many checks a source heard from lately gets of
 * its own bucket, for the part count its member claims. The receiver's use of it (tokens before
 * the checks, copies of taken packets free) is in hostile.test.ts.
 */
import assert from 'node:assert/strict';
import { DEFAULT_RATES, VerifyBudget } from '../../src/multicast/verify-budget.js';

const MEMBER = '10.0.0.2:7419';

/** The tokens `source`'s own bucket gives at `now`: the shared bucket is emptied first, by a source without one. */
function own(budget: VerifyBudget, source: string, now: number): number {
  while (budget.allow('10.9.9.9:7419', now));
  let n = 0;
  while (budget.allow(source, now)) n++;
  return n;
}

/** The tokens of `source`'s own bucket over `seconds`, taken every 100 ms from time 0. */
function over(budget: VerifyBudget, source: string, seconds: number): number {
  let n = 0;
  for (let now = 0; now <= seconds * 1000; now += 100) n += own(budget, source, now);
  return n;
}

describe('multicast/verify-budget', function () {
  it('sizes a source’s own bucket by its member’s parts: 8 per part at once, then 2 a second per part', () => {
    const budget = new VerifyBudget(DEFAULT_RATES, 0);
    budget.accepted(MEMBER, 0, 30_000, 20);
    assert.equal(own(budget, MEMBER, 0), 160);
    assert.equal(own(budget, MEMBER, 1000), 40);
  });

  it('caps it however many parts the member claims: spoofing a member of 4096 parts gets 64 checks a second after a burst of 2048, not 8192 after 32 768', () => {
    const budget = new VerifyBudget(DEFAULT_RATES, 0);
    budget.accepted(MEMBER, 0, 30_000, 4096);
    assert.equal(own(budget, MEMBER, 0), DEFAULT_RATES.sourceMaxBurst);
    const later = over(budget, MEMBER, 10);
    assert.ok(Math.abs(later - 10 * DEFAULT_RATES.sourceMaxPerSecond) <= 1, `${later} checks in 10 s`);
  });
});

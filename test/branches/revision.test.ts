import assert from 'node:assert/strict';
import { parseTime, splitRevPath } from '../../src/branches/revision.js';

describe('revision syntax', () => {
  const now = Date.UTC(2026, 10, 22, 12, 0, 0);

  it('parses absolute, unix and relative times', () => {
    assert.equal(parseTime('now', now), now);
    assert.equal(parseTime('@1700000000', now), 1_700_000_000_000);
    assert.equal(parseTime('2026-11-22 10:00', now), Date.UTC(2026, 10, 22, 10, 0));
    assert.equal(parseTime('2026-11-22T10:00:00+02:00', now), Date.UTC(2026, 10, 22, 8, 0));
    assert.equal(parseTime('2026-11-21', now), Date.UTC(2026, 10, 21));
    assert.equal(parseTime('2 hours ago', now), now - 2 * 3600_000);
    assert.equal(parseTime('1.day.ago', now), now - 86_400_000);
    assert.equal(parseTime('3 weeks ago', now), now - 21 * 86_400_000);
  });

  it('refuses what it cannot read', () => {
    for (const bad of ['yesterday-ish', '', '12', 'ten minutes ago', '2026-13-45']) assert.equal(parseTime(bad, now), undefined, bad);
  });

  it('splits REV:path at the first colon outside @{…} (branch names cannot contain one)', () => {
    assert.deepEqual(splitRevPath('main'), ['main', '']);
    assert.deepEqual(splitRevPath('kernel/stable~2:boot/vmlinuz'), ['kernel/stable~2', 'boot/vmlinuz']);
    assert.deepEqual(splitRevPath('main@{2026-11-22 10:00}:a:b'), ['main@{2026-11-22 10:00}', 'a:b']);
  });
});

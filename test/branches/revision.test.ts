import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTime, resolveRevision, splitRevPath } from '../../src/branches/revision.js';
import { Repository } from '../../src/repo/repository.js';
import { tempDirs } from '../support/tmp.js';

describe('revision syntax', () => {
  const tmp = tempDirs();
  after(() => tmp.cleanup());
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
    // A `{` not after `@` is part of the branch name (git allows `a{b`).
    assert.deepEqual(splitRevPath('a{b:dir/file'), ['a{b', 'dir/file']);
    assert.deepEqual(splitRevPath('a{b@{1}:f'), ['a{b@{1}', 'f']);
  });

  it('an abbreviated id is resolved among all the objects it matches, not the first 64 (the commit was missed past them)', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    try {
      // Blobs "p<n>\n" whose ids start with 0000 (found by trying: 64 of them among 4.4 M), and a
      // commit whose id starts with 0000 and sorts after all of them (found by trying too).
      const writer = await repo.newPackWriter();
      for (const n of PREFIX_0000) {
        const oid = await writer.write('blob', Buffer.from(`p${n}\n`));
        assert.ok(oid.startsWith('0000'), oid);
      }
      const tree = await writer.write('tree', Buffer.alloc(0));
      const text = `tree ${tree}\nauthor T <t@example.com> 1700000000 +0000\ncommitter T <t@example.com> 1700000000 +0000\n\nfar 11122941\n`;
      const commit = await writer.write('commit', Buffer.from(text));
      await writer.finish();
      assert.equal(commit, '0000fe142a52ee238455cc9fc6cd2ba0ee2c1978');
      assert.equal(await resolveRevision(repo, '0000'), commit);
      // A damaged object among the candidates (here a loose file of junk) is not the commit
      // meant: it fails nothing (it used to fail the lookup, read whole to learn its type).
      mkdirSync(join(repo.gitDir, 'objects', '00'), { recursive: true });
      writeFileSync(join(repo.gitDir, 'objects', '00', `00${'f'.repeat(36)}`), 'not zlib at all');
      assert.equal(await resolveRevision(repo, '0000'), commit);
    } finally {
      await repo.close();
    }
  });

  it('a detached HEAD (git checkout --detach) resolves to its commit, and HEAD~1 walks from it; HEAD@{…} has no branch reflog to read', async () => {
    const repo = await Repository.init(join(tmp.make(), 'repo'));
    try {
      const writer = await repo.newPackWriter();
      const tree = await writer.write('tree', Buffer.alloc(0));
      const commitText = (parent: string): string => `tree ${tree}\n${parent}author T <t@example.com> 1700000000 +0000\ncommitter T <t@example.com> 1700000000 +0000\n\nc\n`;
      const first = await writer.write('commit', Buffer.from(commitText('')));
      const second = await writer.write('commit', Buffer.from(commitText(`parent ${first}\n`)));
      await writer.finish();
      writeFileSync(join(repo.gitDir, 'HEAD'), `${second}\n`);
      assert.equal(await resolveRevision(repo, 'HEAD'), second);
      assert.equal(await resolveRevision(repo, 'HEAD~1'), first);
      await assert.rejects(resolveRevision(repo, 'HEAD@{1}'), (e: Error & { code?: string }) => e.code === 'GITFS_BAD_REVISION' && /detached/.test(e.message));
    } finally {
      await repo.close();
    }
  });
});

const PREFIX_0000 = [67772,  80226,  126696,  250933,  279772,  341509,  350479,  486674,  505005,  522367,  576691,  674672,  687996,  905068,  1047051,  1055391,  1188186,  1222108,  1243466,  1369388,  1439818,  1467149,  1605329,  1641520,  1765169,  1949692,  1983662,  2005192,  2025884,  2076473,  2175270,  2299892,  2453681,  2480476,  2541353,  2688261,  2826867,  2863590,  2905454,  2922642,  2927034,  2972769,  2988404,  3004304,  3137675,  3203458,  3282169,  3439272,  3473818,  3508063,  3613711,  3687359,  3816280,  3879824,  3910223,  3987921,  4137569,  4182096,  4198358,  4255373,  4362764,  4367489,  4371353,  4375925];

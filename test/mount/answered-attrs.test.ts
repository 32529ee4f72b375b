import assert from 'node:assert/strict';
import { AnsweredAttrs, differs } from '../../src/mount/answered-attrs.js';
import { dirAttr, fileAttr } from '../../src/mount/attrs.js';

const owner = { uid: 0, gid: 0 };

describe('mount: the attributes the kernel was told (answered-attrs.ts)', function () {
  it('keeps each path’s last answer for as long as the kernel may keep it', () => {
    let now = 1000;
    const told = new AnsweredAttrs(30_000, () => now);
    told.note('/main/a', fileAttr(owner, false, 2, 5000));
    told.note('/side/b', fileAttr(owner, false, 3, 5000));
    now += 10_000;
    told.note('/main/a', fileAttr(owner, false, 57, 6000)); // answered again: the newer answer counts, and from now
    assert.deepEqual(told.held((p) => p.startsWith('/main/')), [['/main/a', { mode: 0o100644, size: 57, mtimeMs: 6000 }]]);
    now += 25_000; // /side/b was told 35 s ago: the kernel has let it go
    assert.deepEqual(told.held(() => true).map(([p]) => p), ['/main/a']);
    assert.deepEqual(told.held(() => true, now - 24_999), [], 'nothing told since');
    assert.equal(told.held(() => true, now - 25_000).length, 1);
    now += 5_001;
    assert.deepEqual(told.held(() => true), []);
  });

  it('finds a change of size, time or kind, and a path gone', () => {
    const told = { mode: 0o100644, size: 2, mtimeMs: 5000 };
    assert.equal(differs(told, fileAttr(owner, false, 2, 5000)), false);
    assert.equal(differs(told, fileAttr(owner, false, 3, 5000)), true);
    assert.equal(differs(told, fileAttr(owner, false, 2, 5001)), true);
    assert.equal(differs(told, fileAttr(owner, true, 2, 5000)), true);
    assert.equal(differs(told, dirAttr(owner, 0o755, 5000)), true);
    assert.equal(differs(told, undefined), true);
  });
});

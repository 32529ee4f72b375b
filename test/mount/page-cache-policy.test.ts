import assert from 'node:assert/strict';
import type { Oid } from '../../src/objects/oid.js';
import { PageCachePolicy } from '../../src/mount/page-cache.js';

const X = 'a'.repeat(40) as Oid;
const Y = 'b'.repeat(40) as Oid;

describe('page-cache policy', function () {
  it('keeps pages only once the open that dropped them has read, and only for the same content', () => {
    const p = new PageCachePolicy();
    assert.equal(p.opened('main/f', 1, X, []), false, 'the first open drops the pages');
    // Another open answered before the first one's drop is known to be done: it must not keep.
    assert.equal(p.opened('main/f', 2, X, [X]), false);
    p.read('main/f', 1); // handle 1's record was replaced by handle 2's: nothing confirmed
    assert.equal(p.opened('main/f', 3, X, []), false);
    p.read('main/f', 3);
    assert.equal(p.opened('main/f', 4, X, []), true, 'confirmed: the next open keeps');
    assert.equal(p.opened('main/f', 5, Y, []), false, 'other content drops');
    p.read('main/f', 5);
    assert.equal(p.opened('main/f', 6, X, []), false);
  });

  it('makes no record while another handle at the path reads other content, or for written files', () => {
    const p = new PageCachePolicy();
    assert.equal(p.opened('main/f', 1, X, [Y]), false);
    p.read('main/f', 1);
    assert.equal(p.opened('main/f', 2, X, []), false);
    p.read('main/f', 2);
    assert.equal(p.opened('main/f', 3, undefined, []), false, 'an open for writing drops the record');
    assert.equal(p.opened('main/f', 4, X, []), false);
  });

  it('forgets the records of renamed or unlinked paths and everything below them', () => {
    const p = new PageCachePolicy();
    for (const [fh, path] of [[1, 'main/d/a'], [2, 'main/d/b'], [3, 'main/e']] as const) {
      p.opened(path, fh, X, []);
      p.read(path, fh);
    }
    p.moved('main/d', 'main/x');
    assert.equal(p.opened('main/d/a', 10, X, []), false);
    assert.equal(p.opened('main/d/b', 11, X, []), false);
    assert.equal(p.opened('main/e', 12, X, []), true);
  });
});

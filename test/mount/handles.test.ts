import assert from 'node:assert/strict';
import { HandleTable } from '../../src/mount/handles.js';

function dataHandle(path: string): { kind: 'data'; fd: number; dataId: string; writable: boolean; path: string } {
  return { kind: 'data', fd: -1, dataId: 'x', writable: false, path };
}

describe('mount: open handles (handles.ts)', function () {
  it('tells when the files a settle waits on are let go, and gives up waiting after its bound', async () => {
    const handles = new HandleTable();
    const a1 = handles.add(dataHandle('/main/a'));
    const a2 = handles.add(dataHandle('/main/a'));
    handles.add(dataHandle('/main/b')); // held all along, and not waited on
    let settled = false;
    const waited = handles.letGo((p) => p === '/main/a', 10_000).then(() => (settled = true));
    handles.remove(a1);
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false, 'one handle of /main/a is still open');
    handles.remove(a2);
    await waited;
    let gaveUp = false;
    const bounded = handles.letGo((p) => p === '/main/b', 50).then(() => (gaveUp = true));
    // a shorter timer set after the bound's, in the same turn, fires before it whatever the load
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(gaveUp, false, 'waits out its bound while the file is held');
    await bounded;
    await handles.letGo((p) => p === '/main/none', 10_000); // nothing to wait for: at once
  });

  it('finds the handles open at a path, through renames of the file and of its directories', () => {
    const handles = new HandleTable();
    const at = (path: string): number[] => [...handles.at(path)].map(([fh]) => fh).sort((x, y) => x - y);
    const a1 = handles.add(dataHandle('/main/d/a'));
    const a2 = handles.add(dataHandle('/main/d/a'));
    const b = handles.add(dataHandle('/main/d/b'));
    const other = handles.add(dataHandle('/main/da'));
    assert.deepEqual(at('/main/d/a'), [a1, a2]);
    handles.moved('/main/d', '/main/e'); // a directory: both files move, /main/da does not
    assert.deepEqual(at('/main/d/a'), []);
    assert.deepEqual(at('/main/e/a'), [a1, a2]);
    assert.deepEqual(at('/main/e/b'), [b]);
    assert.deepEqual(at('/main/da'), [other]);
    handles.moved('/main/e/b', '/main/e/a'); // a file onto another's name: both sets there now
    assert.deepEqual(at('/main/e/a'), [a1, a2, b]);
    handles.remove(a1);
    handles.remove(b);
    assert.deepEqual(at('/main/e/a'), [a2]);
    assert.equal(handles.get(a2)?.path, '/main/e/a');
  });
});

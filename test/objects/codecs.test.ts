import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeCommit, encodeCommit, type Commit } from '../../src/objects/commit.js';
import { fromTreeEntries, toTreeEntry, type DirEntry } from '../../src/objects/entry-names.js';
import type { Oid } from '../../src/objects/oid.js';
import { decodeTree, encodeTree, TreeModes, type TreeEntry } from '../../src/objects/tree.js';
import { isGitfsError } from '../../src/errors.js';

const oid = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex') as Oid);
const fileName = fc
  .string({ unit: fc.oneof(fc.constantFrom('a', 'b', '.', '~', '-', 'é', '~gitfs~', 'e', 'c1', 'keep', ' '), fc.string({ minLength: 1, maxLength: 1 })), minLength: 1, maxLength: 12 })
  .filter((n) => n !== '.' && n !== '..' && n.toLowerCase() !== '.git' && !n.includes('/') && !n.includes('\0'));

const dirEntry: fc.Arbitrary<DirEntry> = fc.oneof(
  fc.record({ name: fileName, kind: fc.constant('file' as const), executable: fc.boolean(), oid, chunked: fc.constant(false) }),
  fc.record({ name: fileName, kind: fc.constant('file' as const), executable: fc.boolean(), oid, chunked: fc.constant(true), size: fc.nat() }),
  fc.record({ name: fileName, kind: fc.constant('symlink' as const), executable: fc.constant(false), oid, chunked: fc.constant(false) }),
  fc.record({ name: fileName, kind: fc.constant('dir' as const), executable: fc.constant(false), oid, chunked: fc.constant(false) }),
  fc.record({ name: fileName, kind: fc.constant('gitlink' as const), executable: fc.constant(false), oid, chunked: fc.constant(false) }),
);

describe('codecs', () => {
  it('trees round-trip, and encoding is canonical whatever the input order', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.record({ mode: fc.constantFrom(...Object.values(TreeModes)), name: fileName, oid }), { selector: (e) => e.name, maxLength: 20 }), (entries) => {
        const bytes = encodeTree(entries as TreeEntry[]);
        const decoded = decodeTree(bytes);
        assert.equal(decoded.length, entries.length);
        assert.ok(encodeTree([...decoded].reverse()).equals(bytes));
      }),
    );
  });

  it('directory entries round-trip through tree entries, whatever the names (marker escaping), submodules (gitlinks) too', () => {
    fc.assert(
      fc.property(fc.uniqueArray(dirEntry, { selector: (e) => e.name, maxLength: 20 }), (entries) => {
        const back = fromTreeEntries(decodeTree(encodeTree(entries.map(toTreeEntry))));
        const key = (e: DirEntry): string => JSON.stringify([e.name, e.kind, e.executable, e.oid, e.chunked, e.size]);
        assert.deepEqual(back.map(key).sort(), entries.map(key).sort());
      }),
    );
  });

  it('commits round-trip', () => {
    const sig = fc.record({
      name: fc.string({ maxLength: 20 }).filter((s) => !/[<>\n]/.test(s) && s.trim() === s && s !== ''),
      email: fc.string({ maxLength: 20 }).filter((s) => !/[<>\n]/.test(s)),
      timestamp: fc.nat({ max: 4_000_000_000 }),
      tzOffsetMinutes: fc.integer({ min: -720, max: 840 }),
    }).map((s) => ({ ...s }));
    fc.assert(
      fc.property(oid, fc.array(oid, { maxLength: 3 }), sig, sig, fc.string(), (tree, parents, author, committer, message) => {
        const c: Commit = { tree, parents, author, committer, extraHeaders: [], message };
        assert.deepEqual(decodeCommit(encodeCommit(c)), c);
      }),
    );
  });

  it('decoding takes two entries in exactly one order, git\'s (a tree sorts as its name and /), and refuses duplicate names', () => {
    const raw = (e: { mode: string; name: string }): Buffer => Buffer.concat([Buffer.from(`${e.mode} ${e.name}\0`), Buffer.alloc(20, 7)]);
    const shortName = fc.string({ unit: fc.constantFrom('a', '-', '.', '0', '~', 'é'), minLength: 1, maxLength: 4 }).filter((n) => n !== '.' && n !== '..');
    const entry = fc.record({ mode: fc.constantFrom(TreeModes.FILE, TreeModes.TREE), name: shortName });
    fc.assert(
      fc.property(entry, entry, (a, b) => {
        const accepts = (first: typeof a, second: typeof a): boolean => {
          try {
            decodeTree(Buffer.concat([raw(first), raw(second)]));
            return true;
          } catch (e) {
            assert.ok(isGitfsError(e, 'GITFS_HOSTILE_OBJECT'));
            return false;
          }
        };
        if (a.name === b.name) {
          assert.ok(!accepts(a, b) && !accepts(b, a));
          return;
        }
        const canonical = encodeTree([
          { ...a, oid: '07'.repeat(20) as Oid },
          { ...b, oid: '07'.repeat(20) as Oid },
        ]);
        const aFirst = canonical.equals(Buffer.concat([raw(a), raw(b)]));
        assert.equal(accepts(a, b), aFirst);
        assert.equal(accepts(b, a), !aFirst);
      }),
      { numRuns: 2000 },
    );
  });

  it('decoding refuses a file and a tree of one name that are not neighbours (a, a.b, a/), as git fsck --strict does', () => {
    const raw = (mode: string, name: string): Buffer => Buffer.concat([Buffer.from(`${mode} ${name}\0`), Buffer.alloc(20, 7)]);
    const split = Buffer.concat([raw('100644', 'a'), raw('100644', 'a.b'), raw('40000', 'a')]);
    assert.throws(() => decodeTree(split), (e: unknown) => isGitfsError(e, 'GITFS_HOSTILE_OBJECT') && /duplicate entry "a"/.test((e as Error).message));
    // The same names without the clash are fine.
    assert.equal(decodeTree(Buffer.concat([raw('100644', 'a'), raw('100644', 'a.b'), raw('40000', 'a0')])).length, 3);
  });

  it('decoding refuses truncated and malformed trees with HOSTILE_OBJECT', () => {
    const good = encodeTree([{ mode: TreeModes.FILE, name: 'a', oid: 'ab'.repeat(20) as Oid }]);
    for (const bad of [good.subarray(0, good.length - 1), Buffer.from('100644 a'), Buffer.from(`040000 a\0${'x'.repeat(20)}`), Buffer.concat([good, good])]) {
      assert.throws(() => decodeTree(bad), (e: unknown) => isGitfsError(e, 'GITFS_HOSTILE_OBJECT'));
    }
  });
});

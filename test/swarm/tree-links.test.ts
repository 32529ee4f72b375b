/**
 * What a closure walk keeps of a tree (tree-links.ts): for any tree decodeTree accepts, the
 * entries' ids in order and what each is, read the fast way for chunk nodes and the general way
 * otherwise; a tree decodeTree refuses is refused the same way.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { hashObject, OID_BYTES, type Oid } from '../../src/objects/oid.js';
import { decodeTree, encodeTree, TreeModes, type TreeEntry } from '../../src/objects/tree.js';
import { LinkKinds, treeLinks } from '../../src/swarm/tree-links.js';

const oidArb = fc.uint8Array({ minLength: OID_BYTES, maxLength: OID_BYTES }).map((b) => Buffer.from(b).toString('hex') as Oid);
const modeArb = fc.constantFrom(TreeModes.FILE, TreeModes.EXECUTABLE, TreeModes.SYMLINK, TreeModes.TREE, TreeModes.GITLINK);
const kindOf = (e: TreeEntry): number => (e.mode === TreeModes.TREE ? LinkKinds.TREE : e.mode === TreeModes.GITLINK ? LinkKinds.GITLINK : LinkKinds.BLOB);
const tree = (entries: TreeEntry[]): Buffer => encodeTree(entries.sort((a, b) => (a.name < b.name ? -1 : 1)));
const hostile = (e: unknown): boolean => isGitfsError(e, ErrorCodes.HOSTILE_OBJECT);

describe('swarm/tree-links: what a walk keeps of a tree', () => {
  it('gives the ids and kinds of every entry, in order, for directories and chunk nodes alike (property)', () => {
    const directory = fc.uniqueArray(fc.record({ name: fc.stringMatching(/^[a-z0-9_-][a-z0-9._-]{0,11}$/), mode: modeArb, oid: oidArb }), { selector: (e) => e.name, maxLength: 30 });
    const chunkNode = fc
      .uniqueArray(fc.integer({ min: 1, max: 1 << 30 }), { maxLength: 30 })
      .chain((offsets) => fc.tuple(fc.constant([0, ...offsets.sort((a, b) => a - b)]), fc.array(fc.tuple(fc.boolean(), oidArb), { minLength: offsets.length + 1, maxLength: offsets.length + 1 })))
      .map(([starts, rest]) => starts.map((s, i): TreeEntry => ({ name: s.toString(16).padStart(16, '0'), mode: rest[i]?.[0] === true ? TreeModes.TREE : TreeModes.FILE, oid: rest[i]?.[1] as Oid })));
    fc.assert(
      fc.property(fc.oneof(directory, chunkNode), (entries) => {
        const content = encodeTree(entries);
        const decoded = decodeTree(content);
        const links = treeLinks(content, hashObject('tree', content));
        assert.deepEqual(links.oids, decoded.map((e) => e.oid));
        assert.deepEqual([...links.kinds], decoded.map(kindOf));
      }),
    );
  });

  it('refuses a tree decodeTree refuses, even one that starts like a chunk node', () => {
    const good = encodeTree([{ name: '0000000000000000', mode: TreeModes.FILE, oid: 'a'.repeat(40) as Oid }]);
    const bad = Buffer.concat([good, Buffer.from('100644 ../escape\0'), Buffer.alloc(OID_BYTES, 1)]);
    assert.throws(() => treeLinks(bad, hashObject('tree', bad)), (e: unknown) => isGitfsError(e, ErrorCodes.HOSTILE_OBJECT));
  });

  it('refuses names git fsck takes for .git, and a directory, submodule or (.gitmodules) link it takes for .gitmodules or .gitattributes; marks the blobs it reads as them', () => {
    const oid = 'a'.repeat(40) as Oid;
    const links = (entries: TreeEntry[]): number[] => {
      const content = tree(entries);
      return [...treeLinks(content, hashObject('tree', content)).kinds];
    };
    for (const [name, mode] of [['.GIT.', TreeModes.TREE], ['git~1', TreeModes.FILE], ['.GITMODULES', TreeModes.TREE], ['~1234567', TreeModes.GITLINK], ['gitatt~1', TreeModes.TREE], ['.gitmodules ', TreeModes.SYMLINK]] as const) {
      assert.throws(() => links([{ name, mode, oid }]), hostile, `${name} ${mode}`);
    }
    assert.deepEqual(links([{ name: '.gitattributes', mode: TreeModes.SYMLINK, oid }]), [LinkKinds.BLOB], 'git only notes a linked .gitattributes');
    assert.deepEqual(
      links([{ name: '.gitmodules', mode: TreeModes.FILE, oid }, { name: 'gi7d29~1', mode: TreeModes.EXECUTABLE, oid }, { name: 'notes', mode: TreeModes.FILE, oid }]),
      [LinkKinds.GITMODULES, LinkKinds.GITATTRIBUTES, LinkKinds.BLOB],
    );
  });
});

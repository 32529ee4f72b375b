/** An in-memory object store: the ObjectReader and ObjectSink contracts without a disk, for pure-logic tests. */
import { ErrorCodes, GitfsError } from '../../src/errors.js';
import type { GitObject, ObjectReader } from '../../src/objects/object-store.js';
import { hashObject, type ObjectType, type Oid } from '../../src/objects/oid.js';

export class MemoryStore implements ObjectReader {
  readonly objects = new Map<Oid, GitObject>();
  reads = 0;

  async writeHashed(oid: Oid, type: ObjectType, content: Uint8Array): Promise<Oid> {
    if (hashObject(type, content) !== oid) throw new Error('writeHashed given a wrong id');
    this.objects.set(oid, { type, content: Buffer.from(content) });
    return oid;
  }

  async has(oid: Oid): Promise<boolean> {
    return this.objects.has(oid);
  }

  async read(oid: Oid): Promise<GitObject> {
    const o = this.objects.get(oid);
    if (o === undefined) throw new GitfsError(ErrorCodes.OBJECT_NOT_FOUND, `no object ${oid}`, { oid });
    this.reads++;
    return o;
  }

  async findByPrefix(prefix: string, limit: number): Promise<Oid[]> {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).slice(0, limit);
  }
}

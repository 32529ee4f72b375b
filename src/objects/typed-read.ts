import { ErrorCodes, GitfsError } from '../errors.js';
import type { ObjectReader } from './object-store.js';
import type { ObjectType, Oid } from './oid.js';

/** Reads an object that must be of `type`; anything else is GITFS_WRONG_OBJECT_TYPE. */
export async function readTyped(store: ObjectReader, oid: Oid, type: ObjectType): Promise<Buffer> {
  const o = await store.read(oid);
  if (o.type !== type) {
    throw new GitfsError(ErrorCodes.WRONG_OBJECT_TYPE, `object ${oid} is a ${o.type}, not a ${type}`, { oid, type: o.type, wanted: type });
  }
  return o.content;
}

/**
 * The FUSE binding, loaded once. @cocalc/fuse-native is CommonJS whose bundled types declare an
 * ES default export; at run time the module itself is the class, so it is required here and
 * typed from those declarations.
 */
import { createRequire } from 'node:module';
import type * as FuseNative from '@cocalc/fuse-native';

export type FuseClass = typeof FuseNative.default.default;
export type FuseOperations = FuseNative.default.OPERATIONS;
export type FuseOptions = FuseNative.default.OPTIONS;
export type FuseInstance = InstanceType<FuseClass>;

export const Fuse = createRequire(import.meta.url)('@cocalc/fuse-native') as FuseClass;

/** Negative errno numbers by name (ENOENT → -2), as the binding's callbacks want them. */
export const ERRNO = Fuse as unknown as Readonly<Record<string, number | undefined>>;

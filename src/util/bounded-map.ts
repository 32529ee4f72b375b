/**
 * Caches kept as plain Maps and Sets, bounded by dropping the entry set longest ago (both keep insertion
 * order): what a cache forgets is looked up or worked out again, never wrong.
 */

/** Sets `key` to `value` in `map`, drops the oldest entry past `limit`, and returns `value`. */
export function remember<K, V>(map: Map<K, V>, key: K, value: V, limit: number): V {
  map.set(key, value);
  if (map.size > limit) map.delete(map.keys().next().value as K);
  return value;
}

/** Adds `value` to `set` and drops the oldest member past `limit`. */
export function rememberMember<T>(set: Set<T>, value: T, limit: number): void {
  set.add(value);
  if (set.size > limit) set.delete(set.values().next().value as T);
}

/** Sets `key` to `value` as the newest entry (moved there if it was set before) and drops the oldest past `limit`. */
export function renew<K, V>(map: Map<K, V>, key: K, value: V, limit: number): void {
  map.delete(key);
  remember(map, key, value, limit);
}

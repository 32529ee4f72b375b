/**
 * Whose connection is whose, for limits per address (node-service.ts): an IPv4 address (also
 * written IPv4-mapped, `::ffff:a.b.c.d`) counts alone; an IPv6 address by its /64, which one host
 * is commonly given whole (counting each of its 2^64 addresses alone put no limit on it).
 */
import { isIPv4, isIPv6 } from 'node:net';

export function addressKey(address: string): string {
  const mapped = /^::ffff:(.+)$/i.exec(address)?.[1];
  if (mapped !== undefined && isIPv4(mapped)) return mapped;
  if (!isIPv6(address)) return address;
  // Zone ids (`%eth0`) name the link, not the address.
  const plain = address.split('%')[0] ?? address;
  const [head = '', tail] = plain.split('::');
  const front = head === '' ? [] : head.split(':');
  const back = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? front : [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

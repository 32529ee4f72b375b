/** Picking the network interface a node announces on, from a name, an address, or nothing. */
import { networkInterfaces } from 'node:os';
import { ErrorCodes, GitfsError } from '../errors.js';

export interface Interface {
  readonly name: string;
  readonly address: string;
}

/** `spec` is an interface name, an IPv4 address, or '' (the first non-loopback IPv4 interface). */
export function resolveInterface(spec: string): Interface | undefined {
  const all = Object.entries(networkInterfaces()).flatMap(([name, addrs]) =>
    (addrs ?? []).filter((a) => a.family === 'IPv4').map((a) => ({ name, address: a.address, internal: a.internal })),
  );
  if (spec === '') {
    const first = all.find((a) => !a.internal);
    return first === undefined ? undefined : { name: first.name, address: first.address };
  }
  const found = all.find((a) => a.name === spec || a.address === spec);
  if (found === undefined) throw new GitfsError(ErrorCodes.BAD_CONFIG, `no IPv4 interface ${JSON.stringify(spec)} on this host (multicast.interface)`, { key: 'multicast.interface' });
  return { name: found.name, address: found.address };
}

/** The interface to announce on (if any) and the service endpoints this node advertises. */
export function nodeAddresses(config: {
  readonly multicast: { readonly enabled: boolean; readonly interface: string };
  readonly advertise: readonly string[];
  readonly service: { readonly port: number };
}): { iface: Interface | undefined; endpoints: { address: string; port: number }[] } {
  const iface = config.multicast.enabled || config.advertise.length === 0 ? resolveInterface(config.multicast.interface) : undefined;
  const addresses = config.advertise.length > 0 ? config.advertise : iface === undefined ? [] : [iface.address];
  return { iface, endpoints: addresses.map((address) => ({ address, port: config.service.port })) };
}

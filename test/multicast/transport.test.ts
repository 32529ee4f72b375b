/**
 * Sending to static peers never waits on a resolver: host names are looked up beside the
 * sending (static-peers.ts), so a peer whose lookup stalls holds up no other destination. Real
 * UDP sockets on 127.0.0.1; lookups are the test's.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { StaticPeers, type Lookup } from '../../src/multicast/static-peers.js';
import { UdpTransport } from '../../src/multicast/transport.js';
import { captureLogger } from './fixture.js';

/** A lookup that never answers for `stalled.test`, and answers 127.0.0.1 for any other name. */
const stallOne: Lookup = (host) => (host === 'stalled.test' ? new Promise(() => undefined) : Promise.resolve('127.0.0.1'));

async function until(what: string, ok: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await sleep(5);
  }
}

describe('multicast/transport: static peers', function () {
  this.timeout(20_000);

  it('a peer whose host name never resolves holds up no other destination: the packet reaches the others at once', async () => {
    const received: string[] = [];
    const sink: Socket = createSocket('udp4');
    sink.on('message', (m) => received.push(m.toString()));
    await new Promise<void>((resolve) => sink.bind(0, '127.0.0.1', resolve));
    const port = (sink.address() as AddressInfo).port;
    const t = await UdpTransport.open(
      { group: undefined, port: 0, interfaceAddress: undefined, bindAddress: '127.0.0.1', ttl: 1, staticPeers: [{ host: 'stalled.test', port }, { host: 'peer.test', port }, { host: '127.0.0.1', port }], lookup: stallOne },
      captureLogger(),
      () => undefined,
    );
    try {
      // peer.test's lookup answers at once; stalled.test's never.
      await sleep(50);
      const sent = (async () => {
        await t.send(Buffer.from('part 0'));
        await t.send(Buffer.from('part 1'));
      })();
      assert.equal(await Promise.race([sent.then(() => 'sent'), sleep(1000).then(() => 'waiting')]), 'sent', 'the sends waited on the stalled lookup');
      await until('both parts at both peers with an address', () => received.length === 4);
      assert.deepEqual(received.sort(), ['part 0', 'part 0', 'part 1', 'part 1']);
      assert.equal(t.destinations(), 2);
    } finally {
      await t.close();
      sink.close();
    }
  });

  it('a host name is looked up again: the last address is kept while a lookup stalls (told once), a new one is taken', async () => {
    let answer: 'stall' | string = '10.0.0.1';
    const lookup: Lookup = () => (answer === 'stall' ? new Promise(() => undefined) : Promise.resolve(answer));
    const log = captureLogger();
    const peers = new StaticPeers([{ host: 'peer.test', port: 7419 }, { host: '10.9.9.9', port: 7000 }], lookup, log, { refreshMs: 100, retryMs: 50, lookupMs: 50 });
    peers.start();
    try {
      await until('first address', () => peers.targets().length === 2);
      assert.deepEqual(peers.targets(), [{ address: '10.0.0.1', port: 7419 }, { address: '10.9.9.9', port: 7000 }]);
      answer = 'stall';
      await sleep(500);
      assert.deepEqual(peers.targets()[0], { address: '10.0.0.1', port: 7419 });
      assert.equal(log.lines.filter((l) => l.event === 'static-peer-unresolved').length, 1, JSON.stringify(log.lines));
      answer = '10.0.0.2';
      await until('the new address', () => peers.targets()[0]?.address === '10.0.0.2');
    } finally {
      peers.stop();
    }
  });
});

import assert from 'node:assert/strict';
import { addressKey } from '../../src/node/address-key.js';

describe('addressKey (node-service.ts counts connections per key)', () => {
  it('counts an IPv4 address alone, also written IPv4-mapped, and an IPv6 address by its /64, however it is written', () => {
    assert.equal(addressKey('10.0.0.1'), '10.0.0.1');
    assert.equal(addressKey('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(addressKey('::FFFF:10.0.0.1'), '10.0.0.1');
    const slash64 = ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::9', '2001:0db8:0001:0002:ffff::', '2001:DB8:1:2:0:0:0:1', '2001:db8:1:2:3:4:1.2.3.4'];
    assert.deepEqual(new Set(slash64.map(addressKey)), new Set(['2001:db8:1:2::/64']));
    assert.equal(addressKey('2001:db8:1:3::9'), '2001:db8:1:3::/64', 'the next /64 is another key');
    assert.equal(addressKey('2001:db8::'), '2001:db8:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), addressKey('fe80::2'), 'a zone id names the link, not the address');
    assert.equal(addressKey(''), '', 'an address the socket no longer knows is one key');
  });
});

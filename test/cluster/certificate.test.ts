/**
 * Cluster certificates against real verifiers: the openssl CLI, node:crypto's X509Certificate,
 * and a mutual-TLS handshake over node:tls. Plus byte-exact checks of the DER encoder.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate, createHash, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import {
  certificateFingerprint,
  certificatePem,
  issueCertificate,
  verifyNodeCertificate,
  type CertificateRequest,
} from '../../src/cluster/certificate.js';
import {
  boolean,
  encodeLength,
  integer,
  namedBits,
  objectIdentifier,
  octetString,
  set,
  time,
  utf8String,
} from '../../src/cluster/der.js';
import { ErrorCodes, isGitfsError } from '../../src/errors.js';
import { ClusterTrust, NodeIdentity } from '../../src/cluster/identity.js';
import { nodeIdOf, type NodeId } from '../../src/cluster/node-id.js';
import { signRevocations } from '../../src/cluster/revocation.js';
import { clientOptions, peerNode, serverOptions } from '../../src/cluster/tls.js';
import { suiteDirs } from '../support/tmp.js';

const DAY = 86_400_000;
const NOW = Date.now();

interface Issued {
  readonly der: Buffer;
  readonly pem: string;
  readonly cert: X509Certificate;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
  readonly keyPem: string;
}

function keyPair(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

function finish(der: Buffer, publicKey: KeyObject, privateKey: KeyObject): Issued {
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { der, pem: certificatePem(der), cert: new X509Certificate(der), publicKey, privateKey, keyPem };
}

function makeCa(cn = 'gitfs cluster CA', notAfter = new Date('2060-06-30T12:00:00Z')): Issued {
  const { publicKey, privateKey } = keyPair();
  const der = issueCertificate({
    serial: randomBytes(16),
    subject: cn,
    issuer: cn,
    notBefore: new Date(NOW - DAY),
    notAfter,
    publicKey,
    signingKey: privateKey,
    issuerPublicKey: publicKey,
    ca: true,
  });
  return finish(der, publicKey, privateKey);
}

function makeNode(ca: Issued, overrides: Partial<CertificateRequest> = {}): Issued & { nodeId: string } {
  const { publicKey, privateKey } = keyPair();
  const nodeId = overrides.subject ?? nodeIdOf(publicKey);
  const der = issueCertificate({
    serial: randomBytes(12),
    subject: nodeId,
    issuer: ca.cert.subject.replace(/^CN=/, ''),
    notBefore: new Date(NOW - DAY),
    notAfter: new Date(NOW + 365 * DAY),
    publicKey,
    signingKey: ca.privateKey,
    issuerPublicKey: ca.publicKey,
    ca: false,
    ...overrides,
  });
  return { ...finish(der, publicKey, privateKey), nodeId };
}

function openssl(args: readonly string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(isGitfsError(e, ErrorCodes.BAD_CERTIFICATE), `expected GITFS_BAD_CERTIFICATE, got ${String(e)}`);
    return String(e.data['reason']);
  }
  assert.fail('expected the certificate to be refused');
}

function colonHex(b: Buffer): string {
  return (b.toString('hex').toUpperCase().match(/../g) ?? []).join(':');
}

describe('cluster certificates', () => {
  const dirs = suiteDirs();
  const ca = makeCa();
  const node = makeNode(ca);

  describe('openssl accepts them', () => {
    it('verifies the node certificate against the CA with -x509_strict, for server and client use', () => {
      const dir = dirs.make();
      writeFileSync(join(dir, 'ca.pem'), ca.pem);
      writeFileSync(join(dir, 'node.pem'), node.pem);
      for (const purpose of [[], ['-purpose', 'sslserver'], ['-purpose', 'sslclient']]) {
        const r = openssl(['verify', '-x509_strict', ...purpose, '-CAfile', join(dir, 'ca.pem'), join(dir, 'node.pem')]);
        assert.equal(r.status, 0, r.out);
        assert.match(r.out, /node\.pem: OK/);
      }
      const other = makeCa();
      writeFileSync(join(dir, 'other.pem'), other.pem);
      const refused = openssl(['verify', '-x509_strict', '-CAfile', join(dir, 'other.pem'), join(dir, 'node.pem')]);
      assert.notEqual(refused.status, 0, refused.out);
    });

    it('shows the v3 profile in `openssl x509 -text`', () => {
      const dir = dirs.make();
      writeFileSync(join(dir, 'ca.pem'), ca.pem);
      writeFileSync(join(dir, 'node.pem'), node.pem);
      const caText = openssl(['x509', '-noout', '-text', '-in', join(dir, 'ca.pem')]);
      const nodeText = openssl(['x509', '-noout', '-text', '-in', join(dir, 'node.pem')]);
      assert.equal(caText.status, 0, caText.out);
      assert.equal(nodeText.status, 0, nodeText.out);
      const caSki = colonHex(createHash('sha1').update(Buffer.from(ca.publicKey.export({ format: 'jwk' }).x ?? '', 'base64url')).digest());
      for (const text of [caText.out, nodeText.out]) {
        assert.match(text, /Version: 3 \(0x2\)/);
        assert.match(text, /Signature Algorithm: ED25519/);
        assert.match(text, /Issuer: CN ?= ?gitfs cluster CA/);
        assert.match(text, /X509v3 Basic Constraints: critical/);
        assert.match(text, /X509v3 Key Usage: critical/);
        assert.match(text, /X509v3 Subject Key Identifier/);
        assert.match(text, /X509v3 Authority Key Identifier/);
        assert.ok(text.includes(caSki), `authority key id ${caSki} (SHA-1 of the CA key bits) missing`);
      }
      assert.match(caText.out, /CA:TRUE/);
      assert.match(caText.out, /Certificate Sign, CRL Sign/);
      assert.match(caText.out, /Not After : Jun 30 12:00:00 2060 GMT/); // a GeneralizedTime
      assert.doesNotMatch(caText.out, /Extended Key Usage/);
      assert.match(nodeText.out, /CA:FALSE/);
      assert.match(nodeText.out, /Key Usage: critical\s+Digital Signature\n/);
      assert.match(nodeText.out, /TLS Web Server Authentication, TLS Web Client Authentication/);
      assert.match(nodeText.out, new RegExp(`Subject: CN ?= ?${node.nodeId}`));
    });
  });

  describe('node:crypto parses them', () => {
    it('X509Certificate sees the issuer link, the signature and the CA flag', () => {
      assert.equal(ca.cert.ca, true);
      assert.equal(node.cert.ca, false);
      assert.ok(node.cert.checkIssued(ca.cert));
      assert.ok(ca.cert.checkIssued(ca.cert));
      assert.ok(node.cert.verify(ca.publicKey));
      assert.ok(ca.cert.verify(ca.publicKey));
      assert.equal(node.cert.subject, `CN=${node.nodeId}`);
      assert.equal(node.cert.issuer, 'CN=gitfs cluster CA');
      assert.ok(node.cert.publicKey.equals(node.publicKey));
      assert.equal(certificateFingerprint(node.cert), node.cert.fingerprint256.replace(/:/g, '').toLowerCase());
      assert.deepEqual(new X509Certificate(node.pem).raw, node.der);
    });

    it('verifyNodeCertificate accepts a good node certificate', () => {
      const v = verifyNodeCertificate(node.cert, ca.cert, NOW);
      assert.equal(v.nodeId, node.nodeId);
      assert.ok(v.publicKey.equals(node.publicKey));
      assert.equal(v.fingerprint, createHash('sha256').update(node.der).digest('hex'));
      assert.equal(v.notAfter, Math.floor((NOW + 365 * DAY) / 1000) * 1000);
    });

    it('verifyNodeCertificate vouches for a node only as long as its CA is valid too (a cache of the answer ends with the CA)', () => {
      const shortCa = makeCa('gitfs short CA', new Date(NOW + 30 * DAY));
      const v = verifyNodeCertificate(makeNode(shortCa).cert, shortCa.cert, NOW);
      assert.equal(v.notAfter, Math.floor((NOW + 30 * DAY) / 1000) * 1000);
    });
  });

  describe('verifyNodeCertificate refuses', () => {
    it('a certificate from another CA, even one with the same name', () => {
      const other = makeCa();
      assert.equal(refusal(() => verifyNodeCertificate(makeNode(other).cert, ca.cert, NOW)), 'issuer');
    });

    it('an expired and a not-yet-valid certificate', () => {
      const expired = makeNode(ca, { notBefore: new Date(NOW - 10 * DAY), notAfter: new Date(NOW - DAY) });
      assert.equal(refusal(() => verifyNodeCertificate(expired.cert, ca.cert, NOW)), 'expired');
      const early = makeNode(ca, { notBefore: new Date(NOW + DAY), notAfter: new Date(NOW + 10 * DAY) });
      assert.equal(refusal(() => verifyNodeCertificate(early.cert, ca.cert, NOW)), 'not-yet-valid');
      assert.equal(verifyNodeCertificate(early.cert, ca.cert, NOW + 2 * DAY).nodeId, early.nodeId);
    });

    it('the CA certificate presented as a node certificate', () => {
      assert.equal(refusal(() => verifyNodeCertificate(ca.cert, ca.cert, NOW)), 'is-ca');
    });

    it('a node certificate used as the CA', () => {
      assert.equal(refusal(() => verifyNodeCertificate(makeNode(ca).cert, node.cert, NOW)), 'ca');
    });

    it('a certificate with one byte of its signature flipped', () => {
      const der = Buffer.from(node.der);
      der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
      const damaged = new X509Certificate(der);
      assert.equal(refusal(() => verifyNodeCertificate(damaged, ca.cert, NOW)), 'signature');
    });

    it('a subject CN that is not a lowercase hex node id', () => {
      // The last two: well formed, but not the id of the certificate's key (a longer one used to pass).
      for (const cn of ['ABCDEF0123456789', 'node one', '0123456789abcde', 'g'.repeat(16), '0123456789abcdef,CN=00', '0123456789abcdef', node.nodeId + node.nodeId]) {
        const odd = makeNode(ca, { subject: cn });
        assert.equal(refusal(() => verifyNodeCertificate(odd.cert, ca.cert, NOW)), 'subject', cn);
      }
    });
  });

  describe('issueCertificate refuses malformed requests', () => {
    const bad = (overrides: Partial<CertificateRequest>): void => {
      assert.throws(() => makeNode(ca, overrides), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT));
    };
    it('bad serials, names, validity and keys', () => {
      bad({ serial: Buffer.alloc(0) });
      bad({ serial: Buffer.alloc(4) });
      bad({ serial: Buffer.alloc(21, 1) });
      bad({ serial: Buffer.alloc(20, 0xff) }); // 21 bytes once encoded
      bad({ subject: '' });
      bad({ subject: 'a\nb' });
      bad({ notBefore: new Date(NOW), notAfter: new Date(NOW) });
      bad({ notAfter: new Date(Number.NaN) });
      bad({ issuerPublicKey: keyPair().publicKey });
      bad({ publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey });
      assert.equal(makeNode(ca, { serial: Buffer.alloc(20, 0x7f) }).cert.serialNumber, '7F'.repeat(20));
    });
  });

  describe('mutual TLS, with the options and checks the node service and the swarm use (tls.ts)', () => {
    interface Outcome {
      /** Who the server found at the other end (peerNode), if anyone. */
      readonly serverPeer?: string;
      readonly serverGot?: string;
      /** Who the client found at the other end, if anyone. */
      readonly clientPeer?: string;
      readonly clientGot?: string;
      readonly serverError?: string;
    }

    const trust = new ClusterTrust(ca.cert, ca.pem);
    const identityOf = (n: Issued & { nodeId: string }): NodeIdentity => new NodeIdentity(n.nodeId as NodeId, n.privateKey, n.cert, n.pem);

    /**
     * One connection from `client` to a server holding `server`'s certificate, each end as the
     * node service and the swarm make it: serverOptions / clientOptions, then peerNode, the server
     * taking a member (not revoked by `serverTrust`), the client only `expectedServerId`. Resolves
     * when both ends are done.
     */
    function handshake(server: Issued & { nodeId: string }, client: Issued & { nodeId: string }, expectedServerId: string, serverTrust = trust): Promise<Outcome> {
      return new Promise((resolve, reject) => {
        const outcome: { -readonly [K in keyof Outcome]: Outcome[K] } = {};
        const timer = setTimeout(() => reject(new Error(`handshake timed out: ${JSON.stringify(outcome)}`)), 3000);
        const srv = createServer(serverOptions(identityOf(server), serverTrust), (socket: TLSSocket) => {
          const peer = peerNode(socket, serverTrust, Date.now());
          if (peer === undefined) return void socket.destroy();
          outcome.serverPeer = peer.nodeId;
          socket.once('data', (d) => {
            outcome.serverGot = d.toString();
            socket.end('pong');
          });
        });
        srv.on('tlsClientError', (e) => {
          outcome.serverError = e.message;
        });
        srv.listen(0, '127.0.0.1', () => {
          const { port } = srv.address() as AddressInfo;
          const sock = connect({ host: '127.0.0.1', port, ...clientOptions(identityOf(client), trust) });
          let got = '';
          sock.on('secureConnect', () => {
            const peer = peerNode(sock, trust, Date.now());
            if (peer?.nodeId !== expectedServerId) return void sock.destroy();
            outcome.clientPeer = peer.nodeId;
            sock.write('ping');
          });
          sock.on('data', (d: Buffer) => (got += d.toString()));
          sock.on('error', () => undefined);
          sock.on('close', () => {
            if (got !== '') outcome.clientGot = got;
            clearTimeout(timer);
            srv.close(() => resolve(outcome));
          });
        });
      });
    }

    it('two nodes of the same CA authenticate each other with Ed25519 certificates', async () => {
      const server = makeNode(ca);
      const client = makeNode(ca);
      const o = await handshake(server, client, server.nodeId);
      assert.deepEqual(o, { serverPeer: client.nodeId, clientPeer: server.nodeId, serverGot: 'ping', clientGot: 'pong' });
    });

    it('the server refuses a client whose certificate comes from another CA', async () => {
      const server = makeNode(ca);
      const stranger = makeNode(makeCa());
      const o = await handshake(server, stranger, server.nodeId);
      assert.equal(o.serverPeer, undefined);
      assert.equal(o.serverGot, undefined);
      assert.equal(o.clientGot, undefined);
    });

    it('the server refuses a client it knows revoked', async () => {
      const server = makeNode(ca);
      const client = makeNode(ca);
      const revoking = new ClusterTrust(ca.cert, ca.pem, signRevocations(ca.privateKey, 1, NOW, [client.nodeId as NodeId]));
      const o = await handshake(server, client, server.nodeId, revoking);
      assert.deepEqual([o.serverPeer, o.serverGot, o.clientGot], [undefined, undefined, undefined]);
    });

    it('the client refuses a server of another CA, and one that is not the node it expected', async () => {
      const client = makeNode(ca);
      const stranger = makeNode(makeCa());
      const fromElsewhere = await handshake(stranger, client, stranger.nodeId);
      assert.deepEqual([fromElsewhere.clientPeer, fromElsewhere.serverGot, fromElsewhere.clientGot], [undefined, undefined, undefined]);
      const server = makeNode(ca);
      const other = await handshake(server, client, makeNode(ca).nodeId);
      assert.deepEqual([other.clientPeer, other.serverGot, other.clientGot], [undefined, undefined, undefined]);
    });
  });
});

describe('DER encoder', () => {
  const hex = (b: Buffer): string => b.toString('hex');

  it('INTEGER: minimal, with a leading zero when the top bit is set', () => {
    assert.equal(hex(integer(Buffer.from([0x7f]))), '02017f');
    assert.equal(hex(integer(Buffer.from([0x80]))), '02020080');
    assert.equal(hex(integer(Buffer.from([0x00, 0x00, 0xff, 0x01]))), '020300ff01');
    assert.equal(hex(integer(Buffer.from([0x00, 0x00, 0x01]))), '020101');
    assert.equal(hex(integer(Buffer.alloc(0))), '020100');
  });

  it('lengths: short form to 127, long form beyond', () => {
    assert.equal(hex(encodeLength(0)), '00');
    assert.equal(hex(encodeLength(127)), '7f');
    assert.equal(hex(encodeLength(128)), '8180');
    assert.equal(hex(encodeLength(300)), '82012c');
    assert.equal(hex(encodeLength(65536)), '83010000');
    const big = octetString(Buffer.alloc(300, 0xab));
    assert.equal(big.length, 304);
    assert.equal(hex(big.subarray(0, 5)), '0482012cab');
  });

  it('OBJECT IDENTIFIER byte-exact', () => {
    assert.equal(hex(objectIdentifier('1.3.101.112')), '06032b6570');
    assert.equal(hex(objectIdentifier('2.5.29.19')), '0603551d13');
    assert.equal(hex(objectIdentifier('1.2.840.113549.1.1.11')), '06092a864886f70d01010b');
    assert.equal(hex(objectIdentifier('2.999.3')), '0603883703');
    for (const bad of ['', '1', '1.', '1.40', '3.1', '1.03', '1..2', 'a.b']) {
      assert.throws(() => objectIdentifier(bad), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT), bad);
    }
  });

  it('times: UTCTime for 1950-2049, GeneralizedTime otherwise, whole seconds', () => {
    const t = (iso: string): string => {
      const b = time(new Date(iso));
      return `${b[0]?.toString(16)}:${b.subarray(2).toString('latin1')}`;
    };
    assert.equal(t('2049-12-31T23:59:59.999Z'), '17:491231235959Z');
    assert.equal(t('2050-01-01T00:00:00Z'), '18:20500101000000Z');
    assert.equal(t('1950-01-01T00:00:00Z'), '17:500101000000Z');
    assert.equal(t('1949-12-31T23:59:59Z'), '18:19491231235959Z');
    assert.equal(t('9999-12-31T23:59:59Z'), '18:99991231235959Z');
    assert.equal(hex(time(new Date('2024-02-29T01:02:03Z'))), '170d3234303232393031303230335a');
    assert.throws(() => time(new Date(Number.NaN)), (e: unknown) => isGitfsError(e, ErrorCodes.BAD_ARGUMENT));
  });

  it('BOOLEAN, named bits, UTF8String, SET ordering', () => {
    assert.equal(hex(boolean(true)), '0101ff');
    assert.equal(hex(boolean(false)), '010100');
    assert.equal(hex(namedBits([5, 6])), '03020106');
    assert.equal(hex(namedBits([0])), '03020780');
    assert.equal(hex(namedBits([0, 8])), '0303078080');
    assert.equal(hex(utf8String('é')), '0c02c3a9');
    assert.equal(hex(set(Buffer.from('0201ff', 'hex'), Buffer.from('020101', 'hex'))), '3106020101' + '0201ff');
  });
});

/**
 * TLS between cluster nodes: TLS 1.3 only, mutual, with the cluster CA as the only trust
 * root and the certificate's CN (the node id) as the peer's name. There are no host names:
 * a peer is who its certificate says, if the CA signed it and it is not revoked.
 */
import { X509Certificate, createHash } from 'node:crypto';
import type { ConnectionOptions, PeerCertificate, TLSSocket, TlsOptions } from 'node:tls';
import { verifyNodeCertificate, type VerifiedNode } from './certificate.js';
import type { ClusterTrust, NodeIdentity } from './identity.js';

/**
 * TLS 1.3 suites, AES-128-GCM first: the swarm encrypts every byte it moves, and AES-128 runs
 * 10 rounds per block where the default AES-256 runs 14 (both with AES-NI here).
 */
const CIPHER_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/** Server options: present our certificate with the CA's, ask for the client's (joining nodes have none yet). */
export function serverOptions(identity: NodeIdentity, trust: ClusterTrust): TlsOptions {
  return {
    key: identity.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    cert: identity.certificatePem + trust.caPem,
    ca: trust.caPem,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
    ciphers: CIPHER_SUITES,
    honorCipherOrder: true,
  };
}

/** Client options for a member: our certificate, the CA as the only root, names checked by peerNode(). */
export function clientOptions(identity: NodeIdentity, trust: ClusterTrust): ConnectionOptions {
  return {
    key: identity.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    cert: identity.certificatePem,
    ca: trust.caPem,
    minVersion: 'TLSv1.3',
    ciphers: CIPHER_SUITES,
    checkServerIdentity: () => undefined,
  };
}

/** The authenticated, unrevoked member at the other end of `socket`, or undefined. */
export function peerNode(socket: TLSSocket, trust: ClusterTrust, nowMs: number): VerifiedNode | undefined {
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return undefined;
  try {
    const node = verifyNodeCertificate(cert, trust.ca, nowMs);
    return trust.isRevoked(node.nodeId) ? undefined : node;
  } catch {
    return undefined;
  }
}

/** The certificate chain the server sent, leaf first, as parsed certificates. */
export function peerChain(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let c: PeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (c !== undefined && c.raw !== undefined && out.length < 8) {
    const fp = createHash('sha256').update(c.raw).digest('hex');
    if (seen.has(fp)) break;
    seen.add(fp);
    out.push(new X509Certificate(c.raw));
    c = (c as { issuerCertificate?: PeerCertificate }).issuerCertificate;
  }
  return out;
}

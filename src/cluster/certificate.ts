/**
 * X.509 v3 certificates for the gitfs cluster: the cluster CA certifies node keys.
 *
 * node:crypto signs and parses certificates but cannot build them, so issueCertificate()
 * assembles the TBSCertificate with our DER encoder (./der.ts) and signs it with Ed25519.
 * The profile is fixed and small (RFC 5280, RFC 8410):
 * - names are a single RDN, CN as UTF8String; there are no DNS names, peers match on the CN;
 * - the CA has basicConstraints cA=TRUE and keyUsage keyCertSign+cRLSign, both critical;
 * - a node has basicConstraints cA=FALSE and keyUsage digitalSignature, both critical, and
 *   extKeyUsage serverAuth+clientAuth, so one certificate serves both ends of mutual TLS;
 * - both carry subject and authority key identifiers (SHA-1 of the public key bits).
 * verifyNodeCertificate() is the check a node applies to a peer's certificate.
 */
import { createHash, createPublicKey, sign, type KeyObject, type X509Certificate } from 'node:crypto';
import { ErrorCodes, GitfsError } from '../errors.js';
import { nodeIdOf as idOfKey } from './node-id.js';
import {
  Tags,
  bitString,
  boolean,
  explicit,
  implicitPrimitive,
  integer,
  namedBits,
  objectIdentifier,
  octetString,
  readTlv,
  sequence,
  set,
  smallInteger,
  time,
  utf8String,
} from './der.js';

export interface CertificateRequest {
  /** 1..20 bytes, positive; at most 20 bytes once encoded (so a 20-byte serial needs its top bit clear). */
  readonly serial: Buffer;
  /** CN of the subject. */
  readonly subject: string;
  /** CN of the issuer (== subject for the self-signed CA). */
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The subject's public key (Ed25519). */
  readonly publicKey: KeyObject;
  /** The issuer's private key (Ed25519). */
  readonly signingKey: KeyObject;
  /** The issuer's public key, for the authority key identifier; must match signingKey. */
  readonly issuerPublicKey: KeyObject;
  /** true: the cluster CA; false: a node. */
  readonly ca: boolean;
}

/** What verifyNodeCertificate() vouches for. */
export interface VerifiedNode {
  /** The subject CN: lowercase hex. */
  readonly nodeId: string;
  readonly publicKey: KeyObject;
  /** End of validity, ms since the epoch: the node certificate's or the CA's, whichever ends first. */
  readonly notAfter: number;
  /** SHA-256 of the DER, lowercase hex without colons. */
  readonly fingerprint: string;
}

const OID = {
  ED25519: '1.3.101.112',
  COMMON_NAME: '2.5.4.3',
  SUBJECT_KEY_IDENTIFIER: '2.5.29.14',
  KEY_USAGE: '2.5.29.15',
  BASIC_CONSTRAINTS: '2.5.29.19',
  AUTHORITY_KEY_IDENTIFIER: '2.5.29.35',
  EXT_KEY_USAGE: '2.5.29.37',
  SERVER_AUTH: '1.3.6.1.5.5.7.3.1',
  CLIENT_AUTH: '1.3.6.1.5.5.7.3.2',
} as const;

/** keyUsage bit numbers (RFC 5280 §4.2.1.3). */
const KeyUsageBits = { DIGITAL_SIGNATURE: 0, KEY_CERT_SIGN: 5, CRL_SIGN: 6 } as const;

const KEY_ALGORITHM = 'ed25519';
const NODE_ID_RE = /^[0-9a-f]{16}$/;
/** RFC 5280 ub-common-name. */
const MAX_CN_LENGTH = 64;

function badArgument(message: string): GitfsError {
  return new GitfsError(ErrorCodes.BAD_ARGUMENT, message);
}

function checkKey(key: KeyObject, type: 'public' | 'private', what: string): void {
  if (key.type !== type || key.asymmetricKeyType !== KEY_ALGORITHM) {
    throw badArgument(`${what} must be an ${KEY_ALGORITHM} ${type} key, not ${key.asymmetricKeyType ?? 'a'} ${key.type} key`);
  }
}

function checkCommonName(cn: string, what: string): void {
  if (cn.length === 0 || cn.length > MAX_CN_LENGTH || /[\u0000-\u001f\u007f]/.test(cn)) {
    throw badArgument(`${what} CN must be 1..${MAX_CN_LENGTH} characters without control characters`);
  }
}

function checkRequest(req: CertificateRequest): void {
  let start = 0;
  while (start < req.serial.length && req.serial[start] === 0) start++;
  const digits = req.serial.length - start;
  const encoded = digits + ((req.serial[start] ?? 0) & 0x80 ? 1 : 0);
  if (req.serial.length < 1 || req.serial.length > 20 || digits === 0 || encoded > 20) {
    throw badArgument('serial must be 1..20 bytes, positive, and at most 20 bytes once DER-encoded');
  }
  checkCommonName(req.subject, 'subject');
  checkCommonName(req.issuer, 'issuer');
  const from = req.notBefore.getTime();
  const to = req.notAfter.getTime();
  if (!Number.isFinite(from) || !Number.isFinite(to) || Math.floor(from / 1000) >= Math.floor(to / 1000)) {
    throw badArgument('notBefore must be a valid date at least a second before notAfter');
  }
  checkKey(req.publicKey, 'public', 'publicKey');
  checkKey(req.signingKey, 'private', 'signingKey');
  checkKey(req.issuerPublicKey, 'public', 'issuerPublicKey');
  const signerSpki = createPublicKey(req.signingKey).export({ type: 'spki', format: 'der' });
  if (!signerSpki.equals(req.issuerPublicKey.export({ type: 'spki', format: 'der' }))) {
    throw badArgument('issuerPublicKey is not the public half of signingKey');
  }
}

/** Name ::= SEQUENCE OF RDN; here one RDN holding one CN. */
function name(cn: string): Buffer {
  return sequence(set(sequence(objectIdentifier(OID.COMMON_NAME), utf8String(cn))));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's value (unused-bits octet excluded). */
function keyIdentifier(spki: Buffer): Buffer {
  const outer = readTlv(spki);
  const algorithm = readTlv(outer.content);
  const key = readTlv(outer.content, algorithm.end);
  if (outer.tag !== Tags.SEQUENCE || key.tag !== Tags.BIT_STRING || key.end !== outer.content.length || key.content[0] !== 0) {
    throw badArgument('unexpected SubjectPublicKeyInfo layout');
  }
  return createHash('sha1').update(key.content.subarray(1)).digest();
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  // DER omits a BOOLEAN equal to its DEFAULT (critical DEFAULT FALSE).
  return critical
    ? sequence(objectIdentifier(oid), boolean(true), octetString(value))
    : sequence(objectIdentifier(oid), octetString(value));
}

function extensions(req: CertificateRequest, subjectSpki: Buffer, issuerSpki: Buffer): Buffer {
  const list = [
    // cA DEFAULT FALSE, so a node's BasicConstraints is the empty SEQUENCE.
    extension(OID.BASIC_CONSTRAINTS, true, req.ca ? sequence(boolean(true)) : sequence()),
    extension(
      OID.KEY_USAGE,
      true,
      namedBits(req.ca ? [KeyUsageBits.KEY_CERT_SIGN, KeyUsageBits.CRL_SIGN] : [KeyUsageBits.DIGITAL_SIGNATURE]),
    ),
  ];
  if (!req.ca) {
    list.push(extension(OID.EXT_KEY_USAGE, false, sequence(objectIdentifier(OID.SERVER_AUTH), objectIdentifier(OID.CLIENT_AUTH))));
  }
  list.push(
    extension(OID.SUBJECT_KEY_IDENTIFIER, false, octetString(keyIdentifier(subjectSpki))),
    // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING, ... }
    extension(OID.AUTHORITY_KEY_IDENTIFIER, false, sequence(implicitPrimitive(0, keyIdentifier(issuerSpki)))),
  );
  return explicit(3, sequence(...list));
}

/** Builds and signs a certificate; returns its DER. Throws GITFS_BAD_ARGUMENT for a malformed request. */
export function issueCertificate(req: CertificateRequest): Buffer {
  checkRequest(req);
  const subjectSpki = req.publicKey.export({ type: 'spki', format: 'der' });
  const issuerSpki = req.issuerPublicKey.export({ type: 'spki', format: 'der' });
  // Ed25519's AlgorithmIdentifier has no parameters at all (RFC 8410 §3), not even NULL.
  const algorithm = sequence(objectIdentifier(OID.ED25519));
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    integer(req.serial),
    algorithm,
    name(req.issuer),
    sequence(time(req.notBefore), time(req.notAfter)),
    name(req.subject),
    subjectSpki,
    extensions(req, subjectSpki, issuerSpki),
  );
  const signature = sign(null, tbs, req.signingKey);
  return sequence(tbs, algorithm, bitString(signature));
}

/** PEM armour for a DER certificate: base64 in 64-column lines. */
export function certificatePem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** SHA-256 of the certificate's DER, lowercase hex without colons. */
export function certificateFingerprint(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}

function refuse(reason: string, message: string, cert?: X509Certificate): GitfsError {
  const data: Record<string, unknown> = { reason };
  if (cert !== undefined) data['fingerprint'] = certificateFingerprint(cert);
  return new GitfsError(ErrorCodes.BAD_CERTIFICATE, message, data);
}

/** validFrom/validTo as ms ("Jan  1 00:00:00 2030 GMT", OpenSSL's rendering). */
function parseValidity(text: string, cert: X509Certificate): number {
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw refuse('validity', `unreadable validity time ${JSON.stringify(text)}`, cert);
  return ms;
}

function checkValidity(cert: X509Certificate, nowMs: number, what: string): number {
  const from = parseValidity(cert.validFrom, cert);
  const to = parseValidity(cert.validTo, cert);
  // RFC 5280 §4.1.2.5: both ends inclusive; times have whole seconds.
  if (nowMs < from) throw refuse('not-yet-valid', `${what} certificate is not valid before ${cert.validFrom}`, cert);
  if (nowMs >= to + 1000) throw refuse('expired', `${what} certificate expired at ${cert.validTo}`, cert);
  return to;
}

/** The node id from a subject that must be exactly one CN of lowercase hex (anything else: multi-valued, escaped, other attributes, is refused). */
function nodeIdOf(cert: X509Certificate): string {
  const match = /^CN=([^\n]*)$/.exec(cert.subject);
  const cn = match?.[1];
  if (cn === undefined || !NODE_ID_RE.test(cn)) {
    throw refuse('subject', `certificate subject is not CN=<node id, 16 lowercase hex>: ${JSON.stringify(cert.subject.slice(0, 200))}`, cert);
  }
  return cn;
}

/**
 * Checks that `cert` is a node (non-CA) certificate issued and signed by `ca`, with both valid
 * at `nowMs`; the node id is the subject CN. Throws GITFS_BAD_CERTIFICATE with `data.reason`
 * one of: ca, not-yet-valid, expired, is-ca, issuer, signature, key, subject, validity.
 */
export function verifyNodeCertificate(cert: X509Certificate, ca: X509Certificate, nowMs: number): VerifiedNode {
  if (!ca.ca) throw refuse('ca', 'the trusted certificate is not a CA certificate', ca);
  const caNotAfter = checkValidity(ca, nowMs, 'CA');
  if (cert.ca) throw refuse('is-ca', 'a CA certificate was presented as a node certificate', cert);
  if (!cert.checkIssued(ca)) throw refuse('issuer', 'certificate was not issued by the cluster CA', cert);
  if (!cert.verify(ca.publicKey)) throw refuse('signature', 'certificate signature does not verify with the cluster CA key', cert);
  const notAfter = checkValidity(cert, nowMs, 'node');
  if (cert.publicKey.asymmetricKeyType !== KEY_ALGORITHM) {
    throw refuse('key', `node key is ${cert.publicKey.asymmetricKeyType ?? 'unknown'}, not ${KEY_ALGORITHM}`, cert);
  }
  const nodeId = nodeIdOf(cert);
  // The id is the key's (node-id.ts): a certificate naming another could never be revoked by it, nor told apart from that node.
  if (nodeId !== idOfKey(cert.publicKey)) throw refuse('subject', `certificate subject ${nodeId} is not the id of its key (${idOfKey(cert.publicKey)})`, cert);
  return { nodeId, publicKey: cert.publicKey, notAfter: Math.min(notAfter, caNotAfter), fingerprint: certificateFingerprint(cert) };
}

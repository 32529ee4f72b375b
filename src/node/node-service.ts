/**
 * The node's TCP service (TLS 1.3, src/cluster/tls.ts): one JSON request per connection
 * (src/util/json-line.ts). A connection without a member certificate may only ask to join, and
 * only a node holding the CA key answers that; members may fetch the revocation list, and renew
 * their certificates where the CA key is. A
 * connection that starts with a BitTorrent handshake goes to the swarm instead (src/swarm).
 */
import type { Socket } from 'node:net';
import { createServer, connect, type Server, type TLSSocket } from 'node:tls';
import { issueRenewal } from '../cluster/cluster-store.js';
import { answerJoin, type JoinRequest } from '../cluster/join.js';
import type { ClusterTrust, NodeIdentity } from '../cluster/identity.js';
import type { NodeId } from '../cluster/node-id.js';
import { openRevocations, type RevocationList } from '../cluster/revocation.js';
import { clientOptions, peerNode, serverOptions } from '../cluster/tls.js';
import { ErrorCodes, GitfsError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import { answerOneLine, askOneLine, REMOTE_MAX_ANSWER } from '../util/json-line.js';
import type { Logger } from '../util/log.js';

const IDLE_MS = 15_000;
const MAX_CONNECTIONS = 1024;
/**
 * Most connections open at once from one address: a member holds one swarm connection and a
 * request now and then; without a bound, one host opening connections that never finish their
 * handshake (each held 10 s, or 15 s idle) took all MAX_CONNECTIONS, and members were refused.
 */
export const MAX_CONNECTIONS_PER_ADDRESS = 64;
/**
 * Most connections open at once that are not yet known for a member's (a handshake under way, a
 * join, a stranger): past it the oldest is closed. Sixteen addresses holding 64 each filled all
 * MAX_CONNECTIONS, and members' swarm dials and requests were refused; now a member's handshake,
 * milliseconds on a LAN, gets through unless 256 newer connections come within it. A join (no
 * certificate yet) counts as pending throughout, and may be closed so under a flood: it is tried again.
 */
export const MAX_PENDING_CONNECTIONS = 256;
const HANDSHAKE_MS = 10_000;

export interface NodeServiceComponents {
  readonly gitDir: string;
  readonly identity: NodeIdentity;
  readonly trust: ClusterTrust;
  readonly clock: Clock;
  readonly log: Logger;
  /** Whether this node holds the CA key (and so answers joins). */
  readonly issuer: boolean;
  /** Takes connections that speak the swarm's wire. */
  readonly swarm?: { accept(socket: TLSSocket): void };
}

const BITTORRENT_FIRST_BYTE = 19;

export async function startNodeService(c: NodeServiceComponents, listen: { address: string; port: number }): Promise<Server> {
  let limits: ConnectionLimits | undefined;
  const server = createServer({ ...serverOptions(c.identity, c.trust), handshakeTimeout: HANDSHAKE_MS }, (socket) => {
    if (peerNode(socket, c.trust, c.clock.now()) !== undefined) limits?.member(socket);
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    // The first byte tells the protocol: 19 starts a BitTorrent handshake (the swarm), '{' a JSON request.
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      if (first[0] === BITTORRENT_FIRST_BYTE && c.swarm !== undefined) c.swarm.accept(socket);
      else answerOneLine(socket, (req) => dispatch(c, socket, req));
      socket.resume();
    });
  });
  limits = limitConnections(server, c.log);
  // A handshake that failed or timed out leaves its socket open (Node 20): closed here, or it held its place for good.
  server.on('tlsClientError', (e, socket) => {
    c.log.log('debug', 'tls-refused', { error: e.message });
    socket.destroy();
  });
  // Out of descriptors (a host opening connections without end) is a warning, not a crash.
  server.maxConnections = MAX_CONNECTIONS;
  server.on('error', (e) => c.log.log('warn', 'service-error', { error: e.message }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

interface ConnectionLimits {
  /** `socket` is a member's: it no longer counts as pending. */
  member(socket: TLSSocket): void;
}

/**
 * Closes a connection past MAX_CONNECTIONS_PER_ADDRESS from its address at once, before its
 * handshake, and the oldest connection not yet a member's past MAX_PENDING_CONNECTIONS.
 */
function limitConnections(server: Server, log: Logger): ConnectionLimits {
  const open = new Map<string, number>();
  const pending = new Map<string, Socket>();
  const keyOf = (s: Socket): string => `${s.remoteAddress ?? ''}:${s.remotePort ?? ''}`;
  const told = { address: false, pending: false };
  server.on('connection', (raw: Socket) => {
    const address = raw.remoteAddress ?? '';
    const n = (open.get(address) ?? 0) + 1;
    if (n > MAX_CONNECTIONS_PER_ADDRESS) {
      if (!told.address) log.log('warn', 'service-address-limit', { address, limit: MAX_CONNECTIONS_PER_ADDRESS });
      told.address = true;
      raw.destroy();
      return;
    }
    told.address = false;
    open.set(address, n);
    const key = keyOf(raw);
    pending.set(key, raw);
    raw.once('close', () => {
      pending.delete(key);
      const left = (open.get(address) ?? 1) - 1;
      if (left === 0) open.delete(address);
      else open.set(address, left);
    });
    if (pending.size <= MAX_PENDING_CONNECTIONS) {
      told.pending = false;
      return;
    }
    const [oldestKey, oldest] = pending.entries().next().value as [string, Socket];
    pending.delete(oldestKey);
    if (!told.pending) log.log('warn', 'service-pending-limit', { limit: MAX_PENDING_CONNECTIONS, closed: oldestKey });
    told.pending = true;
    oldest.destroy();
  });
  return { member: (socket) => void pending.delete(keyOf(socket)) };
}

async function dispatch(c: NodeServiceComponents, socket: TLSSocket, req: unknown): Promise<unknown> {
  const op = typeof req === 'object' && req !== null ? (req as { op?: unknown }).op : undefined;
  if (op === 'join') {
    if (!c.issuer) throw new GitfsError(ErrorCodes.BAD_TOKEN, 'this node does not issue certificates (the token names another node)');
    const answer = await answerJoin(c.gitDir, req as JoinRequest, socket, c.clock.now());
    c.log.log('info', 'node-joined', { nodeId: (answer as { nodeId: string }).nodeId, from: socket.remoteAddress });
    return answer;
  }
  const peer = peerNode(socket, c.trust, c.clock.now());
  if (peer === undefined) throw new GitfsError(ErrorCodes.BAD_CERTIFICATE, 'members only');
  if (op === 'revocations') return { revocations: c.trust.revocations?.encoded.toString('base64') ?? null };
  if (op === 'renew') {
    // A member whose certificate is valid and not revoked gets a new one for the same key (the same node id).
    if (!c.issuer) throw new GitfsError(ErrorCodes.NOT_IN_CLUSTER, 'this node does not hold the cluster CA key (it issues no certificates)');
    const certificate = await issueRenewal(c.gitDir, peer.publicKey, c.clock.now());
    c.log.log('info', 'node-renewed', { nodeId: peer.nodeId, from: socket.remoteAddress });
    return { certificate };
  }
  throw new GitfsError(ErrorCodes.BAD_ARGUMENT, `unknown request ${JSON.stringify(op)}`);
}

/** Where a member is asked: its address and port, and the node expected there, if known. */
export interface MemberAddress {
  readonly address: string;
  readonly port: number;
  readonly nodeId?: NodeId;
}

/** How a request to a member is made: `signal` stops it; `now` judges the member's certificate (default the system clock). */
export interface AskOptions {
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

/**
 * Asks the member at `to` one request over mutual TLS. The answerer must be a member, not revoked
 * (peerNode, as the service checks its clients), and the node `to` names if it names one. The
 * whole exchange must end within IDLE_MS (a member trickling its answer a byte at a time held the
 * socket for days), or when the signal aborts.
 */
function askMember(identity: NodeIdentity, trust: ClusterTrust, to: MemberAddress, request: unknown, o: AskOptions): Promise<unknown> {
  const { signal } = o;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: to.address, port: to.port, ...clientOptions(identity, trust) });
    const deadline = setTimeout(() => socket.destroy(new GitfsError(ErrorCodes.PEER_FAILED, `${to.address}:${to.port} did not answer within ${IDLE_MS / 1000} s`)), IDLE_MS);
    const abort = (): void => void socket.destroy(new GitfsError(ErrorCodes.PEER_FAILED, 'the request was stopped'));
    signal?.addEventListener('abort', abort, { once: true });
    socket.once('close', () => {
      clearTimeout(deadline);
      signal?.removeEventListener('abort', abort);
    });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const peer = peerNode(socket, trust, (o.now ?? Date.now)());
      if (peer === undefined || (to.nodeId !== undefined && peer.nodeId !== to.nodeId)) {
        const who = peer === undefined ? 'no member of this cluster (or a revoked one)' : `${peer.nodeId}, not ${to.nodeId}`;
        return void socket.destroy(new GitfsError(ErrorCodes.PEER_FAILED, `${to.address}:${to.port} is ${who}`));
      }
      askOneLine(socket, request, `${to.address}:${to.port}`, ErrorCodes.PEER_FAILED, REMOTE_MAX_ANSWER)
        .then(resolve, reject)
        .finally(() => socket.destroy());
    });
  });
}

/** Asks a member for its revocation list; checked against the CA key. */
export async function fetchRevocations(identity: NodeIdentity, trust: ClusterTrust, to: MemberAddress, o: AskOptions = {}): Promise<RevocationList | undefined> {
  const encoded = ((await askMember(identity, trust, to, { op: 'revocations' }, o)) as { revocations: string | null }).revocations;
  return encoded === null ? undefined : openRevocations(Buffer.from(encoded, 'base64'), trust.ca.publicKey);
}

/** Asks a member that issues certificates for a renewed certificate for this node's key (PEM; the caller checks it). */
export async function fetchRenewal(identity: NodeIdentity, trust: ClusterTrust, to: MemberAddress, o: AskOptions = {}): Promise<string> {
  const pem = ((await askMember(identity, trust, to, { op: 'renew' }, o)) as { certificate?: unknown }).certificate;
  if (typeof pem !== 'string') throw new GitfsError(ErrorCodes.PEER_FAILED, `${to.address}:${to.port} answered the renewal without a certificate`);
  return pem;
}

/**
 * The announcement schema (protobuf, proto3), parsed once at load by protobufjs. The text below
 * is the schema; docs/PROTOCOL.md explains every field. Field numbers never change meaning.
 */
import protobuf from 'protobufjs';

export const ANNOUNCE_PROTO = `
syntax = "proto3";
package gitfs.multicast.v1;

// One UDP datagram. Everything a receiver needs to check it travels in it.
message Envelope {
  uint32 version = 1;      // 1
  bytes cluster = 2;       // first 8 bytes of SHA-256(CA certificate DER): a cheap pre-filter, not trusted
  bytes certificate = 3;   // the sender's node certificate (DER), issued by the cluster CA
  bytes body = 4;          // an encoded Announcement
  bytes signature = 5;     // Ed25519 by the node key over "gitfs-announce-v1" || 0x00 || body
}

message Announcement {
  string node_id = 1;      // must equal the certificate's subject CN
  bytes instance = 2;      // 16 random bytes, new at every daemon start
  uint64 seq = 3;          // per instance, +1 per announcement; all parts of one share it
  uint64 time_ms = 4;      // sender's wall clock, ms since the epoch
  string name = 5;         // human-readable node name
  repeated Endpoint endpoints = 6;
  uint32 part = 7;         // 0-based
  uint32 parts = 8;
  string range_start = 9;  // this part lists every head whose branch name is in [range_start, range_end)
  string range_end = 10;   // "" = no upper bound
  repeated Head heads = 11;
  uint64 revocation_version = 12; // newest revocation list the sender holds (0: none)
  uint32 interval_ms = 13; // sender's periodic interval: receivers expire it after 3 of them
  repeated Rollout rollouts = 14; // the sender's rollout agent, per channel in [range_start, range_end)
}

// Where a node stands in the rollout of one channel (src/rollout/waves.ts names the states).
message Rollout {
  string channel = 1;         // the channel branch
  bytes release = 2;          // the release commit this report is about (20 bytes; empty: none yet)
  string version = 3;         // its manifest version
  string state = 4;           // pending | fetching | staged | applying | checking | blessed | failed | rolled-back | stopped
  uint32 failures = 5;        // failed tries of that release here
  bytes blessed = 6;          // the release blessed here (20 bytes; empty: none)
  string blessed_version = 7;
  bool paused = 8;            // an operator paused the channel here: the cluster starts no new apply
  bytes recalled = 9;         // a release an operator rolled back cluster-wide (20 bytes; empty: none)
  bytes recall_signature = 10; // the operator's signature of that recall (SSHSIG blob, at most 512 bytes; empty: none)
}

message Endpoint {
  bytes address = 1;       // 4 bytes: IPv4 (the only kind announced; others are refused as malformed)
  uint32 port = 2;         // the node's TCP service port
}

message Head {
  string branch = 1;
  bytes oid = 2;           // 20 bytes
  uint64 commit_time = 3;  // committer time, seconds since the epoch
}
`;

/**
 * Never sent: the fields of an Announcement read before its signature is checked (receiver.ts),
 * decoded from the same bytes. protobufjs skips the fields this does not name without decoding
 * them, so a forged datagram's heads cost nothing before it has a token to be checked.
 */
const HEADER_PROTO = `
syntax = "proto3";
package gitfs.multicast.v1;

message AnnouncementHeader {
  string node_id = 1;
  bytes instance = 2;
  uint64 seq = 3;
  uint64 time_ms = 4;
  uint32 part = 7;
}
`;

const root = protobuf.parse(ANNOUNCE_PROTO, { keepCase: true }).root;
protobuf.parse(HEADER_PROTO, root, { keepCase: true });

export const EnvelopeMessage = root.lookupType('gitfs.multicast.v1.Envelope');
export const AnnouncementMessage = root.lookupType('gitfs.multicast.v1.Announcement');
export const AnnouncementHeaderMessage = root.lookupType('gitfs.multicast.v1.AnnouncementHeader');

/** How decoded messages are turned into plain objects: numbers, Buffers, defaults filled in. */
export const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, bytes: Buffer, defaults: true, arrays: true };

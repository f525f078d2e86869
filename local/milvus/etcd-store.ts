/**
 * The etcd member directory of the simulated cluster. Real etcd keeps its keyspace in a bbolt
 * file (`member/snap/db`) and its raft log in `member/wal/*.wal`; the simulator keeps the same
 * two files in the same places, with a simple documented encoding instead of bbolt's B+tree:
 *
 *   member/snap/db
 *     0   8  magic "MGETCDB1"
 *     8   4  format version (1), uint32 LE
 *     12  4  page size (4096), uint32 LE
 *     16  8  revision, uint64 LE
 *     24  4  number of entries, uint32 LE
 *     28  4  length of the entry section, uint32 LE
 *     32  4  CRC-32 of the entry section, uint32 LE
 *     64  …  entries, sorted by key: uint32 LE key length, key (UTF-8),
 *                                     uint32 LE value length, value (UTF-8 JSON)
 *     then zero pages up to a power-of-two size (bbolt files grow the same way and keep free
 *     pages, which is why etcd volumes compress well)
 *
 *   member/wal/0000000000000000-0000000000000000.wal
 *     length-prefixed JSON records (uint64 LE length, then the record): a metadata record,
 *     then one `put` per key as written at seeding time, zero-padded to 64 KiB.
 *
 * Real Milvus stores protobuf values; the simulator stores the same fields as JSON so the
 * files stay readable in a hex dump and in tests. Every etcd member directory gets the same
 * content, as raft replicas of one cluster would have.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import writeFileAtomic from 'write-file-atomic';

export const ETCD_DB_PATH = join('member', 'snap', 'db');
export const ETCD_WAL_PATH = join('member', 'wal', '0000000000000000-0000000000000000.wal');

const MAGIC = 'MGETCDB1';
const VERSION = 1;
const PAGE_SIZE = 4096;
const HEADER_SIZE = 64;
const MIN_DB_SIZE = 128 * 1024;
const WAL_SIZE = 64 * 1024;

/** The keyspace of one etcd member. */
export interface EtcdSnapshot {
  revision: number;
  entries: Map<string, string>;
}

/** No etcd member directory holds a readable db: Milvus cannot start. */
export class EtcdDataMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EtcdDataMissingError';
  }
}

/** A db file that is not in the simulator's format or fails its checksum. */
export class CorruptEtcdDbError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptEtcdDbError';
  }
}

function nextPowerOfTwo(n: number): number {
  let size = 1;
  while (size < n) size *= 2;
  return size;
}

/** Encodes a keyspace as a `member/snap/db` file. */
export function encodeEtcdDb(snapshot: EtcdSnapshot): Buffer {
  const keys = [...snapshot.entries.keys()].sort();
  const parts: Buffer[] = [];
  for (const key of keys) {
    const k = Buffer.from(key, 'utf8');
    const v = Buffer.from(snapshot.entries.get(key)!, 'utf8');
    const lk = Buffer.alloc(4);
    lk.writeUInt32LE(k.length);
    const lv = Buffer.alloc(4);
    lv.writeUInt32LE(v.length);
    parts.push(lk, k, lv, v);
  }
  const body = Buffer.concat(parts);
  const size = nextPowerOfTwo(Math.max(MIN_DB_SIZE, HEADER_SIZE + body.length));
  const out = Buffer.alloc(size);
  out.write(MAGIC, 0, 'ascii');
  out.writeUInt32LE(VERSION, 8);
  out.writeUInt32LE(PAGE_SIZE, 12);
  out.writeBigUInt64LE(BigInt(snapshot.revision), 16);
  out.writeUInt32LE(keys.length, 24);
  out.writeUInt32LE(body.length, 28);
  out.writeUInt32LE(crc32(body), 32);
  body.copy(out, HEADER_SIZE);
  return out;
}

/** Decodes a `member/snap/db` file written by `encodeEtcdDb`. */
export function decodeEtcdDb(file: Buffer): EtcdSnapshot {
  if (file.length < HEADER_SIZE || file.toString('ascii', 0, 8) !== MAGIC) {
    throw new CorruptEtcdDbError('not a simulated etcd db (magic "MGETCDB1" missing)');
  }
  const version = file.readUInt32LE(8);
  if (version !== VERSION) throw new CorruptEtcdDbError(`unsupported etcd db format version ${version}`);
  const revision = Number(file.readBigUInt64LE(16));
  const count = file.readUInt32LE(24);
  const bodyLength = file.readUInt32LE(28);
  if (HEADER_SIZE + bodyLength > file.length) throw new CorruptEtcdDbError('etcd db truncated');
  const body = file.subarray(HEADER_SIZE, HEADER_SIZE + bodyLength);
  if (crc32(body) !== file.readUInt32LE(32)) throw new CorruptEtcdDbError('etcd db checksum mismatch');
  const entries = new Map<string, string>();
  let o = 0;
  for (let i = 0; i < count; i++) {
    const kl = body.readUInt32LE(o);
    const key = body.toString('utf8', o + 4, o + 4 + kl);
    o += 4 + kl;
    const vl = body.readUInt32LE(o);
    entries.set(key, body.toString('utf8', o + 4, o + 4 + vl));
    o += 4 + vl;
  }
  return { revision, entries };
}

/**
 * Reads the keyspace from the etcd member directories. Like a raft cluster that elects the
 * member with the most recent log, it takes the readable copy with the highest revision, so
 * losing (or corrupting) a minority of members changes nothing.
 */
export async function readEtcd(dirs: readonly string[]): Promise<EtcdSnapshot> {
  let best: EtcdSnapshot | undefined;
  const problems: string[] = [];
  // Members hold the same bytes while they agree (raft replicas): each distinct file is decoded once.
  const decoded: { file: Buffer; snapshot?: EtcdSnapshot; error?: Error }[] = [];
  for (const dir of dirs) {
    try {
      const file = await readFile(join(dir, ETCD_DB_PATH));
      let seen = decoded.find((d) => d.file.equals(file));
      if (!seen) {
        seen = { file };
        try {
          seen.snapshot = decodeEtcdDb(file);
        } catch (err) {
          seen.error = err as Error;
        }
        decoded.push(seen);
      }
      if (seen.error) throw seen.error;
      if (!best || seen.snapshot!.revision > best.revision) best = seen.snapshot;
    } catch (err) {
      problems.push(`${join(dir, ETCD_DB_PATH)}: ${(err as Error).message}`);
    }
  }
  if (!best) {
    throw new EtcdDataMissingError(
      `no etcd member holds a readable keyspace (${problems.join('; ') || 'no etcd directories given'})`,
    );
  }
  return best;
}

/** The tail of each keyspace's queue of writers, by its member directories (see {@link withEtcdLock}). */
const etcdLocks = new Map<string, Promise<void>>();

/**
 * Runs `fn` alone among the callers of the same etcd member directories, in the order they
 * called. Every write of the simulated Milvus reads the whole keyspace, changes it and writes it
 * back; two at once would lose one's change (a flush's segments, an insert's segment, a load's
 * load info), where real etcd serializes transactions. Every read-modify-write of the keyspace
 * runs under it; `fn` must not take it again (it would wait for itself). Process-wide, so two
 * simulators on the same volumes serialize too. A promise chain of a few lines: no mutex
 * library is among the project's dependencies.
 */
export async function withEtcdLock<T>(dirs: readonly string[], fn: () => Promise<T>): Promise<T> {
  const key = JSON.stringify(dirs.map((d) => resolve(d)));
  const previous = etcdLocks.get(key) ?? Promise.resolve();
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  const tail = previous.then(() => done);
  etcdLocks.set(key, tail);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    if (etcdLocks.get(key) === tail) etcdLocks.delete(key);
  }
}

/** Writes the keyspace to every member directory (each replica holds the same data). */
export async function writeEtcdDb(dirs: readonly string[], snapshot: EtcdSnapshot): Promise<string[]> {
  const file = encodeEtcdDb(snapshot);
  const written: string[] = [];
  for (const dir of dirs) {
    await mkdir(join(dir, 'member', 'snap'), { recursive: true });
    const path = join(dir, ETCD_DB_PATH);
    await writeFileAtomic(path, file);
    written.push(path);
  }
  return written;
}

/** Encodes the seeding-time WAL: a metadata record and one `put` record per key. */
export function encodeEtcdWal(snapshot: EtcdSnapshot, clusterId: string): Buffer {
  const records = [
    { type: 'metadata', clusterId, revision: 0 },
    ...[...snapshot.entries.keys()].sort().map((key, i) => ({
      type: 'put',
      revision: i + 1,
      key,
      value: snapshot.entries.get(key),
    })),
  ];
  const parts: Buffer[] = [];
  for (const record of records) {
    const data = Buffer.from(JSON.stringify(record), 'utf8');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(data.length));
    parts.push(len, data);
  }
  const body = Buffer.concat(parts);
  const out = Buffer.alloc(Math.max(WAL_SIZE, Math.ceil(body.length / PAGE_SIZE) * PAGE_SIZE));
  body.copy(out);
  return out;
}

/** Writes the seeding-time WAL to every member directory. */
export async function writeEtcdWal(dirs: readonly string[], snapshot: EtcdSnapshot, clusterId: string): Promise<string[]> {
  const wal = encodeEtcdWal(snapshot, clusterId);
  const written: string[] = [];
  for (const dir of dirs) {
    await mkdir(join(dir, 'member', 'wal'), { recursive: true });
    const path = join(dir, ETCD_WAL_PATH);
    await writeFileAtomic(path, wal);
    written.push(path);
  }
  return written;
}

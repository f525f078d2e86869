/**
 * The per-volume file index: gzip-compressed JSON lines, one header line and then one line per
 * entry, sorted by path so that a backup can merge-join it with a directory walk and a restore
 * can stream it, both without holding the tree in memory.
 *
 * Paths and symlink targets are raw bytes in base64: a Linux file name may hold newlines and
 * bytes that are not UTF-8, and both must come back exactly. Each line is
 *
 * ```
 * {"p":"<base64 path relative to the volume root; '' is the root>","t":"f"|"d"|"l",
 *  "m":<permission bits>,"u":<uid>,"g":<gid>,"mt":"<mtime in ns>","s":<size>,
 *  "l":"<base64 symlink target>","c":[["<sha256>","<pack id>",<offset>,<length>],...]}
 * ```
 *
 * Sort order is component-wise byte order, the order of a depth-first walk that lists each
 * directory sorted by name bytes (`comparePaths`).
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip, createGzip, type Gunzip } from 'node:zlib';
import { TransientError } from '../errors.js';
import { DOWNLOAD_ATTEMPTS, isChecksumMismatch, isCutShort, isSystemIoError, READ_INTERRUPTED } from '../vault/store.js';

export const INDEX_FORMAT = 'milvus-guard/volume-index';
export const INDEX_VERSION = 1;

/** Where one chunk's bytes are: a range of a pack object. */
export interface ChunkRef {
  /** Hex SHA-256 of the chunk's bytes (the chunk id). */
  readonly hash: string;
  readonly pack: string;
  readonly offset: number;
  readonly length: number;
}

export type EntryType = 'file' | 'dir' | 'symlink';

/** One file system entry of a volume. */
export interface IndexEntry {
  /** Path relative to the volume root, raw bytes; empty for the root itself. */
  readonly path: Buffer;
  readonly type: EntryType;
  /** Permission bits including setuid, setgid and sticky (`mode & 0o7777`). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: bigint;
  /** File size in bytes; 0 for directories, the target length for symlinks. */
  readonly size: number;
  readonly target?: Buffer;
  /** The file's content in order (files only). */
  readonly chunks?: readonly ChunkRef[];
}

/** The first line of an index. */
export interface IndexHeader {
  readonly format: typeof INDEX_FORMAT;
  readonly version: number;
  readonly volume: string;
  readonly backupId: string;
  readonly chunker: string;
  /** The export run that wrote it (`BackupOptions.runId`); absent when none was given. */
  readonly runId?: string;
}

/** An index that cannot be read: wrong format, broken line, entries out of order. */
export class IndexCorruptError extends Error {
  constructor(what: string, message: string) {
    super(`${what}: ${message}; the index is damaged, restore from another backup`);
    this.name = 'IndexCorruptError';
  }
}

/**
 * Reading an index failed below it: its stream failed (a connection reset, an I/O error) or
 * closed before its end. That says nothing about the index, which may well be whole, so it is
 * not {@link IndexCorruptError} (whose advice, restore another backup, would be wrong on the
 * day a network is flaky): a retry may read it. The workflows' Lambda steps retry it by name
 * (the vault store's `VaultReadInterruptedError` has the same); a data-mover Job by its own
 * retries.
 */
export class IndexReadError extends TransientError {
  constructor(what: string, cause: Error, attempts = 1) {
    super(READ_INTERRUPTED, `${what}: reading it failed${attempts > 1 ? ` ${attempts} times` : ''} (${cause.message}); that is a failure of the read, not known damage to the index: try again`, { cause });
  }
}

/**
 * What a failure `raw` of a stream of index `what`, after `attempts` download(s), means: a body
 * that fails the store's checksum for it is the object's bytes ({@link IndexCorruptError}); a
 * download cut short, or an I/O error of the store (an errno code), is the read's
 * ({@link IndexReadError}); anything else is not ours to name and passes as it is.
 */
function indexReadFailure(what: string, raw: unknown, attempts: number): unknown {
  if (isChecksumMismatch(raw)) return new IndexCorruptError(what, `cannot read it (${(raw as Error).message}, ${attempts} download(s))`);
  if (isCutShort(raw) || isSystemIoError(raw)) return new IndexReadError(what, raw as Error, attempts);
  return raw;
}

/** What {@link indexDownloadFailure} answers when the download is to be tried again. */
export const TRY_AGAIN = Symbol('try the download again');

/**
 * After try `attempt` of a download of index `what`, from its start, failed with `err` (a
 * stream's error, or the IndexReadError an IndexReader made of one): {@link TRY_AGAIN} while
 * tries are left ({@link DOWNLOAD_ATTEMPTS}: the SDK retries requests, not bodies) and the
 * download was cut short or its bytes failed the store's checksum; otherwise the error to throw
 * ({@link indexReadFailure}).
 */
export function indexDownloadFailure(what: string, err: unknown, attempt: number): unknown {
  const raw = err instanceof IndexReadError ? err.cause : err;
  if (attempt < DOWNLOAD_ATTEMPTS && (isCutShort(raw) || isChecksumMismatch(raw))) return TRY_AGAIN;
  const named = indexReadFailure(what, raw, attempt);
  return named === raw ? err : named;
}

const SLASH = 0x2f;

/**
 * Orders two relative paths the way a depth-first walk visits them: component by component,
 * each by bytes. That is byte order with '/' sorting below every other byte, which keeps
 * `a/b` before `a-c` (plain byte order would not).
 */
export function comparePaths(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (x === SLASH) return -1;
    if (y === SLASH) return 1;
    return x - y;
  }
  return a.length - b.length;
}

const TYPE_CODE: Record<EntryType, string> = { file: 'f', dir: 'd', symlink: 'l' };
const CODE_TYPE: Record<string, EntryType> = { f: 'file', d: 'dir', l: 'symlink' };

export function encodeEntry(e: IndexEntry): string {
  const o: Record<string, unknown> = { p: e.path.toString('base64'), t: TYPE_CODE[e.type], m: e.mode, u: e.uid, g: e.gid, mt: e.mtimeNs.toString(), s: e.size };
  if (e.target) o['l'] = e.target.toString('base64');
  if (e.chunks) o['c'] = e.chunks.map((c) => [c.hash, c.pack, c.offset, c.length]);
  return JSON.stringify(o);
}

/**
 * The largest chunk a reference may name: far above any chunker's maximum (fastcdc.ts: 4 MiB),
 * so a damaged length (negative, fractional, `1e999`, gigabytes) fails here as damage instead
 * of reaching a read of that many bytes.
 */
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export function decodeEntry(line: string, what: string): IndexEntry {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new IndexCorruptError(what, 'a line is not JSON');
  }
  const type = CODE_TYPE[String(o['t'])];
  if (typeof o['p'] !== 'string' || !type || typeof o['m'] !== 'number' || !isCount(o['s']) || typeof o['mt'] !== 'string' || !/^-?\d+$/.test(o['mt'])) {
    throw new IndexCorruptError(what, `malformed entry ${line.slice(0, 200)}`);
  }
  const chunks = Array.isArray(o['c'])
    ? (o['c'] as unknown[]).map((c) => {
        if (!Array.isArray(c) || typeof c[0] !== 'string' || typeof c[1] !== 'string' || !isCount(c[2]) || !isCount(c[3]) || c[3] > MAX_CHUNK_BYTES) {
          throw new IndexCorruptError(what, `malformed chunk reference in ${line.slice(0, 200)}`);
        }
        return { hash: c[0], pack: c[1], offset: c[2], length: c[3] };
      })
    : undefined;
  return {
    path: Buffer.from(o['p'], 'base64'),
    type,
    mode: o['m'],
    uid: typeof o['u'] === 'number' ? o['u'] : 0,
    gid: typeof o['g'] === 'number' ? o['g'] : 0,
    mtimeNs: BigInt(o['mt']),
    size: o['s'],
    ...(typeof o['l'] === 'string' ? { target: Buffer.from(o['l'], 'base64') } : {}),
    ...(chunks ? { chunks } : {}),
  };
}

// Lines are handed to gzip in batches of about this many characters: each gzip write is a
// round trip through libuv's thread pool, and one per entry cost an incremental backup of
// 16,000 entries ~0.3 s of its main thread. The batch is what a writer holds beyond gzip's own
// buffers.
const WRITE_BATCH = 64 * 1024;

/** Streams an index into a local gzip file, checking that entries arrive in order. */
export class IndexWriter {
  // Level 1: the index is written on the backup's critical path, and the larger levels buy
  // little on base64 paths and hex digests.
  private readonly gzip = createGzip({ level: 1 });
  private readonly done: Promise<void>;
  private last: Buffer | undefined;
  private readonly hash = createHash('sha256');
  private size = 0;
  /** Lines not yet handed to gzip: at most WRITE_BATCH characters plus one line. */
  private pending = '';
  /** Entries written so far. */
  count = 0;
  /** Regular files written so far, and their bytes. */
  files = 0;
  fileBytes = 0;

  constructor(
    readonly file: string,
    header: Omit<IndexHeader, 'format' | 'version'>,
  ) {
    const out = createWriteStream(file);
    // The digest of exactly the bytes the file receives: what the volume summary commits to.
    this.gzip.on('data', (chunk: Buffer) => {
      this.hash.update(chunk);
      this.size += chunk.length;
    });
    this.gzip.pipe(out);
    this.done = new Promise((resolve, reject) => {
      out.on('finish', resolve);
      out.on('error', reject);
      this.gzip.on('error', reject);
    });
    this.gzip.write(`${JSON.stringify({ format: INDEX_FORMAT, version: INDEX_VERSION, ...header })}\n`);
  }

  async write(entry: IndexEntry): Promise<void> {
    if (this.last !== undefined && comparePaths(this.last, entry.path) >= 0) {
      throw new Error(`index entries out of order: ${JSON.stringify(entry.path.toString())} after ${JSON.stringify(this.last.toString())}`);
    }
    this.last = entry.path;
    this.count++;
    if (entry.type === 'file') {
      this.files++;
      this.fileBytes += entry.size;
    }
    this.pending += `${encodeEntry(entry)}\n`;
    if (this.pending.length >= WRITE_BATCH) await this.flushPending();
  }

  async close(): Promise<void> {
    await this.flushPending();
    this.gzip.end();
    await this.done;
  }

  private async flushPending(): Promise<void> {
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    if (!this.gzip.write(text)) await once(this.gzip, 'drain');
  }

  /** After `close`: the digest and size of the written file and what it holds. */
  commitment(): { sha256: string; size: number; entries: number; files: number; bytes: number } {
    return { sha256: this.hash.copy().digest('hex'), size: this.size, entries: this.count, files: this.files, bytes: this.fileBytes };
  }
}

/**
 * Reads an index stream: the header first (`readHeader`), then the entries in order. Checks
 * the format and the sort order, so a damaged index fails loudly instead of restoring a wrong
 * tree.
 */
export class IndexReader {
  private readonly lines: AsyncIterator<string>;
  private last: Buffer | undefined;
  private header: IndexHeader | undefined;
  private readonly hash = createHash('sha256');
  private size = 0;
  private readonly ended: Promise<boolean>;
  private readonly source: Readable;
  private readonly gunzip: Gunzip;
  private readonly interface: Interface;
  /** The stream's own failure, if it failed (see {@link IndexReadError}). */
  private readFailure: Error | undefined;
  /** Entries read so far, regular files among them and their bytes (for the summary's commitment). */
  readonly counts = { entries: 0, files: 0, bytes: 0 };

  constructor(
    stream: Readable,
    private readonly what: string,
  ) {
    this.source = stream;
    const gunzip = createGunzip();
    this.gunzip = gunzip;
    // The stream's own failure is the read's, not the index's: remembered, so that next() can
    // tell it from gunzip's or the decoder's (the same error object reaches next() through
    // gunzip and readline).
    stream.on('error', (err) => {
      this.readFailure ??= err;
      gunzip.destroy(err);
    });
    // A damaged object fails in gunzip, and pipe() then only unpipes: the source would stay
    // open (a file descriptor, or a socket of the S3 client's pool) until garbage collection.
    gunzip.on('error', () => stream.destroy());
    // A stream that closes without its end and without an error (a download given up by
    // something below) would leave gunzip waiting for more, and next() with it, for ever. Not
    // when gunzip is done already: it failed (and closed the stream), or close() was called.
    stream.once('close', () => {
      if (stream.readableEnded || gunzip.destroyed) return;
      const err = Object.assign(new Error('its stream closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
      this.readFailure ??= err;
      gunzip.destroy(err);
    });
    // Every byte of the object is hashed as it passes, so a reader that reads to the end can
    // compare the object with the summary's commitment without a second download.
    stream.on('data', (chunk: Buffer) => {
      this.hash.update(chunk);
      this.size += chunk.length;
    });
    this.ended = new Promise((resolve) => {
      stream.once('end', () => resolve(true));
      stream.once('error', () => resolve(false));
      stream.once('close', () => resolve(stream.readableEnded));
    });
    const lines = createInterface({ input: stream.pipe(gunzip), crlfDelay: Infinity });
    // readline re-emits its input's errors on the interface. While the iterator below is read,
    // it takes them and next() throws; once it is closed (a reader stopped early), an error
    // still to come (gunzip reaching the end of a truncated object it already holds) would have
    // no listener and be thrown out of the process. The robustness run crashed on exactly that.
    lines.on('error', () => {});
    this.interface = lines;
    this.lines = lines[Symbol.asyncIterator]();
  }

  /**
   * After every entry was read: SHA-256 and size of the whole object as it was streamed.
   * Throws what the stream's failure is ({@link readFailureError}) when it failed or closed
   * before its end, and {@link IndexCorruptError} when it did not end for another reason (the
   * index failed first).
   */
  async digest(): Promise<{ sha256: string; size: number }> {
    if (!(await this.ended)) {
      if (this.readFailure) throw this.readFailureError(this.readFailure);
      throw new IndexCorruptError(this.what, 'it could not be read to its end');
    }
    return { sha256: this.hash.copy().digest('hex'), size: this.size };
  }

  async readHeader(): Promise<IndexHeader> {
    if (this.header) return this.header;
    try {
      return await this.decodeHeader();
    } catch (err) {
      this.letGo();
      throw err;
    }
  }

  private async decodeHeader(): Promise<IndexHeader> {
    const first = await this.nextLine();
    if (first === undefined) throw new IndexCorruptError(this.what, 'the index is empty');
    let h: Partial<IndexHeader>;
    try {
      h = JSON.parse(first) as Partial<IndexHeader>;
    } catch {
      throw new IndexCorruptError(this.what, 'the header is not JSON');
    }
    if (h.format !== INDEX_FORMAT) throw new IndexCorruptError(this.what, `not a volume index (format ${String(h.format)})`);
    if (h.version !== INDEX_VERSION) throw new IndexCorruptError(this.what, `index version ${String(h.version)} is not supported by this version of milvus-guard (${INDEX_VERSION}); upgrade`);
    this.header = h as IndexHeader;
    return this.header;
  }

  /** The next entry, or undefined at the end. */
  async next(): Promise<IndexEntry | undefined> {
    if (!this.header) await this.readHeader();
    try {
      for (;;) {
        const line = await this.nextLine();
        if (line === undefined) return undefined;
        if (line === '') continue;
        const entry = decodeEntry(line, this.what);
        if (this.last !== undefined && comparePaths(this.last, entry.path) >= 0) throw new IndexCorruptError(this.what, 'entries are out of order');
        this.last = entry.path;
        this.counts.entries++;
        if (entry.type === 'file') {
          this.counts.files++;
          this.counts.bytes += entry.size;
        }
        return entry;
      }
    } catch (err) {
      this.letGo();
      throw err;
    }
  }

  /**
   * After a failure, stops the streams too, so that the object is let go of and `digest()`
   * settles (on a line that does not decode, gunzip and the source would go on).
   */
  private letGo(): void {
    this.gunzip.destroy();
    this.source.destroy();
  }

  async *entries(): AsyncIterable<IndexEntry> {
    for (let e = await this.next(); e !== undefined; e = await this.next()) yield e;
  }

  private async nextLine(): Promise<string | undefined> {
    try {
      const r = await this.lines.next();
      return r.done ? undefined : r.value;
    } catch (err) {
      if (err === this.readFailure) throw this.readFailureError(err as Error);
      throw new IndexCorruptError(this.what, `cannot read it (${(err as Error).message})`);
    }
  }

  /** What the stream's own failure means (see {@link indexReadFailure}): this reader reads once. */
  private readFailureError(err: Error): unknown {
    return indexReadFailure(this.what, err, 1);
  }

  /** Stops reading early: the object's stream, the decompression and the line reader all end. */
  async close(): Promise<void> {
    await this.lines.return?.();
    this.interface.close();
    this.gunzip.destroy();
    this.source.destroy();
  }
}

/**
 * A path for people: the UTF-8 text when the bytes are valid UTF-8 without control characters,
 * otherwise a JSON-style escaped string, so messages never print raw newlines or garbage.
 */
export function displayPath(path: Uint8Array): string {
  if (path.length === 0) return '.';
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(path);
  } catch {
    return Array.from(path, (b) => (b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
  }
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(text) ? JSON.stringify(text).slice(1, -1) : text;
}

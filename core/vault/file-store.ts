/**
 * `FileVaultStore`: a vault in a local directory (`file:///path`), one file per object.
 * Writes go to a temporary name and are renamed, so no reader ever sees a half-written object
 * under its real key. Objects of a megabyte or more (packs) are written and range-read with
 * direct I/O, bypassing the page cache (see `DirectFileWriter`). Every file is fsynced in the
 * background after it is written (restic's local backend fsyncs each pack too), and `flush`
 * waits for those and fsyncs the directories; the data mover calls it before it writes a
 * summary, so a summary never points at data a crash could lose.
 *
 * Object Lock: the vault behaves like an Object-Locked bucket (DESIGN §4), so local runs obey
 * the rules S3 enforces. Retain-until dates and legal holds live in a lock journal,
 * `.object-lock/journal.jsonl` in the vault directory, which `list` never shows: one appended
 * JSON line per lock change (see `LockJournal`), made durable by `flush` with the objects, so a
 * locked write costs one small append and no fsync of its own. A retained or held object cannot
 * be deleted (`ObjectLockedError`), retention is extended and never shortened, and the time the
 * check uses comes from the `now` option. A directory without a journal (a vault written before
 * locks, or never locked) has no locks.
 *
 * Archive classes: the same journal records each object's storage class, its archivable tag and
 * its thaw, so local runs meet the rules S3 enforces on GLACIER and DEEP_ARCHIVE objects.
 * `transition` does what a lifecycle rule does on S3 (a tool of tests and the local cluster, not
 * part of the port); a read of an archived object throws `ObjectArchivedError`, as S3 answers
 * InvalidObjectState, until a `thaw` has completed, `thawSeconds` (an option, default 0) after it
 * was asked for on the store's clock, and again once the thawed copy has expired (`days` later,
 * at midnight UTC). Several processes share the vault with their own clocks (the workflow's steps
 * may run on a fixed clock, a data-mover Job runs on the real one), so the first store that sees
 * a thaw complete on its clock appends that it completed, and every store then agrees it has.
 * A put that replaces an object writes it in STANDARD without tags, as a new S3 version would be.
 *
 * Where it differs from S3:
 * - No versions. S3 keeps a locked version and adds a new one on overwrite; here an overwrite of
 *   a locked object is accepted only when the bytes are identical (an idempotent retry, whose
 *   lock is then extended to the later date) and refused otherwise, unless the write says
 *   `replaceWhileLocked` (a progress report under a short lock): then it replaces the object,
 *   where S3 would keep the old bytes as a noncurrent version until its lock lapses. A delete
 *   removes the file, there are no delete markers.
 * - No GOVERNANCE/COMPLIANCE distinction and no protection from the operating system: anyone
 *   with write access to the directory can remove files or edit the journal, as a user with
 *   `s3:BypassGovernanceRetention` could on S3. It guards against the product's own mistakes,
 *   not against an attacker; production vaults are on S3.
 * - Its clock is the injected `now`, S3's is the service's. As on S3, a retain-until date must
 *   be after it (`RetainUntilInPastError`).
 * - Lock changes are durable after `flush` (as objects are); `setLegalHold` syncs at once. A
 *   crash before `flush` can lose the lock of an object written just before it, which is then
 *   also not committed by any summary.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Readable } from 'node:stream';
import { fsyncPath, withPath } from '../fs-errors.js';
import { Semaphore } from './semaphore.js';
import {
  isArchiveClass,
  isLocked,
  ObjectArchivedError,
  ObjectExistsError,
  ObjectLockedError,
  ObjectNotFoundError,
  requireFutureRetention,
  ShortReadError,
  thawExpiry,
  ThawTierUnavailableError,
  type DeleteManyResult,
  type LockState,
  type ObjectInfo,
  type PutOptions,
  type ThawOptions,
  type ThawResult,
  type VaultStore,
} from './store.js';

/** Objects at least this big are written with direct I/O. */
const DIRECT_MIN_BYTES = 1024 * 1024;


// Direct I/O moves data between the device and user memory in multiples of the logical block
// size, from block-aligned memory; 4 KiB satisfies every common device. Staging buffers are
// WebAssembly memories because their backing store is page-aligned, which a Buffer's is not.
const DIRECT_ALIGN = 4096;
const STAGING_SIZE = 4 * 1024 * 1024;
const WASM_PAGE = 65536;
const spareStaging: Buffer[] = [];
const MAX_SPARE_STAGING = 8;

// The project's lib settings leave out WebAssembly's types; Node always has the global.
const { WebAssembly } = globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number; shared?: boolean }) => { buffer: ArrayBuffer } } };

/** A page-aligned staging buffer, or undefined if none can be had (then I/O goes buffered). */
function takeStaging(): Buffer | undefined {
  if (spareStaging.length > 0) return spareStaging.pop()!;
  const pages = STAGING_SIZE / WASM_PAGE;
  try {
    return Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer);
  } catch {
    // A WebAssembly memory reserves address space beyond its size; a tight `ulimit -v` refuses it.
    return undefined;
  }
}

// The ArrayBuffers `pageAlignedBuffer` handed out: a direct writer sends their bytes to the disk
// as they are, without the copy into a staging buffer.
const pageAligned = new WeakSet<ArrayBufferLike>();

/** A WebAssembly memory of `size` bytes (page-aligned), registered for direct writes; undefined if none can be had. */
function wasmBuffer(size: number, shared: boolean): Buffer | undefined {
  try {
    const pages = Math.max(1, Math.ceil(size / WASM_PAGE));
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
    pageAligned.add(memory.buffer);
    return Buffer.from(memory.buffer, 0, size);
  } catch {
    return undefined;
  }
}

/**
 * A buffer of `size` bytes whose memory starts on a page boundary (a WebAssembly memory's, as
 * the staging buffers are), for data that will be written to a file vault: `put` writes its
 * whole 4 KiB blocks with direct I/O straight from it instead of copying every byte into a
 * staging buffer first (the data mover's pack buffers: a full backup copied all its data once
 * more for that). Where no such memory can be had, an ordinary buffer (then staged as before).
 */
export function pageAlignedBuffer(size: number): Buffer {
  return wasmBuffer(size, false) ?? Buffer.allocUnsafeSlow(size);
}

/**
 * `pageAlignedBuffer` in memory that worker threads can share (a shared WebAssembly memory), for
 * a pack that a hashing thread reads files straight into; undefined where no such memory can be
 * had.
 */
export function sharedPageAlignedBuffer(size: number): Buffer | undefined {
  return wasmBuffer(size, true);
}

function returnStaging(buf: Buffer): void {
  if (spareStaging.length < MAX_SPARE_STAGING) spareStaging.push(buf);
}

/** Open flags of a new file written with `O_DIRECT`, or undefined where the platform has none. */
function directFlags(exclusive: boolean): number | undefined {
  const { O_DIRECT, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC } = fsConstants;
  if (O_DIRECT === undefined) return undefined;
  return O_WRONLY | O_CREAT | O_DIRECT | (exclusive ? O_EXCL : O_TRUNC);
}

function isInvalid(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EINVAL';
}

/**
 * Writes a new file sequentially with direct I/O (`O_DIRECT`), bypassing the page cache.
 * Why: vault packs and restored files are written once and not read back by this process, and
 * on virtualized hosts putting a page into the cache costs more CPU than the disk write
 * itself (buffered writes there measure ~3 s of system time per GiB against ~0.2 s direct),
 * which on a two-core Job pod is half the machine. Bytes are copied into a page-aligned staging
 * buffer and written in aligned 4 MiB blocks; the last block is padded and the file truncated
 * to its real length. Where direct I/O is unavailable (no `O_DIRECT`, or a file system such as
 * tmpfs that refuses it) it silently writes through the page cache instead. Durability is
 * unchanged: direct I/O does not flush the device cache or the file's metadata, so callers
 * fsync as before.
 */
export class DirectFileWriter {
  private staging: Buffer | undefined;
  private fill = 0;
  private position = 0;

  private constructor(
    private fh: FileHandle,
    private direct: boolean,
    private readonly path: string | Buffer,
    staging: Buffer | undefined,
  ) {
    this.staging = staging;
  }

  /**
   * Creates (`exclusive`: must not exist) or truncates `path` and returns a writer for it.
   * `direct: false` writes through the page cache.
   */
  static async create(path: string | Buffer, options: { exclusive?: boolean; mode?: number; direct?: boolean } = {}): Promise<DirectFileWriter> {
    const exclusive = options.exclusive ?? false;
    const mode = options.mode ?? 0o666;
    const flags = options.direct === false ? undefined : directFlags(exclusive);
    const staging = flags === undefined ? undefined : takeStaging();
    if (flags !== undefined && staging) {
      try {
        return new DirectFileWriter(await open(path, flags, mode), true, path, staging);
      } catch (err) {
        returnStaging(staging);
        if (!isInvalid(err)) throw err;
      }
    }
    return new DirectFileWriter(await open(path, exclusive ? 'wx' : 'w', mode), false, path, undefined);
  }

  /** Appends `data`. The caller may reuse `data` once this resolves. */
  async write(data: Uint8Array): Promise<void> {
    if (!this.direct) {
      await this.writeAll(data, this.position);
      this.position += data.length;
      return;
    }
    let done = this.fill === 0 ? await this.writeAligned(data) : 0;
    while (done < data.length) {
      const staging = this.staging!;
      const n = Math.min(staging.length - this.fill, data.length - done);
      staging.set(data.subarray(done, done + n), this.fill);
      this.fill += n;
      done += n;
      if (this.fill === staging.length) {
        await this.writeStaging(staging.length);
        if (!this.direct) return this.write(data.subarray(done));
      }
    }
  }

  /**
   * Writes the whole 4 KiB blocks of `data` straight from it when it lies in page-aligned memory
   * (`pageAlignedBuffer`) and nothing is staged; returns how many bytes were written (0 when
   * `data` is not such memory). The rest goes through the staging buffer.
   */
  private async writeAligned(data: Uint8Array): Promise<number> {
    if (!pageAligned.has(data.buffer) || data.byteOffset % DIRECT_ALIGN !== 0) return 0;
    const whole = data.length - (data.length % DIRECT_ALIGN);
    let done = 0;
    try {
      while (done < whole) {
        const { bytesWritten } = await this.fh.write(data, done, whole - done, this.position);
        done += bytesWritten;
        this.position += bytesWritten;
        // A short write leaves the file at an unaligned length: stage the rest.
        if (bytesWritten % DIRECT_ALIGN !== 0) break;
      }
    } catch (err) {
      // A file system that takes O_DIRECT at open but not these alignments: what is left goes
      // through the staging buffer, which falls back to the page cache on the same error.
      if (!isInvalid(err)) throw err;
    }
    return done;
  }

  /** Writes what is buffered, sets the file's length and closes it. */
  async close(): Promise<void> {
    try {
      if (this.direct && this.fill > 0) {
        const length = this.position + this.fill;
        const tail = this.fill;
        const padded = Math.ceil(tail / DIRECT_ALIGN) * DIRECT_ALIGN;
        this.staging!.fill(0, tail, padded);
        await this.writeStaging(padded);
        // The padding went to the disk too: cut the file back to its real length.
        if (padded !== tail) await this.fh.truncate(length);
      }
    } finally {
      await this.release();
    }
  }

  /** Closes without completing the file (the caller removes it). */
  async abort(): Promise<void> {
    await this.release();
  }

  private async release(): Promise<void> {
    if (this.staging) returnStaging(this.staging);
    this.staging = undefined;
    await this.fh.close();
  }

  /** Writes staging[0, length) at the current position; falls back to buffered I/O on EINVAL. */
  private async writeStaging(length: number): Promise<void> {
    const staging = this.staging!;
    try {
      await this.writeAll(staging.subarray(0, length), this.position);
    } catch (err) {
      // A file system that accepts O_DIRECT at open but not these alignments: carry on
      // through the page cache from this block (the blocks before it are written already).
      if (!isInvalid(err)) throw err;
      await this.fh.close();
      this.fh = await open(this.path, 'r+');
      this.direct = false;
      await this.writeAll(staging.subarray(0, length), this.position);
    }
    this.position += Math.min(length, this.fill);
    this.fill = 0;
    if (!this.direct) {
      returnStaging(staging);
      this.staging = undefined;
    }
  }

  private async writeAll(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** The directory under the vault root that holds the lock journal; no vault key starts with a dot. */
const LOCK_DIR = '.object-lock';
const JOURNAL = 'journal.jsonl';
/** Errors of `link` on file systems without hard links (FAT, some FUSE mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * One line of the lock journal. `put`: the object under the key was (re)written and its lock is
 * exactly this (in STANDARD, untagged, not thawed); `retain`: retention extended to `u`; `hold`:
 * legal hold on or off; `delete`: the object was deleted, it has no lock any more; `class`: a
 * lifecycle transition into storage class `c` (a thawed copy does not survive it); `tag`: the
 * archivable tag set or removed; `thaw`: a thaw asked for, readable from `r` until `e`;
 * `thawed`: a store saw that thaw complete on its clock.
 */
type LockRecord =
  | { readonly k: string; readonly t: 'put'; readonly u?: string }
  | { readonly k: string; readonly t: 'retain'; readonly u: string }
  | { readonly k: string; readonly t: 'hold'; readonly h: boolean }
  | { readonly k: string; readonly t: 'delete' }
  | { readonly k: string; readonly t: 'class'; readonly c: string }
  | { readonly k: string; readonly t: 'tag'; readonly a: boolean }
  | { readonly k: string; readonly t: 'thaw'; readonly r: string; readonly e: string }
  | { readonly k: string; readonly t: 'thawed' };

/** What the journal knows of one object: its lock, storage class, archivable tag and thaw. */
interface ObjectState extends LockState {
  readonly storageClass?: string;
  readonly archivable?: boolean;
  readonly thaw?: { readonly readyAt: Date; readonly expiresAt: Date; readonly done?: boolean };
}

/**
 * The lock journal of a file vault: an append-only file of JSON lines, replayed into a map.
 * Why a journal rather than a sidecar file per object: a sidecar is a second file to write and
 * fsync for every pack, a journal line is one small append, fsynced once per `flush`. Several
 * processes (data mover Jobs of parallel volumes) append to one journal: each record is a single
 * `write` in append mode, which the kernel places whole at the end, and a reader reads what was
 * appended since it last looked before it decides, so it sees the other processes' locks.
 * Replay keeps the latest date of `retain` records whatever their order, so two concurrent
 * extensions never shorten a lock. Every record starts with a newline, so a line torn by a crash
 * cannot swallow the next record; a torn line does not parse and is skipped. It grows by a line
 * per locked write or extension; memory is one map entry per locked object.
 */
class LockJournal {
  readonly dir: string;
  readonly path: string;
  private readonly locks = new Map<string, ObjectState>();
  /** Bytes of the journal replayed, the identity of the file they came from, and an unfinished last line. */
  private consumed = 0;
  private ino: number | undefined;
  private partial: Buffer = Buffer.alloc(0);
  private reading: Promise<void> = Promise.resolve();
  private dirReady = false;
  private dirty = false;

  constructor(root: string) {
    this.dir = join(root, LOCK_DIR);
    this.path = join(this.dir, JOURNAL);
  }

  /** The state of `key` as the journal says now (also what other processes appended). */
  async get(key: string): Promise<ObjectState | undefined> {
    await this.refresh();
    return this.locks.get(key);
  }

  /** Reads what was appended since the last look (then `peek` answers without I/O). */
  async refresh(): Promise<void> {
    const run = this.reading.then(() => this.readAppended());
    this.reading = run.catch(() => {});
    await run;
  }

  /** The state of `key` as of the last `get` or `refresh`. */
  peek(key: string): ObjectState | undefined {
    return this.locks.get(key);
  }

  /** Appends a record; resolves to true when this created the journal's directory. */
  async append(record: LockRecord): Promise<boolean> {
    let created = false;
    if (!this.dirReady) {
      created = (await mkdir(this.dir, { recursive: true })) !== undefined;
      this.dirReady = true;
    }
    const fh = await open(this.path, 'a');
    try {
      await fh.write(`\n${JSON.stringify(record)}\n`);
    } catch (err) {
      throw withPath(err, this.path);
    } finally {
      await fh.close();
    }
    this.dirty = true;
    return created;
  }

  /** Makes every record appended so far durable. */
  async sync(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await fsyncPath(this.path);
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }

  private async readAppended(): Promise<void> {
    const s = await stat(this.path).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!s) {
      this.forget();
      return;
    }
    // Replaced or cut (by hand: a user may edit the journal): replay it from the start.
    if ((this.ino !== undefined && s.ino !== this.ino) || s.size < this.consumed) this.forget();
    this.ino = s.ino;
    if (s.size === this.consumed) return;
    const fh = await open(this.path, 'r');
    try {
      const buf = Buffer.allocUnsafe(s.size - this.consumed);
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, this.consumed + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      this.consumed += got;
      const text = Buffer.concat([this.partial, buf.subarray(0, got)]);
      // Only whole lines: a record being appended right now is read next time.
      const end = text.lastIndexOf(0x0a) + 1;
      this.partial = Buffer.from(text.subarray(end));
      for (const line of text.subarray(0, end).toString('utf8').split('\n')) this.apply(line);
    } finally {
      await fh.close();
    }
  }

  private forget(): void {
    this.locks.clear();
    this.consumed = 0;
    this.ino = undefined;
    this.partial = Buffer.alloc(0);
  }

  private apply(line: string): void {
    if (line === '') return;
    let r: LockRecord;
    try {
      r = JSON.parse(line) as LockRecord;
    } catch {
      return; // torn by a crash while it was appended
    }
    if (typeof r?.k !== 'string') return;
    const current = this.locks.get(r.k);
    switch (r.t) {
      case 'put':
        if (r.u) this.locks.set(r.k, { retainUntil: new Date(r.u) });
        else this.locks.delete(r.k);
        break;
      case 'retain': {
        const until = new Date(r.u);
        if (!current?.retainUntil || current.retainUntil < until) this.locks.set(r.k, { ...current, retainUntil: until });
        break;
      }
      case 'hold':
        this.locks.set(r.k, { ...current, legalHold: r.h });
        break;
      case 'delete':
        this.locks.delete(r.k);
        break;
      case 'class': {
        const { thaw: _gone, storageClass: _was, ...rest } = current ?? {};
        this.locks.set(r.k, r.c === 'STANDARD' ? rest : { ...rest, storageClass: r.c });
        break;
      }
      case 'tag':
        this.locks.set(r.k, { ...current, archivable: r.a });
        break;
      case 'thaw':
        this.locks.set(r.k, { ...current, thaw: { readyAt: new Date(r.r), expiresAt: new Date(r.e) } });
        break;
      case 'thawed':
        if (current?.thaw) this.locks.set(r.k, { ...current, thaw: { ...current.thaw, done: true } });
        break;
    }
  }
}

/** True when two files hold the same bytes. */
/** Whether `key` can name a file under the vault's root: no empty, "." or ".." segment. */
function isStorableKey(key: string): boolean {
  return key.split('/').every((p) => p !== '' && p !== '.' && p !== '..');
}

async function sameContent(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const [sa, sb] = await Promise.all([fa.stat(), fb.stat()]);
    if (sa.size !== sb.size) return false;
    const ba = Buffer.allocUnsafe(1 << 20);
    const bb = Buffer.allocUnsafe(1 << 20);
    for (let at = 0; at < sa.size; ) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, ba.length, at), fb.read(bb, 0, bb.length, at)]);
      if (ra.bytesRead === 0 || ra.bytesRead !== rb.bytesRead || !ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
      at += ra.bytesRead;
    }
    return true;
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

export class FileVaultStore implements VaultStore {
  readonly url: string;
  private readonly root: string;
  /** Background fsyncs of files written since the last flush, and their directories. */
  private readonly syncing = new Set<Promise<void>>();
  private readonly dirs = new Set<string>();
  private readonly syncSlots = new Semaphore(2);
  /** Direct-I/O descriptors of objects being read, shared while reads overlap. */
  private readonly readers = new Map<string, { fh: Promise<FileHandle>; users: number }>();
  private syncFailure: unknown;

  private readonly directIo: boolean;
  private readonly now: () => Date;
  private readonly locks: LockJournal;

  private readonly thawSeconds: number;

  /**
   * `directIo: false` writes every object through the page cache (see `DirectFileWriter`);
   * `now` is the clock of the lock checks and thaws (default: the real time); `thawSeconds` how
   * long a thaw takes on that clock (default 0: done as soon as asked for).
   */
  constructor(root: string, options: { directIo?: boolean; now?: () => Date; thawSeconds?: number } = {}) {
    this.root = root;
    this.directIo = options.directIo ?? true;
    this.now = options.now ?? (() => new Date());
    this.thawSeconds = options.thawSeconds ?? 0;
    this.url = pathToFileURL(root).href;
    this.locks = new LockJournal(root);
  }

  private path(key: string): string {
    const parts = key.split('/');
    if (parts[0] === LOCK_DIR) throw new Error(`key ${key} names the lock journal of vault ${this.url}, not an object; vault keys come from layout.ts`);
    // A key read from the vault itself (a summary's indexKey) must not reach outside it: such
    // a key names no object here (S3 would answer NoSuchKey to a read of it).
    if (!isStorableKey(key)) throw new ObjectNotFoundError(this.url, key);
    return join(this.root, ...parts);
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    await this.atomically(key, async (tmp) => {
      // Packs (megabytes) bypass the page cache; small objects are not worth the staging copy.
      const writer = await DirectFileWriter.create(tmp, { exclusive: true, direct: this.directIo && body.length >= DIRECT_MIN_BYTES });
      let ok = false;
      try {
        await writer.write(body);
        ok = true;
      } finally {
        await (ok ? writer.close() : writer.abort());
      }
    }, options);
  }

  async putFile(key: string, path: string, options?: PutOptions): Promise<void> {
    await this.atomically(key, async (tmp) => {
      await copyFile(path, tmp);
    }, options);
  }

  private async atomically(key: string, write: (tmp: string) => Promise<void>, options?: PutOptions): Promise<void> {
    requireFutureRetention(this.url, key, options?.retainUntil, this.now());
    if (!isStorableKey(key)) throw new Error(`key ${JSON.stringify(key)} cannot be stored in file vault ${this.url}: a segment is empty, "." or ".."; vault keys come from layout.ts`);
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await write(tmp);
      if (await this.place(key, tmp, target, options?.retainUntil, options?.replaceWhileLocked === true, options?.ifAbsent === true)) this.syncSoon(target);
    } catch (err) {
      await rm(tmp, { force: true });
      // A write through a file handle fails without a path (ENOSPC): name the object's file.
      throw withPath(err, target);
    }
  }

  /**
   * Moves the written `tmp` to `target` unless Object Lock forbids it; true when the file under
   * the key changed. A new key has no lock to check: `link` creates it only if it is absent, so
   * the common write needs no journal lookup and cannot race another writer of the key.
   */
  private async place(key: string, tmp: string, target: string, retainUntil: Date | undefined, replaceWhileLocked: boolean, ifAbsent: boolean): Promise<boolean> {
    const lockOfNew: LockRecord = { k: key, t: 'put', ...(retainUntil ? { u: retainUntil.toISOString() } : {}) };
    let linked: boolean | undefined;
    try {
      await link(tmp, target);
      linked = true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'EEXIST') linked = false;
      else if (!NO_HARD_LINKS.has(code)) throw err;
    }
    let exists: boolean;
    if (linked === undefined) {
      // No hard links here: look, then rename (a writer racing on the same key could slip in).
      exists = (await this.fileSize(key)) !== undefined;
      if (!exists) await rename(tmp, target);
    } else {
      exists = !linked;
      if (linked) await unlink(tmp);
    }
    if (!exists) {
      if (retainUntil) await this.appendLock(lockOfNew);
      return true;
    }
    // The key holds an object already. S3 would keep a locked version and add a new one; here
    // there is one file, so a locked object is replaced only by itself (a retry), or by a write
    // that says the locked bytes are a status S3 would keep only as a noncurrent version.
    const lock = await this.locks.get(key);
    // A write that may only create (as S3's If-None-Match) keeps the object there too: it is
    // refused unless it is a retry of the same bytes.
    if (ifAbsent || (isLocked(lock, this.now()) && !replaceWhileLocked)) {
      if (!(await sameContent(tmp, target))) throw ifAbsent ? new ObjectExistsError(this.url, key) : new ObjectLockedError(this.url, key, lock!);
      await rm(tmp, { force: true });
      if (retainUntil && !(lock?.retainUntil && lock.retainUntil >= retainUntil)) await this.appendLock({ k: key, t: 'retain', u: retainUntil.toISOString() });
      return false;
    }
    // Unlocked (or replaceable): replaced, and the old object's lock (if any) goes with it.
    if (lock || retainUntil) await this.appendLock(lockOfNew);
    await rename(tmp, target);
    return true;
  }

  private async appendLock(record: LockRecord): Promise<void> {
    // The journal's directory entries must reach the disk with it (see flush).
    if (await this.locks.append(record)) this.dirs.add(this.root);
    this.dirs.add(this.locks.dir);
  }

  /** The size of the object under `key`, or undefined when there is none. */
  private async fileSize(key: string): Promise<number | undefined> {
    if (!isStorableKey(key)) return undefined;
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? s.size : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async get(key: string): Promise<Buffer> {
    const fh = await this.openFile(key);
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }

  async getRange(key: string, offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    if (into && this.directIo) {
      const view = await this.readDirectInto(key, into, offset, length);
      if (view) {
        if (view.length < length) throw new ShortReadError(this.url, key, `${length} bytes at ${offset}`, view.length);
        return view;
      }
    }
    const buf = Buffer.allocUnsafe(length);
    // Restores read megabyte ranges of packs once each: like the writes, they skip the cache.
    const done = (this.directIo && length >= DIRECT_MIN_BYTES ? await this.readDirect(key, buf, offset) : undefined) ?? (await this.readBuffered(key, buf, offset));
    if (done < length) throw new ShortReadError(this.url, key, `${length} bytes at ${offset}`, done);
    return buf;
  }

  /** Fills `buf` from `offset` through the page cache; returns the bytes read (fewer at EOF). */
  private async readBuffered(key: string, buf: Buffer, offset: number): Promise<number> {
    const fh = await this.openFile(key);
    try {
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await fh.read(buf, done, buf.length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    } finally {
      await fh.close();
    }
  }

  /**
   * Fills `buf` from `offset` with direct I/O: aligned blocks into a staging buffer, the wanted
   * bytes copied out. Returns the bytes read, or undefined where direct I/O is refused.
   */
  private async readDirect(key: string, buf: Buffer, offset: number): Promise<number | undefined> {
    const { O_DIRECT, O_RDONLY } = fsConstants;
    if (O_DIRECT === undefined) return undefined;
    const staging = takeStaging();
    if (!staging) return undefined;
    const shared = this.takeReader(key, O_RDONLY | O_DIRECT);
    let fh: FileHandle;
    try {
      fh = await shared.fh;
    } catch (err) {
      this.dropReader(key, shared);
      returnStaging(staging);
      if (isInvalid(err)) return undefined;
      throw err;
    }
    try {
      const end = Math.ceil((offset + buf.length) / DIRECT_ALIGN) * DIRECT_ALIGN;
      let position = Math.floor(offset / DIRECT_ALIGN) * DIRECT_ALIGN;
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await fh.read(staging, 0, Math.min(staging.length, end - position), position);
        const skip = offset + done - position;
        const n = Math.min(bytesRead - skip, buf.length - done);
        if (n <= 0) break;
        staging.copy(buf, done, skip, skip + n);
        done += n;
        position += bytesRead;
        if (bytesRead % DIRECT_ALIGN !== 0) break; // the end of the file
      }
      return done;
    } catch (err) {
      if (isInvalid(err)) return undefined;
      throw err;
    } finally {
      returnStaging(staging);
      const last = this.dropReader(key, shared);
      if (last) await fh.close();
    }
  }

  /**
   * Reads the aligned blocks around [offset, offset + length) with direct I/O straight into
   * `into` (no staging copy, no allocation: a restore hands the same pool of buffers back and
   * forth) and returns the view of the wanted bytes, shorter at the end of the file. Undefined
   * where direct I/O cannot serve it (no O_DIRECT, a file system or a buffer that refuses it,
   * `into` too small): the caller then reads the usual way.
   */
  private async readDirectInto(key: string, into: Uint8Array, offset: number, length: number): Promise<Buffer | undefined> {
    const { O_DIRECT, O_RDONLY } = fsConstants;
    const start = Math.floor(offset / DIRECT_ALIGN) * DIRECT_ALIGN;
    const end = Math.ceil((offset + length) / DIRECT_ALIGN) * DIRECT_ALIGN;
    if (O_DIRECT === undefined || end - start > into.byteLength) return undefined;
    const shared = this.takeReader(key, O_RDONLY | O_DIRECT);
    let fh: FileHandle;
    try {
      fh = await shared.fh;
    } catch (err) {
      this.dropReader(key, shared);
      if (isInvalid(err)) return undefined;
      throw err;
    }
    try {
      let done = 0;
      while (start + done < end) {
        const { bytesRead } = await fh.read(into, done, end - start - done, start + done);
        done += bytesRead;
        if (bytesRead === 0 || bytesRead % DIRECT_ALIGN !== 0) break; // the end of the file
      }
      const skip = offset - start;
      const got = Math.max(0, Math.min(length, done - skip));
      return Buffer.from(into.buffer, into.byteOffset + skip, got);
    } catch (err) {
      if (isInvalid(err)) return undefined;
      throw err;
    } finally {
      const last = this.dropReader(key, shared);
      if (last) await fh.close();
    }
  }

  /**
   * One user more of the shared direct-I/O descriptor of `key`, opened on first use. Concurrent
   * reads of one pack (neighbouring files of a restore) share it: an open and a close fewer per
   * range in libuv's thread pool, where they queue behind the disk reads. The last reader closes
   * it ({@link dropReader}), so no descriptor outlives its reads.
   */
  private takeReader(key: string, flags: number): { fh: Promise<FileHandle>; users: number } {
    let shared = this.readers.get(key);
    if (!shared) {
      shared = { fh: this.openFile(key, flags), users: 0 };
      shared.fh.catch(() => {}); // awaited by every user
      this.readers.set(key, shared);
    }
    shared.users++;
    return shared;
  }

  /** One user fewer of a shared read descriptor; true if it was the last (who closes it). */
  private dropReader(key: string, shared: { users: number }): boolean {
    if (--shared.users > 0) return false;
    if (this.readers.get(key) === shared) this.readers.delete(key);
    return true;
  }

  async openRead(key: string): Promise<Readable> {
    const fh = await this.openFile(key);
    return fh.createReadStream({ autoClose: true, highWaterMark: 1 << 20 });
  }

  private async openFile(key: string, flags: string | number = 'r') {
    let fh: FileHandle;
    try {
      fh = await open(this.path(key), flags);
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
      throw err;
    }
    // An archived object that is not thawed cannot be read, as S3 answers InvalidObjectState.
    const state = await this.locks.get(key);
    if (isArchiveClass(state?.storageClass) && (await this.thawOf(key, state))?.ongoing !== false) {
      await fh.close();
      throw new ObjectArchivedError(this.url, key, state!.storageClass);
    }
    return fh;
  }

  /**
   * The thaw of an archived object at this store's `now` (absent: none asked for, or expired).
   * The first store to see it complete appends that it did, so stores on other clocks agree
   * (see the module comment); that note is best effort, a read-only vault still answers.
   */
  private async thawOf(key: string, state: ObjectState | undefined): Promise<ObjectInfo['restore']> {
    const thaw = state?.thaw;
    if (!thaw) return undefined;
    const now = this.now().getTime();
    if (now >= thaw.expiresAt.getTime()) return undefined;
    if (!thaw.done && now < thaw.readyAt.getTime()) return { ongoing: true };
    if (!thaw.done) await this.appendLock({ k: key, t: 'thawed' }).catch(() => undefined);
    return { ongoing: false, expiresAt: thaw.expiresAt };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const size = await this.fileSize(key);
    if (size === undefined) return undefined;
    const state = await this.locks.get(key);
    const restore = isArchiveClass(state?.storageClass) ? await this.thawOf(key, state) : undefined;
    return {
      key,
      size,
      ...(state?.retainUntil ? { retainUntil: state.retainUntil } : {}),
      legalHold: state?.legalHold ?? false,
      ...(state?.storageClass ? { storageClass: state.storageClass } : {}),
      ...(restore ? { restore } : {}),
    };
  }

  /**
   * Removes the temporary files (`<key>.tmp-<random>`) of writes interrupted before `before`: a
   * write in progress keeps its file's mtime current, so one untouched since then is abandoned.
   */
  async removeInterruptedWrites(before: Date): Promise<{ removed: number; bytes: number }> {
    const found = { removed: 0, bytes: 0 };
    const sweep = async (dir: string): Promise<void> => {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw err;
      }
      for (const name of names) {
        if (dir === this.root && name === LOCK_DIR) continue;
        const path = join(dir, name);
        const s = await stat(path).catch(() => undefined);
        if (!s) continue;
        if (s.isDirectory()) await sweep(path);
        else if (name.includes('.tmp-') && s.isFile() && s.mtime.getTime() < before.getTime()) {
          await unlink(path).catch((err: unknown) => {
            if (!isNotFound(err)) throw err;
          });
          found.removed++;
          found.bytes += s.size;
        }
      }
    };
    await sweep(this.root);
    return found;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the directory the prefix points into, each directory in sorted order.
    const lastSlash = prefix.lastIndexOf('/');
    const dirKey = lastSlash < 0 ? '' : prefix.slice(0, lastSlash + 1);
    await this.locks.refresh();
    yield* this.walk(dirKey, prefix);
  }

  private async *walk(dirKey: string, prefix: string): AsyncIterable<ObjectInfo> {
    let names: string[];
    try {
      names = await readdir(dirKey === '' ? this.root : this.path(dirKey.slice(0, -1)));
    } catch (err) {
      if (isNotFound(err) || err instanceof ObjectNotFoundError || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw err;
    }
    names.sort();
    for (const name of names) {
      if (name.includes('.tmp-')) continue; // an interrupted write, never a real object
      if (dirKey === '' && name === LOCK_DIR) continue; // the lock journal, not an object
      const key = dirKey + name;
      const s = await stat(this.path(key)).catch(() => undefined);
      if (!s) continue;
      if (s.isDirectory()) {
        const sub = `${key}/`;
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) yield* this.walk(sub, prefix);
      } else if (s.isFile() && key.startsWith(prefix)) {
        const storageClass = this.locks.peek(key)?.storageClass;
        yield { key, size: s.size, lastModified: s.mtime, ...(storageClass ? { storageClass } : {}) };
      }
    }
  }

  /**
   * Starts an fsync of a file that was just written, without making the writer wait: the disk
   * flushes while the next pack is being chunked (restic fsyncs inline; an end-of-backup
   * flush would leave the disk idle until the end). At most two run at once, so they never
   * take over libuv's thread pool.
   */
  private syncSoon(path: string): void {
    this.dirs.add(dirname(path));
    const task = (async () => {
      await this.syncSlots.acquire();
      try {
        await fsyncPath(path);
      } catch (err) {
        this.syncFailure ??= err;
      } finally {
        this.syncSlots.release();
      }
    })();
    this.syncing.add(task);
    void task.finally(() => this.syncing.delete(task));
  }

  async flush(): Promise<void> {
    // File contents and the directory entries naming them, all at once: the order does not
    // matter as long as both are on disk before the caller writes what points at them.
    const dirs = [...this.dirs];
    this.dirs.clear();
    await Promise.all([...this.syncing, ...dirs.map(fsyncPath), this.locks.sync()]);
    const failure = this.syncFailure;
    this.syncFailure = undefined;
    if (failure !== undefined) throw failure;
  }

  async extendRetention(key: string, until: Date): Promise<boolean> {
    if ((await this.fileSize(key)) === undefined) throw new ObjectNotFoundError(this.url, key);
    const lock = await this.locks.get(key);
    if (lock?.retainUntil && lock.retainUntil.getTime() >= until.getTime()) return false;
    requireFutureRetention(this.url, key, until, this.now());
    await this.appendLock({ k: key, t: 'retain', u: until.toISOString() });
    return true;
  }

  async delete(key: string): Promise<void> {
    if ((await this.fileSize(key)) === undefined) return;
    const target = this.path(key);
    const lock = await this.locks.get(key);
    if (isLocked(lock, this.now())) throw new ObjectLockedError(this.url, key, lock!);
    // Journal first: should the unlink not happen, the object is as unlocked as it was.
    if (lock) await this.appendLock({ k: key, t: 'delete' });
    try {
      await unlink(target);
    } catch (err) {
      if (!isNotFound(err)) throw withPath(err, target);
    }
    this.dirs.add(dirname(target));
  }

  async deleteMany(keys: readonly string[]): Promise<DeleteManyResult> {
    const unique = [...new Set(keys)];
    const slots = new Semaphore(8);
    const outcomes = await Promise.all(
      unique.map(async (key) => {
        await slots.acquire();
        try {
          await this.delete(key);
          return undefined;
        } catch (err) {
          return err as Error;
        } finally {
          slots.release();
        }
      }),
    );
    return {
      deleted: unique.filter((_, i) => outcomes[i] === undefined),
      failed: unique.flatMap((key, i) => (outcomes[i] ? [{ key, error: outcomes[i]! }] : [])),
    };
  }

  async markArchivable(key: string, on: boolean): Promise<void> {
    if ((await this.fileSize(key)) === undefined) throw new ObjectNotFoundError(this.url, key);
    await this.appendLock({ k: key, t: 'tag', a: on });
  }

  async isArchivable(key: string): Promise<boolean> {
    if ((await this.fileSize(key)) === undefined) throw new ObjectNotFoundError(this.url, key);
    return (await this.locks.get(key))?.archivable === true;
  }

  async thaw(key: string, options: ThawOptions): Promise<ThawResult> {
    if ((await this.fileSize(key)) === undefined) throw new ObjectNotFoundError(this.url, key);
    const state = await this.locks.get(key);
    if (!isArchiveClass(state?.storageClass)) return 'available';
    const current = await this.thawOf(key, state);
    if (current) return current.ongoing ? 'in-progress' : 'available';
    if (options.tier === 'Expedited' && state!.storageClass === 'DEEP_ARCHIVE') throw new ThawTierUnavailableError(this.url, key, 'Expedited', 'S3 Glacier Deep Archive does not offer Expedited retrievals');
    const readyAt = new Date(this.now().getTime() + this.thawSeconds * 1000);
    await this.appendLock({ k: key, t: 'thaw', r: readyAt.toISOString(), e: thawExpiry(readyAt, options.days).toISOString() });
    return 'started';
  }

  /**
   * Moves an object into `storageClass` (`STANDARD` moves it back), as a lifecycle transition
   * does on S3: a tool of tests and the local cluster, not part of the port. A thawed copy does
   * not survive the move. Durable when it returns, like a legal hold.
   */
  async transition(key: string, storageClass: string): Promise<void> {
    if ((await this.fileSize(key)) === undefined) throw new ObjectNotFoundError(this.url, key);
    const created = await this.locks.append({ k: key, t: 'class', c: storageClass });
    await Promise.all([this.locks.sync(), fsyncPath(this.locks.dir), ...(created ? [fsyncPath(this.root)] : [])]);
  }

  /** A legal hold is durable when this returns: it is a deliberate act, and a rare one. */
  async setLegalHold(key: string, on: boolean): Promise<void> {
    if ((await this.fileSize(key)) === undefined) throw new ObjectNotFoundError(this.url, key);
    const created = await this.locks.append({ k: key, t: 'hold', h: on });
    await Promise.all([this.locks.sync(), fsyncPath(this.locks.dir), ...(created ? [fsyncPath(this.root)] : [])]);
  }
}


/**
 * The threads that write a restore's files. Each writer thread owns the files given to it from
 * open to close and does everything for them with synchronous system calls: it hashes every
 * chunk it is handed against the index's digest (nothing unverified is written), appends the
 * bytes with direct I/O, sets the length, owner, mode and times, and closes.
 *
 * Why threads with synchronous calls: profiling the restore of a Milvus bucket of ~4,400 small
 * files showed the main thread saturated by the round trips of asynchronous file calls through
 * libuv's thread pool (eleven per file: open, write, truncate, close, chown, chmod, utimes and
 * the pack read's open, stat, read, close), each costing far more in promises, futexes and
 * wake-ups than the system call itself, while the hashing threads idled. Here a file costs its
 * system calls and nothing else, on as many threads as there are cores, and the main thread
 * only reads the index and the packs.
 *
 * The bytes come in shared memory (`SharedArrayBuffer`): one ranged read of a pack serves
 * several small files that may be on different threads, so the buffer is shared, not moved,
 * and each thread answers when it is done with its part (the buffer's reference is then
 * released to the pool it came from).
 *
 * With `threads: 0` the same code runs on the calling thread (tests, and hosts where threads
 * cannot start), so both paths are one implementation.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';

/** One step for a writer, in the order it must happen. */
export type WriterOp =
  /**
   * Create the directories `dirs` (mode 0700, outermost first; existing ones are fine), then
   * create (truncate) the file; `mtime` in seconds for utimes; owner set only when `chown`.
   */
  | { readonly op: 'open'; readonly id: number; readonly path: Uint8Array; readonly dirs: readonly Uint8Array[]; readonly size: number; readonly mode: number; readonly uid: number; readonly gid: number; readonly mtime: number; readonly chown: boolean }
  /** Verify the chunks of `lengths` at `offset` of the message's buffer against `hashes`, then append them. */
  | { readonly op: 'piece'; readonly id: number; readonly offset: number; readonly lengths: readonly number[]; readonly hashes: readonly string[]; readonly firstChunk: number }
  /** Write what is left, set length and metadata, close. */
  | { readonly op: 'close'; readonly id: number }
  /**
   * One extent of a large file split over several writers: verify the chunks of `lengths` at
   * `offset` of the message's buffer against `hashes`, then write them at `position` of the file
   * at `path`, which the main thread has created at its full length (never created here: a file
   * removed after a failure stays removed). Opened and closed within the step.
   */
  | { readonly op: 'extent'; readonly id: number; readonly path: Uint8Array; readonly position: number; readonly offset: number; readonly lengths: readonly number[]; readonly hashes: readonly string[]; readonly firstChunk: number };

/** A file a writer could not finish; the file is removed. */
export type WriterFailure =
  | { readonly id: number; readonly kind: 'mismatch'; readonly chunk: number; readonly actual: string }
  | { readonly id: number; readonly kind: 'fs'; readonly code?: string; readonly errno?: number; readonly syscall?: string; readonly message: string };

/** What a writer did with one message. */
export interface WriterResult {
  /** Bytes appended, per file. */
  readonly written: readonly (readonly [number, number])[];
  /** Files closed complete. */
  readonly done: readonly number[];
  readonly failed: readonly WriterFailure[];
}

/** Files smaller than this are written through the page cache (see DIRECT_MIN in the writer). */
export const DIRECT_MIN_BYTES = 1024 * 1024;
/**
 * Bytes of a writer's scratch, where chunks are copied to be written with direct I/O. 2 MiB: on
 * Node 22, the Job image's runtime, each writer thread's isolate costs ~3 MB more than on Node 20,
 * and a default-profile restore (8 writers) peaked at 303 MB with 4 MiB scratches; with 2 MiB it
 * peaks at 288 MB, in times within the noise of the 4 MiB ones (3.33-4.57 s against 3.61-4.70 s,
 * interleaved runs, caches dropped). Direct writes of 2 MiB still keep the device busy.
 */
export const SCRATCH_BYTES = 2 * 1024 * 1024;

// The writer, as source: evaluated in each worker thread and, for `threads: 0`, on the
// calling thread, so both run the very same code (see ChunkerPool for why it is a string).
// `makeWriter(fs, createHash, arena, scratchAt)` returns `{ handle(ops, buffer) -> result, abort() }`;
// `arena` is what RestoreArena.share() gives, `scratchAt` where this writer's scratch is in it.
const WRITER_SOURCE = String.raw`
function makeWriter(fs, createHash, arena, scratchAt) {
  const ALIGN = 4096;
  // Files under 1 MiB go through the page cache, as the vault's small objects do: a direct
  // write waits for the device (half a millisecond and more per file, measured on ~4,400 small
  // files), a buffered one only for the copy, and their page-cache cost is small.
  const DIRECT_MIN = ${DIRECT_MIN_BYTES};
  // Direct I/O needs page-aligned memory: the arena's, a WebAssembly memory, is. Chunks sit at
  // arbitrary offsets of a pack, so each is copied once, behind the file's unaligned tail, into
  // this writer's scratch in the arena. Without WebAssembly (node --jitless) the arena is not
  // aligned: no scratch, and files go through the page cache.
  const SCRATCH = ${SCRATCH_BYTES};
  const arenaBuf = Buffer.from(arena.buffer);
  const scratch = arena.memory ? arenaBuf.subarray(scratchAt, scratchAt + SCRATCH) : null;
  // memory.copy inside the arena: a plain memmove. Buffer#copy out of shared memory is V8's
  // relaxed, word-at-a-time copy: 1.5 GiB/s against 7.8 GiB/s measured here, 15% of a
  // restore's CPU samples (perf) before this.
  const wasmCopy = arena.memory ? new WebAssembly.Instance(arena.copyModule, { m: { memory: arena.memory } }).exports.copy : null;
  /** Copies data[from, to) to scratch[at]. */
  function toScratch(at, data, from, to) {
    if (wasmCopy && data.buffer === arena.buffer) wasmCopy(scratchAt + at, data.byteOffset + from, to - from);
    else data.copy(scratch, at, from, to);
  }
  const { O_DIRECT, O_WRONLY, O_CREAT, O_TRUNC } = fs.constants;
  // Every open refuses a symbolic link as the file itself (ELOOP), so a restore never writes
  // through one: a target changed between a run and its resume may hold one where a file goes
  // (a target that ignores the case of names is refused before anything is written).
  const NOFOLLOW = fs.constants.O_NOFOLLOW || 0;
  const files = new Map();

  const asBuffer = (u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

  function makeDirs(op, path) {
    for (const d of op.dirs) {
      try { fs.mkdirSync(asBuffer(d), 0o700); }
      catch (err) {
        if (err.code === 'ENOENT') fs.mkdirSync(asBuffer(d), { recursive: true, mode: 0o700 }); // its parent: as in create()
        else if (err.code !== 'EEXIST') throw err;
        // Made by another writer, or something else is there: never go on through a symlink. On a
        // case-insensitive file system (APFS, ext4 with casefold) an index's symlink "A" would
        // otherwise stand in for its directory "a", and the files below it land where "A" points.
        else if (!fs.lstatSync(asBuffer(d)).isDirectory()) throw Object.assign(new Error('something that is not a directory is in the way'), { code: 'ENOTDIR', syscall: 'mkdir' });
      }
    }
  }

  function create(path, flags) {
    try { return fs.openSync(path, flags | NOFOLLOW, 0o600); }
    catch (err) {
      // Its directory is one another writer was told to create and has not yet: create it.
      if (err.code !== 'ENOENT') throw err;
      fs.mkdirSync(path.subarray(0, path.lastIndexOf(0x2f)), { recursive: true, mode: 0o700 });
      return fs.openSync(path, flags | NOFOLLOW, 0o600);
    }
  }

  function openFile(op) {
    const path = asBuffer(op.path);
    makeDirs(op, path);
    let fd = -1;
    let direct = false;
    if (O_DIRECT !== undefined && scratch && op.size >= DIRECT_MIN) {
      try { fd = create(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT); direct = true; }
      catch (err) { if (err.code !== 'EINVAL') throw err; }
    }
    if (fd < 0) fd = create(path, O_WRONLY | O_CREAT | O_TRUNC);
    return { op, path, fd, direct, position: 0, tail: Buffer.alloc(0), written: 0 };
  }

  function writeAll(f, buf, length, position) {
    let done = 0;
    while (done < length) done += fs.writeSync(f.fd, buf, done, length - done, position + done);
  }

  // Direct I/O refused at the first write (a file system that accepts O_DIRECT at open but not
  // these alignments): carry on through the page cache.
  function toBuffered(f) {
    fs.closeSync(f.fd);
    f.fd = -1;
    f.fd = fs.openSync(f.path, O_WRONLY | NOFOLLOW);
    f.direct = false;
  }

  /**
   * Writes the first length bytes of scratch at the file's position; where the file system
   * refuses direct I/O there (EINVAL), reopens it buffered and writes the first buffered bytes
   * instead (the real bytes without a final block's padding).
   */
  function writeScratch(f, length, buffered) {
    try { writeAll(f, scratch, length, f.position); }
    catch (err) {
      if (err.code !== 'EINVAL') throw err;
      toBuffered(f);
      writeAll(f, scratch, buffered, f.position);
    }
  }

  /** Appends data; with direct I/O whole blocks go out and the unaligned rest waits in tail. */
  function append(f, data) {
    if (!f.direct) {
      writeAll(f, data, data.length, f.position);
      f.position += data.length;
      return;
    }
    let at = 0;
    while (at < data.length) {
      const t = f.tail.length;
      f.tail.copy(scratch, 0);
      const n = Math.min(SCRATCH - t, data.length - at);
      toScratch(t, data, at, at + n);
      at += n;
      const total = t + n;
      const whole = total - (total % ALIGN);
      if (whole > 0) {
        writeScratch(f, whole, whole);
        f.position += whole;
      }
      f.tail = Buffer.from(scratch.subarray(whole, total));
      if (!f.direct) {
        writeAll(f, f.tail, f.tail.length, f.position);
        f.position += f.tail.length;
        f.tail = Buffer.alloc(0);
        return append(f, data.subarray(at));
      }
    }
  }

  function closeFile(f) {
    const op = f.op;
    if (f.tail.length > 0) {
      const t = f.tail.length;
      const padded = Math.ceil(t / ALIGN) * ALIGN;
      f.tail.copy(scratch, 0);
      scratch.fill(0, t, padded);
      writeScratch(f, padded, t);
      f.position += t;
      f.tail = Buffer.alloc(0);
      // The padding went to the disk too: cut the file back to its real length.
      if (padded !== t) fs.ftruncateSync(f.fd, f.position);
    }
    if (f.position !== op.size) throw Object.assign(new Error('wrote ' + f.position + ' bytes, the index says ' + op.size), { code: 'ESIZE' });
    // Owner before mode (chown clears setuid bits), times last (nothing changes them after).
    if (op.chown) fs.fchownSync(f.fd, op.uid, op.gid);
    fs.fchmodSync(f.fd, op.mode);
    fs.futimesSync(f.fd, op.mtime, op.mtime);
    const fd = f.fd;
    f.fd = -1;
    fs.closeSync(fd);
  }

  // Where an extent's direct writes start and end. The bytes before and after go through the
  // page cache, and a neighbouring extent's writer writes the rest of their page: the edge must
  // be a page boundary, or a buffered write's read-modify-write of a whole page could put back
  // stale bytes over a neighbour's direct write. 64 KiB is the largest page size Linux uses
  // (arm64 and ppc64 kernels built with it); on 4 KiB pages it only means a little more
  // buffered at each edge of an 8 MiB extent.
  const EXTENT_ALIGN = 65536;

  /**
   * Writes data at position of an existing file: the whole pages in between with direct I/O
   * (through the scratch, for alignment), the partial pages at either end through the page
   * cache, since the writers of the neighbouring extents write the other bytes of those pages.
   */
  function writeExtent(pathU8, position, data) {
    const path = asBuffer(pathU8);
    const end = position + data.length;
    const first = Math.ceil(position / EXTENT_ALIGN) * EXTENT_ALIGN;
    const last = Math.floor(end / EXTENT_ALIGN) * EXTENT_ALIGN;
    let dfd = -1;
    if (O_DIRECT !== undefined && scratch && last - first >= EXTENT_ALIGN) {
      try { dfd = fs.openSync(path, O_WRONLY | O_DIRECT | NOFOLLOW); }
      catch (err) { if (err.code !== 'EINVAL') throw err; }
    }
    let bfd = -1;
    try {
      bfd = fs.openSync(path, O_WRONLY | NOFOLLOW);
      const f = { fd: bfd };
      if (dfd < 0) { writeAll(f, data, data.length, position); return; }
      writeAll(f, data.subarray(0, first - position), first - position, position);
      const d = { fd: dfd };
      for (let at = first; at < last; ) {
        const n = Math.min(SCRATCH, last - at);
        toScratch(0, data, at - position, at - position + n);
        try { writeAll(d, scratch, n, at); }
        catch (err) {
          if (err.code !== 'EINVAL') throw err;
          writeAll(f, scratch, n, at); // direct I/O refused at these alignments
        }
        at += n;
      }
      writeAll(f, data.subarray(last - position), end - last, last);
    } finally {
      if (dfd >= 0) fs.closeSync(dfd);
      if (bfd >= 0) fs.closeSync(bfd);
    }
  }

  /** Closes and removes a file that cannot be finished (its partial content must not stay). */
  function discard(f) {
    if (f.fd >= 0) { try { fs.closeSync(f.fd); } catch {} }
    f.fd = -1;
    try { fs.unlinkSync(f.path); } catch {}
  }

  function fail(result, f, id, err) {
    result.failed.push({ id, kind: 'fs', code: err && err.code, errno: err && err.errno, syscall: err && err.syscall, message: String((err && err.message) || err) });
    if (f) discard(f);
    files.set(id, null);
  }

  /** Hashes each chunk of a piece; true (and the mismatch in result) if one is not what the index says. */
  function verify(data, op, result) {
    let pos = op.offset;
    for (let i = 0; i < op.lengths.length; i++) {
      const len = op.lengths[i];
      const h = createHash('sha256').update(data.subarray(pos, pos + len)).digest('hex');
      if (h !== op.hashes[i]) {
        result.failed.push({ id: op.id, kind: 'mismatch', chunk: op.firstChunk + i, actual: h });
        return true;
      }
      pos += len;
    }
    return false;
  }

  function handle(ops, buffer) {
    const data = buffer ? Buffer.from(buffer) : arenaBuf;
    const result = { written: [], done: [], failed: [] };
    for (const op of ops) {
      if (op.op === 'extent') {
        // Verified whole before a byte is written; a failure is the main thread's to clean up
        // (it removes the file, which other writers' extents then cannot reopen).
        try {
          const bad = verify(data, op, result);
          if (bad) continue;
          const end = op.offset + op.lengths.reduce((a, b) => a + b, 0);
          writeExtent(op.path, op.position, data.subarray(op.offset, end));
          result.written.push([op.id, end - op.offset]);
        } catch (err) {
          result.failed.push({ id: op.id, kind: 'fs', code: err && err.code, errno: err && err.errno, syscall: err && err.syscall, message: String((err && err.message) || err) });
        }
        continue;
      }
      const f = files.get(op.id);
      if (f === null) { if (op.op === 'close') files.delete(op.id); continue; } // failed before
      try {
        if (op.op === 'open') {
          files.set(op.id, null); // until it is open
          files.set(op.id, openFile(op));
        } else if (op.op === 'piece') {
          // Every chunk is verified before any byte of the piece is written.
          if (verify(data, op, result)) {
            discard(f);
            files.set(op.id, null);
            continue;
          }
          const end = op.offset + op.lengths.reduce((a, b) => a + b, 0);
          append(f, data.subarray(op.offset, end));
          result.written.push([op.id, end - op.offset]);
        } else if (op.op === 'close') {
          closeFile(f);
          files.delete(op.id);
          result.done.push(op.id);
        }
      } catch (err) {
        fail(result, f, op.id, err);
      }
    }
    return result;
  }

  /** Every open file is incomplete: close and remove it. */
  function abort() {
    for (const f of files.values()) if (f) discard(f);
    files.clear();
  }

  return { handle, abort };
}
`;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
${WRITER_SOURCE}
const writer = makeWriter(fs, createHash, workerData.arena, workerData.scratchAt);
parentPort.on('message', (msg) => {
  try {
    if (msg.type === 'ops') parentPort.postMessage({ type: 'result', seq: msg.seq, result: writer.handle(msg.ops, msg.buffer) });
    else if (msg.type === 'abort') { writer.abort(); parentPort.postMessage({ type: 'aborted', seq: msg.seq }); }
  } catch (err) {
    // A fault outside a file's own steps (those are answered as failures): the thread would
    // die with its files open (descriptors belong to the process, so they would stay open
    // after it), so it closes and removes them, says what happened and stays alive.
    try { writer.abort(); } catch {}
    parentPort.postMessage({ type: 'error', seq: msg.seq, message: String((err && err.stack) || err) });
  }
});
`;

interface WriterCore {
  handle(ops: readonly WriterOp[], buffer: SharedArrayBuffer | undefined): WriterResult;
  abort(): void;
}

interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
// The project's lib settings leave out WebAssembly's types: the few used here. Absent under
// `node --jitless`.
const { WebAssembly } = globalThis as unknown as {
  WebAssembly?: {
    Memory: new (d: { initial: number; maximum: number; shared?: boolean }) => WasmMemory;
    Module: new (bytes: Uint8Array) => object;
  };
};

/** Bytes of a WebAssembly memory page: the arena's slots are whole pages. */
export const WASM_PAGE = 65536;

/** LEB128 of an unsigned integer, as WebAssembly's binary format encodes sizes. */
function leb128(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/**
 * A WebAssembly module of one function, `copy(to, from, bytes)`: `memory.copy` (bulk memory,
 * in every Node this project supports) within the imported shared memory `m.memory` of `pages`
 * pages. A five-instruction function does not warrant a toolchain: the bytes are the binary
 * format (https://webassembly.github.io/spec/core/binary/modules.html), sections in order.
 */
function copyModuleBytes(pages: number): Uint8Array {
  const name = (text: string): number[] => [text.length, ...Buffer.from(text, 'latin1')];
  const section = (id: number, body: number[]): number[] => [id, ...leb128(body.length), ...body];
  const i32 = 0x7f;
  // local.get 0, local.get 1, local.get 2, memory.copy 0 0, end
  const body = [0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfc, 0x0a, 0x00, 0x00, 0x0b];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // magic, version 1
    ...section(1, [0x01, 0x60, 0x03, i32, i32, i32, 0x00]), // type: (i32, i32, i32) -> ()
    ...section(2, [0x01, ...name('m'), ...name('memory'), 0x02, 0x03, ...leb128(pages), ...leb128(pages)]), // import shared memory
    ...section(3, [0x01, 0x00]), // one function of type 0
    ...section(7, [0x01, ...name('copy'), 0x00, 0x00]), // export it as copy
    ...section(10, [0x01, ...leb128(body.length), ...body]),
  ]);
}

/** What a writer gets of the arena (structured-cloneable: shared memory and a compiled module). */
interface SharedArena {
  readonly buffer: SharedArrayBuffer;
  /** Undefined without WebAssembly: then the buffer is not page-aligned, and copies are Buffer#copy. */
  readonly memory?: WasmMemory;
  readonly copyModule?: object;
}

/**
 * The restore's memory, one shared WebAssembly memory allocated once: `slots` read buffers of
 * `slotBytes` (the pool the feeder reads packs into) and a scratch of SCRATCH_BYTES per writer.
 * One memory because a writer copies chunks from a read buffer into its scratch with
 * `memory.copy`, which copies within a memory (see the writer's toScratch). Pages are touched,
 * so resident, only when used.
 */
export class RestoreArena {
  readonly buffer: SharedArrayBuffer;
  private readonly memory: WasmMemory | undefined;
  private readonly copyModule: object | undefined;

  constructor(
    readonly slots: number,
    readonly slotBytes: number,
    readonly writers: number,
  ) {
    if (slotBytes % WASM_PAGE !== 0) throw new Error(`a slot must be whole pages of ${WASM_PAGE} bytes`);
    const pages = (slots * slotBytes + writers * SCRATCH_BYTES) / WASM_PAGE;
    if (WebAssembly) {
      // No fallback on a failure here: it would quietly turn direct I/O off for the restore.
      this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      this.copyModule = new WebAssembly.Module(copyModuleBytes(pages));
      this.buffer = this.memory.buffer as SharedArrayBuffer;
    } else {
      this.memory = undefined;
      this.copyModule = undefined;
      this.buffer = new SharedArrayBuffer(pages * WASM_PAGE);
    }
  }

  /** Read buffer `i` of the pool. */
  slot(i: number): Uint8Array {
    return new Uint8Array(this.buffer, i * this.slotBytes, this.slotBytes);
  }

  /** Where writer `i`'s scratch starts. */
  scratchAt(i: number): number {
    return this.slots * this.slotBytes + i * SCRATCH_BYTES;
  }

  share(): SharedArena {
    return { buffer: this.buffer, ...(this.memory ? { memory: this.memory, copyModule: this.copyModule } : {}) };
  }
}

function inThreadWriter(arena: RestoreArena): WriterCore {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function(`${WRITER_SOURCE}\nreturn makeWriter;`)() as (f: typeof fs, h: typeof createHash, arena: SharedArena, scratchAt: number) => WriterCore;
  return make(fs, createHash, arena.share(), arena.scratchAt(0));
}

interface Pending {
  readonly resolve: (value: WriterResult | undefined) => void;
  readonly reject: (err: Error) => void;
}

/**
 * `threads` writer threads (0: the calling thread), each with its scratch in `arena`.
 * `send(i, ops, buffer)` gives writer `i` a list of steps and resolves with what it did; a
 * writer handles its messages in order. Offsets in the steps are into `buffer`, or into the
 * arena when there is none.
 */
export class RestoreWriters {
  private readonly workers: Worker[] = [];
  private readonly pending: Map<number, Pending>[] = [];
  /** Per thread: why it can take no more work (it died, or the writers are closed). */
  private readonly dead: (Error | undefined)[] = [];
  private readonly local: WriterCore | undefined;
  private seq = 0;
  /** The first failure of any thread: no more work is sent to any of them after it. */
  private crashed: Error | undefined;

  constructor(threads: number, arena: RestoreArena = new RestoreArena(0, WASM_PAGE, Math.max(threads, 1))) {
    if (arena.writers < Math.max(threads, 1)) throw new Error(`the arena has scratch for ${arena.writers} writers, not ${threads}`);
    if (threads <= 0) {
      this.local = inThreadWriter(arena);
      return;
    }
    try {
      const shared = arena.share();
      for (let i = 0; i < threads; i++) {
        const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { arena: shared, scratchAt: arena.scratchAt(i) } });
        const pending = new Map<number, Pending>();
        worker.on('message', (msg: { type: string; seq: number; result?: WriterResult; message?: string }) => {
          const p = pending.get(msg.seq);
          pending.delete(msg.seq);
          if (msg.type === 'error') {
            const err = new Error(`a restore writer thread failed: ${msg.message}`);
            p?.reject(err);
            this.crashed ??= err;
          } else p?.resolve(msg.result);
        });
        worker.on('error', (err) => this.fail(i, err));
        worker.on('exit', () => this.fail(i, new Error('a restore writer thread exited')));
        this.workers.push(worker);
        this.pending.push(pending);
        this.dead.push(undefined);
      }
    } catch (err) {
      // A thread that cannot start (memory, a thread limit): the ones started must not outlive
      // the restore that could not use them.
      for (const w of this.workers) void w.terminate();
      throw err;
    }
  }

  /** Writer threads (1 when writing on the calling thread). */
  get size(): number {
    return this.local ? 1 : this.workers.length;
  }

  send(writer: number, ops: readonly WriterOp[], buffer?: SharedArrayBuffer): Promise<WriterResult> {
    if (this.local) {
      const local = this.local;
      return Promise.resolve().then(() => local.handle(ops, buffer));
    }
    if (this.crashed) return Promise.reject(this.crashed);
    const seq = this.seq++;
    return new Promise<WriterResult>((resolve, reject) => {
      this.pending[writer]!.set(seq, { resolve: resolve as (v: WriterResult | undefined) => void, reject });
      this.workers[writer]!.postMessage({ type: 'ops', seq, ops, buffer });
    });
  }

  /** Closes and removes every file still open on any writer (after a failure). */
  async abort(): Promise<void> {
    if (this.local) {
      this.local.abort();
      return;
    }
    // Every thread still alive closes and removes its open files, whichever thread failed.
    await Promise.all(
      this.workers.map((worker, i) => {
        if (this.dead[i]) return undefined;
        const seq = this.seq++;
        return new Promise<unknown>((resolve, reject) => {
          this.pending[i]!.set(seq, { resolve, reject });
          worker.postMessage({ type: 'abort', seq });
        }).catch(() => undefined);
      }),
    );
  }

  async close(): Promise<void> {
    const closed = new Error('the restore writers are closed');
    this.crashed ??= closed;
    this.workers.forEach((_, i) => (this.dead[i] ??= closed));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** Thread `i` died: its work in flight fails, and no more is sent to any thread. */
  private fail(i: number, err: Error): void {
    if (this.dead[i]) return;
    this.dead[i] = err;
    this.crashed ??= err;
    for (const p of this.pending[i]!.values()) p.reject(err);
    this.pending[i]!.clear();
  }
}

/**
 * A page-aligned buffer of `bytes` (whole WebAssembly pages) for direct I/O; undefined without
 * WebAssembly, or where V8 cannot reserve its memory (a tight `ulimit -v`: RangeError).
 */
export function alignedBuffer(bytes: number): Buffer | undefined {
  const pages = Math.ceil(bytes / WASM_PAGE);
  if (!WebAssembly) return undefined;
  try {
    return Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer);
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}

/**
 * Page-aligned shared memory of `bytes` (a shared WebAssembly memory), so direct I/O can read
 * into it; a plain `SharedArrayBuffer` without WebAssembly (then reads are copied).
 */
export function sharedAlignedBuffer(bytes: number): SharedArrayBuffer {
  const pages = Math.ceil(bytes / WASM_PAGE);
  if (!WebAssembly) return new SharedArrayBuffer(pages * WASM_PAGE);
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as SharedArrayBuffer;
}

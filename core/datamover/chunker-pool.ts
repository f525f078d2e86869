/**
 * A pool of worker threads that read files, cut them into FastCDC chunks and SHA-256 each
 * chunk, so both the rolling hash and the digest run on every core (and that hash chunks read
 * back from the vault, for restore and verify). A worker streams a file in segments of whole
 * chunks, sent to the main thread together with the chunk digests, and reads ahead at most
 * `window` segments before the main thread acknowledges one, which bounds memory whatever the
 * file size. Small new files travel in batches: several read back to back, sent with all their
 * digests in one message. Where the caller gives targets (`readTarget`), new files are read
 * straight into shared memory it owns (the end of a pack), so their bytes stay where they were
 * read but for a chunk unfinished when a target fills (it moves to the next) and whatever the
 * caller moves itself (a chunk read beside duplicates); otherwise, and for the rest of a file
 * whose next target is refused, into the worker's own buffers, each *transferred* (not copied)
 * with its segment and handed back for reuse.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { displayPath } from './index-format.js';
import { chunkMasks, DEFAULT_CHUNKER, fastcdcCut, GEAR, warmFastcdc, type ChunkerParams } from './fastcdc.js';

/** A run of whole chunks of one file, in file order. */
export interface Segment {
  /** The bytes of the chunks, back to back. Valid only until `onSegment` settles (the buffer is reused). */
  readonly data: Buffer;
  /** Hex SHA-256 digest of each chunk. */
  readonly hashes: readonly string[];
  /** Length of each chunk. */
  readonly lengths: readonly number[];
}

/** A file could not be read (vanished, permission denied, ...). */
export class SourceReadError extends Error {
  readonly code: string | undefined;
  constructor(path: string | Uint8Array, message: string, code?: string) {
    super(`cannot read ${typeof path === 'string' ? path : displayPath(path)}: ${message}`);
    this.name = 'SourceReadError';
    this.code = code;
  }
}

/**
 * The most hashing threads a pool starts by default, whatever the node's cores. Each thread
 * holds up to `window + 1` read buffers of `readSize + maxSize` (3 × 8 MiB by default: for a
 * changed file, and for new files on a thread past Packer's MAX_LANES or given no target) and
 * its own V8 isolate, ~30 MiB at its peak: 8 threads stay under 250 MiB. One per core would
 * not: the data mover's Job sets a CPU request and no CPU limit, so `os.availableParallelism()`
 * reports every core of the node (Node 22's libuv, 1.51 in 22.23, follows cgroup `cpu.max`,
 * which only a limit sets), and on a 96-core node the threads alone would pass the Job's 2 GiB
 * memory limit, an OOM kill on every retry. At this machine's rates per core (FastCDC ~1.3 GB/s,
 * SHA-256 ~1.7 GB/s, so ~0.75 GB/s for both) eight threads would take ~6 GB/s, more than a
 * volume or a pod's network gives.
 */
export const MAX_HASH_THREADS = 8;

/** Hashing threads for `cores` available: one per core, at most MAX_HASH_THREADS. */
export function defaultHashThreads(cores: number = availableParallelism()): number {
  return Math.max(1, Math.min(MAX_HASH_THREADS, cores));
}

export interface ChunkerPoolOptions {
  /** @default defaultHashThreads(): os.availableParallelism(), at most MAX_HASH_THREADS */
  readonly workers?: number;
  /** @default DEFAULT_CHUNKER */
  readonly params?: ChunkerParams;
  /** Bytes read per segment. @default 4 MiB */
  readonly readSize?: number;
  /** Unacknowledged segments a worker may have out. @default 2 */
  readonly window?: number;
  /**
   * Where worker `lane` (0 to workers - 1) may read the next `bytes` of new files (a batch of
   * small files, their sizes when walked; the start or the rest of a big one), if not into
   * buffers of its own: shared memory of at least `bytes` (`room`), such as the end of an open
   * pack (`Packer.target`). Asked only while that worker waits with every segment it sent
   * claimed, so a target is never touched by the worker after it has reported what it read
   * there, except that a refusal (undefined) must leave the previous target's memory as it is:
   * the worker then copies its unfinished chunk out of it. Segments read into a target are
   * views of `target.buffer` itself, and whoever claims their chunks must do so in the order
   * they were read: `onSegment` callbacks start in that order, and must claim before they
   * first await. Files with previous chunks (`chunkFile`'s `prev`) are read into the worker's
   * own buffers: most of their chunks are not new.
   */
  readonly readTarget?: (lane: number, bytes: number) => ReadTarget | undefined;
}

/** Shared memory a worker reads into: `room` bytes from `offset`. */
export interface ReadTarget {
  readonly buffer: SharedArrayBuffer;
  readonly offset: number;
  readonly room: number;
}

// The worker is evaluated from source so that it runs the very same `fastcdcCut` under tsx,
// Jest (swc) and a plain Node container alike, without a build step for a separate file.
// It is CommonJS because `eval` workers are.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
// What esbuild's keepNames (tsx) wraps named functions in, when the functions below come from it.
var __name = (target) => target;
const fastcdcCut = ${fastcdcCut.toString()};
const { gear, minSize, avgSize, maxSize, maskS, maskL, readSize, window } = workerData;
// Every exit of the chunker's loops runs once before V8 optimizes it (see warmFastcdc); only
// an optimization, so a warm-up that fails leaves the worker to chunk as it would without it.
try { (${warmFastcdc.toString()})(fastcdcCut, gear); } catch {}
const jobs = new Map();
// Read buffers come back with each acknowledgement and are reused: memory stays at a few
// buffers per worker instead of depending on when the main thread's GC frees them.
const free = [];
function take(n) {
  for (let i = 0; i < free.length; i++) {
    if (free[i].byteLength >= n) return Buffer.from(free.splice(i, 1)[0], 0, n);
  }
  return Buffer.from(new ArrayBuffer(Math.max(n, readSize + maxSize)), 0, n);
}
parentPort.on('message', (msg) => {
  if (msg.type === 'file') {
    const state = { inflight: 0, wake: null };
    jobs.set(msg.job, state);
    run(msg.job, msg.path, msg.prev, state, msg.target).then(
      (size) => { jobs.delete(msg.job); parentPort.postMessage({ type: 'done', job: msg.job, size }); },
      (err) => { jobs.delete(msg.job); parentPort.postMessage({ type: 'error', job: msg.job, message: String((err && err.message) || err), code: err && err.code }); },
    );
  } else if (msg.type === 'hash') {
    const data = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
    const hashes = [];
    let pos = 0;
    for (const len of msg.lengths) {
      hashes.push(createHash('sha256').update(data.subarray(pos, pos + len)).digest('hex'));
      pos += len;
    }
    parentPort.postMessage({ type: 'hashed', job: msg.job, hashes, buffer: msg.buffer, byteOffset: msg.byteOffset, byteLength: msg.byteLength }, [msg.buffer]);
  } else if (msg.type === 'batch') {
    batch(msg.id, msg.files, msg.target).then(
      () => parentPort.postMessage({ type: 'batch-end', id: msg.id }),
      (err) => parentPort.postMessage({ type: 'batch-end', id: msg.id, message: String((err && err.message) || err) }),
    );
  } else if (msg.type === 'target') {
    const state = jobs.get(msg.job);
    if (state) { state.target = msg.target; if (state.wake) { const w = state.wake; state.wake = null; w(); } }
  } else if (msg.type === 'ack') {
    if (msg.buffer && free.length < window + 1) free.push(msg.buffer);
    const state = jobs.get(msg.job);
    if (state) { state.target = msg.target; state.inflight--; if (state.wake) { const w = state.wake; state.wake = null; w(); } }
  }
});
const pathOf = (path) => (typeof path === 'string' ? path : Buffer.from(path.buffer, path.byteOffset, path.byteLength));
// Small files, read whole and back to back into one buffer that goes to the main thread in one
// message ('batch', then one 'ack'); a file that no longer fits (it grew since the walk) is
// streamed on its own as by 'file'. Each file is cut as a whole file is. The buffer is the
// main thread's target when it gives one: the end of a pack in shared memory, which this
// thread writes only until it has sent what it read there (the ack may bring the next
// target); otherwise one of this thread's read buffers (readSize + maxSize), transferred and
// given back. Memory: a batch waits for its ack before it reads on, so a worker never has more
// buffers out than while streaming one file.
async function batch(id, files, target) {
  let buf = null;
  let used = 0;
  let parts = [];
  const send = async (more) => {
    if (parts.length === 0) return;
    const state = { inflight: 1, wake: null, target: undefined };
    jobs.set(id, state);
    if (target) parentPort.postMessage({ type: 'batch', id, parts, byteOffset: buf.byteOffset, byteLength: used, more });
    else parentPort.postMessage({ type: 'batch', id, parts, buffer: buf.buffer, byteOffset: buf.byteOffset, byteLength: used, more }, [buf.buffer]);
    buf = null;
    parts = [];
    while (state.inflight > 0) await new Promise((resolve) => { state.wake = resolve; });
    jobs.delete(id);
    // What the main thread wrote after the target's reported bytes is its own: read on only
    // where the ack says.
    target = state.target;
  };
  for (let i = 0; i < files.length; i++) {
    const f = files[i];
    if (!buf) { buf = target ? Buffer.from(target.buffer, target.offset, target.room) : take(readSize + maxSize); used = 0; }
    let fd;
    let end = used;
    let fits = false;
    try {
      fd = fs.openSync(pathOf(f.path), 'r');
      if (fs.fstatSync(fd).size <= buf.length - used) {
        for (;;) {
          const n = fs.readSync(fd, buf, end, buf.length - end, end - used);
          if (n === 0) { fits = true; break; }
          end += n;
          if (end === buf.length) {
            fits = fs.readSync(fd, probe, 0, 1, end - used) === 0;
            break;
          }
        }
      }
    } catch (err) {
      if (fd !== undefined) fs.closeSync(fd);
      parts.push({ job: f.job, size: 0, hashes: [], lengths: [], message: String((err && err.message) || err), code: err && err.code });
      continue;
    }
    fs.closeSync(fd);
    if (fits) {
      const hashes = [];
      const lengths = [];
      for (let pos = used; pos < end; ) {
        const len = fastcdcCut(buf, pos, end, gear, minSize, avgSize, maxSize, maskS, maskL);
        hashes.push(createHash('sha256').update(buf.subarray(pos, pos + len)).digest('hex'));
        lengths.push(len);
        pos += len;
      }
      parts.push({ job: f.job, size: end - used, hashes, lengths });
      used = end;
      continue;
    }
    // Bigger than the room left: send what is read, then stream this file alone.
    await send(i + 1 < files.length);
    const state = { inflight: 0, wake: null };
    jobs.set(f.job, state);
    try {
      const size = await run(f.job, f.path, null, state);
      parentPort.postMessage({ type: 'done', job: f.job, size });
    } catch (err) {
      parentPort.postMessage({ type: 'error', job: f.job, message: String((err && err.message) || err), code: err && err.code });
    } finally {
      jobs.delete(f.job);
    }
  }
  await send(false);
  if (buf && !target && free.length < window + 1) free.push(buf.buffer);
}
const probe = Buffer.alloc(1);
// Streams a file in segments of whole chunks. Into this thread's own buffers, each segment
// transferred and given back with its ack (the unfinished chunk at a buffer's end is copied to
// the next one); or, given a target (a new file: no previous chunks to reuse), straight into a
// pack's shared memory, read on in steps of readSize with the unfinished chunk left in place,
// and when the target is full that chunk moves to the next one the main thread gives, once all
// sent before it are claimed.
async function run(job, path, prev, state, target) {
  const fd = fs.openSync(pathOf(path), 'r');
  let position = 0;
  try {
    const size = fs.fstatSync(fd).size;
    // Buffers are sized to what is left of the file (a 64 KiB file gets a small view) and
    // recycled; the unchunked tail of one buffer is copied straight into the next.
    const sizeFor = (tail) => tail + Math.min(readSize, Math.max(size - position, 65536));
    let lane = target || null;
    let buf = lane ? Buffer.from(lane.buffer, lane.offset, lane.room) : take(sizeFor(0));
    let base = 0; // file offset of buf[0]
    let start = 0; // the first byte of buf not sent yet
    let end = 0;
    // Cursor into the previous version's chunks (a changed file): index and file offset.
    let pk = 0;
    let prevOff = 0;
    let prevMiss = -1;
    let eof = false;
    while (!eof) {
      const limit = lane ? Math.min(buf.length, end + readSize) : buf.length;
      while (end < limit) {
        const n = fs.readSync(fd, buf, end, limit - end, position);
        if (n === 0) { eof = true; break; }
        end += n;
        position += n;
      }
      const hashes = [];
      const lengths = [];
      let pos = start;
      // Chunks are cut as long as the cut is certain. With a full maxSize of bytes ahead (or at
      // EOF) every cut is; with fewer, a cut found before the bytes run out is too (it depends
      // only on the bytes since the previous cut, and the masks on the distance from it), and
      // only the last, unfinished chunk is carried over into the next buffer. Carrying over
      // whatever was short of maxSize instead copied ~85% of a big file's bytes a second time.
      while (pos < end) {
        let len = 0;
        let hash = '';
        if (prev) {
          // Where a previous chunk starts here and its bytes are unchanged, FastCDC would cut
          // at its end again (a cut depends only on the bytes since the previous cut), so
          // one SHA-256 replaces the rolling hash. The old last chunk ended at the old EOF,
          // not at a content cut: only reuse it if the file still ends there.
          const fpos = base + pos;
          while (pk < prev.lengths.length && prevOff < fpos) prevOff += prev.lengths[pk++];
          if (pk < prev.lengths.length && prevOff === fpos && fpos !== prevMiss) {
            const l = prev.lengths[pk];
            if (pos + l <= end && (pk < prev.lengths.length - 1 || (eof && pos + l === end))) {
              const h = createHash('sha256').update(buf.subarray(pos, pos + l)).digest('hex');
              if (h === prev.hashes[pk]) { len = l; hash = h; } else prevMiss = fpos; // not hashed again if this chunk waits for more bytes
            }
          }
        }
        if (len === 0) {
          const avail = end - pos;
          if (!eof && avail < maxSize) {
            if (avail <= minSize) break;
            len = fastcdcCut(buf, pos, end, gear, minSize, avgSize, maxSize, maskS, maskL);
            // No cut before the bytes ran out (or one at the very last byte, which more bytes
            // could not move but which is simpler to find again): wait for more.
            if (len >= avail) break;
          } else {
            len = fastcdcCut(buf, pos, end, gear, minSize, avgSize, maxSize, maskS, maskL);
          }
          hash = createHash('sha256').update(buf.subarray(pos, pos + len)).digest('hex');
        }
        hashes.push(hash);
        lengths.push(len);
        pos += len;
      }
      if (lane) {
        if (lengths.length > 0) {
          state.inflight++;
          parentPort.postMessage({ type: 'segment', job, hashes, lengths, byteOffset: buf.byteOffset + start, byteLength: pos - start });
          start = pos;
          while (state.inflight >= window) await new Promise((resolve) => { state.wake = resolve; });
        }
        if (eof || end < buf.length) continue;
        // The target is full: once every segment sent is claimed, the main thread moves the
        // unfinished chunk to the start of the next target (it may seal this one's pack as it
        // gives it, so this thread must not read it after asking). The next target has room
        // for that chunk and at least one byte more (a file may grow), so each takes the read
        // further; a whole chunk more where the file has it. With no next target, this thread
        // copies the chunk into a buffer of its own: a target refused leaves the pack open.
        while (state.inflight > 0) await new Promise((resolve) => { state.wake = resolve; });
        const tail = end - start;
        parentPort.postMessage({ type: 'need-target', job, bytes: tail + Math.min(maxSize, Math.max(1, size - position)), byteOffset: buf.byteOffset + start, byteLength: tail });
        await new Promise((resolve) => { state.wake = resolve; });
        lane = state.target || null;
        if (lane && lane.room <= tail) throw new Error('internal error: a read target with no room past the unfinished chunk');
        const next = lane ? Buffer.from(lane.buffer, lane.offset, lane.room) : take(sizeFor(tail));
        if (!lane) buf.copy(next, 0, start, end);
        base += start;
        end -= start;
        start = 0;
        buf = next;
        continue;
      }
      let next = null;
      if (!eof) {
        next = take(sizeFor(end - pos));
        buf.copy(next, 0, pos, end);
      }
      if (lengths.length > 0) {
        state.inflight++;
        parentPort.postMessage({ type: 'segment', job, hashes, lengths, buffer: buf.buffer, byteOffset: buf.byteOffset, byteLength: pos }, [buf.buffer]);
        while (state.inflight >= window) await new Promise((resolve) => { state.wake = resolve; });
      } else if (free.length < window + 1) {
        free.push(buf.buffer);
      }
      if (next) {
        end = end - pos;
        base += pos;
        buf = next;
      }
    }
    while (state.inflight > 0) await new Promise((resolve) => { state.wake = resolve; });
  } finally {
    fs.closeSync(fd);
  }
  return position;
}
`;

interface HashJob {
  readonly kind: 'hash';
  readonly id: number;
  readonly data: Buffer;
  readonly lengths: readonly number[];
  readonly resolve: (result: { data: Buffer; hashes: string[] }) => void;
  readonly reject: (err: Error) => void;
}

/** The chunks of the previous version of a file, in order. */
export interface PreviousChunks {
  readonly lengths: readonly number[];
  readonly hashes: readonly string[];
}

interface Job {
  readonly kind: 'file';
  readonly id: number;
  readonly path: string | Uint8Array;
  readonly prev: PreviousChunks | undefined;
  /** The file's size when it was walked: small files go to a worker in batches. */
  readonly sizeHint: number | undefined;
  readonly onSegment: (segment: Segment) => Promise<void>;
  readonly resolve: (size: number) => void;
  readonly reject: (err: Error) => void;
  /** Segments are handed over strictly in order, one at a time. */
  chain: Promise<void>;
  failed: boolean;
}

/**
 * Chunks and hashes files on worker threads. `chunkFile` resolves with the number of bytes
 * read once every segment has been handed to `onSegment` and its promise has settled. Given
 * the previous version's chunks, it cuts exactly where FastCDC would, but verifies unchanged
 * chunks with SHA-256 alone instead of rolling the gear hash over them.
 */
export class ChunkerPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: (Job | HashJob)[] = [];
  private readonly running = new Map<number, { job: Job | HashJob; worker: Worker; batch?: number }>();
  /** Batches of small files being read, by id, and their worker. */
  private readonly batches = new Map<number, Worker>();
  /** The shared memory each batch is reading into, if any (the main thread's own object of it). */
  private readonly targets = new Map<number, SharedArrayBuffer>();
  /** Each worker's lane number for `readTarget`. */
  private readonly lanes = new Map<Worker, number>();
  private readonly readTarget: ChunkerPoolOptions['readTarget'];
  private readonly readSize: number;
  private readonly maxChunk: number;
  private nextId = 1;
  private closed = false;

  constructor(options: ChunkerPoolOptions = {}) {
    const params = options.params ?? DEFAULT_CHUNKER;
    const { maskS, maskL } = chunkMasks(params.avgSize);
    const count = Math.max(1, options.workers ?? defaultHashThreads());
    this.readSize = Math.max(options.readSize ?? 4 * 1024 * 1024, params.maxSize);
    this.maxChunk = params.maxSize;
    const workerData = { gear: GEAR, ...params, maskS, maskL, readSize: this.readSize, window: options.window ?? 2 };
    this.readTarget = options.readTarget;
    for (let i = 0; i < count; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
      this.lanes.set(worker, i);
      worker.on('message', (msg: WorkerMessage) => this.onMessage(worker, msg));
      worker.on('error', (err) => this.onWorkerError(worker, err));
      worker.unref();
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  /** Why the pool takes no new job, if it takes none. */
  private refusal(): Error | undefined {
    if (this.closed) return new Error('ChunkerPool is closed');
    if (this.workers.length === 0) return new Error('ChunkerPool has no worker thread left: every one crashed');
    return undefined;
  }

  /** Number of worker threads alive (a thread that crashed is gone). */
  get size(): number {
    return this.workers.length;
  }

  chunkFile(path: string | Uint8Array, onSegment: (segment: Segment) => Promise<void>, prev?: PreviousChunks, sizeHint?: number): Promise<number> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ kind: 'file', id: this.nextId++, path, prev, sizeHint, onSegment, resolve, reject, chain: Promise.resolve(), failed: false });
      this.dispatch();
    });
  }

  /**
   * SHA-256 of each chunk in `data` (chunks of `lengths`, back to back) on a worker thread.
   * The bytes travel without copying when `data` owns its whole ArrayBuffer, and come back as
   * `data` in the result: the caller must use that one, not the (detached) original.
   */
  hashChunks(data: Buffer, lengths: readonly number[]): Promise<{ data: Buffer; hashes: string[] }> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    // A Buffer from Node's shared allocation pool must not be transferred: copy it.
    const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : Buffer.from(data);
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 'hash', id: this.nextId++, data: own, lengths, resolve, reject });
      this.dispatch();
    });
  }

  /**
   * Rejects with `reason` every job not handed to a worker yet (their files are never opened);
   * jobs already running go on to their end. For a caller that has failed and must not wait for
   * everything it queued to be read.
   */
  cancelQueued(reason: Error): void {
    for (const job of this.queue.splice(0)) {
      if (job.kind === 'file') job.failed = true;
      job.reject(reason);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** A new file of at most one read (the size the walk saw), handed to a worker with others. */
  private batchable(job: Job | HashJob | undefined): boolean {
    return job?.kind === 'file' && job.prev === undefined && job.sizeHint !== undefined && job.sizeHint <= this.readSize;
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const job = this.queue.shift()!;
      worker.ref();
      if (this.batchable(job)) {
        // Small files go together: one message each way per batch instead of four per file
        // (file, segment, ack, done). The thread hand-offs, not the bytes, were what small
        // files cost: ~1.5 CPU-s of the main thread for the 4,400 files of the small-files bench.
        const id = this.nextId++;
        const files = [job as Job];
        let bytes = (job as Job).sizeHint!;
        for (let next = this.queue[0] as Job; files.length < MAX_BATCH_FILES && this.batchable(next) && bytes + next.sizeHint! <= this.readSize; next = this.queue[0] as Job) {
          files.push(this.queue.shift() as Job);
          bytes += next.sizeHint!;
        }
        for (const f of files) this.running.set(f.id, { job: f, worker, batch: id });
        this.batches.set(id, worker);
        const target = this.targetFor(worker, id, bytes);
        worker.postMessage({ type: 'batch', id, files: files.map((f) => ({ job: f.id, path: f.path })), target });
        continue;
      }
      this.running.set(job.id, { job, worker });
      if (job.kind === 'file') {
        // A big new file starts with room for one whole chunk at least (a target that fills
        // asks for the next, see 'need-target').
        const target = job.prev === undefined ? this.targetFor(worker, job.id, Math.min(job.sizeHint ?? Infinity, this.maxChunk)) : undefined;
        worker.postMessage({ type: 'file', job: job.id, path: job.path, prev: job.prev ?? null, target });
      } else {
        const ab = job.data.buffer as ArrayBuffer;
        worker.postMessage({ type: 'hash', job: job.id, lengths: job.lengths, buffer: ab, byteOffset: job.data.byteOffset, byteLength: job.data.byteLength }, [ab]);
      }
    }
  }

  /** A target for job or batch `id` on `worker` (remembered for its replies), or undefined. */
  private targetFor(worker: Worker, id: number, bytes: number): ReadTarget | undefined {
    const target = this.readTarget?.(this.lanes.get(worker)!, bytes);
    if (target) this.targets.set(id, target.buffer);
    else this.targets.delete(id);
    return target;
  }

  private finish(id: number): Job | HashJob | undefined {
    const entry = this.running.get(id);
    if (!entry) return undefined;
    this.running.delete(id);
    // A file of a batch leaves its worker busy until the batch ends.
    if (entry.batch === undefined) this.release(entry.worker);
    return entry.job;
  }

  private release(worker: Worker): void {
    // Once closing, a worker stays as it is: terminate() refs it until it has exited, and an
    // unref here (a batch's end arriving during close) let the event loop end first, leaving
    // close() unsettled, so a CLI run that failed ended with exit code 13 and no error line.
    if (this.closed) return;
    worker.unref();
    this.idle.push(worker);
    this.dispatch();
  }

  private failJob(job: Job, err: Error): void {
    if (job.failed) return;
    job.failed = true;
    job.reject(err);
  }

  /** Queues `segment` for the job's callback, in order; a callback that throws fails the job. */
  private deliver(job: Job, segment: Segment): void {
    job.chain = job.chain.then(async () => {
      if (job.failed) return;
      try {
        await job.onSegment(segment);
      } catch (err) {
        job.failed = true;
        job.reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  private onBatch(worker: Worker, msg: BatchMessage): void {
    // Read into a target: the bytes are in the shared memory this thread gave, and stay there.
    const memory = msg.buffer ?? this.targets.get(msg.id);
    if (!memory) {
      const err = new Error(`internal error: batch ${msg.id} reported bytes read into no buffer`);
      for (const part of msg.parts) {
        const job = this.running.get(part.job)?.job;
        if (job?.kind === 'file') this.failJob(job, err);
      }
      return;
    }
    const data = Buffer.from(memory, msg.byteOffset, msg.byteLength);
    const settled: Promise<void>[] = [];
    let offset = 0;
    for (const part of msg.parts) {
      const job = this.running.get(part.job)?.job as Job | undefined;
      const start = offset;
      offset += part.size;
      if (!job) continue;
      if (part.message === undefined && part.lengths.length > 0) {
        this.deliver(job, { data: data.subarray(start, start + part.size), hashes: part.hashes, lengths: part.lengths });
      }
      settled.push(
        job.chain.then(() => {
          this.finish(job.id);
          if (part.message !== undefined) {
            job.failed = true;
            job.reject(new SourceReadError(job.path, part.message, part.code));
          } else if (!job.failed) job.resolve(part.size);
        }),
      );
    }
    // The buffer goes back once no segment of it is in use (nothing may keep a view of it); a
    // target's bytes are claimed by now, and the worker reads on where the next target says.
    void Promise.all(settled).then(() => {
      const next = msg.more && !this.closed && this.batches.has(msg.id) ? this.targetFor(worker, msg.id, this.unread(msg.id)) : undefined;
      if (msg.buffer) worker.postMessage({ type: 'ack', job: msg.id, buffer: msg.buffer, target: next }, [msg.buffer]);
      else worker.postMessage({ type: 'ack', job: msg.id, target: next });
    });
  }

  /** The bytes (when walked) of the files of batch `id` not reported yet. */
  private unread(id: number): number {
    let bytes = 0;
    for (const entry of this.running.values()) if (entry.batch === id && entry.job.kind === 'file') bytes += entry.job.sizeHint ?? 0;
    return bytes;
  }

  private onMessage(worker: Worker, msg: WorkerMessage): void {
    if (msg.type === 'batch') return this.onBatch(worker, msg);
    if (msg.type === 'batch-end') {
      this.targets.delete(msg.id);
      if (this.batches.delete(msg.id)) {
        // A batch that failed as a whole (not one of its files): fail what it left unanswered.
        if (msg.message !== undefined) {
          for (const [id, entry] of this.running) {
            if (entry.batch === msg.id && entry.job.kind === 'file') {
              this.running.delete(id);
              entry.job.failed = true;
              entry.job.reject(new Error(msg.message));
            }
          }
        }
        this.release(worker);
      }
      return;
    }
    const running = this.running.get(msg.job)?.job;
    if (!running) return;
    if (running.kind === 'hash') {
      if (msg.type === 'hashed') {
        this.finish(running.id);
        running.resolve({ data: Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength), hashes: msg.hashes });
      }
      return;
    }
    const job = running;
    switch (msg.type) {
      case 'segment': {
        const memory = msg.buffer ?? this.targets.get(job.id);
        if (!memory) {
          this.failJob(job, new Error(`internal error: file job ${job.id} reported bytes read into no buffer`));
          break;
        }
        this.deliver(job, { data: Buffer.from(memory, msg.byteOffset, msg.byteLength), hashes: msg.hashes, lengths: msg.lengths });
        // Hand the buffer back for reuse; nothing may keep a view of it past onSegment. A
        // target's bytes stay where they were read: the ack only lets the worker read on.
        job.chain = job.chain.then(() => (msg.buffer ? worker.postMessage({ type: 'ack', job: job.id, buffer: msg.buffer }, [msg.buffer]) : worker.postMessage({ type: 'ack', job: job.id })));
        break;
      }
      case 'need-target':
        // Every segment the worker sent is claimed once the chain has run. The unfinished chunk
        // moves here, in the same tick as the old target's pack may be sealed, before any
        // upload could take that memory.
        void job.chain.then(() => {
          let target: ReadTarget | undefined;
          try {
            const old = this.targets.get(job.id);
            target = this.closed || !old ? undefined : this.targetFor(worker, job.id, msg.bytes);
            if (target && target.room <= msg.byteLength) throw new Error(`internal error: a read target of ${target.room} bytes for an unfinished chunk of ${msg.byteLength}`);
            // Down or onto itself when both are in one pack (the pack ends before the chunk).
            if (target) Buffer.from(old!, msg.byteOffset, msg.byteLength).copy(Buffer.from(target.buffer, target.offset, msg.byteLength));
          } catch (err) {
            // The worker reads on into buffers of its own; the job has failed.
            target = undefined;
            this.targets.delete(job.id);
            this.failJob(job, err instanceof Error ? err : new Error(String(err)));
          }
          worker.postMessage({ type: 'target', job: job.id, target });
        });
        break;
      case 'done':
        void job.chain.then(() => {
          this.targets.delete(job.id);
          this.finish(job.id);
          if (!job.failed) job.resolve(msg.size);
        });
        break;
      case 'hashed':
        break;
      case 'error':
        void job.chain.then(() => {
          this.targets.delete(job.id);
          this.finish(job.id);
          job.failed = true;
          job.reject(new SourceReadError(job.path, msg.message, msg.code));
        });
        break;
    }
  }

  private onWorkerError(worker: Worker, err: Error): void {
    // A crashed worker fails the job it was running; the pool carries on without it.
    for (const [id, entry] of this.running) {
      if (entry.worker === worker) {
        this.running.delete(id);
        this.targets.delete(id);
        if (entry.job.kind === 'file') entry.job.failed = true;
        entry.job.reject(err);
      }
    }
    for (const [id, w] of this.batches) {
      if (w === worker) {
        this.batches.delete(id);
        this.targets.delete(id);
      }
    }
    const i = this.idle.indexOf(worker);
    if (i >= 0) this.idle.splice(i, 1);
    const w = this.workers.indexOf(worker);
    if (w >= 0) this.workers.splice(w, 1);
    // An uncaught exception has ended the thread already; this makes sure (close() no longer sees it).
    void worker.terminate();
    // With no worker left nothing would ever take the queued jobs: fail them too.
    if (this.workers.length === 0) this.cancelQueued(err);
  }
}

/** Small files a worker takes at once, at most (and at most one read's bytes). */
const MAX_BATCH_FILES = 32;

interface BatchMessage {
  type: 'batch';
  id: number;
  /** In file order; each file's bytes follow the previous file's in the buffer. */
  parts: { job: number; size: number; hashes: string[]; lengths: number[]; message?: string; code?: string }[];
  /** The read buffer, transferred; absent when the bytes were read into the batch's target. */
  buffer?: ArrayBuffer;
  /** Files of the batch follow (the worker waits for a target for them). */
  more: boolean;
  byteOffset: number;
  byteLength: number;
}

type WorkerMessage =
  | BatchMessage
  | { type: 'batch-end'; id: number; message?: string }
  | { type: 'segment'; job: number; hashes: string[]; lengths: number[]; buffer?: ArrayBuffer; byteOffset: number; byteLength: number }
  /** The worker's target is full: `bytes` for the next, whose start gets the unfinished chunk at `byteOffset`. */
  | { type: 'need-target'; job: number; bytes: number; byteOffset: number; byteLength: number }
  | { type: 'hashed'; job: number; hashes: string[]; buffer: ArrayBuffer; byteOffset: number; byteLength: number }
  | { type: 'done'; job: number; size: number }
  | { type: 'error'; job: number; message: string; code?: string };

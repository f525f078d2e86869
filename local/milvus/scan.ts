/**
 * The exact scan behind a simulated search, in a form a worker thread can run: every searchable
 * row's vector is regenerated from its seed (SHA-256 of `<collection id>/<key>`, see search.ts
 * `rowVector`) and scored against the query, and the best `limit` are kept. Milvus searches a
 * collection's segments in parallel on its query nodes' threads ("Milvus parallelizes queries
 * within a single segment", milvus-docs faq_search_segment_parallel; knowhere's search thread
 * pool), so a large scan is split into shares that run on worker threads at once, and the shares'
 * best hits are merged: the answer is the same as one scan's, because the best `limit` under a
 * total order (distance, then key) are found among the best `limit` of each share.
 *
 * `makeScanner` and `scoreRow` refer to nothing outside their bodies but each other, so their
 * source is what a worker evaluates (as core/datamover/chunker-pool.ts runs its chunker).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Metric types of float vectors; COSINE and IP rank by descending similarity, L2 by ascending distance. */
export type ScanMetric = 'COSINE' | 'IP' | 'L2';

/** Part of a run of consecutive keys (`first + from` … `first + to − 1`); `deletedOffsets` (ascending, from `first`) are skipped. */
export interface RunSlice {
  readonly first: bigint;
  readonly from: number;
  readonly to: number;
  readonly deletedOffsets: readonly number[];
}

/** What one scan (or one share of it) scores. */
export interface ScanShare {
  readonly collectionId: string;
  readonly query: readonly number[];
  readonly limit: number;
  readonly metric: ScanMetric;
  readonly runs: readonly RunSlice[];
  readonly listed: readonly bigint[];
}

/** A kept hit: the key and its distance (similarity for COSINE and IP). */
export interface ScanHit {
  pk: bigint;
  distance: number;
}

/** The scanner: `seedWords` (SHA-256's first four little-endian words of a message) and `scan`. */
export interface Scanner {
  /** Writes into `out` the words `digest.readUInt32LE(0, 4, 8, 12)` of SHA-256 of `message[0..length)`; `message` must hold `paddedLength(length)` bytes. */
  seedWords(message: Uint8Array, length: number, out: Uint32Array): void;
  paddedLength(length: number): number;
  /** The best `limit` rows of the share, best first (descending COSINE/IP similarity, ascending L2 distance; ties by ascending key). */
  scan(share: ScanShare): ScanHit[];
}

/**
 * Builds a {@link Scanner}. Refers to nothing outside its body but {@link scoreRow} (its source
 * runs in workers): SHA-256 as FIPS 180-4
 * §5.1.1 pads and §6.2.2 compresses, in 32-bit arithmetic; the vector generator is sfc32 seeded
 * with those words, as search.ts `rowVector`; the metric accumulates as `metricValue` does
 * (float32 components, float64 sums, one float32 rounding), so every distance is bit for bit
 * `metricValue(metric, query, rowVector(...))`.
 */
export function makeScanner(): Scanner {
  const K = Int32Array.from([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74,
    0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d,
    0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e,
    0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
    0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const INITIAL = Int32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const W = new Int32Array(64);
  const H = new Int32Array(8);
  const bswap = (x: number): number => ((x >>> 24) | ((x >>> 8) & 0xff00) | ((x << 8) & 0xff0000) | (x << 24)) >>> 0;
  // (t / 2^32) * 2 is t * 2^-31 exactly: scaling by a power of two does not round.


  const paddedLength = (length: number): number => Math.ceil((length + 9) / 64) * 64;

  function seedWords(message: Uint8Array, length: number, out: Uint32Array): void {
    const total = paddedLength(length);
    message[length] = 0x80;
    message.fill(0, length + 1, total - 4);
    const bits = length * 8; // messages here are far below 2^29 bytes: the high length word is 0
    message[total - 4] = bits >>> 24;
    message[total - 3] = (bits >>> 16) & 0xff;
    message[total - 2] = (bits >>> 8) & 0xff;
    message[total - 1] = bits & 0xff;
    H.set(INITIAL);
    for (let block = 0; block < total; block += 64) {
      for (let t = 0; t < 16; t++) {
        const i = block + t * 4;
        W[t] = (message[i]! << 24) | (message[i + 1]! << 16) | (message[i + 2]! << 8) | message[i + 3]!;
      }
      for (let t = 16; t < 64; t++) {
        const x = W[t - 15]!;
        const y = W[t - 2]!;
        const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        W[t] = (W[t - 16]! + s0 + W[t - 7]! + s1) | 0;
      }
      let a = H[0]!;
      let b = H[1]!;
      let c = H[2]!;
      let d = H[3]!;
      let e = H[4]!;
      let f = H[5]!;
      let g = H[6]!;
      let h = H[7]!;
      for (let t = 0; t < 64; t++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const ch = (e & f) ^ (~e & g);
        const t1 = (h + S1 + ch + K[t]! + W[t]!) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const maj = (a & b) ^ (a & c) ^ (b & c);
        const t2 = (S0 + maj) | 0;
        h = g;
        g = f;
        f = e;
        e = (d + t1) | 0;
        d = c;
        c = b;
        b = a;
        a = (t1 + t2) | 0;
      }
      H[0] = (H[0]! + a) | 0;
      H[1] = (H[1]! + b) | 0;
      H[2] = (H[2]! + c) | 0;
      H[3] = (H[3]! + d) | 0;
      H[4] = (H[4]! + e) | 0;
      H[5] = (H[5]! + f) | 0;
      H[6] = (H[6]! + g) | 0;
      H[7] = (H[7]! + h) | 0;
    }
    out[0] = bswap(H[0]!);
    out[1] = bswap(H[1]!);
    out[2] = bswap(H[2]!);
    out[3] = bswap(H[3]!);
  }

  function scan(share: ScanShare): ScanHit[] {
    const { limit } = share;
    if (limit <= 0) return [];
    const descending = share.metric !== 'L2';
    const before = (x: ScanHit, y: ScanHit): boolean => (x.distance !== y.distance ? (descending ? x.distance > y.distance : x.distance < y.distance) : x.pk < y.pk);
    const q = Float64Array.from(share.query);
    let qq = 0;
    for (let i = 0; i < q.length; i++) qq += q[i]! * q[i]!;
    const metric = share.metric === 'L2' ? 2 : share.metric === 'IP' ? 1 : 0;
    const best: ScanHit[] = [];
    const offer = (distance: number, pk: bigint): void => {
      if (best.length === limit) {
        // Most rows lose on distance alone; only a tie needs the key.
        const worst = best[limit - 1]!.distance;
        if (descending ? distance < worst : distance > worst) return;
      }
      const hit = { pk, distance };
      if (best.length === limit && !before(hit, best[limit - 1]!)) return;
      let at = best.length === limit ? limit - 1 : best.length;
      while (at > 0 && before(hit, best[at - 1]!)) {
        best[at] = best[at - 1]!;
        at--;
      }
      best[at] = hit;
    };
    const prefix: number[] = [];
    for (const byte of new TextEncoder().encode(`${share.collectionId}/`)) prefix.push(byte);
    let message = new Uint8Array(128);
    const seed = new Uint32Array(4);
    /** Writes `pk`'s decimal digits after the prefix; the message length. */
    const writeKey = (pk: bigint): number => {
      const digits = pk.toString();
      const length = prefix.length + digits.length;
      if (paddedLength(length) > message.length) message = new Uint8Array(paddedLength(length) * 2);
      message.set(prefix);
      for (let i = 0; i < digits.length; i++) message[prefix.length + i] = digits.charCodeAt(i);
      return length;
    };
    const scoreMessage = (length: number): number => {
      seedWords(message, length, seed);
      return scoreRow(q, qq, metric, seed[0]! | 0, seed[1]! | 0, seed[2]! | 0, seed[3]! | 0);
    };
    for (const pk of share.listed) offer(scoreMessage(writeKey(pk)), pk);
    for (const run of share.runs) {
      // The key's digits advance in place, as an odometer; a carry out of the first digit, or a
      // negative key (whose digits count down), rewrites them from the key.
      let d = 0;
      while (d < run.deletedOffsets.length && run.deletedOffsets[d]! < run.from) d++;
      let length = 0;
      let odometer = false;
      for (let i = run.from; i < run.to; i++) {
        if (odometer) {
          let at = length - 1;
          while (at >= prefix.length && message[at] === 57) message[at--] = 48;
          if (at >= prefix.length) message[at]!++;
          else length = writeKey(run.first + BigInt(i));
        } else {
          const pk = run.first + BigInt(i);
          length = writeKey(pk);
          odometer = pk >= 0n;
        }
        if (d < run.deletedOffsets.length && run.deletedOffsets[d] === i) {
          d++;
          continue;
        }
        offer(scoreMessage(length), run.first + BigInt(i));
      }
    }
    return best;
  }

  return { seedWords, paddedLength, scan };
}

/**
 * The distance of one row from its seed words (`a`…`d`) to query `q` (`qq` its squared norm):
 * the row's vector is generated (sfc32, as search.ts `rowVector`) and the metric accumulated in
 * the same pass, as `metricValue` does (float32 components, float64 sums, one float32 rounding),
 * so the distance is bit for bit `metricValue(metric, query, rowVector(...))`. `metric` is 0 for
 * COSINE, 1 for IP, 2 for L2. A plain function of its arguments, with no closure: the hot loop
 * keeps everything in registers. Module-level and self-contained, so a worker evaluates its
 * source beside the scanner's.
 */
export function scoreRow(q: Float64Array, qq: number, metric: number, a: number, b: number, c: number, d: number): number {
  // Int32 from here on, whatever the caller passed: the optimizing compiler then keeps the
  // generator's state in integer registers (a parameter it cannot type would make every step a
  // float64 operation, three times slower).
  a |= 0;
  b |= 0;
  c |= 0;
  d |= 0;
  const dim = q.length;
  if (metric === 2) {
    let l2 = 0;
    for (let i = 0; i < dim; i++) {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (c << 21) | (c >>> 11);
      c = (c + t) | 0;
      // (t / 2^32) * 2 - 1 is t * 2^-31 - 1 exactly: scaling by a power of two does not round.
      const diff = q[i]! - Math.fround((t >>> 0) * 4.656612873077393e-10 - 1);
      l2 += diff * diff;
    }
    return Math.fround(l2);
  }
  let dot = 0;
  let rr = 0;
  for (let i = 0; i < dim; i++) {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    const r = Math.fround((t >>> 0) * 4.656612873077393e-10 - 1);
    dot += q[i]! * r;
    rr += r * r;
  }
  if (metric === 1) return Math.fround(dot);
  return Math.fround(qq === 0 || rr === 0 ? 0 : dot / Math.sqrt(qq * rr));
}

/** Rows × dimensions below which a scan stays on the calling thread (a worker's start and messages cost more). */
const WORKER_THRESHOLD = 20_000_000;

/** A small pool of scan workers, started on first use and unref'd (they never keep a process alive). */
class ScanPool {
  private readonly idle: Worker[] = [];
  private readonly waiting: ((worker: Worker) => void)[] = [];
  private started = 0;
  private readonly dropped = new WeakSet<Worker>();

  constructor(readonly size: number) {}

  async run(share: ScanShare): Promise<ScanHit[]> {
    const worker = await this.take();
    let broken = false;
    try {
      return await new Promise<ScanHit[]>((resolve, reject) => {
        const onMessage = (msg: { hits?: ScanHit[]; error?: string }) => {
          cleanup();
          if (msg.error !== undefined) reject(new Error(`scan worker: ${msg.error}`));
          else resolve(msg.hits!);
        };
        const onError = (err: Error) => {
          broken = true;
          cleanup();
          reject(err);
        };
        const cleanup = () => {
          worker.off('message', onMessage);
          worker.off('error', onError);
        };
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.postMessage(share);
      });
    } finally {
      // A worker that failed is not handed out again; another is started in its place.
      if (broken) this.drop(worker);
      else this.give(worker);
    }
  }

  private async take(): Promise<Worker> {
    const free = this.idle.pop();
    if (free) return free;
    if (this.started < this.size) {
      this.started++;
      const worker = new Worker(WORKER_SOURCE, { eval: true });
      // An idle worker that fails is not used again (run's own listener rejects a running scan).
      worker.on('error', () => this.drop(worker));
      worker.unref();
      return worker;
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private drop(worker: Worker): void {
    const at = this.idle.indexOf(worker);
    if (at !== -1) this.idle.splice(at, 1);
    else if (this.dropped.has(worker)) return;
    this.dropped.add(worker);
    this.started--;
    void worker.terminate();
    const next = this.waiting.shift();
    if (next) void this.take().then(next);
  }

  private give(worker: Worker): void {
    const next = this.waiting.shift();
    if (next) next(worker);
    else this.idle.push(worker);
  }
}

// `__name` is what a transpiler that keeps function names (esbuild's keepNames, as tsx runs it)
// calls inside the functions whose source is embedded here.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
var __name = (target, value) => Object.defineProperty(target, 'name', { value, configurable: true });
const scoreRow = ${scoreRow.toString()};
const makeScanner = ${makeScanner.toString()};
const scanner = makeScanner();
parentPort.on('message', (share) => {
  try {
    parentPort.postMessage({ hits: scanner.scan(share) });
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
});
`;

let pool: ScanPool | undefined;
const local = makeScanner();

/** Splits the rows of `share` into `parts` shares of about equal row counts. */
function split(share: ScanShare, parts: number): ScanShare[] {
  const total = share.listed.length + share.runs.reduce((n, r) => n + (r.to - r.from), 0);
  const per = Math.ceil(total / parts);
  const shares: { runs: RunSlice[]; listed: bigint[]; rows: number }[] = [{ runs: [], listed: [], rows: 0 }];
  const current = () => {
    let s = shares[shares.length - 1]!;
    if (s.rows >= per) shares.push((s = { runs: [], listed: [], rows: 0 }));
    return s;
  };
  for (let i = 0; i < share.listed.length; i++) {
    const s = current();
    s.listed.push(share.listed[i]!);
    s.rows++;
  }
  for (const run of share.runs) {
    let from = run.from;
    while (from < run.to) {
      const s = current();
      const to = Math.min(run.to, from + (per - s.rows));
      s.runs.push({ first: run.first, from, to, deletedOffsets: run.deletedOffsets });
      s.rows += to - from;
      from = to;
    }
  }
  return shares.map((s) => ({ ...share, runs: s.runs, listed: s.listed }));
}

/** The best `limit` of several shares' best hits, best first, by the same order as each share's. */
function merge(parts: readonly ScanHit[][], limit: number, metric: ScanMetric): ScanHit[] {
  const descending = metric !== 'L2';
  return parts
    .flat()
    .sort((x, y) => (x.distance !== y.distance ? (descending ? y.distance - x.distance : x.distance - y.distance) : x.pk < y.pk ? -1 : x.pk > y.pk ? 1 : 0))
    .slice(0, limit);
}

/**
 * The best `share.limit` rows of the share, best first. A large scan (rows × dimension of at
 * least `options.workerThreshold`, default {@link WORKER_THRESHOLD}) runs on worker threads, one
 * share per core; a smaller one runs here, `rowsPerTurn` rows between two turns of the event
 * loop, so a long scan never stalls the process's other work.
 */
export async function scanRows(share: ScanShare, options: { rowsPerTurn: number; workerThreshold?: number; workers?: number }): Promise<ScanHit[]> {
  const rows = share.listed.length + share.runs.reduce((n, r) => n + (r.to - r.from), 0);
  const workers = Math.max(1, options.workers ?? availableParallelism());
  if (rows * share.query.length >= (options.workerThreshold ?? WORKER_THRESHOLD) && rows > 0) {
    pool ??= new ScanPool(workers);
    const parts = await Promise.all(split(share, pool.size).map((s) => pool!.run(s)));
    return merge(parts, share.limit, share.metric);
  }
  let best: ScanHit[] = [];
  let first = true;
  for (const part of split(share, Math.max(1, Math.ceil(rows / options.rowsPerTurn)))) {
    if (!first) await new Promise<void>((resolve) => setImmediate(resolve));
    first = false;
    best = merge([best, local.scan(part)], share.limit, share.metric);
  }
  return best;
}

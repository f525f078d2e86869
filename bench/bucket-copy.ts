/**
 * The object copy of an S3-backed Milvus (core/objectstore/bucket-copy.ts), measured: a full
 * backup, an incremental backup after about `--new-share` new objects, and a restore, each
 * driven page by page as the workflow will drive it. A measurement, not a timed test: it
 * reports, and fails only when a correctness check fails.
 *
 *   npm run bench:bucket-copy -- [--size-mib 256] [--new-share 0.05] [--seed 20261206]
 *                                [--concurrency 32] [--page-size 1000] [--multipart-threshold-mib 5120] [--json] [--keep]
 *
 * 1. The dataset: a Milvus root path (`files/`) in a bucket on s3rver, shaped as Milvus writes
 *    it: flushed segments of two collections, each with an insert binlog per field (row id,
 *    timestamp, primary key, a 128-dim float vector), a primary-key stats log, for some a delta
 *    log, and for most an HNSW index file. Rows per segment are log-uniform (20 to 5,000), and one
 *    segment in 30 is a large compacted one (20,000 to 50,000 rows), so most objects are small
 *    logs and a few are vector logs and indexes of tens of MiB. Content is seeded
 *    AES-CTR output (incompressible, as real binlogs are). Segments are added until the bytes
 *    reach `--size-mib`.
 * 2. Full: `startObjectCopy`, `copyPage` until done, `finishCopy`, timed end to end.
 * 3. Incremental: new segments are written until the new objects are `--new-share` of the old
 *    ones; then the same loop as a second backup, which copies only the new objects.
 * 4. Restore: `restoreCopy` of the incremental backup into another bucket, page by page.
 * 5. Checks: each commit counts every source object; the incremental copied exactly the new
 *    objects; every restored object has its source's key, size and MD5 (s3rver's ETag).
 *
 * Requests are counted by an SDK middleware on the copy client, by type, retries included
 * (List: ListObjectsV2; Head: HeadObject; Copy: CopyObject and UploadPartCopy; Put: PutObject
 * of manifest pages and commits; Other: GetObject of pages and commits, multipart create and
 * complete, retention). "Requests per GiB" divides by the GiB the run covers (the backup's
 * size), which is what a bill is proportional to.
 *
 * s3rver stores every object as a file, so a CopyObject there is a file copy on this machine's
 * disk, and a proxy in front of it (test/objectstore/copy-conditions-proxy.ts) adds what s3rver
 * lacks (the copy precondition, UploadPartCopy, truncated V2 listings). The seconds and MiB/s
 * are this machine's, not S3's; the request counts are what S3 would see.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { ListObjectsV2Command, PutObjectCommand, S3Client, type _Object } from '@aws-sdk/client-s3';
import { Command } from 'commander';
import { integer, share } from './options.js';
import S3rver from 's3rver';
import { mapBounded } from '../core/objectstore/bounded.js';
import { copyPage, finishCopy, restoreCopy, s3CopyBackend, startObjectCopy, startObjectRestore, type BackupCopyContext, type CopyTotals } from '../core/objectstore/bucket-copy.js';
import { CopyConditionsProxy } from '../test/objectstore/copy-conditions-proxy.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface BucketCopyBenchOptions {
  readonly sizeMiB: number;
  readonly newShare: number;
  readonly seed: number;
  readonly concurrency: number;
  readonly pageSize: number;
  readonly multipartThresholdMiB: number;
  readonly keep: boolean;
  readonly log: (line: string) => void;
}

type RequestType = 'List' | 'Head' | 'Copy' | 'Put' | 'Other';

export interface RunRow {
  readonly run: 'full' | 'incremental' | 'restore';
  readonly objects: number;
  readonly copied: number;
  readonly reused: number;
  /** Bytes the run covers (the backup's size) and bytes it copied. */
  readonly bytes: number;
  readonly bytesCopied: number;
  readonly seconds: number;
  readonly requests: Record<RequestType, number>;
}

export interface BucketCopyReport {
  readonly dataset: { readonly objects: number; readonly bytes: number; readonly newObjects: number; readonly newBytes: number };
  readonly rows: readonly RunRow[];
  readonly checks: { readonly passed: boolean; readonly problems: readonly string[] };
  readonly workDir: string;
}

const TYPE_OF: Record<string, RequestType> = {
  ListObjectsV2Command: 'List',
  HeadObjectCommand: 'Head',
  CopyObjectCommand: 'Copy',
  UploadPartCopyCommand: 'Copy',
  PutObjectCommand: 'Put',
};

/** Seeded incompressible bytes: AES-256-CTR of zeros under a key derived from the seed and a name. */
function bytesFor(seed: number, name: string, size: number): Buffer {
  const key = createHash('sha256').update(`${seed}:${name}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

/** A seeded PRNG (mulberry32): the dataset's shape is the same for the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The objects of one flushed segment, as Milvus names them under its root path. */
function segmentObjects(random: () => number, segmentId: number): { key: string; size: number }[] {
  const collection = segmentId % 2 === 0 ? 450001 : 450002;
  const partition = collection + 1;
  // Log-uniform 20 to 5,000 rows (many small segments: small flushes, L0 deltas), and one in 30 a
  // large compacted segment of 20,000 to 50,000 rows (its vector log and index file tens of MiB).
  const rows = random() < 1 / 30 ? Math.round(20_000 + 30_000 * random()) : Math.round(20 * 250 ** random());
  const log = (field: number, n: number): string => `insert_log/${collection}/${partition}/${segmentId}/${field}/${segmentId * 10 + n}`;
  const out = [
    { key: log(0, 1), size: 8 * rows + 64 }, // row id
    { key: log(1, 2), size: 8 * rows + 64 }, // timestamp
    { key: log(100, 3), size: 8 * rows + 64 }, // primary key
    { key: log(101, 4), size: 512 * rows + 64 }, // 128-dim float32 vector
    { key: `stats_log/${collection}/${partition}/${segmentId}/100/${segmentId * 10 + 5}`, size: 1024 + Math.round(rows / 8) }, // pk bloom filter
  ];
  if (random() < 0.3) out.push({ key: `delta_log/${collection}/${partition}/${segmentId}/${segmentId * 10 + 6}`, size: 64 + 16 * Math.round(rows * 0.02) });
  if (rows >= 1000) out.push({ key: `index_files/${segmentId * 10 + 7}/1/${partition}/${segmentId}/HNSW_${segmentId}`, size: 600 * rows });
  return out;
}

export async function runBucketCopyBench(o: BucketCopyBenchOptions): Promise<BucketCopyReport> {
  const workDir = await mkdtemp(join(tmpdir(), 'mg-bench-bucket-copy-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(workDir, 's3rver'),
    configureBuckets: ['milvus', 'vault', 'restored'].map((name) => ({ name, configs: [] })),
  });
  const { port } = await server.run();
  const proxy = new CopyConditionsProxy(port);
  const endpoint = await proxy.start();
  const clientFor = (url: string): S3Client =>
    new S3Client({ endpoint: url, forcePathStyle: true, region: 'us-east-1', credentials: KEYS, maxAttempts: 3, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  const direct = clientFor(`http://127.0.0.1:${port}`);
  const client = clientFor(endpoint);
  const counts: Record<RequestType, number> = { List: 0, Head: 0, Copy: 0, Put: 0, Other: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      counts[TYPE_OF[(context as { commandName?: string }).commandName ?? ''] ?? 'Other']++;
      return next(args);
    },
    { step: 'finalizeRequest', name: 'countRequests' },
  );
  const problems: string[] = [];
  try {
    const random = prng(o.seed);
    let segment = 449_000_000_000_000;
    const write = async (objects: { key: string; size: number }[]): Promise<void> => {
      await mapBounded(objects, 16, (x) => direct.send(new PutObjectCommand({ Bucket: 'milvus', Key: `files/${x.key}`, Body: bytesFor(o.seed, x.key, x.size) })));
    };
    const dataset: { key: string; size: number }[] = [];
    let bytes = 0;
    while (bytes < o.sizeMiB * MiB) {
      const objects = segmentObjects(random, segment++);
      dataset.push(...objects);
      bytes += objects.reduce((n, x) => n + x.size, 0);
    }
    o.log(`seeding ${dataset.length} objects, ${(bytes / MiB).toFixed(1)} MiB, into s3://milvus/files/ on s3rver`);
    await write(dataset);

    const ctx: BackupCopyContext = {
      backend: s3CopyBackend({
        client,
        vault: { bucket: 'vault', prefix: 'vault' },
        multipart: { threshold: o.multipartThresholdMiB * MiB, partSize: Math.max(5 * MiB, Math.min(512 * MiB, o.multipartThresholdMiB * MiB)) },
      }),
      source: { bucket: 'milvus', prefix: 'files' },
      concurrency: o.concurrency,
      pageSize: o.pageSize,
    };
    const rows: RunRow[] = [];
    const measure = async <T>(f: () => Promise<T>): Promise<{ value: T; seconds: number; requests: Record<RequestType, number> }> => {
      for (const k of Object.keys(counts) as RequestType[]) counts[k] = 0;
      const t0 = performance.now();
      const value = await f();
      return { value, seconds: (performance.now() - t0) / 1000, requests: { ...counts } };
    };
    const backup = async (backupId: string) => {
      let cursor = startObjectCopy(backupId);
      while (!cursor.done) cursor = await copyPage(ctx, cursor);
      return { totals: cursor.totals, commit: await finishCopy(ctx, cursor) };
    };
    const row = (run: RunRow['run'], t: CopyTotals, m: { seconds: number; requests: Record<RequestType, number> }): RunRow => ({
      run,
      objects: t.objects,
      copied: t.copied,
      reused: t.reused,
      bytes: t.bytes,
      bytesCopied: t.bytesCopied,
      seconds: m.seconds,
      requests: m.requests,
    });

    o.log('full backup');
    const full = await measure(() => backup('full'));
    rows.push(row('full', full.value.totals, full));
    if (full.value.commit.objects !== dataset.length) problems.push(`the full backup's commit counts ${full.value.commit.objects} objects where the source holds ${dataset.length}`);
    if (full.value.totals.copied !== dataset.length) problems.push(`the full backup copied ${full.value.totals.copied} objects of ${dataset.length}`);

    const added: { key: string; size: number }[] = [];
    while (added.length < Math.ceil(dataset.length * o.newShare)) added.push(...segmentObjects(random, segment++));
    const newBytes = added.reduce((n, x) => n + x.size, 0);
    o.log(`adding ${added.length} objects, ${(newBytes / MiB).toFixed(1)} MiB`);
    await write(added);

    o.log('incremental backup');
    const incremental = await measure(() => backup('incremental'));
    rows.push(row('incremental', incremental.value.totals, incremental));
    if (incremental.value.totals.copied !== added.length) problems.push(`the incremental backup copied ${incremental.value.totals.copied} objects where ${added.length} were new`);
    if (incremental.value.commit.objects !== dataset.length + added.length) problems.push(`the incremental backup's commit counts ${incremental.value.commit.objects} objects where the source holds ${dataset.length + added.length}`);

    o.log('restore of the incremental backup');
    const restored = await measure(async () => {
      let cursor = startObjectRestore('incremental');
      while (!cursor.done) cursor = await restoreCopy(ctx, { backupId: 'incremental', sha256: incremental.value.commit.sha256 }, { bucket: 'restored', prefix: 'files' }, cursor);
      return cursor;
    });
    rows.push({ run: 'restore', objects: restored.value.objects, copied: restored.value.objects, reused: 0, bytes: restored.value.bytes, bytesCopied: restored.value.bytes, seconds: restored.seconds, requests: restored.requests });

    const listAll = async (bucket: string): Promise<Map<string, _Object>> => {
      const out = new Map<string, _Object>();
      let after: string | undefined;
      for (;;) {
        // Through the proxy: s3rver itself cannot answer a truncated V2 listing (see the proxy).
        const page = await clientFor(endpoint).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'files/', ...(after ? { StartAfter: after } : {}) }));
        for (const x of page.Contents ?? []) out.set(x.Key!, x);
        if (!page.IsTruncated || !page.Contents?.length) return out;
        after = page.Contents[page.Contents.length - 1]!.Key!;
      }
    };
    const [sourceObjects, restoredObjects] = await Promise.all([listAll('milvus'), listAll('restored')]);
    for (const [key, s] of sourceObjects) {
      const r = restoredObjects.get(key);
      if (!r) problems.push(`restore: ${key} is missing`);
      else if (r.Size !== s.Size || r.ETag !== s.ETag) problems.push(`restore: ${key} has size ${r.Size} and ETag ${r.ETag} where the source has ${s.Size} and ${s.ETag}`);
    }
    if (restoredObjects.size !== sourceObjects.size) problems.push(`restore: ${restoredObjects.size} objects where the source holds ${sourceObjects.size}`);

    return { dataset: { objects: dataset.length, bytes, newObjects: added.length, newBytes }, rows, checks: { passed: problems.length === 0, problems }, workDir };
  } finally {
    await proxy.stop();
    await server.close();
    if (!o.keep) await rm(workDir, { recursive: true, force: true });
  }
}

export function formatReport(r: BucketCopyReport): string {
  const head = ['run', 'objects', 'copied', 'reused', 'GiB', 'GiB copied', 'seconds', 'MiB/s copied', 'objects/s', 'requests', 'List/GiB', 'Head/GiB', 'Copy/GiB', 'Put/GiB', 'Other/GiB'];
  const body = r.rows.map((x) => {
    const gib = x.bytes / GiB;
    const per = (n: number): string => (gib > 0 ? (n / gib).toFixed(1) : '-');
    return [
      x.run,
      String(x.objects),
      String(x.copied),
      String(x.reused),
      gib.toFixed(3),
      (x.bytesCopied / GiB).toFixed(3),
      x.seconds.toFixed(2),
      (x.bytesCopied / MiB / x.seconds).toFixed(1),
      (x.objects / x.seconds).toFixed(0),
      String(Object.values(x.requests).reduce((a, b) => a + b, 0)),
      per(x.requests.List),
      per(x.requests.Head),
      per(x.requests.Copy),
      per(x.requests.Put),
      per(x.requests.Other),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const d = r.dataset;
  return [
    `dataset: ${d.objects} objects, ${(d.bytes / MiB).toFixed(1)} MiB; incremental adds ${d.newObjects} objects, ${(d.newBytes / MiB).toFixed(1)} MiB`,
    '',
    line(head),
    rule,
    ...body.map(line),
    '',
    'Requests per GiB divide by the GiB each run covers. Copy counts CopyObject and UploadPartCopy;',
    'Other counts GetObject of manifest pages and commits, multipart create/complete and retention.',
    "s3rver copies through this machine's disk (behind a proxy adding S3's copy precondition), so",
    "seconds and MiB/s are the machine's, not S3's; the request counts are what S3 would see.",
    r.checks.passed ? 'checks: passed' : `checks: FAILED\n${r.checks.problems.map((p) => `  - ${p}`).join('\n')}`,
  ].join('\n');
}


async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('bench:bucket-copy')
    .description('full and incremental object copy of an S3-backed Milvus, and its restore, on s3rver')
    .option('--size-mib <n>', 'bytes of the Milvus root path at the full backup', integer(1), 256)
    .option('--new-share <share>', 'new objects before the incremental backup, as a share of the existing ones', share, 0.05)
    .option('--seed <n>', 'seed of the dataset', integer(0), 20261206)
    .option('--concurrency <n>', 'objects copied at once', integer(1), 32)
    .option('--page-size <n>', 'keys per copyPage call (at most 1000)', integer(1), 1000)
    .option('--multipart-threshold-mib <n>', 'objects above this are copied in parts', integer(1), 5120)
    .option('--json', 'print the report as JSON instead of a table', false)
    .option('--keep', 'keep the working directory (s3rver buckets)', false)
    .parse([...argv]);
  const o = program.opts<{ sizeMib: number; newShare: number; seed: number; concurrency: number; pageSize: number; multipartThresholdMib: number; json: boolean; keep: boolean }>();
  const report = await runBucketCopyBench({
    sizeMiB: o.sizeMib,
    newShare: o.newShare,
    seed: o.seed,
    concurrency: o.concurrency,
    pageSize: Math.min(1000, o.pageSize),
    multipartThresholdMiB: Math.min(5120, o.multipartThresholdMib),
    keep: o.keep,
    log: (l) => void process.stderr.write(`${l}\n`),
  });
  process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
  if (o.keep) process.stderr.write(`kept ${report.workDir}\n`);
  return report.checks.passed ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = await main(process.argv);

/**
 * The object copy of an S3-backed Milvus (core/objectstore/bucket-copy.ts), measured: a full
 * backup, an incremental backup after about `--new-share` new objects, and a restore, each
 * driven page by page as the workflow will drive it. A measurement, not a timed test: it
 * reports, and fails only when a correctness check fails.
 *
 *   npm run bench:bucket-copy -- [--backend s3|directory] [--size-mib 256] [--new-share 0.05] [--seed 20261206]
 *                                [--concurrency 32] [--page-size 1000] [--multipart-threshold-mib 5120] [--json] [--keep]
 *
 * 1. The dataset: a Milvus root path (`files/`) in a bucket on s3rver (or, with `--backend
 *    directory`, in a bucket directory as the local cluster has it, the vault a FileVaultStore), shaped as Milvus writes
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
 * With `--backend directory` the same engine runs on directoryCopyBackend: its file operations are
 * counted as the S3 requests they stand for (a listing, a vault head, a copy, a page write), and
 * its listing reads every listed file to hash it, which is what an incremental backup there pays
 * for objects it does not copy.
 *
 * s3rver stores every object as a file, so a CopyObject there is a file copy on this machine's
 * disk, and a proxy in front of it (test/objectstore/copy-conditions-proxy.ts) adds what s3rver
 * lacks (the copy precondition, UploadPartCopy, truncated V2 listings). The seconds and MiB/s
 * are this machine's, not S3's; the request counts are what S3 would see.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Command, Option } from 'commander';
import { integer, share } from './options.js';
import S3rver from 's3rver';
import { mapBounded } from '../core/objectstore/bounded.js';
import { copyPage, directoryCopyBackend, finishCopy, restoreCopy, s3CopyBackend, startObjectCopy, startObjectRestore, type BackupCopyContext, type CopyBackend, type CopyTotals } from '../core/objectstore/bucket-copy.js';
import { noRequests } from '../core/objectstore/manifest.js';
import { CopyConditionsProxy } from '../test/objectstore/copy-conditions-proxy.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface BucketCopyBenchOptions {
  /** `s3`: s3rver, server-side copies; `directory`: bucket directories and a FileVaultStore (the local cluster). */
  readonly backend: 's3' | 'directory';
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
  readonly backend: 's3' | 'directory';
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

/** Where a run's buckets and vault are: the copy context, and what seeds and checks them. */
interface BenchEnvironment {
  readonly ctx: BackupCopyContext;
  /** Where the Milvus root path is, for the log. */
  readonly where: string;
  /** Writes objects under `files/` of the Milvus bucket, as Milvus would. */
  write(objects: readonly { key: string; size: number }[]): Promise<void>;
  /** Every object under `files/` of a bucket, with its size and ETag (uncounted). */
  listAll(bucket: string): Promise<Map<string, { size: number; etag: string }>>;
  close(): Promise<void>;
}

/** s3rver behind the copy-conditions proxy; requests counted by an SDK middleware, retries included. */
async function s3Environment(workDir: string, o: BucketCopyBenchOptions, counts: Record<RequestType, number>): Promise<BenchEnvironment> {
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
  client.middlewareStack.add(
    (next, context) => async (args) => {
      counts[TYPE_OF[(context as { commandName?: string }).commandName ?? ''] ?? 'Other']++;
      return next(args);
    },
    { step: 'finalizeRequest', name: 'countRequests' },
  );
  return {
    ctx: {
      backend: s3CopyBackend({
        client,
        vault: { bucket: 'vault', prefix: 'vault' },
        multipart: { threshold: o.multipartThresholdMiB * MiB, partSize: Math.max(5 * MiB, Math.min(512 * MiB, o.multipartThresholdMiB * MiB)) },
      }),
      source: { bucket: 'milvus', prefix: 'files' },
      concurrency: o.concurrency,
      pageSize: o.pageSize,
    },
    where: 's3://milvus/files/ on s3rver',
    write: async (objects) => {
      await mapBounded(objects, 16, (x) => direct.send(new PutObjectCommand({ Bucket: 'milvus', Key: `files/${x.key}`, Body: bytesFor(o.seed, x.key, x.size) })));
    },
    listAll: async (bucket) => {
      const out = new Map<string, { size: number; etag: string }>();
      let after: string | undefined;
      for (;;) {
        // Through the proxy: s3rver itself cannot answer a truncated V2 listing (see the proxy).
        const page = await clientFor(endpoint).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'files/', ...(after ? { StartAfter: after } : {}) }));
        for (const x of page.Contents ?? []) out.set(x.Key!, { size: x.Size ?? 0, etag: x.ETag ?? '' });
        if (!page.IsTruncated || !page.Contents?.length) return out;
        after = page.Contents[page.Contents.length - 1]!.Key!;
      }
    },
    close: async () => {
      await proxy.stop();
      await server.close();
    },
  };
}

/**
 * Bucket directories and a FileVaultStore, as on the local embedded cluster (directoryCopyBackend).
 * Its file operations are counted in the request types S3 would see for them, by a wrapper of
 * the backend and of its vault's `put` and `get`.
 */
async function directoryEnvironment(workDir: string, o: BucketCopyBenchOptions, counts: Record<RequestType, number>): Promise<BenchEnvironment> {
  const bucketsDir = join(workDir, 'buckets');
  await Promise.all(['milvus', 'restored', '.staging'].map((b) => mkdir(join(bucketsDir, b), { recursive: true })));
  const raw = directoryCopyBackend({ bucketsDir, vaultDir: join(workDir, 'vault') });
  const vault = new Proxy(raw.vault, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (name === 'put') counts.Put++;
        if (name === 'get') counts.Other++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const backend: CopyBackend = {
    vault,
    url: (bucket, key) => raw.url(bucket, key),
    listSource: (bucket, page, c) => (counts.List++, raw.listSource(bucket, page, c)),
    headVault: (key, expected, c) => (counts.Head++, raw.headVault(key, expected, c)),
    copyToVault: (from, key, options, c, roles) => (counts.Copy++, raw.copyToVault(from, key, options, c, roles)),
    extendRetention: (key, current, until, c) => (counts.Other++, raw.extendRetention(key, current, until, c)),
    copyFromVault: (from, to, c, roles) => (counts.Copy++, raw.copyFromVault(from, to, c, roles)),
  };
  let staged = 0;
  return {
    ctx: { backend, source: { bucket: 'milvus', prefix: 'files' }, concurrency: o.concurrency, pageSize: o.pageSize },
    where: `${raw.url('milvus', 'files/')}`,
    write: async (objects) => {
      // As the local Milvus writes: into .staging, then renamed into place.
      await mapBounded(objects, 16, async (x) => {
        const tmp = join(bucketsDir, '.staging', `bench-${staged++}`);
        await writeFile(tmp, bytesFor(o.seed, x.key, x.size));
        const target = join(bucketsDir, 'milvus', 'files', ...x.key.split('/'));
        await mkdir(dirname(target), { recursive: true });
        await rename(tmp, target);
      });
    },
    listAll: async (bucket) => {
      const out = new Map<string, { size: number; etag: string }>();
      let after: string | undefined;
      for (;;) {
        const page = await raw.listSource(bucket, { prefix: 'files/', maxKeys: 1000, ...(after ? { startAfter: after } : {}) }, noRequests());
        for (const x of page.objects) out.set(x.key, { size: x.size, etag: x.etag });
        if (!page.truncated || page.objects.length === 0) return out;
        after = page.objects[page.objects.length - 1]!.key;
      }
    },
    close: async () => {},
  };
}

export async function runBucketCopyBench(o: BucketCopyBenchOptions): Promise<BucketCopyReport> {
  const workDir = await mkdtemp(join(tmpdir(), 'mg-bench-bucket-copy-'));
  const counts: Record<RequestType, number> = { List: 0, Head: 0, Copy: 0, Put: 0, Other: 0 };
  const env = o.backend === 'directory' ? await directoryEnvironment(workDir, o, counts) : await s3Environment(workDir, o, counts);
  const { ctx } = env;
  const problems: string[] = [];
  try {
    const random = prng(o.seed);
    let segment = 449_000_000_000_000;
    const write = env.write;
    const dataset: { key: string; size: number }[] = [];
    let bytes = 0;
    while (bytes < o.sizeMiB * MiB) {
      const objects = segmentObjects(random, segment++);
      dataset.push(...objects);
      bytes += objects.reduce((n, x) => n + x.size, 0);
    }
    o.log(`seeding ${dataset.length} objects, ${(bytes / MiB).toFixed(1)} MiB, into ${env.where}`);
    await write(dataset);

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

    const [sourceObjects, restoredObjects] = await Promise.all([env.listAll('milvus'), env.listAll('restored')]);
    for (const [key, s] of sourceObjects) {
      const r = restoredObjects.get(key);
      if (!r) problems.push(`restore: ${key} is missing`);
      else if (r.size !== s.size || r.etag !== s.etag) problems.push(`restore: ${key} has size ${r.size} and ETag ${r.etag} where the source has ${s.size} and ${s.etag}`);
    }
    if (restoredObjects.size !== sourceObjects.size) problems.push(`restore: ${restoredObjects.size} objects where the source holds ${sourceObjects.size}`);

    return { backend: o.backend, dataset: { objects: dataset.length, bytes, newObjects: added.length, newBytes }, rows, checks: { passed: problems.length === 0, problems }, workDir };
  } finally {
    await env.close();
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
    `backend: ${r.backend}; dataset: ${d.objects} objects, ${(d.bytes / MiB).toFixed(1)} MiB; incremental adds ${d.newObjects} objects, ${(d.newBytes / MiB).toFixed(1)} MiB`,
    '',
    line(head),
    rule,
    ...body.map(line),
    '',
    'Requests per GiB divide by the GiB each run covers. Copy counts CopyObject and UploadPartCopy;',
    'Other counts GetObject of manifest pages and commits, multipart create/complete and retention.',
    ...(r.backend === 's3'
      ? ["s3rver copies through this machine's disk (behind a proxy adding S3's copy precondition), so", "seconds and MiB/s are the machine's, not S3's; the request counts are what S3 would see."]
      : ['Directories and a FileVaultStore on this disk (the local cluster): requests are file operations', 'counted as the S3 requests they stand for; a listing reads every listed file to hash it (its ETag).']),
    r.checks.passed ? 'checks: passed' : `checks: FAILED\n${r.checks.problems.map((p) => `  - ${p}`).join('\n')}`,
  ].join('\n');
}


async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('bench:bucket-copy')
    .description('full and incremental object copy of an S3-backed Milvus, and its restore, on s3rver or on bucket directories')
    .option('--size-mib <n>', 'bytes of the Milvus root path at the full backup', integer(1), 256)
    .option('--new-share <share>', 'new objects before the incremental backup, as a share of the existing ones', share, 0.05)
    .option('--seed <n>', 'seed of the dataset', integer(0), 20261206)
    .option('--concurrency <n>', 'objects copied at once', integer(1), 32)
    .option('--page-size <n>', 'keys per copyPage call (at most 1000)', integer(1), 1000)
    .option('--multipart-threshold-mib <n>', 'objects above this are copied in parts', integer(1), 5120)
    .addOption(new Option('--backend <backend>', 'where the buckets and the vault are: s3 (s3rver) or directory (bucket directories and a FileVaultStore, as on the local cluster)').choices(['s3', 'directory']).default('s3'))
    .option('--json', 'print the report as JSON instead of a table', false)
    .option('--keep', 'keep the working directory (s3rver buckets)', false)
    .parse([...argv]);
  const o = program.opts<{ backend: 's3' | 'directory'; sizeMib: number; newShare: number; seed: number; concurrency: number; pageSize: number; multipartThresholdMib: number; json: boolean; keep: boolean }>();
  const report = await runBucketCopyBench({
    backend: o.backend,
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

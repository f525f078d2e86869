/**
 * Benchmark of the data mover against restic on the same data, on this machine.
 *
 *   npm run bench:datamover -- [--size-mib 2048] [--db-mib 256] [--seed 42] [--dir PATH] [--keep]
 *
 * 1. Builds a reproducible MinIO-shaped dataset: incompressible segment files from 64 KiB to
 *    8 MiB (log-uniform sizes) under a Milvus bucket layout, plus an etcd bbolt-sized db file.
 *    Content is an AES-CTR keystream seeded by --seed, so every run sees the same bytes.
 * 2. Ours runs as the Job image runs it: the esbuild bundle of docker/datamover/entry.ts.
 *    Full backup with each tool, then a ~1% change (20 new segment files and a 4 MiB rewrite
 *    inside the db file), an incremental backup with each tool, and a restore of the latest
 *    backup with each tool. Each run is a separate process timed by /usr/bin/time (wall
 *    seconds and peak RSS) after a `sync`; both tools read from a warm page cache. Bytes
 *    uploaded is the growth of the vault / repository on disk.
 * 3. Checks both restores against the source, prints a table and writes JSON to bench-results/.
 *
 * restic is the Debian package (`apt-get install -y restic`); without it the comparison
 * columns are skipped with a message. This is a measurement, not a test: it asserts nothing
 * about time, it reports.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { bundleDatamover } from '../docker/datamover/bundle.js';

const MiB = 1024 * 1024;
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '2048' },
    'db-mib': { type: 'string', default: '256' },
    seed: { type: 'string', default: '42' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const sizeMiB = Number(args['size-mib']);
const dbMiB = Number(args['db-mib']);
if (!(sizeMiB > 0) || !(dbMiB >= 8)) throw new Error('--size-mib must be positive and --db-mib at least 8');
const work = resolve(args.dir ?? join(tmpdir(), 'milvus-guard-bench'));

/** Deterministic incompressible bytes: AES-128-CTR keystream keyed by (seed, stream name). */
function keystream(seed: string, name: string): (n: number) => Buffer {
  const key = createHash('sha256').update(`key:${seed}:${name}`).digest().subarray(0, 16);
  const iv = createHash('sha256').update(`iv:${seed}:${name}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, iv);
  return (n) => cipher.update(Buffer.alloc(n));
}

/** Deterministic numbers in [0, 1) for sizes and names. */
function prng(seed: string): () => number {
  let counter = 0;
  return () => createHash('sha256').update(`${seed}:${counter++}`).digest().readUInt32BE(0) / 2 ** 32;
}

function writeRandomFile(path: string, size: number, bytes: (n: number) => Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  for (let done = 0; done < size; ) {
    const n = Math.min(8 * MiB, size - done);
    writeSync(fd, bytes(n));
    done += n;
  }
  closeSync(fd);
}

/** One MinIO object of a Milvus segment: `<bucket>/files/insert_log/<coll>/<part>/<seg>/<field>/<log>/part.1`. */
function segmentPath(root: string, rand: () => number, i: number): string {
  const coll = 449000000000000000n + BigInt(Math.floor(rand() * 4));
  const seg = 449000000000100000n + BigInt(Math.floor(i / 8));
  return join(root, 'minio', 'milvus-bucket', 'files', 'insert_log', `${coll}`, `${coll + 1n}`, `${seg}`, `${100 + (i % 8)}`, `${seg + BigInt(i)}`, 'part.1');
}

const MIN_SEGMENT = 64 * 1024;
const MAX_SEGMENT = 8 * MiB;
const logUniform = (r: number): number => Math.round(Math.exp(Math.log(MIN_SEGMENT) + r * (Math.log(MAX_SEGMENT) - Math.log(MIN_SEGMENT))));

function buildDataset(root: string, seed: string): { files: number; bytes: number } {
  const rand = prng(`sizes:${seed}`);
  const bytes = keystream(seed, 'segments');
  let total = 0;
  let i = 0;
  while (total < sizeMiB * MiB) {
    const size = Math.min(logUniform(rand()), sizeMiB * MiB - total);
    writeRandomFile(segmentPath(root, rand, i++), size, bytes);
    total += size;
  }
  writeRandomFile(join(root, 'etcd', 'member', 'snap', 'db'), dbMiB * MiB, keystream(seed, 'etcd'));
  return { files: i + 1, bytes: total + dbMiB * MiB };
}

/** The ~1% change: 20 new segment files and 4 MiB rewritten in the middle of the db file. */
function changeDataset(root: string, seed: string): number {
  const rand = prng(`change:${seed}`);
  const bytes = keystream(seed, 'change');
  let changed = 0;
  for (let i = 0; i < 20; i++) {
    const size = logUniform(rand());
    writeRandomFile(segmentPath(root, rand, 1_000_000 + i), size, bytes);
    changed += size;
  }
  const fd = openSync(join(root, 'etcd', 'member', 'snap', 'db'), 'r+');
  writeSync(fd, bytes(4 * MiB), 0, 4 * MiB, Math.floor(dbMiB / 2) * MiB + 12345);
  closeSync(fd);
  return changed + 4 * MiB;
}

function diskUsage(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += statSync(join(e.parentPath, e.name)).size;
  }
  return total;
}

interface Timed {
  seconds: number;
  peakRssMiB: number;
  stdout: string;
}

function timed(cmd: string, argv: string[], env: NodeJS.ProcessEnv = {}): Timed {
  // Start every measurement with no dirty pages left by the previous step (the dataset, the
  // other tool's repository), so no tool pays for another's writeback.
  spawnSync('sync');
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...argv], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 256 * MiB });
  const last = r.stderr.trim().split('\n').pop() ?? '';
  const m = /^([\d.]+) (\d+)$/.exec(last);
  if (r.status !== 0 || !m) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { seconds: Number(m[1]), peakRssMiB: Number(m[2]) / 1024, stdout: r.stdout };
}

function treesEqual(a: string, b: string): boolean {
  return spawnSync('diff', ['-r', '-q', '--no-dereference', a, b], { stdio: 'inherit' }).status === 0;
}

function hasRestic(): string | undefined {
  const r = spawnSync('restic', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

// --- run --------------------------------------------------------------------------------------

if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time is needed to measure peak RSS: apt-get install -y time');
rmSync(work, { recursive: true, force: true });
const data = join(work, 'data');
const vaultDir = join(work, 'vault');
const resticRepo = join(work, 'restic-repo');
mkdirSync(vaultDir, { recursive: true });
const vaultUrl = pathToFileURL(vaultDir).href;
// What the Job image runs: the datamover commands bundled into one module (docker/datamover).
const cli = await bundleDatamover(join(work, 'bundle'));
const restic = hasRestic();
if (!restic) process.stderr.write('restic not found: skipping the comparison (install it with `apt-get install -y restic`)\n');

process.stderr.write(`building the dataset in ${data} (${sizeMiB} MiB of segments + ${dbMiB} MiB db, seed ${args.seed})...\n`);
const dataset = buildDataset(data, args.seed!);
const resticEnv = { RESTIC_PASSWORD: 'milvus-guard-bench', RESTIC_CACHE_DIR: join(work, 'restic-cache') };
if (restic) timed('restic', ['init', '--repo', resticRepo, '-q'], resticEnv);

interface Row {
  operation: string;
  megabytes: number;
  ours: Timed & { bytesUploaded?: number };
  restic?: Timed & { bytesUploaded?: number };
}
const rows: Row[] = [];
const ours = (argv: string[]): Timed => timed('node', ['--no-warnings', cli, 'datamover', ...argv]);
const step = (text: string): void => void process.stderr.write(`${text}...\n`);

/** Backs `data` up with ours (as `backupId`) and restic; bytes uploaded is what each repository grew by. */
function backupBoth(name: string, backupId: string): { ours: Timed & { bytesUploaded: number }; restic?: Timed & { bytesUploaded: number } } {
  step(`${name} (ours)`);
  let before = diskUsage(vaultDir);
  const oursRun = ours(['backup', '--source', data, '--vault', vaultUrl, '--volume', 'milvus-data', '--backup-id', backupId, '--json']);
  const oursUp = diskUsage(vaultDir) - before;
  if (!restic) return { ours: { ...oursRun, bytesUploaded: oursUp } };
  step(`${name} (restic)`);
  before = diskUsage(resticRepo);
  const resticRun = timed('restic', ['--repo', resticRepo, 'backup', '--host', 'bench', '-q', data], resticEnv);
  return { ours: { ...oursRun, bytesUploaded: oursUp }, restic: { ...resticRun, bytesUploaded: diskUsage(resticRepo) - before } };
}

rows.push({ operation: 'full backup', megabytes: dataset.bytes / MiB, ...backupBoth('full backup', 'full') });

step('changing ~1% of the data');
const bytesChanged = changeDataset(data, args.seed!);

const incremental = backupBoth('incremental backup', 'incr');
const totalAfter = diskUsage(data);
rows.push({ operation: 'incremental (1%)', megabytes: totalAfter / MiB, ...incremental });

step('restore (ours)');
const oursTarget = join(work, 'restore-ours');
const oursRestore = ours(['restore', '--vault', vaultUrl, '--volume', 'milvus-data', '--backup-id', 'incr', '--target', oursTarget, '--json']);
let resticRestore: Timed | undefined;
const resticTarget = join(work, 'restore-restic');
if (restic) {
  step('restore (restic)');
  resticRestore = timed('restic', ['--repo', resticRepo, 'restore', 'latest', '--host', 'bench', '--target', resticTarget, '-q'], resticEnv);
}
rows.push({ operation: 'restore', megabytes: totalAfter / MiB, ours: oursRestore, ...(resticRestore ? { restic: resticRestore } : {}) });

step('checking the restores against the source');
const oursRestoreOk = treesEqual(data, oursTarget);
// restic restores the absolute source path under the target.
const resticRestoreOk = restic ? treesEqual(data, join(resticTarget, data)) : undefined;

// --- report -------------------------------------------------------------------------------------

const fmt = (n: number, d = 1): string => n.toFixed(d);
const throughput = (mb: number, t: Timed): number => mb / t.seconds;
const header = ['operation', 'ours s', 'ours MiB/s', 'restic s', 'restic MiB/s', 'ours/restic', 'uploaded MiB (ours/restic)', 'peak RSS MiB (ours/restic)'];
const table = rows.map((r) => [
  r.operation,
  fmt(r.ours.seconds, 2),
  fmt(throughput(r.megabytes, r.ours)),
  r.restic ? fmt(r.restic.seconds, 2) : '-',
  r.restic ? fmt(throughput(r.megabytes, r.restic)) : '-',
  r.restic ? `${fmt(r.restic.seconds / r.ours.seconds, 2)}x` : '-',
  r.ours.bytesUploaded === undefined ? '-' : `${fmt(r.ours.bytesUploaded / MiB)} / ${r.restic?.bytesUploaded === undefined ? '-' : fmt(r.restic.bytesUploaded / MiB)}`,
  `${fmt(r.ours.peakRssMiB, 0)} / ${r.restic ? fmt(r.restic.peakRssMiB, 0) : '-'}`,
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
const out = [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...table.map(line)];
const oursIncrJson = JSON.parse(incremental.ours.stdout) as { bytesUploaded: number };
const notes = [
  `dataset: ${dataset.files} files, ${fmt(dataset.bytes / MiB)} MiB (seed ${args.seed}); change: ${fmt(bytesChanged / MiB)} MiB (20 new files + 4 MiB inside the db file)`,
  `incremental upload / bytes changed: ours ${fmt(incremental.ours.bytesUploaded / bytesChanged, 2)} (vault growth; the tool reports ${fmt(oursIncrJson.bytesUploaded / MiB)} MiB)` +
    (incremental.restic ? `, restic ${fmt(incremental.restic.bytesUploaded / bytesChanged, 2)}` : ''),
  `restores identical to the source: ours ${oursRestoreOk ? 'yes' : 'NO'}${restic ? `, restic ${resticRestoreOk ? 'yes' : 'NO'}` : ''}`,
  `ours/restic is restic's time divided by ours (above 1 = ours faster). ${restic ?? 'restic: not installed'}; node ${process.version}`,
];
process.stdout.write(`${out.join('\n')}\n\n${notes.join('\n')}\n`);

const resultsDir = join(repoRoot, 'bench-results');
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `datamover-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  file,
  `${JSON.stringify({ sizeMiB, dbMiB, seed: args.seed, dataset, bytesChanged, restic: restic ?? null, rows, oursRestoreOk, resticRestoreOk: resticRestoreOk ?? null, notes }, null, 2)}\n`,
);
process.stderr.write(`results written to ${file}\n`);
if (!args.keep) rmSync(work, { recursive: true, force: true });


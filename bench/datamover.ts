/**
 * Benchmark of the data mover against restic on the same data, on this machine.
 *
 *   npm run bench:datamover -- [--profile default,small-files] [--size-mib N] [--db-mib N]
 *                              [--runs 4] [--seed 42] [--dir PATH] [--disk-mib 1024] [--keep]
 *                              [--node PATH]
 *
 * 1. Measures this machine's disk copy rate (bench/disk-rate.ts: a 1 GiB file copied with
 *    O_DIRECT reads and writes overlapping, fsynced; best of 3), the yardstick of the `% disk`
 *    columns.
 * 2. For each profile (bench/datamover-dataset.ts; both by default), builds a reproducible
 *    MinIO-shaped dataset: `default` is ~2 GiB of segment files of 64 KiB-8 MiB, `small-files`
 *    ~768 MiB of insert, stats and delta logs of 4 KiB-1 MiB (~4,400 files); both add a 256 MiB
 *    etcd db. `--size-mib` and `--db-mib` override the profile's sizes.
 * 3. Ours runs as the Job image runs it: the esbuild bundle of docker/datamover/entry.ts, by
 *    `--node` (default: the `node` on PATH). The image runs Node 22 (docker/datamover/Dockerfile);
 *    where the machine's own Node is another major, pass a Node 22 binary to measure what ships.
 *    Full backup with each tool, then a ~1% change (new segment files and a 4 MiB rewrite
 *    inside the db file), an incremental backup with each tool, and a restore of the latest
 *    backup with each tool. Each run is a separate process timed by /usr/bin/time (wall
 *    seconds and peak RSS) after a `sync`; its time is until its output is on disk: the
 *    process, plus a `sync` right after it (restic restores through the page cache and exits
 *    with the files still in memory; ours syncs before it ends). Both backups read from a warm
 *    page cache, both restores start with an empty one where the script may empty it (root).
 *    Bytes uploaded is the growth of the vault / repository on disk. Right after each restore
 *    the disk copy rate is measured again (one copy of `--disk-mib`): the disk's rate drifts
 *    during a bench, and a restore is also compared with the rate the disk gave at about its time.
 *    That copy also comes before the second tool's restore; with an even `--runs` each tool is
 *    second in half of the runs.
 * 4. Checks both restores against the source.
 * 5. Does all of 2-4 `--runs` times per profile (an even number, so each tool goes first in
 *    half of them), each run from scratch (the dataset built again from its seed, a new vault
 *    and repository), the tools taking turns at going first (so neither always runs on a disk
 *    the other just worked), and prints per profile a table of each tool's median run of each
 *    operation, every run's times below it and each restore's share of the disk rate measured
 *    right after it; JSON of every run goes to bench-results/. A single run is not enough on a
 *    virtual machine whose disk slows under sustained I/O and recovers after a rest: one run's
 *    ratio then says as much about the order as about the tools. A finished run's files are
 *    truncated and its trees removed only at the end (see emptyTree).
 *
 * restic is the Debian package (`apt-get install -y restic`); without it the comparison
 * columns are skipped with a message. This is a measurement, not a test: it asserts nothing
 * about time, it reports.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { bundleDatamover } from '../docker/datamover/bundle.js';
import { buildDataset, changeDataset, isProfileName, PROFILES, type DatasetProfile } from './datamover-dataset.js';
import { DiskProbe, measureDiskCopyRate, type DiskRate } from './disk-rate.js';
import { freePageReporting } from './vm-memory.js';

const MiB = 1024 * 1024;
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      profile: { type: 'string', default: 'default,small-files' },
      'size-mib': { type: 'string' },
      'db-mib': { type: 'string' },
      seed: { type: 'string', default: '42' },
      dir: { type: 'string' },
      'disk-mib': { type: 'string', default: '1024' },
      runs: { type: 'string', default: '4' },
      keep: { type: 'boolean', default: false },
      node: { type: 'string', default: 'node' },
    },
  });
} catch (err) {
  fail(`${(err as Error).message} (see the comment at the top of bench/datamover.ts)`);
}
const args = parsed.values;
const profileNames = args.profile.split(',').map((p) => p.trim());
for (const p of profileNames) if (!isProfileName(p)) fail(`--profile: unknown profile ${JSON.stringify(p)}; use ${Object.keys(PROFILES).join(', ')} or a comma-separated list of them`);
const sizeOverride = args['size-mib'] === undefined ? undefined : Number(args['size-mib']);
const dbOverride = args['db-mib'] === undefined ? undefined : Number(args['db-mib']);
if (sizeOverride !== undefined && !(sizeOverride > 0)) fail('--size-mib must be a positive number of MiB');
if (dbOverride !== undefined && !(dbOverride >= 8)) fail('--db-mib must be at least 8');
const diskMiB = Number(args['disk-mib']);
if (!(Number.isInteger(diskMiB) && diskMiB >= 64)) fail('--disk-mib must be a whole number of MiB, at least 64');
const runs = Number(args.runs);
if (!(Number.isInteger(runs) && (runs === 1 || (runs % 2 === 0 && runs <= 16)))) fail('--runs must be 1 or an even number up to 16 (each tool goes first in half of the runs)');
const profiles: DatasetProfile[] = profileNames.map((p) => {
  const base = PROFILES[p as DatasetProfile['name']];
  return { ...base, ...(sizeOverride !== undefined ? { segmentMiB: sizeOverride } : {}), ...(dbOverride !== undefined ? { dbMiB: dbOverride } : {}) };
});
const work = resolve(args.dir ?? join(tmpdir(), 'milvus-guard-bench'));
// The Node that runs ours, and its version (printed with the results).
const nodeVersion = spawnSync(args.node, ['--version'], { encoding: 'utf8' });
if (nodeVersion.status !== 0) fail(`--node: cannot run ${JSON.stringify(args.node)} (${nodeVersion.error?.message ?? nodeVersion.stderr.trim()}); pass the path of a node binary`);
const oursNode = nodeVersion.stdout.trim();
if (!/^v\d+\./.test(oursNode)) fail(`--node: ${JSON.stringify(args.node)} --version printed ${JSON.stringify(oursNode.split('\n')[0])}, not a Node version; pass the path of a node binary`);

function diskUsage(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += statSync(join(e.parentPath, e.name)).size;
  }
  return total;
}

interface Timed {
  /** Until the tool's output is on disk: its process, then the `sync` run right after it. */
  seconds: number;
  /** The process alone, from start to exit. */
  exitSeconds: number;
  /** The `sync` after it: what the tool left in the page cache, written back. */
  syncSeconds: number;
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
  // A tool is done when what it wrote is on disk, not when it exits: restic restores through the
  // page cache and exits with most of a 2 GiB restore still dirty in memory (and not fsynced),
  // where ours writes big files with direct I/O and syncs the file system before it ends. The
  // `sync` right after each run charges each tool for the writeback it left.
  const started = performance.now();
  spawnSync('sync');
  const syncSeconds = (performance.now() - started) / 1000;
  const exitSeconds = Number(m[1]);
  return { seconds: exitSeconds + syncSeconds, exitSeconds, syncSeconds, peakRssMiB: Number(m[2]) / 1024, stdout: r.stdout };
}

/**
 * Empties the page cache (needs root), so a restore reads its vault or repository from the disk
 * as after a disaster: restic's repository, written through the cache by its backup minutes
 * before, could otherwise be read back from memory (our packs are written with direct I/O and
 * never are), which made restic's restore time vary by 2x between runs. False where not allowed.
 */
function dropCaches(): boolean {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

function treesEqual(a: string, b: string): boolean {
  return spawnSync('diff', ['-r', '-q', '--no-dereference', a, b], { stdio: 'inherit' }).status === 0;
}

function hasRestic(): string | undefined {
  const r = spawnSync('restic', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

// --- run --------------------------------------------------------------------------------------

interface Row {
  operation: string;
  megabytes: number;
  ours: Timed & { bytesUploaded?: number };
  restic?: Timed & { bytesUploaded?: number };
}

interface ProfileResult {
  profile: DatasetProfile;
  dataset: { files: number; bytes: number };
  change: { bytes: number; newFiles: number };
  rows: Row[];
  oursRestoreOk: boolean;
  resticRestoreOk: boolean | undefined;
  oursIncrementalReportedMiB: number;
  /** Whether the restores started with an empty page cache. */
  cold: boolean;
  /** The disk copy rate (MiB/s) measured right after each tool's restore. */
  diskAfterRestore: { ours: number; restic?: number };
}

const step = (text: string): void => void process.stderr.write(`${text}...\n`);

/**
 * Full backup, 1% change, incremental and restore of one profile with both tools, in `dir`;
 * with `resticFirst` restic takes each step before ours. Each restore is followed by a copy of
 * `--disk-mib` (DiskProbe), so it can be compared with the disk's rate at the time too.
 */
async function runProfile(profile: DatasetProfile, dir: string, cli: string, restic: string | undefined, resticFirst: boolean): Promise<ProfileResult> {
  const data = join(dir, 'data');
  mkdirSync(join(dir, 'vault'), { recursive: true });
  // Written first, so that it is long on the disk when the restores run and the dataset's pages,
  // which the backups read from memory, are the newest in the page cache.
  const probe = await DiskProbe.create(dir, diskMiB);
  try {
    step(`[${profile.name}] building the dataset in ${data} (${profile.segmentMiB} MiB of ${profile.description}, ${profile.dbMiB} MiB db, seed ${args.seed})`);
    const dataset = buildDataset(data, profile, args.seed);
    return await runTools(profile, dir, cli, restic, resticFirst, dataset, probe);
  } finally {
    await probe.remove();
  }
}

/** runProfile's steps once the dataset and the probe's source are written. */
async function runTools(
  profile: DatasetProfile,
  dir: string,
  cli: string,
  restic: string | undefined,
  resticFirst: boolean,
  dataset: ProfileResult['dataset'],
  probe: DiskProbe,
): Promise<ProfileResult> {
  const data = join(dir, 'data');
  const vaultDir = join(dir, 'vault');
  const resticRepo = join(dir, 'restic-repo');
  const vaultUrl = pathToFileURL(vaultDir).href;
  const resticEnv = { RESTIC_PASSWORD: 'milvus-guard-bench', RESTIC_CACHE_DIR: join(dir, 'restic-cache') };
  if (restic) timed('restic', ['init', '--repo', resticRepo, '-q'], resticEnv);
  const ours = (argv: string[]): Timed => timed(args.node, ['--no-warnings', cli, 'datamover', ...argv]);

  /** Backs `data` up with ours (as `backupId`) and restic; bytes uploaded is what each repository grew by. */
  const backupBoth = (name: string, backupId: string): { ours: Timed & { bytesUploaded: number }; restic?: Timed & { bytesUploaded: number } } => {
    const runOurs = (): Timed & { bytesUploaded: number } => {
      step(`[${profile.name}] ${name} (ours)`);
      const before = diskUsage(vaultDir);
      const run = ours(['backup', '--source', data, '--vault', vaultUrl, '--volume', 'milvus-data', '--backup-id', backupId, '--json']);
      return { ...run, bytesUploaded: diskUsage(vaultDir) - before };
    };
    const runRestic = (): Timed & { bytesUploaded: number } => {
      step(`[${profile.name}] ${name} (restic)`);
      const before = diskUsage(resticRepo);
      const run = timed('restic', ['--repo', resticRepo, 'backup', '--host', 'bench', '-q', data], resticEnv);
      return { ...run, bytesUploaded: diskUsage(resticRepo) - before };
    };
    if (!restic) return { ours: runOurs() };
    if (resticFirst) {
      const r = runRestic();
      return { restic: r, ours: runOurs() };
    }
    const o = runOurs();
    return { ours: o, restic: runRestic() };
  };

  const rows: Row[] = [];
  rows.push({ operation: 'full backup', megabytes: dataset.bytes / MiB, ...backupBoth('full backup', 'full') });
  step(`[${profile.name}] changing ~1% of the data`);
  const change = changeDataset(data, profile, args.seed);
  const incremental = backupBoth('incremental backup', 'incr');
  const totalAfter = diskUsage(data);
  rows.push({ operation: 'incremental (1%)', megabytes: totalAfter / MiB, ...incremental });

  const oursTarget = join(dir, 'restore-ours');
  const resticTarget = join(dir, 'restore-restic');
  let cold = true;
  // Each restore, then the disk copy rate right after it: the rate the disk gave at about that
  // time, where the one measured at the start may be far from it (see DiskProbe).
  const restoreWith = async (tool: string, run: () => Timed): Promise<[Timed, number]> => {
    step(`[${profile.name}] restore (${tool})`);
    const dropped = dropCaches();
    cold &&= dropped;
    const timing = run();
    return [timing, await probe.copyRate()];
  };
  const restoreOurs = (): Promise<[Timed, number]> =>
    restoreWith('ours', () => ours(['restore', '--vault', vaultUrl, '--volume', 'milvus-data', '--backup-id', 'incr', '--target', oursTarget, '--json']));
  const restoreRestic = (): Promise<[Timed, number]> =>
    restoreWith('restic', () => timed('restic', ['--repo', resticRepo, 'restore', 'latest', '--host', 'bench', '--target', resticTarget, '-q'], resticEnv));
  let oursRestore: [Timed, number];
  let resticRestore: [Timed, number] | undefined;
  if (restic && resticFirst) {
    resticRestore = await restoreRestic();
    oursRestore = await restoreOurs();
  } else {
    oursRestore = await restoreOurs();
    if (restic) resticRestore = await restoreRestic();
  }
  rows.push({ operation: 'restore', megabytes: totalAfter / MiB, ours: oursRestore[0], ...(resticRestore ? { restic: resticRestore[0] } : {}) });

  step(`[${profile.name}] checking the restores against the source`);
  const oursRestoreOk = treesEqual(data, oursTarget);
  // restic restores the absolute source path under the target.
  const resticRestoreOk = restic ? treesEqual(data, join(resticTarget, data)) : undefined;
  const oursIncrementalReportedMiB = (JSON.parse(incremental.ours.stdout) as { bytesUploaded: number }).bytesUploaded / MiB;
  const diskAfterRestore = { ours: oursRestore[1], ...(resticRestore ? { restic: resticRestore[1] } : {}) };
  return { profile, dataset, change, rows, oursRestoreOk, resticRestoreOk, oursIncrementalReportedMiB, cold, diskAfterRestore };
}

// --- report -------------------------------------------------------------------------------------

/** A profile's runs, and per operation the median run of each tool. */
interface Summary extends Omit<ProfileResult, 'diskAfterRestore'> {
  everyRun: ProfileResult[];
}

/**
 * Per operation, each tool's median run (by seconds; of an even count the slower middle one, so
 * a tool is never credited with a time between two it took), with the highest peak RSS of any
 * run: memory is a bound, not a typical value. Restores count as identical only if all were.
 */
function summarize(all: ProfileResult[]): Summary {
  // Each run's disk rates stay in everyRun: the first run's alone would read as the medians'.
  const { diskAfterRestore: _firstRunOnly, ...first } = all[0]!;
  const median = <T extends Timed>(timings: T[]): T => {
    const sorted = [...timings].sort((a, b) => a.seconds - b.seconds);
    return { ...sorted[Math.floor(sorted.length / 2)]!, peakRssMiB: Math.max(...timings.map((t) => t.peakRssMiB)) };
  };
  const rows = first.rows.map((row, i) => {
    const restics = all.map((r) => r.rows[i]!.restic).filter((t): t is NonNullable<typeof t> => t !== undefined);
    return { ...row, ours: median(all.map((r) => r.rows[i]!.ours)), ...(restics.length > 0 ? { restic: median(restics) } : {}) };
  });
  return {
    ...first,
    rows,
    oursRestoreOk: all.every((r) => r.oursRestoreOk),
    resticRestoreOk: first.resticRestoreOk === undefined ? undefined : all.every((r) => r.resticRestoreOk),
    cold: all.every((r) => r.cold),
    everyRun: all,
  };
}

const fmt = (n: number, d = 1): string => n.toFixed(d);
const throughput = (mb: number, t: Timed): number => mb / t.seconds;
const percent = (share: number): string => `${Math.round(share * 100)}%`;
const split = (t: Timed): string => `${fmt(t.exitSeconds, 2)} s + ${fmt(t.syncSeconds, 2)} s`;

/**
 * Each run's restores as a share of the disk copy rate measured right after them, with the
 * median share per tool (of an even count the lower middle one, as summarize credits no tool
 * with more than it did): how close a restore came to what the disk gave at about that time.
 */
function restoresAgainstDisk(r: Summary, probeMiB: number): string {
  const i = r.rows.findIndex((row) => row.operation === 'restore');
  const shares = (tool: 'ours' | 'restic'): { each: string; median: number } | undefined => {
    const runs = r.everyRun.flatMap((run) => {
      const timing = run.rows[i]![tool];
      const rate = run.diskAfterRestore[tool];
      return timing && rate ? [{ share: throughput(run.rows[i]!.megabytes, timing) / rate, rate }] : [];
    });
    if (runs.length === 0) return undefined;
    const sorted = runs.map((x) => x.share).sort((a, b) => a - b);
    return { each: runs.map((x) => `${percent(x.share)} (${fmt(x.rate, 0)})`).join(' '), median: sorted[Math.ceil(sorted.length / 2) - 1]! };
  };
  const ours = shares('ours')!;
  const restic = shares('restic');
  return (
    `restore against the disk copy rate measured right after it (one copy of ${probeMiB} MiB): median ours ${percent(ours.median)}${restic ? `, restic ${percent(restic.median)}` : ''}; ` +
    `each run, with that rate in MiB/s: ours ${ours.each}${restic ? ` | restic ${restic.each}` : ''}`
  );
}

function formatProfile(r: Summary, disk: DiskRate, restic: string | undefined): string {
  const header = ['operation', 'ours s', 'ours MiB/s', 'ours % disk', 'restic s', 'restic MiB/s', 'restic % disk', 'ours/restic', 'uploaded MiB (ours/restic)', 'peak RSS MiB (ours/restic)'];
  const table = r.rows.map((row) => [
    row.operation,
    fmt(row.ours.seconds, 2),
    fmt(throughput(row.megabytes, row.ours)),
    percent(throughput(row.megabytes, row.ours) / disk.mibPerSecond),
    row.restic ? fmt(row.restic.seconds, 2) : '-',
    row.restic ? fmt(throughput(row.megabytes, row.restic)) : '-',
    row.restic ? percent(throughput(row.megabytes, row.restic) / disk.mibPerSecond) : '-',
    row.restic ? `${fmt(row.restic.seconds / row.ours.seconds, 2)}x` : '-',
    row.ours.bytesUploaded === undefined ? '-' : `${fmt(row.ours.bytesUploaded / MiB)} / ${row.restic?.bytesUploaded === undefined ? '-' : fmt(row.restic.bytesUploaded / MiB)}`,
    `${fmt(row.ours.peakRssMiB, 0)} / ${row.restic ? fmt(row.restic.peakRssMiB, 0) : '-'}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const incremental = r.rows[1]!;
  const notes = [
    `profile ${r.profile.name}: ${r.dataset.files} files, ${fmt(r.dataset.bytes / MiB)} MiB (${r.profile.description}; seed ${args.seed}); change: ${fmt(r.change.bytes / MiB)} MiB (${r.change.newFiles} new files + 4 MiB inside the db file)`,
    `incremental upload / bytes changed: ours ${fmt(incremental.ours.bytesUploaded! / r.change.bytes, 2)} (vault growth; the tool reports ${fmt(r.oursIncrementalReportedMiB)} MiB)` +
      (incremental.restic ? `, restic ${fmt(incremental.restic.bytesUploaded! / r.change.bytes, 2)}` : ''),
    ...(r.everyRun.length > 1
      ? [
          `each run's s${restic ? ' (odd runs ours first, even runs restic first)' : ''}:`,
          ...r.rows.map(
            (row, i) =>
              `  ${row.operation}: ours ${r.everyRun.map((run) => fmt(run.rows[i]!.ours.seconds, 2)).join(' ')}${row.restic ? ` | restic ${r.everyRun.map((run) => fmt(run.rows[i]!.restic!.seconds, 2)).join(' ')}` : ''}`,
          ),
        ]
      : []),
    restoresAgainstDisk(r, disk.sizeMiB),
    `process until exit + sync after it (median runs): ${r.rows
      .map((row) => `${row.operation}: ours ${split(row.ours)}${row.restic ? `, restic ${split(row.restic)}` : ''}`)
      .join('; ')}`,
    `restores identical to the source: ours ${r.oursRestoreOk ? 'yes' : 'NO'}${restic ? `, restic ${r.resticRestoreOk ? 'yes' : 'NO'}` : ''}; ` +
      (r.cold ? 'each restore started with an empty page cache (drop_caches)' : 'the page cache could not be emptied before the restores (not root): restic may read its repository from memory'),
  ];
  return [`### ${r.profile.name}`, '', line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...table.map(line), '', ...notes].join('\n');
}

/**
 * Gives a finished run's space back without freeing its inodes: every file is truncated to
 * nothing and the trees stay until the bench ends. Removing them between runs slowed every later
 * run's restores: on an ext4 without a journal (as the root file system of the machines this
 * bench ran on is), the inode allocator passes over inodes freed in the last minutes while their
 * inode-table block is cached (fs/ext4/ialloc.c, find_inode_bit and recently_deleted: 60 s, 300 s
 * more while that block is dirty), scanning past each one again for every inode it allocates.
 * A small-files restore (~12,000 directories) made right after the previous restore's ~17,000
 * inodes were freed spent 17% of its CPU samples in that scan (perf), and 12,000 directories
 * took 0.97-1.55 s to create there against 0.33 s in a fresh place. A run of that profile
 * frees about three times as many.
 * A restore in production writes to a new volume, with no freed inodes (and a journal), so
 * the bench should not measure the cost of its own cleanup.
 */
function emptyTree(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    try {
      truncateSync(path);
    } catch (err) {
      // restic's repository files are read-only to their owner too.
      if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
      chmodSync(path, 0o600);
      truncateSync(path);
    }
  }
}

/** Empties a finished run's tree (emptyTree) for removal at the end, or removes it now if that fails. */
function retire(dir: string, emptied: string[]): void {
  if (!existsSync(dir)) return;
  try {
    emptyTree(dir);
    emptied.push(dir);
  } catch (err) {
    process.stderr.write(`could not empty ${dir} (${(err as Error).message}): removing it now, which may slow the next run's restores\n`);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!existsSync('/usr/bin/time')) fail('/usr/bin/time is needed to measure peak RSS: apt-get install -y time');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
// What the Job image runs: the datamover commands bundled into one module (docker/datamover).
const cli = await bundleDatamover(join(work, 'bundle'));
const restic = hasRestic();
if (!restic) process.stderr.write('restic not found: skipping the comparison (install it with `apt-get install -y restic`)\n');

step(`measuring the disk copy rate in ${work} (${diskMiB} MiB, O_DIRECT, best of 3)`);
const disk = await measureDiskCopyRate(work, diskMiB);
const results: Summary[] = [];
const emptied: string[] = [];
try {
  for (const profile of profiles) {
    const all: ProfileResult[] = [];
    for (let run = 1; run <= runs; run++) {
      const dir = join(work, profile.name, `run-${run}`);
      if (runs > 1) step(`[${profile.name}] run ${run} of ${runs}${restic ? `, ${run % 2 === 0 ? 'restic' : 'ours'} first` : ''}`);
      // Each run's trees and repositories give their space back before the next is built (a run
      // of the default profile holds ~11 GiB); --keep keeps the last run's, finished or not.
      const keep = args.keep && run === runs;
      try {
        all.push(await runProfile(profile, dir, cli, restic, run % 2 === 0));
      } catch (err) {
        if (!keep) rmSync(dir, { recursive: true, force: true });
        throw err;
      }
      if (!keep) retire(dir, emptied);
    }
    results.push(summarize(all));
  }
} finally {
  // The emptied trees go once nothing more is measured (see emptyTree).
  for (const dir of emptied) rmSync(dir, { recursive: true, force: true });
}

const pageReporting = freePageReporting();
const machine = `${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${fmt(totalmem() / 1024 ** 3, 0)} GiB memory`;
const summary = [
  `machine: ${machine}; disk copy rate ${fmt(disk.mibPerSecond, 0)} MiB/s (${disk.sizeMiB} MiB copied ${disk.direct ? 'with O_DIRECT' : 'through the page cache (O_DIRECT refused)'}, reads and writes overlapping, fsynced; best of ${disk.runs.map((r) => fmt(r, 0)).join(', ')} MiB/s)`,
  `s is the wall time until the tool's output is on disk: its process (/usr/bin/time) plus the \`sync\` run right after it, which writes back what it left in the page cache (both split out under each table); ${runs > 1 ? `each tool's median of ${runs} runs, each run from scratch` : 'one run'}.`,
  `% disk is the operation's MiB/s over the disk copy rate measured at the start (see the line under each table for the rate right after each restore); ours/restic is restic's time divided by ours (above 1 = ours faster); peak RSS is the process's (/usr/bin/time), the highest of the runs.`,
  `${restic ?? 'restic: not installed'}; ours ran on node ${oursNode}${args.node === 'node' ? '' : ` (${args.node})`}`,
  // Said only where the caches were dropped: that is what frees the memory in one go.
  ...(pageReporting === true && results.some((r) => r.cold)
    ? [
        'this is a virtual machine that returns the memory it frees to its host (virtio-balloon free page reporting, bench/vm-memory.ts): after the caches are dropped, writes through the page cache may first wait for the host to fault memory back in, so restore times (restic writes every file through the page cache, ours files under 1 MiB) may vary from run to run, at times by more than the tools differ: compare the medians and every run',
      ]
    : []),
];
process.stdout.write(`${results.map((r) => formatProfile(r, disk, restic)).join('\n\n')}\n\n${summary.join('\n')}\n`);

const resultsDir = join(repoRoot, 'bench-results');
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `datamover-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  file,
  `${JSON.stringify({ seed: args.seed, runs, machine, freePageReporting: pageReporting, disk, restic: restic ?? null, node: { path: args.node, version: oursNode }, profiles: results.map((r) => ({ ...r, resticRestoreOk: r.resticRestoreOk ?? null, everyRun: r.everyRun.map((run) => ({ ...run, resticRestoreOk: run.resticRestoreOk ?? null })) })), notes: summary }, null, 2)}\n`,
);
process.stderr.write(`results written to ${file}\n`);
if (!args.keep) rmSync(work, { recursive: true, force: true });

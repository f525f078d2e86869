/**
 * The data mover's robustness run, modelled on kopia's robustness tests: a seeded random
 * sequence of operations over a temporary tree and a vault, asserting after every step that
 * every backup taken either restores byte-exact (as the tree was when it was backed up) or is
 * reported broken by `verify --read-data` — never silently wrong.
 *
 *   npm run robustness -- --seed 7 --operations 200 [--vault file|s3] [--fault-rate 0.05]
 *
 * 1. backup: `datamover backup` (incremental) of the tree; half the backups are then finalized
 *    with a `backup.json`, as the workflow's Finalize step writes it. Even-numbered backups run
 *    as the workflow's export Jobs do (`--committed-parent`, and a `--run-id` that a kill's
 *    re-run, like a Job's retry, passes again); odd ones as the CLI alone. The tree's manifest
 *    (type, mode, size, SHA-256, link target, mtime per path) is kept per backup.
 * 2. mutate: add, modify, delete and rename files and directories (empty, small and
 *    multi-chunk files), create and retarget symlinks, chmod.
 * 3. restore: a random earlier backup into a fresh directory, compared with its manifest.
 * 4. damage: delete, flip one byte of, or truncate a random object the data mover or Finalize
 *    wrote (pack, index, summary, backup.json); then every backup is checked again.
 * 5. kill-backup / kill-restore: the CLI as a child process, SIGKILLed after its k-th write
 *    (a file event in the vault or target, or a PUT through the S3 proxy); then re-run.
 * 6. verify: a whole-vault verify (structural or --read-data) must not crash.
 *
 * A check restores through the CLI's own command code in-process (same code as the binary,
 * without a process start per check); the outcome of each check is `passed`, `broken`
 * (restore refused and verify names the backup), `silently-wrong` (restore exit 0, bytes
 * differ), `unreported` (restore refused but verify says nothing) or `crashed` (exit 2: a
 * stack trace). The last three are defects. Over `s3`, s3rver sits behind a proxy on
 * 127.0.0.1 (bench/faulty-s3.ts) that answers a seeded share of requests with 503 SlowDown,
 * 500, a reset connection or (a GET) a download cut short halfway through its body, and half
 * the parts of multipart uploads with a 500 (the first part
 * of the run always): backups run with `--part-size 5`, S3's smallest part, and the starting
 * tree holds a file above it, so packs above 5 MiB go up in parts. Checks run with the faults
 * paused, so a transient error is never mistaken for a broken backup.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, stat, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import S3rver from 's3rver';
import { registerDatamoverCommands, type DatamoverIO } from '../cli/commands/datamover.js';
import { reportFailure } from '../cli/main.js';
import { BACKUP_INDEX_FORMAT, gatherCommitments, type BackupIndexDocument } from '../core/vault/backup-index.js';
import { FileVaultStore } from '../core/vault/file-store.js';
import { backupRecordKey, EXPORT_CREATE_ONLY_PATTERNS, inventoryKey, milvusStateKey, volumeIndexKey, volumeSummaryKey } from '../core/vault/layout.js';
import { openVault } from '../core/vault/open.js';
import { S3VaultStore } from '../core/vault/s3-store.js';
import type { VaultStore } from '../core/vault/store.js';
import { FaultyS3Proxy, keysMatching } from './faulty-s3.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const VOLUME = 'vol';
const BUCKET = 'robustness';
const S3_KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
/** `--part-size` of backups over S3: S3's smallest part, so a pack above it is a multipart upload. */
const PART_SIZE_MIB = 5;

export type VaultKind = 'file' | 's3';
export type OpName = 'backup' | 'mutate' | 'restore' | 'damage' | 'kill-backup' | 'kill-restore' | 'verify';
export type Outcome = 'passed' | 'broken' | 'silently-wrong' | 'unreported' | 'crashed';

export interface RobustnessOptions {
  readonly seed: number;
  readonly operations: number;
  readonly vault: VaultKind;
  /** Share of S3 requests answered with a fault (s3 only). @default 0.05 */
  readonly faultRate?: number;
  /** Called with a line per operation. */
  readonly log?: (line: string) => void;
}

export interface OpRow {
  op: OpName;
  count: number;
  passed: number;
  broken: number;
  silentlyWrong: number;
  unreported: number;
  crashed: number;
  ms: number;
}

export interface RobustnessReport {
  readonly seed: number;
  readonly vault: VaultKind;
  readonly rows: OpRow[];
  /** Every check that was not `passed` or `broken`, with what it saw: the defects. */
  readonly defects: string[];
  /** Faults the S3 proxy injected, by kind. */
  readonly faults: Record<string, number>;
  readonly backups: number;
}

/** sfc32: a small, fast, seeded PRNG (same sequence for the same seed on every machine). */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }
  /** A float in [0, 1). */
  next(): number {
    this.a >>>= 0;
    this.b >>>= 0;
    this.c >>>= 0;
    this.d >>>= 0;
    const t = (this.a + this.b + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) >>> 0;
    return t / 4294967296;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      const v = (this.next() * 4294967296) >>> 0;
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (v >>> (8 * j)) & 0xff;
    }
    return out;
  }
}

/** Weighted choice of the next operation (the first two are always a mutate and a backup). */
const WEIGHTS: readonly [OpName, number][] = [
  ['backup', 24],
  ['mutate', 26],
  ['restore', 14],
  ['damage', 12],
  ['kill-backup', 9],
  ['kill-restore', 6],
  ['verify', 5],
];

// ---------------------------------------------------------------------------------------------
// The tree and its manifest

/** type, mode, size, SHA-256 or link target, and mtime (µs) per path: what a restore must reproduce. */
export async function manifestOf(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (abs: string, rel: string): Promise<void> => {
    const s = await lstat(abs, { bigint: true });
    const mtimeUs = (s.mtimeNs / 1000n).toString();
    const mode = (s.mode & 0o7777n).toString(8);
    if (s.isSymbolicLink()) out.set(rel, `link ${await readlink(abs)} ${mtimeUs}`);
    else if (s.isDirectory()) {
      out.set(rel, `dir ${mode} ${mtimeUs}`);
      for (const name of await readdir(abs)) await visit(join(abs, name), rel === '' ? name : `${rel}/${name}`);
    } else out.set(rel, `file ${mode} ${s.size} ${createHash('sha256').update(await readFile(abs)).digest('hex')} ${mtimeUs}`);
  };
  await visit(root, '');
  return out;
}

function manifestDiff(want: Map<string, string>, got: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [path, w] of want) if (got.get(path) !== w) out.push(`${path || '/'}: want ${w}, got ${got.get(path) ?? 'nothing'}`);
  for (const path of got.keys()) if (!want.has(path)) out.push(`${path}: not in the backup`);
  return out;
}

async function listTree(root: string): Promise<{ files: string[]; dirs: string[]; links: string[] }> {
  const out = { files: [] as string[], dirs: [] as string[], links: [] as string[] };
  const visit = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isSymbolicLink()) out.links.push(p);
      else if (e.isDirectory()) {
        out.dirs.push(p);
        await visit(p);
      } else out.files.push(p);
    }
  };
  await visit('');
  return out;
}

/** Sizes: empty, small, a few chunks of the default chunker (min 512 KiB, avg 1 MiB). */
function fileSize(rng: Prng): number {
  const r = rng.next();
  if (r < 0.12) return 0;
  if (r < 0.7) return rng.int(48 * 1024);
  if (r < 0.9) return 64 * 1024 + rng.int(600 * 1024);
  return 1024 * 1024 + rng.int(2 * 1024 * 1024);
}

let names = 0;
const newName = (rng: Prng): string => `${rng.pick(['seg', 'log', 'db', 'wal', 'x y', 'ünï', '.h'])}-${(names++).toString(36)}`;

/** One to five random changes to the tree; returns what was done, for the log. */
async function mutate(root: string, rng: Prng): Promise<string[]> {
  const done: string[] = [];
  const steps = 1 + rng.int(5);
  for (let i = 0; i < steps; i++) {
    const t = await listTree(root);
    const dirs = ['', ...t.dirs];
    const dir = rng.pick(dirs);
    const kind = rng.pick(['add', 'add', 'modify', 'modify', 'delete', 'rename', 'mkdir', 'symlink', 'chmod', 'rmdir'] as const);
    if (kind === 'add' || (t.files.length === 0 && kind !== 'mkdir')) {
      const p = join(dir, newName(rng));
      await writeFile(join(root, p), rng.bytes(fileSize(rng)));
      done.push(`add ${p}`);
    } else if (kind === 'modify') {
      const p = rng.pick(t.files);
      const abs = join(root, p);
      const before = await stat(abs, { bigint: true });
      const size = Number(before.size);
      const how = rng.pick(['rewrite', 'in-place', 'append', 'truncate'] as const);
      if (how === 'rewrite') await writeFile(abs, rng.bytes(fileSize(rng)));
      else if (how === 'append') await writeFile(abs, rng.bytes(1 + rng.int(200_000)), { flag: 'a' });
      else if (how === 'truncate') await truncate(abs, rng.int(size + 1));
      else if (size > 0) {
        const data = await readFile(abs);
        const at = rng.int(size);
        rng.bytes(Math.min(size - at, 1 + rng.int(4096))).copy(data, at);
        await writeFile(abs, data);
      }
      // The data mover trusts size and mtime (as restic does): a change in the same clock tick
      // as the previous write is a real modification time too, just a later one.
      const after = await stat(abs, { bigint: true });
      if (after.mtimeNs === before.mtimeNs) {
        const t2 = new Date(Number(before.mtimeNs / 1_000_000n) + 1);
        await utimes(abs, t2, t2);
      }
      done.push(`modify ${p} (${how})`);
    } else if (kind === 'delete') {
      const p = rng.pick(t.files);
      await unlink(join(root, p));
      done.push(`delete ${p}`);
    } else if (kind === 'rename') {
      const p = rng.pick(t.files);
      const to = join(rng.pick(dirs), newName(rng));
      await rename(join(root, p), join(root, to));
      done.push(`rename ${p} -> ${to}`);
    } else if (kind === 'mkdir') {
      const p = join(dir, newName(rng));
      await mkdir(join(root, p));
      done.push(`mkdir ${p}`);
    } else if (kind === 'symlink') {
      const p = join(dir, `ln-${(names++).toString(36)}`);
      const target = rng.pick([...t.files.map((f) => `/${f}`), '../nowhere', 'relative/dangling', '/etc/hostname']);
      await symlink(target, join(root, p));
      done.push(`symlink ${p} -> ${target}`);
    } else if (kind === 'chmod') {
      const p = rng.pick(t.files);
      await chmod(join(root, p), rng.pick([0o600, 0o644, 0o755, 0o400]));
      done.push(`chmod ${p}`);
    } else if (t.dirs.length > 0) {
      const p = rng.pick(t.dirs);
      await rm(join(root, p), { recursive: true, force: true });
      done.push(`rmdir ${p}`);
    }
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// Running the CLI

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** One `milvus-guard datamover …` through the CLI's command code, in this process. */
async function runCli(args: readonly string[], connect: DatamoverIO['openVault']): Promise<Run> {
  const out = { stdout: '', stderr: '' };
  const io: DatamoverIO = { stdout: (t) => void (out.stdout += t), stderr: (t) => void (out.stderr += t), stderrIsTTY: false, now: () => new Date(), isRoot: false, openVault: connect };
  const program = new Command('milvus-guard').exitOverride().configureOutput({ writeErr: (t) => void (out.stderr += t), writeOut: (t) => void (out.stdout += t) });
  registerDatamoverCommands(program, io);
  const saved = process.exitCode;
  process.exitCode = 0;
  let code: number;
  try {
    await program.parseAsync(['node', 'milvus-guard', 'datamover', ...args]);
    code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    code = reportFailure(err, (t) => void (out.stderr += t));
  } finally {
    process.exitCode = saved;
  }
  return { code, ...out };
}

/** The CLI as a child process, SIGKILLed once `arm` calls its trigger `k` times. */
async function runKilled(args: readonly string[], env: NodeJS.ProcessEnv, k: number, arm: (trigger: () => void) => () => void): Promise<{ killed: boolean; code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [join(REPO, 'bin/milvus-guard.js'), 'datamover', ...args], { cwd: REPO, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
  let seen = 0;
  let killed = false;
  const disarm = arm(() => {
    if (++seen === k && child.exitCode === null) killed = child.kill('SIGKILL');
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  disarm();
  return { killed, code, stderr };
}

// ---------------------------------------------------------------------------------------------
// The run

interface BackupRecord {
  readonly id: string;
  readonly manifest: Map<string, string>;
  last?: Outcome;
}

/**
 * Runs `operations` seeded random operations against a fresh tree and vault and returns the
 * table of outcomes. Never throws for a defect it finds: defects are counted and described.
 */
export async function runRobustness(options: RobustnessOptions): Promise<RobustnessReport> {
  const rng = new Prng(options.seed);
  const log = options.log ?? (() => {});
  const work = await mkdtemp(join(tmpdir(), `mg-robustness-${options.seed}-`));
  const tree = join(work, 'tree');
  const vaultDir = join(work, 'vault');
  const restores = join(work, 'restores');
  await mkdir(tree);
  await mkdir(vaultDir);
  await mkdir(restores);
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: work, NODE_NO_WARNINGS: '1' };

  let server: S3rver | undefined;
  let proxy: FaultyS3Proxy | undefined;
  let vaultArgs: string[];
  // Over S3, backups upload objects above the smallest part size S3 allows in parts (multipart).
  let backupArgs: string[] = [];
  let direct: VaultStore;
  let connect: DatamoverIO['openVault'] = openVault;
  if (options.vault === 's3') {
    server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: join(work, 's3rver'), configureBuckets: [{ name: BUCKET, configs: [] }] });
    const { port } = await server.run();
    const faultRng = new Prng(options.seed ^ 0x5eed);
    // With the vault bucket's policy for the export role: packs, summaries and file indexes may
    // only be created (If-None-Match), so a kill and re-run must never write one anew.
    proxy = new FaultyS3Proxy(port, { random: () => faultRng.next(), rate: options.faultRate ?? 0.05, partRate: 0.5, createOnly: keysMatching('vault/', EXPORT_CREATE_ONLY_PATTERNS) });
    // Whatever the seed, the first part of the first multipart upload fails.
    proxy.inject({ kind: 'InternalError', parts: true, times: 1 });
    backupArgs = ['--part-size', String(PART_SIZE_MIB)];
    const endpoint = await proxy.start();
    vaultArgs = ['--vault', `s3://${BUCKET}/vault`, '--endpoint', endpoint, '--region', 'us-east-1'];
    Object.assign(env, { AWS_ACCESS_KEY_ID: S3_KEYS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_KEYS.secretAccessKey, AWS_REGION: 'us-east-1' });
    connect = (url, o) => openVault(url, { ...o, credentials: S3_KEYS });
    // The harness reads and damages the vault behind the proxy's back.
    direct = new S3VaultStore({ bucket: BUCKET, prefix: 'vault', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: S3_KEYS, checksums: 'WHEN_REQUIRED' });
  } else {
    vaultArgs = ['--vault', pathToFileURL(vaultDir).href];
    direct = new FileVaultStore(vaultDir);
  }

  const rows = new Map<OpName, OpRow>(WEIGHTS.map(([op]) => [op, { op, count: 0, passed: 0, broken: 0, silentlyWrong: 0, unreported: 0, crashed: 0, ms: 0 }]));
  const defects: string[] = [];
  const backups: BackupRecord[] = [];
  let restoreCount = 0;
  let step = 0;

  const faultsPaused = async <T>(f: () => Promise<T>): Promise<T> => {
    if (!proxy) return f();
    proxy.active = false;
    try {
      return await f();
    } finally {
      proxy.active = true;
    }
  };

  /** Restore `b` into a fresh directory and classify; verify only when the restore refused. */
  const check = async (b: BackupRecord, row: OpRow, why: string, target?: string): Promise<Outcome> => {
    const dir = target ?? join(restores, `r${restoreCount++}`);
    const outcome = await faultsPaused(async (): Promise<Outcome> => {
      const r = target ? { code: 0, stdout: '', stderr: '' } : await runCli(['restore', ...vaultArgs, '--volume', VOLUME, '--backup-id', b.id, '--target', dir], connect);
      if (r.code === 0) {
        const diff = manifestDiff(b.manifest, await manifestOf(dir));
        if (diff.length === 0) return 'passed';
        defects.push(`step ${step} (${why}): restore of ${b.id} exited 0 with different content: ${diff.slice(0, 3).join('; ')}${diff.length > 3 ? ` and ${diff.length - 3} more` : ''}`);
        return 'silently-wrong';
      }
      if (r.code !== 1) {
        defects.push(`step ${step} (${why}): restore of ${b.id} crashed (exit ${r.code}): ${r.stderr.split('\n').slice(0, 3).join(' | ')}`);
        return 'crashed';
      }
      const v = await runCli(['verify', ...vaultArgs, '--volume', VOLUME, '--backup-id', b.id, '--read-data', '--json'], connect);
      if (v.code === 1) return 'broken';
      defects.push(
        v.code === 0
          ? `step ${step} (${why}): restore of ${b.id} refused (${r.stderr.trim().split('\n')[0]}) but verify --read-data reports no problem`
          : `step ${step} (${why}): verify of ${b.id} crashed (exit ${v.code}): ${v.stderr.split('\n').slice(0, 3).join(' | ')}`,
      );
      return v.code === 0 ? 'unreported' : 'crashed';
    });
    await rm(dir, { recursive: true, force: true });
    b.last = outcome;
    const key = ({ passed: 'passed', broken: 'broken', 'silently-wrong': 'silentlyWrong', unreported: 'unreported', crashed: 'crashed' } as const)[outcome];
    row[key]++;
    return outcome;
  };

  /** How backup `id` runs: as the workflow's export Job (even numbers) or as the CLI alone. */
  const modeArgs = (id: string): string[] => (Number(id.slice(1)) % 2 === 0 ? ['--committed-parent', '--run-id', `run-${id}`] : []);

  /** Writes backup.json as the workflow's Finalize step does (with the chain's commitments). */
  const finalize = async (id: string): Promise<void> => {
    const chain = await gatherCommitments(direct, id, [VOLUME]);
    const v = chain.volumes.get(VOLUME)!;
    const document: BackupIndexDocument = {
      format: BACKUP_INDEX_FORMAT,
      backupId: id,
      plan: 'robustness',
      cluster: { name: 'bench', eksClusterName: 'bench', region: 'us-east-1' },
      namespace: 'milvus',
      startedAt: new Date().toISOString(),
      completedAt: new Date().toISOString(),
      inventoryKey: inventoryKey(id),
      milvusKey: milvusStateKey(id),
      rowCounts: [],
      volumes: [{ pvc: VOLUME, role: 'data', snapshot: `${id}-${VOLUME}`, indexKey: volumeIndexKey(id, VOLUME), summaryKey: volumeSummaryKey(id, VOLUME), summarySha256: v.summarySha256, bytesTotal: v.bytesTotal, bytesUploaded: v.bytesUploaded, files: v.files }],
      manifests: chain.manifests,
    };
    await direct.put(backupRecordKey(id), Buffer.from(JSON.stringify(document, null, 2)));
  };

  /**
   * One incremental backup of the tree; a backup refused (exit 1, e.g. its parent's index is
   * damaged) is retried with --full as an operator would. Returns the record, or undefined.
   */
  const backup = async (row: OpRow, id: string, extra: string[] = []): Promise<BackupRecord | undefined> => {
    const manifest = await manifestOf(tree);
    let r = await runCli(['backup', ...vaultArgs, ...backupArgs, ...modeArgs(id), '--source', tree, '--volume', VOLUME, '--backup-id', id, '--workers', '1', ...extra], connect);
    if (r.code === 1) {
      log(`  backup ${id} refused: ${r.stderr.trim().split('\n')[0]}; again with --full`);
      r = await runCli(['backup', ...vaultArgs, ...backupArgs, ...modeArgs(id), '--source', tree, '--volume', VOLUME, '--backup-id', id, '--workers', '1', '--full'], connect);
    }
    if (r.code !== 0) {
      defects.push(`step ${step}: backup ${id} failed (exit ${r.code}): ${r.stderr.split('\n').slice(0, 3).join(' | ')}`);
      row[r.code === 2 ? 'crashed' : 'unreported']++;
      return undefined;
    }
    const b = backups.find((x) => x.id === id) ?? { id, manifest };
    Object.assign(b, { manifest });
    if (!backups.includes(b)) backups.push(b);
    if (rng.chance(0.5)) await faultsPaused(() => finalize(id)).catch((err: unknown) => log(`  finalize ${id}: ${(err as Error).message}`));
    return b;
  };

  const operations: Record<OpName, (row: OpRow) => Promise<string>> = {
    backup: async (row) => {
      const b = await backup(row, `b${String(backups.length + 1).padStart(4, '0')}`);
      if (b) await check(b, row, 'after backup');
      // A new backup must not change an older one: one random earlier backup is checked too.
      const older = backups.filter((x) => x !== b);
      if (older.length > 0) await check(rng.pick(older), row, 'older after backup');
      return b ? `${b.id} (${b.manifest.size} entries), ${b.last}` : 'failed';
    },
    mutate: async () => (await mutate(tree, rng)).join(', '),
    restore: async (row) => {
      if (backups.length === 0) return 'no backup yet';
      const b = rng.pick(backups);
      return `${b.id}: ${await check(b, row, 'restore')}`;
    },
    damage: async (row) => {
      const objects: { key: string; size: number }[] = [];
      for (const prefix of ['data/packs/', 'backups/', 'volumes/']) for await (const o of direct.list(prefix)) objects.push(o);
      if (objects.length === 0) return 'nothing to damage';
      const o = rng.pick(objects);
      const how = rng.pick(['delete', 'flip', 'truncate'] as const);
      const body = await direct.get(o.key);
      if (how === 'delete' || body.length === 0) {
        if (options.vault === 'file') await rm(join(vaultDir, o.key));
        else await (direct as S3VaultStore).client.send(new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({ Bucket: BUCKET, Key: `vault/${o.key}` }));
      } else if (how === 'flip') {
        const at = rng.int(body.length);
        body[at] = body[at]! ^ (1 + rng.int(255));
        await direct.put(o.key, body);
      } else await direct.put(o.key, body.subarray(0, rng.int(body.length)));
      // Damage can affect any backup: all of them are checked again.
      for (const b of backups) await check(b, row, `after ${how} ${o.key}`);
      const tally = (x: Outcome): number => backups.filter((b) => b.last === x).length;
      return `${how} ${o.key}: ${tally('passed')} passed, ${tally('broken')} broken`;
    },
    'kill-backup': async (row) => {
      const id = `b${String(backups.length + 1).padStart(4, '0')}`;
      const manifest = await manifestOf(tree);
      const k = 1 + rng.int(4);
      const args = ['backup', ...vaultArgs, ...backupArgs, ...modeArgs(id), '--source', tree, '--volume', VOLUME, '--backup-id', id];
      const killed = await runKilled(args, env, k, (trigger) => {
        if (proxy) return proxy.watchWrites(trigger);
        const w = watch(vaultDir, { recursive: true }, trigger);
        return () => w.close();
      });
      if (!killed.killed && killed.code !== 0) defects.push(`step ${step}: backup ${id} as a process failed (exit ${killed.code}) before the kill: ${killed.stderr.split('\n').slice(0, 3).join(' | ')}`);
      // The re-run: the same command again.
      const b = await backup(row, id);
      if (b) {
        Object.assign(b, { manifest });
        await check(b, row, 'after kill and re-run');
      }
      return `${id}: ${killed.killed ? `killed after write ${k}` : 'finished before the kill'}, re-run ${b?.last ?? 'failed'}`;
    },
    'kill-restore': async (row) => {
      if (backups.length === 0) return 'no backup yet';
      const b = rng.pick(backups);
      const dir = join(restores, `r${restoreCount++}`);
      await mkdir(dir);
      const k = 1 + rng.int(6);
      const args = ['restore', ...vaultArgs, '--volume', VOLUME, '--backup-id', b.id, '--target', dir];
      const killed = await runKilled(args, env, k, (trigger) => {
        const w = watch(dir, { recursive: true }, trigger);
        return () => w.close();
      });
      if (!killed.killed) {
        // Finished (or refused) before the kill: judge it like any restore.
        if (killed.code === 0) return `${b.id}: finished before the kill, ${await check(b, row, 'restore as a process', dir)}`;
        await rm(dir, { recursive: true, force: true });
        return `${b.id}: exit ${killed.code} before the kill, ${await check(b, row, 'restore as a process refused')}`;
      }
      // The re-run resumes into the same directory.
      const again = await faultsPaused(() => runCli(args, connect));
      if (again.code === 0) return `${b.id}: killed after event ${k}, resumed: ${await check(b, row, 'resumed restore', dir)}`;
      if (again.code !== 1) {
        defects.push(`step ${step}: the re-run of a killed restore of ${b.id} crashed (exit ${again.code}): ${again.stderr.split('\n').slice(0, 3).join(' | ')}`);
        row.crashed++;
      }
      await rm(dir, { recursive: true, force: true });
      return `${b.id}: killed after event ${k}, re-run exit ${again.code}: ${await check(b, row, 'restore after a refused resume')}`;
    },
    verify: async (row) => {
      const readData = rng.chance(0.5);
      const v = await faultsPaused(() => runCli(['verify', ...vaultArgs, '--json', ...(readData ? ['--read-data'] : [])], connect));
      if (v.code === 2) {
        defects.push(`step ${step}: verify of the whole vault crashed: ${v.stderr.split('\n').slice(0, 3).join(' | ')}`);
        row.crashed++;
      } else row.passed++;
      const problems = v.code === 2 || !v.stdout ? '?' : (JSON.parse(v.stdout) as { problems: unknown[] }).problems.length;
      return `${readData ? 'read-data' : 'structural'}: exit ${v.code}, ${problems} problem(s)`;
    },
  };

  const total = WEIGHTS.reduce((n, [, w]) => n + w, 0);
  const nextOp = (): OpName => {
    if (step === 1) return 'mutate';
    if (step === 2) return 'backup';
    let r = rng.int(total);
    for (const [op, w] of WEIGHTS) if ((r -= w) < 0) return op;
    return 'mutate';
  };

  try {
    // A starting tree: a few directories and about twenty files of every size class.
    for (const d of ['segments', 'segments/insert_log', 'etcd']) await mkdir(join(tree, d));
    for (let i = 0; i < 20; i++) await writeFile(join(tree, rng.pick(['', 'segments', 'segments/insert_log', 'etcd']), newName(rng)), rng.bytes(fileSize(rng)));
    // Over S3, one file above the part size, so the first backup's pack goes up in parts (its
    // bytes come from their own seeded source: the operations stay those of the seed).
    if (options.vault === 's3') await writeFile(join(tree, 'segments', 'large-segment'), new Prng(options.seed ^ 0x1a26e).bytes((PART_SIZE_MIB + 1) * 1024 * 1024 + 12_345));
    await mutate(tree, rng);
    for (step = 1; step <= options.operations; step++) {
      const op = nextOp();
      const row = rows.get(op)!;
      const started = performance.now();
      const what = await operations[op](row);
      row.count++;
      row.ms += performance.now() - started;
      log(`${String(step).padStart(4)} ${op.padEnd(12)} ${what}`);
    }
    // The end: every backup once more.
    const final: OpRow = { op: 'restore', count: 0, passed: 0, broken: 0, silentlyWrong: 0, unreported: 0, crashed: 0, ms: 0 };
    const started = performance.now();
    for (const b of backups) await check(b, final, 'final sweep');
    final.ms = performance.now() - started;
    return { seed: options.seed, vault: options.vault, rows: [...rows.values(), { ...final, op: 'final sweep' as OpName, count: 1 }], defects, faults: proxy?.faults ?? {}, backups: backups.length };
  } finally {
    await proxy?.stop();
    await server?.close();
    await rm(work, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** The table: operation, count, passed, broken-and-reported, silently-wrong, unreported, crashed, time. */
export function formatTable(report: RobustnessReport): string {
  const head = ['operation', 'count', 'passed', 'broken-and-reported', 'silently-wrong', 'unreported', 'crashed', 'time'];
  const lines = report.rows.map((r) => [r.op, r.count, r.passed, r.broken, r.silentlyWrong, r.unreported, r.crashed, `${(r.ms / 1000).toFixed(1)} s`].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [row(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(row)].join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('robustness')
    .option('--seed <n>', 'seed of the random sequence (default: random, printed)', (v) => Number.parseInt(v, 10))
    .option('--operations <n>', 'operations to run', (v) => Number.parseInt(v, 10), 100)
    .option('--vault <kind>', 'file or s3 (s3rver behind a faulty proxy on 127.0.0.1)', 'file')
    .option('--fault-rate <p>', 'share of S3 requests answered with a fault', Number.parseFloat, 0.05)
    .option('--quiet', 'print only the table', false)
    .parse([...argv]);
  const o = program.opts<{ seed?: number; operations: number; vault: string; faultRate: number; quiet: boolean }>();
  if (o.vault !== 'file' && o.vault !== 's3') throw new Error(`--vault ${o.vault}: use file or s3`);
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  process.stdout.write(`robustness: seed ${seed}, ${o.operations} operations, ${o.vault} vault\n`);
  const started = performance.now();
  const report = await runRobustness({ seed, operations: o.operations, vault: o.vault, faultRate: o.faultRate, ...(o.quiet ? {} : { log: (l) => void process.stdout.write(`${l}\n`) }) });
  process.stdout.write(`\n${formatTable(report)}\n\n${report.backups} backups; ${Object.keys(report.faults).length > 0 ? `S3 faults injected: ${JSON.stringify(report.faults)}; ` : ''}${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  for (const d of report.defects) process.stdout.write(`DEFECT ${d}\n`);
  return report.defects.length === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = await main(process.argv);

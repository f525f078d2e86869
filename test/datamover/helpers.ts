/** Builders and comparers for data-mover tests: seeded trees with awkward names, tree snapshots. */
import { createHash } from 'node:crypto';
import { afterAll } from '@jest/globals';
import { chmod, lstat, lutimes, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Command } from 'commander';
import { registerDatamoverCommands, type DatamoverIO } from '../../cli/commands/datamover.js';
import { reportFailure } from '../../cli/main.js';
import type { ChunkerParams } from '../../core/datamover/fastcdc.js';
import { openVault } from '../../core/vault/open.js';
import { BACKUP_INDEX_FORMAT, gatherCommitments, type BackupIndexDocument } from '../../core/vault/backup-index.js';
import { backupRecordKey, inventoryKey, manifestsPrefix, milvusStateKey, volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import type { VaultStore } from '../../core/vault/store.js';

/** Tiny chunks so that small test files span many chunks and packs. */
export const SMALL_CHUNKS: ChunkerParams = { minSize: 1024, avgSize: 4096, maxSize: 16384 };

const created: string[] = [];

/** A fresh temporary directory, removed after the test file. */
export async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `mg-dm-${name}-`));
  created.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(created.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Deterministic pseudo-random bytes and numbers from a seed. */
export class Rng {
  private counter = 0;
  constructor(private readonly seed: string) {}
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let off = 0; off < n; off += 32) createHash('sha256').update(`${this.seed}:${this.counter++}`).digest().copy(out, off);
    return out;
  }
  int(max: number): number {
    return this.bytes(4).readUInt32BE(0) % max;
  }
}

const b = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s) : s);
const at = (root: string, ...parts: (string | Buffer)[]): Buffer => Buffer.concat([Buffer.from(root), ...parts.flatMap((p) => [Buffer.from('/'), b(p)])]);

/** Names a Linux file system accepts and naive tools mangle. */
export const AWKWARD_NAMES: (string | Buffer)[] = [
  'plain.txt',
  'with space',
  'tab\there',
  'new\nline',
  'ünïcødé-文件-🙂',
  Buffer.from([0x66, 0xff, 0xfe, 0x80, 0x2e, 0x62, 0x69, 0x6e]), // not UTF-8
  '-leading-dash',
  'a-c', // sorts between "a" and "a/..." in byte order but after them in walk order
  '.hidden',
];

/**
 * Writes a seeded tree into `root`: every awkward name as a file, empty files and directories,
 * a deep path, files spanning many (small) chunks, modes 0600/0755, relative, absolute and
 * dangling symlinks, and old mtimes.
 */
export async function buildTree(root: string, seed = 'tree'): Promise<void> {
  const rng = new Rng(seed);
  await mkdir(root, { recursive: true });
  for (const name of AWKWARD_NAMES) await writeFile(at(root, name), rng.bytes(rng.int(3000)));
  await mkdir(at(root, 'a'));
  await writeFile(at(root, 'a', 'big.bin'), rng.bytes(200_000 + rng.int(50_000)));
  await writeFile(at(root, 'a', 'empty'), '');
  await mkdir(at(root, 'empty-dir'));
  await mkdir(at(root, 'a', 'nested\nnewline dir'));
  await writeFile(at(root, 'a', 'nested\nnewline dir', 'inner'), rng.bytes(5000));
  let deep = root;
  for (let i = 0; i < 30; i++) {
    deep = join(deep, `level-${i}`);
    await mkdir(deep);
  }
  await writeFile(join(deep, 'bottom'), rng.bytes(70_000));
  await writeFile(at(root, 'secret'), rng.bytes(100));
  await chmod(at(root, 'secret'), 0o600);
  await writeFile(at(root, 'tool.sh'), '#!/bin/sh\necho hi\n');
  await chmod(at(root, 'tool.sh'), 0o755);
  await symlink('a/big.bin', at(root, 'link-relative'));
  await symlink('/etc/hostname', at(root, 'link-absolute'));
  await symlink('../does/not/exist', at(root, 'a', 'link-dangling'));
  await symlink(Buffer.from([0x74, 0xff, 0x0a]), at(root, 'link-odd-target'));
  const old = new Date('2003-04-05T06:07:08.123Z');
  await utimes(at(root, 'plain.txt'), old, old);
  await lutimes(at(root, 'link-relative'), old, old);
  await utimes(at(root, 'empty-dir'), old, old);
  await chmod(at(root, 'empty-dir'), 0o750);
}

/** Everything a restore must reproduce, per path, with mtimes at microsecond precision. */
export async function snapshotTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (abs: Buffer, rel: string): Promise<void> => {
    const s = await lstat(abs, { bigint: true });
    const mtimeUs = (s.mtimeNs / 1000n).toString();
    if (s.isSymbolicLink()) {
      out.set(rel, `link ${(await readlink(abs, { encoding: 'buffer' })).toString('hex')} ${mtimeUs}`);
    } else if (s.isDirectory()) {
      out.set(rel, `dir ${(s.mode & 0o7777n).toString(8)} ${mtimeUs}`);
      const names = await readdir(abs, { encoding: 'buffer' });
      for (const name of names) await visit(Buffer.concat([abs, Buffer.from('/'), name]), `${rel}/${name.toString('hex')}`);
    } else {
      const digest = createHash('sha256').update(await readFile(abs)).digest('hex');
      out.set(rel, `file ${(s.mode & 0o7777n).toString(8)} ${s.size} ${digest} ${mtimeUs}`);
    }
  };
  await visit(Buffer.from(root), '');
  return out;
}

/**
 * Removes the last `count` regular-file lines of a stored index and stores it again: still
 * valid gzip, still sorted, every directory still present — damage only the chain can see.
 */
export async function dropIndexLines(vault: { get(key: string): Promise<Buffer>; put(key: string, body: Uint8Array): Promise<void> }, key: string, count: number): Promise<void> {
  const lines = gunzipSync(await vault.get(key)).toString('utf8').split('\n');
  let dropped = 0;
  for (let i = lines.length - 1; i > 0 && dropped < count; i--) {
    if (lines[i]!.includes('"t":"f"')) {
      lines.splice(i, 1);
      dropped++;
    }
  }
  if (dropped < count) throw new Error(`${key} has fewer than ${count} file lines`);
  await vault.put(key, gzipSync(lines.join('\n')));
}

/**
 * Makes reads of `key` from the `fromOpen`-th on (1 = the first), `times` of them (all by
 * default), fail the way a reset connection does: the stream delivers the first half of the
 * object, then errors with ECONNRESET (once `until` resolves, where given). Returns how many
 * times the key was opened.
 */
export function cutReadsShort(vault: VaultStore, key: string, options: { fromOpen?: number; times?: number; until?: Promise<unknown> } = {}): () => number {
  let opens = 0;
  const from = options.fromOpen ?? 1;
  const openRead = vault.openRead.bind(vault);
  vault.openRead = async (k: string) => {
    if (k !== key || ++opens < from || opens >= from + (options.times ?? Infinity)) return openRead(k);
    const body = await vault.get(key);
    let sent = false;
    return new Readable({
      read() {
        if (sent) return;
        sent = true;
        this.push(body.subarray(0, Math.floor(body.length / 2)));
        const cut = (): void => void this.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
        if (options.until) void options.until.then(cut);
        else cut();
      },
    });
  };
  return () => opens;
}

/**
 * Writes `backups/<id>/backup.json` the way the backup workflow's Finalize step does: the
 * document with every volume's summary digest and every manifest under the backup committed.
 */
export async function writeBackupRecord(vault: VaultStore, backupId: string, pvcs: readonly string[]): Promise<BackupIndexDocument> {
  const chain = await gatherCommitments(vault, backupId, pvcs);
  const document: BackupIndexDocument = {
    format: BACKUP_INDEX_FORMAT,
    backupId,
    plan: 'nightly',
    cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'eu-west-1' },
    namespace: 'vector-db',
    startedAt: '2026-11-23T02:00:00.000Z',
    completedAt: '2026-11-23T02:09:00.000Z',
    inventoryKey: inventoryKey(backupId),
    milvusKey: milvusStateKey(backupId),
    rowCounts: [],
    volumes: pvcs.map((pvc) => {
      const v = chain.volumes.get(pvc)!;
      return { pvc, role: 'minio', snapshot: `${backupId}-${pvc}`, indexKey: volumeIndexKey(backupId, pvc), summaryKey: volumeSummaryKey(backupId, pvc), summarySha256: v.summarySha256, bytesTotal: v.bytesTotal, bytesUploaded: v.bytesUploaded, files: v.files };
    }),
    manifests: chain.manifests,
  };
  await vault.put(backupRecordKey(backupId), Buffer.from(JSON.stringify(document, null, 2)));
  return document;
}

/**
 * A `backup.json` that commits to every object under the backup's manifests (as Finalize's does),
 * for tests of what reads the manifests; its one volume has no export. Returns its bytes.
 */
export async function commitManifests(vault: VaultStore, backupId: string, namespace = 'vector-db'): Promise<Buffer> {
  const manifests = [];
  for await (const o of vault.list(manifestsPrefix(backupId))) {
    const body = await vault.get(o.key);
    manifests.push({ key: o.key, sha256: createHash('sha256').update(body).digest('hex'), size: body.length });
  }
  const pvc = 'data-milvus-etcd-0';
  const volume = { pvc, role: 'etcd', snapshot: `${backupId}-${pvc}`, indexKey: volumeIndexKey(backupId, pvc), summaryKey: volumeSummaryKey(backupId, pvc), bytesTotal: 0, bytesUploaded: 0, files: 0 };
  const document: BackupIndexDocument = { format: BACKUP_INDEX_FORMAT, backupId, plan: 'nightly', cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'eu-west-1' }, namespace, startedAt: '2026-11-23T02:00:00.000Z', completedAt: '2026-11-23T02:09:00.000Z', inventoryKey: inventoryKey(backupId), milvusKey: milvusStateKey(backupId), rowCounts: [], volumes: [volume], manifests };
  const body = Buffer.from(JSON.stringify(document, null, 2));
  await vault.put(backupRecordKey(backupId), body);
  return body;
}

/** What a `milvus-guard datamover …` run printed and exited with. */
export interface DatamoverRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `milvus-guard datamover <args>` in this process, with main's error reporting (exit 1 and one
 * line for a user's mistake, a stack for a bug), its clock at `now`.
 */
export async function runDatamoverCli(args: readonly string[], now: Date = new Date('2026-12-05T02:00:00Z')): Promise<DatamoverRun> {
  const out = { stdout: '', stderr: '' };
  const io: DatamoverIO = { stdout: (t) => void (out.stdout += t), stderr: (t) => void (out.stderr += t), stderrIsTTY: false, now: () => now, isRoot: false, openVault };
  const program = new Command('milvus-guard').exitOverride();
  registerDatamoverCommands(program, io);
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'milvus-guard', 'datamover', ...args]);
    return { code: typeof process.exitCode === 'number' ? process.exitCode : 0, ...out };
  } catch (err) {
    return { code: reportFailure(err, (t) => void (out.stderr += t)), ...out };
  }
}

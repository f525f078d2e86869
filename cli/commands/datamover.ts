/**
 * `milvus-guard datamover backup|restore|verify`: the data mover's command line, used alone
 * against a directory and a vault URL and as the entry point of the data-mover Job image.
 * Results go to stdout (one JSON object with --json); a progress line goes to stderr only when
 * stderr is a terminal, so logs of the Job stay clean.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { asAwsEnvironmentError, awsFailureKind, UserError } from '../../core/errors.js';
import { backupVolume } from '../../core/datamover/backup.js';
import { ChunkError } from '../../core/datamover/chunk-reader.js';
import { IndexCorruptError } from '../../core/datamover/index-format.js';
import { RestoreError, restoreVolume } from '../../core/datamover/restore.js';
import { MAX_SKIPPED_NAMED } from '../../core/datamover/walk.js';
import { checkBackupId, checkRestoreId, checkVolumeName } from '../../core/vault/layout.js';
import { openVault, type VaultConnectOptions } from '../../core/vault/open.js';
import { ObjectNotFoundError, ShortReadError, type VaultStore } from '../../core/vault/store.js';
import { SummaryCorruptError } from '../../core/datamover/summary.js';
import { formatBytes, formatDuration } from '../format.js';

/** The process around the commands; tests pass their own. */
export interface DatamoverIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Whether stderr is a terminal (progress lines are shown only then). */
  readonly stderrIsTTY: boolean;
  /** Wall-clock time, read once per command. */
  readonly now: () => Date;
  /** Whether the process may set file owners (it runs as root). */
  readonly isRoot: boolean;
  /** Opens a vault; tests substitute an in-memory one. */
  readonly openVault: (url: string, options: VaultConnectOptions) => Promise<VaultStore>;
}

const processIO: DatamoverIO = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  get stderrIsTTY() {
    return process.stderr.isTTY === true;
  },
  now: () => new Date(),
  isRoot: process.getuid?.() === 0,
  openVault,
};

interface VaultFlags {
  vault: string;
  endpoint?: string;
  credentialsFile?: string;
  region?: string;
  kmsKeyId?: string;
  objectLockMode?: 'GOVERNANCE' | 'COMPLIANCE';
  json?: boolean;
}

function addVaultOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--vault <url>', 'the vault: file:///absolute/path or s3://bucket/prefix')
    .option('--endpoint <url>', 'S3-compatible endpoint (path-style), for s3:// vaults not on AWS')
    .option('--credentials-file <path>', 'AWS shared credentials file whose [default] profile holds the keys of an s3:// vault (e.g. a mounted Secret; default: the environment, Pod Identity or the instance role)')
    .option('--region <region>', 'AWS region of an s3:// vault (default: from the environment)')
    .option('--kms-key-id <id>', 'KMS key id or ARN for SSE-KMS on objects written to an s3:// vault')
    .addOption(new Option('--object-lock-mode <mode>', 'Object Lock mode for retained objects').choices(['GOVERNANCE', 'COMPLIANCE']).default('GOVERNANCE'))
    .option('--json', 'print one JSON object with the result on stdout', false);
}

/** Runs `check` and prefixes a `UserError` with the flag that carried the bad value. */
function flag<T>(name: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof UserError) throw new UserError(`${name}: ${err.message}`);
    throw err;
  }
}

/** The keys in the [default] profile of a shared credentials file, or a one-line error naming the file. */
async function credentialsFrom(path: string): Promise<VaultConnectOptions['credentials']> {
  const { fromIni } = await import('@aws-sdk/credential-providers');
  try {
    await access(path, constants.R_OK);
  } catch (err) {
    throw new UserError(`--credentials-file: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); pass a readable AWS shared credentials file`);
  }
  try {
    // Only this file: a profile of the same name in ~/.aws/config must not stand in for it.
    return await fromIni({ filepath: path, configFilepath: path, profile: 'default', ignoreCache: true })();
  } catch (err) {
    throw new UserError(`--credentials-file: ${path} has no usable [default] profile (${(err as Error).message}); write aws_access_key_id and aws_secret_access_key under [default]`);
  }
}

async function connect(flags: VaultFlags, io: DatamoverIO, extra: Pick<VaultConnectOptions, 'partSize'> = {}): Promise<VaultStore> {
  if (flags.endpoint !== undefined) {
    flag('--endpoint', () => {
      try {
        new URL(flags.endpoint!);
      } catch {
        throw new UserError(`${JSON.stringify(flags.endpoint)} is not a URL (e.g. http://127.0.0.1:9000)`);
      }
    });
  }
  const credentials = flags.credentialsFile !== undefined && flags.vault.startsWith('s3:') ? await credentialsFrom(flags.credentialsFile) : undefined;
  try {
    return await io.openVault(flags.vault, {
      ...extra,
      ...(credentials ? { credentials } : {}),
      ...(flags.endpoint ? { endpoint: flags.endpoint } : {}),
      ...(flags.region ? { region: flags.region } : {}),
      ...(flags.kmsKeyId ? { kmsKeyId: flags.kmsKeyId } : {}),
      ...(flags.objectLockMode ? { objectLockMode: flags.objectLockMode } : {}),
    });
  } catch (err) {
    if (err instanceof UserError) throw new UserError(`--vault: ${err.message}`);
    throw err;
  }
}

function positiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new UserError(`${name}: ${JSON.stringify(value)} must be a whole number from 1 to 256`);
    return n;
  };
}

/** S3's smallest and largest part of a multipart upload, in MiB. */
const PART_MIB = { min: 5, max: 5 * 1024 } as const;

function partSizeMiB(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < PART_MIB.min || n > PART_MIB.max) {
    throw new UserError(`--part-size: ${JSON.stringify(value)} must be a whole number of MiB from ${PART_MIB.min} (S3's smallest part) to ${PART_MIB.max}`);
  }
  return n;
}

/** What the AWS SDK attaches to the errors it throws once its retries are spent. */
interface SdkError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly $metadata: { readonly httpStatusCode?: number; readonly attempts?: number };
}

const isSdkError = (err: unknown): err is SdkError => err instanceof Error && typeof (err as { $metadata?: unknown }).$metadata === 'object' && (err as { $metadata?: unknown }).$metadata !== null;

/**
 * An S3 vault that refused or failed a request after the SDK's retries (AccessDenied, a 5xx that
 * did not pass, SlowDown that did not ease, connections reset or refused), or no credentials:
 * the vault's or the environment's state, not a bug of ours, so one line naming the vault, what
 * it answered and what to do (the fault matrix's S3 cells found these printed as internal errors
 * with a stack, in the Job's log and the backup's failure). Anything else passes unchanged.
 */
function vaultFailure(vaultUrl: string): (err: unknown) => unknown {
  return (err) => {
    // No credentials (or an SSO token) found: the CLI's shared line (core/errors.ts), with the data mover's own fix.
    if (awsFailureKind(err) === 'no-credentials') {
      return asAwsEnvironmentError(err, { service: 'S3', resource: `vault ${vaultUrl}` }, { 'no-credentials': 'give the data mover credentials (environment, Pod Identity, or --credentials-file)' })!;
    }
    if (!isSdkError(err)) return err;
    const status = err.$metadata.httpStatusCode;
    const attempts = err.$metadata.attempts === undefined ? '' : ` after ${err.$metadata.attempts} attempt(s)`;
    const answered = status === undefined ? `could not be reached (${err.code ?? err.name}: ${err.message})` : `answered ${err.name} (HTTP ${status}): ${err.message}`;
    const hint =
      status === 403
        ? 'check the credentials and the vault role\'s permissions on the bucket and its KMS key'
        : status === 404
          ? 'check --vault (the bucket must exist) and --endpoint'
          : 'the vault is failing or throttling: run again later (the data mover resumes: packs already uploaded or files already restored are kept)';
    return new UserError(`vault ${vaultUrl} ${answered}${attempts}; ${hint}`, { cause: err });
  };
}

// A damaged vault is not a bug of ours: report it like a user-facing failure (message, exit 1,
// no stack) so scripts and the Job's logs show exactly which file is affected. A bad path in
// `pathFlag` ("source …", "target …") is prefixed with that flag.
function asFailure(pathFlag: '--source' | '--target', vaultUrl: string): (err: unknown) => unknown {
  const vaultFailed = vaultFailure(vaultUrl);
  return (err) => {
    const failed = vaultFailed(err);
    if (failed !== err) return failed;
    if (err instanceof UserError && err.message.startsWith(`${pathFlag.slice(2)} `)) return new UserError(`${pathFlag}: ${err.message}`);
    if (err instanceof RestoreError || err instanceof ChunkError || err instanceof IndexCorruptError) return new UserError(err.message, { cause: err });
    // A summary, index or pack of an earlier backup that is gone or unreadable (the robustness
    // run found these printed as internal errors): the vault's damage, named in one line.
    if (err instanceof SummaryCorruptError || err instanceof ObjectNotFoundError || err instanceof ShortReadError) {
      return new UserError(`${err.message}; the vault is damaged: run milvus-guard datamover verify to see what is broken, and restore another backup (backup --full reads no earlier backup)`, { cause: err });
    }
    return err;
  };
}

/**
 * Runs `work` with a progress line, redrawn in place at most a few times a second when stderr is
 * a terminal and cleared however `work` ends; what `work` throws goes through `failure`
 * (by default it passes unchanged).
 */
async function withProgress<T>(io: DatamoverIO, work: (update: (text: string | (() => string)) => void) => Promise<T>, failure: (err: unknown) => unknown = (err) => err): Promise<T> {
  const tty = io.stderrIsTTY;
  let last = 0;
  let shown = false;
  // `text` may be a function, formatted only when a line is drawn: a backup reports after every
  // index entry, and formatting each report (formatBytes) cost the main thread ~0.5 s of a
  // 2.5 s incremental backup of 16,000 entries whose line was then thrown away.
  const update = (text: string | (() => string)): void => {
    if (!tty) return;
    const t = Date.now();
    if (t - last < 250) return;
    last = t;
    shown = true;
    io.stderr(`\r\x1b[K${typeof text === 'function' ? text() : text}`);
  };
  try {
    return await work(update);
  } catch (err) {
    throw failure(err);
  } finally {
    if (shown) io.stderr('\r\x1b[K');
  }
}

/** Refuses, naming the flag, a value that is not a SHA-256 in lowercase hex. */
function checkSha256(flagName: string, value: string): void {
  if (!/^[0-9a-f]{64}$/.test(value)) throw new UserError(`${flagName}: ${JSON.stringify(value)} is not a SHA-256; give 64 lowercase hexadecimal digits`);
}

/**
 * A run id as the workflow passes it: the Job's UID, through the downward API and the kubelet's
 * `$(VAR)` expansion in args. A pod without the label expands to nothing, or (the variable
 * undefined) keeps the reference as written; both are refused by name.
 */
function checkRunId(id: string): void {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)) return;
  throw new UserError(
    `--run-id: ${JSON.stringify(id)} is not a run id; give 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit ` +
      "(the workflow's export Job passes its UID from the pod label batch.kubernetes.io/controller-uid, which Kubernetes sets from 1.27)",
  );
}

export function registerDatamoverCommands(program: Command, io: DatamoverIO = processIO): void {
  const dm = program.command('datamover').description('move volume data into and out of the vault (incremental, deduplicated, verified)');

  addVaultOptions(
    dm
      .command('backup')
      .description('back up a directory as one volume of a backup')
      .requiredOption('--source <dir>', 'the directory to back up (the mounted volume)')
      .requiredOption('--volume <name>', 'the volume name (e.g. the PVC name)')
      .requiredOption('--backup-id <id>', 'the backup this volume belongs to'),
  )
    .option('--full', 're-read every file instead of skipping files unchanged since the previous backup', false)
    .option('--committed-parent', "compare only with a previous backup whose backup.json commits to its summary (the workflow's backups); others are passed over", false)
    .option('--run-id <id>', "names this run, the same across its retries (the workflow passes the export Job's UID): written into the index and summary; an earlier attempt's index or summary is resumed only when it names the same run")
    .option('--retain-until <date>', 'Object Lock date (ISO 8601) for new objects; reused ones are extended to it')
    .option('--workers <n>', 'hashing threads (default: one per core, at most 8)', positiveInt('--workers'))
    .option('--upload-concurrency <n>', 'pack uploads in flight', positiveInt('--upload-concurrency'), 3)
    .option('--part-size <MiB>', `s3:// vaults: objects (packs, the index) larger than this go up as multipart uploads in parts of this size, ${PART_MIB.min} to ${PART_MIB.max} (default: 16)`, partSizeMiB)
    .action(async (flags: VaultFlags & { source: string; volume: string; backupId: string; full: boolean; committedParent: boolean; runId?: string; retainUntil?: string; workers?: number; uploadConcurrency: number; partSize?: number }) => {
      flag('--volume', () => checkVolumeName(flags.volume));
      flag('--backup-id', () => checkBackupId(flags.backupId));
      if (flags.runId !== undefined) checkRunId(flags.runId);
      const now = io.now();
      const retainUntil = flags.retainUntil === undefined ? undefined : flag('--retain-until', () => parseRetainUntil(flags.retainUntil!, now));
      const vault = await connect(flags, io, flags.partSize ? { partSize: flags.partSize * 1024 * 1024 } : {});
      // Ctrl-C, or the SIGTERM of a Job deleted (its pod's termination): stop without committing,
      // and say so in the progress report, so retention does not wait a day for this writer.
      const interrupted = onInterrupt(`backup ${flags.backupId} of volume ${flags.volume}`, 'nothing was committed; run the command again to back the volume up');
      const result = await withProgress(
        io,
        (update) =>
          backupVolume({
            signal: interrupted.signal,
            source: flags.source,
            vault,
            volume: flags.volume,
            backupId: flags.backupId,
            now,
            full: flags.full,
            committedParent: flags.committedParent,
            ...(flags.runId === undefined ? {} : { runId: flags.runId }),
            uploadConcurrency: flags.uploadConcurrency,
            ...(retainUntil ? { retainUntil } : {}),
            ...(flags.workers ? { workers: flags.workers } : {}),
            // Progress for describe and --wait, in the vault beside the backup (core/datamover/progress.ts).
            progress: { log: (l: string) => io.stderr(`${l}\n`) },
            onProgress: (s) => update(() => `backup ${flags.volume}: ${s.files} files, ${formatBytes(s.bytesScanned)} read, ${formatBytes(s.bytesUploaded)} uploaded`),
          }),
        asFailure('--source', vault.url),
      ).finally(interrupted.dispose);
      if (flags.json) io.stdout(`${JSON.stringify(result)}\n`);
      else
        io.stdout(
          `backup ${result.backupId} volume ${result.volume}: ${result.files} files, ${result.directories} directories, ${result.symlinks} symlinks` +
            `${result.skipped ? ` (${skippedText(result.skipped, result.skippedFiles ?? [])})` : ''}; ${formatBytes(result.bytesScanned)} of ${formatBytes(result.bytesTotal)} read, ` +
            `${formatBytes(result.bytesUploaded)} uploaded, ${result.chunksNew} new and ${result.chunksReused} reused chunks, ` +
            `${parentText(result)}, ${formatDuration(result.durationSeconds)}\n`,
        );
    });

  addVaultOptions(
    dm
      .command('restore')
      .description('restore one volume of a backup into an empty directory (re-run to resume)')
      .requiredOption('--volume <name>', 'the volume name')
      .requiredOption('--backup-id <id>', 'the backup to restore from')
      .requiredOption('--target <dir>', 'an empty directory (created if missing)'),
  )
    .option('--concurrency <n>', 'ranged pack reads in flight, 8 MiB each (default: one per writer thread + 2, 10 to 16; 4 to 16 writer threads, four per core where files average 1 MiB or more, else two)', positiveInt('--concurrency'))
    .option('--restore-id <id>', 'the restore this hydration belongs to: its progress goes to progress/restores/<id>/<volume>.json in the vault')
    .option('--summary-sha256 <hex>', "the SHA-256 the backup's backup.json commits to for this volume's summary: a summary that does not hash to it is refused")
    .action(async (flags: VaultFlags & { volume: string; backupId: string; target: string; concurrency?: number; restoreId?: string; summarySha256?: string }) => {
      flag('--volume', () => checkVolumeName(flags.volume));
      flag('--backup-id', () => checkBackupId(flags.backupId));
      if (flags.summarySha256 !== undefined) checkSha256('--summary-sha256', flags.summarySha256);
      const vault = await connect(flags, io);
      // Ctrl-C, or the SIGTERM of a hydration Job deleted: stop the writers, keep what resumes.
      const interrupted = onInterrupt(`restore of backup ${flags.backupId} volume ${flags.volume}`, `${flags.target} holds a partial restore; run the command again to resume it`);
      const result = await withProgress(
        io,
        (update) =>
          restoreVolume({
            signal: interrupted.signal,
            vault,
            volume: flags.volume,
            backupId: flags.backupId,
            target: flags.target,
            ...(flags.concurrency !== undefined ? { concurrency: flags.concurrency } : {}),
            ...(flags.summarySha256 !== undefined ? { summarySha256: flags.summarySha256 } : {}),
            preserveOwnership: io.isRoot,
            ...(flags.restoreId ? { progress: { restoreId: flag('--restore-id', () => checkRestoreId(flags.restoreId!)), log: (l: string) => io.stderr(`${l}\n`) } } : {}),
            onProgress: (p) => update(`restore ${flags.volume}: ${p.files} files, ${formatBytes(p.bytesWritten)} written`),
          }),
        asFailure('--target', vault.url),
      ).finally(interrupted.dispose);
      if (flags.json) io.stdout(`${JSON.stringify(result)}\n`);
      else
        io.stdout(
          `restored backup ${result.backupId} volume ${result.volume} into ${flags.target}: ${result.files} files, ${result.directories} directories, ` +
            `${result.symlinks} symlinks, ${formatBytes(result.bytesWritten)} written${result.filesResumed ? `, ${result.filesResumed} files kept from an interrupted run` : ''}, ${formatDuration(result.durationSeconds)}\n`,
        );
    });

  addVaultOptions(
    dm
      .command('verify')
      .description('walk the integrity chain (backup.json, summaries, indexes, manifests, packs, and the bucket copies of S3-backed Milvus: commit, manifest pages, copied objects) and name every break (exit 1 on any); backups still running are listed apart')
      .option('--volume <name>', 'check only this volume (with --backup-id)')
      .option('--backup-id <id>', 'check only this backup (with --volume)')
      .option('--read-data', 'also read and hash every chunk (slow: reads the whole backup); by default packs are only checked for presence and length', false)
      .option('--index-sha256 <hex>', "with --backup-id: the SHA-256 of its backup.json as the backup's record holds it (milvus-guard backup describe ID -o json: indexSha256); a backup.json written over it is a break")
      .option('--strict', 'also exit 1 on an unfinished backup (no backup.json and not marked failed: running, its execution died, or its backup.json was deleted)', false),
  ).action(async (flags: VaultFlags & { volume?: string; backupId?: string; readData: boolean; strict: boolean; indexSha256?: string }) => {
    if ((flags.volume === undefined) !== (flags.backupId === undefined)) {
      throw new UserError(`${flags.volume === undefined ? '--volume' : '--backup-id'} is missing: give --volume and --backup-id together, or neither to verify the whole vault`);
    }
    if (flags.indexSha256 !== undefined) {
      if (flags.backupId === undefined) throw new UserError("--index-sha256 checks one backup's backup.json: give --backup-id and --volume too");
      checkSha256('--index-sha256', flags.indexSha256);
    }
    if (flags.volume !== undefined) flag('--volume', () => checkVolumeName(flags.volume!));
    if (flags.backupId !== undefined) flag('--backup-id', () => checkBackupId(flags.backupId!));
    const vault = await connect(flags, io);
    // Loaded here, not at the top: verify checks the bucket copies of S3-backed Milvus too, which
    // brings in the S3 client, and a backup or restore Job paid for loading it at start.
    const { verifyVault } = await import('../../core/datamover/verify.js');
    // Verify reports damage as problems, not by throwing: what it throws passes unchanged (a
    // vault that does not exist or holds nothing of ours is a UserError: one line, exit 1),
    // but for an S3 vault that refused or failed a request.
    const result = await withProgress(
      io,
      (update) =>
        verifyVault({
          vault,
          readData: flags.readData,
          ...(flags.volume !== undefined && flags.backupId !== undefined ? { volume: flags.volume, backupId: flags.backupId } : {}),
          ...(flags.indexSha256 === undefined ? {} : { indexSha256: flags.indexSha256 }),
          onProgress: (p) => update(`verify: ${p.files} files, ${formatBytes(p.bytesVerified)} checked`),
        }),
      vaultFailure(vault.url),
    );
    if (flags.json) {
      io.stdout(`${JSON.stringify(result)}\n`);
    } else {
      for (const p of result.problems) io.stderr(`${p.kind}: backup ${p.backupId}${p.volume === undefined ? '' : ` volume ${p.volume}`}: ${p.path}: ${p.problem}\n`);
      for (const u of result.unfinished) io.stderr(`unfinished: backup ${u.backupId}: no ${u.path} yet: running, or its execution died: milvus-guard backup cancel ${u.backupId}\n`);
      const data =
        (result.mode === 'read-data' ? `${formatBytes(result.bytesVerified)} read and hashed` : `${result.packs} packs present (chunks not read; --read-data hashes them)`) +
        (result.milvusObjects > 0 ? `, ${result.milvusObjects} copied Milvus objects present with their sizes` : '');
      io.stdout(
        `verified ${result.backups} backups and ${result.volumeBackups} volume backups in ${vault.url}: ${result.files} files, ${result.chunks} chunk references, ${data}; ` +
          `${result.problems.length === 0 ? 'no problems' : `${result.problems.length} problem(s)`}` +
          `${result.unfinished.length === 0 ? '' : `; ${result.unfinished.length} unfinished backup(s) not checked${flags.strict ? ' (--strict: counted)' : ' (--strict counts them)'}`}\n`,
      );
    }
    // A backup that is running is not damage, so it fails the run only when asked (--strict):
    // a cron'd verify must not page someone because it overlapped the nightly backup.
    process.exitCode = result.problems.length > 0 || (flags.strict && result.unfinished.length > 0) ? 1 : 0;
  });

  dm.command('milvus-relay')
    .description("relay Milvus calls with the credentials of this pod's environment (MILVUS_USERNAME and MILVUS_PASSWORD); run by the workflows in their relay pod")
    .option('--wait', 'keep the pod running until it is stopped (SIGTERM), so sessions can exec into it')
    .option('--stdio', 'serve one JSON call per stdin line, one JSON answer per stdout line, until stdin ends')
    .option('--rest <url>', "Milvus's REST v2 base URL (port 19530)")
    .option('--management <url>', "Milvus's management base URL (port 9091)")
    .action(async (flags: { wait?: boolean; stdio?: boolean; rest?: string; management?: string }) => {
      if (flags.wait === flags.stdio) throw new UserError('give one of --wait or --stdio');
      if (flags.wait) {
        await new Promise<void>((resolve) => {
          const alive = setInterval(() => undefined, 1 << 30);
          const stop = () => {
            clearInterval(alive);
            resolve();
          };
          process.once('SIGTERM', stop);
          process.once('SIGINT', stop);
        });
        return;
      }
      const rest = flag('--rest', () => httpUrl(flags.rest, '--rest'));
      const management = flag('--management', () => httpUrl(flags.management, '--management'));
      // Loaded here, not at the top: its HTTP client (undici) is a tenth of the bundle, and every
      // backup, restore and verify Job paid for parsing it at start.
      const { credentialsFromEnv, serveRelay } = await import('../../core/milvus/relay-server.js');
      await serveRelay(process.stdin, process.stdout, { rest, management, credentials: credentialsFromEnv(process.env) });
    });
}

/**
 * An AbortSignal that SIGINT and SIGTERM abort, with a one-line error for `what` that says
 * `then` and exits 128 + the signal; `dispose` stops listening. The data mover is PID 1 in its
 * container, where a signal without a handler is ignored until the grace period's SIGKILL.
 */
function onInterrupt(what: string, then: string): { readonly signal: AbortSignal; readonly dispose: () => void } {
  const controller = new AbortController();
  const abort = (signal: NodeJS.Signals): void => controller.abort(new UserError(`${what} interrupted (${signal}): ${then}`, { exitCode: 128 + (signal === 'SIGINT' ? 2 : 15) }));
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', abort);
      process.off('SIGTERM', abort);
    },
  };
}

/** A plain http(s) URL given by a flag. */
function httpUrl(value: string | undefined, name: string): string {
  if (!value) throw new UserError(`${name} is required with --stdio`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UserError(`${JSON.stringify(value)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UserError(`${JSON.stringify(value)} is not an http(s) URL`);
  return url.href;
}

/** How the backup related to its parent: incremental from it, full, or full because it was passed over. */
function parentText(result: { parentBackupId: string | null; parentSkipped: { backupId: string; reason: string } | null }): string {
  if (result.parentBackupId) return `incremental from ${result.parentBackupId}`;
  if (result.parentSkipped) return `full: backup ${result.parentSkipped.backupId} was passed over as the parent (${result.parentSkipped.reason}; datamover verify names the damage)`;
  return 'full';
}

/** "2 special files skipped: run/milvus.sock, fifo" (the first few; --json names up to 100). */
function skippedText(count: number, names: readonly string[]): string {
  const shown = names.slice(0, 5);
  const more = count - shown.length;
  return `${count} special files skipped: ${shown.join(', ')}${more > 0 ? ` and ${more} more (--json names up to ${MAX_SKIPPED_NAMED})` : ''}`;
}

function parseRetainUntil(value: string, now: Date): Date {
  const t = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(t)) throw new UserError(`${JSON.stringify(value)} is not an ISO 8601 date (e.g. 2027-01-31T00:00:00Z)`);
  if (t <= now.getTime()) throw new UserError(`${value} is in the past; Object Lock dates must be in the future`);
  return new Date(t);
}

/**
 * `milvus-guard backup create|list|describe`: start the backup workflow and read the catalog.
 * By default against AWS — the `<name>-backup` state machine in the plan's vault region
 * (Step Functions) and the catalog table (DynamoDB); with `--local [--state DIR]` against the
 * embedded default started by `milvus-guard local up --state DIR`, where the same workflow
 * definition runs in this process.
 */
import type { Command } from 'commander';
import { BACKUP_STEPS, type BackupRecord } from '../../core/catalog/record.js';
import { resolvePlan } from '../../core/config/resolve.js';
import { withReplication } from '../../core/dr/replication.js';
import { UserError } from '../../core/errors.js';
import { executeWorkflow, type ProgressFollow } from '../execution.js';
import { formatBytes, formatDuration, formatProgressTable, formatTable } from '../format.js';
import { listProgress, type VolumeProgress } from '../../core/datamover/progress.js';
import { backupProgressPrefix } from '../../core/vault/layout.js';
import type { VaultStore } from '../../core/vault/store.js';
import type { BackupCatalog } from '../../core/catalog/catalog.js';
import { addWorkflowOptions, catalogFor, configOf, processIO, type WorkflowIO, type WorkflowOptions } from './common.js';
import { failedAtText } from '../../core/workflow/timeline.js';
import { cancelExecution } from '../recover.js';
import type { Config } from '../../core/config/schema.js';
import { holdBackup, releaseBackup, type HoldServices } from '../../core/retention/hold.js';
import { replicaBucketName, vaultBucketName } from '../../core/naming.js';
import { nowOption } from './retention.js';

/** The catalog and the vault of backup `id` (the local cluster's, or the plan's S3 vault in its region). */
async function holdServices(opts: WorkflowOptions, config: Config, id: string): Promise<HoldServices> {
  const catalog = await catalogFor(opts, config);
  if (opts.local) return { catalog, vault: await (await import('../local-mode.js')).localVault(opts.state), now: () => new Date() };
  const record = await catalog.getBackup(id);
  if (!record) throw new UserError(`there is no backup ${id} in the catalog; list them with milvus-guard backup list`);
  return { catalog, vault: await vaultNamed(config, record.vault, `backup ${id}`), now: () => new Date() };
}

/**
 * Vault `name` of the config as this command reaches it: its S3 bucket in its region, or in
 * `region` (a DR region it replicates into) its replica there.
 */
export async function vaultNamed(config: Config, name: string, what: string, region?: string): Promise<VaultStore> {
  const vault = config.vaults.find((v) => v.name === name);
  if (!vault) throw new UserError(`${what} is in vault ${name}, which the config does not define`);
  const at = region ?? vault.region;
  const { GetCallerIdentityCommand, STSClient } = await import('@aws-sdk/client-sts');
  const { Account } = await new STSClient({ region: at }).send(new GetCallerIdentityCommand({}));
  const { S3VaultStore } = await import('../../core/vault/s3-store.js');
  const parts = { installation: config.name, vault: vault.name, account: Account!, region: at };
  const bucket = at === vault.region ? vaultBucketName(parts) : replicaBucketName(parts);
  return new S3VaultStore({ bucket, region: at, objectLockMode: vault.objectLock.mode });
}

/** The vault progress is read from: the local cluster's, or the backup's S3 vault. */
async function progressVault(opts: WorkflowOptions, config: Config, record: BackupRecord): Promise<VaultStore> {
  return opts.local ? (await import('../local-mode.js')).localVault(opts.state) : vaultNamed(config, record.vault, `backup ${record.backupId}`);
}

/** The data mover's progress of each volume of a running backup; none once it has ended. */
export async function backupProgress(vault: VaultStore, record: BackupRecord): Promise<VolumeProgress[]> {
  return record.status === 'InProgress' ? listProgress(vault, backupProgressPrefix(record.backupId)) : [];
}

/**
 * The progress `read` finds; on a failure to reach the vault a warning on stderr and nothing:
 * `describe` still shows the record, which is what it is for.
 */
export async function progressOrNothing(read: () => Promise<VolumeProgress[]>, io: WorkflowIO): Promise<VolumeProgress[]> {
  try {
    return await read();
  } catch (err) {
    io.err(`warning: cannot read the volumes' progress from the vault (${err instanceof Error ? err.message : String(err)}); showing the catalog record only\n`);
    return [];
  }
}

/**
 * What `backup create --wait` follows: the progress of the backup the execution runs (found in
 * the catalog by its execution, or on the local cluster as the plan's backup in progress).
 */
function followBackup(opts: WorkflowOptions, config: Config, catalog: () => Promise<BackupCatalog>, plan: string, tty: boolean): ProgressFollow {
  let vault: VaultStore | undefined;
  return {
    tty,
    poll: async (executionArn) => {
      const records = await (await catalog()).listBackups({ plan });
      const record = records.find((r) => (executionArn ? r.executionId === executionArn : r.status === 'InProgress'));
      if (!record) return [];
      vault ??= await progressVault(opts, config, record);
      return backupProgress(vault, record);
    },
  };
}

/** `backup list` as a kubectl-style table. */
export function renderBackupList(records: readonly BackupRecord[]): string {
  return formatTable(
    ['name', 'plan', 'status', 'start', 'completion', 'size'],
    records.map((r) => [r.backupId, r.plan, r.status, r.startedAt, r.completedAt ?? '', formatBytes(r.sizeBytes)]),
  );
}

/** `backup describe`: status, volumes (with the data mover's progress while it runs), row counts, timeline, hooks and the failure. */
export function renderBackup(r: BackupRecord, progress: readonly VolumeProgress[] = []): string {
  const parts = [
    `Name:        ${r.backupId}\nPlan:        ${r.plan}\nCluster:     ${r.cluster} (namespace ${r.namespace})\nVault:       ${r.vault}\nStatus:      ${r.status}\n` +
      `Started:     ${r.startedAt}\nCompleted:   ${r.completedAt ?? ''}\nDuration:    ${formatDuration(r.durationSeconds)}\n` +
      `Size:        ${formatBytes(r.sizeBytes)}${r.bytesUploaded === undefined ? '' : ` (${formatBytes(r.bytesUploaded)} uploaded)`}\nExecution:   ${r.executionId}\n`,
  ];
  if (r.retainUntil) parts.push(`Locked until: ${r.retainUntil}${r.retention ? ` (kept by ${r.retention.rules.join(', ') || 'no rule'} as of ${r.retention.evaluatedAt})` : ''}\n`);
  if (r.hold) parts.push(`Legal hold:  since ${r.hold.at}: ${r.hold.reason}\n`);
  if (r.expired) parts.push(`Expired:     ${r.expired.at}: ${r.expired.reason}${r.expired.cleared ? '' : ' (objects still under Object Lock: a later retention run deletes them)'}\n`);
  for (const [region, e] of Object.entries(r.replication ?? {})) {
    parts.push(`Replicated:  ${region}: ${e.status}${e.status === 'Complete' ? ` since ${e.at}${e.secretsOpenHere === false ? " (Secrets sealed with a single-Region key: not restorable there)" : ''}` : `, ${e.confirmed} of ${e.objects} objects there at ${e.checkedAt}${e.firstMissing ? ` (${e.firstMissing} missing)` : ''}`}\n`);
  }
  if (r.manifests) {
    const m = r.manifests;
    parts.push(`Manifests:   ${m.objects} objects captured${m.related ? ` (${m.related} by reference)` : ''}, ${m.sealed ?? m.secrets} sealed\n`);
    // What a captured object needs that the namespace does not have: a restore will not start it either.
    for (const w of m.warnings ?? []) parts.push(`  missing: ${w}\n`);
  }
  if (r.objectCopy) {
    const o = r.objectCopy;
    parts.push(`Objects:     ${o.objects} of s3://${o.source.bucket}/${o.source.rootPath} (${formatBytes(o.bytes)}): ${o.copied} copied (${formatBytes(o.bytesCopied)}), ${o.objects - o.copied} already in the vault; commit ${o.key}\n`);
  }
  if (r.failure) parts.push(`\nFailed in ${failedAtText(r.failure)}: ${r.failure.error}\n  ${r.failure.cause}\n`);
  const ordered = BACKUP_STEPS.filter((s) => r.steps[s]);
  parts.push('\nTimeline:\n', formatTable(['step', 'start', 'end', 'outcome', 'detail'], ordered.map((s) => { const e = r.steps[s]!; return [s, e.startedAt, e.endedAt ?? '', e.outcome ?? 'Running', e.detail ?? '']; })));
  if (r.components.length) {
    parts.push('\nVolumes:\n', formatTable(['pvc', 'role', 'snapshot', 'status', 'size', 'uploaded'], r.components.map((c) => [c.pvc, c.role, c.snapshot ?? '', c.status, formatBytes(c.bytesTotal), formatBytes(c.bytesUploaded)])));
  }
  if (progress.length) parts.push('\nExport progress:\n', formatProgressTable(progress));
  if (r.rowCounts.length) {
    // Before the flush and after the snapshots: the same count, apart when Milvus was written to during the backup.
    parts.push(
      '\nRow counts:\n',
      formatTable(['database', 'collection', 'rows', 'before flush', 'after snapshots', 'confirmed by'], r.rowCounts.map((x) => [x.database, x.collection, x.rows, x.rowsBeforeFlush ?? '', x.rowsAfterSnapshots ?? (x.droppedDuringBackup ? 'dropped' : ''), x.confirmedBy])),
    );
  }
  const droppedAfter = r.rowCounts.filter((x) => x.droppedDuringBackup);
  if (r.droppedBeforeFlush?.length || droppedAfter.length) {
    const names = (list: readonly { database: string; collection: string }[]) => list.map((x) => `${x.database}.${x.collection}`).join(', ');
    parts.push('\nDropped during the backup:\n');
    if (r.droppedBeforeFlush?.length) parts.push(`  before its flush was confirmed (not in the backup): ${names(r.droppedBeforeFlush)}\n`);
    if (droppedAfter.length) parts.push(`  after its flush (a restore may or may not have it): ${names(droppedAfter)}\n`);
  }
  if (r.hooks.length) {
    parts.push('\nHooks:\n', formatTable(['phase', 'hook', 'pod', 'container', 'attempts', 'outcome', 'exit'], r.hooks.map((h) => [h.phase, h.hook, h.pod, h.container, h.attempts, h.outcome, h.exitCode ?? ''])));
    for (const h of r.hooks.filter((x) => x.stdout.trim() || x.stderr.trim() || x.error)) {
      parts.push(`  ${h.phase} ${h.hook} on ${h.pod}:${h.stdout.trim() ? ` stdout: ${h.stdout.trim()}` : ''}${h.stderr.trim() ? ` stderr: ${h.stderr.trim()}` : ''}${h.error ? ` (${h.error})` : ''}\n`);
    }
  }
  return parts.join('');
}

interface CreateOptions extends WorkflowOptions {
  plan: string;
  backupName?: string;
  wait?: boolean;
  now?: Date;
}

/** One line for the end of a local `backup create`. */
function summary(r: BackupRecord): string {
  const describe = `milvus-guard backup describe ${r.backupId} --local`;
  if (r.status === 'Available') return `backup ${r.backupId} Available: ${formatBytes(r.sizeBytes)} in ${formatDuration(r.durationSeconds)} (${describe})\n`;
  return `backup ${r.backupId} ${r.status}${r.failure ? ` in ${failedAtText(r.failure)}: ${r.failure.error}: ${r.failure.cause}` : ''} (${describe})\n`;
}

/** Registers `backup create`, `backup list` and `backup describe` on the root program. */
export function registerBackupCommands(program: Command, io: WorkflowIO = processIO): void {
  const backup = program.command('backup').description('start backups and read the backup catalog');

  addWorkflowOptions(
    backup
      .command('create')
      .description('start the backup workflow for a plan')
      .requiredOption('--plan <name>', 'the plan to back up')
      .option('--backup-name <name>', 'name the backup (default: <plan>-<UTC start time>)')
      .option('--wait', 'show progress per step and wait for the end; exit 1 if the backup fails', false)
      .addOption(nowOption('with --local: take the backup as of this instant (its name, start and lock dates), to make a history')),
  ).action(async (opts: CreateOptions) => {
    if (opts.now && !opts.local) throw new UserError('--now needs --local: in AWS a backup starts when its execution does');
    const config = await configOf(opts);
    resolvePlan(config, opts.plan);
    const input = { plan: opts.plan, ...(opts.backupName ? { backupName: opts.backupName } : {}) };
    const progress = followBackup(opts, config, () => catalogFor(opts, config), opts.plan, io === processIO && process.stderr.isTTY === true);
    process.exitCode = await executeWorkflow(opts, io, { workflow: 'backup', config, input, plan: opts.plan, progress }, async (end) => {
      const record = (await (await catalogFor(opts, config)).listBackups({ plan: opts.plan })).find((r) => r.executionId === end.executionArn);
      return { key: 'backup', value: record, text: record && summary(record) };
    });
  });

  addWorkflowOptions(backup.command('list').description('list backups, newest first').option('--plan <name>', 'only backups of this plan')).action(async (opts: WorkflowOptions & { plan?: string }) => {
    const config = await configOf(opts);
    const records = await (await catalogFor(opts, config)).listBackups(opts.plan ? { plan: opts.plan } : {});
    io.out(opts.output === 'json' ? `${JSON.stringify(records, null, 2)}\n` : renderBackupList(records));
    process.exitCode = 0;
  });

  addWorkflowOptions(
    backup
      .command('cancel')
      .description('stop a running backup (or recover one whose execution ended) and clean up after it: clones, Jobs and snapshots removed, GC resumed, post hooks run, the plan lock released')
      .argument('<id>', 'the backup name'),
  ).action(async (id: string, opts: WorkflowOptions) => {
    const config = await configOf(opts);
    if (opts.local) {
      const { cancelLocalBackup } = await import('../local-mode.js');
      const r = await cancelLocalBackup(opts.state, config, id, (line) => io.err(`${line}\n`));
      io.out(opts.output === 'json' ? `${JSON.stringify(r, null, 2)}\n` : `backup ${id} cancelled: ${r.removed.length} object(s) removed${r.gcResumed ? ', GC resumed' : ''}, ${r.postHookRuns} post hook run(s), plan lock released\n`);
    } else {
      const catalog = await catalogFor(opts, config);
      const record = await catalog.getBackup(id);
      if (!record) throw new UserError(`there is no backup ${id} in the catalog; list them with milvus-guard backup list`);
      if (record.status !== 'InProgress') throw new UserError(`backup ${id} is ${record.status}: there is nothing to cancel`);
      const done = await cancelExecution(config, 'backup', id, record.executionId);
      if (done.action === 'stopped') io.out(`stopped ${record.executionId}; RecoverExecution cleans up after it and releases the plan lock (see backup describe ${id})\n`);
      else {
        const after = await catalog.getBackup(id);
        const text = `execution ${record.executionId} had already ended ${done.status}; recovered now: backup ${id} is ${after?.status}${after?.status === 'Failed' ? ', plan lock released' : ''} (see backup describe ${id})\n`;
        io.out(opts.output === 'json' ? `${JSON.stringify({ ...done, record: after }, null, 2)}\n` : text);
      }
    }
    process.exitCode = 0;
  });

  addWorkflowOptions(
    backup
      .command('hold')
      .description('place a legal hold on a backup: every object it needs stays, and retention never expires it, until released')
      .argument('<id>', 'the backup name')
      .requiredOption('--reason <text>', 'why (shown in backup describe, kept for audits)'),
  ).action(async (id: string, opts: WorkflowOptions & { reason: string }) => {
    const config = await configOf(opts);
    const r = await holdBackup(await holdServices(opts, config, id), id, opts.reason);
    io.out(opts.output === 'json' ? `${JSON.stringify(r, null, 2)}\n` : `backup ${id} held: legal hold on ${r.objects} object(s); retention will not expire it (release with milvus-guard backup release ${id})\n`);
    process.exitCode = 0;
  });

  addWorkflowOptions(backup.command('release').description("release a backup's legal hold (packs other held backups need stay held)").argument('<id>', 'the backup name')).action(async (id: string, opts: WorkflowOptions) => {
    const config = await configOf(opts);
    const r = await releaseBackup(await holdServices(opts, config, id), id);
    io.out(opts.output === 'json' ? `${JSON.stringify(r, null, 2)}\n` : `backup ${id} released: legal hold cleared on ${r.objects} object(s)${r.packsKeptForOthers ? `, ${r.packsKeptForOthers} pack(s) stay held for other held backups` : ''}\n`);
    process.exitCode = 0;
  });

  addWorkflowOptions(backup.command('describe').description('show one backup: status, volumes, row counts, timeline, hooks, failure').argument('<id>', 'the backup name')).action(async (id: string, opts: WorkflowOptions) => {
    const config = await configOf(opts);
    const catalog = await catalogFor(opts, config);
    const found = await catalog.getBackup(id);
    if (!found) throw new UserError(`there is no backup ${id} in the catalog; list them with milvus-guard backup list${opts.local ? ' --local' : ''}`);
    // With what each DR region's check recorded for it.
    const [record] = await withReplication(catalog, [found]);
    // A running backup's exports, as the data mover last wrote them to the vault.
    const progress = record!.status === 'InProgress' ? await progressOrNothing(() => progressVault(opts, config, record!).then((v) => backupProgress(v, record!)), io) : [];
    io.out(opts.output === 'json' ? `${JSON.stringify(progress.length ? { ...record, progress } : record, null, 2)}\n` : renderBackup(record!, progress));
    process.exitCode = 0;
  });
}

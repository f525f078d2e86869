/**
 * `milvus-guard restore create|list|cancel|describe`: start (or stop) the restore workflow and read the restores
 * in the catalog. As `backup`: by default against AWS (the `<name>-restore` state machine and
 * the DynamoDB catalog), with `--local [--state DIR]` against the embedded default, where the
 * same definition runs in this process.
 *
 * A restore is refused here, before any execution starts, when the config or the catalog
 * already says it cannot work (unknown plan, cluster or backup; a backup that is not
 * Available; no backup at the point in time): the operator gets the reason at once instead of
 * a failed execution to dig through. Everything that needs the cluster (an occupied target
 * namespace, missing snapshots) is the workflow's PrepareRestore's to check.

 */
import type { BackupCatalog } from '../../core/catalog/catalog.js';
import { RESTORE_STEPS, type BackupRecord, type RestoreRecord } from '../../core/catalog/record.js';
import { resolvePlan } from '../../core/config/resolve.js';
import type { Config } from '../../core/config/schema.js';
import { UserError } from '../../core/errors.js';
import { BackupNotAvailableError, findBackupAt, NoBackupAtPointInTimeError } from '../../core/restore/prepare.js';
import { RestoreInput } from '../../core/workflow/restore-state.js';
import { type Command, Option } from 'commander';
import { executeWorkflow, type ProgressFollow } from '../execution.js';
import { formatBytes, formatDuration, formatProgressTable, formatRate, formatTable } from '../format.js';
import { dataMoverSeconds, peakHydrations, restorePhases } from '../../core/restore/phases.js';
import { checkNote, collectionsChecked, expectedCell } from '../../core/restore/validate.js';
import { listProgress, type VolumeProgress } from '../../core/datamover/progress.js';
import { restoreProgressPrefix } from '../../core/vault/layout.js';
import type { VaultStore } from '../../core/vault/store.js';
import { progressOrNothing, vaultNamed } from './backup.js';
import { addWorkflowOptions, catalogFor, configOf, processIO, type WorkflowIO, type WorkflowOptions } from './common.js';
import { cancelExecution } from '../recover.js';
import { failedAtText } from '../../core/workflow/timeline.js';

export interface RestoreCreateOptions extends WorkflowOptions {
  fromBackup?: string;
  plan?: string;
  pointInTime?: string;
  namespace: string;
  source?: 'snapshot' | 'vault';
  targetCluster?: string;
  storageClassMap?: string;
  cleanupOnFailure?: boolean;
  validateRowCounts: boolean;
  restoreName?: string;
  wait?: boolean;
}

/** The flag that sets each field of the restore input, for messages. */
const FLAG_OF: Record<string, string> = {
  backupId: '--from-backup',
  plan: '--plan',
  pointInTime: '--point-in-time',
  targetNamespace: '--namespace',
  targetCluster: '--target-cluster',
  source: '--source',
  storageClassMap: '--storage-class-map',
  cleanupOnFailure: '--cleanup-on-failure',
  validateRowCounts: '--no-validate-row-counts',
  restoreName: '--restore-name',
};

/** `gp2=gp3,io1=io2` → `{ gp2: 'gp3', io1: 'io2' }`. */
export function parseStorageClassMap(text: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const entry of text.split(',').map((e) => e.trim()).filter(Boolean)) {
    // An empty old name ("=gp3") maps the volumes the backup has without a class.
    const [from, to, ...rest] = entry.split('=').map((x) => x.trim());
    if (from === undefined || !to || rest.length) throw new UserError(`--storage-class-map: "${entry}" is not old=new; give pairs of StorageClass names such as gp2=gp3,io1=io2 (=gp3 for volumes without a class)`);
    if (map[from] !== undefined) throw new UserError(`--storage-class-map: StorageClass ${from} is mapped twice`);
    map[from] = to;
  }
  if (!Object.keys(map).length) throw new UserError('--storage-class-map: give at least one old=new pair, such as gp2=gp3');
  return map;
}

/**
 * Turns the flags of `restore create` into the workflow's input, checked against the same
 * schema PrepareRestore parses with; every problem names the flag to fix.
 */
export function restoreInputFromFlags(opts: RestoreCreateOptions): RestoreInput {
  if (opts.fromBackup !== undefined && opts.plan !== undefined) {
    throw new UserError('--from-backup and --plan exclude each other: restore one backup by id (--from-backup ID), or the newest of a plan (--plan NAME [--point-in-time T])');
  }
  if (opts.pointInTime !== undefined && opts.plan === undefined) {
    throw new UserError(`--point-in-time needs --plan: it picks the newest backup of that plan at or before the time${opts.fromBackup !== undefined ? '; with --from-backup the backup is already chosen' : ''}`);
  }
  if (opts.fromBackup === undefined && opts.plan === undefined) {
    throw new UserError('say what to restore: --from-backup ID (see milvus-guard backup list) or --plan NAME [--point-in-time T]');
  }
  const candidate = {
    ...(opts.fromBackup !== undefined ? { backupId: opts.fromBackup } : {}),
    ...(opts.plan !== undefined ? { plan: opts.plan } : {}),
    ...(opts.pointInTime !== undefined ? { pointInTime: opts.pointInTime } : {}),
    targetNamespace: opts.namespace,
    ...(opts.targetCluster !== undefined ? { targetCluster: opts.targetCluster } : {}),
    ...(opts.source !== undefined ? { source: opts.source } : {}),
    ...(opts.storageClassMap !== undefined ? { storageClassMap: parseStorageClassMap(opts.storageClassMap) } : {}),
    ...(opts.cleanupOnFailure ? { cleanupOnFailure: true } : {}),
    ...(opts.validateRowCounts === false ? { validateRowCounts: false } : {}),
    ...(opts.restoreName !== undefined ? { restoreName: opts.restoreName } : {}),
  };
  const parsed = RestoreInput.safeParse(candidate);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${FLAG_OF[String(i.path[0])] ?? i.path.join('.')}: ${i.message}`);
    throw new UserError(`restore create: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/**
 * What the config and the catalog say before anything starts: the target cluster and the plan
 * exist, and the backup to restore is there and Available (by id, or the newest of the plan at
 * or before the point in time). Returns that backup.
 */
export async function checkRestorable(config: Config, catalog: BackupCatalog, input: RestoreInput, local: boolean): Promise<BackupRecord> {
  if (input.targetCluster !== undefined && !config.clusters.some((c) => c.name === input.targetCluster)) {
    throw new UserError(`--target-cluster: cluster ${input.targetCluster} is not in the config; its clusters are ${config.clusters.map((c) => c.name).join(', ')}`);
  }
  let backup: BackupRecord;
  if (input.backupId !== undefined) {
    const found = await catalog.getBackup(input.backupId);
    if (!found) throw new UserError(`--from-backup: there is no backup ${input.backupId} in the catalog; list them with milvus-guard backup list${local ? ' --local' : ''}`);
    if (found.status !== 'Available') throw new UserError(new BackupNotAvailableError(found.backupId, found.status).message);
    backup = found;
  } else {
    resolvePlan(config, input.plan!);
    try {
      backup = await findBackupAt(catalog, input.plan!, input.pointInTime);
    } catch (err) {
      if (err instanceof NoBackupAtPointInTimeError) throw new UserError(err.message);
      throw err;
    }
  }
  // The workflow resolves the backup's plan for its vault and Milvus service.
  resolvePlan(config, backup.plan);
  return backup;
}

/** `restore list` as a kubectl-style table. */
export function renderRestoreList(records: readonly RestoreRecord[]): string {
  return formatTable(
    ['name', 'backup', 'status', 'target', 'source', 'requested', 'rto'],
    records.map((r) => [r.restoreId, r.backupId, r.status, `${r.targetCluster}/${r.targetNamespace}`, r.source, r.requestedAt, formatDuration(r.rtoSeconds)]),
  );
}

/**
 * The vault a restore's hydrations write their progress to: the local cluster's, or the S3
 * vault of the backup's plan in the region the restore runs in (a DR region's replica for a
 * failover or a DR drill).
 */
async function progressVault(opts: WorkflowOptions, config: Config, record: Pick<RestoreRecord, 'plan' | 'executionId' | 'restoreId'>): Promise<VaultStore> {
  if (opts.local) return (await import('../local-mode.js')).localVault(opts.state);
  const region = record.executionId.split(':')[3] || undefined;
  return vaultNamed(config, resolvePlan(config, record.plan).vault.name, `restore ${record.restoreId}`, region);
}

/** The data mover's progress of each volume a running restore hydrates; none once it has ended. */
export async function restoreProgress(vault: VaultStore, record: Pick<RestoreRecord, 'status' | 'restoreId'>): Promise<VolumeProgress[]> {
  return record.status === 'InProgress' ? listProgress(vault, restoreProgressPrefix(record.restoreId)) : [];
}

/** What `restore create --wait` follows: the hydrations of the restore the execution runs. */
function followRestore(opts: WorkflowOptions, config: Config, catalog: BackupCatalog, backupId: string, tty: boolean): ProgressFollow {
  let vault: VaultStore | undefined;
  return {
    tty,
    poll: async (executionArn) => {
      const record = (await catalog.listRestores({ backupId })).find((r) => (executionArn ? r.executionId === executionArn : r.status === 'InProgress'));
      if (!record) return [];
      vault ??= await progressVault(opts, config, record);
      return restoreProgress(vault, record);
    },
  };
}

/** `restore describe`: status, backup, source, target, RTO and its phases, volumes (with hydration progress while it runs), validation, timeline, failure. */
export function renderRestore(r: RestoreRecord, progress: readonly VolumeProgress[] = []): string {
  const parts = [
    `Name:        ${r.restoreId}\n` +
      `Backup:      ${r.backupId} (plan ${r.plan})\n` +
      `Source:      ${r.source} (backup of ${r.sourceCluster}/${r.sourceNamespace})\n` +
      `Target:      cluster ${r.targetCluster}, namespace ${r.targetNamespace}${r.createdNamespace === undefined ? '' : r.createdNamespace ? ' (created by the restore)' : ' (existed before)'}\n` +
      `Status:      ${r.status}\n` +
      `Requested:   ${r.requestedAt}\n` +
      `Completed:   ${r.completedAt ?? ''}\n` +
      `RTO:         ${formatDuration(r.rtoSeconds)}\n` +
      (r.drillId ? `Drill:       ${r.drillId}\n` : '') +
      (r.manifests ? `Manifests:   ${r.manifests.created} created, ${r.manifests.existing} already there, ${r.manifests.secrets} secrets\n` : '') +
      `Execution:   ${r.executionId}\n`,
  ];
  if (r.failure) parts.push(`\nFailed in ${failedAtText(r.failure)}: ${r.failure.error}\n  ${r.failure.cause}\n  Left behind: ${r.failure.leftBehind}\n`);
  parts.push(renderPhases(r));
  if (r.volumes.length) {
    parts.push(
      '\nVolumes:\n',
      formatTable(
        ['pvc', 'role', 'status', 'from', 'started', 'took', 'data mover', 'bytes'],
        r.volumes.map((v) => [
          v.pvc,
          v.role,
          v.status,
          v.from ?? '',
          v.startedAt ?? '',
          v.startedAt && v.endedAt ? formatDuration(secondsBetween(v.startedAt, v.endedAt)) : '',
          v.dataMover ? formatDuration(secondsBetween(v.dataMover.startedAt, v.dataMover.endedAt)) : '',
          v.dataMover ? formatBytes(v.dataMover.bytes) : '',
        ]),
      ),
    );
  }
  if (progress.length) parts.push('\nHydration progress:\n', formatProgressTable(progress));
  if (r.validation) {
    parts.push(
      `\nValidation: ${r.validation.passed ? 'passed' : 'FAILED'}\n`,
      formatTable(
        // `left`: how validation left the collection; one the source had released is released again.
        ['collection', 'expected', 'restored', 'search hits', 'left', 'ok', 'problem'],
        r.validation.collections.map((c) => [`${c.database}.${c.collection}`, expectedCell(c), c.restored ?? '', c.searchHits ?? '', c.released ? 'released' : c.loaded ? 'loaded' : '', c.ok ? 'yes' : 'NO', checkNote(c)]),
      ),
    );
  }
  const ordered = RESTORE_STEPS.filter((s) => r.steps[s]);
  parts.push(
    '\nTimeline:\n',
    formatTable(
      ['step', 'start', 'end', 'outcome', 'detail'],
      ordered.map((s) => {
        const e = r.steps[s]!;
        return [s, e.startedAt, e.endedAt ?? '', e.outcome ?? 'Running', e.detail ?? ''];
      }),
    ),
  );
  return parts.join('');
}

const secondsBetween = (from: string, to: string): number => Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);

/** `42%` of `whole`, or nothing when there is no whole to share. */
const share = (part: number | undefined, whole: number | undefined): string => (part === undefined || !whole ? '' : `${Math.round((100 * part) / whole)}%`);

/**
 * The RTO's phases (core/restore/phases.ts), as recorded, or derived from the timeline for a
 * record from before phases were recorded; each phase's share of the RTO once the restore
 * completed; and the data mover's share: the time at least one hydration ran, its bytes and rate,
 * and how many ran at once.
 */
export function renderPhases(r: RestoreRecord): string {
  const phases = r.phases ?? restorePhases(r);
  if (phases.length === 0) return '';
  const rto = r.status === 'Completed' ? r.rtoSeconds : undefined;
  const lines = [
    '\nRTO breakdown:\n',
    formatTable(
      ['phase', 'start', 'end', 'duration', 'share', 'outcome'],
      phases.map((p) => [p.phase, p.startedAt, p.endedAt ?? '', formatDuration(p.seconds), share(p.seconds, rto), p.outcome ?? 'Running']),
    ),
  ];
  const moving = dataMoverSeconds(r.volumes);
  if (moving !== undefined) {
    const runs = r.volumes.filter((v) => v.dataMover);
    const bytes = runs.reduce((sum, v) => sum + v.dataMover!.bytes, 0);
    lines.push(
      `Data mover:  ${formatDuration(moving)} hydrating${rto ? ` (${share(moving, rto)} of the RTO)` : ''}: ${runs.length} volume(s), ${formatBytes(bytes)}` +
        `${moving > 0 ? ` at ${formatRate(bytes / moving)}` : ''}, at most ${peakHydrations(r.volumes)} at once\n`,
    );
  }
  return lines.join('');
}

/** One line for the end of a local `restore create`. */
function summary(r: RestoreRecord): string {
  const describe = `milvus-guard restore describe ${r.restoreId} --local`;
  if (r.status === 'Completed') {
    // A collection dropped during the backup and not restored as backed up was not checked.
    const checks = r.validation?.collections ?? [];
    return `restore ${r.restoreId} Completed into ${r.targetCluster}/${r.targetNamespace}: RTO ${formatDuration(r.rtoSeconds)}, ${checks.filter((c) => c.ok && !c.droppedDuringBackup).length}/${collectionsChecked(checks)} collections validated (${describe})\n`;
  }
  const f = r.failure;
  return `restore ${r.restoreId} ${r.status}${f ? ` in ${failedAtText(f)}: ${f.error}: ${f.cause}\n  left behind: ${f.leftBehind}` : ''} (${describe})\n`;
}

/** Registers `restore create`, `restore list`, `restore cancel` and `restore describe` on the root program. */
export function registerRestoreCommands(program: Command, io: WorkflowIO = processIO): void {
  const restore = program.command('restore').description('restore backups and read the restores in the catalog');

  addWorkflowOptions(
    restore
      .command('create')
      .description('start the restore workflow: a backup by id, or the newest of a plan at or before a point in time, into a namespace')
      .option('--from-backup <id>', 'the backup to restore (see milvus-guard backup list)')
      .option('--plan <name>', 'restore the newest Available backup of this plan')
      .option('--point-in-time <time>', 'with --plan: the newest backup taken at or before this ISO 8601 time (2026-11-23T02:00:00Z)')
      .requiredOption('--namespace <ns>', 'the namespace to restore into; it must not exist or be empty')
      .option('--target-cluster <name>', "a cluster of the config (default: the backup's cluster)")
      .addOption(new Option('--source <source>', "where volume data comes from (default: snapshot when the target is the backup's cluster and its snapshots exist, else vault)").choices(['snapshot', 'vault']))
      .option('--storage-class-map <old=new,...>', "StorageClasses to use instead of the backup's, such as gp2=gp3 (=gp3: the volumes without a class)")
      .option('--cleanup-on-failure', 'delete what the restore created when it fails (default: leave it for inspection)', false)
      .option('--no-validate-row-counts', 'skip comparing restored row counts with those recorded at backup (health and loading are still checked)')
      .option('--restore-name <name>', 'name the restore (default: <backup>-r<UTC start time>)')
      .option('--wait', 'show progress per step and wait for the end; exit 1 if the restore fails (always on with --local)', false),
  ).action(async (opts: RestoreCreateOptions) => {
    const input = restoreInputFromFlags(opts);
    const config = await configOf(opts);
    const catalog = await catalogFor(opts, config);
    const backup = await checkRestorable(config, catalog, input, opts.local === true);
    const progress = followRestore(opts, config, catalog, backup.backupId, io === processIO && process.stderr.isTTY === true);
    process.exitCode = await executeWorkflow(opts, io, { workflow: 'restore', config, input, plan: backup.plan, progress }, async (end) => {
      const record = (await catalog.listRestores({ backupId: backup.backupId })).find((r) => r.executionId === end.executionArn);
      return { key: 'restore', value: record, text: record && summary(record) };
    });
  });

  addWorkflowOptions(
    restore.command('list').description('list restores, newest first').option('--plan <name>', 'only restores of this plan').option('--backup <id>', 'only restores of this backup'),
  ).action(async (opts: WorkflowOptions & { plan?: string; backup?: string }) => {
    const config = await configOf(opts);
    const records = await (await catalogFor(opts, config)).listRestores({ ...(opts.plan ? { plan: opts.plan } : {}), ...(opts.backup ? { backupId: opts.backup } : {}) });
    io.out(opts.output === 'json' ? `${JSON.stringify(records, null, 2)}\n` : renderRestoreList(records));
    process.exitCode = 0;
  });

  addWorkflowOptions(
    restore
      .command('cancel')
      .description("stop a running restore (or recover one whose execution ended) and clean up after it: its hydration Jobs and snapshot objects removed, the record Failed; the target namespace stays for inspection")
      .argument('<id>', 'the restore name'),
  ).action(async (id: string, opts: WorkflowOptions) => {
    const config = await configOf(opts);
    if (opts.local) {
      const { cancelLocalRestore } = await import('../local-mode.js');
      const r = await cancelLocalRestore(opts.state, config, id, (line) => io.err(`${line}\n`));
      io.out(opts.output === 'json' ? `${JSON.stringify(r, null, 2)}\n` : `restore ${id} cancelled: ${r.removed.length} object(s) removed; left behind: ${r.leftBehind}\n`);
    } else {
      const catalog = await catalogFor(opts, config);
      const record = await catalog.getRestore(id);
      if (!record) throw new UserError(`there is no restore ${id} in the catalog; list them with milvus-guard restore list`);
      if (record.status !== 'InProgress') throw new UserError(`restore ${id} is ${record.status}: there is nothing to cancel`);
      // In the region of its execution: the vault's, or a DR region's for a failover or a DR drill.
      const done = await cancelExecution(config, 'restore', id, record.executionId);
      if (done.action === 'stopped') io.out(`stopped ${record.executionId}; RecoverExecution cleans up after it and marks the restore Failed (see restore describe ${id})\n`);
      else {
        const after = await catalog.getRestore(id);
        const text = `execution ${record.executionId} had already ended ${done.status}; recovered now: restore ${id} is ${after?.status}${after?.failure ? `; left behind: ${after.failure.leftBehind}` : ''}\n`;
        io.out(opts.output === 'json' ? `${JSON.stringify({ ...done, record: after }, null, 2)}\n` : text);
      }
    }
    process.exitCode = 0;
  });

  addWorkflowOptions(
    restore.command('describe').description('show one restore: status, backup, source, target, RTO and its phases, volumes, validation, timeline, failure').argument('<id>', 'the restore name'),
  ).action(async (id: string, opts: WorkflowOptions) => {
    const config = await configOf(opts);
    const record = await (await catalogFor(opts, config)).getRestore(id);
    if (!record) throw new UserError(`there is no restore ${id} in the catalog; list them with milvus-guard restore list${opts.local ? ' --local' : ''}`);
    // A running restore's hydrations, as the data mover last wrote them to the vault.
    const progress = record.status === 'InProgress' ? await progressOrNothing(() => progressVault(opts, config, record).then((v) => restoreProgress(v, record)), io) : [];
    // A record from before phases were recorded gets them derived from its timeline, in the record's own field.
    const shown = record.phases ? record : { ...record, phases: restorePhases(record) };
    io.out(opts.output === 'json' ? `${JSON.stringify(progress.length ? { ...shown, progress } : shown, null, 2)}\n` : renderRestore(shown, progress));
    process.exitCode = 0;
  });
}

/**
 * `milvus-guard backup create|list|describe`: start the backup workflow and read the catalog.
 * By default against AWS — the `<name>-backup` state machine in the plan's vault region
 * (Step Functions) and the catalog table (DynamoDB); with `--local [--state DIR]` against the
 * embedded default started by `milvus-guard local up --state DIR`, where the same workflow
 * definition runs in this process (local/workflows/runner.ts).
 */
import { DescribeExecutionCommand, GetExecutionHistoryCommand, SFNClient, StartExecutionCommand, type HistoryEvent } from '@aws-sdk/client-sfn';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { Command } from 'commander';
import { BACKUP_STEPS, type BackupRecord } from '../../core/catalog/record.js';
import { resolvePlan } from '../../core/config/resolve.js';
import type { Config } from '../../core/config/schema.js';
import { UserError } from '../../core/errors.js';
import { stateMachineName } from '../../core/naming.js';
import { formatTable } from '../table.js';
import { addWorkflowOptions, catalogFor, configOf, localStateDir, processIO, type WorkflowIO, type WorkflowOptions } from './common.js';

type CommonOptions = WorkflowOptions;

/** Progress and results go here; tests pass their own. */
export type BackupIO = WorkflowIO;

const size = (bytes: number | undefined): string => {
  if (bytes === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u += 1;
  }
  return `${u === 0 ? n : n.toFixed(1)}${units[u]}`;
};

/** `backup list` as a kubectl-style table. */
export function renderBackupList(records: readonly BackupRecord[]): string {
  return formatTable(
    ['name', 'plan', 'status', 'start', 'completion', 'size'],
    records.map((r) => [r.backupId, r.plan, r.status, r.startedAt, r.completedAt ?? '', size(r.sizeBytes)]),
  );
}

/** `backup describe`: status, volumes, row counts, timeline, hooks and the failure. */
export function renderBackup(r: BackupRecord): string {
  const parts = [
    `Name:        ${r.backupId}\nPlan:        ${r.plan}\nCluster:     ${r.cluster} (namespace ${r.namespace})\nVault:       ${r.vault}\nStatus:      ${r.status}\n` +
      `Started:     ${r.startedAt}\nCompleted:   ${r.completedAt ?? ''}\nDuration:    ${r.durationSeconds === undefined ? '' : `${r.durationSeconds.toFixed(1)}s`}\n` +
      `Size:        ${size(r.sizeBytes)}${r.bytesUploaded === undefined ? '' : ` (${size(r.bytesUploaded)} uploaded)`}\nExecution:   ${r.executionId}\n`,
  ];
  if (r.failure) parts.push(`\nFailed in ${r.failure.step}: ${r.failure.error}\n  ${r.failure.cause}\n`);
  const ordered = BACKUP_STEPS.filter((s) => r.steps[s]);
  parts.push('\nTimeline:\n', formatTable(['step', 'start', 'end', 'outcome', 'detail'], ordered.map((s) => { const e = r.steps[s]!; return [s, e.startedAt, e.endedAt ?? '', e.outcome ?? 'Running', e.detail ?? '']; })));
  if (r.components.length) {
    parts.push('\nVolumes:\n', formatTable(['pvc', 'role', 'snapshot', 'status', 'size', 'uploaded'], r.components.map((c) => [c.pvc, c.role, c.snapshot ?? '', c.status, size(c.bytesTotal), size(c.bytesUploaded)])));
  }
  if (r.rowCounts.length) {
    parts.push('\nRow counts:\n', formatTable(['database', 'collection', 'rows', 'confirmed by'], r.rowCounts.map((x) => [x.database, x.collection, x.rows, x.confirmedBy])));
  }
  if (r.hooks.length) {
    parts.push('\nHooks:\n', formatTable(['phase', 'hook', 'pod', 'container', 'attempts', 'outcome', 'exit'], r.hooks.map((h) => [h.phase, h.hook, h.pod, h.container, h.attempts, h.outcome, h.exitCode ?? ''])));
    for (const h of r.hooks.filter((x) => x.stdout.trim() || x.stderr.trim() || x.error)) {
      parts.push(`  ${h.phase} ${h.hook} on ${h.pod}:${h.stdout.trim() ? ` stdout: ${h.stdout.trim()}` : ''}${h.stderr.trim() ? ` stderr: ${h.stderr.trim()}` : ''}${h.error ? ` (${h.error})` : ''}\n`);
    }
  }
  return parts.join('');
}

// States that only poll; progress shows the step once, not every poll.
const QUIET_STATES = new Set(['WaitForFlush', 'FlushConfirmed', 'WaitForSnapshots', 'SnapshotsReady', 'WaitForExport', 'ExportDone', 'CheckExport', 'CheckFlush', 'CheckSnapshots', 'StartExport', 'FinishExport', 'UnquiesceNeeded']);

function progress(io: BackupIO): (state: string) => void {
  const seen = new Set<string>();
  return (state) => {
    if (QUIET_STATES.has(state) || seen.has(state)) return;
    seen.add(state);
    io.err(`  ${new Date().toISOString().slice(11, 19)}  ${state}\n`);
  };
}

interface CreateOptions extends CommonOptions {
  plan: string;
  backupName?: string;
  wait?: boolean;
}

async function createLocal(opts: CreateOptions, config: Config, io: BackupIO): Promise<number> {
  const stateDir = localStateDir(opts);
  const { runLocalBackup, localCatalog } = await import('../../local/workflows/runner.js');
  // The local workflow runs in this process, so create always waits for it.
  const result = await runLocalBackup({ stateDir, config, input: { plan: opts.plan, ...(opts.backupName ? { backupName: opts.backupName } : {}) }, onState: opts.output === 'text' ? progress(io) : undefined });
  const backupId = (result.output as { backupId?: string } | undefined)?.backupId ?? (await localCatalog(stateDir).listBackups({ plan: opts.plan })).find((r) => r.executionId === result.executionId)?.backupId;
  const record = backupId ? await localCatalog(stateDir).getBackup(backupId) : undefined;
  if (opts.output === 'json') io.out(`${JSON.stringify({ executionId: result.executionId, status: result.status, ...(result.error ? { error: result.error } : {}), backup: record ?? null }, null, 2)}\n`);
  else if (result.status === 'SUCCEEDED') io.out(`backup ${backupId} Available: ${size(record?.sizeBytes)} in ${record?.durationSeconds?.toFixed(1)}s (milvus-guard backup describe ${backupId} --local)\n`);
  else io.out(`backup ${backupId ?? '(not started)'} FAILED: ${result.error?.name}: ${result.error?.message}\n`);
  return result.status === 'SUCCEEDED' ? 0 : 1;
}

async function createAws(opts: CreateOptions, config: Config, io: BackupIO): Promise<number> {
  const region = resolvePlan(config, opts.plan).vault.region;
  const { Account } = await new STSClient({ region }).send(new GetCallerIdentityCommand({}));
  const stateMachineArn = `arn:aws:states:${region}:${Account}:stateMachine:${stateMachineName(config.name, 'backup')}`;
  const sfn = new SFNClient({ region });
  const input = { plan: opts.plan, ...(opts.backupName ? { backupName: opts.backupName } : {}) };
  const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify(input) }));
  if (!opts.wait) {
    io.out(opts.output === 'json' ? `${JSON.stringify({ executionArn, status: 'RUNNING' })}\n` : `started ${executionArn}\n`);
    return 0;
  }
  const show = opts.output === 'text' ? progress(io) : () => undefined;
  let nextToken: string | undefined;
  for (;;) {
    // Progress from the execution history: one line per state entered.
    do {
      const page = await sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 200 }));
      for (const e of page.events ?? ([] as HistoryEvent[])) if (e.stateEnteredEventDetails?.name) show(e.stateEnteredEventDetails.name);
      nextToken = page.nextToken;
    } while (nextToken);
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (d.status !== 'RUNNING' && d.status !== 'PENDING_REDRIVE') {
      const output = d.output ? (JSON.parse(d.output) as unknown) : undefined;
      if (opts.output === 'json') io.out(`${JSON.stringify({ executionArn, status: d.status, output, error: d.error, cause: d.cause }, null, 2)}\n`);
      else io.out(d.status === 'SUCCEEDED' ? `backup Available: ${JSON.stringify(output)}\n` : `backup ${d.status}: ${d.error ?? ''}: ${d.cause ?? ''}\n`);
      return d.status === 'SUCCEEDED' ? 0 : 1;
    }
    // Re-reads the whole history each round: small for one backup, and simpler than tracking event ids.
    await io.sleep(5000);
  }
}

/** Registers `backup create`, `backup list` and `backup describe` on the root program. */
export function registerBackupCommands(program: Command, io: BackupIO = processIO): void {
  const backup = program.command('backup').description('start backups and read the backup catalog');

  addWorkflowOptions(
    backup
      .command('create')
      .description('start the backup workflow for a plan')
      .requiredOption('--plan <name>', 'the plan to back up')
      .option('--backup-name <name>', 'name the backup (default: <plan>-<UTC start time>)')
      .option('--wait', 'show progress per step and wait for the end; exit 1 if the backup fails', false),
  ).action(async (opts: CreateOptions) => {
    const config = await configOf(opts);
    resolvePlan(config, opts.plan);
    process.exitCode = opts.local ? await createLocal(opts, config, io) : await createAws(opts, config, io);
  });

  addWorkflowOptions(backup.command('list').description('list backups, newest first').option('--plan <name>', 'only backups of this plan')).action(async (opts: CommonOptions & { plan?: string }) => {
    const config = await configOf(opts);
    const records = await (await catalogFor(opts, config)).listBackups(opts.plan ? { plan: opts.plan } : {});
    io.out(opts.output === 'json' ? `${JSON.stringify(records, null, 2)}\n` : renderBackupList(records));
    process.exitCode = 0;
  });

  addWorkflowOptions(backup.command('describe').description('show one backup: status, volumes, row counts, timeline, hooks, failure').argument('<id>', 'the backup name')).action(async (id: string, opts: CommonOptions) => {
    const config = await configOf(opts);
    const record = await (await catalogFor(opts, config)).getBackup(id);
    if (!record) throw new UserError(`there is no backup ${id} in the catalog; list them with milvus-guard backup list${opts.local ? ' --local' : ''}`);
    io.out(opts.output === 'json' ? `${JSON.stringify(record, null, 2)}\n` : renderBackup(record));
    process.exitCode = 0;
  });
}

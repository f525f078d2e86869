/**
 * `milvus-guard dr status|failover|check`: cross-region disaster recovery.
 *
 * - `dr status` reads the catalog (in AWS from `--region`, the global table's replica there, so it
 *   answers with the primary region down) and prints, per plan and DR region, the newest backup
 *   complete in that region and its age: the RPO a failover started now would achieve.
 * - `dr failover` starts the failover workflow of the DR region's stack (`--region`), or runs it on
 *   the embedded default's DR state directory (`--local --state DIR`, see `local link-dr`).
 * - `dr check` runs a DR region's replication check now (in AWS a schedule runs it every five
 *   minutes); on the embedded default only.
 */
import type { Command } from 'commander';
import type { Config } from '../../core/config/schema.js';
import { resolvePlan } from '../../core/config/resolve.js';
import { withReplication } from '../../core/dr/replication.js';
import { drStatus, type DrPlanStatus } from '../../core/dr/status.js';
import type { FailoverRecord } from '../../core/catalog/record.js';
import { FailoverInput, type FailoverReport } from '../../core/dr/failover.js';
import { parseContract } from '../../core/workflow/contracts.js';
import { UserError } from '../../core/errors.js';
import { executeWorkflow } from '../execution.js';
import { formatDuration, formatTable } from '../format.js';
import { addWorkflowOptions, catalogFor, configOf, processIO, type WorkflowIO, type WorkflowOptions } from './common.js';
import { parseStorageClassMap } from './restore.js';
import { nowOption } from './retention.js';

/** `dr status` as a table: one line per plan and DR region. */
export function renderDrStatus(rows: readonly DrPlanStatus[]): string {
  if (rows.length === 0) return 'no plan replicates into a DR region (vaults[].replicaRegions)\n';
  return formatTable(
    ['plan', 'region', 'newest complete', 'taken', 'rpo now', 'pending', 'late', 'unchecked', 'checked'],
    rows.map((r) => [
      r.plan,
      r.region,
      r.newestComplete?.backupId ?? 'NONE',
      r.newestComplete?.pointInTime ?? '',
      r.rpoSeconds === null ? '' : formatDuration(r.rpoSeconds),
      r.pending.length,
      r.late.length ? `${r.late.length} (${r.late.join(', ')})` : 0,
      r.unchecked.length,
      r.lastCheckedAt ?? 'never',
    ]),
  );
}

/** The DR regions of the config, for messages. */
const drRegions = (config: Config): string[] => [...new Set(config.vaults.flatMap((v) => v.replicaRegions as readonly string[]))];

interface FailoverOptions extends WorkflowOptions {
  plan: string;
  targetCluster: string;
  namespace: string;
  pointInTime?: string;
  storageClassMap?: string;
  podIdentityAssociated?: boolean;
  wait?: boolean;
}

/** The failover report as text. */
export function renderFailover(r: FailoverReport): string {
  return (
    `Failover:    ${r.failoverId} ${r.status}\n` +
    `Plan:        ${r.plan}\n` +
    `Region:      ${r.region}\n` +
    `Backup:      ${r.backupId}\n` +
    `Restored to: ${r.targetCluster}/${r.targetNamespace} (restore ${r.restoreId})\n` +
    `RPO:         ${formatDuration(r.rpoSeconds)} (backup point in time to the failover request)\n` +
    `RTO:         ${r.rtoSeconds === undefined ? 'not reached' : `${formatDuration(r.rtoSeconds)} (request to validated data)`}\n` +
    (r.failure ? `Failure:     ${r.failure.error}: ${r.failure.cause}\n` : '')
  );
}

/** `dr list` as a table: one line per failover, newest first. */
export function renderFailoverList(failovers: readonly FailoverRecord[]): string {
  return formatTable(
    ['failover', 'plan', 'region', 'status', 'backup', 'target', 'rpo', 'rto', 'requested', 'failure'],
    failovers.map((f) => [
      f.failoverId,
      f.plan,
      f.region,
      f.status,
      f.backupId,
      `${f.targetCluster}/${f.targetNamespace}`,
      formatDuration(f.rpoSeconds),
      formatDuration(f.rtoSeconds),
      f.requestedAt,
      f.failure ? `${f.failure.error}: ${f.failure.cause}` : '',
    ]),
  );
}

/** Registers `dr status`, `dr list`, `dr failover` and `dr check` on the root program. */
export function registerDrCommands(program: Command, io: WorkflowIO = processIO): void {
  const dr = program.command('dr').description('cross-region disaster recovery: what has replicated, and failing over into a DR region');

  addWorkflowOptions(
    dr
      .command('status')
      .description('per plan and DR region: the newest backup complete there and its age (the RPO a failover now would achieve), pending and late replications')
      .option('--plan <name>', 'only this plan')
      .addOption(nowOption('report as of this instant (default: now)')),
  ).action(async (opts: WorkflowOptions & { plan?: string; now?: Date }) => {
    const config = await configOf(opts);
    if (opts.plan !== undefined) resolvePlan(config, opts.plan);
    if (opts.region !== undefined && !drRegions(config).includes(opts.region)) {
      throw new UserError(`--region ${opts.region} is not a DR region of the config; its DR regions: ${drRegions(config).join(', ') || 'none (vaults[].replicaRegions)'}`);
    }
    // Each DR region's rows from the catalog's replica in that region: it answers with the
    // primary region down, and it is what that region's failover would read.
    const rows: DrPlanStatus[] = [];
    for (const region of opts.region !== undefined ? [opts.region] : drRegions(config)) {
      const catalog = await catalogFor({ ...opts, region }, config);
      const records = await withReplication(catalog, await catalog.listBackups(), region);
      rows.push(...drStatus(config, records, opts.now ?? new Date(), { ...(opts.plan ? { plan: opts.plan } : {}), region }));
    }
    io.out(opts.output === 'json' ? `${JSON.stringify(rows, null, 2)}\n` : renderDrStatus(rows));
    process.exitCode = 0;
  });

  addWorkflowOptions(dr.command('list').description('list the failovers, newest first: backup, target, RPO and RTO achieved, why one failed').option('--plan <name>', 'only failovers of this plan')).action(
    async (opts: WorkflowOptions & { plan?: string }) => {
      const config = await configOf(opts);
      if (opts.plan !== undefined) resolvePlan(config, opts.plan);
      const failovers = await (await catalogFor(opts, config)).listFailovers(opts.plan ? { plan: opts.plan } : {});
      io.out(opts.output === 'json' ? `${JSON.stringify(failovers, null, 2)}\n` : failovers.length ? renderFailoverList(failovers) : 'no failovers\n');
      process.exitCode = 0;
    },
  );

  addWorkflowOptions(
    dr
      .command('failover')
      .description("restore a plan's newest backup complete in a DR region into a cluster there, validate it and report the RPO and RTO achieved")
      .requiredOption('--plan <name>', 'the plan to fail over')
      .requiredOption('--target-cluster <name>', 'a cluster of the config in the DR region')
      .requiredOption('--namespace <name>', 'the namespace to restore into (it must not exist, or be empty)')
      .option('--point-in-time <iso-8601>', 'the newest backup complete in the region taken at or before this instant')
      .option('--storage-class-map <old=new,...>', "StorageClasses of the DR cluster to use instead of the backup's, such as gp3=gp3-dr (=gp3-dr: the volumes without a class)")
      .option('--pod-identity-associated', "the DR stack's restore role was associated by hand in --namespace (one the stack does not associate)", false)
      .option('--wait', 'show progress per step and wait for the end; exit 1 if the failover fails (always on with --local)', false),
  ).action(async (opts: FailoverOptions) => {
    const config = await configOf(opts);
    const plan = resolvePlan(config, opts.plan);
    if (!opts.local && opts.region === undefined) {
      throw new UserError(`--region is required: the DR region to fail over into (${(plan.vault.replicaRegions as readonly string[]).join(', ') || `vault ${plan.vault.name} replicates nowhere`})`);
    }
    // Checked here too, so a mistake is refused before anything starts in AWS.
    const input = parseContract(
      FailoverInput,
      {
        plan: opts.plan,
        targetCluster: opts.targetCluster,
        targetNamespace: opts.namespace,
        ...(opts.pointInTime ? { pointInTime: opts.pointInTime } : {}),
        ...(opts.storageClassMap ? { storageClassMap: parseStorageClassMap(opts.storageClassMap) } : {}),
        ...(opts.podIdentityAssociated ? { podIdentityAssociated: true } : {}),
      },
      'the failover flags',
    );
    process.exitCode = await executeWorkflow(opts, io, { workflow: 'failover', config, input, plan: opts.plan }, async (end) => {
      const report = end.status === 'SUCCEEDED' ? (end.output as FailoverReport) : undefined;
      const recorded = report ? undefined : (await (await catalogFor(opts, config)).listFailovers({ plan: opts.plan })).find((f) => f.executionId === end.executionArn);
      return { key: 'failover', value: report ?? recorded, text: report ? renderFailover(report) : undefined };
    });
  });

  addWorkflowOptions(
    dr
      .command('check')
      .description("run a DR region's replication check now (with --local, on the DR state directory; in AWS a schedule runs it every 5 minutes)")
      .addOption(nowOption('check as of this instant (default: now)')),
  ).action(async (opts: WorkflowOptions & { now?: Date }) => {
    if (!opts.local) throw new UserError('dr check runs on the embedded default only (--local --state DR_DIR); in AWS the DR stack runs it every 5 minutes');
    const config = await configOf(opts);
    const { runLocalReplicationCheck } = await import('../local-mode.js');
    const now = opts.now;
    const result = await runLocalReplicationCheck(opts.state, config, now ? { now: () => now } : {});
    io.out(opts.output === 'json' ? `${JSON.stringify(result, null, 2)}\n` : `checked ${result.checked} backup(s) in ${result.region}: ${result.complete} complete, ${result.pending} pending, ${result.late} late${result.errors.length ? `; errors: ${result.errors.join('; ')}` : ''}\n`);
    process.exitCode = result.errors.length ? 1 : 0;
  });
}


/**
 * `milvus-guard drill run|list`: start a DR drill (a configured drill, or a plan with the drill
 * defaults) and read the drills' evidence reports. The evidence lives in the vault
 * (`drills/<plan>/<drill id>.json`, written by the drill's RecordEvidence step), not in the
 * catalog: it is what an auditor reads, so `drill list` reads exactly those files — from the
 * local state directory's vault with `--local`, else from the installation's vault buckets.
 */
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { Command } from 'commander';
import type { BackupCatalog } from '../../core/catalog/catalog.js';
import { replicatesInto, resolveDrill, resolvePlan } from '../../core/config/resolve.js';
import type { Config } from '../../core/config/schema.js';
import { listDrillEvidence, NothingToDrillError, type DrillEvidence } from '../../core/drill/workflow.js';
import { UserError } from '../../core/errors.js';
import { findBackupAt, NoBackupAtPointInTimeError } from '../../core/restore/prepare.js';
import { checkNote, collectionsChecked, expectedCell } from '../../core/restore/validate.js';
import type { VaultStore } from '../../core/vault/store.js';
import type { DrillInput } from '../../core/workflow/restore-state.js';
import { replicaBucketName, vaultBucketName } from '../../core/naming.js';
import { executeWorkflow } from '../execution.js';
import { formatDuration, formatTable } from '../format.js';
import { addWorkflowOptions, catalogFor, configOf, processIO, type WorkflowIO, type WorkflowOptions } from './common.js';

/** The flags of `drill run`. */
export interface DrillRunOptions extends WorkflowOptions {
  plan?: string;
  drill?: string;
  wait?: boolean;
}

/** `--plan` or `--drill`, exactly one, as the drill workflow's input. */
export function drillInputFromFlags(opts: Pick<DrillRunOptions, 'plan' | 'drill'>): DrillInput {
  if (opts.plan !== undefined && opts.drill !== undefined) {
    throw new UserError('--plan and --drill exclude each other: run a drill of the config (--drill NAME), or one for a plan with the drill defaults (--plan NAME)');
  }
  if (opts.drill !== undefined) return { drill: opts.drill };
  if (opts.plan !== undefined) return { plan: opts.plan };
  throw new UserError('say what to drill: --drill NAME (a drill of the config) or --plan NAME (the newest backup of that plan)');
}

/**
 * Where a drill runs: in AWS, the region of the stack whose drill state machine starts it — the
 * vault's, or the DR region of a drill whose target cluster is there (it proves the replica).
 * `--region` wins.
 */
export function drillRegion(config: Config, input: DrillInput, region: string | undefined): string {
  if (region !== undefined) return region;
  if (input.drill !== undefined) {
    const { plan, targetCluster } = resolveDrill(config, input.drill);
    return replicatesInto(plan.vault, targetCluster.region) ? targetCluster.region : plan.vault.region;
  }
  return resolvePlan(config, input.plan!).vault.region;
}

/**
 * What the config and the catalog say before anything starts: the drill or plan exists and the
 * plan has an Available backup to drill (in a DR region, one complete there). Returns the plan's name.
 */
export async function checkDrillable(config: Config, catalog: BackupCatalog, input: DrillInput, region?: string): Promise<string> {
  const resolved = input.drill !== undefined ? resolveDrill(config, input.drill).plan : resolvePlan(config, input.plan!);
  const plan = resolved.plan.name;
  const replica = region !== undefined && region !== resolved.vault.region ? region : undefined;
  try {
    await findBackupAt(catalog, plan, undefined, replica);
  } catch (err) {
    if (err instanceof NoBackupAtPointInTimeError) throw new UserError(new NothingToDrillError(plan, replica).message);
    throw err;
  }
  return plan;
}

/** Collections checked and found right, of those checked (one dropped during the backup and absent is not checked). */
const collectionsOk = (e: DrillEvidence): string => `${e.collections.filter((c) => c.ok && !c.droppedDuringBackup).length}/${collectionsChecked(e.collections)}`;

/** `drill list` as a kubectl-style table. */
export function renderDrillList(evidence: readonly DrillEvidence[]): string {
  return formatTable(
    ['drill', 'plan', 'backup', 'rpo', 'rto', 'collections ok', 'passed', 'when'],
    evidence.map((e) => [e.drillId, e.plan, e.backup.backupId, formatDuration(e.achievedRpoSeconds), formatDuration(e.achievedRtoSeconds), collectionsOk(e), e.passed ? 'yes' : 'NO', e.startedAt]),
  );
}

/** One drill's evidence in full: what `drill run` prints at the end. */
export function renderDrillEvidence(e: DrillEvidence): string {
  const r = e.restore;
  const parts = [
    `Drill:       ${e.drillId}${e.drill ? ` (drill ${e.drill})` : ''}\n` +
      `Plan:        ${e.plan}\n` +
      `Passed:      ${e.passed ? 'yes' : 'NO'}\n` +
      `Backup:      ${e.backup.backupId} (completed ${e.backup.completedAt})\n` +
      `RPO:         ${formatDuration(e.achievedRpoSeconds)} (age of the backup when the drill started)\n` +
      `RTO:         ${formatDuration(e.achievedRtoSeconds)}\n` +
      `Restore:     ${r.restoreId} ${r.status}${r.source ? ` from ${r.source}` : ''} into ${r.targetCluster}/${r.targetNamespace}\n` +
      `Cleanup:     ${e.cleanup.requested ? (e.cleanup.namespaceDeleted ? 'namespace deleted' : `namespace NOT deleted${e.cleanup.error ? `: ${e.cleanup.error}` : ''}`) : 'not requested (namespace kept)'}\n` +
      `Started:     ${e.startedAt}\nCompleted:   ${e.completedAt}\nExecution:   ${e.executionId}\n`,
  ];
  if (r.error) parts.push(`\nRestore failed${r.failedStep ? ` in ${r.failedStep}` : ''}: ${r.error}\n  ${r.cause ?? ''}\n`);
  if (e.collections.length) {
    parts.push('\nCollections:\n', formatTable(['collection', 'expected', 'restored', 'search hits', 'ok', 'problem'], e.collections.map((c) => [c.name, expectedCell(c), c.restored ?? '', c.searchHits ?? '', c.ok ? 'yes' : 'NO', checkNote(c)])));
  }
  return parts.join('');
}

/**
 * The vaults holding drill evidence: the local state directory's, or on AWS the bucket of the
 * plan's vault and its DR replicas, where drills in a DR region write theirs (every vault of the
 * config without `--plan`). With `--region`, only the bucket in that region.
 */
async function evidenceVaults(opts: WorkflowOptions, config: Config, plan: string | undefined): Promise<VaultStore[]> {
  if (opts.local) {
    return [await (await import('../local-mode.js')).localVault(opts.state)];
  }
  const vaults = plan === undefined ? config.vaults : [resolvePlan(config, plan).vault];
  const { S3VaultStore } = await import('../../core/vault/s3-store.js');
  // Bucket names carry the account (core/naming.ts), so ask STS whose credentials these are.
  const { Account } = await new STSClient({ region: opts.region ?? vaults[0]!.region }).send(new GetCallerIdentityCommand({}));
  if (!Account) throw new Error('STS GetCallerIdentity returned no account');
  const buckets = vaults.flatMap((v) => [
    { bucket: vaultBucketName({ installation: config.name, vault: v.name, account: Account, region: v.region }), region: v.region as string },
    ...(v.replicaRegions as readonly string[]).map((r) => ({ bucket: replicaBucketName({ installation: config.name, vault: v.name, account: Account, region: r }), region: r })),
  ]);
  return buckets.filter((b) => opts.region === undefined || b.region === opts.region).map((b) => new S3VaultStore({ bucket: b.bucket, region: b.region }));
}

async function drillEvidence(opts: WorkflowOptions, config: Config, plan: string | undefined): Promise<DrillEvidence[]> {
  const all = (await Promise.all((await evidenceVaults(opts, config, plan)).map((v) => listDrillEvidence(v, plan)))).flat();
  return all.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

/** Registers `drill run` and `drill list` on the root program. */
export function registerDrillCommands(program: Command, io: WorkflowIO = processIO): void {
  const drill = program.command('drill').description('run DR drills and read their evidence');

  addWorkflowOptions(
    drill
      .command('run')
      .description('restore the newest backup of a plan into a throwaway namespace, validate it, clean up and write evidence')
      .option('--drill <name>', 'a drill of the config (its target and settings)')
      .option('--plan <name>', 'a plan, with the drill defaults (namespace <plan namespace>-drill, validate row counts, clean up)')
      .option('--wait', 'show progress per step and wait for the end; exit 1 if the drill fails (always on with --local)', false),
  ).action(async (opts: DrillRunOptions) => {
    const input = drillInputFromFlags(opts);
    const config = await configOf(opts);
    // On the embedded default the state directory is the region (a DR one once linked).
    const region = opts.local ? await (await import('../local-mode.js')).localRegion(opts.state) : drillRegion(config, input, opts.region);
    // In AWS the catalog is read in the region the drill runs in: a DR drill must not need the primary region.
    const plan = await checkDrillable(config, await catalogFor({ ...opts, ...(region !== undefined && !opts.local ? { region } : {}) }, config), input, region);
    process.exitCode = await executeWorkflow({ ...opts, ...(region !== undefined && !opts.local ? { region } : {}) }, io, { workflow: 'drill', config, input, plan }, async (end) => {
      // Passed or not, a drill that got past PrepareDrill has written its evidence: show that.
      const evidence = (await drillEvidence(opts, config, plan)).find((e) => e.executionId === end.executionArn);
      return { key: 'evidence', value: evidence, text: evidence && renderDrillEvidence(evidence) };
    });
  });

  addWorkflowOptions(drill.command('list').description("list the drills' evidence reports, newest first").option('--plan <name>', 'only drills of this plan')).action(
    async (opts: WorkflowOptions & { plan?: string }) => {
      const config = await configOf(opts);
      if (opts.plan !== undefined) resolvePlan(config, opts.plan);
      const evidence = await drillEvidence(opts, config, opts.plan);
      io.out(opts.output === 'json' ? `${JSON.stringify(evidence, null, 2)}\n` : renderDrillList(evidence));
      process.exitCode = 0;
    },
  );
}

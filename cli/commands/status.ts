/**
 * `milvus-guard status`: one line per plan — its newest Available backup and that backup's age
 * against the plan's RPO, the next scheduled run, the last failure, what its backups hold in the
 * vault, DR replication and the last drill (core/monitoring/status.ts). It reads the catalog
 * (DynamoDB, or the embedded default's with `--local --state DIR`) and the config (schedules and
 * RPOs); the exit code makes it a health check for scripts: 0 when every plan meets its RPO, 3
 * when one does not (1 for a usage mistake).
 */
import type { Command } from 'commander';
import { resolvePlan, UnknownNameError } from '../../core/config/resolve.js';
import { withReplication } from '../../core/dr/replication.js';
import { UserError } from '../../core/errors.js';
import { planStatuses, type PlanStatus } from '../../core/monitoring/status.js';
import { formatBytes, formatDuration, formatTable } from '../format.js';
import { addWorkflowOptions, catalogFor, configOf, processIO, type WorkflowIO, type WorkflowOptions } from './common.js';
import { nowOption } from './retention.js';

/** The exit code when a plan does not meet its RPO. */
export const RPO_NOT_MET_EXIT_CODE = 3;

/** What `status -o json` prints. */
export interface StatusReport {
  /** The instant the plans were checked at. */
  readonly now: string;
  /** Whether every plan meets its RPO (the exit code is 0 exactly then). */
  readonly healthy: boolean;
  readonly plans: readonly PlanStatus[];
}

interface StatusOptions extends WorkflowOptions {
  plan?: string;
  now?: Date;
}

const NONE = '<none>';

const ago = (now: Date, iso: string): string => `${formatDuration(Math.max(0, (now.getTime() - Date.parse(iso)) / 1000))} ago`;

function metText(p: PlanStatus): string {
  if (p.state === 'no-rpo') return NONE;
  return p.met ? 'yes' : 'NO';
}

/** `status` as a kubectl-style table, one line per plan. */
export function renderStatus(report: StatusReport): string {
  const now = new Date(report.now);
  return formatTable(
    ['plan', 'cluster/namespace', 'last available', 'age', 'rpo', 'met', 'next run', 'last failure', 'vault bytes', 'dr', 'last drill'],
    report.plans.map((p) => [
      p.plan,
      `${p.cluster}/${p.namespace}`,
      p.lastAvailable?.backupId ?? NONE,
      p.ageFrom === 'last-available' && p.ageSeconds !== null ? formatDuration(p.ageSeconds) : NONE,
      p.rpo.seconds === null ? NONE : formatDuration(p.rpo.seconds),
      metText(p),
      p.nextRun ?? 'on demand',
      p.lastFailure ? `${p.lastFailure.backupId} (${ago(now, p.lastFailure.at)})` : NONE,
      formatBytes(p.vaultBytes),
      p.dr.length ? p.dr.map((d) => `${d.region}:${d.status}`).join(',') : NONE,
      p.lastDrill ? `${p.lastDrill.result} (${ago(now, p.lastDrill.at)})` : NONE,
    ]),
  );
}

/** Why plans are not protected, one line each (the table's cells are short). */
function notes(report: StatusReport): string {
  const lines = report.plans.flatMap((p) => {
    if (p.state === 'violated') {
      return [
        p.lastAvailable
          ? `${p.plan}: the newest Available backup is ${formatDuration(p.ageSeconds!)} old, over its RPO of ${formatDuration(p.rpo.seconds!)}`
          : `${p.plan}: no Available backup in ${formatDuration(p.ageSeconds!)} since its first attempt, over its RPO of ${formatDuration(p.rpo.seconds!)}`,
      ];
    }
    if (p.state === 'no-backup') return [`${p.plan}: no Available backup yet: it is not protected (milvus-guard backup create --plan ${p.plan})`];
    return [];
  });
  return lines.map((l) => `${l}\n`).join('');
}

/** Registers `status` on the root program. */
export function registerStatusCommand(program: Command, io: WorkflowIO = processIO): void {
  addWorkflowOptions(
    program
      .command('status')
      .description(`one line per plan: its newest Available backup and age against its RPO, next run, last failure, vault bytes, DR replication, last drill; exit ${RPO_NOT_MET_EXIT_CODE} when a plan misses its RPO`)
      .option('--plan <name>', 'only this plan')
      .addOption(nowOption('check as of this instant (default: now)')),
  ).action(async (opts: StatusOptions) => {
    const config = await configOf(opts);
    if (opts.plan !== undefined) {
      try {
        resolvePlan(config, opts.plan);
      } catch (err) {
        if (err instanceof UnknownNameError) throw new UserError(`--plan: ${err.message}`);
        throw err;
      }
    }
    const now = opts.now ?? new Date();
    const catalog = await catalogFor(opts, config);
    // The DR column reads what each DR region's check recorded for the newest backup.
    const backups = await withReplication(catalog, await catalog.listBackups(opts.plan ? { plan: opts.plan } : {}));
    const restores = await catalog.listRestores(opts.plan ? { plan: opts.plan } : {});
    const plans = planStatuses(config, backups, restores, now, opts.plan);
    const report: StatusReport = { now: now.toISOString(), healthy: plans.every((p) => p.met), plans };
    if (opts.output === 'json') io.out(`${JSON.stringify(report, null, 2)}\n`);
    else {
      io.out(renderStatus(report));
      // On stderr, so the table alone pipes into awk.
      io.err(notes(report));
    }
    process.exitCode = report.healthy ? 0 : RPO_NOT_MET_EXIT_CODE;
  });
}

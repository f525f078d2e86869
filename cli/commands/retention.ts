/**
 * `milvus-guard retention preview|run|list`: what a plan's retention policy keeps and expires,
 * the retention workflow (statemachines/retention.asl.yaml) that applies it, and its past runs. `preview` only reads
 * the catalog; `run` starts the workflow, in AWS or, with `--local`, on the embedded default,
 * where `--now` sets the run's clock so a history of backups can be expired without waiting.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { resolvePlan } from '../../core/config/resolve.js';
import { UserError } from '../../core/errors.js';
import type { RetentionReport } from '../../core/retention/contracts.js';
import { evaluatePlan } from '../../core/retention/workflow.js';
import { startWorkflow } from '../execution.js';
import { formatBytes, formatTable } from '../format.js';
import { addWorkflowOptions, catalogFor, configOf, processIO, type WorkflowIO, type WorkflowOptions } from './common.js';

/** `--now`: an ISO 8601 instant with a time zone. */
export function parseNow(value: string): Date {
  const t = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) || Number.isNaN(t)) {
    throw new InvalidArgumentError(`"${value}" is not an ISO 8601 instant such as 2026-11-23T02:00:00Z`);
  }
  return new Date(t);
}

/** The `--now` option of commands that accept a fixed clock. */
export const nowOption = (what: string): Option => new Option('--now <iso-8601>', what).argParser(parseNow);

interface PreviewOptions extends WorkflowOptions {
  plan: string;
  now?: Date;
}

interface RunOptions extends WorkflowOptions {
  plan?: string;
  all?: boolean;
  now?: Date;
  dryRun?: boolean;
  wait?: boolean;
}

/** One line per plan of a run's report. */
export function renderReport(r: RetentionReport): string {
  const rows = r.plans.map((p) => [p.plan, p.kept.length, p.expired.length, p.expired.filter((e) => !e.cleared).length, p.locksExtended, p.snapshotsDeleted]);
  const lines = [
    `retention ${r.runId}${r.dryRun ? ' (dry run: nothing changed)' : ''} at ${r.now}\n`,
    formatTable(['plan', 'kept', 'expired', 'still locked', 'locks extended', 'snapshots deleted'], rows),
    ...r.skipped.map((s) => `skipped ${s.plan}: ${s.reason}\n`),
    r.gc.skipped ? `packs not collected: ${r.gc.skipped}\n` : `packs: ${r.gc.packsScanned} scanned, ${r.gc.packsDeleted} deleted (${formatBytes(r.gc.bytesFreed)} freed), ${r.gc.packsLocked} unreferenced but still locked${r.gc.packsYoung ? `, ${r.gc.packsYoung} unreferenced but younger than garbage collection's minimum age (a later run deletes them)` : ''}${r.gc.interruptedWritesRemoved ? `, ${r.gc.interruptedWritesRemoved} file(s) of interrupted writes removed` : ''}\n`,
    ...[...r.plans.flatMap((p) => p.errors), ...r.gc.errors].map((e) => `could not delete (the next run tries again): ${e}\n`),
  ];
  return lines.join('');
}

/** Registers `retention preview` and `retention run` on the root program. */
export function registerRetentionCommands(program: Command, io: WorkflowIO = processIO): void {
  const retention = program.command('retention').description('see and apply the grandfather-father-son retention of the plans');

  addWorkflowOptions(
    retention
      .command('preview')
      .description("show which backups the plan's retention keeps (and by which rules, locked until when) and which it would expire")
      .requiredOption('--plan <name>', 'the plan')
      .addOption(nowOption('decide as of this instant (default: now)')),
  ).action(async (opts: PreviewOptions) => {
    const config = await configOf(opts);
    const plan = resolvePlan(config, opts.plan);
    const now = opts.now ?? new Date();
    const records = await (await catalogFor(opts, config)).listBackups({ plan: opts.plan });
    const { keep, expire } = evaluatePlan(plan, records, now);
    if (opts.output === 'json') {
      const out = {
        plan: opts.plan,
        now: now.toISOString(),
        keep: keep.map((k) => ({ backupId: k.backupId, startedAt: k.startedAt, rules: k.rules, retainUntil: k.retainUntil })),
        expire: expire.map((e) => ({ backupId: e.backupId, startedAt: e.startedAt, reason: e.reason })),
      };
      io.out(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      io.out(`plan ${opts.plan} as of ${now.toISOString()}: ${keep.length} kept, ${expire.length} to expire\n`);
      io.out(formatTable(['backup', 'started', 'decision', 'rules or reason', 'locked until'], [...keep.map((k) => [k.backupId, k.startedAt, 'keep', k.rules.join(', '), k.retainUntil]), ...expire.map((e) => [e.backupId, e.startedAt, 'expire', e.reason, ''])]));
    }
    process.exitCode = 0;
  });

  addWorkflowOptions(retention.command('list').description('list retention runs, newest first: kept, expired, packs deleted, bytes freed')).action(async (opts: WorkflowOptions) => {
    const config = await configOf(opts);
    const runs = await (await catalogFor(opts, config)).listRetentionRuns();
    if (opts.output === 'json') io.out(`${JSON.stringify(runs, null, 2)}\n`);
    else {
      io.out(
        formatTable(
          ['run', 'as of', 'plans', 'kept', 'expired', 'packs deleted', 'freed', 'skipped'],
          runs.map((r) => [r.runId, r.now, r.plans.length, r.plans.reduce((n, p) => n + p.kept, 0), r.plans.reduce((n, p) => n + p.expired.length, 0), r.packsDeleted, formatBytes(r.bytesFreed), r.skipped.map((x) => x.plan).join(', ')]),
        ),
      );
    }
    process.exitCode = 0;
  });

  addWorkflowOptions(
    retention
      .command('run')
      .description('start the retention workflow: extend the locks of kept backups, expire the others, delete packs nothing references')
      .option('--plan <name>', 'one plan')
      .option('--all', 'every plan of the vault', false)
      .option('--dry-run', 'decide and report, change nothing', false)
      .option('--wait', 'show progress per step and wait for the end; exit 1 if the run fails', false)
      .addOption(nowOption('with --local: the run as of this instant (in AWS a run is as of its execution start)')),
  ).action(async (opts: RunOptions) => {
    if ((opts.plan === undefined) === !opts.all) throw new UserError('name one plan with --plan NAME, or every plan with --all');
    if (opts.now && !opts.local) throw new UserError('--now needs --local: in AWS a retention run is as of its execution start');
    const config = await configOf(opts);
    if (opts.plan) resolvePlan(config, opts.plan);
    // A run works on one vault, the one of the region it runs in: --all runs once per vault
    // that has plans (in AWS each vault region's state machine; locally the one vault there is).
    const targets = opts.plan ? [opts.plan] : config.vaults.map((v) => config.plans.find((p) => p.vault === v.name)?.name).filter((p): p is string => p !== undefined);
    if (targets.length === 0) throw new UserError('the config has no plans: there is nothing to keep or expire');
    const input = { ...(opts.plan ? { plan: opts.plan } : { all: true }), ...(opts.dryRun ? { dryRun: true } : {}) };
    const ends = [];
    for (const plan of opts.local ? targets.slice(0, 1) : targets) ends.push(await startWorkflow(opts, io, { workflow: 'retention', config, input, plan }));
    const shown = ends.map((end) => (end.status === 'SUCCEEDED' ? (end.output as RetentionReport) : end));
    if (opts.output === 'json') io.out(`${JSON.stringify(shown.length === 1 ? shown[0] : shown, null, 2)}\n`);
    else {
      for (const end of ends) {
        if (end.status === 'SUCCEEDED') io.out(renderReport(end.output as RetentionReport));
        else if (end.status === 'RUNNING') io.out(`started ${end.executionArn}\n`);
        else io.out(`retention ${end.status}: ${end.error ?? ''}: ${end.cause ?? ''}\n`);
      }
    }
    process.exitCode = ends.every((end) => end.status === 'SUCCEEDED' || end.status === 'RUNNING') ? 0 : 1;
  });
}

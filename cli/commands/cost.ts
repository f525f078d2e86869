/**
 * `milvus-guard cost`: what each vault costs per month at S3 list prices — bytes per storage
 * class in the primary bucket and its DR replicas, request and replication costs estimated from
 * the recent backups — next to what the same retention policy would cost as full copies, and
 * with `--project DAYS` the size the observed net churn leads to (uploads minus what retention freed). The numbers are core/cost/'s;
 * this module gathers the inputs (catalog records, vault listings, prices) and prints them.
 *
 * Against AWS: the catalog table and, per vault, `ListObjectsV2` over its bucket and over each
 * replica bucket (named by core/naming.ts from the account STS reports). With `--local --state
 * DIR`: the local catalog and vault directory, plus the vault of a DR state directory linked to
 * it (`--dr-state DIR`, see `milvus-guard local link-dr`).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { BackupCatalog } from '../../core/catalog/catalog.js';
import type { BackupRecord } from '../../core/catalog/record.js';
import type { Config, Vault } from '../../core/config/schema.js';
import { resolvePlan } from '../../core/config/resolve.js';
import { inventoryVault, type VaultInventory } from '../../core/cost/inventory.js';
import { DEFAULT_PRICES, loadPriceFile } from '../../core/cost/prices.js';
import { costReport, MIN_RECENT_BACKUPS, type CostPlanInput, type CostReport, type CostVaultInput, type FullCopyComparison, type VaultCost } from '../../core/cost/report.js';
import { onAws, UserError } from '../../core/errors.js';
import { replicaBucketName, vaultBucketName } from '../../core/naming.js';
import type { VaultStore } from '../../core/vault/store.js';
import { formatBytes, formatTable } from '../format.js';
import { catalogFor, configOf, processIO, type WorkflowIO } from './common.js';
import { DEFAULT_CONFIG_FILE } from './config.js';

/** The flags of `milvus-guard cost`. */
export interface CostOptions {
  config?: string;
  output: 'text' | 'json';
  local?: boolean;
  state: string;
  region?: string;
  vault?: string;
  prices?: string;
  project?: number;
  recent: number;
  drState?: string;
  now?: Date;
}

/** The default number of recent backups the rates come from. */
export const DEFAULT_RECENT_BACKUPS = 10;

function positiveInt(what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`"${value}" is not a positive whole number of ${what}`);
    return n;
  };
}

/** `--recent`: the rates come from the interval between the oldest and the newest of them, so one backup gives none. */
function recentBackups(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < MIN_RECENT_BACKUPS) throw new InvalidArgumentError(`"${value}" is not a whole number of at least ${MIN_RECENT_BACKUPS}: the rates come from the interval between the oldest and the newest of the backups, and one backup has none`);
  return n;
}

function instant(value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime()) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) throw new InvalidArgumentError(`"${value}" is not an ISO 8601 instant such as 2026-11-30T00:00:00Z`);
  return d;
}

/** `$1,234.56`; amounts under a cent keep their first significant digits (a local vault's costs are tiny). */
export function formatUsd(usd: number): string {
  if (usd === 0) return '$0.00';
  if (Math.abs(usd) < 0.01) return `$${usd.toPrecision(2)}`;
  return `$${usd.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

const count = (n: number): string => (Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 1 }));

/** GB as the model prints them: thousands grouped, one decimal; two significant digits under 1 GB (a local vault). */
const gbText = (gb: number): string => (gb === 0 || gb >= 1 ? gb.toLocaleString('en-US', { maximumFractionDigits: 1 }) : gb.toPrecision(2));

/** `latest 7 + weekly 3 (of 4) + monthly 12`: the copies each rule adds, and its count where a backup another rule keeps took its place. */
function tierText(f: FullCopyComparison): string {
  return f.tiers.map((t) => `${t.tier} ${t.copies}${t.rule !== undefined && t.rule !== t.copies ? ` (of ${t.rule})` : ''}`).join(' + ') || 'none';
}

/** One plan's full-copy model with its numbers: `23 copies (latest 7 + ...) × 1.0TiB = 23.0TiB = 23,552 GB × $0.023 per GB-month = $541.70 a month`. */
export function fullCopyModel(f: FullCopyComparison): string {
  return `${f.copies} copies (${tierText(f)}) × ${formatBytes(f.fullCopyBytes)} = ${formatBytes(f.bytes)} = ${gbText(f.gb)} GB × $${f.pricePerGbMonth} per GB-month = ${formatUsd(f.monthlyUsd)} a month`;
}

/** `+1.0GiB` / `-512.0MiB`: a churn that may be negative. */
const signedBytes = (bytes: number): string => `${bytes < 0 ? '-' : '+'}${formatBytes(Math.abs(bytes))}`;

function renderVault(v: VaultCost): string {
  const parts: string[] = [`Vault ${v.vault} (${v.region})\n\nStorage:\n`];
  const rows = v.locations.flatMap((l) => l.classes.map((c) => [l.role, l.region, c.label, count(c.objects), formatBytes(c.bytes), `$${c.pricePerGbMonth}`, formatUsd(c.monthlyUsd)]));
  parts.push(formatTable(['copy', 'region', 'storage class', 'objects', 'size', 'per gb-month', 'per month'], rows));
  for (const u of v.unlisted) parts.push(`  replica in ${u.region} not listed: ${u.reason}\n`);
  const r = v.requests;
  if (r) {
    parts.push(
      `\nRequests and replication (from ${r.backups.length} recent backups, ${count(r.backupsPerMonth)} backups a month, ${formatBytes(r.uploadedBytesPerDay)} uploaded a day):\n`,
      formatTable(
        ['item', 'per month', 'cost'],
        [
          ['PUT/COPY (backups)', count(Math.round(r.putsPerMonth)), formatUsd(r.putsMonthlyUsd)],
          ['LIST (retention)', count(Math.round(r.listsPerMonth)), formatUsd(r.listsMonthlyUsd)],
          ['PUT (replication)', count(Math.round(r.replicationPutsPerMonth)), formatUsd(r.replicationPutsMonthlyUsd)],
          ['inter-region transfer', `${count(r.transferGbPerMonth)} GB`, formatUsd(r.transferMonthlyUsd)],
        ],
      ),
    );
  } else {
    parts.push('\nRequests: not estimated: the vault has fewer than two Available backups to take a rate from\n');
  }
  parts.push(`\nTotal per month: ${formatUsd(v.monthlyUsd)} (storage ${formatUsd(v.storageMonthlyUsd)}${r ? `, requests ${formatUsd(r.requestsMonthlyUsd)}, transfer ${formatUsd(r.transferMonthlyUsd)}` : ''})\n`);
  if (v.fullCopies.length) {
    parts.push(
      `\nThe same retention as full copies (S3 Standard in ${v.region}, primary only):\n`,
      formatTable(
        ['plan', 'copies kept', 'full copy', 'total', 'per month'],
        v.fullCopies.map((f) => [f.plan, f.copies === f.ruleSum ? String(f.copies) : `${f.copies} (rules add up to ${f.ruleSum})`, f.newestBackup ? `${formatBytes(f.fullCopyBytes)} (${f.newestBackup})` : 'no Available backup', formatBytes(f.bytes), formatUsd(f.monthlyUsd)]),
      ),
      'Model: copies kept (per rule, each backup once) × the newest Available backup = total; total in GB (2^30 bytes) × the S3 Standard price = per month\n',
      ...v.fullCopies.map((f) => `  ${f.plan}: ${fullCopyModel(f)}\n`),
    );
    const primary = v.locations.find((l) => l.role === 'primary');
    if (primary && v.fullCopiesMonthlyUsd > 0) {
      parts.push(`Incremental primary vault: ${formatUsd(primary.monthlyStorageUsd)} a month against ${formatUsd(v.fullCopiesMonthlyUsd)} as full copies${primary.monthlyStorageUsd > 0 ? ` (${(v.fullCopiesMonthlyUsd / primary.monthlyStorageUsd).toFixed(1)}x)` : ''}\n`);
    }
  }
  if (v.projection) {
    const p = v.projection;
    const window = `${v.requests!.window.from.slice(0, 10)} to ${v.requests!.window.to.slice(0, 10)}`;
    const churn =
      p.churn === 'net'
        ? `a net ${signedBytes(p.netBytesPerDay)} a day (${formatBytes(p.uploadedBytesPerDay)} uploaded, ${formatBytes(p.freedBytesPerDay)} freed by ${p.retentionRuns} retention run(s), ${window})`
        : `${formatBytes(p.uploadedBytesPerDay)} a day uploaded, gross: no retention run recorded ${window}, so nothing known freed: an upper bound`;
    parts.push(
      `\nIn ${p.days} days at ${churn}; DR replicas grow by the uploads (deletes are not replicated):\n`,
      formatTable(['copy', 'region', 'size', 'storage per month'], p.locations.map((l) => [l.role, l.region, formatBytes(l.bytes), formatUsd(l.monthlyStorageUsd)])),
    );
  }
  return parts.join('');
}

/** The human report: per vault, storage by class, requests, totals, full copies, projection. */
export function renderCostReport(report: CostReport, projectAsked = false): string {
  const vaults = report.vaults.map(renderVault).join('\n');
  const noProjection = projectAsked && report.vaults.some((v) => !v.projection) ? 'No projection where a vault has fewer than two Available backups (no churn to project).\n' : '';
  return `${vaults}${noProjection}\nPrices (${report.prices.currency}): transcribed ${report.prices.takenAt} from ${report.prices.source}; estimates: see -o json "basis"\n`;
}

/** The vaults the report covers: `--vault`, else every vault of the config. */
function vaultsOf(config: Config, name: string | undefined): Vault[] {
  if (name === undefined) return config.vaults;
  const v = config.vaults.find((x) => x.name === name);
  if (!v) throw new UserError(`vault "${name}" is not defined in the config; defined: ${config.vaults.map((x) => x.name).join(', ')}`);
  return [v];
}

function plansOf(config: Config, vault: Vault): CostPlanInput[] {
  return config.plans
    .filter((p) => p.vault === vault.name)
    .map((p) => {
      const r = resolvePlan(config, p.name);
      return { name: p.name, retention: r.retention, timeZone: r.schedule?.timeZone ?? 'UTC', ...(r.schedule ? { schedule: r.schedule } : {}) };
    });
}

async function recordsOf(catalog: { listBackups(f: { plan: string }): Promise<BackupRecord[]> }, plans: readonly CostPlanInput[], vault: string): Promise<BackupRecord[]> {
  const lists = await Promise.all(plans.map((p) => catalog.listBackups({ plan: p.name })));
  return lists.flat().filter((r) => r.vault === vault);
}

/**
 * The retention runs of the vault whose plans are `plans` that deleted (not dry runs): what a
 * projection subtracts from the uploads. A run works on one vault (core/retention/workflow.ts),
 * so a run is the vault's when it decided, or skipped, one of the vault's plans. Read only for
 * `--project`.
 */
async function retentionRunsOf(catalog: Pick<BackupCatalog, 'listRetentionRuns'>, plans: readonly CostPlanInput[]): Promise<{ now: string; bytesFreed: number }[]> {
  const names = new Set(plans.map((p) => p.name));
  return (await catalog.listRetentionRuns())
    .filter((r) => !r.dryRun && [...r.plans, ...r.skipped].some((p) => names.has(p.plan)))
    .map((r) => ({ now: r.now, bytesFreed: r.bytesFreed }));
}

/** A replica that cannot be listed (the DR region is out, no permission) is reported, not fatal. */
async function replicaInventory(store: VaultStore, region: string): Promise<VaultInventory | { region: string; reason: string }> {
  try {
    return await inventoryVault(store, { role: 'replica', region });
  } catch (err) {
    return { region, reason: `${store.url}: ${(err as Error).name}: ${(err as Error).message}` };
  }
}

async function awsInputs(opts: CostOptions, config: Config): Promise<CostVaultInput[]> {
  const catalog = await catalogFor({ ...opts, local: false }, config);
  const { GetCallerIdentityCommand, STSClient } = await import('@aws-sdk/client-sts');
  const { S3VaultStore } = await import('../../core/vault/s3-store.js');
  const out: CostVaultInput[] = [];
  for (const vault of vaultsOf(config, opts.vault)) {
    // The account names the buckets (core/naming.ts); no credentials fail here first.
    const { Account } = await onAws({ service: 'STS', resource: 'GetCallerIdentity (the account that names the vault buckets)', region: vault.region, actions: ['sts:GetCallerIdentity'] }, new STSClient({ region: vault.region }).send(new GetCallerIdentityCommand({})));
    const parts = { installation: config.name, vault: vault.name, account: Account! };
    const bucket = vaultBucketName({ ...parts, region: vault.region });
    const primary = await onAws({ service: 'S3', resource: `bucket ${bucket} (vault ${vault.name})`, region: vault.region, actions: ['s3:ListBucket'] }, inventoryVault(new S3VaultStore({ bucket, region: vault.region }), { role: 'primary', region: vault.region }));
    const replicas = await Promise.all(vault.replicaRegions.map((region) => replicaInventory(new S3VaultStore({ bucket: replicaBucketName({ ...parts, region }), region, maxAttempts: 3 }), region)));
    const plans = plansOf(config, vault);
    out.push({
      name: vault.name,
      region: vault.region,
      inventories: [primary, ...replicas.filter((r): r is VaultInventory => 'role' in r)],
      unlisted: replicas.filter((r): r is { region: string; reason: string } => !('role' in r)),
      plans,
      backups: await recordsOf(catalog, plans, vault.name),
      ...(opts.project !== undefined ? { retentionRuns: await retentionRunsOf(catalog, plans) } : {}),
    });
  }
  return out;
}

async function localInputs(opts: CostOptions, config: Config): Promise<CostVaultInput[]> {
  const vaults = vaultsOf(config, opts.vault);
  if (vaults.length !== 1) throw new UserError(`the config defines ${vaults.length} vaults and a local state directory holds one: name it with --vault (${vaults.map((v) => v.name).join(', ')})`);
  const vault = vaults[0]!;
  const { localCatalog, localRegion, localVault } = await import('../local-mode.js');
  const inventories = [await inventoryVault(await localVault(opts.state), { role: 'primary', region: vault.region })];
  if (opts.drState !== undefined) {
    const region = await localRegion(opts.drState);
    if (region === undefined) throw new UserError(`${opts.drState} is not linked as a DR region: link it with milvus-guard local link-dr, or leave --dr-state out to report the primary vault only`);
    inventories.push(await inventoryVault(await localVault(opts.drState), { role: 'replica', region }));
  }
  const plans = plansOf(config, vault);
  const catalog = await localCatalog(opts.state);
  return [{ name: vault.name, region: vault.region, inventories, plans, backups: await recordsOf(catalog, plans, vault.name), ...(opts.project !== undefined ? { retentionRuns: await retentionRunsOf(catalog, plans) } : {}) }];
}

/**
 * Builds the cost report the flags ask for: prices (built-in or `--prices`), the catalog's
 * records and the vaults' listings from AWS or the local state directory, at `opts.now`.
 */
export async function buildCostReport(opts: CostOptions, config: Config): Promise<CostReport> {
  const prices = opts.prices === undefined ? DEFAULT_PRICES : await loadPriceFile(opts.prices);
  const vaults = opts.local ? await localInputs(opts, config) : await awsInputs(opts, config);
  return costReport({ now: opts.now ?? new Date(), prices, vaults, recentBackups: opts.recent, ...(opts.project !== undefined ? { projectDays: opts.project } : {}) });
}

/** Registers `milvus-guard cost` on the root program. */
export function registerCostCommand(program: Command, io: WorkflowIO = processIO): void {
  program
    .command('cost')
    .description("what the vaults cost per month at S3 list prices, by storage class, with request and replication estimates, against the same retention kept as full copies")
    .option('--vault <name>', 'only this vault (default: every vault of the config)')
    .option('--prices <file>', 'a JSON price table instead of the built-in us-east-1/us-west-2 list prices (shape: DEFAULT_PRICES in core/cost/prices.ts)')
    .addOption(new Option('--project <days>', "project each vault's size this many days ahead at the observed net churn (the recent backups' uploads minus what retention runs freed; gross, an upper bound, without a run)").argParser(positiveInt('days')))
    .addOption(new Option('--recent <n>', `how many of the newest Available backups the rates come from (at least ${MIN_RECENT_BACKUPS})`).argParser(recentBackups).default(DEFAULT_RECENT_BACKUPS))
    .addOption(new Option('--now <instant>', 'the report as of this instant (ISO 8601), for the full-copy model').argParser(instant))
    .option('-c, --config <file>', `the config file (default: ${DEFAULT_CONFIG_FILE}; with --local: examples/production.yaml)`)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--local', 'use the embedded default started by `milvus-guard local up` instead of AWS', false)
    .option('--state <dir>', 'with --local: the state directory given to `local up`', '.local-state')
    .option('--dr-state <dir>', "with --local: a DR region's state directory linked to --state; its vault is reported as the replica")
    .option('--region <region>', "AWS region of the catalog (default: the first vault's region)")
    .action(async (opts: CostOptions) => {
      if (opts.drState !== undefined && !opts.local) throw new UserError('--dr-state needs --local: in AWS the replica buckets are found from the config (vaults[].replicaRegions)');
      const config = await configOf(opts);
      const report = await buildCostReport(opts, config);
      io.out(opts.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderCostReport(report, opts.project !== undefined));
      process.exitCode = 0;
    });
}

/**
 * `milvus-guard status`: one line per plan — its newest Available backup and that backup's age
 * against the plan's RPO, the next scheduled run, the last failure, the size of its vault, DR
 * replication and the last drill (core/monitoring/status.ts). It reads the catalog (DynamoDB, or
 * the embedded default's with `--local --state DIR`), the first-seen markers the RPO check
 * records (core/catalog/first-seen.ts), the vaults' sizes and the config (schedules and RPOs);
 * the exit code makes it a health check for scripts: 0 when every plan meets its RPO (or has
 * none), 3 when one misses it or cannot be judged (1 for a usage mistake or an AWS environment
 * problem: no credentials, no catalog table in that region).
 *
 * A plan with no backup record and no first-seen marker (in AWS: the RPO check never saw it — the
 * config is not deployed, was deployed minutes ago, or the check does not run) is `unknown`: it
 * may have been unprotected for any length of time, so it fails the health check (exit 3) and
 * stderr says what to look at. Locally `status` records the marker itself, so it never is.
 *
 * A plan that never had an Available backup is judged as its RPO alarm judges it: from when it
 * was first protected (its first backup attempt, or when the RPO check first saw it). In AWS the
 * RPO check records that; `status` only reads it, so a plan of a config that was not deployed
 * starts no clock. The embedded default has no scheduled check: there `status` is the check, and
 * its first run records each plan's first-seen instant at its `--now`.
 *
 * LAST DRILL is the plan's newest drill run, marked `OVERDUE` when one of the plan's configured
 * drills has not passed within its period, as its drill-overdue alarm judges it (a drill never
 * attempted: since the RPO check first saw it, with the drills' own first-seen markers, read and
 * recorded as the plans' are). It does not change the exit code, which is the RPO's.
 *
 * VAULT BYTES is the vault's real size, shared by the plans that use it. In AWS: S3's daily
 * storage metric `BucketSizeBytes` of the vault bucket (CloudWatch `AWS/S3`, dimensions
 * `BucketName` and `StorageType`), the latest day's datapoint summed over every storage type the
 * bucket reports (ListMetrics names them: the classes, their overheads, every object version).
 * S3 reports it once a day, so it is up to a day or two old (`vaultBytesAt` in `-o json`); a
 * listing would be current but costs a LIST request per 1,000 objects on every run and counts
 * current versions only. Locally: the vault directory's objects, listed now.
 */
import type { CloudWatchClient, MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import type { Command } from 'commander';
import type { BackupCatalog } from '../../core/catalog/catalog.js';
import { DynamoFirstSeen, firstSeenOf, LocalFirstSeen, type FirstSeenMarkers, type FirstSeenSubject } from '../../core/catalog/first-seen.js';
import { LocalCatalog } from '../../core/catalog/local.js';
import { resolvePlan, UnknownNameError } from '../../core/config/resolve.js';
import type { Config, Vault } from '../../core/config/schema.js';
import { withReplication } from '../../core/dr/replication.js';
import { UserError } from '../../core/errors.js';
import { planStatuses, type PlanStatus, type VaultSize } from '../../core/monitoring/status.js';
import { vaultBucketName } from '../../core/naming.js';
import type { VaultStore } from '../../core/vault/store.js';
import { formatBytes, formatDuration, formatTable } from '../format.js';
import { addWorkflowOptions, catalogFor, catalogTarget, configOf, explainAwsErrors, processIO, type WorkflowIO, type WorkflowOptions } from './common.js';
import { nowOption } from './retention.js';

/** The exit code when a plan does not meet its RPO, or cannot be judged (`unknown`). */
export const RPO_NOT_MET_EXIT_CODE = 3;

/** What `status -o json` prints. */
export interface StatusReport {
  /** The instant the plans were checked at. */
  readonly now: string;
  /** Whether every plan meets its RPO or has none: none is violated or `unknown` (the exit code is 0 exactly then). */
  readonly healthy: boolean;
  readonly plans: readonly PlanStatus[];
}

interface StatusOptions extends WorkflowOptions {
  plan?: string;
  now?: Date;
}

const NONE = '<none>';
/** A size that could not be read (why is said on stderr). */
const UNKNOWN = '<unknown>';

/** An age in seconds as the table says it; a plan first seen by this very run is `0s` old. */
const age = (seconds: number): string => (seconds < 1 ? '0s' : formatDuration(seconds));

const ago = (now: Date, iso: string): string => `${age(Math.max(0, (now.getTime() - Date.parse(iso)) / 1000))} ago`;

/** What a plan without an Available backup ages from, as the AGE column and the notes say it. */
const AGE_FROM_TEXT = { 'first-attempt': 'first attempt', 'first-seen': 'first seen' } as const;

function metText(p: PlanStatus): string {
  if (p.state === 'no-rpo') return NONE;
  // No Available backup yet, and not late yet: the RPO alarm is quiet too.
  if (p.state === 'no-backup') return 'pending';
  // Never seen by the RPO check and never attempted: no verdict, and not healthy either.
  if (p.state === 'unknown') return 'unknown';
  return p.met ? 'yes' : 'NO';
}

function ageText(p: PlanStatus): string {
  if (p.ageSeconds === null || p.ageFrom === null) return NONE;
  return p.ageFrom === 'last-available' ? age(p.ageSeconds) : `${age(p.ageSeconds)} (${AGE_FROM_TEXT[p.ageFrom]})`;
}

/** The plan's newest drill run, and whether one of its drills is overdue (as its alarm judges it). */
function lastDrillText(now: Date, p: PlanStatus): string {
  const overdue = p.drills.some((d) => d.overdue);
  if (!p.lastDrill) return overdue ? 'never (OVERDUE)' : NONE;
  return `${p.lastDrill.result} (${ago(now, p.lastDrill.at)}${overdue ? ', OVERDUE' : ''})`;
}

/** What a drill's age counts from, as the notes say it. */
const DRILL_SINCE = { 'last-passed': 'since its last pass', 'first-attempt': 'since its first attempt', 'first-seen': 'since the RPO check first saw it' } as const;

/** `status` as a kubectl-style table, one line per plan. */
export function renderStatus(report: StatusReport): string {
  const now = new Date(report.now);
  return formatTable(
    ['plan', 'cluster/namespace', 'last available', 'age', 'rpo', 'met', 'next run', 'last failure', 'vault bytes', 'dr', 'last drill'],
    report.plans.map((p) => [
      p.plan,
      `${p.cluster}/${p.namespace}`,
      p.lastAvailable?.backupId ?? 'never',
      ageText(p),
      p.rpo.seconds === null ? NONE : formatDuration(p.rpo.seconds),
      metText(p),
      p.nextRun ?? 'on demand',
      p.lastFailure ? `${p.lastFailure.backupId} (${ago(now, p.lastFailure.at)})` : NONE,
      p.vaultBytes === null ? UNKNOWN : formatBytes(p.vaultBytes),
      p.dr.length ? p.dr.map((d) => `${d.region}:${d.status}`).join(',') : NONE,
      lastDrillText(now, p),
    ]),
  );
}

/** Why plans are not protected or cannot be judged, and why a vault's size is unknown: one line each (the table's cells are short); `installation` names the alarms. */
export function statusNotes(report: StatusReport, installation = '<name>'): string {
  const since = (p: PlanStatus) => (p.ageFrom === 'first-seen' ? 'since the RPO check first saw it' : 'since its first attempt');
  const lines = report.plans.flatMap((p) => {
    if (p.state === 'violated') {
      return [
        p.lastAvailable
          ? `${p.plan}: the newest Available backup is ${age(p.ageSeconds!)} old, over its RPO of ${formatDuration(p.rpo.seconds!)}`
          : `${p.plan}: no Available backup in ${age(p.ageSeconds!)} ${since(p)}, over its RPO of ${formatDuration(p.rpo.seconds!)}`,
      ];
    }
    if (p.state === 'no-backup' && p.ageSince !== null) {
      const due = new Date(Date.parse(p.ageSince) + p.rpo.seconds! * 1000).toISOString();
      return [`${p.plan}: no Available backup yet, ${age(p.ageSeconds!)} ${since(p)}; it misses its RPO of ${formatDuration(p.rpo.seconds!)} at ${due} unless one becomes Available (milvus-guard backup create --plan ${p.plan})`];
    }
    if (p.state === 'unknown') {
      return [
        `${p.plan}: no backup record and the RPO check has never seen the plan, so nothing says since when it is unprotected: is it deployed with this config (npx cdk deploy; the check runs every 15 minutes after), and is the RPO check running (see the ${installation}-rpo-check-stopped alarm)? Not healthy until the check has seen it`,
      ];
    }
    return [];
  });
  for (const p of report.plans) {
    for (const d of p.drills.filter((d) => d.overdue)) {
      lines.push(`${p.plan}: drill ${d.drill} has not passed in ${age(d.ageSeconds!)} ${DRILL_SINCE[d.ageFrom!]}, over its period of ${formatDuration(d.periodSeconds!)} (milvus-guard drill list --plan ${p.plan}; milvus-guard drill run --drill ${d.drill} --wait)`);
    }
  }
  const vaults = new Map(report.plans.flatMap((p) => (p.vaultBytesUnknown === undefined ? [] : [[p.vault, p.vaultBytesUnknown] as const])));
  for (const [vault, reason] of vaults) lines.push(`vault ${vault}: size unknown: ${reason}`);
  return lines.map((l) => `${l}\n`).join('');
}

// ---- vault sizes ----------------------------------------------------------------------------

const DAY_MS = 86_400_000;
/** How many days back the latest `BucketSizeBytes` is looked for: S3 reports daily, at times a day late. */
export const BUCKET_SIZE_LOOKBACK_DAYS = 7;

/**
 * The size of S3 bucket `bucket` as its latest daily `BucketSizeBytes` says, as of `now`: the
 * sum over every storage type the bucket reports (ListMetrics names them) of that day's value.
 * S3 publishes one datapoint a day per storage type, timestamped at midnight UTC, and reports
 * metrics only for buckets that hold objects; ListMetrics returns metrics with data in the last
 * two weeks (CloudWatch docs, "Amazon S3 daily storage metrics for buckets"; ListMetrics API).
 */
export async function bucketSize(client: CloudWatchClient, bucket: string, now: Date): Promise<VaultSize> {
  const { paginateGetMetricData, paginateListMetrics } = await import('@aws-sdk/client-cloudwatch');
  const storageTypes: string[] = [];
  for await (const page of paginateListMetrics({ client }, { Namespace: 'AWS/S3', MetricName: 'BucketSizeBytes', Dimensions: [{ Name: 'BucketName', Value: bucket }] })) {
    for (const metric of page.Metrics ?? []) {
      const type = metric.Dimensions?.find((d) => d.Name === 'StorageType')?.Value;
      if (type !== undefined && !storageTypes.includes(type)) storageTypes.push(type);
    }
  }
  const none = `S3 has reported no BucketSizeBytes for bucket ${bucket} in the last ${BUCKET_SIZE_LOOKBACK_DAYS} days (it reports once a day, from the day after the bucket first holds objects)`;
  if (storageTypes.length === 0) return { bytes: null, reason: none };
  const queries: MetricDataQuery[] = storageTypes.map((type, i) => ({
    Id: `t${i}`,
    Label: type,
    MetricStat: { Metric: { Namespace: 'AWS/S3', MetricName: 'BucketSizeBytes', Dimensions: [{ Name: 'BucketName', Value: bucket }, { Name: 'StorageType', Value: type }] }, Period: 86_400, Stat: 'Average' },
    ReturnData: true,
  }));
  // Whole days, so each period holds one day's datapoint and is named by its midnight.
  const start = new Date((Math.floor(now.getTime() / DAY_MS) - BUCKET_SIZE_LOOKBACK_DAYS) * DAY_MS);
  const byDay = new Map<number, number>();
  for await (const page of paginateGetMetricData({ client }, { MetricDataQueries: queries, StartTime: start, EndTime: now, ScanBy: 'TimestampDescending' })) {
    for (const result of page.MetricDataResults ?? []) {
      (result.Timestamps ?? []).forEach((t, i) => byDay.set(t.getTime(), (byDay.get(t.getTime()) ?? 0) + (result.Values?.[i] ?? 0)));
    }
  }
  if (byDay.size === 0) return { bytes: null, reason: none };
  const latest = Math.max(...byDay.keys());
  return { bytes: Math.round(byDay.get(latest)!), at: new Date(latest).toISOString() };
}

/** The size of a vault as its objects' listing says, now (the embedded default's vault directory). */
export async function listedSize(store: VaultStore, now: Date): Promise<VaultSize> {
  let bytes = 0;
  for await (const o of store.list('')) bytes += o.size;
  return { bytes, at: now.toISOString() };
}

/** A size that could not be read is reported, not fatal: status is first a health check of RPOs. */
async function sizeOr(read: () => Promise<VaultSize>): Promise<VaultSize> {
  try {
    return await read();
  } catch (err) {
    return { bytes: null, reason: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

/** The sizes of `vaults`: in AWS each vault bucket's (in the account STS names), locally the state directory's one vault. */
async function vaultSizes(opts: StatusOptions, config: Config, vaults: readonly Vault[], now: Date): Promise<Map<string, VaultSize>> {
  if (opts.local) {
    // A local state directory holds one vault, whichever vault of the config a plan names.
    const { localVault } = await import('../local-mode.js');
    const size = await sizeOr(async () => listedSize(await localVault(opts.state), now));
    return new Map(vaults.map((v) => [v.name, size]));
  }
  const { GetCallerIdentityCommand, STSClient } = await import('@aws-sdk/client-sts');
  const { CloudWatchClient } = await import('@aws-sdk/client-cloudwatch');
  // The bucket is named after the account (core/naming.ts); a failure to learn it is each vault's reason.
  const account = new STSClient({ region: vaults[0]!.region }).send(new GetCallerIdentityCommand({})).then((r) => r.Account!);
  account.catch(() => undefined);
  const sizes = await Promise.all(
    vaults.map(async (v): Promise<[string, VaultSize]> => [
      v.name,
      await sizeOr(async () => bucketSize(new CloudWatchClient({ region: v.region }), vaultBucketName({ installation: config.name, vault: v.name, account: await account, region: v.region }), now)),
    ]),
  );
  return new Map(sizes);
}

/** Where the first-seen markers of plans and of drills are: beside the catalog, which `catalogFor` connected. */
async function firstSeenMarkersFor(opts: StatusOptions, config: Config, catalog: BackupCatalog): Promise<Record<FirstSeenSubject, FirstSeenMarkers>> {
  if (catalog instanceof LocalCatalog) return { plan: new LocalFirstSeen(catalog.dir), drill: new LocalFirstSeen(catalog.dir, 'drill') };
  // The same table and region as catalogFor (cli/commands/common.ts), and its failures told alike.
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const { DynamoDBDocumentClient } = await import('@aws-sdk/lib-dynamodb');
  const target = catalogTarget(opts, config);
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: target.region }));
  const { tableName } = target;
  return { plan: explainAwsErrors(target, new DynamoFirstSeen({ tableName, client })), drill: explainAwsErrors(target, new DynamoFirstSeen({ tableName, client, subject: 'drill' })) };
}

/** Registers `status` on the root program. */
export function registerStatusCommand(program: Command, io: WorkflowIO = processIO): void {
  addWorkflowOptions(
    program
      .command('status')
      .description(
        `one line per plan: its newest Available backup and age against its RPO (a plan that never had one: its age since first protected), next run, last failure, ` +
          `its vault's bytes (S3's daily BucketSizeBytes, so up to a day or two old; locally the vault directory), DR replication, last drill (OVERDUE when a drill of the plan has not passed within its period); exit ${RPO_NOT_MET_EXIT_CODE} when a plan misses its RPO or the RPO check has never seen it (MET unknown)`,
      )
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
    const names = opts.plan === undefined ? config.plans.map((p) => p.name) : [opts.plan];
    const catalog = await catalogFor(opts, config);
    // The DR column reads what each DR region's check recorded for the newest backup.
    const backups = await withReplication(catalog, await catalog.listBackups(opts.plan ? { plan: opts.plan } : {}));
    const restores = await catalog.listRestores(opts.plan ? { plan: opts.plan } : {});
    // Locally no scheduled check runs: status is the check there, and records what it first saw.
    const markers = await firstSeenMarkersFor(opts, config, catalog);
    const firstSeen = await firstSeenOf(markers.plan, names, now, opts.local === true);
    const drillNames = config.drills.filter((d) => names.includes(d.plan)).map((d) => d.name);
    const drillFirstSeen = drillNames.length ? await firstSeenOf(markers.drill, drillNames, now, opts.local === true) : new Map<string, string>();
    const vaults = config.vaults.filter((v) => names.some((name) => resolvePlan(config, name).vault.name === v.name));
    const plans = planStatuses(config, { backups, restores, firstSeen, drillFirstSeen, vaultSizes: await vaultSizes(opts, config, vaults, now) }, now, opts.plan);
    const report: StatusReport = { now: now.toISOString(), healthy: plans.every((p) => p.met), plans };
    if (opts.output === 'json') io.out(`${JSON.stringify(report, null, 2)}\n`);
    else {
      io.out(renderStatus(report));
      // On stderr, so the table alone pipes into awk.
      io.err(statusNotes(report, config.name));
    }
    process.exitCode = report.healthy ? 0 : RPO_NOT_MET_EXIT_CODE;
  });
}

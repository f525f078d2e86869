/**
 * The cost report (`milvus-guard cost`): what a vault costs per month at S3 list prices, from
 * what it really holds — its objects by storage class in the primary bucket and each DR
 * replica — and from the catalog's real sizes; what its backups' requests and replication
 * cost per month, estimated from the recent backups; what the same retention policy would cost
 * as full copies; and, asked for, its size some days ahead at the observed churn. Pure: the
 * inventories, records, prices and clock are inputs (core/cost/inventory.ts lists a vault).
 *
 * The estimates, as the report states them in `basis`:
 * - Rates come from the intervals between the recent `Available` backups of the vault (the N
 *   newest): what the backups after the oldest of them uploaded and wrote, over the days since
 *   it. One backup gives no interval, so no rate (and no request estimate or projection).
 * - PUT requests of a backup ≈ its packs (the bytes its volumes uploaded over the vault's
 *   average pack size) + the objects it copied server-side (COPY, priced as PUT) + the objects it
 *   owns in the vault (record, manifests, indexes, summaries, manifest pages). All are written as
 *   S3 Standard.
 * - LIST requests: the daily retention run lists the whole vault once (1 request per 1,000 keys).
 * - Each DR replica receives every object again (a replication PUT at its Region's price) and
 *   the uploaded bytes cross Regions (inter-Region transfer, paid by the source Region).
 * - Listings show current object versions only; noncurrent versions are billed too, until the
 *   lifecycle's noncurrent-version rule removes them, and are not counted.
 * - GET requests are not estimated: reads happen at restores and drills, which are events, not a
 *   monthly rate, and as the HEADs an incremental backup sends for the packs it reuses without
 *   extending their lock (one per pack, billed as GETs, a few cents per million). Early-deletion minimums, Intelligent-Tiering monitoring and the per-object
 *   overhead of the archive classes are not included.
 * - A projection adds the net churn to today's size: over the same interval as the rates, the
 *   bytes the backups uploaded minus the bytes retention freed in the primary vault (the catalog's
 *   retention run records, `bytesFreed`: packs and copied Milvus objects garbage-collected), per
 *   day, times the days (never below empty). A DR replica grows by the uploads alone: deletes in
 *   the source are not replicated and retention does not run there (infra/stacks/dr-stack.ts).
 *   Without a retention run in the interval nothing was freed that the catalog knows of: the
 *   churn is gross, and the projection an upper bound, and says so (`churn: 'gross'`).
 */
import type { BackupRecord } from '../catalog/record.js';
import type { RetentionBody, ScheduleBody } from '../config/schema.js';
import { fullCopyCost, GIB, ruleSum, steadyStateTiers, type TierCopies } from './full-copies.js';
import type { VaultInventory } from './inventory.js';
import { CLASS_LABELS, pricedClass, pricesFor, type PriceTable } from './prices.js';

export { GIB };
const DAYS_PER_MONTH = 30.4375;
const DAY_MS = 86_400_000;
/** The fewest recent backups a rate can come from: one interval needs two. */
export const MIN_RECENT_BACKUPS = 2;
/** The packer's default pack size (core/datamover/packer.ts), for a vault that has no packs yet. */
const DEFAULT_PACK_BYTES = 16 * 1024 * 1024;

/** A plan whose backups live in the vault: what its full copies would be. */
export interface CostPlanInput {
  readonly name: string;
  readonly retention: RetentionBody;
  /** The plan's schedule's time zone (UTC without one). */
  readonly timeZone: string;
  readonly schedule?: ScheduleBody;
}

export interface CostVaultInput {
  readonly name: string;
  readonly region: string;
  /** The primary's inventory first, then each listed replica. */
  readonly inventories: readonly VaultInventory[];
  readonly plans: readonly CostPlanInput[];
  /** The catalog's records of the vault's backups (any status). */
  readonly backups: readonly BackupRecord[];
  /**
   * The vault's completed retention runs that deleted (not dry runs): when each ran and what its
   * garbage collection freed. Only a projection reads them; none: nothing known to be freed.
   */
  readonly retentionRuns?: readonly { readonly now: string; readonly bytesFreed: number }[];
  /** Replica Regions that could not be listed, and why (the report says so). */
  readonly unlisted?: readonly { readonly region: string; readonly reason: string }[];
}

export interface CostInput {
  readonly now: Date;
  readonly prices: PriceTable;
  readonly vaults: readonly CostVaultInput[];
  /** How many of the newest Available backups the rates come from: at least {@link MIN_RECENT_BACKUPS}. */
  readonly recentBackups: number;
  /** Days to project the vault's size ahead; none without. */
  readonly projectDays?: number;
}

export interface ClassCost {
  readonly storageClass: string;
  readonly label: string;
  readonly objects: number;
  readonly bytes: number;
  readonly pricePerGbMonth: number;
  readonly monthlyUsd: number;
}

export interface LocationCost {
  readonly role: 'primary' | 'replica';
  readonly region: string;
  readonly url: string;
  readonly objects: number;
  readonly bytes: number;
  readonly classes: readonly ClassCost[];
  readonly monthlyStorageUsd: number;
}

export interface RequestEstimate {
  /** Available backups the rates come from (newest first). */
  readonly backups: readonly string[];
  /** The interval the rates are over: the oldest recent backup's start to the newest's (ISO 8601), in days. */
  readonly window: { readonly from: string; readonly to: string; readonly days: number };
  readonly backupsPerMonth: number;
  readonly uploadedBytesPerDay: number;
  readonly putsPerBackup: number;
  readonly putsPerMonth: number;
  readonly listsPerMonth: number;
  readonly replicationPutsPerMonth: number;
  readonly transferGbPerMonth: number;
  readonly putsMonthlyUsd: number;
  readonly listsMonthlyUsd: number;
  readonly replicationPutsMonthlyUsd: number;
  /** PUTs, LISTs and replication PUTs. */
  readonly requestsMonthlyUsd: number;
  readonly transferMonthlyUsd: number;
}

export interface FullCopyComparison {
  readonly plan: string;
  /** The plan's newest Available backup, whose size one full copy is. */
  readonly newestBackup?: string;
  readonly fullCopyBytes: number;
  /** Backups the retention calculator keeps in steady state. */
  readonly copies: number;
  /** Those copies per rule, each counted once under the first rule that keeps it. */
  readonly tiers: readonly TierCopies[];
  /** latest + weekly + monthly + yearly, for comparison with back-of-the-envelope models. */
  readonly ruleSum: number;
  /** copies × fullCopyBytes. */
  readonly bytes: number;
  /** `bytes` in GB of 2^30 bytes, as S3 bills them. */
  readonly gb: number;
  /** S3 Standard's list price in the vault's Region, USD per GB-month. */
  readonly pricePerGbMonth: number;
  /** gb × pricePerGbMonth. */
  readonly monthlyUsd: number;
}

export interface Projection {
  readonly days: number;
  readonly uploadedBytesPerDay: number;
  /** What retention freed in the primary vault per day over the rates' window (0 without a run in it). */
  readonly freedBytesPerDay: number;
  /** How many retention runs `freedBytesPerDay` comes from. */
  readonly retentionRuns: number;
  /** uploadedBytesPerDay − freedBytesPerDay: the primary's churn (negative: it shrinks). */
  readonly netBytesPerDay: number;
  /**
   * `net`: uploads minus what retention freed over the window; `gross`: no retention run in the
   * window, so uploads only and the projection is an upper bound.
   */
  readonly churn: 'net' | 'gross';
  /** Per location, today's bytes plus its churn: the primary's net, a replica's the uploads (deletes are not replicated). */
  readonly locations: readonly { readonly role: 'primary' | 'replica'; readonly region: string; readonly bytes: number; readonly monthlyStorageUsd: number }[];
  readonly monthlyStorageUsd: number;
}

export interface VaultCost {
  readonly vault: string;
  readonly region: string;
  readonly locations: readonly LocationCost[];
  readonly unlisted: readonly { readonly region: string; readonly reason: string }[];
  /** Undefined with fewer than two Available backups (no interval to take a rate from). */
  readonly requests?: RequestEstimate;
  readonly fullCopies: readonly FullCopyComparison[];
  readonly fullCopiesMonthlyUsd: number;
  readonly storageMonthlyUsd: number;
  readonly monthlyUsd: number;
  readonly projection?: Projection;
}

export interface CostReport {
  readonly generatedAt: string;
  readonly prices: { readonly source: string; readonly takenAt: string; readonly currency: 'USD' };
  readonly vaults: readonly VaultCost[];
  readonly monthlyUsd: number;
  readonly fullCopiesMonthlyUsd: number;
  /** How each number was estimated, in words. */
  readonly basis: readonly string[];
}

const BASIS = [
  'storage: the bytes each bucket holds per storage class, at the price table\'s list prices per GB-month (GB = 2^30 bytes); Intelligent-Tiering at its Frequent Access price (an upper bound)',
  'listings show current versions only: noncurrent versions (an overwritten locked object, until the lifecycle removes them) are billed but not counted',
  'rates: from the intervals between the recent Available backups (what the backups after the oldest of them uploaded and wrote, per day since it)',
  "PUTs per backup: its packs (bytes uploaded / the vault's average pack size) + objects copied server-side (COPY) + the objects it owns in the vault; written as S3 Standard",
  'LISTs: the daily retention run lists the whole vault once (1 request per 1,000 objects)',
  'replicas: every PUT again at the replica Region, and the uploaded bytes as inter-Region transfer',
  'not included: GETs (restores and drills, and the HEADs of incremental backups for the packs they reuse), early-deletion minimums, Intelligent-Tiering monitoring, the archive classes\' per-object overhead, KMS requests',
  "full copies: copies × size × price: the backups the retention calculator keeps in steady state at the plan's schedule (each counted once, under the first rule that keeps it, so fewer than the rule counts added up when a backup is both a latest and a weekly one), each the size of the plan's newest Available backup, in GB of 2^30 bytes, at S3 Standard's price per GB-month in the vault's Region; no compression, deduplication or incremental copies",
  "projection: today's bytes plus the churn per day times the days; the primary's churn is net: the bytes the recent backups uploaded minus the bytes retention runs freed (their catalog records), over the same interval as the rates; without a retention run in that interval it is gross (uploads only, an upper bound; churn: \"gross\"); a DR replica grows by the uploads, as deletes are not replicated and retention does not run there",
];

/** A volume's uploaded bytes of a backup: the components', else the record's minus what its object copy added. */
function volumeBytesUploaded(r: BackupRecord): number {
  const fromComponents = r.components.reduce((n, c) => n + (c.bytesUploaded ?? 0), 0);
  if (fromComponents > 0) return fromComponents;
  return Math.max(0, (r.bytesUploaded ?? 0) - (r.objectCopy?.bytesCopied ?? 0));
}

function locationCost(inv: VaultInventory, prices: PriceTable): LocationCost {
  const p = pricesFor(prices, inv.region);
  const classes = inv.classes.map((c) => {
    // A class the table does not price (REDUCED_REDUNDANCY, EXPRESS_ONEZONE) is priced as Standard and labelled so.
    const priced = pricedClass(c.storageClass);
    const price = p.storagePerGbMonth[priced ?? 'STANDARD'];
    return { storageClass: c.storageClass, label: priced ? CLASS_LABELS[priced] : `${c.storageClass} (priced as S3 Standard)`, objects: c.objects, bytes: c.bytes, pricePerGbMonth: price, monthlyUsd: (c.bytes / GIB) * price };
  });
  return { role: inv.role, region: inv.region, url: inv.url, objects: inv.objects, bytes: inv.bytes, classes, monthlyStorageUsd: sum(classes.map((c) => c.monthlyUsd)) };
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

function requestEstimate(v: CostVaultInput, recent: readonly BackupRecord[], prices: PriceTable): RequestEstimate | undefined {
  if (recent.length < 2) return undefined;
  const primary = v.inventories.find((i) => i.role === 'primary');
  const packBytes = primary && primary.packs.objects > 0 ? primary.packs.bytes / primary.packs.objects : DEFAULT_PACK_BYTES;
  const putsOf = (r: BackupRecord) => Math.ceil(volumeBytesUploaded(r) / packBytes) + (r.objectCopy?.copied ?? 0) + (primary?.backupObjects[r.backupId] ?? 0);
  // Newest first: the interval runs from the oldest's start to the newest's; the backups after the oldest filled it.
  const oldest = recent[recent.length - 1]!;
  const days = Math.max((Date.parse(recent[0]!.startedAt) - Date.parse(oldest.startedAt)) / DAY_MS, 1 / 24);
  const window = { from: oldest.startedAt, to: recent[0]!.startedAt, days };
  const after = recent.slice(0, -1);
  const backupsPerDay = after.length / days;
  const uploadedBytesPerDay = sum(after.map((r) => r.bytesUploaded ?? 0)) / days;
  const putsPerBackup = sum(after.map(putsOf)) / after.length;
  const backupsPerMonth = backupsPerDay * DAYS_PER_MONTH;
  const putsPerMonth = putsPerBackup * backupsPerMonth;
  const listsPerMonth = Math.ceil((primary?.objects ?? 0) / 1000) * DAYS_PER_MONTH;
  const here = pricesFor(prices, v.region);
  const replicas = v.inventories.filter((i) => i.role === 'replica');
  const replicaRegions = [...replicas.map((r) => r.region), ...(v.unlisted ?? []).map((u) => u.region)];
  const transferGbPerMonth = ((uploadedBytesPerDay * DAYS_PER_MONTH) / GIB) * replicaRegions.length;
  const replicaPutUsd = sum(replicaRegions.map((region) => (putsPerMonth / 1000) * pricesFor(prices, region).requestsPer1000.STANDARD.putCopyPostList));
  const putsMonthlyUsd = (putsPerMonth / 1000) * here.requestsPer1000.STANDARD.putCopyPostList;
  const listsMonthlyUsd = (listsPerMonth / 1000) * here.requestsPer1000.STANDARD.putCopyPostList;
  return {
    backups: recent.map((r) => r.backupId),
    window,
    backupsPerMonth,
    uploadedBytesPerDay,
    putsPerBackup,
    putsPerMonth,
    listsPerMonth,
    replicationPutsPerMonth: putsPerMonth * replicaRegions.length,
    transferGbPerMonth,
    putsMonthlyUsd,
    listsMonthlyUsd,
    replicationPutsMonthlyUsd: replicaPutUsd,
    requestsMonthlyUsd: putsMonthlyUsd + listsMonthlyUsd + replicaPutUsd,
    transferMonthlyUsd: transferGbPerMonth * here.interRegionTransferPerGb,
  };
}

function fullCopies(v: CostVaultInput, now: Date, prices: PriceTable): FullCopyComparison[] {
  const standard = pricesFor(prices, v.region).storagePerGbMonth.STANDARD;
  return v.plans.map((plan) => {
    const newest = v.backups.filter((r) => r.plan === plan.name && r.status === 'Available').sort((a, b) => b.startedAt.localeCompare(a.startedAt))[0];
    const fullCopyBytes = newest?.sizeBytes ?? 0;
    const tiers = steadyStateTiers(plan.retention, now, { timeZone: plan.timeZone, ...(plan.schedule ? { schedule: plan.schedule } : {}) });
    const copies = tiers.reduce((n, t) => n + t.copies, 0);
    const cost = fullCopyCost(copies, fullCopyBytes, standard);
    return { plan: plan.name, ...(newest ? { newestBackup: newest.backupId } : {}), fullCopyBytes, copies, tiers, ruleSum: ruleSum(plan.retention), ...cost, pricePerGbMonth: standard };
  });
}

function projection(v: CostVaultInput, locations: readonly LocationCost[], requests: RequestEstimate | undefined, days: number, prices: PriceTable): Projection | undefined {
  if (!requests) return undefined;
  const { from, to } = requests.window;
  // The runs in the rates' window, as the backups after the oldest are: after its start, up to the newest's.
  const runs = (v.retentionRuns ?? []).filter((r) => r.now > from && r.now <= to);
  const freedBytesPerDay = sum(runs.map((r) => r.bytesFreed)) / requests.window.days;
  const netBytesPerDay = requests.uploadedBytesPerDay - freedBytesPerDay;
  const projected = locations.map((l) => {
    const standard = pricesFor(prices, l.region).storagePerGbMonth.STANDARD;
    // A replica only grows; the primary by its net churn, never below empty.
    const bytes = Math.max(0, l.bytes + (l.role === 'primary' ? netBytesPerDay : requests.uploadedBytesPerDay) * days);
    return { role: l.role, region: l.region, bytes, monthlyStorageUsd: Math.max(0, l.monthlyStorageUsd + ((bytes - l.bytes) / GIB) * standard) };
  });
  return {
    days,
    uploadedBytesPerDay: requests.uploadedBytesPerDay,
    freedBytesPerDay,
    retentionRuns: runs.length,
    netBytesPerDay,
    churn: runs.length ? 'net' : 'gross',
    locations: projected,
    monthlyStorageUsd: sum(projected.map((p) => p.monthlyStorageUsd)),
  };
}

/**
 * Builds the cost report of `input.vaults` at `input.now` (see the module's TSDoc for every
 * estimate). Throws a `UserError` when the price table has no prices for a vault's Region.
 */
export function costReport(input: CostInput): CostReport {
  // The CLI refuses a smaller --recent; silently taking 2 would report rates from backups not asked for.
  if (!Number.isInteger(input.recentBackups) || input.recentBackups < MIN_RECENT_BACKUPS) throw new RangeError(`recentBackups must be a whole number of at least ${MIN_RECENT_BACKUPS}, not ${input.recentBackups}`);
  const vaults = input.vaults.map((v): VaultCost => {
    const locations = v.inventories.map((inv) => locationCost(inv, input.prices));
    const recent = v.backups
      .filter((r) => r.status === 'Available')
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt))
      .slice(0, input.recentBackups);
    const requests = requestEstimate(v, recent, input.prices);
    const copies = fullCopies(v, input.now, input.prices);
    const storageMonthlyUsd = sum(locations.map((l) => l.monthlyStorageUsd));
    const proj = input.projectDays === undefined ? undefined : projection(v, locations, requests, input.projectDays, input.prices);
    return {
      vault: v.name,
      region: v.region,
      locations,
      unlisted: v.unlisted ?? [],
      ...(requests ? { requests } : {}),
      fullCopies: copies,
      fullCopiesMonthlyUsd: sum(copies.map((c) => c.monthlyUsd)),
      storageMonthlyUsd,
      monthlyUsd: storageMonthlyUsd + (requests ? requests.requestsMonthlyUsd + requests.transferMonthlyUsd : 0),
      ...(proj ? { projection: proj } : {}),
    };
  });
  return {
    generatedAt: input.now.toISOString(),
    prices: { source: input.prices.source, takenAt: input.prices.takenAt, currency: input.prices.currency },
    vaults,
    monthlyUsd: sum(vaults.map((v) => v.monthlyUsd)),
    fullCopiesMonthlyUsd: sum(vaults.map((v) => v.fullCopiesMonthlyUsd)),
    basis: BASIS,
  };
}

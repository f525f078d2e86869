/**
 * `dr status`: per plan and DR region, what a failover would restore now and the data it would
 * lose (the RPO it would achieve), from the replication entries the region's check records in
 * the catalog. Pure over the records: the CLI reads the catalog (in the DR region, the global
 * table's replica there), this decides.
 */
import type { BackupRecord } from '../catalog/record.js';
import type { Config } from '../config/schema.js';
import { backupPointInTime } from '../restore/prepare.js';

/** One plan in one DR region. */
export interface DrPlanStatus {
  readonly plan: string;
  readonly region: string;
  readonly vault: string;
  /** The newest backup complete in the region: what a failover started now restores. */
  readonly newestComplete: { readonly backupId: string; readonly pointInTime: string; readonly completeAt: string | undefined } | null;
  /** Seconds from that backup's point in time to `now`: the data a failover now would lose. */
  readonly rpoSeconds: number | null;
  /** Available backups newer than it still replicating (within the window), and late ones (past it). */
  readonly pending: readonly string[];
  readonly late: readonly string[];
  /** Available backups the region's check has not looked at yet. */
  readonly unchecked: readonly string[];
  /** When the region's check last recorded anything for the plan. */
  readonly lastCheckedAt: string | null;
}

/**
 * The status of every plan (or `plan`) whose vault replicates into a region (or `region`), at
 * `now`; `records` are the catalog's backups.
 */
export function drStatus(config: Config, records: readonly BackupRecord[], now: Date, filter: { plan?: string; region?: string } = {}): DrPlanStatus[] {
  const out: DrPlanStatus[] = [];
  for (const plan of config.plans) {
    if (filter.plan !== undefined && plan.name !== filter.plan) continue;
    const vault = config.vaults.find((v) => v.name === plan.vault)!;
    for (const region of vault.replicaRegions as readonly string[]) {
      if (filter.region !== undefined && region !== filter.region) continue;
      const available = records
        .filter((r) => r.plan === plan.name && r.vault === vault.name && r.status === 'Available')
        .sort((a, b) => Date.parse(backupPointInTime(b)) - Date.parse(backupPointInTime(a)));
      const newest = available.find((r) => r.replication?.[region]?.status === 'Complete');
      const newer = newest ? available.slice(0, available.indexOf(newest)) : available;
      const checked = available.flatMap((r) => (r.replication?.[region] ? [r.replication[region]!.checkedAt] : [])).sort();
      out.push({
        plan: plan.name,
        region,
        vault: vault.name,
        newestComplete: newest ? { backupId: newest.backupId, pointInTime: backupPointInTime(newest), completeAt: newest.replication![region]!.at } : null,
        rpoSeconds: newest ? Math.max(0, (now.getTime() - Date.parse(backupPointInTime(newest))) / 1000) : null,
        pending: newer.filter((r) => r.replication?.[region]?.status === 'Pending').map((r) => r.backupId),
        late: newer.filter((r) => r.replication?.[region]?.status === 'Late').map((r) => r.backupId),
        unchecked: newer.filter((r) => !r.replication?.[region]).map((r) => r.backupId),
        lastCheckedAt: checked.at(-1) ?? null,
      });
    }
  }
  return out;
}

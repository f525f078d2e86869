/**
 * `milvus-guard status`: per plan, everything an operator asks first — the newest Available
 * backup and its age against the RPO (core/monitoring/rpo.ts), the next scheduled run, the last
 * failure, what the plan's backups hold in the vault, whether the newest backup has replicated
 * into each DR region, and the last drill. Pure over catalog records: the CLI reads the catalog
 * (DynamoDB or the local one) and the config, this decides.
 */
import type { BackupRecord, RestoreRecord } from '../catalog/record.js';
import { resolvePlan } from '../config/resolve.js';
import type { Config } from '../config/schema.js';
import { checkRpo, nextScheduledRun, rpoMet, type RpoCheck } from './rpo.js';

/** One plan's status at one instant. */
export interface PlanStatus extends RpoCheck {
  readonly cluster: string;
  readonly namespace: string;
  /** Whether the plan meets its RPO (true also when it has none: nothing to miss). */
  readonly met: boolean;
  /** The schedule's next run after `now` (ISO 8601, UTC); null for an on-demand plan. */
  readonly nextRun: string | null;
  /** The newest Failed backup of the plan. */
  readonly lastFailure: { readonly backupId: string; readonly at: string; readonly step?: string; readonly error: string } | null;
  /**
   * The sum of `bytesUploaded` over the plan's Available backups: what they added to the vault
   * (incremental, so the first full upload plus each one's changes). An estimate from the catalog:
   * packs an expired backup uploaded and kept backups still reference are not counted, and the
   * bucket's own size (the capacity alarm's metric) includes every plan and uncollected garbage.
   */
  readonly vaultBytes: number;
  /**
   * Per DR region of the plan's vault, the newest Available backup's replication there, as that
   * region's check last recorded it (`Unchecked`: not yet); empty without an Available backup.
   */
  readonly dr: readonly { readonly region: string; readonly status: 'Complete' | 'Pending' | 'Late' | 'Unchecked' }[];
  /**
   * The newest drill of the plan, from the catalog's restore record of it (a restore with a
   * `drillId`): `Passed` when that restore completed (validated), `Failed`, or `Running`. The
   * drill's evidence report in the vault is the full account (cleanup included).
   */
  readonly lastDrill: { readonly drillId: string; readonly at: string; readonly result: 'Passed' | 'Failed' | 'Running'; readonly rtoSeconds?: number } | null;
}

/**
 * The status of every plan of `config` (or only `plan`) at `now`, from the catalog's `backups`
 * (with `replication` filled in: core/dr/replication.ts `withReplication`) and `restores`.
 * Throws `UnknownNameError` for a plan the config does not define.
 */
export function planStatuses(config: Config, backups: readonly BackupRecord[], restores: readonly RestoreRecord[], now: Date, plan?: string): PlanStatus[] {
  const names = plan === undefined ? config.plans.map((p) => p.name) : [plan];
  return names.map((name) => {
    const resolved = resolvePlan(config, name);
    const check = checkRpo(resolved, backups, now);
    const own = backups.filter((b) => b.plan === name);
    const failed = own.filter((b) => b.status === 'Failed').sort((a, b) => b.startedAt.localeCompare(a.startedAt))[0];
    const newest = check.lastAvailable ? own.find((b) => b.backupId === check.lastAvailable!.backupId) : undefined;
    const drill = restores.filter((r) => r.plan === name && r.drillId !== undefined).sort((a, b) => b.requestedAt.localeCompare(a.requestedAt))[0];
    const next = resolved.schedule ? nextScheduledRun(resolved.schedule, now) : undefined;
    return {
      ...check,
      cluster: resolved.cluster.name,
      namespace: resolved.plan.namespace,
      met: rpoMet(check),
      nextRun: next ? next.toISOString() : null,
      lastFailure: failed
        ? { backupId: failed.backupId, at: failed.completedAt ?? failed.startedAt, ...(failed.failure ? { step: failed.failure.step } : {}), error: failed.failure?.error ?? 'Failed' }
        : null,
      vaultBytes: own.filter((b) => b.status === 'Available').reduce((n, b) => n + (b.bytesUploaded ?? 0), 0),
      dr: (newest ? (resolved.vault.replicaRegions as readonly string[]) : []).map((region) => ({ region, status: newest?.replication?.[region]?.status ?? 'Unchecked' })),
      lastDrill: drill
        ? {
            drillId: drill.drillId!,
            at: drill.completedAt ?? drill.requestedAt,
            result: drill.status === 'Completed' ? 'Passed' : drill.status === 'Failed' ? 'Failed' : 'Running',
            ...(drill.rtoSeconds !== undefined ? { rtoSeconds: drill.rtoSeconds } : {}),
          }
        : null,
    };
  });
}

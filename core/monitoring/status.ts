/**
 * `milvus-guard status`: per plan, everything an operator asks first — the newest Available
 * backup and its age against the RPO (core/monitoring/rpo.ts, the function the RPO check uses,
 * with the same first-seen markers), the next scheduled run, the last failure, the size of the
 * plan's vault, whether the newest backup has replicated into each DR region, the last drill, and
 * each of the plan's configured drills against its period (`checkDrill`, as the drill-overdue
 * alarm judges it, with the same first-seen markers). Pure over its inputs: the CLI reads the catalog (DynamoDB or the local one), the vaults' sizes
 * and the config, this decides.
 */
import type { BackupRecord, RestoreRecord } from '../catalog/record.js';
import { resolveDrill, resolvePlan } from '../config/resolve.js';
import type { Config } from '../config/schema.js';
import { checkDrill, checkRpo, nextScheduledRun, rpoMet, type DrillCheck, type RpoCheck } from './rpo.js';

/**
 * A vault's size as measured: its bytes and when (on AWS the day of S3's latest daily
 * `BucketSizeBytes`, summed over its storage types; locally the instant the vault was listed),
 * or why it is not known (no datapoint yet: a vault S3 has not reported on; no permission).
 */
export type VaultSize = { readonly bytes: number; readonly at: string } | { readonly bytes: null; readonly reason: string };

/** What `status` is computed from. */
export interface StatusInputs {
  /** The catalog's backups (with `replication` filled in: core/dr/replication.ts `withReplication`). */
  readonly backups: readonly BackupRecord[];
  readonly restores: readonly RestoreRecord[];
  /** Each plan's first-seen instant (core/catalog/first-seen.ts), by plan. */
  readonly firstSeen: ReadonlyMap<string, string>;
  /** Each drill's first-seen instant (core/catalog/first-seen.ts), by drill; none: no drill was seen. */
  readonly drillFirstSeen?: ReadonlyMap<string, string>;
  /** Each vault's size, by vault name (a vault absent: not measured). */
  readonly vaultSizes: ReadonlyMap<string, VaultSize>;
}

/** One plan's status at one instant. */
export interface PlanStatus extends RpoCheck {
  readonly cluster: string;
  readonly namespace: string;
  /**
   * Whether the plan meets its RPO (core/monitoring/rpo.ts `rpoMet`): false when it misses it
   * (`state` `violated`), as its alarm would fire, and when it cannot be judged because the RPO
   * check never saw it and it has no backup record (`unknown`: it may have been unprotected for
   * any length of time). True with no RPO (nothing to miss) and for a plan with no Available
   * backup yet that has not been protected for as long as its RPO (`no-backup`: not late yet).
   */
  readonly met: boolean;
  /** The schedule's next run after `now` (ISO 8601, UTC); null for an on-demand plan. */
  readonly nextRun: string | null;
  /** The newest Failed backup of the plan. */
  readonly lastFailure: { readonly backupId: string; readonly at: string; readonly step?: string; readonly error: string } | null;
  /** The plan's vault (its name in the config). */
  readonly vault: string;
  /**
   * The vault's size in bytes: the whole vault (every plan that shares it, every storage class,
   * on S3 every object version), as S3 last reported it — `BucketSizeBytes` is daily, so up to a
   * day or two old (see `vaultBytesAt`); locally the vault directory's objects now. Null when not
   * known (`vaultBytesUnknown` says why).
   */
  readonly vaultBytes: number | null;
  /** When `vaultBytes` was measured (ISO 8601): S3's daily datapoint, or the local listing. */
  readonly vaultBytesAt: string | null;
  /** Why `vaultBytes` is null; absent when it is known. */
  readonly vaultBytesUnknown?: string;
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
  /**
   * Each configured drill of the plan against its period, as its `<name>-drill-overdue-<drill>`
   * alarm judges it (the RPO check's `checkDrill`): `overdue` when it has not passed within its
   * period, a drill never attempted counting from when the RPO check first saw it. Empty for a
   * plan without drills. It does not change the exit code, which is the RPO's.
   */
  readonly drills: readonly DrillCheck[];
}

/**
 * The status of every plan of `config` (or only `plan`) at `now`, from `inputs`. Throws
 * `UnknownNameError` for a plan the config does not define.
 */
export function planStatuses(config: Config, inputs: StatusInputs, now: Date, plan?: string): PlanStatus[] {
  const { backups, restores } = inputs;
  const names = plan === undefined ? config.plans.map((p) => p.name) : [plan];
  return names.map((name) => {
    const resolved = resolvePlan(config, name);
    const check = checkRpo(resolved, backups, now, inputs.firstSeen.get(name));
    const own = backups.filter((b) => b.plan === name);
    const failed = own.filter((b) => b.status === 'Failed').sort((a, b) => b.startedAt.localeCompare(a.startedAt))[0];
    const newest = check.lastAvailable ? own.find((b) => b.backupId === check.lastAvailable!.backupId) : undefined;
    const drill = restores.filter((r) => r.plan === name && r.drillId !== undefined).sort((a, b) => b.requestedAt.localeCompare(a.requestedAt))[0];
    const next = resolved.schedule ? nextScheduledRun(resolved.schedule, now) : undefined;
    const size = inputs.vaultSizes.get(resolved.vault.name) ?? { bytes: null, reason: 'not measured' };
    const drills = config.drills.filter((d) => d.plan === name).map((d) => checkDrill(resolveDrill(config, d.name), restores, now, inputs.drillFirstSeen?.get(d.name)));
    return {
      ...check,
      cluster: resolved.cluster.name,
      namespace: resolved.plan.namespace,
      met: rpoMet(check),
      nextRun: next ? next.toISOString() : null,
      lastFailure: failed
        ? { backupId: failed.backupId, at: failed.completedAt ?? failed.startedAt, ...(failed.failure ? { step: failed.failure.step } : {}), error: failed.failure?.error ?? 'Failed' }
        : null,
      vault: resolved.vault.name,
      vaultBytes: size.bytes,
      vaultBytesAt: size.bytes === null ? null : size.at,
      ...(size.bytes === null ? { vaultBytesUnknown: size.reason } : {}),
      dr: (newest ? (resolved.vault.replicaRegions as readonly string[]) : []).map((region) => ({ region, status: newest?.replication?.[region]?.status ?? 'Unchecked' })),
      lastDrill: drill
        ? {
            drillId: drill.drillId!,
            at: drill.completedAt ?? drill.requestedAt,
            result: drill.status === 'Completed' ? 'Passed' : drill.status === 'Failed' ? 'Failed' : 'Running',
            ...(drill.rtoSeconds !== undefined ? { rtoSeconds: drill.rtoSeconds } : {}),
          }
        : null,
      drills,
    };
  });
}

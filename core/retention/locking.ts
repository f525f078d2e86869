/**
 * Object Lock dates at backup time. A backup's objects are locked until the earliest date its
 * `latest` rule could expire it ({@link initialRetainUntil}), never below the vault's floor (its
 * default retention): an explicit retain-until on S3 replaces the bucket default, so a date
 * below the floor would weaken the vault's own rule. Retention later extends the date when a
 * rule keeps the backup longer; nothing shortens it.
 */
import type { BackupRecord } from '../catalog/record.js';
import type { ResolvedPlan } from '../config/resolve.js';
import type { VaultStore } from '../vault/store.js';
import { initialRetainUntil, type RetentionCandidate } from './calculator.js';

const DAY_MS = 86_400_000;

/** The record fields the calculator reads; Expired backups are gone and take no part. */
export function retentionCandidates(records: readonly BackupRecord[]): RetentionCandidate[] {
  return records.flatMap((r) => (r.status === 'Expired' ? [] : [{ backupId: r.backupId, startedAt: r.startedAt, status: r.status, ...(r.hold ? { hold: true } : {}) }]));
}

/** The plan's calculator options: its schedule's time zone (UTC for on-demand plans) and cron. */
export function retentionOptions(plan: ResolvedPlan): { timeZone: string; schedule?: { cron: readonly string[]; timeZone: string } } {
  const timeZone = plan.schedule?.timeZone ?? 'UTC';
  return plan.schedule ? { timeZone, schedule: { cron: plan.schedule.cron, timeZone } } : { timeZone };
}

/** The vault's floor for a lock that starts at `from`: its default retention. */
export function lockFloor(plan: ResolvedPlan, from: Date): Date {
  return new Date(from.getTime() + plan.vault.objectLock.defaultRetentionDays * DAY_MS);
}

/** The later of two dates. */
export const later = (a: Date, b: Date): Date => (a.getTime() >= b.getTime() ? a : b);

/**
 * The retain-until of a backup being started: the calculator's date for it among the plan's
 * existing backups, raised to the vault's floor.
 */
export function backupRetainUntil(plan: ResolvedPlan, existing: readonly BackupRecord[], backup: { backupId: string; startedAt: string }): Date {
  // A retried Prepare finds its own record: it is the new backup, not an existing one.
  const others = existing.filter((r) => r.backupId !== backup.backupId);
  // Only `latest` counts here. A backup may yet fail, and a failed first backup of a year would
  // otherwise lock what it wrote for as long as `yearly` keeps a year's backup (in COMPLIANCE
  // mode, for everyone); the promotion to weekly, monthly or yearly is retention's, which runs
  // daily and extends the lock of a kept backup long before the floor below has passed.
  const latestOnly = { ...plan.retention, weekly: 0, monthly: 0, yearly: 0 };
  const computed = initialRetainUntil(retentionCandidates(others), backup, latestOnly, retentionOptions(plan));
  return later(computed, lockFloor(plan, new Date(backup.startedAt)));
}

/**
 * The vault with every write locked until `retainUntil` (unless the write names its own date),
 * so every object a backup's steps write gets the backup's lock without each step passing it.
 * Keys for which `rewritten` is true are written unlocked: a step rewrites them while the
 * backup runs (the flush progress in `milvus.json`, the hook runs), which a locked object on a
 * vault without versions would refuse; Finalize locks them once they are final.
 */
export function lockingWrites(vault: VaultStore, retainUntil: Date, rewritten: (key: string) => boolean = () => false): VaultStore {
  const lock = (key: string, options?: { retainUntil?: Date }) => (rewritten(key) ? { ...options } : { retainUntil, ...options });
  return new Proxy(vault, {
    get(target, property) {
      if (property === 'put') return (key: string, body: Uint8Array, options?: { retainUntil?: Date }) => target.put(key, body, lock(key, options));
      if (property === 'putFile') return (key: string, path: string, options?: { retainUntil?: Date }) => target.putFile(key, path, lock(key, options));
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

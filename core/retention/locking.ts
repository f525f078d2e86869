/**
 * Object Lock dates. A backup's objects are locked until the earliest date its `latest` rule
 * could expire it ({@link initialRetainUntil}), never below the vault's floor (its default
 * retention): an explicit retain-until on S3 replaces the bucket default, so a date below the
 * floor would weaken the vault's own rule. Retention later extends the date when a rule keeps
 * the backup longer ({@link keptLockDate}); nothing shortens it.
 */
import type { BackupRecord } from '../catalog/record.js';
import type { ResolvedPlan } from '../config/resolve.js';
import type { VaultStore } from '../vault/store.js';
import { initialRetainUntil, keptUntilFurtherNotice, type KeepDecision, type RetentionCandidate } from './calculator.js';
import { DAY_MS } from './calendar.js';

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

/**
 * A backup kept until further notice has its lock renewed once it ends within this many days
 * (the daily retention run can fail twice in a row without the lock lapsing), to twice that
 * from the run.
 */
const RENEW_WITHIN_DAYS = 3;

/**
 * A kept backup's lock date: the rules' date, never below the vault's floor, never shorter than
 * it is.
 *
 * A rule without an end date (the newest available backup, `latest` of a plan without a
 * schedule, a running restore) dates its keep at `now`, and a lock that ends now protects
 * nothing: when a plan's backups stop (its cluster is gone), the newest backup, the one a
 * failover restores, would stay unlocked once its first lock passed. Such a backup's lock is
 * renewed once it ends within `RENEW_WITHIN_DAYS`, to twice that from the run: every few days,
 * not at every run (which would extend every object of a long-kept backup daily), and short, so
 * a backup that stops being kept (a newer one arrives, the restore ends) is not held for long
 * after, even in COMPLIANCE mode.
 */
export function keptLockDate(plan: ResolvedPlan, record: BackupRecord, k: Pick<KeepDecision, 'rules' | 'retainUntil'>, now: Date): Date {
  const ruled = later(new Date(k.retainUntil), lockFloor(plan, new Date(record.startedAt)));
  const held = record.retainUntil ? later(ruled, new Date(record.retainUntil)) : ruled;
  if (!keptUntilFurtherNotice(k, now) || held.getTime() - now.getTime() >= RENEW_WITHIN_DAYS * DAY_MS) return held;
  return new Date(now.getTime() + 2 * RENEW_WITHIN_DAYS * DAY_MS);
}

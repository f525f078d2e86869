/**
 * The recovery point objective of a plan, and whether it is met now. One model for the three
 * places that need it: the scheduled RPO check (lambdas/monitoring), the per-plan alarm's
 * threshold (infra/constructs/rpo-check.ts, at synth) and `milvus-guard status`.
 *
 * A plan's RPO is its `rpo` when the config sets one; otherwise the longest gap between two
 * consecutive scheduled runs of its schedule (over {@link RPO_WINDOW_DAYS} days from `now`, in the
 * schedule's time zone, so daylight-saving days count) plus the plan's typical backup duration
 * (the median of its newest Available backups' `durationSeconds`, {@link DEFAULT_BACKUP_SECONDS}
 * when it has none): a backup that starts on time and takes as long as usual completes within it.
 * A plan that runs only on demand and sets no `rpo` has no RPO.
 *
 * The age is measured from the newest Available backup's `completedAt`, as the RPO's default
 * (gap plus duration) is: from one completion to the next.
 */
import { CronExpressionParser } from 'cron-parser';
import type { BackupRecord } from '../catalog/record.js';
import type { ResolvedPlan } from '../config/resolve.js';
import type { ScheduleBody } from '../config/schema.js';

/** How far ahead the schedule is looked at for its longest gap: eight weeks. */
export const RPO_WINDOW_DAYS = 56;
/**
 * At most this many runs of one cron expression are looked at: a schedule every few minutes has
 * tens of thousands in eight weeks (cron-parser takes about 0.15 ms a run); its gaps are seen
 * in its first few thousand.
 */
export const MAX_RUNS_PER_CRON = 3000;
/** The typical backup duration of a plan with no Available backup that has one. */
export const DEFAULT_BACKUP_SECONDS = 3600;
/** The typical duration is the median of this many newest Available backups. */
export const DURATION_SAMPLE = 10;

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** `26h` → 93600: a config Duration (`30s`, `15m`, `24h`, `7d`) in seconds. */
export function durationSeconds(duration: string): number {
  const match = /^([1-9]\d*)(s|m|h|d)$/.exec(duration);
  if (!match) throw new Error(`"${duration}" is not a duration such as 30s, 15m, 24h or 7d`);
  return Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS];
}

/** The first run of `schedule` strictly after `after` (any of its cron expressions), in its time zone. */
export function nextScheduledRun(schedule: ScheduleBody, after: Date): Date | undefined {
  const runs = schedule.cron.flatMap((cron) => {
    try {
      return [CronExpressionParser.parse(cron, { currentDate: after, tz: schedule.timeZone }).next().getTime()];
    } catch {
      // An expression that never runs again (31 February): it adds no run.
      return [];
    }
  });
  return runs.length ? new Date(Math.min(...runs)) : undefined;
}

/** Runs of one expression: the last before `from`, those from `from` up to `until` (at most the cap), and the first after. */
function runsOf(cron: string, timeZone: string, from: Date, until: Date): number[] {
  const runs: number[] = [];
  try {
    runs.push(CronExpressionParser.parse(cron, { currentDate: from, tz: timeZone }).prev().getTime());
  } catch {
    // No earlier run: the window starts at its first.
  }
  try {
    // cron-parser's next() is strictly after its date: a run at `from` itself counts.
    const it = CronExpressionParser.parse(cron, { currentDate: new Date(from.getTime() - 1), tz: timeZone });
    for (let i = 0; i < MAX_RUNS_PER_CRON; i++) {
      const run = it.next().getTime();
      runs.push(run);
      // The first run past the window closes its last gap.
      if (run > until.getTime()) break;
    }
  } catch {
    // No further run.
  }
  return runs;
}

/**
 * The longest time between two consecutive runs of `schedule` (all its cron expressions
 * together), in seconds, over {@link RPO_WINDOW_DAYS} days from `from` in the schedule's time
 * zone; the gap into the window (from the run before it) and out of it count too. Undefined when
 * the schedule has fewer than two runs.
 */
export function longestScheduledGapSeconds(schedule: ScheduleBody, from: Date): number | undefined {
  const until = new Date(from.getTime() + RPO_WINDOW_DAYS * 86_400_000);
  const runs = [...new Set(schedule.cron.flatMap((cron) => runsOf(cron, schedule.timeZone, from, until)))].sort((a, b) => a - b);
  let longest: number | undefined;
  for (let i = 1; i < runs.length; i++) longest = Math.max(longest ?? 0, (runs[i]! - runs[i - 1]!) / 1000);
  return longest;
}

/** Backups of the plan that count: Available ones, newest completion first. */
function availableNewestFirst(backups: readonly BackupRecord[], plan: string): BackupRecord[] {
  return backups.filter((b) => b.plan === plan && b.status === 'Available').sort((a, b) => completedAt(b).localeCompare(completedAt(a)));
}

const completedAt = (b: BackupRecord): string => b.completedAt ?? b.startedAt;

/** A plan's typical backup duration: the median of its newest Available backups' durations. */
export interface TypicalDuration {
  readonly seconds: number;
  /** How many backups the median is of; 0: {@link DEFAULT_BACKUP_SECONDS}. */
  readonly sampled: number;
}

/**
 * The median `durationSeconds` of the {@link DURATION_SAMPLE} newest Available backups of
 * `plan` in `backups` that record one; {@link DEFAULT_BACKUP_SECONDS} when none does.
 */
export function typicalBackupDuration(backups: readonly BackupRecord[], plan: string): TypicalDuration {
  const durations = availableNewestFirst(backups, plan)
    .flatMap((b) => (b.durationSeconds === undefined ? [] : [b.durationSeconds]))
    .slice(0, DURATION_SAMPLE)
    .sort((a, b) => a - b);
  if (durations.length === 0) return { seconds: DEFAULT_BACKUP_SECONDS, sampled: 0 };
  const mid = Math.floor(durations.length / 2);
  const median = durations.length % 2 ? durations[mid]! : (durations[mid - 1]! + durations[mid]!) / 2;
  return { seconds: median, sampled: durations.length };
}

/** A plan's RPO and where it comes from. */
export type PlanRpo =
  | { readonly seconds: number; readonly source: 'config'; readonly rpo: string }
  | { readonly seconds: number; readonly source: 'schedule'; readonly gapSeconds: number; readonly typicalBackup: TypicalDuration }
  | { readonly seconds: null; readonly source: 'none'; readonly reason: string };

/**
 * The RPO of `plan` (see the module documentation): its `rpo`, else its schedule's longest gap
 * over the window from `now` plus its typical backup duration from `backups` (pass none at synth:
 * the default duration), else none, with the reason.
 */
export function planRpo(plan: ResolvedPlan, backups: readonly BackupRecord[], now: Date): PlanRpo {
  if (plan.plan.rpo !== undefined) return { seconds: durationSeconds(plan.plan.rpo), source: 'config', rpo: plan.plan.rpo };
  if (plan.schedule === undefined) {
    return { seconds: null, source: 'none', reason: `plan ${plan.plan.name} runs on demand only and sets no rpo: there is nothing to measure its backups' age against (set plans[].rpo to have one)` };
  }
  const gapSeconds = longestScheduledGapSeconds(plan.schedule, now);
  if (gapSeconds === undefined) {
    return { seconds: null, source: 'none', reason: `the schedule of plan ${plan.plan.name} (${plan.schedule.cron.join(', ')}) runs fewer than twice from now on and the plan sets no rpo (set plans[].rpo to have one)` };
  }
  const typicalBackup = typicalBackupDuration(backups, plan.plan.name);
  return { seconds: gapSeconds + typicalBackup.seconds, source: 'schedule', gapSeconds, typicalBackup };
}

/**
 * How the plan stands against its RPO: `met`, `violated` (the newest Available backup is older
 * than the RPO), `no-backup` (the plan has an RPO and no Available backup yet: it is not
 * protected) or `no-rpo` (nothing to measure against).
 */
export type RpoState = 'met' | 'violated' | 'no-backup' | 'no-rpo';

/** A plan's RPO check at one instant. */
export interface RpoCheck {
  readonly plan: string;
  readonly rpo: PlanRpo;
  /** The newest Available backup, if any. */
  readonly lastAvailable: { readonly backupId: string; readonly completedAt: string } | null;
  /**
   * Seconds since the newest Available backup completed. Without one: since the plan's first
   * backup attempt (its oldest record), so a plan whose every backup fails still ages past its
   * RPO; null when the plan was never attempted.
   */
  readonly ageSeconds: number | null;
  /** What `ageSeconds` counts from. */
  readonly ageFrom: 'last-available' | 'first-attempt' | null;
  readonly state: RpoState;
}

/**
 * Checks `plan` against its RPO at `now` over the catalog's `backups` (any plans': the plan's
 * are picked). Pure: the RPO check Lambda and `status` read the catalog and call this.
 */
export function checkRpo(plan: ResolvedPlan, backups: readonly BackupRecord[], now: Date): RpoCheck {
  const name = plan.plan.name;
  const rpo = planRpo(plan, backups, now);
  const last = availableNewestFirst(backups, name)[0];
  const since = (iso: string) => Math.max(0, (now.getTime() - Date.parse(iso)) / 1000);
  const firstAttempt = backups.filter((b) => b.plan === name).map((b) => b.startedAt).sort()[0];
  const ageSeconds = last ? since(completedAt(last)) : firstAttempt !== undefined ? since(firstAttempt) : null;
  const state: RpoState = rpo.seconds === null ? 'no-rpo' : ageSeconds !== null && ageSeconds > rpo.seconds ? 'violated' : last ? 'met' : 'no-backup';
  return {
    plan: name,
    rpo,
    lastAvailable: last ? { backupId: last.backupId, completedAt: completedAt(last) } : null,
    ageSeconds,
    ageFrom: last ? 'last-available' : firstAttempt !== undefined ? 'first-attempt' : null,
    state,
  };
}

/** Whether a check counts as protected: `met`, or nothing to measure against. */
export const rpoMet = (check: Pick<RpoCheck, 'state'>): boolean => check.state === 'met' || check.state === 'no-rpo';

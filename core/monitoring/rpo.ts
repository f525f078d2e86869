/**
 * The recovery point objective of a plan, and whether it is met now. One model for the three
 * places that need it: the scheduled RPO check (lambdas/monitoring), whose published age and RPO
 * the per-plan alarm compares (infra/constructs/rpo-check.ts, which also names the RPO in the
 * alarm's description at synth), and `milvus-guard status`.
 *
 * A plan's RPO is its `rpo` when the config sets one; otherwise the longest gap between two
 * consecutive scheduled runs of its schedule (over {@link RPO_WINDOW_DAYS} days from `now`, in the
 * schedule's time zone, so daylight-saving days count) plus the plan's typical backup duration
 * (the median of its newest Available backups' `durationSeconds`, {@link DEFAULT_BACKUP_SECONDS}
 * when it has none): a backup that starts on time and takes as long as usual completes within it.
 * A plan that runs only on demand and sets no `rpo` has no RPO.
 *
 * The age is measured from the newest Available backup's `completedAt`, as the RPO's default
 * (gap plus duration) is: from one completion to the next. A plan without an Available backup
 * ages from when it was first protected: the earlier of its oldest backup record (any status:
 * every attempt failed) and the instant the RPO check first saw it in the deployed config (its
 * first-seen marker, core/catalog/first-seen.ts: its schedule never fired, or no attempt got as
 * far as a record). So a plan that never had a backup misses its RPO once it has been protected
 * for longer than the RPO, and its alarm fires like any other's.
 *
 * A configured drill is checked the same way ({@link checkDrill}): the age of its newest passed
 * run against its period, the schedule's longest gap plus a day to run; a drill that never
 * passed ages from its first attempt or from when the RPO check first saw it, whichever is
 * earlier, so a drill never attempted goes overdue once it has been configured for a period.
 */
import { CronExpressionParser } from 'cron-parser';
import type { BackupRecord, RestoreRecord } from '../catalog/record.js';
import type { ResolvedDrill, ResolvedPlan } from '../config/resolve.js';
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
 * How the plan stands against its RPO: `met` (its newest Available backup is within it),
 * `violated` (the newest Available backup is older than the RPO or, without one, the plan has
 * been protected for longer than the RPO), `no-backup` (no Available backup yet, and not yet
 * protected for as long as the RPO: it is not late yet), `unknown` (no backup record at all and
 * no first-seen marker: the RPO check has never seen the plan — not deployed with this config,
 * deployed minutes ago, or the check is not running — so nothing says since when it should have
 * been protected) or `no-rpo` (nothing to measure against).
 */
export type RpoState = 'met' | 'violated' | 'no-backup' | 'unknown' | 'no-rpo';

/** What a plan's age counts from (see {@link RpoCheck.ageSeconds}). */
export type AgeFrom = 'last-available' | 'first-attempt' | 'first-seen';

/** A plan's RPO check at one instant. */
export interface RpoCheck {
  readonly plan: string;
  readonly rpo: PlanRpo;
  /** The newest Available backup, if any. */
  readonly lastAvailable: { readonly backupId: string; readonly completedAt: string } | null;
  /**
   * Seconds since the newest Available backup completed. Without one: since the plan was first
   * protected, the earlier of its first backup attempt (its oldest record) and its first-seen
   * marker, so a plan whose every backup fails, or that never ran at all, still ages past its
   * RPO; null when neither is known (the RPO check has not seen the plan yet: state `unknown`).
   */
  readonly ageSeconds: number | null;
  /** What `ageSeconds` counts from. */
  readonly ageFrom: AgeFrom | null;
  /** The instant `ageSeconds` counts from (ISO 8601). */
  readonly ageSince: string | null;
  readonly state: RpoState;
}

/**
 * Checks `plan` against its RPO at `now` over the catalog's `backups` (any plans': the plan's
 * are picked) and the instant the RPO check first saw the plan (`firstSeen`, ISO 8601; a marker
 * after `now`, written on a later clock, did not exist yet then and is ignored). Pure: the RPO
 * check Lambda and `status` read the catalog and call this.
 */
export function checkRpo(plan: ResolvedPlan, backups: readonly BackupRecord[], now: Date, firstSeen?: string): RpoCheck {
  const name = plan.plan.name;
  const rpo = planRpo(plan, backups, now);
  const last = availableNewestFirst(backups, name)[0];
  const since = (iso: string) => Math.max(0, (now.getTime() - Date.parse(iso)) / 1000);
  const origin = last ? { from: 'last-available' as const, at: completedAt(last) } : firstProtected(backups, name, now, firstSeen);
  const ageSeconds = origin ? since(origin.at) : null;
  const state: RpoState = rpo.seconds === null ? 'no-rpo' : ageSeconds === null ? 'unknown' : ageSeconds > rpo.seconds ? 'violated' : last ? 'met' : 'no-backup';
  return {
    plan: name,
    rpo,
    lastAvailable: last ? { backupId: last.backupId, completedAt: completedAt(last) } : null,
    ageSeconds,
    ageFrom: origin?.from ?? null,
    ageSince: origin?.at ?? null,
    state,
  };
}

/** When the plan was first protected, as of `now`: its oldest backup attempt or its first-seen marker, whichever is earlier. */
function firstProtected(backups: readonly BackupRecord[], plan: string, now: Date, firstSeen: string | undefined): { from: AgeFrom; at: string } | undefined {
  return earlierOrigin(backups.filter((b) => b.plan === plan).map((b) => b.startedAt).sort()[0], firstSeen, now);
}

/**
 * The earlier of a first attempt and a first-seen marker (ISO 8601), as of `now`: a marker after
 * `now` did not exist yet then. A plan's and a drill's clock without a success start alike.
 */
function earlierOrigin(firstAttempt: string | undefined, firstSeen: string | undefined, now: Date): { from: 'first-attempt' | 'first-seen'; at: string } | undefined {
  const seen = firstSeen !== undefined && Date.parse(firstSeen) <= now.getTime() ? firstSeen : undefined;
  if (seen !== undefined && (firstAttempt === undefined || Date.parse(seen) < Date.parse(firstAttempt))) return { from: 'first-seen', at: seen };
  return firstAttempt === undefined ? undefined : { from: 'first-attempt', at: firstAttempt };
}

/**
 * Whether a check counts as protected, the exit code of `status`: `met`, `no-rpo` (nothing to
 * miss) and `no-backup` (not late until it has been protected for as long as its RPO, as its
 * alarm stays quiet until then). Not `violated`, and not `unknown`: a plan the RPO check never saw
 * may have been unprotected for any length of time, and a health check must not pass on it (its
 * alarm has no data either; the `-rpo-check-stopped` alarm is the one that speaks then).
 */
export const rpoMet = (check: Pick<RpoCheck, 'state'>): boolean => check.state !== 'violated' && check.state !== 'unknown';

// ---- drills ---------------------------------------------------------------------------------

/** How long a drill may run past its scheduled start before its absence is overdue: a day. */
export const DRILL_RUN_SECONDS = 86_400;

/**
 * A drill's period in seconds: the longest gap between two runs of its schedule over
 * {@link RPO_WINDOW_DAYS} days from `from` (the same {@link longestScheduledGapSeconds} the RPO
 * uses) plus {@link DRILL_RUN_SECONDS} for the drill to run. Undefined when the schedule runs
 * fewer than twice: nothing to be overdue against. The RPO check publishes it and the drill's
 * overdue alarm (infra/constructs/rpo-check.ts) takes it as its threshold at synth.
 */
export function drillPeriodSeconds(schedule: ScheduleBody, from: Date): number | undefined {
  const gap = longestScheduledGapSeconds(schedule, from);
  return gap === undefined ? undefined : gap + DRILL_RUN_SECONDS;
}

/**
 * Whether `restoreId` is a drill id that `defaultDrillId(drill, …)` (core/drill/workflow.ts)
 * makes: the drill's name (cut to fit 80 characters) and `-drill-<yyyymmddhhmmss>`. The catalog's
 * restore record keeps the drill id, not the drill's name, so this is how a run is told apart
 * from another drill's of the same plan. A drill started for the plan from the console whose
 * plan has the drill's name is counted as the drill's too: it restored the same plan.
 */
export function isRunOfDrill(drill: string, drillId: string): boolean {
  const prefix = `${drill.slice(0, 80 - '-drill-yyyymmddhhmmss'.length).replace(/-+$/, '')}-drill-`;
  return drillId.startsWith(prefix) && /^\d{14}$/.test(drillId.slice(prefix.length));
}

/**
 * A drill run passed when its restore record is `Completed`: the restore validated (the rule
 * `milvus-guard status` shows as LAST DRILL, core/monitoring/status.ts). The evidence report
 * also requires cleanup; a drill whose cleanup failed has its own failure alarm.
 */
export const drillRunPassed = (restore: Pick<RestoreRecord, 'status'>): boolean => restore.status === 'Completed';

/** What a drill's age counts from (see {@link DrillCheck.ageSeconds}). */
export type DrillAgeFrom = 'last-passed' | 'first-attempt' | 'first-seen';

/** A drill's check at one instant. */
export interface DrillCheck {
  readonly drill: string;
  readonly plan: string;
  /** See {@link drillPeriodSeconds}; null when the schedule runs fewer than twice. */
  readonly periodSeconds: number | null;
  /** The newest run that passed, if any. */
  readonly lastPassed: { readonly drillId: string; readonly completedAt: string } | null;
  /**
   * Seconds since the newest passed run completed. Without one: since the drill was first
   * configured, the earlier of its oldest attempt and its first-seen marker (the RPO check's
   * first sight of it, core/catalog/first-seen.ts), so a drill that always fails, and one whose
   * schedule never started it, both go overdue; null when neither is known (the check has not
   * seen the drill yet).
   */
  readonly ageSeconds: number | null;
  readonly ageFrom: DrillAgeFrom | null;
  /** The instant `ageSeconds` counts from (ISO 8601). */
  readonly ageSince: string | null;
  readonly overdue: boolean;
}

/**
 * Checks drill `resolved` at `now` over the catalog's `restores` (any: the drill's runs are
 * picked by plan and drill id) and the instant the RPO check first saw the drill (`firstSeen`,
 * ISO 8601; one after `now`, written on a later clock, is ignored). Pure: the RPO check Lambda
 * reads the catalog and calls this.
 */
export function checkDrill(resolved: ResolvedDrill, restores: readonly RestoreRecord[], now: Date, firstSeen?: string): DrillCheck {
  const drill = resolved.drill.name;
  const plan = resolved.plan.plan.name;
  const runs = restores.filter((r) => r.plan === plan && r.drillId !== undefined && isRunOfDrill(drill, r.drillId));
  const doneAt = (r: RestoreRecord): string => r.completedAt ?? r.requestedAt;
  const last = runs.filter(drillRunPassed).sort((a, b) => doneAt(b).localeCompare(doneAt(a)))[0];
  const origin = last ? { from: 'last-passed' as const, at: doneAt(last) } : earlierOrigin(runs.map((r) => r.requestedAt).sort()[0], firstSeen, now);
  const ageSeconds = origin ? Math.max(0, (now.getTime() - Date.parse(origin.at)) / 1000) : null;
  const periodSeconds = drillPeriodSeconds(resolved.schedule, now) ?? null;
  return {
    drill,
    plan,
    periodSeconds,
    lastPassed: last ? { drillId: last.drillId!, completedAt: doneAt(last) } : null,
    ageSeconds,
    ageFrom: origin?.from ?? null,
    ageSince: origin?.at ?? null,
    overdue: periodSeconds !== null && ageSeconds !== null && ageSeconds > periodSeconds,
  };
}

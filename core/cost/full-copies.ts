/**
 * How many backups a retention policy keeps once it is in steady state: the "full copies"
 * side of the cost comparison. Rather than add up the rule counts (7 latest + 4 weekly + 12
 * monthly = 23, which counts a Sunday that is both a latest and a weekly backup twice), it runs
 * the retention calculator itself — the one the retention workflow and `retention preview` use —
 * over a history of backups taken at the plan's schedule (daily at `now`'s time of day when the
 * plan has none) and counts what it keeps.
 */
import { CronExpressionParser } from 'cron-parser';
import type { RetentionBody, ScheduleBody } from '../config/schema.js';
import { computeRetention, type RetentionCandidate } from '../retention/calculator.js';

const DAY_MS = 86_400_000;
/** More runs than this (a schedule every few minutes over years) stop the history there. */
const MAX_RUNS = 20_000;

/** Days of history the policy's rules can reach back (plus a margin), capped by `maxAgeDays`. */
export function historyDays(policy: RetentionBody): number {
  const reach = Math.max(policy.latest ?? 0, 7 * ((policy.weekly ?? 0) + 1), 31 * ((policy.monthly ?? 0) + 1), 366 * ((policy.yearly ?? 0) + 1) * (policy.yearly ? 1 : 0)) + 7;
  return policy.maxAgeDays === undefined ? reach : Math.min(reach, policy.maxAgeDays + 1);
}

/** Start times of the backups a schedule (or one a day) took in the `days` before `now`, newest first. */
export function scheduledStarts(now: Date, days: number, schedule?: ScheduleBody): Date[] {
  const from = now.getTime() - days * DAY_MS;
  if (!schedule) return Array.from({ length: days }, (_, i) => new Date(now.getTime() - i * DAY_MS));
  const seen = new Set<number>();
  for (const cron of schedule.cron) {
    const it = CronExpressionParser.parse(cron, { currentDate: new Date(now.getTime() + 1), tz: schedule.timeZone });
    for (let n = 0; n < MAX_RUNS; n++) {
      const t = it.prev().getTime();
      if (t < from) break;
      seen.add(t);
    }
  }
  return [...seen].sort((a, b) => b - a).slice(0, MAX_RUNS).map((t) => new Date(t));
}

/**
 * The number of backups `policy` keeps in steady state: the retention calculator's keep-set at
 * `now` over a history of successful backups at the schedule's runs (see the module's TSDoc).
 * `timeZone` is the plan's schedule's zone, whose calendar the weekly and monthly periods count.
 */
export function steadyStateCopies(policy: RetentionBody, now: Date, options: { timeZone: string; schedule?: ScheduleBody }): number {
  const backups: RetentionCandidate[] = scheduledStarts(now, historyDays(policy), options.schedule).map((t, i) => ({ backupId: `b${String(i).padStart(6, '0')}`, startedAt: t.toISOString(), status: 'Available' }));
  if (backups.length === 0) return 0;
  const result = computeRetention(backups, policy, now, { timeZone: options.timeZone, ...(options.schedule ? { schedule: options.schedule } : {}) });
  return result.keep.length;
}

/** The naive count: the rule counts added up (what a back-of-the-envelope model uses). */
export function ruleSum(policy: RetentionBody): number {
  return (policy.latest ?? 0) + (policy.weekly ?? 0) + (policy.monthly ?? 0) + (policy.yearly ?? 0);
}

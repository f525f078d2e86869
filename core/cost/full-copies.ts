/**
 * How many backups a retention policy keeps once it is in steady state, and what they would
 * cost kept as full copies: the "full copies" side of the cost comparison. Rather than add up
 * the rule counts (7 latest + 4 weekly + 12 monthly = 23, which counts a Sunday that is both a
 * latest and a weekly backup twice), it runs the retention calculator itself — the one the
 * retention workflow and `retention preview` use — over a history of backups taken at the
 * plan's schedule (daily at `now`'s time of day when the plan has none) and counts what it
 * keeps, per rule: each kept backup is counted once, under the first rule that keeps it
 * (latest, then weekly, monthly, yearly).
 *
 * The model, as `milvus-guard cost` prints it: copies kept × the size of one full copy (the
 * plan's newest Available backup) = bytes; bytes / 2^30 = GB (S3 bills a GB as 2^30 bytes) ×
 * the S3 Standard price per GB-month of the vault's Region = a month's storage. Nothing else:
 * no requests, no compression, no deduplication between copies — that is what "full copies"
 * means.
 *
 * The seed blog's figure, "7 daily + 4 weekly + 12 monthly full copies of a 1 TB cluster ≈
 * 17.4 TB ≈ $400/month on S3 Standard", does not follow from its own words, and we do not
 * reproduce it. Its price does follow from its size: 17.4 TB × 1,000 GB/TB × $0.023 per GB-month
 * = $400.20 (decimal units; 17.4 × 1,024 GB would be $409.81). Its size does not follow from 23
 * full copies of 1 TB, which are 23 TB ($529 a month at $0.023 per decimal GB; 23 TiB is
 * $541.70). The one reading with round inputs that gives 17.4 TB exactly is 16 full copies (the
 * 4 weekly and 12 monthly) plus the 7 dailies as incrementals of 20% of the cluster each (16 +
 * 7 × 0.2 = 17.4): not full copies, and a change rate the blog does not state. Our model counts
 * what the calculator keeps, full-size: for that policy and a daily schedule, 22 copies (the
 * newest Sunday is both a latest and a weekly backup), 22 TiB of a 1 TiB backup, $518.14 a
 * month in us-east-1. test/cost/full-copies.test.ts checks each of these numbers.
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

/** The rules a kept backup can be counted under, in the order the calculator lists them. */
export const TIERS = ['latest', 'weekly', 'monthly', 'yearly', 'newest'] as const;
export type Tier = (typeof TIERS)[number];

/** Backups kept under one rule: counted once, under the first rule that keeps them. */
export interface TierCopies {
  readonly tier: Tier;
  /** The rule's count in the policy (undefined for `newest`, the newest backup no rule keeps). */
  readonly rule?: number;
  /** Distinct backups counted under this rule. */
  readonly copies: number;
}

/** A kept backup's tier: its first rule, by the calculator's labels (`latest`, `weekly 2026-W48`, ..., `newest-available`). */
function tierOf(rules: readonly string[]): Tier | undefined {
  for (const t of TIERS) if (rules.some((r) => (t === 'newest' ? r === 'newest-available' : r === t || r.startsWith(`${t} `)))) return t;
  return undefined;
}

/**
 * The backups `policy` keeps in steady state, per rule: the retention calculator's keep-set at
 * `now` over a history of successful backups at the schedule's runs (see the module's TSDoc).
 * `timeZone` is the plan's schedule's zone, whose calendar the weekly and monthly periods count.
 * Rules that keep nothing are left out; the copies add up to {@link steadyStateCopies}.
 */
export function steadyStateTiers(policy: RetentionBody, now: Date, options: { timeZone: string; schedule?: ScheduleBody }): TierCopies[] {
  const backups: RetentionCandidate[] = scheduledStarts(now, historyDays(policy), options.schedule).map((t, i) => ({ backupId: `b${String(i).padStart(6, '0')}`, startedAt: t.toISOString(), status: 'Available' }));
  if (backups.length === 0) return [];
  const result = computeRetention(backups, policy, now, { timeZone: options.timeZone, ...(options.schedule ? { schedule: options.schedule } : {}) });
  const counts = new Map<Tier, number>();
  for (const k of result.keep) {
    const tier = tierOf(k.rules);
    if (tier) counts.set(tier, (counts.get(tier) ?? 0) + 1);
  }
  return TIERS.filter((t) => counts.has(t)).map((t) => ({ tier: t, ...(t === 'newest' ? {} : { rule: policy[t] ?? 0 }), copies: counts.get(t)! }));
}

/** The number of backups `policy` keeps in steady state (the copies of {@link steadyStateTiers}, added up). */
export function steadyStateCopies(policy: RetentionBody, now: Date, options: { timeZone: string; schedule?: ScheduleBody }): number {
  return steadyStateTiers(policy, now, options).reduce((n, t) => n + t.copies, 0);
}

/** The naive count: the rule counts added up (what a back-of-the-envelope model uses). */
export function ruleSum(policy: RetentionBody): number {
  return (policy.latest ?? 0) + (policy.weekly ?? 0) + (policy.monthly ?? 0) + (policy.yearly ?? 0);
}

/** S3 bills storage per GB of 2^30 bytes. */
export const GIB = 1024 ** 3;

/** What full copies cost a month: the model's three numbers and its result. */
export interface FullCopyCost {
  readonly bytes: number;
  /** `bytes` in billing GB (`gbBytes` each). */
  readonly gb: number;
  readonly monthlyUsd: number;
}

/**
 * `copies` full copies of `bytesPerCopy` each, stored a month at `pricePerGbMonth` (USD per
 * GB-month): bytes = copies × size, GB = bytes / `gbBytes` (S3's 2^30 by default; the seed
 * blog's arithmetic uses 10^9), cost = GB × price.
 */
export function fullCopyCost(copies: number, bytesPerCopy: number, pricePerGbMonth: number, gbBytes: number = GIB): FullCopyCost {
  const bytes = copies * bytesPerCopy;
  const gb = bytes / gbBytes;
  return { bytes, gb, monthlyUsd: gb * pricePerGbMonth };
}

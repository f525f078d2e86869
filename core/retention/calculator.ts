/**
 * The grandfather-father-son retention calculator: which of a plan's backups to keep, why, and
 * until when at least. Pure: the clock (`now`) and the plan's time zone are inputs, so the
 * retention workflow, the lock a backup gets when it is written and `retention preview` all
 * compute the same answer from the same catalog.
 *
 * ## Semantics
 *
 * **Order and dates.** Backups are ordered by `startedAt`, then by `backupId` (of two backups
 * started at the same instant, the greater id counts as the newer); every list this module
 * returns is newest first in that order. A backup's *date* is the calendar date of its
 * `startedAt` in the plan's time zone (`options.timeZone`, IANA): a backup at 00:30 in Berlin
 * on a Sunday is a Sunday backup although it is still Saturday in UTC; DST changes move no
 * backup to another date (a 02:00 run on a spring-forward day starts at 03:00 the same day; a
 * repeated hour on a fall-back day is still that day).
 *
 * **`latest N`** keeps the N newest `Available` backups.
 *
 * **Periods.** `weekly`, `monthly` and `yearly` count periods that start on an *anchor day*:
 * a weekly period runs from a `dayOfWeek` to the day before the next one; a monthly period
 * from `dateOfMonth` of one month to the day before that date in the next month (29–31 in a
 * shorter month means that month's last day); a yearly period from day `dateOfMonth` (1st
 * when the policy sets none, clamped likewise) of `monthOfYear` to the day before that day a
 * year later. A period is labelled by its anchor day: `weekly 2026-W47` (the ISO week-year and
 * week of the anchor day), `monthly 2026-11`, `yearly 2026`.
 *
 * **A period's candidate** is the newest `Available` backup taken on its anchor day; when the
 * anchor day has none (its backup failed or did not run), the *oldest* `Available` backup taken
 * later in the period. Falling back keeps the history without holes: one failed Sunday must not
 * leave a week out of the weekly history when Monday's backup can stand for it. Taking the
 * oldest substitute, not the newest, makes the choice stable: new backups only come later, so
 * once a substitute is chosen no later backup displaces it, and a backup promoted to weekly,
 * monthly or yearly (and locked for that long) stays the one kept for its period.
 *
 * **`weekly W`** keeps the candidates of the W most recent periods *that have a candidate*,
 * the current period included; `monthly M` and `yearly Y` likewise. Periods are counted over
 * the backups that exist (restic's `--keep-weekly`), not back from today: when backups stop
 * for a month during an outage, the weekly and monthly history from before it is still kept.
 *
 * **`maxAgeDays`**: no rule keeps a backup started more than `maxAgeDays` × 24 h before `now`
 * (expire reason `older than maxAgeDays N`), except that a backup under legal hold and the
 * newest `Available` backup are kept whatever their age.
 *
 * **Always kept**: the newest `Available` backup (`newest-available`, whatever the policy and
 * its age), a held backup (`hold`, whatever its status), an `InProgress` backup (`in-progress`).
 * A `Failed` backup is kept (`failed-grace`) until `failedGraceDays` (default 7) × 24 h after it
 * started, then expires (`failed more than 7 days ago`). An `Available` backup no rule keeps
 * expires as `not kept by any rule`, naming the periods it stood for beyond the rule's count.
 * A kept backup lists every rule that keeps it, in the order `latest`, weekly, monthly, yearly,
 * `newest-available`, `in-progress`, `failed-grace`, `hold`.
 *
 * **`retainUntil`** of a kept backup is the latest, over the rules that keep it, of the
 * earliest instant that rule could stop keeping it, and never earlier than `now`; it is what
 * its Object Lock may safely cover (the caller raises it to the vault's floor and never
 * shortens a lock). "Could" assumes backups start only at the schedule's runs after `now`
 * (`options.schedule`, every cron expression of it), and that an `InProgress` backup may turn
 * `Available` at `now`; without a schedule a backup may start at any moment. Per rule:
 * - `latest`, for the k-th newest: the start of the (N−k+1)-th newer backup to come (the
 *   in-progress ones newer than it first, then scheduled runs); without a schedule, `now`.
 * - a period rule, for the candidate of the i-th most recent period with a candidate: the
 *   earlier of (a) the first backup to come that would replace it as its period's candidate (a
 *   newer backup on its anchor day, possible only while that day lasts) and (b) the start of the
 *   first backup to come in the (W−i+1)-th period newer than its own that has no candidate yet
 *   (then W newer periods have one); without a schedule, such a period's first moment (the
 *   anchor day's local midnight as an instant), or `now` for the current period.
 * - each of these is capped at `startedAt` + `maxAgeDays` × 24 h, when the policy sets it.
 * - `newest-available`, `hold` and `in-progress` give `now` (they hold for as long as they
 *   last, which no date predicts; retention extends locks daily); `failed-grace` its end.
 * An on-demand backup can make `latest` drop a backup before this date; retention then expires
 * it, and its objects go once the lock passes.
 */
import { InvalidInputError } from '../errors.js';
import { CronExpressionParser } from 'cron-parser';
import { MONTHS, WEEKDAYS, type RetentionBody } from '../config/schema.js';
import { checkTimeZone, DAY_MS, localDay, monthlyPeriods, startOfLocalDay, weeklyPeriods, yearlyPeriods, type PeriodKind } from './calendar.js';

/** A backup as retention sees it (a catalog record's fields). */
export interface RetentionCandidate {
  backupId: string;
  /** ISO 8601 instant. */
  startedAt: string;
  status: 'InProgress' | 'Available' | 'Failed';
  /** Under legal hold: kept whatever the policy says. */
  hold?: boolean;
}

/** A backup to keep, the rules that keep it and the earliest date they could stop. */
export interface KeepDecision {
  backupId: string;
  startedAt: string;
  /** E.g. `['latest', 'weekly 2026-W47', 'newest-available']`. */
  rules: string[];
  /** ISO 8601 instant; never earlier than `now`. */
  retainUntil: string;
}

/** A backup to expire, and why. */
export interface ExpireDecision {
  backupId: string;
  startedAt: string;
  reason: string;
}

/** Every backup given, in exactly one of the lists, each newest first. */
export interface RetentionResult {
  keep: KeepDecision[];
  expire: ExpireDecision[];
}

/** What besides the policy the calculation needs. */
export interface RetentionOptions {
  /** IANA time zone whose calendar dates the periods count (the plan's schedule's zone). */
  timeZone: string;
  /** When backups run; one expression or the schedule's list (a `ScheduleBody` fits). */
  schedule?: { cron: string | readonly string[]; timeZone: string };
  /** Days a `Failed` backup is kept before it expires; default 7. */
  failedGraceDays?: number;
}

const DEFAULT_FAILED_GRACE_DAYS = 7;

/** Rule labels of the always-kept kinds. */
const NEWEST = 'newest-available';
const HOLD = 'hold';
const IN_PROGRESS = 'in-progress';
const FAILED_GRACE = 'failed-grace';

/**
 * True when the backup is kept with no end date that a lock would need: it is the newest
 * available backup, or every rule that keeps it ends by `now` (`latest` of a plan without a
 * schedule, a backup a restore reads). Its `retainUntil` is `now`: the rule could end at once.
 * A legal hold is not among them (its hold protects the objects; a date would only outlast a
 * release), nor a backup in progress (retention extends no lock of one).
 */
export function keptUntilFurtherNotice(k: Pick<KeepDecision, 'rules' | 'retainUntil'>, now: Date): boolean {
  if (k.rules.includes(NEWEST)) return true;
  return Date.parse(k.retainUntil) <= now.getTime() && !k.rules.includes(HOLD) && !k.rules.includes(IN_PROGRESS);
}

interface Backup {
  readonly id: string;
  readonly at: number;
  /** Local calendar date, as a day number. */
  readonly day: number;
  readonly source: RetentionCandidate;
}

/** Sort comparator: newest first, by start time, then by id (greater is newer). */
function newestFirst(a: Backup, b: Backup): number {
  return b.at - a.at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

const isNewer = (a: Backup, b: Backup): boolean => newestFirst(a, b) < 0;

/** True when `challenger` would be chosen over `held` as the candidate of the period at `anchor`. */
function preferred(anchor: number, challenger: Backup, held: Backup): boolean {
  const challengerOnAnchor = challenger.day === anchor;
  const heldOnAnchor = held.day === anchor;
  if (challengerOnAnchor !== heldOnAnchor) return challengerOnAnchor;
  // Both on the anchor day: the newest; both later in the period: the oldest.
  return challengerOnAnchor ? isNewer(challenger, held) : isNewer(held, challenger);
}

const plural = (n: number, unit: string): string => `${n} ${unit}${n === 1 ? '' : 's'}`;

/**
 * When backups may start from now on: the schedule's runs, or (without a schedule, or once
 * cron-parser finds no further run) any moment, which is the cautious reading for a lock date.
 */
class Starts {
  private readonly crons: readonly string[];
  /** Runs already found, by the instant searched from: the rules ask for the same ones often. */
  private readonly runs = new Map<number, number | undefined>();

  constructor(private readonly schedule: RetentionOptions['schedule']) {
    this.crons = schedule === undefined ? [] : typeof schedule.cron === 'string' ? [schedule.cron] : schedule.cron;
  }

  get scheduled(): boolean {
    return this.crons.length > 0;
  }

  /** The first scheduled run strictly after `after`; without one, `after` itself. */
  after(after: number): number {
    return this.scheduled ? (this.run(after) ?? after) : after;
  }

  /** The first scheduled run at or after `from`; without one, `from` itself. */
  atOrAfter(from: number): number {
    return this.scheduled ? (this.run(from - 1) ?? from) : from;
  }

  private run(after: number): number | undefined {
    if (this.runs.has(after)) return this.runs.get(after);
    let first: number | undefined;
    for (const cron of this.crons) {
      try {
        const run = CronExpressionParser.parse(cron, { currentDate: new Date(after), tz: this.schedule!.timeZone }).next().getTime();
        first = first === undefined ? run : Math.min(first, run);
      } catch {
        // No further run (or an expression the config check should have refused): any moment.
        first = undefined;
        break;
      }
    }
    this.runs.set(after, first);
    return first;
  }
}

/** Parsed input; refuses what no catalog record should hold, naming each backup. */
function backupsOf(candidates: readonly RetentionCandidate[], timeZone: string): Backup[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const backups: Backup[] = [];
  for (const source of candidates) {
    const at = Date.parse(source.startedAt);
    if (Number.isNaN(at)) problems.push(`backup ${source.backupId} has startedAt "${source.startedAt}", which is not an ISO 8601 time`);
    if (seen.has(source.backupId)) problems.push(`backup ${source.backupId} is listed twice`);
    seen.add(source.backupId);
    if (!Number.isNaN(at)) backups.push({ id: source.backupId, at, day: localDay(at, timeZone), source });
  }
  if (problems.length > 0) throw new InvalidInputError('the backups given to retention', problems);
  return backups.sort(newestFirst);
}

/** The policy's period rules with their counts; refuses a count without its anchor. */
function periodRules(policy: RetentionBody): { kind: PeriodKind; count: number }[] {
  const problems: string[] = [];
  const rules: { kind: PeriodKind; count: number }[] = [];
  if ((policy.weekly ?? 0) > 0) {
    if (policy.dayOfWeek === undefined) problems.push('weekly is set without dayOfWeek');
    else rules.push({ kind: weeklyPeriods(WEEKDAYS.indexOf(policy.dayOfWeek)), count: policy.weekly! });
  }
  if ((policy.monthly ?? 0) > 0) {
    if (policy.dateOfMonth === undefined) problems.push('monthly is set without dateOfMonth');
    else rules.push({ kind: monthlyPeriods(policy.dateOfMonth), count: policy.monthly! });
  }
  if ((policy.yearly ?? 0) > 0) {
    if (policy.monthOfYear === undefined) problems.push('yearly is set without monthOfYear');
    else rules.push({ kind: yearlyPeriods(MONTHS.indexOf(policy.monthOfYear) + 1, policy.dateOfMonth ?? 1), count: policy.yearly! });
  }
  if (problems.length > 0) throw new InvalidInputError('the retention policy', problems);
  return rules;
}

/** A rule that keeps a backup, and the earliest instant it could stop (before capping). */
interface Grant {
  readonly label: string;
  readonly until: number;
}

/**
 * Decides, for every backup of a plan, keep or expire (see the module's TSDoc for the exact
 * semantics): the `latest`, weekly, monthly and yearly rules of `policy` over the `Available`
 * backups, counted in `options.timeZone`'s calendar; `maxAgeDays` as a ceiling; the newest
 * `Available`, held and in-progress backups always kept; failed ones after a grace period.
 * Each kept backup gets the earliest date its rules could stop keeping it. `now` is the clock;
 * nothing here reads the system time. Throws an {@link InvalidInputError} for an unparsable
 * `startedAt`, a backup id listed twice, an unknown time zone or a count without its anchor.
 */
export function computeRetention(backups: readonly RetentionCandidate[], policy: RetentionBody, now: Date, options: RetentionOptions): RetentionResult {
  const zone = options.timeZone;
  checkTimeZone(zone);
  if (options.schedule) checkTimeZone(options.schedule.timeZone);
  const all = backupsOf(backups, zone);
  const nowMs = now.getTime();
  if (Number.isNaN(nowMs)) throw new InvalidInputError('the retention clock', ['now is not a valid date']);
  const periods = periodRules(policy);
  const graceDays = options.failedGraceDays ?? DEFAULT_FAILED_GRACE_DAYS;
  const maxAgeMs = policy.maxAgeDays === undefined ? undefined : policy.maxAgeDays * DAY_MS;
  const starts = new Starts(options.schedule);
  const available = all.filter((b) => b.source.status === 'Available');
  const inProgress = all.filter((b) => b.source.status === 'InProgress');

  const grants = new Map<string, Grant[]>();
  const grant = (b: Backup, label: string, until: number): void => {
    grants.set(b.id, [...(grants.get(b.id) ?? []), { label, until }]);
  };
  /** Periods a backup stood for beyond its rule's count: named in its expire reason. */
  const beyond = new Map<string, string[]>();

  // latest N.
  const latest = policy.latest ?? 0;
  available.slice(0, latest).forEach((b, index) => {
    const needed = latest - index; // newer backups that push the (index+1)-th newest out
    const pending = inProgress.filter((p) => isNewer(p, b)).length;
    let until = nowMs;
    if (pending < needed && starts.scheduled) {
      until = Math.max(nowMs, b.at);
      for (let n = pending; n < needed; n++) until = starts.after(until);
    }
    grant(b, 'latest', until);
  });

  // weekly, monthly, yearly.
  for (const { kind, count } of periods) {
    const members = new Map<number, Backup[]>();
    for (const b of available) {
      const anchor = kind.anchorOf(b.day);
      const list = members.get(anchor);
      if (list === undefined) members.set(anchor, [b]);
      else list.push(b);
    }
    const candidates = new Map<number, Backup>();
    for (const [anchor, list] of members) {
      candidates.set(anchor, list.reduce((held, challenger) => (preferred(anchor, challenger, held) ? challenger : held)));
    }
    const anchors = [...candidates.keys()].sort((a, b) => b - a);
    const arrivals = new PeriodArrivals(kind, starts, nowMs, zone, (anchor) => candidates.has(anchor));
    anchors.forEach((anchor, index) => {
      const candidate = candidates.get(anchor)!;
      if (index >= count) {
        beyond.set(candidate.id, [...(beyond.get(candidate.id) ?? []), `${kind.label(anchor)} is not among the ${count} most recent ${kind.unit} kept`]);
        return;
      }
      grant(candidate, kind.label(anchor), periodUntil(kind, anchor, candidate, count - index, inProgress, arrivals, starts, nowMs, zone));
    });
  }

  const keep: KeepDecision[] = [];
  const expire: ExpireDecision[] = [];
  const newest = available[0];
  for (const b of all) {
    const rules: Grant[] = [];
    const status = b.source.status;
    const tooOld = maxAgeMs !== undefined && b.at < nowMs - maxAgeMs;
    const ruled = grants.get(b.id) ?? [];
    if (!tooOld) rules.push(...ruled.map((g) => ({ label: g.label, until: maxAgeMs === undefined ? g.until : Math.min(g.until, b.at + maxAgeMs) })));
    if (b === newest) rules.push({ label: NEWEST, until: nowMs });
    if (status === 'InProgress') rules.push({ label: IN_PROGRESS, until: nowMs });
    const graceEnd = b.at + graceDays * DAY_MS;
    if (status === 'Failed' && nowMs < graceEnd) rules.push({ label: FAILED_GRACE, until: graceEnd });
    if (b.source.hold === true) rules.push({ label: HOLD, until: nowMs });

    if (rules.length > 0) {
      const until = Math.max(nowMs, ...rules.map((r) => r.until));
      keep.push({ backupId: b.id, startedAt: b.source.startedAt, rules: rules.map((r) => r.label), retainUntil: new Date(until).toISOString() });
    } else {
      expire.push({ backupId: b.id, startedAt: b.source.startedAt, reason: expireReason(b, tooOld, ruled, beyond.get(b.id), policy.maxAgeDays, graceDays) });
    }
  }
  return { keep, expire };
}

function expireReason(b: Backup, tooOld: boolean, ruled: readonly Grant[], beyond: readonly string[] | undefined, maxAgeDays: number | undefined, graceDays: number): string {
  if (b.source.status === 'Failed') return `failed more than ${plural(graceDays, 'day')} ago`;
  if (tooOld) {
    const would = ruled.length > 0 ? ` (would be kept by ${ruled.map((g) => g.label).join(', ')})` : '';
    return `older than maxAgeDays ${maxAgeDays}${would}`;
  }
  return beyond === undefined ? 'not kept by any rule' : `not kept by any rule (${beyond.join('; ')})`;
}

/**
 * The periods of one kind that have no candidate yet, in the order backups to come could give
 * them one, each with the earliest start of such a backup: from `now` on, period by period.
 * Computed lazily and shared by the candidates of that kind.
 */
class PeriodArrivals {
  private readonly found: { anchor: number; at: number }[] = [];
  private next: number;

  constructor(
    private readonly kind: PeriodKind,
    private readonly starts: Starts,
    now: number,
    private readonly zone: string,
    /** True when the period starting on `anchor` has a candidate now. */
    readonly hasCandidate: (anchor: number) => boolean,
  ) {
    this.next = starts.after(now);
  }

  *[Symbol.iterator](): Generator<{ anchor: number; at: number }> {
    for (let i = 0; ; i++) {
      while (i >= this.found.length) this.advance();
      yield this.found[i]!;
    }
  }

  private advance(): void {
    const anchor = this.kind.anchorOf(localDay(this.next, this.zone));
    if (!this.hasCandidate(anchor)) this.found.push({ anchor, at: this.next });
    this.next = this.starts.atOrAfter(startOfLocalDay(this.kind.next(anchor), this.zone));
  }
}

/**
 * The earliest instant the rule of `kind` could stop keeping `candidate`, its period's (at
 * `anchor`) candidate, when `needed` more periods newer than its own would push it out.
 */
function periodUntil(kind: PeriodKind, anchor: number, candidate: Backup, needed: number, inProgress: readonly Backup[], arrivals: PeriodArrivals, starts: Starts, now: number, zone: string): number {
  // (a) Replaced as its period's candidate: by an in-progress backup that would be preferred,
  // or by the next backup to start, if that falls on the anchor day.
  let replaced = Infinity;
  if (inProgress.some((p) => kind.anchorOf(p.day) === anchor && preferred(anchor, p, candidate))) replaced = now;
  const first = starts.after(now);
  const firstBackup: Backup = { id: '', at: first, day: localDay(first, zone), source: candidate.source };
  if (kind.anchorOf(firstBackup.day) === anchor && preferred(anchor, firstBackup, candidate)) replaced = Math.min(replaced, first);

  // (b) Pushed out: newer periods without a candidate get one, in-progress backups first.
  const filled = new Set<number>();
  for (const p of inProgress) {
    const a = kind.anchorOf(p.day);
    if (a > anchor && !arrivals.hasCandidate(a)) filled.add(a);
  }
  if (filled.size >= needed) return Math.min(replaced, now);
  for (const arrival of arrivals) {
    if (arrival.at >= replaced) return replaced;
    if (arrival.anchor <= anchor || filled.has(arrival.anchor)) continue;
    filled.add(arrival.anchor);
    if (filled.size === needed) return Math.min(replaced, arrival.at);
  }
  return replaced; // unreachable: the arrivals never end
}

/**
 * The Object Lock date a backup gets when it is written: {@link computeRetention} at the new
 * backup's `startedAt`, with the new backup counted as `Available` among `existing` (a record
 * of it already there, e.g. `InProgress`, is replaced), and that backup's `retainUntil` — the
 * earliest date its policy could expire it (for `latest 7` on a daily schedule, 7 runs later).
 * Should the new backup not be kept at all (a newer backup already exists and no rule keeps
 * it), its start: the caller's floor then decides. The caller raises the result to the vault's
 * floor; nothing here knows the vault.
 */
export function initialRetainUntil(
  existing: readonly RetentionCandidate[],
  newBackup: { backupId: string; startedAt: string },
  policy: RetentionBody,
  options: RetentionOptions,
): Date {
  const now = new Date(newBackup.startedAt);
  const backups: RetentionCandidate[] = [
    ...existing.filter((b) => b.backupId !== newBackup.backupId),
    { backupId: newBackup.backupId, startedAt: newBackup.startedAt, status: 'Available' },
  ];
  const kept = computeRetention(backups, policy, now, options).keep.find((k) => k.backupId === newBackup.backupId);
  return kept === undefined ? now : new Date(kept.retainUntil);
}

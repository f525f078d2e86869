import { describe, expect, it } from '@jest/globals';
import type { RetentionBody } from '../../core/config/schema.js';
import { computeRetention, initialRetainUntil, type RetentionCandidate, type RetentionResult } from '../../core/retention/calculator.js';

// Every expected value below is worked out by hand from a calendar, never by running the code.

const DAY = 86_400_000;
const SEED: RetentionBody = { latest: 7, weekly: 4, dayOfWeek: 'Sunday', monthly: 12, dateOfMonth: 1, yearly: 2, monthOfYear: 'January', maxAgeDays: 730 };
const DAILY_UTC = { timeZone: 'UTC', schedule: { cron: ['0 2 * * *'], timeZone: 'UTC' } };

/** An Available backup with id `b-<startedAt>` unless told otherwise. */
function backup(startedAt: string, over: Partial<RetentionCandidate> = {}): RetentionCandidate {
  return { backupId: `b-${startedAt}`, startedAt, status: 'Available', ...over };
}

/** One Available backup a day at `time` UTC from `from` to `to` (dates inclusive), id `b-<date>`. */
function daily(from: string, to: string, time = '02:00'): RetentionCandidate[] {
  const out: RetentionCandidate[] = [];
  for (let t = Date.parse(`${from}T${time}:00Z`); t <= Date.parse(`${to}T${time}:00Z`); t += DAY) {
    const iso = new Date(t).toISOString();
    out.push({ backupId: `b-${iso.slice(0, 10)}`, startedAt: iso, status: 'Available' });
  }
  return out;
}

const rulesOf = (r: RetentionResult): Record<string, string[]> => Object.fromEntries(r.keep.map((k) => [k.backupId, k.rules]));
const untilOf = (r: RetentionResult): Record<string, string> => Object.fromEntries(r.keep.map((k) => [k.backupId, k.retainUntil]));
const reasonOf = (r: RetentionResult): Record<string, string> => Object.fromEntries(r.expire.map((e) => [e.backupId, e.reason]));

describe('computeRetention: the seed policy (latest 7, weekly 4 Sunday, monthly 12 on the 1st, yearly 2 January, 730 days)', () => {
  // Dec 5 2026 is a Saturday; the Sundays before it are Nov 29 (ISO 2026-W48), 22, 15, 8.
  const onDec5 = computeRetention(daily('2024-12-01', '2026-12-05'), SEED, new Date('2026-12-05T03:00:00Z'), DAILY_UTC);
  // Jan 1 2027 is a Friday; Dec 27 2026 is the Sunday of ISO week 2026-W52 (2026 has 53 weeks).
  const onJan1 = computeRetention(daily('2025-01-01', '2027-01-01'), SEED, new Date('2027-01-01T03:00:00Z'), DAILY_UTC);

  it.each([
    [
      'Saturday 2026-12-05, after two years and five days of daily backups',
      onDec5,
      {
        'b-2026-12-05': ['latest', 'newest-available'],
        'b-2026-12-04': ['latest'],
        'b-2026-12-03': ['latest'],
        'b-2026-12-02': ['latest'],
        'b-2026-12-01': ['latest', 'monthly 2026-12'],
        'b-2026-11-30': ['latest'],
        'b-2026-11-29': ['latest', 'weekly 2026-W48'],
        'b-2026-11-22': ['weekly 2026-W47'],
        'b-2026-11-15': ['weekly 2026-W46'],
        'b-2026-11-08': ['weekly 2026-W45'],
        'b-2026-11-01': ['monthly 2026-11'],
        'b-2026-10-01': ['monthly 2026-10'],
        'b-2026-09-01': ['monthly 2026-09'],
        'b-2026-08-01': ['monthly 2026-08'],
        'b-2026-07-01': ['monthly 2026-07'],
        'b-2026-06-01': ['monthly 2026-06'],
        'b-2026-05-01': ['monthly 2026-05'],
        'b-2026-04-01': ['monthly 2026-04'],
        'b-2026-03-01': ['monthly 2026-03'],
        'b-2026-02-01': ['monthly 2026-02'],
        'b-2026-01-01': ['monthly 2026-01', 'yearly 2026'],
        'b-2025-01-01': ['yearly 2025'],
      },
    ],
    [
      'Friday 2027-01-01, after exactly two years of daily backups',
      onJan1,
      {
        'b-2027-01-01': ['latest', 'monthly 2027-01', 'yearly 2027', 'newest-available'],
        'b-2026-12-31': ['latest'],
        'b-2026-12-30': ['latest'],
        'b-2026-12-29': ['latest'],
        'b-2026-12-28': ['latest'],
        'b-2026-12-27': ['latest', 'weekly 2026-W52'],
        'b-2026-12-26': ['latest'],
        'b-2026-12-20': ['weekly 2026-W51'],
        'b-2026-12-13': ['weekly 2026-W50'],
        'b-2026-12-06': ['weekly 2026-W49'],
        'b-2026-12-01': ['monthly 2026-12'],
        'b-2026-11-01': ['monthly 2026-11'],
        'b-2026-10-01': ['monthly 2026-10'],
        'b-2026-09-01': ['monthly 2026-09'],
        'b-2026-08-01': ['monthly 2026-08'],
        'b-2026-07-01': ['monthly 2026-07'],
        'b-2026-06-01': ['monthly 2026-06'],
        'b-2026-05-01': ['monthly 2026-05'],
        'b-2026-04-01': ['monthly 2026-04'],
        'b-2026-03-01': ['monthly 2026-03'],
        'b-2026-02-01': ['monthly 2026-02'],
        'b-2026-01-01': ['yearly 2026'],
      },
    ],
  ])('on %s keeps exactly the expected backups, at most 25', (_when, result, expected) => {
    expect(rulesOf(result)).toEqual(expected);
    expect(result.keep.length).toBeLessThanOrEqual(7 + 4 + 12 + 2);
  });

  it('expires every other backup, each exactly once', () => {
    expect(onDec5.keep.length + onDec5.expire.length).toBe(735); // 2024-12-01 … 2026-12-05
    expect(onJan1.keep.length + onJan1.expire.length).toBe(731);
    expect(new Set([...onDec5.keep, ...onDec5.expire].map((d) => d.backupId)).size).toBe(735);
  });

  it('says why: older than maxAgeDays, or which period it stood for beyond the count', () => {
    const reasons = reasonOf(onDec5);
    expect(reasons['b-2024-12-05']).toBe('older than maxAgeDays 730'); // 02:00 < now − 730 days (03:00)
    expect(reasons['b-2024-12-06']).toBe('not kept by any rule');
    expect(reasons['b-2026-11-28']).toBe('not kept by any rule');
    expect(reasons['b-2026-11-01']).toBeUndefined();
    expect(reasons['b-2026-10-25']).toBe('not kept by any rule (weekly 2026-W43 is not among the 4 most recent weeks kept)');
    expect(reasons['b-2025-12-01']).toBe('not kept by any rule (monthly 2025-12 is not among the 12 most recent months kept)');
    expect(reasonOf(onJan1)['b-2025-01-01']).toBe('older than maxAgeDays 730');
  });

  it('locks each kept backup until the scheduled run at which its last rule could drop it', () => {
    expect(untilOf(onDec5)).toMatchObject({
      'b-2026-12-05': '2026-12-12T02:00:00.000Z', // 1st newest: 7 more runs
      'b-2026-11-30': '2026-12-07T02:00:00.000Z', // 6th newest: 2 more runs
      'b-2026-11-29': '2026-12-27T02:00:00.000Z', // weekly, newest week: 4 more Sundays
      'b-2026-11-22': '2026-12-20T02:00:00.000Z',
      'b-2026-11-08': '2026-12-06T02:00:00.000Z', // weekly, 4th week: the next Sunday
      'b-2026-12-01': '2027-12-01T02:00:00.000Z', // monthly, newest month: 12 more months
      'b-2026-02-01': '2027-02-01T02:00:00.000Z', // monthly, 11th month: 2 more months
      'b-2026-01-01': '2028-01-01T02:00:00.000Z', // yearly 2026 needs 2 more years; = 730 days cap
      'b-2025-01-01': '2027-01-01T02:00:00.000Z', // yearly 2025, second year: the next January 1st
    });
  });
});

describe('computeRetention: the README worked example', () => {
  // latest 3 / weekly 2 Sunday / monthly 2 on the 1st / 45 days; daily 02:00 UTC from 2026-10-01,
  // Sunday 2026-12-06 failed, 2026-10-05 under legal hold; now Wednesday 2026-12-09 03:00 UTC.
  const backups = daily('2026-10-01', '2026-12-09').map((b) =>
    b.backupId === 'b-2026-12-06' ? { ...b, status: 'Failed' as const } : b.backupId === 'b-2026-10-05' ? { ...b, hold: true } : b,
  );
  const policy: RetentionBody = { latest: 3, weekly: 2, dayOfWeek: 'Sunday', monthly: 2, dateOfMonth: 1, maxAgeDays: 45 };
  const result = computeRetention(backups, policy, new Date('2026-12-09T03:00:00Z'), DAILY_UTC);

  it('keeps what the README table says, until the dates it gives', () => {
    expect(result.keep.map((k) => [k.backupId, k.rules.join(', '), k.retainUntil])).toEqual([
      ['b-2026-12-09', 'latest, newest-available', '2026-12-12T02:00:00.000Z'],
      ['b-2026-12-08', 'latest', '2026-12-11T02:00:00.000Z'],
      ['b-2026-12-07', 'latest, weekly 2026-W49', '2026-12-20T02:00:00.000Z'], // stands in for the failed Sunday
      ['b-2026-12-06', 'failed-grace', '2026-12-13T02:00:00.000Z'],
      ['b-2026-12-01', 'monthly 2026-12', '2027-01-15T02:00:00.000Z'], // 2027-02-01 capped at 45 days
      ['b-2026-11-29', 'weekly 2026-W48', '2026-12-13T02:00:00.000Z'],
      ['b-2026-11-01', 'monthly 2026-11', '2026-12-16T02:00:00.000Z'], // 2027-01-01 capped at 45 days
      ['b-2026-10-05', 'hold', '2026-12-09T03:00:00.000Z'],
    ]);
  });

  it('gives the README table\'s reasons for what it expires', () => {
    expect(reasonOf(result)).toMatchObject({
      'b-2026-12-05': 'not kept by any rule',
      'b-2026-11-22': 'not kept by any rule (weekly 2026-W47 is not among the 2 most recent weeks kept)',
      'b-2026-10-26': 'not kept by any rule',
      'b-2026-10-25': 'older than maxAgeDays 45',
      'b-2026-10-01': 'older than maxAgeDays 45',
    });
    expect(result.expire).toHaveLength(70 - 8);
  });
});

describe('computeRetention: dates in the plan time zone', () => {
  const weekly1: RetentionBody = { weekly: 1, dayOfWeek: 'Sunday' };

  it('takes a Berlin 00:30 Sunday backup as Sunday, although it is Saturday in UTC', () => {
    // Sunday 2026-03-29 00:30 CET is 2026-03-28T23:30Z; DST starts at 02:00 that day.
    const backups = [backup('2026-03-28T23:30:00Z'), backup('2026-03-29T22:30:00Z') /* Monday 00:30 CEST */];
    const now = new Date('2026-03-30T12:00:00Z');
    expect(rulesOf(computeRetention(backups, weekly1, now, { timeZone: 'Europe/Berlin' }))).toEqual({
      'b-2026-03-29T22:30:00Z': ['newest-available'],
      'b-2026-03-28T23:30:00Z': ['weekly 2026-W13'],
    });
    // In UTC the same two instants are a Saturday and a Sunday.
    expect(rulesOf(computeRetention(backups, weekly1, now, { timeZone: 'UTC' }))).toEqual({
      'b-2026-03-29T22:30:00Z': ['weekly 2026-W13', 'newest-available'],
    });
  });

  it('keeps the 02:00 New York backup of a spring-forward Sunday, which runs at 03:00 EDT', () => {
    // cron "0 2 * * *" in New York runs at 2026-03-08T07:00Z (03:00 EDT) on the DST day.
    const backups = [backup('2026-03-07T07:00:00Z'), backup('2026-03-08T07:00:00Z'), backup('2026-03-09T06:00:00Z')];
    const result = computeRetention(backups, weekly1, new Date('2026-03-09T12:00:00Z'), { timeZone: 'America/New_York', schedule: { cron: '0 2 * * *', timeZone: 'America/New_York' } });
    expect(rulesOf(result)['b-2026-03-08T07:00:00Z']).toEqual(['weekly 2026-W10']);
    // weekly 1: the next Sunday's run, 02:00 EDT on 2026-03-15, starts the newer week that pushes it out.
    expect(untilOf(result)['b-2026-03-08T07:00:00Z']).toBe('2026-03-15T06:00:00.000Z');
  });

  it('takes the later of two runs in the repeated hour of a fall-back Sunday, and not the Saturday-evening one', () => {
    // Sunday 2026-11-01 in New York: 01:30 EDT (05:30Z), then 01:30 EST (06:30Z). 03:30Z is Saturday 23:30 EDT.
    const backups = [backup('2026-11-01T03:30:00Z'), backup('2026-11-01T05:30:00Z'), backup('2026-11-01T06:30:00Z'), backup('2026-11-02T12:00:00Z')];
    const result = computeRetention(backups, weekly1, new Date('2026-11-03T12:00:00Z'), { timeZone: 'America/New_York' });
    expect(rulesOf(result)).toEqual({ 'b-2026-11-02T12:00:00Z': ['newest-available'], 'b-2026-11-01T06:30:00Z': ['weekly 2026-W44'] });
  });

  it('without a schedule, locks a weekly backup until local midnight of the Sunday that could push it out', () => {
    // Sunday 2026-03-22 01:00 CET. weekly 2: two new weeks needed, the 2nd starts Sunday 2026-04-05 00:00 CEST = 04-04T22:00Z.
    const result = computeRetention([backup('2026-03-22T00:00:00Z'), backup('2026-03-24T10:00:00Z')], { weekly: 2, dayOfWeek: 'Sunday' }, new Date('2026-03-24T12:00:00Z'), { timeZone: 'Europe/Berlin' });
    expect(untilOf(result)['b-2026-03-22T00:00:00Z']).toBe('2026-04-04T22:00:00.000Z');
  });

  it('counts the runs of a Berlin schedule across the spring-forward night', () => {
    // 00:30 Berlin daily: 2026-03-28T23:30Z (CET), then 2026-03-29T22:30Z (CEST), 03-30T22:30Z.
    const schedule = { cron: ['30 0 * * *'], timeZone: 'Europe/Berlin' };
    const result = computeRetention([backup('2026-03-28T23:30:00Z')], { latest: 3 }, new Date('2026-03-28T23:40:00Z'), { timeZone: 'Europe/Berlin', schedule });
    expect(untilOf(result)['b-2026-03-28T23:30:00Z']).toBe('2026-03-31T22:30:00.000Z');
  });
});

describe('computeRetention: periods counted over the backups that exist', () => {
  it('keeps the weekly and monthly history from before a month-long outage', () => {
    // Daily backups stop after Wednesday 2026-09-30; now is 2026-11-10, six weeks later.
    const policy: RetentionBody = { latest: 3, weekly: 4, dayOfWeek: 'Sunday', monthly: 3, dateOfMonth: 1 };
    const result = computeRetention(daily('2026-07-01', '2026-09-30'), policy, new Date('2026-11-10T12:00:00Z'), DAILY_UTC);
    expect(rulesOf(result)).toEqual({
      'b-2026-09-30': ['latest', 'newest-available'],
      'b-2026-09-29': ['latest'],
      'b-2026-09-28': ['latest'],
      'b-2026-09-27': ['weekly 2026-W39'],
      'b-2026-09-20': ['weekly 2026-W38'],
      'b-2026-09-13': ['weekly 2026-W37'],
      'b-2026-09-06': ['weekly 2026-W36'],
      'b-2026-09-01': ['monthly 2026-09'],
      'b-2026-08-01': ['monthly 2026-08'],
      'b-2026-07-01': ['monthly 2026-07'],
    });
  });

  it('keeps the next backup of the week when the Sunday one failed', () => {
    const backups = daily('2026-11-01', '2026-11-18').map((b) => (b.backupId === 'b-2026-11-15' ? { ...b, status: 'Failed' as const } : b));
    const result = computeRetention(backups, { weekly: 2, dayOfWeek: 'Sunday' }, new Date('2026-11-18T03:00:00Z'), DAILY_UTC);
    expect(rulesOf(result)).toMatchObject({ 'b-2026-11-16': ['weekly 2026-W46'], 'b-2026-11-08': ['weekly 2026-W45'] });
    expect(reasonOf(result)['b-2026-11-17']).toBe('not kept by any rule');
  });

  it('keeps the substitute of a failed Sunday when later backups of that week come', () => {
    const history = daily('2026-11-01', '2026-11-21').map((b) => (b.backupId === 'b-2026-11-15' ? { ...b, status: 'Failed' as const } : b));
    const policy: RetentionBody = { weekly: 3, dayOfWeek: 'Sunday' };
    for (const last of ['2026-11-16', '2026-11-17', '2026-11-19', '2026-11-21']) {
      const seen = history.filter((b) => b.backupId <= `b-${last}`);
      expect(rulesOf(computeRetention(seen, policy, new Date(`${last}T03:00:00Z`), DAILY_UTC))['b-2026-11-16']).toEqual(expect.arrayContaining(['weekly 2026-W46']));
    }
  });

  it('locks an anchor-day backup only until the next run of that same day, which would replace it', () => {
    const twiceDaily = { timeZone: 'UTC', schedule: { cron: ['0 2,14 * * *'], timeZone: 'UTC' } };
    const backups = [backup('2026-11-21T14:00:00Z'), backup('2026-11-22T02:00:00Z')];
    const result = computeRetention(backups, { weekly: 2, dayOfWeek: 'Sunday' }, new Date('2026-11-22T03:00:00Z'), twiceDaily);
    expect(untilOf(result)['b-2026-11-22T02:00:00Z']).toBe('2026-11-22T14:00:00.000Z');
  });

  it('keeps the newest of two backups on the anchor day', () => {
    const backups = [backup('2026-11-22T02:00:00Z'), backup('2026-11-22T14:00:00Z'), backup('2026-11-23T02:00:00Z')];
    expect(rulesOf(computeRetention(backups, { weekly: 1, dayOfWeek: 'Sunday' }, new Date('2026-11-23T03:00:00Z'), DAILY_UTC))).toEqual({
      'b-2026-11-23T02:00:00Z': ['newest-available'],
      'b-2026-11-22T14:00:00Z': ['weekly 2026-W47'],
    });
  });

  it.each([
    // dateOfMonth 31: periods Jan 31 – Feb 27, Feb 28 – Mar 30 (2027); Jan 31 – Feb 28, Feb 29 – Mar 30 (2028).
    ['2027', '2027-02-10', '2027-03-10', { 'b-2027-03-10': ['newest-available'], 'b-2027-02-28': ['monthly 2027-02'], 'b-2027-02-10': ['monthly 2027-01'] }],
    ['2028 (leap year)', '2028-02-10', '2028-03-10', { 'b-2028-03-10': ['newest-available'], 'b-2028-02-29': ['monthly 2028-02'], 'b-2028-02-10': ['monthly 2028-01'] }],
  ])('with dateOfMonth 31 takes the last day of February as its anchor in %s', (_year, from, to, expected) => {
    const result = computeRetention(daily(from, to), { monthly: 2, dateOfMonth: 31 }, new Date(`${to}T12:00:00Z`), DAILY_UTC);
    expect(rulesOf(result)).toEqual(expected);
  });

  it('anchors a yearly period on dateOfMonth of monthOfYear when the policy sets it', () => {
    // yearly periods from March 15: 2025-03-15 – 2026-03-14, 2026-03-15 – …
    const backups = [backup('2025-03-14T02:00:00Z'), backup('2025-03-15T02:00:00Z'), backup('2026-03-14T02:00:00Z'), backup('2026-03-16T02:00:00Z'), backup('2026-03-17T02:00:00Z')];
    const result = computeRetention(backups, { yearly: 3, monthOfYear: 'March', dateOfMonth: 15 }, new Date('2026-03-18T00:00:00Z'), DAILY_UTC);
    expect(rulesOf(result)).toEqual({
      'b-2026-03-17T02:00:00Z': ['newest-available'],
      'b-2026-03-16T02:00:00Z': ['yearly 2026'], // March 15 2026 had no backup
      'b-2025-03-15T02:00:00Z': ['yearly 2025'],
      'b-2025-03-14T02:00:00Z': ['yearly 2024'],
    });
  });
});

describe('computeRetention: what is always kept, and what expires', () => {
  const now = new Date('2026-12-05T12:00:00Z');

  it('returns nothing for an empty history', () => {
    expect(computeRetention([], SEED, now, DAILY_UTC)).toEqual({ keep: [], expire: [] });
  });

  it('keeps a held backup past maxAgeDays, whatever its status, and names the hold', () => {
    const backups = [
      backup('2026-12-05T02:00:00Z'),
      backup('2026-12-04T02:00:00Z', { hold: true }),
      backup('2020-01-01T02:00:00Z', { hold: true }),
      backup('2020-01-02T02:00:00Z', { hold: true, status: 'Failed' }),
      backup('2020-01-03T02:00:00Z'),
    ];
    const result = computeRetention(backups, { latest: 2, maxAgeDays: 30 }, now, DAILY_UTC);
    expect(rulesOf(result)).toEqual({
      'b-2026-12-05T02:00:00Z': ['latest', 'newest-available'],
      'b-2026-12-04T02:00:00Z': ['latest', 'hold'],
      'b-2020-01-02T02:00:00Z': ['hold'],
      'b-2020-01-01T02:00:00Z': ['hold'],
    });
    expect(untilOf(result)['b-2020-01-01T02:00:00Z']).toBe(now.toISOString());
    expect(reasonOf(result)).toEqual({ 'b-2020-01-03T02:00:00Z': 'older than maxAgeDays 30' });
  });

  it('keeps the newest Available backup past maxAgeDays when backups stopped long ago', () => {
    const backups = [backup('2023-05-01T02:00:00Z'), backup('2023-05-02T02:00:00Z'), backup('2023-05-03T02:00:00Z', { status: 'Failed' })];
    const result = computeRetention(backups, { latest: 3, maxAgeDays: 30 }, now, DAILY_UTC);
    expect(result.keep).toEqual([{ backupId: 'b-2023-05-02T02:00:00Z', startedAt: '2023-05-02T02:00:00Z', rules: ['newest-available'], retainUntil: now.toISOString() }]);
    expect(reasonOf(result)).toEqual({
      'b-2023-05-03T02:00:00Z': 'failed more than 7 days ago',
      'b-2023-05-01T02:00:00Z': 'older than maxAgeDays 30 (would be kept by latest)',
    });
  });

  it('keeps an in-progress backup and does not count it as one of the latest', () => {
    const backups = [backup('2026-12-05T02:00:00Z', { status: 'InProgress' }), backup('2026-12-04T02:00:00Z'), backup('2026-12-03T02:00:00Z'), backup('2026-12-02T02:00:00Z')];
    const result = computeRetention(backups, { latest: 2 }, now, DAILY_UTC);
    expect(rulesOf(result)).toEqual({
      'b-2026-12-05T02:00:00Z': ['in-progress'],
      'b-2026-12-04T02:00:00Z': ['latest', 'newest-available'],
      'b-2026-12-03T02:00:00Z': ['latest'],
    });
    // The in-progress backup may become Available now and push the 2nd newest out.
    expect(untilOf(result)).toEqual({ 'b-2026-12-05T02:00:00Z': now.toISOString(), 'b-2026-12-04T02:00:00Z': '2026-12-06T02:00:00.000Z', 'b-2026-12-03T02:00:00Z': now.toISOString() });
  });

  it.each([
    ['6 days ago', '2026-11-29T12:00:01Z', undefined, 'keep', '2026-12-06T12:00:01.000Z'],
    ['exactly 7 days ago', '2026-11-28T12:00:00Z', undefined, 'expire', 'failed more than 7 days ago'],
    ['2 days ago with a 1-day grace', '2026-12-03T12:00:00Z', 1, 'expire', 'failed more than 1 day ago'],
  ])('handles a backup that failed %s', (_when, startedAt, failedGraceDays, outcome, detail) => {
    const failed = backup(startedAt, { status: 'Failed' });
    const result = computeRetention([failed], { latest: 1 }, now, { timeZone: 'UTC', ...(failedGraceDays === undefined ? {} : { failedGraceDays }) });
    if (outcome === 'keep') {
      expect(result.keep).toEqual([{ backupId: failed.backupId, startedAt, rules: ['failed-grace'], retainUntil: detail }]);
    } else {
      expect(result.expire).toEqual([{ backupId: failed.backupId, startedAt, reason: detail }]);
    }
  });

  it('orders both lists newest first, equal start times by backup id', () => {
    const backups = [backup('2026-12-01T02:00:00Z', { backupId: 'a' }), backup('2026-12-01T02:00:00Z', { backupId: 'c' }), backup('2026-12-01T02:00:00Z', { backupId: 'b' }), backup('2026-11-30T02:00:00Z', { backupId: 'z' })];
    const result = computeRetention(backups, { latest: 2 }, now, DAILY_UTC);
    expect(result.keep.map((k) => k.backupId)).toEqual(['c', 'b']);
    expect(result.expire.map((e) => e.backupId)).toEqual(['a', 'z']);
  });

  it.each([
    ['a startedAt that is not a time', [backup('yesterday')], 'UTC', /backup b-yesterday has startedAt "yesterday", which is not an ISO 8601 time/],
    ['a backup id listed twice', [backup('2026-12-01T02:00:00Z'), backup('2026-12-01T02:00:00Z')], 'UTC', /backup b-2026-12-01T02:00:00Z is listed twice/],
    ['an unknown time zone', [], 'Mars/Olympus', /time zone "Mars\/Olympus" is not an IANA time zone/],
  ])('refuses %s, naming it', (_what, backups, timeZone, message) => {
    expect(() => computeRetention(backups, { latest: 1 }, now, { timeZone })).toThrow(message);
  });
});

describe('initialRetainUntil', () => {
  const history = daily('2026-10-01', '2026-11-30');

  it.each([
    ['a Wednesday: latest 7 on a daily schedule, 7 runs later', '2026-12-02T02:00:00Z', '2026-12-09T02:00:00.000Z'],
    ['a Sunday: the 4th next Sunday, when 4 newer weeks have their backup', '2026-12-06T02:00:00Z', '2027-01-03T02:00:00.000Z'],
    ['the 1st of a month: 12 months later', '2026-12-01T02:00:00Z', '2027-12-01T02:00:00.000Z'],
    ['January 1st: capped at 730 days, before the second January to come (2028 is a leap year)', '2027-01-01T02:00:00Z', '2028-12-31T02:00:00.000Z'],
  ])('locks a backup of %s', (_what, startedAt, expected) => {
    const existing = daily('2026-10-01', new Date(Date.parse(startedAt) - DAY).toISOString().slice(0, 10));
    expect(initialRetainUntil(existing, { backupId: 'new', startedAt }, SEED, DAILY_UTC).toISOString()).toBe(expected);
  });

  it('counts the new backup as Available, replacing its own InProgress record', () => {
    const own = backup('2026-12-01T02:00:05Z', { backupId: 'new', status: 'InProgress' });
    expect(initialRetainUntil([...history, own], { backupId: 'new', startedAt: own.startedAt }, { latest: 2 }, DAILY_UTC).toISOString()).toBe('2026-12-03T02:00:00.000Z');
  });

  it('gives the start itself for a plan without a schedule (the vault floor then applies)', () => {
    expect(initialRetainUntil(history, { backupId: 'new', startedAt: '2026-12-02T10:00:00Z' }, { latest: 7 }, { timeZone: 'UTC' }).toISOString()).toBe('2026-12-02T10:00:00.000Z');
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over seeded random histories.
// ---------------------------------------------------------------------------------------------

/** mulberry32: a small deterministic generator, so a failing seed can be replayed. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ZONES = ['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'Asia/Kolkata'];
const DAYS_OF_WEEK = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;
const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'] as const;

function randomCase(seed: number): { policy: RetentionBody; timeZone: string; backups: RetentionCandidate[]; now: Date } {
  const random = generator(seed);
  const int = (n: number): number => Math.floor(random() * n);
  const policy: RetentionBody = {
    latest: int(6),
    weekly: int(6),
    dayOfWeek: DAYS_OF_WEEK[int(7)]!,
    monthly: int(5),
    dateOfMonth: 1 + int(31),
    yearly: int(3),
    monthOfYear: MONTH_NAMES[int(12)]!,
    ...(random() < 0.5 ? { maxAgeDays: 20 + int(300) } : {}),
  };
  if ((policy.latest ?? 0) + (policy.weekly ?? 0) + (policy.monthly ?? 0) + (policy.yearly ?? 0) === 0) policy.latest = 1;
  const start = Date.parse('2025-09-01T00:00:00Z') + int(400) * DAY;
  const days = 30 + int(500);
  const backups: RetentionCandidate[] = [];
  for (let d = 0; d < days; d++) {
    if (random() < 0.25) continue; // missed day
    const count = random() < 0.1 ? 2 : 1;
    for (let i = 0; i < count; i++) {
      const at = start + d * DAY + int(24 * 60) * 60_000;
      const status = random() < 0.1 ? 'Failed' : d > days - 2 && random() < 0.5 ? 'InProgress' : 'Available';
      backups.push({ backupId: `s${seed}-${backups.length}`, startedAt: new Date(at).toISOString(), status, ...(random() < 0.03 ? { hold: true } : {}) });
    }
  }
  return { policy, timeZone: ZONES[int(ZONES.length)]!, backups, now: new Date(start + days * DAY + int(DAY)) };
}

/** A day after which a period with this label has surely ended (whatever its anchor), in ms. */
function surelyOver(label: string): number {
  const [rule, name] = label.split(' ') as [string, string];
  if (rule === 'weekly') {
    const [year, week] = name.split('-W').map(Number) as [number, number];
    const jan4 = Date.UTC(year, 0, 4);
    const monday = jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * DAY + (week - 1) * 7 * DAY;
    return monday + 14 * DAY; // the anchor is in that ISO week; the period lasts 7 days
  }
  if (rule === 'monthly') {
    const [year, month] = name.split('-').map(Number) as [number, number];
    return Date.UTC(year, month + 1, 2); // ends before the anchor date of the next month
  }
  return Date.UTC(Number(name) + 2, 0, 2);
}

const periodLabel = (rule: string): boolean => /^(weekly|monthly|yearly) /.test(rule);

describe('computeRetention: properties over seeded random histories', () => {
  const seeds = Array.from({ length: 40 }, (_, i) => i + 1);
  let passedPeriodsChecked = 0;
  let expiredExactlyAtLock = 0;

  it.each(seeds)('seed %i: decides every backup once, keeps the newest Available, never dates a lock before now', (seed) => {
    const { policy, timeZone, backups, now } = randomCase(seed);
    const result = computeRetention(backups, policy, now, { timeZone });
    const decided = [...result.keep.map((k) => k.backupId), ...result.expire.map((e) => e.backupId)];
    expect(decided.sort()).toEqual(backups.map((b) => b.backupId).sort());
    const newest = backups.filter((b) => b.status === 'Available').sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt) || (a.backupId < b.backupId ? 1 : -1))[0];
    if (newest) expect(rulesOf(result)[newest.backupId]).toContain('newest-available');
    for (const k of result.keep) expect(Date.parse(k.retainUntil)).toBeGreaterThanOrEqual(now.getTime());
    for (const b of backups.filter((b) => b.hold)) expect(rulesOf(result)[b.backupId]).toContain('hold');
    for (const list of [result.keep, result.expire]) {
      const times = list.map((d) => Date.parse(d.startedAt));
      expect(times).toEqual([...times].sort((a, b) => b - a));
    }
  });

  it.each(seeds)('seed %i: newer backups never move the weekly, monthly or yearly label of a period that has passed', (seed) => {
    const { policy, timeZone, backups, now } = randomCase(seed);
    const before = computeRetention(backups, policy, now, { timeZone });
    const random = generator(seed * 7919);
    const later = [...backups];
    let t = now.getTime();
    for (let i = 0; i < 5 + Math.floor(random() * 60); i++) {
      t += Math.floor(random() * 3 * DAY);
      later.push({ backupId: `later-${i}`, startedAt: new Date(t).toISOString(), status: random() < 0.15 ? 'Failed' : 'Available' });
    }
    const after = computeRetention(later, policy, new Date(t + DAY), { timeZone });
    const labelled = new Map(after.keep.flatMap((k) => k.rules.filter(periodLabel).map((rule) => [rule, k.backupId] as const)));
    let checked = 0;
    for (const k of before.keep) {
      for (const rule of k.rules.filter(periodLabel)) {
        if (surelyOver(rule) > now.getTime()) continue;
        checked++;
        const holder = labelled.get(rule);
        if (holder !== undefined) expect(`${rule} on ${holder}`).toBe(`${rule} on ${k.backupId}`);
      }
    }
    passedPeriodsChecked += checked;
  });

  it.each(seeds.slice(0, 8))('seed %i: no backup expires before its retainUntil when every scheduled run succeeds', (seed) => {
    const { policy, timeZone, backups, now } = randomCase(seed);
    // A few runs a week keeps the simulation short; Thursday's second run can replace a Thursday-anchored candidate.
    const options = { timeZone, schedule: { cron: ['15 3 * * 1,4', '45 20 * * 4'], timeZone } };
    const settled = backups.map((b) => (b.status === 'InProgress' ? { ...b, status: 'Available' as const } : b));
    const first = computeRetention(settled, policy, now, options);
    const watched = new Map(first.keep.filter((k) => !k.rules.includes('hold') && !k.rules.includes('failed-grace')).map((k) => [k.backupId, Date.parse(k.retainUntil)]));
    const history = [...settled];
    let at = now.getTime();
    for (let run = 0; run < 20; run++) {
      at = nextRun(at, timeZone);
      history.push({ backupId: `run-${run}`, startedAt: new Date(at).toISOString(), status: 'Available' });
      const result = computeRetention(history, policy, new Date(at), options);
      for (const e of result.expire) {
        const until = watched.get(e.backupId);
        if (until !== undefined) {
          expect({ backup: e.backupId, expiredBeforeItsLock: at < until }).toEqual({ backup: e.backupId, expiredBeforeItsLock: false });
          if (at === until) expiredExactlyAtLock++;
          watched.delete(e.backupId);
        }
      }
    }
  });

  // Guards against properties that pass because they compared nothing.
  it('compared passed periods and met locks that end exactly when a rule drops the backup', () => {
    expect(passedPeriodsChecked).toBeGreaterThan(50);
    expect(expiredExactlyAtLock).toBeGreaterThan(10);
  });
});

/**
 * The next Monday 03:15, Thursday 03:15 or Thursday 20:45 in `timeZone` after `after`, read off
 * the zone's wall clock (not cron-parser): every zone used here is offset from UTC by whole
 * quarter hours.
 */
function nextRun(after: number, timeZone: string): number {
  const QUARTER = 15 * 60_000;
  const wall = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', weekday: 'short', hour: '2-digit', minute: '2-digit' });
  for (let t = Math.floor(after / QUARTER) * QUARTER + QUARTER; ; t += QUARTER) {
    const parts = Object.fromEntries(wall.formatToParts(new Date(t)).map((p) => [p.type, p.value]));
    const clock = `${parts.weekday} ${parts.hour}:${parts.minute}`;
    if (clock === 'Mon 03:15' || clock === 'Thu 03:15' || clock === 'Thu 20:45') return t;
  }
}

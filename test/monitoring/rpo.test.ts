import { describe, expect, it, jest } from '@jest/globals';
import { CronExpression } from 'cron-parser';
import { checkDrill, checkRpo, DEFAULT_BACKUP_SECONDS, MAX_RUNS_PER_CRON, rpoMet, drillPeriodSeconds, durationSeconds, isRunOfDrill, longestScheduledGapSeconds, nextScheduledRun, planRpo } from '../../core/monitoring/rpo.js';
import { resolveDrill } from '../../core/config/resolve.js';
import { backup, configWith, drillRestore, planWith } from './helpers.js';

const NOW = new Date('2026-11-23T12:00:00.000Z');
const HOUR = 3600;

describe('a plan RPO', () => {
  it('is the plan rpo when the config sets one', async () => {
    const plan = await planWith({ rpo: '26h' });

    expect(planRpo(plan, [], NOW)).toEqual({ seconds: 26 * HOUR, source: 'config', rpo: '26h' });
  });

  it('reads config durations in seconds, minutes, hours and days', () => {
    expect([durationSeconds('30s'), durationSeconds('15m'), durationSeconds('26h'), durationSeconds('7d')]).toEqual([30, 900, 93_600, 604_800]);
  });

  it('is, without rpo, the longest gap between scheduled runs plus the median duration of the newest Available backups', async () => {
    const plan = await planWith({ rpo: undefined });
    const backups = [
      backup('b-3', { durationSeconds: 1800, completedAt: '2026-11-23T02:30:00.000Z' }),
      backup('b-2', { durationSeconds: 600, completedAt: '2026-11-22T02:10:00.000Z' }),
      backup('b-1', { durationSeconds: 1200, completedAt: '2026-11-21T02:20:00.000Z' }),
      // Failed backups say nothing of a typical duration.
      backup('f-1', { status: 'Failed', durationSeconds: 99_999 }),
    ];

    expect(planRpo(plan, backups, NOW)).toEqual({ seconds: 24 * HOUR + 1200, source: 'schedule', gapSeconds: 24 * HOUR, typicalBackup: { seconds: 1200, sampled: 3 } });
  });

  it('adds one hour for the backup when the plan has no Available backup yet (as at synth)', async () => {
    const plan = await planWith({ rpo: undefined });

    expect(planRpo(plan, [], NOW)).toMatchObject({ seconds: 24 * HOUR + DEFAULT_BACKUP_SECONDS, typicalBackup: { sampled: 0 } });
  });

  it('takes the median of the ten newest Available backups only', async () => {
    const plan = await planWith({ rpo: undefined });
    const recent = Array.from({ length: 10 }, (_, i) => backup(`new-${i}`, { durationSeconds: 600, completedAt: `2026-11-${String(13 + i).padStart(2, '0')}T02:10:00.000Z` }));
    const old = Array.from({ length: 20 }, (_, i) => backup(`old-${i}`, { durationSeconds: 7200, completedAt: `2026-10-${String(1 + i).padStart(2, '0')}T04:00:00.000Z` }));

    expect(planRpo(plan, [...old, ...recent], NOW)).toMatchObject({ typicalBackup: { seconds: 600, sampled: 10 } });
  });

  it('counts the weekend of a weekday schedule as its longest gap', async () => {
    const plan = await planWith({ rpo: undefined, schedule: { cron: ['0 2 * * 1-5'], timeZone: 'UTC' } });

    expect(planRpo(plan, [], NOW)).toMatchObject({ gapSeconds: 72 * HOUR });
  });

  it('merges the runs of every cron expression of the schedule', async () => {
    const plan = await planWith({ rpo: undefined, schedule: { cron: ['0 2 * * *', '0 14 * * *'], timeZone: 'UTC' } });

    expect(planRpo(plan, [], NOW)).toMatchObject({ gapSeconds: 12 * HOUR });
  });

  it("counts the 25-hour day when the schedule's time zone leaves daylight saving time", () => {
    const berlin = { cron: ['0 2 * * *'], timeZone: 'Europe/Berlin' };

    // Summer time ends on 25 October 2026: 02:00 on the 25th to 02:00 on the 26th is 25 hours.
    expect(longestScheduledGapSeconds(berlin, new Date('2026-10-01T00:00:00Z'))).toBe(25 * HOUR);
    expect(longestScheduledGapSeconds(berlin, new Date('2026-11-01T00:00:00Z'))).toBe(24 * HOUR);
  });

  it('looks at no more than MAX_RUNS_PER_CRON runs of a schedule every five minutes (16,128 in the window)', () => {
    const next = jest.spyOn(CronExpression.prototype, 'next');

    try {
      expect(longestScheduledGapSeconds({ cron: ['*/5 * * * *'], timeZone: 'UTC' }, NOW)).toBe(300);
      expect(next.mock.calls.length).toBeLessThanOrEqual(MAX_RUNS_PER_CRON);
      // It did look: the cap, not an early stop, bounds the work.
      expect(next.mock.calls.length).toBe(MAX_RUNS_PER_CRON);
    } finally {
      next.mockRestore();
    }
  });

  it('has none for a plan that runs on demand and sets no rpo, and says why', async () => {
    const plan = await planWith({ rpo: undefined, schedule: undefined });

    expect(planRpo(plan, [], NOW)).toEqual({ seconds: null, source: 'none', reason: expect.stringContaining('runs on demand only and sets no rpo') });
  });
});

describe('the next scheduled run', () => {
  it('is computed in the schedule time zone', () => {
    expect(nextScheduledRun({ cron: ['0 2 * * *'], timeZone: 'Europe/Berlin' }, NOW)?.toISOString()).toBe('2026-11-24T01:00:00.000Z');
  });

  it('is the earliest of the schedule expressions', () => {
    expect(nextScheduledRun({ cron: ['0 2 * * *', '0 14 * * *'], timeZone: 'UTC' }, NOW)?.toISOString()).toBe('2026-11-23T14:00:00.000Z');
  });
});

describe('checking a plan against its RPO', () => {
  it('is met while the newest Available backup completed within the RPO', async () => {
    const plan = await planWith({ rpo: '26h' });

    const check = checkRpo(plan, [backup('b-1', { completedAt: '2026-11-23T02:20:00.000Z' })], NOW);

    expect(check).toMatchObject({ state: 'met', lastAvailable: { backupId: 'b-1', completedAt: '2026-11-23T02:20:00.000Z' }, ageFrom: 'last-available', ageSeconds: 9 * HOUR + 40 * 60 });
  });

  it('is violated once the newest Available backup is older than the RPO, whatever failed since', async () => {
    const plan = await planWith({ rpo: '26h' });
    const failedSince = backup('f-2', { status: 'Failed', startedAt: '2026-11-23T02:00:00.000Z' });
    const old = backup('old', { startedAt: '2026-11-22T08:00:00.000Z', completedAt: '2026-11-22T09:40:00.000Z' });

    // 26 h 20 min after it completed.
    expect(checkRpo(plan, [failedSince, old], NOW)).toMatchObject({ state: 'violated', lastAvailable: { backupId: 'old' }, ageSeconds: 26 * HOUR + 20 * 60 });
  });

  it('counts expired and in-progress backups as no backup', async () => {
    const plan = await planWith({ rpo: '26h' });

    const check = checkRpo(plan, [backup('e-1', { status: 'Expired', completedAt: '2026-11-23T02:20:00.000Z' }), backup('i-1', { status: 'InProgress', startedAt: '2026-11-23T11:00:00.000Z', completedAt: undefined })], NOW);

    expect(check).toMatchObject({ state: 'no-backup', lastAvailable: null, ageFrom: 'first-attempt' });
  });

  it('ages a plan whose every backup failed from its first attempt, so it violates its RPO too', async () => {
    const plan = await planWith({ rpo: '26h' });

    const check = checkRpo(plan, [backup('f-1', { status: 'Failed', startedAt: '2026-11-21T02:00:00.000Z' })], NOW);

    expect(check).toMatchObject({ state: 'violated', lastAvailable: null, ageFrom: 'first-attempt', ageSeconds: 58 * HOUR });
  });

  it('cannot judge a plan never attempted nor seen by the RPO check, and does not count it as met', async () => {
    const plan = await planWith({ rpo: '26h' });

    const check = checkRpo(plan, [], NOW);

    expect(check).toMatchObject({ state: 'unknown', ageSeconds: null, ageFrom: null, ageSince: null });
    expect(rpoMet(check)).toBe(false);
  });

  it('ages a plan never attempted from when the RPO check first saw it, still within its RPO', async () => {
    const plan = await planWith({ rpo: '26h' });

    const check = checkRpo(plan, [], NOW, '2026-11-23T02:00:00.000Z');

    expect(check).toMatchObject({ state: 'no-backup', lastAvailable: null, ageFrom: 'first-seen', ageSince: '2026-11-23T02:00:00.000Z', ageSeconds: 10 * HOUR });
    expect(rpoMet(check)).toBe(true);
  });

  it('violates the RPO of a plan never attempted once it was first seen longer ago than its RPO', async () => {
    const plan = await planWith({ rpo: '26h' });

    const check = checkRpo(plan, [], NOW, '2026-11-22T09:59:59.000Z');

    expect(check).toMatchObject({ state: 'violated', ageFrom: 'first-seen', ageSeconds: 26 * HOUR + 1 });
    expect(rpoMet(check)).toBe(false);
  });

  it('is not violated by a plan first seen exactly its RPO ago', async () => {
    const plan = await planWith({ rpo: '26h' });

    expect(checkRpo(plan, [], NOW, '2026-11-22T10:00:00.000Z')).toMatchObject({ state: 'no-backup', ageSeconds: 26 * HOUR });
  });

  it('ages a plan without an Available backup from the earlier of its first attempt and its first-seen marker', async () => {
    const plan = await planWith({ rpo: '26h' });
    const failed = backup('f-1', { status: 'Failed', startedAt: '2026-11-23T02:00:00.000Z' });

    expect(checkRpo(plan, [failed], NOW, '2026-11-22T02:00:00.000Z')).toMatchObject({ state: 'violated', ageFrom: 'first-seen', ageSeconds: 34 * HOUR });
    expect(checkRpo(plan, [failed], NOW, '2026-11-23T06:00:00.000Z')).toMatchObject({ state: 'no-backup', ageFrom: 'first-attempt', ageSince: '2026-11-23T02:00:00.000Z' });
  });

  it('measures a plan with an Available backup from it, whenever it was first seen', async () => {
    const plan = await planWith({ rpo: '26h' });

    expect(checkRpo(plan, [backup('b-1', { completedAt: '2026-11-23T02:20:00.000Z' })], NOW, '2026-01-01T00:00:00.000Z')).toMatchObject({ state: 'met', ageFrom: 'last-available', ageSince: '2026-11-23T02:20:00.000Z' });
  });

  it('ignores a first-seen marker written after now (on a later clock)', async () => {
    const plan = await planWith({ rpo: '26h' });

    expect(checkRpo(plan, [], NOW, '2026-11-24T00:00:00.000Z')).toMatchObject({ state: 'unknown', ageSeconds: null, ageFrom: null });
  });

  it('has an age but no verdict for a plan without an RPO', async () => {
    const plan = await planWith({ rpo: undefined, schedule: undefined });

    const check = checkRpo(plan, [], NOW, '2026-01-01T00:00:00.000Z');

    expect(check).toMatchObject({ state: 'no-rpo', ageFrom: 'first-seen' });
    expect(rpoMet(check)).toBe(true);
  });

  it('reads other plans backups as none of this plan', async () => {
    const plan = await planWith({ rpo: '26h' });

    expect(checkRpo(plan, [backup('x', { plan: 'other-plan' })], NOW)).toMatchObject({ state: 'unknown', ageSeconds: null });
  });
});

describe('a drill period', () => {
  it("is a weekly drill's week plus a day to run", () => {
    expect(drillPeriodSeconds({ cron: ['0 6 * * 0'], timeZone: 'UTC' }, NOW)).toBe(8 * 24 * HOUR);
  });

  it("is a monthly drill's longest month plus a day, longer than any alarm could look back", () => {
    expect(drillPeriodSeconds({ cron: ['0 6 1 * *'], timeZone: 'UTC' }, NOW)).toBe(32 * 24 * HOUR);
  });

  it('is none for a schedule that runs fewer than twice', () => {
    expect(drillPeriodSeconds({ cron: ['0 6 31 2 *'], timeZone: 'UTC' }, NOW)).toBeUndefined();
  });
});

describe("a drill's runs", () => {
  it('are the drill ids its name makes, cut to 80 characters, and no other drill of a longer name', () => {
    const long = `d${'x'.repeat(70)}`;
    expect(isRunOfDrill('weekly', 'weekly-drill-20261122060000')).toBe(true);
    expect(isRunOfDrill('weekly', 'weekly-2-drill-20261122060000')).toBe(false);
    expect(isRunOfDrill('weekly', 'weekly-drill-20261122060000-x')).toBe(false);
    expect(isRunOfDrill(long, `${long.slice(0, 59)}-drill-20261122060000`)).toBe(true);
  });
});

describe("a drill's age against its period", () => {
  // The example's drill runs Sundays at 06:00 UTC: a period of a week plus a day.
  const DRILL = 'production-weekly-drill';
  const DAY = 24 * HOUR;
  const weekly = async () => resolveDrill(await configWith(), DRILL);

  it('counts a drill never attempted from when the RPO check first saw it, overdue once that is longer ago than its period', async () => {
    const check = checkDrill(await weekly(), [], NOW, '2026-11-14T12:00:00.000Z');

    expect(check).toMatchObject({ periodSeconds: 8 * DAY, lastPassed: null, ageFrom: 'first-seen', ageSince: '2026-11-14T12:00:00.000Z', ageSeconds: 9 * DAY, overdue: true });
  });

  it('is not overdue while a drill never attempted has been seen for less than its period', async () => {
    expect(checkDrill(await weekly(), [], NOW, '2026-11-16T12:00:00.000Z')).toMatchObject({ ageFrom: 'first-seen', ageSeconds: 7 * DAY, overdue: false });
  });

  it('has no age for a drill never attempted nor seen, or seen only on a later clock', async () => {
    expect(checkDrill(await weekly(), [], NOW)).toMatchObject({ ageSeconds: null, ageFrom: null, ageSince: null, overdue: false });
    expect(checkDrill(await weekly(), [], NOW, '2026-11-24T00:00:00.000Z')).toMatchObject({ ageSeconds: null, overdue: false });
  });

  it('counts a drill that never passed from the earlier of its first attempt and its first-seen marker', async () => {
    const failed = drillRestore(`${DRILL}-drill-20261115060000`, { status: 'Failed', requestedAt: '2026-11-15T06:00:00.000Z' });

    expect(checkDrill(await weekly(), [failed], NOW, '2026-11-20T00:00:00.000Z')).toMatchObject({ ageFrom: 'first-attempt', ageSince: '2026-11-15T06:00:00.000Z', overdue: true });
    expect(checkDrill(await weekly(), [failed], NOW, '2026-11-10T00:00:00.000Z')).toMatchObject({ ageFrom: 'first-seen', ageSince: '2026-11-10T00:00:00.000Z' });
  });

  it('counts from the newest pass whatever the marker says', async () => {
    const passed = drillRestore(`${DRILL}-drill-20261122060000`, { requestedAt: '2026-11-22T06:00:00.000Z', completedAt: '2026-11-22T06:04:00.000Z' });

    expect(checkDrill(await weekly(), [passed], NOW, '2026-10-01T00:00:00.000Z')).toMatchObject({ ageFrom: 'last-passed', ageSeconds: 29 * HOUR + 56 * 60, overdue: false });
  });
});

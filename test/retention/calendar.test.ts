import { describe, expect, it } from '@jest/globals';
import { dayNumber, isoDate, isoWeek, localDay, monthlyPeriods, startOfLocalDay, weeklyPeriods, yearlyPeriods } from '../../core/retention/calendar.js';

const day = (iso: string): number => {
  const [year, month, date] = iso.split('-').map(Number) as [number, number, number];
  return dayNumber(year, month, date);
};

describe('startOfLocalDay', () => {
  it.each([
    ['Europe/Berlin', '2026-03-29', '2026-03-28T23:00:00.000Z'], // the spring-forward day still starts in CET
    ['Europe/Berlin', '2026-03-30', '2026-03-29T22:00:00.000Z'], // the next in CEST
    ['America/New_York', '2026-11-01', '2026-11-01T04:00:00.000Z'], // fall-back day starts in EDT
    ['America/Santiago', '2026-09-06', '2026-09-06T04:00:00.000Z'], // midnight skipped: the day starts at 01:00 −03
    ['Australia/Lord_Howe', '2026-10-04', '2026-10-03T13:30:00.000Z'], // +10:30 before its half-hour change
    ['Pacific/Kiritimati', '2026-01-01', '2025-12-31T10:00:00.000Z'], // +14
    ['Pacific/Pago_Pago', '2026-01-01', '2026-01-01T11:00:00.000Z'], // −11
  ])('in %s, %s starts at %s', (zone, date, expected) => {
    expect(new Date(startOfLocalDay(day(date), zone)).toISOString()).toBe(expected);
    expect(isoDate(localDay(Date.parse(expected), zone))).toBe(date);
    expect(isoDate(localDay(Date.parse(expected) - 1, zone))).not.toBe(date);
  });
});

describe('isoWeek', () => {
  it.each([
    ['2026-11-22', 2026, 47],
    ['2026-12-27', 2026, 52],
    ['2027-01-03', 2026, 53], // 2026 starts on a Thursday: 53 weeks
    ['2024-12-30', 2025, 1], // a Monday whose week holds 2025's first Thursday
    ['2021-01-03', 2020, 53],
  ])('puts %s in %i-W%i', (date, year, week) => {
    expect(isoWeek(day(date))).toEqual({ year, week });
  });
});

describe('periods', () => {
  it('runs a Sunday week from Sunday to Saturday', () => {
    const weeks = weeklyPeriods(0);
    expect(isoDate(weeks.anchorOf(day('2026-12-05')))).toBe('2026-11-29');
    expect(isoDate(weeks.anchorOf(day('2026-11-29')))).toBe('2026-11-29');
    expect(weeks.label(day('2026-11-22'))).toBe('weekly 2026-W47');
  });

  it.each([
    ['2027-02-27', '2027-01-31', '2027-02-28', 'monthly 2027-01'],
    ['2027-02-28', '2027-02-28', '2027-03-31', 'monthly 2027-02'],
    ['2027-03-30', '2027-02-28', '2027-03-31', 'monthly 2027-02'],
    ['2028-02-29', '2028-02-29', '2028-03-31', 'monthly 2028-02'],
    ['2027-05-01', '2027-04-30', '2027-05-31', 'monthly 2027-04'],
  ])('with dateOfMonth 31 puts %s in the month from %s to the day before %s (%s)', (date, anchor, next, label) => {
    const months = monthlyPeriods(31);
    expect(isoDate(months.anchorOf(day(date)))).toBe(anchor);
    expect(isoDate(months.next(day(anchor)))).toBe(next);
    expect(months.label(day(anchor))).toBe(label);
  });

  it('clamps a yearly anchor on February 30 to the month\'s last day', () => {
    const years = yearlyPeriods(2, 30);
    expect(isoDate(years.anchorOf(day('2028-02-28')))).toBe('2027-02-28');
    expect(isoDate(years.anchorOf(day('2028-02-29')))).toBe('2028-02-29');
    expect(years.label(day('2028-02-29'))).toBe('yearly 2028');
  });
});

/**
 * Calendar dates in a plan's time zone, and the weekly, monthly and yearly periods retention
 * counts. A date is a *day number* (days since 1970-01-01 of the local calendar date), so
 * arithmetic on dates is integer arithmetic and never meets a DST hour: only the two
 * conversions from and to instants ({@link localDay}, {@link startOfLocalDay}) look at the zone,
 * through `Intl` (the runtime's IANA database, no library).
 */
import { UserError } from '../errors.js';

/** Milliseconds in a day of 24 hours (not a calendar day: those can have 23 or 25 hours). */
export const DAY_MS = 86_400_000;

const dateFormats = new Map<string, Intl.DateTimeFormat>();

function dateFormat(timeZone: string): Intl.DateTimeFormat {
  let format = dateFormats.get(timeZone);
  if (format === undefined) {
    try {
      // Gregorian calendar and Latin digits whatever the runtime's default locale says.
      format = new Intl.DateTimeFormat('en-US', { timeZone, calendar: 'gregory', numberingSystem: 'latn', year: 'numeric', month: 'numeric', day: 'numeric' });
    } catch {
      throw new UserError(`time zone "${timeZone}" is not an IANA time zone this runtime knows; use a name such as UTC, Europe/Berlin or America/New_York`);
    }
    dateFormats.set(timeZone, format);
  }
  return format;
}

/** Throws a {@link UserError} when `timeZone` is not an IANA time zone name. */
export function checkTimeZone(timeZone: string): void {
  dateFormat(timeZone);
}

/** The day number of a calendar date (`month` 1–12). */
export function dayNumber(year: number, month: number, date: number): number {
  return Date.UTC(year, month - 1, date) / DAY_MS;
}

/** The calendar date of a day number (`month` 1–12). */
export function dateOf(day: number): { year: number; month: number; date: number } {
  const d = new Date(day * DAY_MS);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, date: d.getUTCDate() };
}

/** `2026-11-22` for a day number. */
export function isoDate(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** 0 for Sunday … 6 for Saturday (1970-01-01, day 0, was a Thursday). */
export function weekday(day: number): number {
  return (((day + 4) % 7) + 7) % 7;
}

/** Days in a month (`month` 1–12). */
export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The ISO 8601 week-year and week (Monday to Sunday, week 1 holds the year's first Thursday). */
export function isoWeek(day: number): { year: number; week: number } {
  const thursday = day - ((weekday(day) + 6) % 7) + 3;
  const year = dateOf(thursday).year;
  return { year, week: Math.floor((thursday - dayNumber(year, 1, 1)) / 7) + 1 };
}

/** The local calendar date, as a day number, of an instant (ms since the epoch) in `timeZone`. */
export function localDay(instant: number, timeZone: string): number {
  let year = 0;
  let month = 0;
  let date = 0;
  for (const part of dateFormat(timeZone).formatToParts(new Date(instant))) {
    if (part.type === 'year') year = Number(part.value);
    else if (part.type === 'month') month = Number(part.value);
    else if (part.type === 'day') date = Number(part.value);
  }
  return dayNumber(year, month, date);
}

const dayStarts = new Map<string, number>();

/**
 * The first instant of a local calendar day in `timeZone`: its midnight, or, on a day whose
 * midnight a DST change skips, the instant the day begins. Found by bisection over the
 * instants that can be that day's start (UTC offsets range from −12 h to +14 h), so it relies
 * on nothing but {@link localDay}.
 */
export function startOfLocalDay(day: number, timeZone: string): number {
  const key = `${timeZone} ${day}`;
  const cached = dayStarts.get(key);
  if (cached !== undefined) return cached;
  let before = day * DAY_MS - 15 * 3_600_000; // still the previous local day everywhere
  let atOrAfter = day * DAY_MS + 13 * 3_600_000; // already this local day everywhere
  while (atOrAfter - before > 1) {
    const middle = Math.floor((before + atOrAfter) / 2);
    if (localDay(middle, timeZone) >= day) atOrAfter = middle;
    else before = middle;
  }
  dayStarts.set(key, atOrAfter);
  return atOrAfter;
}

/**
 * A kind of retention period. Each period starts on an *anchor day*; `anchorOf` maps any day
 * to the anchor day of the period that holds it, `next` an anchor day to the next period's.
 */
export interface PeriodKind {
  /** The rule's name: `weekly`, `monthly` or `yearly`. */
  readonly rule: 'weekly' | 'monthly' | 'yearly';
  /** What one period is called in messages, plural: `weeks`, `months`, `years`. */
  readonly unit: string;
  anchorOf(day: number): number;
  next(anchor: number): number;
  /** The rule label of the period starting on `anchor`, e.g. `weekly 2026-W47`. */
  label(anchor: number): string;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** Weeks from one `dayOfWeek` (0 = Sunday) to the day before the next; labelled by ISO week. */
export function weeklyPeriods(dayOfWeek: number): PeriodKind {
  return {
    rule: 'weekly',
    unit: 'weeks',
    anchorOf: (day) => day - ((weekday(day) - dayOfWeek + 7) % 7),
    next: (anchor) => anchor + 7,
    label: (anchor) => {
      const { year, week } = isoWeek(anchor);
      return `weekly ${year}-W${pad2(week)}`;
    },
  };
}

/** A month's anchor: `dateOfMonth`, or the month's last day when the month is shorter. */
function clampedDay(year: number, month: number, dateOfMonth: number): number {
  return dayNumber(year, month, Math.min(dateOfMonth, daysInMonth(year, month)));
}

/**
 * Months from `dateOfMonth` (1–31; clamped to a shorter month's last day) to the day before
 * that date in the next month; labelled by the month the period starts in.
 */
export function monthlyPeriods(dateOfMonth: number): PeriodKind {
  const anchorIn = (year: number, month: number): number =>
    month < 1 ? clampedDay(year - 1, 12, dateOfMonth) : month > 12 ? clampedDay(year + 1, 1, dateOfMonth) : clampedDay(year, month, dateOfMonth);
  return {
    rule: 'monthly',
    unit: 'months',
    anchorOf: (day) => {
      const { year, month } = dateOf(day);
      const anchor = anchorIn(year, month);
      return day >= anchor ? anchor : anchorIn(year, month - 1);
    },
    next: (anchor) => {
      const { year, month } = dateOf(anchor);
      return anchorIn(year, month + 1);
    },
    label: (anchor) => {
      const { year, month } = dateOf(anchor);
      return `monthly ${year}-${pad2(month)}`;
    },
  };
}

/**
 * Years from day `dateOfMonth` (clamped likewise) of `month` (1–12) to the day before that
 * date a year later; labelled by the year the period starts in.
 */
export function yearlyPeriods(month: number, dateOfMonth: number): PeriodKind {
  const anchorIn = (year: number): number => clampedDay(year, month, dateOfMonth);
  return {
    rule: 'yearly',
    unit: 'years',
    anchorOf: (day) => {
      const { year } = dateOf(day);
      const anchor = anchorIn(year);
      return day >= anchor ? anchor : anchorIn(year - 1);
    },
    next: (anchor) => anchorIn(dateOf(anchor).year + 1),
    label: (anchor) => `yearly ${dateOf(anchor).year}`,
  };
}

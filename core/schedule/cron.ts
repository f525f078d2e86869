/**
 * Schedules are written as standard five-field cron (`0 2 * * *`), the notation of Kubernetes
 * CronJobs and Trilio policies. cron-parser checks them; this module translates them to the
 * six-field `cron(...)` dialect of EventBridge Scheduler, which numbers weekdays differently
 * (SUN=1) and requires `?` in one of day-of-month and day-of-week.
 */
import { CronExpressionParser } from 'cron-parser';

const WEEKDAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const;

/** What the error message shows as allowed. */
export const CRON_HINT =
  'five-field cron "minute hour day-of-month month day-of-week", e.g. "0 2 * * *" (02:00 daily)';

/**
 * Checks a five-field cron expression. Returns `undefined` when it is usable, else a message
 * that says what is wrong. Both day fields restricted is refused: classic cron ORs them, which
 * EventBridge Scheduler cannot express.
 */
export function cronProblem(expression: string): string | undefined {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5) {
    return `has ${fields.length} field${fields.length === 1 ? '' : 's'}; expected ${CRON_HINT}`;
  }
  try {
    CronExpressionParser.parse(expression);
  } catch (err) {
    return `is not valid cron (${(err as Error).message}); expected ${CRON_HINT}`;
  }
  if (fields[2] !== '*' && fields[4] !== '*') {
    return 'restricts both day-of-month and day-of-week; EventBridge Scheduler supports only one of them (set the other to *)';
  }
  return undefined;
}

/**
 * Converts a valid five-field cron expression to an EventBridge Scheduler expression,
 * e.g. `0 2 * * 1-5` → `cron(0 2 ? * MON,TUE,WED,THU,FRI *)`. Weekdays are spelled out by name
 * so the two numbering schemes can never be confused.
 */
export function toSchedulerExpression(expression: string): string {
  const problem = cronProblem(expression);
  if (problem) throw new Error(`cron "${expression}" ${problem}`);
  const [minute, hour, dayOfMonth, month, dayOfWeek] = expression.trim().split(/\s+/) as [string, string, string, string, string];
  if (dayOfWeek === '*') {
    return `cron(${minute} ${hour} ${dayOfMonth} ${month} ? *)`;
  }
  const days = CronExpressionParser.parse(expression).fields.dayOfWeek.values as readonly number[];
  const names = [...new Set(days.map((d) => WEEKDAY_NAMES[d % 7]))];
  return `cron(${minute} ${hour} ? ${month} ${names.join(',')} *)`;
}

/** True when `zone` is an IANA time zone this runtime knows (e.g. `Europe/Berlin`, `UTC`). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

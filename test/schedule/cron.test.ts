import { describe, expect, it } from '@jest/globals';
import { cronProblem, toSchedulerExpression } from '../../core/schedule/cron.js';

describe('toSchedulerExpression', () => {
  it('puts ? in day-of-week for a daily schedule', () => {
    expect(toSchedulerExpression('0 2 * * *')).toBe('cron(0 2 * * ? *)');
  });

  it('spells weekdays by name so Sunday=0 in cron never becomes Monday in EventBridge', () => {
    expect(toSchedulerExpression('0 6 * * 0')).toBe('cron(0 6 ? * SUN *)');
    expect(toSchedulerExpression('30 1 * * 1-5')).toBe('cron(30 1 ? * MON,TUE,WED,THU,FRI *)');
  });
});

describe('cronProblem', () => {
  it.each([
    ['0 2 * *', /has 4 fields/],
    ['61 2 * * *', /not valid cron/],
    ['0 2 1 * 1', /both day-of-month and day-of-week/],
  ])('rejects %s', (expression, message) => {
    expect(cronProblem(expression)).toMatch(message);
  });

  it('accepts a standard expression', () => {
    expect(cronProblem('0 2 * * *')).toBeUndefined();
  });
});

import { describe, expect, it } from '@jest/globals';
import { ruleSum, steadyStateCopies } from '../../core/cost/full-copies.js';

const NOW = new Date('2026-11-30T02:00:00Z');
const SEED = { latest: 7, weekly: 4, dayOfWeek: 'Sunday', monthly: 12, dateOfMonth: 1, yearly: 2, monthOfYear: 'January', maxAgeDays: 730 } as const;

describe('steadyStateCopies', () => {
  it('counts the distinct backups the retention calculator keeps, fewer than the rule counts added up', () => {
    const copies = steadyStateCopies(SEED, NOW, { timeZone: 'UTC', schedule: { cron: ['0 2 * * *'], timeZone: 'UTC' } });
    expect(ruleSum(SEED)).toBe(25);
    expect(copies).toBe(23);
  });

  it('keeps exactly latest N when the policy has only a latest rule', () => {
    expect(steadyStateCopies({ latest: 7 }, NOW, { timeZone: 'UTC' })).toBe(7);
  });
});

import { describe, expect, it } from '@jest/globals';
import { fullCopyCost, GIB, ruleSum, steadyStateCopies, steadyStateTiers } from '../../core/cost/full-copies.js';

const NOW = new Date('2026-11-30T02:00:00Z');
const DAILY = { cron: ['0 2 * * *'], timeZone: 'UTC' };
const SEED = { latest: 7, weekly: 4, dayOfWeek: 'Sunday', monthly: 12, dateOfMonth: 1, yearly: 2, monthOfYear: 'January', maxAgeDays: 730 } as const;
/** The seed blog's policy: 7 daily + 4 weekly + 12 monthly. */
const BLOG = { latest: 7, weekly: 4, dayOfWeek: 'Sunday', monthly: 12, dateOfMonth: 1 } as const;
const TB = 10 ** 12;
const TIB = 1024 * GIB;

describe('steadyStateCopies', () => {
  it('counts the distinct backups the retention calculator keeps, fewer than the rule counts added up', () => {
    const copies = steadyStateCopies(SEED, NOW, { timeZone: 'UTC', schedule: DAILY });
    expect(ruleSum(SEED)).toBe(25);
    expect(copies).toBe(23);
  });

  it('keeps exactly latest N when the policy has only a latest rule', () => {
    expect(steadyStateCopies({ latest: 7 }, NOW, { timeZone: 'UTC' })).toBe(7);
  });
});

describe('steadyStateTiers', () => {
  it('counts each kept backup once, under the first rule that keeps it: a Sunday among the latest 7 is not a weekly copy too, nor January 1 a yearly one', () => {
    expect(steadyStateTiers(SEED, NOW, { timeZone: 'UTC', schedule: DAILY })).toEqual([
      { tier: 'latest', rule: 7, copies: 7 },
      { tier: 'weekly', rule: 4, copies: 3 },
      { tier: 'monthly', rule: 12, copies: 12 },
      { tier: 'yearly', rule: 2, copies: 1 },
    ]);
  });

  it('counts the newest backup, which no rule keeps, on its own', () => {
    expect(steadyStateTiers({ weekly: 2, dayOfWeek: 'Sunday' }, NOW, { timeZone: 'UTC', schedule: DAILY })).toEqual([
      { tier: 'weekly', rule: 2, copies: 2 },
      { tier: 'newest', copies: 1 },
    ]);
  });
});

describe('fullCopyCost', () => {
  it('is copies × size in GB of 2^30 bytes × the price per GB-month', () => {
    expect(fullCopyCost(23, TIB, 0.023)).toEqual({ bytes: 23 * TIB, gb: 23_552, monthlyUsd: expect.closeTo(541.696, 6) });
  });
});

describe("the seed blog's model: 7 daily + 4 weekly + 12 monthly full copies of a 1 TB cluster ≈ 17.4 TB ≈ $400/month on S3 Standard", () => {
  it('prices 17.4 TB at $400.20 a month at $0.023 per GB, counting 1,000 GB to the TB', () => {
    expect(fullCopyCost(1, 17.4 * TB, 0.023, 10 ** 9).monthlyUsd).toBeCloseTo(400.2, 6);
    // In S3's binary GB, 17.4 TiB would be $409.81: still "≈ $400".
    expect(fullCopyCost(1, 17.4 * TIB, 0.023).monthlyUsd).toBeCloseTo(409.805, 3);
  });

  it('cannot get 17.4 TB from its own inputs: 23 full copies of 1 TB are 23 TB, $529 a month (23 TiB: $541.70)', () => {
    expect(ruleSum(BLOG)).toBe(23);
    expect(fullCopyCost(ruleSum(BLOG), TB, 0.023, 10 ** 9)).toEqual({ bytes: 23 * TB, gb: 23_000, monthlyUsd: expect.closeTo(529, 6) });
    expect(fullCopyCost(ruleSum(BLOG), TIB, 0.023).monthlyUsd).toBeCloseTo(541.696, 3);
  });

  it('gets 17.4 TB, and $400.20, if the 7 dailies are incrementals of 20% beside 16 full copies (16 + 7 × 0.2): a reading the blog does not state', () => {
    const full = fullCopyCost(BLOG.weekly + BLOG.monthly, TB, 0.023, 10 ** 9);
    const dailies = fullCopyCost(BLOG.latest, 0.2 * TB, 0.023, 10 ** 9);
    expect((full.bytes + dailies.bytes) / TB).toBeCloseTo(17.4, 9);
    expect(full.monthlyUsd + dailies.monthlyUsd).toBeCloseTo(400.2, 6);
  });

  it('is, in our model, 22 full copies of a 1 TiB backup at a daily schedule: 22 TiB, $518.14 a month in us-east-1', () => {
    const tiers = steadyStateTiers(BLOG, NOW, { timeZone: 'UTC', schedule: DAILY });
    expect(tiers.map((t) => [t.tier, t.copies])).toEqual([
      ['latest', 7],
      ['weekly', 3],
      ['monthly', 12],
    ]);
    const copies = tiers.reduce((n, t) => n + t.copies, 0);
    expect(fullCopyCost(copies, TIB, 0.023)).toEqual({ bytes: 22 * TIB, gb: 22_528, monthlyUsd: expect.closeTo(518.144, 3) });
  });
});

/**
 * The smoke slice of the simulated year (bench/retention.ts; `npm run bench:retention` is the
 * long one): a few days on a tiny MinIO-shaped dataset, with the seed's policy, a fixed clock,
 * retention and garbage collection after every backup. It asserts what the benchmark exits 1
 * on (the vault verifies, every kept backup restores byte-exact) and that the report's measures
 * are computed; the targets themselves are the long run's to report.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { formatReport, runRetentionBench, type RetentionBenchReport } from '../../bench/retention.js';

describe('simulated retention history (smoke)', () => {
  let report: RetentionBenchReport;

  beforeAll(async () => {
    // 10 daily backups from Friday 2027-01-01: the first expiries come on day 9 (latest 7).
    report = await runRetentionBench({ days: 10, seed: 7, churn: 0.05, sizeMiB: 2 });
  }, 60_000);

  it('verifies the vault and restores every kept backup byte-exact', () => {
    expect({ verify: report.checks.verifyProblems, restores: report.checks.restoreFailures }).toEqual({ verify: [], restores: [] });
    expect(report.checks.restored).toBe(report.backups.kept);
  });

  it('expires what the seed policy no longer keeps', () => {
    expect(report.backups.taken).toBe(10);
    expect(report.backups.expired).toBeGreaterThan(0);
    expect(report.backups.kept + report.backups.expired).toBe(10);
  });

  it('measures the vault against the minimum and against full copies', () => {
    expect(report.minimumBytes).toBeGreaterThan(0);
    expect(report.vault.packBytes).toBeGreaterThanOrEqual(report.minimumBytes);
    expect(report.overMinimum).toBeCloseTo(report.vault.totalBytes / report.minimumBytes, 6);
    expect(report.savingVsFull).toBeCloseTo(report.fullCopiesBytes / report.vault.totalBytes, 6);
    expect(report.requests.total.PutObject).toBeGreaterThan(0);
    expect(formatReport(report)).toContain('vault / minimum');
  });
});

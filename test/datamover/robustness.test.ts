/**
 * The fast slice of the robustness run (bench/robustness.ts; `npm run robustness` is the long
 * one): a fixed seed, a short random sequence of backups, mutations, restores, vault damage and
 * killed data movers, over a file:// vault and over s3rver behind a proxy that injects S3
 * faults (among them failed parts of multipart uploads). Every backup must restore byte-exact or be reported broken by verify.
 */
import { describe, expect, it } from '@jest/globals';
import { formatTable, runRobustness, type RobustnessReport } from '../../bench/robustness.js';

const total = (report: RobustnessReport, column: 'passed' | 'broken' | 'silentlyWrong' | 'unreported' | 'crashed'): number => report.rows.reduce((n, r) => n + r[column], 0);

/** The defects, with the table, so a failure shows what went wrong and how to replay it. */
const explain = (report: RobustnessReport): string => `seed ${report.seed}, ${report.vault}\n${formatTable(report)}\n${report.defects.join('\n')}`;

describe('robustness run', () => {
  it('over a file:// vault, no backup is ever silently wrong and nothing crashes', async () => {
    // Seed 1's first 22 operations include four kinds of damage and killed backups and restores.
    const report = await runRobustness({ seed: 1, operations: 22, vault: 'file' });

    expect({ silentlyWrong: total(report, 'silentlyWrong'), unreported: total(report, 'unreported'), crashed: total(report, 'crashed'), why: explain(report) }).toEqual({ silentlyWrong: 0, unreported: 0, crashed: 0, why: expect.any(String) });
    expect(total(report, 'passed')).toBeGreaterThan(0);
    expect(report.rows.find((r) => r.op === 'kill-backup')!.count + report.rows.find((r) => r.op === 'kill-restore')!.count).toBeGreaterThan(0);
    expect(report.rows.find((r) => r.op === 'damage')!.count).toBeGreaterThan(0);
  });

  it('over S3 with injected SlowDown, 500s, reset connections and failed multipart parts, no backup is ever silently wrong', async () => {
    const report = await runRobustness({ seed: 7, operations: 10, vault: 's3', faultRate: 0.08 });

    expect({ silentlyWrong: total(report, 'silentlyWrong'), unreported: total(report, 'unreported'), crashed: total(report, 'crashed'), why: explain(report) }).toEqual({ silentlyWrong: 0, unreported: 0, crashed: 0, why: expect.any(String) });
    expect(Object.values(report.faults).reduce((n, c) => n + c, 0)).toBeGreaterThan(0);
    // Backups over S3 use the smallest part size and the tree holds a file above it.
    expect(report.faults['multipart part']).toBeGreaterThan(0);
  });
});

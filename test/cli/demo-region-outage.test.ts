import { describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { registerDemoCommands, type DemoIO } from '../../cli/commands/demo.js';
import type { RegionOutageSummary } from '../../cli/commands/demo-region-outage.js';

// The region-outage scenario end to end, as a user runs it: two local clusters, replication,
// the primary region taken down, failover into the DR region, validation.

function captured(): DemoIO & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (t) => void stdout.push(t), err: (t) => void stderr.push(t), clock: () => performance.now(), onInterrupt: () => () => undefined };
}

describe('demo --scenario region-outage', () => {
  it('backs up, replicates, takes the primary region down, fails over into the DR region and validates: exit 0 and the summary as JSON', async () => {
    const io = captured();
    const program = new Command('milvus-guard').exitOverride();
    registerDemoCommands(program, io);
    process.exitCode = undefined;
    try {
      await program.parseAsync(['node', 'milvus-guard', 'demo', '--scenario', 'region-outage', '--json']);
      const code = process.exitCode;

      const summary = JSON.parse(io.stdout.join('')) as RegionOutageSummary;
      expect({ code, reason: summary.reason }).toEqual({ code: 0, reason: undefined });
      expect(summary).toMatchObject({
        scenario: 'region-outage',
        backup: { status: 'Available', region: 'us-east-1' },
        outage: { region: 'us-east-1', clusterStopped: true, vaultUnreachable: true },
        failover: { status: 'Completed', region: 'us-west-2', backupId: summary.backup.id },
        passed: true,
      });
      expect(summary.collections.length).toBe(3);
      for (const c of summary.collections) {
        // Counted by get_stats when not loaded at backup (deleted rows included), and released again
        // after validation as at the source: served is its get_stats count, the same rows.
        const released = c.countedBy === 'stats' ? { released: true } : {};
        expect(c).toEqual({ name: c.name, expected: c.expected, restored: c.expected, served: c.expected, countedBy: c.countedBy, ...released, ok: true });
        expect(c.served).toBeLessThanOrEqual(c.expected);
      }
      expect(summary.collections.filter((c) => c.countedBy === 'count').length).toBeGreaterThan(0);
      expect(summary.rpoSeconds).toBeGreaterThan(0);
      expect(summary.rtoSeconds).toBeGreaterThan(0);
      // Progress went to stderr, in the order of the story.
      const phases = io.stderr.join('').match(/^\[\s*[\d.]+s\] (\S+)/gm)!.map((l) => l.replace(/^\[\s*[\d.]+s\] /, ''));
      expect([...new Set(phases)]).toEqual(['regions', 'backup', 'replicate', 'outage', 'failover', 'validate']);
    } finally {
      process.exitCode = undefined;
    }
  });
});

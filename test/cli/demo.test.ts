import { describe, expect, it } from '@jest/globals';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { DemoInterruptedError, registerDemoCommands, renderDemoSummary, runDemo, type DemoIO, type DemoSummary } from '../../cli/commands/demo.js';

/** Output captured; `interruptWhen` fires the interrupt handler on the first stderr line matching it. */
function demoIO(interruptWhen?: RegExp): DemoIO & { out: (t: string) => void; stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  let handler: ((signal: string) => void) | undefined;
  return {
    stdout,
    stderr,
    out: (t) => void stdout.push(t),
    err: (t) => {
      stderr.push(t);
      if (interruptWhen && handler && interruptWhen.test(t)) {
        const h = handler;
        handler = undefined;
        h('SIGINT');
      }
    },
    clock: () => performance.now(),
    onInterrupt: (h) => {
      handler = h;
      return () => (handler = undefined);
    },
  };
}

async function runCli(io: DemoIO, ...args: string[]): Promise<number> {
  process.exitCode = undefined;
  const program = new Command('milvus-guard').exitOverride();
  registerDemoCommands(program, io);
  try {
    await program.parseAsync(['node', 'milvus-guard', 'demo', ...args]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } finally {
    process.exitCode = undefined;
  }
}

const summary: DemoSummary = {
  backup: { id: 'milvus-production-backup-20261124015548', status: 'Available', sizeBytes: 5_033_164, durationSeconds: 12.5 },
  disaster: { namespace: 'vector-db', deleted: true, milvusAnswers: false, probe: 'answered 404: services "production-milvus-milvus" not found' },
  restore: { id: 'milvus-production-backup-20261124015548-r20261124015650', status: 'Completed', namespace: 'vector-db-dr', source: 'vault' },
  collections: [
    { name: 'default.product_embeddings', expected: 19726, restored: 19726, served: 19726, searchHits: 3, ok: true },
    { name: 'analytics.session_vectors', expected: 24803, restored: 24000, served: 24000, searchHits: 3, ok: false },
  ],
  bytesUploaded: 5_095_472,
  rtoSeconds: 14.2,
  passed: false,
  reason: 'row counts differ: analytics.session_vectors expected 24803, restored 24000, served 24000',
  elapsedSeconds: 31.4,
  stateDir: '/var/tmp/demo',
};

describe('demo summary', () => {
  it('leads with the verdict and its reason', () => {
    expect(renderDemoSummary(summary).split('\n')[0]).toBe('milvus-guard demo: FAILED (row counts differ: analytics.session_vectors expected 24803, restored 24000, served 24000)');
  });

  it('shows bytes uploaded, RTO and expected vs restored per collection', () => {
    const text = renderDemoSummary(summary);

    expect(text).toMatch(/Bytes uploaded:\s+4\.9MiB \(5095472 bytes\)/);
    expect(text).toMatch(/RTO:\s+14\.2s/);
    expect(text).toMatch(/analytics\.session_vectors\s+24803\s+24000\s+24000\s+3\s+NO/);
  });

  it('says why a collection counted by get_stats at backup serves fewer live rows', () => {
    const text = renderDemoSummary({ ...summary, collections: [{ name: 'analytics.session_vectors', expected: 25000, restored: 25000, served: 24803, countedBy: 'stats', ok: true }] });

    expect(text).toContain('analytics.session_vectors: not loaded at backup, so counted by get_stats (deleted rows included) and checked the same way after the restore; SERVED is its live count(*).');
  });

  it('says that a collection released again as at the source is served by its get_stats count', () => {
    const text = renderDemoSummary({ ...summary, collections: [{ name: 'analytics.session_vectors', expected: 25000, restored: 25000, served: 25000, countedBy: 'stats', released: true, ok: true }] });

    expect(text).toContain(
      'analytics.session_vectors: not loaded at backup, so counted by get_stats (deleted rows included) and checked the same way after the restore, loaded for the check and released again, as at the source; SERVED is its get_stats count.',
    );
    expect(text).not.toContain('live count(*)');
  });

  it('says how to inspect a kept state directory', () => {
    const text = renderDemoSummary(summary);

    expect(text).toContain('milvus-guard local up --state /var/tmp/demo');
    expect(text).toContain('kubectl --kubeconfig /var/tmp/demo/kubeconfig get milvus,pods,pvc -n vector-db-dr');
  });
});

describe('demo', () => {
  it('refuses a --keep directory that is not empty, before starting anything', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-demo-keep-'));
    writeFileSync(join(dir, 'something'), 'x');
    try {
      await expect(runCli(demoIO(), '--keep', dir)).rejects.toThrow(/is not empty; the demo seeds a fresh cluster/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a --milvus-version a backup refuses, before starting anything, and says how to try it', async () => {
    await expect(runCli(demoIO(), '--milvus-version', 'v2.4.17')).rejects.toThrow(
      '--milvus-version v2.4.17: Milvus v2.4.17 cannot list its databases through REST v2 (databases/list exists from 2.4.18), and a backup must flush and count the collections of every database; upgrade Milvus to 2.4.18 or later; the demo backs it up (milvus-guard local up --milvus-version seeds it to try)',
    );
  });

  it('stops the cluster and removes its state directory when interrupted', async () => {
    const io = demoIO(/backup\s+Discover/);

    await expect(runDemo({ io })).rejects.toThrow(DemoInterruptedError);

    const stateDir = /\(state: (.+)\)/.exec(io.stderr[0]!)![1]!;
    expect(existsSync(stateDir)).toBe(false);
  }, 60_000);

  it('backs up, destroys, restores and validates the seeded Milvus, and prints exactly one JSON summary', async () => {
    const io = demoIO();

    const code = await runCli(io, '--json');

    expect(io.stdout).toHaveLength(1);
    const json = JSON.parse(io.stdout[0]!) as DemoSummary;
    expect(json).toMatchObject({ backup: { status: 'Available' }, restore: { status: 'Completed', namespace: 'vector-db-dr', source: 'vault' }, passed: true, disaster: { deleted: true, milvusAnswers: false } });
    expect(json.backup.id).toMatch(/^milvus-production-backup-/);
    expect(json.restore.id).toMatch(/^milvus-production-backup-.+-r\d{14}$/);
    expect(json.collections.map((c) => c.name).sort()).toEqual(['analytics.session_vectors', 'default.product_embeddings', 'default.user_profiles']);
    for (const c of json.collections) {
      expect(c.expected).toBeGreaterThan(0);
      expect(c.restored).toBe(c.expected);
      // A collection not loaded at backup was counted by get_stats, deleted rows included.
      if (c.countedBy === 'stats') expect(c.served).toBeLessThanOrEqual(c.expected);
      else expect(c.served).toBe(c.expected);
    }
    expect(json.bytesUploaded).toBeGreaterThan(0);
    expect(json.rtoSeconds).toBeGreaterThan(0);
    expect(code).toBe(0);
    // Progress went to stderr, a line per phase and per workflow state; the temporary state is gone.
    expect(io.stderr.some((l) => /disaster\s+namespace vector-db is gone/.test(l))).toBe(true);
    expect(io.stderr.some((l) => /restore\s+Validate/.test(l))).toBe(true);
    expect(existsSync(/\(state: (.+)\)/.exec(io.stderr[0]!)![1]!)).toBe(false);
  }, 300_000);
});

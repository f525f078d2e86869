import { describe, expect, it } from '@jest/globals';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { RESTORE_STEPS, RestoreRecord, type RestoreRecordInput, type StepEntry } from '../../core/catalog/record.js';
import { dataMoverSeconds, peakHydrations, RESTORE_PHASES, restorePhases } from '../../core/restore/phases.js';
import { verifyBackupStep } from '../../core/restore/workflow.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import type { PreparedRestore } from '../../core/workflow/restore-state.js';

// The RTO's phases, derived from the step timeline (core/restore/phases.ts): contiguous from the
// request, so a completed restore's phases add up to its RTO.

const T0 = Date.parse('2026-11-23T10:00:00.000Z');
/** The time `s` seconds after the request. */
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const step = (from: number, to?: number, outcome: StepEntry['outcome'] = 'Succeeded'): StepEntry => ({ startedAt: at(from), ...(to === undefined ? {} : { endedAt: at(to), outcome }) });

function record(over: Partial<RestoreRecordInput> = {}): RestoreRecord {
  return RestoreRecord.parse({
    restoreId: 'nightly-1-r1',
    backupId: 'nightly-1',
    plan: 'milvus-production-backup',
    source: 'vault',
    sourceCluster: 'prod',
    sourceNamespace: 'vector-db',
    targetCluster: 'prod',
    targetNamespace: 'vector-db-dr',
    executionId: 'arn:aws:states:local:000000000000:execution:milvus-guard-restore:r1',
    status: 'InProgress',
    requestedAt: at(0),
    ...over,
  });
}

/** A restore that completed 100 s after its request, each step taking the seconds given. */
const completed = () =>
  record({
    status: 'Completed',
    completedAt: at(100),
    rtoSeconds: 100,
    steps: {
      Prepare: step(0, 1),
      Verify: step(1, 4),
      Thaw: step(4, 4),
      Namespace: step(4, 5),
      Volumes: step(5, 70),
      // A gap before the readiness loop's first poll (a Wait came first in restores recorded before it checked first): 72 → 80.
      Manifests: step(71, 72),
      Readiness: step(80, 90),
      Validate: step(90, 99),
      Complete: step(100, 100.5),
    },
  });

describe('restore phases', () => {
  it('puts every timeline step of the restore workflow in exactly one phase', () => {
    const placed = RESTORE_PHASES.flatMap((p) => [...p.steps]);

    expect([...placed].sort()).toEqual([...RESTORE_STEPS].sort());
  });

  it('makes phases contiguous from the request, so a completed restore\'s add up to its RTO', () => {
    const phases = restorePhases(completed());

    expect(phases.map((p) => [p.phase, p.seconds])).toEqual([
      ['prepare', 4],
      ['thaw', 0],
      ['hydration', 66],
      ['manifests', 2],
      ['readiness', 18],
      ['validation', 10],
    ]);
    expect(phases.reduce((sum, p) => sum + p.seconds!, 0)).toBe(100);
    for (let i = 1; i < phases.length; i++) expect(phases[i]!.startedAt).toBe(phases[i - 1]!.endedAt);
  });

  it('counts a gap before a phase\'s first step in that phase', () => {
    const readiness = restorePhases(completed()).find((p) => p.phase === 'readiness')!;

    expect(readiness).toEqual({ phase: 'readiness', startedAt: at(72), endedAt: at(90), seconds: 18, outcome: 'Succeeded' });
  });

  it('leaves the running phase open and shows nothing after it', () => {
    const phases = restorePhases(record({ steps: { Prepare: step(0, 1), Verify: step(1, 3), Thaw: step(3, 3), Namespace: step(3, 4), Volumes: step(4) } }));

    expect(phases.at(-1)).toEqual({ phase: 'hydration', startedAt: at(3) });
    expect(phases.map((p) => p.phase)).toEqual(['prepare', 'thaw', 'hydration']);
  });

  it('opens a phase again when a later step of it starts (bucket objects after the volumes)', () => {
    const steps = { Prepare: step(0, 1), Verify: step(1, 2), Namespace: step(2, 3), Volumes: step(3, 50) };

    expect(restorePhases(record({ steps })).at(-1)).toMatchObject({ phase: 'hydration', endedAt: at(50) });
    expect(restorePhases(record({ steps: { ...steps, Objects: step(50) } })).at(-1)).toEqual({ phase: 'hydration', startedAt: at(2) });
  });

  it('ends a phase Failed where its step failed', () => {
    const phases = restorePhases(record({ status: 'Failed', completedAt: at(80), steps: { Prepare: step(0, 1), Verify: step(1, 2), Namespace: step(2, 3), Volumes: step(3, 40, 'Failed') } }));

    expect(phases.at(-1)).toEqual({ phase: 'hydration', startedAt: at(2), endedAt: at(40), seconds: 38, outcome: 'Failed' });
  });
});

describe("the data mover's share", () => {
  const run = (from: number, to: number) => ({ dataMover: { startedAt: at(from), endedAt: at(to), files: 1, bytes: 1 } });

  it('counts parallel hydrations once: the time at least one data mover ran', () => {
    expect(dataMoverSeconds([run(10, 40), run(12, 30), run(45, 50), {}])).toBe(35);
  });

  it('has none when no volume recorded a run (a snapshot restore)', () => {
    expect(dataMoverSeconds([{}, {}])).toBeUndefined();
  });

  it('finds how many hydrations ran at once; back-to-back runs are not concurrent', () => {
    expect(peakHydrations([run(10, 40), run(12, 30), run(20, 25), run(40, 50)])).toBe(3);
    expect(peakHydrations([run(0, 10), run(10, 20)])).toBe(1);
  });
});

describe('recording the phases as the workflow runs', () => {
  it('writes the phases into the record when a step ends, on the steps\' clock', async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createRestore({ ...record(), steps: { Prepare: step(0, 2) } });
    const restore = { restoreId: 'nightly-1-r1', backupId: 'nightly-1' } as PreparedRestore;
    let clock = 5;

    // The backup is not in the vault: Verify fails, 5 s after the request.
    await expect(verifyBackupStep({ catalog, vault: new InMemoryVaultStore('memory://vault'), now: () => new Date(T0 + clock++ * 1000) }, restore)).rejects.toThrow();

    const phases = (await catalog.getRestore('nightly-1-r1'))!.phases;
    expect(phases).toEqual([{ phase: 'prepare', startedAt: at(0), endedAt: at(6), seconds: 6, outcome: 'Failed' }]);
  });
});

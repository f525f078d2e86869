import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FAULTS, runCell, startMatrixCluster, type Cell, type CellResult, type MatrixCluster } from '../../bench/fault-matrix.js';

// A fast slice of the workflow fault matrix (npm run faults:matrix): six representative cells,
// run through the same cell runner on one seeded local cluster — four Kubernetes faults on its
// file:// vault, two S3 faults on s3rver behind the faulty proxy. Each cell must leave no object
// behind, free the plan lock and, when it fails, name its error, Task and cause.

const CELLS: readonly Cell[] = [
  { fault: 'kube-500-once', workflow: 'backup', step: 'Discover' },
  { fault: 'kube-500-always', workflow: 'backup', step: 'StartExport' },
  { fault: 'job-fails', workflow: 'backup', step: 'CheckExport' },
  { fault: 'job-fails', workflow: 'restore', step: 'CheckVolumes' },
  { fault: 's3-denied', workflow: 'backup', step: 'Discover' },
  { fault: 's3-slowdown-once', workflow: 'backup', step: 'Capture' },
];

let m: MatrixCluster;
const results = new Map<string, CellResult>();
const result = (fault: Cell['fault'], workflow: Cell['workflow']): CellResult => [...results.values()].find((r) => r.fault === fault && r.workflow === workflow)!;

beforeAll(async () => {
  m = await startMatrixCluster();
  for (const cell of CELLS) results.set(`${cell.fault}/${cell.workflow}/${cell.step}`, await runCell(m, cell));
}, 240_000);

afterAll(async () => {
  await m?.dispose();
});

describe('the workflow fault matrix', () => {
  it.each(CELLS.map((c) => [`${c.fault} × ${c.workflow} ${c.step}`, c] as const))('%s leaves no object behind and frees the plan lock', (_label, cell) => {
    const r = results.get(`${cell.fault}/${cell.workflow}/${cell.step}`)!;
    expect(r.leftovers).toEqual([]);
    expect(r.lockHeldBy).toBeUndefined();
  });

  it.each(CELLS.filter((c) => !FAULTS[c.fault].recovers).map((c) => [`${c.fault} × ${c.workflow} ${c.step}`, c] as const))('%s fails naming its error, a Task and the cause', (_label, cell) => {
    const r = results.get(`${cell.fault}/${cell.workflow}/${cell.step}`)!;
    expect(r.outcome).toBe('Failed');
    expect(r.failure?.error).toBeTruthy();
    expect(r.failure?.state).toBeTruthy();
    expect(r.failure?.cause.trim()).toBeTruthy();
  });

  it('retries a Kubernetes 500 once and ends Available', () => {
    const r = result('kube-500-once', 'backup');
    expect(r.faultHits).toBe(1);
    expect(r.outcome).toBe('Available');
  });

  it('fails a backup whose Job creation always answers 500 at StartExport, naming the call', () => {
    const r = result('kube-500-always', 'backup');
    expect(r.outcome).toBe('Failed');
    expect(r.failure).toMatchObject({ error: 'KubernetesTransientError', state: 'StartExport', step: 'Export', from: 'record' });
    expect(r.failure?.cause).toMatch(/create Job vector-db\/export-\w+ answered 500/);
  });

  // Map iterations still in flight record their starts in the Export step after CheckExport
  // failed there; the record keeps the Task that failed (failedState) all the same.
  it('fails a backup whose export Jobs fail at CheckExport, naming the PVC and the Job', () => {
    const r = result('job-fails', 'backup');
    expect(r.outcome).toBe('Failed');
    expect(r.failure).toMatchObject({ error: 'ExportFailed', state: 'CheckExport', step: 'Export', from: 'record' });
    expect(r.failure?.cause).toMatch(/the export of PVC \S+ failed: Job export-\w+ failed/);
  });

  it('fails a restore whose hydration Jobs fail at CheckVolumes, naming the PVC and the Job', () => {
    const r = result('job-fails', 'restore');
    expect(r.outcome).toBe('Failed');
    expect(r.failure).toMatchObject({ error: 'VolumeHydrationFailed', state: 'CheckVolumes', step: 'Volumes', from: 'record' });
    expect(r.failure?.cause).toMatch(/PVC \S+ failed: Job hydrate-\w+/);
  });

  it('retries an S3 SlowDown in Capture through the SDK and ends Available', () => {
    const r = result('s3-slowdown-once', 'backup');
    expect(r.faultHits).toBe(1);
    expect(r.outcome).toBe('Available');
  });

  // Not retried: a missing permission does not pass. (The data mover's side of the same fault,
  // one line naming the vault, is pinned in test/datamover/s3-vault.test.ts.)
  it('fails a backup whose vault refuses the inventory write at Discover, naming the S3 error and the Task', () => {
    const r = result('s3-denied', 'backup');
    expect(r.faultHits).toBe(1);
    expect(r.failure).toMatchObject({ error: 'AccessDenied', state: 'Discover', from: 'record' });
    expect(r.failure?.cause).toMatch(/^Access Denied/);
  });
});

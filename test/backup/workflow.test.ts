import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { CoreV1Api, BatchV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { BackupRecord } from '../../core/catalog/record.js';
import { readVolumeSummary } from '../../core/datamover/summary.js';
import { IndexReader } from '../../core/datamover/index-format.js';
import { backupVolume } from '../../core/datamover/backup.js';
import { volumeIndexKey } from '../../core/vault/layout.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MilvusClient } from '../../core/milvus/client.js';
import type { Config } from '../../core/config/schema.js';
import type { TimelineEvent } from '../../local/timeline.js';
import type { LocalBackupResult } from '../../local/workflows/runner.js';
import { action, backup, configWithHooks, MILVUS, NAMESPACE, PLAN, servicesOf, startSeededCluster, type SeededCluster } from './helpers.js';

// The real statemachines/backup.asl.json run by aws-local-stepfunctions, every Task mapped to
// its real Lambda handler, against the local cluster over HTTPS: Milvus through the service
// proxy, hooks over the exec WebSocket, VolumeSnapshots, clone PVCs and data-mover Jobs that
// run the real data mover into a file:// vault.

const FULL_RUN = 180_000;

let c: SeededCluster;
let config: Config;
let core: CoreV1Api;
let batch: BatchV1Api;
let custom: CustomObjectsApi;
let kc: KubeConfig;

beforeAll(async () => {
  c = await startSeededCluster();
  config = await configWithHooks({ pre: action(['sh', '-c', 'echo quiesced; sync']), post: action(['sh', '-c', 'echo resumed']) });
  kc = new KubeConfig();
  kc.loadFromFile(c.cluster.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  batch = kc.makeApiClient(BatchV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
}, 60_000);

afterAll(async () => {
  await c?.dispose();
});

beforeEach(() => {
  c.cluster.faults.clear();
  c.cluster.milvus.get(NAMESPACE, MILVUS)!.faults = {};
  c.cluster.timeline.clear();
});

const record = async (backupId: string): Promise<BackupRecord> => (await servicesOf(c, config).catalog.getBackup(backupId))!;
const snapshotsOf = async (backupId: string) =>
  ((await custom.listNamespacedCustomObject({ group: 'snapshot.storage.k8s.io', version: 'v1', namespace: NAMESPACE, plural: 'volumesnapshots', labelSelector: `milvus-guard.io/backup=${backupId}` })) as { items: { status?: { readyToUse?: boolean } }[] }).items;
const exportObjectsOf = async (backupId: string) => {
  const selector = `milvus-guard.io/backup=${backupId},milvus-guard.io/purpose=export`;
  const jobs = await batch.listNamespacedJob({ namespace: NAMESPACE, labelSelector: selector });
  const pvcs = await core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE, labelSelector: selector });
  return [...jobs.items, ...pvcs.items].map((o) => o.metadata!.name);
};
const gcPaused = () => c.cluster.milvus.get(NAMESPACE, MILVUS)!.gcState().paused;
const execs = (text: string) => c.cluster.timeline.events.filter((e) => e.type === 'PodExec' && JSON.stringify(e.detail).includes(text));

describe('a backup that succeeds', () => {
  let result: LocalBackupResult;
  let events: TimelineEvent[];

  beforeAll(async () => {
    await core.createNamespacedSecret({
      namespace: NAMESPACE,
      body: { metadata: { name: 'milvus-root', labels: { 'app.kubernetes.io/instance': MILVUS } }, data: { password: Buffer.from('hunter2-root').toString('base64') } },
    });
    c.cluster.timeline.clear();
    result = await backup(c, config, { backupName: 'nightly-1' });
    events = [...c.cluster.timeline.events];
  }, FULL_RUN);

  it('ends Available with sizes, duration and every volume exported', async () => {
    expect(result.status).toBe('SUCCEEDED');
    const r = await record('nightly-1');
    expect(r.status).toBe('Available');
    expect(r.sizeBytes).toBeGreaterThan(0);
    expect(r.durationSeconds).toBeGreaterThan(0);
    expect(r.components.map((x) => `${x.pvc}:${x.status}`)).toEqual([
      'data-production-milvus-etcd-0:Exported',
      'data-production-milvus-etcd-1:Exported',
      'data-production-milvus-etcd-2:Exported',
      'export-production-milvus-minio-0:Exported',
      'export-production-milvus-minio-1:Exported',
      'export-production-milvus-minio-2:Exported',
      'export-production-milvus-minio-3:Exported',
    ]);
  });

  it("says in Discover's timeline line which queue Milvus writes to and where it keeps its data", async () => {
    const r = await record('nightly-1');
    // The seeded Milvus writes to an external Kafka (Amazon MSK): nothing of it is on a volume here.
    expect(r.steps.Discover?.detail).toMatch(/^\d+ resources, 7 volumes; queue kafka \(external\)$/);
  });

  it('records the row count of every collection, as Milvus counts it after the flush', async () => {
    const r = await record('nightly-1');
    expect(r.rowCounts.map((x) => `${x.database}.${x.collection}`).sort()).toEqual(['analytics.session_vectors', 'default.product_embeddings', 'default.user_profiles']);
    expect(r.rowCounts.every((x) => x.rows > 0)).toBe(true);
  });

  it("confirms the flush of collections with deletes, whose get_stats still counts the deleted rows, and records their live count(*)", async () => {
    const r = await record('nightly-1');
    const milvus = new MilvusClient(kc, { namespace: NAMESPACE, service: 'production-milvus-milvus', restPort: 19530, managementPort: 9091 });
    let withDeletes = 0;
    for (const x of r.rowCounts) {
      const stats = await milvus.persistedRowCount(x.database, x.collection);
      const live = await milvus.countRows(x.database, x.collection).catch(() => undefined);
      if (live === undefined) {
        // Not loaded: count(*) cannot run, so the backup recorded get_stats and says so.
        expect([x.collection, x.confirmedBy, x.rows]).toEqual([x.collection, 'stats', stats]);
        continue;
      }
      expect([x.collection, x.confirmedBy, x.rows]).toEqual([x.collection, 'count', live]);
      if (stats > live) withDeletes++;
    }
    // The seed deletes some rows of the collections it fills: get_stats and count(*) disagree there.
    expect(withDeletes).toBeGreaterThan(0);
  });

  it('records a timeline of every step, each Succeeded, in workflow order', async () => {
    const r = await record('nightly-1');
    const steps = Object.entries(r.steps).sort(([, a], [, b]) => a!.startedAt.localeCompare(b!.startedAt));
    expect(steps.map(([name, e]) => `${name}:${e!.outcome}`)).toEqual(['Prepare:Succeeded', 'Discover:Succeeded', 'Quiesce:Succeeded', 'Hooks:Succeeded', 'Capture:Succeeded', 'Snapshot:Succeeded', 'Recount:Succeeded', 'Unquiesce:Succeeded', 'Export:Succeeded', 'Finalize:Succeeded']);
  });

  it('captures the pre and post hooks with their output', async () => {
    const r = await record('nightly-1');
    expect(r.hooks.filter((h) => h.phase === 'pre').map((h) => [h.outcome, h.stdout.trim()])).toEqual([
      ['Succeeded', 'quiesced'],
      ['Succeeded', 'quiesced'],
    ]);
    const post = r.hooks.filter((h) => h.phase === 'post');
    expect(post).toHaveLength(2);
    expect(post.every((h) => h.outcome === 'Succeeded' && h.stdout.trim() === 'resumed')).toBe(true);
  });

  it('flushes, then pauses GC, then snapshots, then resumes GC with the ticket', () => {
    const order = events.map((e) => e.type);
    const flush = order.lastIndexOf('POST /api/v1/persist');
    const pause = order.indexOf('GET /management/datacoord/garbage_collection/pause');
    const firstSnapshot = order.indexOf('VolumeSnapshotCreated');
    const lastSnapshot = order.lastIndexOf('VolumeSnapshotCreated');
    const resume = order.indexOf('GET /management/datacoord/garbage_collection/resume');
    expect(flush).toBeGreaterThanOrEqual(0);
    expect(flush).toBeLessThan(pause);
    expect(pause).toBeLessThan(firstSnapshot);
    expect(lastSnapshot).toBeLessThan(resume);
    const paused = events[pause]!.detail as { ticket?: string };
    const resumed = events[resume]!.detail as { ticket?: string; resumed?: boolean };
    expect(resumed).toMatchObject({ ticket: paused.ticket, resumed: true });
  });

  it('leaves ready VolumeSnapshots and no clone PVC or data-mover Job', async () => {
    const snapshots = await snapshotsOf('nightly-1');
    expect(snapshots).toHaveLength(7);
    expect(snapshots.every((s) => s.status?.readyToUse === true)).toBe(true);
    expect(await exportObjectsOf('nightly-1')).toEqual([]);
  });

  it('writes the backup index, the inventory and sanitized manifests to the vault', async () => {
    const vault = servicesOf(c, config).vault;
    const index = JSON.parse((await vault.get('backups/nightly-1/backup.json')).toString()) as { volumes: unknown[]; rowCounts: unknown[] };
    expect(index.volumes).toHaveLength(7);
    expect(index.rowCounts).toHaveLength(3);
    const manifests: string[] = [];
    for await (const o of vault.list('backups/nightly-1/manifests/')) manifests.push(o.key);
    expect(manifests).toContain('backups/nightly-1/manifests/milvus.io/Milvus/vector-db/production-milvus.yaml');
    const text = (await vault.get(manifests.find((k) => k.includes('/Service/'))!)).toString();
    expect(text).not.toMatch(/\b(uid|resourceVersion|managedFields|clusterIP|creationTimestamp|status):/);
  });

  it('stores Secrets sealed, never in the clear', async () => {
    const { vault, sealer } = servicesOf(c, config);
    const keys: string[] = [];
    for await (const o of vault.list('backups/nightly-1/manifests/core/Secret/')) keys.push(o.key);
    // milvus-root matches the selector; the operator's MinIO Secret is captured because the CR names it.
    expect(keys).toEqual(['backups/nightly-1/manifests/core/Secret/vector-db/milvus-root.sealed.json', 'backups/nightly-1/manifests/core/Secret/vector-db/production-milvus-minio.sealed.json']);
    const stored = (await vault.get(keys[0]!)).toString();
    expect(stored).not.toContain('hunter2-root');
    expect(stored).not.toContain(Buffer.from('hunter2-root').toString('base64'));
    const opened = (await sealer.open(JSON.parse(stored))).toString();
    expect(opened).toContain(Buffer.from('hunter2-root').toString('base64'));
  });

  it('releases the plan lock', async () => {
    expect(await servicesOf(c, config).catalog.lockHolder(PLAN, new Date())).toBeUndefined();
  });

  it("names each export's run by its Job's UID in the summary and the index, so that nothing put there before the Job was created passes for it", async () => {
    const vault = servicesOf(c, config).vault;
    const runs = [];
    for (const { pvc } of (await record('nightly-1')).components) {
      const { runId } = await readVolumeSummary(vault, 'nightly-1', pvc);
      const reader = new IndexReader(await vault.openRead(volumeIndexKey('nightly-1', pvc)), 'index');
      expect((await reader.readHeader()).runId).toBe(runId);
      await reader.close();
      runs.push(runId);
    }

    expect(runs.every((r) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(r ?? ''))).toBe(true);
    expect(new Set(runs).size).toBe(7);
  });
});

describe('a backup whose id was foretold', () => {
  it('fails its export, commits nothing, and keeps its parent to a committed backup, when a summary was planted under its id and a newer unused one', async () => {
    const { vault } = servicesOf(c, config);
    const pvc = 'data-production-milvus-etcd-0';
    const forged = await mkdtemp(join(tmpdir(), 'mg-forged-'));
    try {
      await writeFile(join(forged, 'member'), 'not what etcd held');
      // Under the id of the backup about to run, and under an id no backup used, newer than nightly-1.
      await backupVolume({ source: forged, vault, volume: pvc, backupId: 'foretold', now: new Date(), full: true });
      await backupVolume({ source: forged, vault, volume: pvc, backupId: 'planted', now: new Date(), full: true });
    } finally {
      await rm(forged, { recursive: true, force: true });
    }

    const refused = await backup(c, config, { backupName: 'foretold' });
    const after = await backup(c, config, { backupName: 'after-planting' });

    expect(refused.status).toBe('FAILED');
    const r = await record('foretold');
    expect(r).toMatchObject({ status: 'Failed', failure: { step: 'Export' } });
    expect(r.failure!.cause).toContain('was not written by this export run (it names no run');
    await expect(vault.head('backups/foretold/backup.json')).resolves.toBeUndefined();
    expect(after.status).toBe('SUCCEEDED');
    expect((await readVolumeSummary(vault, 'after-planting', pvc)).parentBackupId).toBe('nightly-1');
  }, 2 * FULL_RUN);
});

describe('a backup that fails', () => {
  it('fails with FlushNotConfirmed when the flush never completes, never pausing GC', async () => {
    // A fresh cluster: its collections still have growing segments that only a flush persists.
    const fresh = await startSeededCluster();
    try {
      fresh.cluster.milvus.get(NAMESPACE, MILVUS)!.faults = { flushNeverCompletes: true };

      const result = await backup(fresh, config, { backupName: 'no-flush' }, { flushTimeoutSeconds: 1 });

      expect(result.error?.name).toBe('FlushNotConfirmed');
      expect(result.error?.message).toMatch(/was not confirmed within 1 s: default\.product_embeddings, default\.user_profiles/);
      const r = (await servicesOf(fresh, config).catalog.getBackup('no-flush'))!;
      expect(r).toMatchObject({ status: 'Failed', failure: { step: 'Quiesce', error: 'FlushNotConfirmed' } });
      // The record names the Task the execution failed in, as the console does.
      const failedTask = result.states[result.states.indexOf('CleanUp') - 1];
      expect(failedTask).toBe('CheckFlush');
      expect(r.failure?.state).toBe(failedTask);
      expect(fresh.cluster.timeline.events.some((e) => e.type === 'POST /api/v1/persist')).toBe(true);
      expect(fresh.cluster.timeline.events.some((e) => e.type.includes('garbage_collection/pause'))).toBe(false);
      expect(await servicesOf(fresh, config).catalog.lockHolder(PLAN, new Date())).toBeUndefined();
    } finally {
      await fresh.dispose();
    }
  }, FULL_RUN);

  it('fails fast on a snapshot error, resumes GC, runs the post hooks and leaves nothing behind', async () => {
    c.cluster.faults.failSnapshots({ namespace: NAMESPACE, pvc: 'export-production-milvus-minio-2', message: 'EBS: volume is in an error state' });

    // A deadline the run can reach: a check that waited for it instead of failing on the
    // snapshot's error would end SnapshotTimeout, which the assertions below tell apart.
    const result = await backup(c, config, { backupName: 'bad-snapshot' }, { snapshotTimeoutSeconds: 30 });

    expect(result.error).toMatchObject({ name: 'SnapshotFailed', message: expect.stringContaining('EBS: volume is in an error state') });
    expect(await record('bad-snapshot')).toMatchObject({ status: 'Failed', failure: { step: 'Snapshot', error: 'SnapshotFailed' } });
    expect(c.cluster.timeline.events.some((e) => e.type === 'GET /management/datacoord/garbage_collection/resume' && (e.detail as { resumed?: boolean }).resumed)).toBe(true);
    expect(gcPaused()).toBe(false);
    expect(execs('echo resumed').length).toBeGreaterThan(0);
    expect(await snapshotsOf('bad-snapshot')).toEqual([]);
    expect(await exportObjectsOf('bad-snapshot')).toEqual([]);
  }, FULL_RUN);

  it('leaves no export Job, clone or snapshot behind when every export Job fails, and keeps its Failed record final', async () => {
    // Every export Job fails: one Map iteration fails the Map while the others are still
    // starting theirs, which raced the cleanup.
    c.cluster.faults.failJobs({ namespace: NAMESPACE, name: 'export-', message: 'injected: the data mover crashed' });

    const result = await backup(c, config, { backupName: 'bad-exports' });
    await c.cluster.settle();
    const r = await record('bad-exports');

    expect(result.status).toBe('FAILED');
    expect(r).toMatchObject({ status: 'Failed', failure: { step: 'Export' } });
    expect(await exportObjectsOf('bad-exports')).toEqual([]);
    expect(await snapshotsOf('bad-exports')).toEqual([]);
    // Final once Failed: nothing that finished later rewrote the timeline or the failure.
    expect(r.steps.Export?.endedAt).toBeDefined();
    expect(r.steps.Export!.endedAt! <= r.completedAt!).toBe(true);
    expect(r.steps.Export?.outcome).toBe('Failed');
    expect(r.steps.Export?.detail).toContain(r.failure!.cause.slice(0, 200));
  }, FULL_RUN);

  it('resumes GC on a Milvus without GC tickets, where the pause returns none', async () => {
    c.cluster.milvus.get(NAMESPACE, MILVUS)!.faults = { gcPauseWithoutTicket: true };
    c.cluster.faults.failSnapshots({ namespace: NAMESPACE, pvc: 'data-production-milvus-etcd-0' });

    const result = await backup(c, config, { backupName: 'old-milvus' });

    expect(result.error?.name).toBe('SnapshotFailed');
    expect(c.cluster.timeline.events.some((e) => e.type.includes('garbage_collection/pause'))).toBe(true);
    expect(c.cluster.timeline.events.some((e) => e.type.includes('garbage_collection/resume'))).toBe(true);
    expect(gcPaused()).toBe(false);
  }, FULL_RUN);

  it('fails with HookFailed when a pre hook fails and ignoreFailure is false', async () => {
    const failing = await configWithHooks({ pre: action(['sh', '-c', 'echo cannot quiesce >&2; exit 3']), post: action(['sh', '-c', 'echo resumed']) });

    const result = await backup(c, failing, { backupName: 'hook-fails' });

    expect(result.error).toMatchObject({ name: 'HookFailed', message: expect.stringContaining('cannot quiesce') });
    const r = await record('hook-fails');
    expect(r).toMatchObject({ status: 'Failed', failure: { step: 'Hooks' } });
    expect(r.hooks.find((h) => h.phase === 'pre')).toMatchObject({ outcome: 'Failed', exitCode: 3, stderr: 'cannot quiesce\n' });
    expect(gcPaused()).toBe(false);
    expect(execs('echo resumed').length).toBeGreaterThan(0);
  }, FULL_RUN);
});

describe('a backup that recovers', () => {
  it('retries Kubernetes 429 answers and ends Available', async () => {
    c.cluster.faults.failRequests({ path: '^/apis/snapshot\\.storage\\.k8s\\.io/v1/namespaces/vector-db/volumesnapshots', method: 'POST', status: 429, times: 2 });

    const result = await backup(c, config, { backupName: 'throttled' });

    expect(result.status).toBe('SUCCEEDED');
    expect(result.retried).toContain('Snapshot');
    expect(c.cluster.faults.toJSON().requests[0]!.hits).toBe(2);
    expect((await record('throttled')).status).toBe('Available');
  }, FULL_RUN);

  it('records a failing pre hook with ignoreFailure true and ends Available', async () => {
    const ignoring = await configWithHooks({ pre: action(['sh', '-c', 'exit 3'], { ignoreFailure: true }) });

    const result = await backup(c, ignoring, { backupName: 'hook-ignored' });

    expect(result.status).toBe('SUCCEEDED');
    const r = await record('hook-ignored');
    expect(r.status).toBe('Available');
    expect(r.hooks.filter((h) => h.phase === 'pre').map((h) => h.outcome)).toEqual(['FailedIgnored', 'FailedIgnored']);
  }, FULL_RUN);
});

describe('two backups of one plan', () => {
  it('rejects the second with BackupInProgress while the first runs, and the first still succeeds', async () => {
    let discovered!: () => void;
    const firstPastPrepare = new Promise<void>((r) => (discovered = r));
    const first = backup(c, config, { backupName: 'first' }, {}, (s) => s === 'Discover' && discovered());
    await firstPastPrepare;

    const second = await backup(c, config, { backupName: 'second' });

    expect(second.error).toMatchObject({ name: 'BackupInProgress', message: expect.stringContaining('backup first') });
    expect(second.states).toEqual(['Prepare', 'BackupInProgress']);
    expect((await first).status).toBe('SUCCEEDED');
    expect(await servicesOf(c, config).catalog.getBackup('second')).toBeUndefined();
  }, FULL_RUN);
});

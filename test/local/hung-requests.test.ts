import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { BackupRecord } from '../../core/catalog/record.js';
import type { Config } from '../../core/config/schema.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { TimelineEvent } from '../../local/timeline.js';
import { backup, NAMESPACE, servicesOf, startSeededCluster, type SeededCluster } from '../backup/helpers.js';

// The backup workflow (the real ASL, handlers and local API server over HTTPS) when the API
// server holds a request open and never answers. Each Kubernetes request has a deadline
// (core/kube/deadline.ts), here 300 ms, so a hang costs one deadline and a retry, not the
// Task's TimeoutSeconds; the polls await the cluster, so nothing waits on the clock.

const DEADLINE_SECONDS = 0.3;
// A VolumeSnapshot create is answered once the local snapshot controller has frozen the volume's
// files: four MinIO volumes frozen one after another took over 2 s on a loaded 2-core machine. A
// deadline that leaves room for that, so only the held-open request misses it. (Before etcd was
// cut first, the MinIO creates ran beside the hung one and their slowness went unnoticed.)
const SNAPSHOT_DEADLINE_SECONDS = 5;
const FULL_RUN = 180_000;

let c: SeededCluster;
let config: Config;

beforeAll(async () => {
  c = await startSeededCluster();
  config = await loadConfigFile('examples/production.yaml');
}, 60_000);

afterAll(async () => {
  await c?.dispose();
});

beforeEach(() => {
  c.cluster.faults.clear();
  c.cluster.timeline.clear();
});

const record = async (backupId: string): Promise<BackupRecord> => (await servicesOf(c, config).catalog.getBackup(backupId))!;
const hungRequests = (events: readonly TimelineEvent[]) => events.filter((e) => e.type === 'RequestHung' || e.type === 'HungRequestClosed');
const at = (e: TimelineEvent | undefined) => Date.parse(e!.at);

describe('a hang on snapshot creation', () => {
  it('costs one request deadline: the Snapshot Task is retried once and the backup completes', async () => {
    // Prepare: the API server holds the first VolumeSnapshot create open.
    c.cluster.faults.failRequests({ path: `^/apis/snapshot.storage.k8s.io/v1/namespaces/${NAMESPACE}/volumesnapshots$`, method: 'POST', hang: true, times: 1 });

    // Act
    const result = await backup(c, config, { backupName: 'hung-snapshot' }, { kubeRequestTimeoutSeconds: SNAPSHOT_DEADLINE_SECONDS });

    // Assess
    expect(result.status).toBe('SUCCEEDED');
    expect((await record('hung-snapshot')).status).toBe('Available');
    expect(result.retried).toEqual(['Snapshot']);
    const [hung, closed] = hungRequests(c.cluster.timeline.events);
    expect([hung?.type, closed?.type]).toEqual(['RequestHung', 'HungRequestClosed']);
    // The client gave up on the request after its deadline, not after the Task's 300 s.
    expect(at(closed) - at(hung)).toBeLessThan(SNAPSHOT_DEADLINE_SECONDS * 1000 + 5_000);
  }, FULL_RUN);
});

describe('a hang on every export Job creation', () => {
  it('fails the backup in StartExport with a cause naming the Job, after the retries', async () => {
    // Prepare: every Job create is held open.
    c.cluster.faults.failRequests({ path: `^/apis/batch/v1/namespaces/${NAMESPACE}/jobs$`, method: 'POST', hang: true, times: null });

    // Act
    const result = await backup(c, config, { backupName: 'hung-job' }, { kubeRequestTimeoutSeconds: DEADLINE_SECONDS });

    // Assess
    expect(result.status).toBe('FAILED');
    expect(result.error?.name).toBe('KubernetesTransientError');
    const failed = await record('hung-job');
    expect(failed.status).toBe('Failed');
    expect(failed.failure).toMatchObject({ step: 'Export', state: 'StartExport', error: 'KubernetesTransientError' });
    expect(failed.failure?.cause).toMatch(new RegExp(`^create Job ${NAMESPACE}/export-[a-z0-9]+: no answer within 300 ms$`));
    expect(result.retried.filter((s) => s === 'StartExport').length).toBeGreaterThanOrEqual(5);
  }, FULL_RUN);
});

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { dataMoverFailure, killedBySignal } from '../../core/datamover/job.js';
import type { KubeClients } from '../../core/kube/connect.js';
import { createNamespace, job, startTestCluster, type TestCluster } from './helpers.js';

let t: TestCluster;
const NS = 'signals';

beforeAll(async () => {
  t = await startTestCluster();
  await createNamespace(t.core, NS);
});

afterAll(async () => {
  await t?.dispose();
});

describe('a Job whose process is killed by a signal', () => {
  it('reports exit code 128+n with reason Error, as a kubelet does', async () => {
    // A kubelet reads `$$` in a container's command as an escaped `$`, so the shell's own `$$` is
    // written `$$$$` in a pod spec.
    await t.batch.createNamespacedJob({ namespace: NS, body: job('self-kill', ['sh', '-c', 'kill -9 $$$$']) });

    await t.cluster.settle();

    const [pod] = (await t.core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=self-kill' })).items;
    expect(pod?.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 137, reason: 'Error' });
  });

  it("is reported by the data mover's failure text as killed, with the signal and a hint", async () => {
    await t.batch.createNamespacedJob({ namespace: NS, body: job('export-etcd-0', ['sh', '-c', 'echo "backup etcd: 10 files, 3 MiB read"; kill -KILL $$$$']) });
    await t.cluster.settle();
    const failed = await t.batch.readNamespacedJob({ namespace: NS, name: 'export-etcd-0' });

    const detail = await dataMoverFailure({ core: t.core, batch: t.batch } as unknown as KubeClients, NS, failed);

    expect(detail).toBe(
      'failed (BackoffLimitExceeded: Job has reached the specified backoff limit); the data mover was killed by SIGKILL (exit code 137): out of memory or evicted?; ' +
        "data mover's last output: backup etcd: 10 files, 3 MiB read",
    );
  });
});

type Terminated = NonNullable<NonNullable<NonNullable<V1Pod['status']>['containerStatuses']>[number]['state']>['terminated'];

describe('killedBySignal', () => {
  it.each<[string, Terminated, string | undefined]>([
    ['exit code 137', { exitCode: 137, reason: 'Error' }, 'the data mover was killed by SIGKILL (exit code 137): out of memory or evicted?'],
    ['exit code 143', { exitCode: 143, reason: 'Error' }, 'the data mover was killed by SIGTERM (exit code 143): the pod was deleted, evicted or its node drained?'],
    ['the signal field', { exitCode: 0, signal: 6, reason: 'Error' }, 'the data mover was killed by SIGABRT (exit code 0)'],
    ['reason OOMKilled', { exitCode: 137, reason: 'OOMKilled' }, 'the data mover was killed: out of memory (OOMKilled, exit code 137)'],
    ['exit code 1 (its own error)', { exitCode: 1, reason: 'Error' }, undefined],
    ['exit code 0', { exitCode: 0, reason: 'Completed' }, undefined],
  ])('reads %s', (_what, terminated, expected) => {
    expect(killedBySignal(terminated)).toBe(expected);
  });
});

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Exec, PatchStrategy, setHeaderOptions, type V1Status } from '@kubernetes/client-node';
import { createNamespace, job, pvc, startTestCluster, type TestCluster } from './helpers.js';

let t: TestCluster;
const NS = 'work';

beforeAll(async () => {
  t = await startTestCluster();
  await createNamespace(t.core, NS);
  await t.core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'creds' }, data: { password: Buffer.from('s3cret').toString('base64') } } });
});

afterAll(async () => {
  await t?.dispose();
});

const statefulSet = (name: string, replicas: number) => ({
  metadata: { name },
  spec: {
    replicas,
    serviceName: name,
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'db', image: 'example/db:1', volumeMounts: [{ name: 'data', mountPath: '/var/lib/db' }] }] } },
    volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
  },
});

/** Runs a command in a pod through client-node's Exec; resolves with its output and final Status. */
async function execIn(pod: string, container: string, command: string[]): Promise<{ stdout: string; stderr: string; status: V1Status }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const status = await new Promise<V1Status>((resolve, reject) => {
    new Exec(t.kc).exec(NS, pod, container, command, stdout, stderr, null, false, resolve).catch(reject);
  });
  return { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), status };
}

describe('workloads', () => {
  it('gives a StatefulSet its pods and per-pod PVCs, all Ready', async () => {
    await t.apps.createNamespacedStatefulSet({ namespace: NS, body: statefulSet('db', 2) });

    await t.cluster.settle();

    const pods = await t.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=db' });
    expect(pods.items.map((p) => p.metadata!.name)).toEqual(['db-0', 'db-1']);
    expect(pods.items.every((p) => p.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))).toBe(true);
    expect(pods.items.every((p) => p.status?.containerStatuses?.[0]?.ready === true)).toBe(true);
    const claims = await t.core.listNamespacedPersistentVolumeClaim({ namespace: NS, labelSelector: 'app=db' });
    expect(claims.items.map((c) => [c.metadata!.name, c.status?.phase])).toEqual([['data-db-0', 'Bound'], ['data-db-1', 'Bound']]);
    expect((await t.apps.readNamespacedStatefulSet({ namespace: NS, name: 'db' })).status?.readyReplicas).toBe(2);
  });

  it('scales a StatefulSet down and keeps the PVCs of removed pods', async () => {
    await t.apps.patchNamespacedStatefulSet({ namespace: NS, name: 'db', body: { spec: { replicas: 1 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));

    await t.cluster.settle();

    expect((await t.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=db' })).items.map((p) => p.metadata!.name)).toEqual(['db-0']);
    expect((await t.core.listNamespacedPersistentVolumeClaim({ namespace: NS, labelSelector: 'app=db' })).items).toHaveLength(2);
    expect((await t.apps.readNamespacedStatefulSet({ namespace: NS, name: 'db' })).status?.readyReplicas).toBe(1);
  });

  it('gives a Deployment its pods with the template labels', async () => {
    await t.apps.createNamespacedDeployment({
      namespace: NS,
      body: { metadata: { name: 'web' }, spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web', tier: 'front' } }, spec: { containers: [{ name: 'web', image: 'example/web:1' }] } } } },
    });

    await t.cluster.settle();

    const pods = await t.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=web,tier=front' });
    expect(pods.items).toHaveLength(3);
    expect((await t.apps.readNamespacedDeployment({ namespace: NS, name: 'web' })).status).toMatchObject({ replicas: 3, readyReplicas: 3 });
  });
});

describe('jobs', () => {
  it('runs the milvus-guard entry point and completes', async () => {
    await t.batch.createNamespacedJob({ namespace: NS, body: job('cli-help', ['milvus-guard', '--help']) });

    await t.cluster.settle();

    const done = await t.batch.readNamespacedJob({ namespace: NS, name: 'cli-help' });
    expect(done.status?.succeeded).toBe(1);
    expect(done.status?.conditions?.map((c) => [c.type, c.status])).toEqual([['SuccessCriteriaMet', 'True'], ['Complete', 'True']]);
    const [pod] = (await t.core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=cli-help' })).items;
    expect(pod?.status?.phase).toBe('Succeeded');
    expect(await t.core.readNamespacedPodLog({ namespace: NS, name: pod!.metadata!.name! })).toContain('Usage: milvus-guard');
  });

  it("defaults a Job's selector to its own uid, so its pods are found by it and no others", async () => {
    await t.batch.createNamespacedJob({ namespace: NS, body: job('selected', ['milvus-guard', '--version']) });
    await t.cluster.settle();

    const created = await t.batch.readNamespacedJob({ namespace: NS, name: 'selected' });
    const selector = Object.entries(created.spec!.selector!.matchLabels!).map(([k, v]) => `${k}=${v}`).join(',');
    const pods = (await t.core.listNamespacedPod({ namespace: NS, labelSelector: selector })).items;

    expect(created.spec?.selector?.matchLabels).toEqual({ 'batch.kubernetes.io/controller-uid': created.metadata!.uid });
    expect(pods.map((p) => p.metadata!.labels!['job-name'])).toEqual(['selected']);
  });

  it('maps the PVC mount and secret env of the container to the process', async () => {
    await t.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('job-data') });
    const env = [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } }];
    await t.batch.createNamespacedJob({ namespace: NS, body: job('writer', ['sh', '-c', 'printf "%s" "$PASSWORD" > /data/out.txt'], { claim: 'job-data', env }) });

    await t.cluster.settle();

    const claim = await t.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'job-data' });
    expect((await t.batch.readNamespacedJob({ namespace: NS, name: 'writer' })).status?.succeeded).toBe(1);
    expect(await readFile(join(t.cluster.dirs.volume(claim.spec!.volumeName!), 'out.txt'), 'utf8')).toBe('s3cret');
  });

  it("hands a Job's pod its Job's UID through the downward API, expanded in args as a kubelet does", async () => {
    await t.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('uid-data') });
    const env = [
      { name: 'JOB_UID', valueFrom: { fieldRef: { fieldPath: "metadata.labels['batch.kubernetes.io/controller-uid']" } } },
      { name: 'MISSING', valueFrom: { fieldRef: { fieldPath: "metadata.labels['no-such-label']" } } },
      { name: 'GREETING', value: 'uid=$(JOB_UID)' },
    ];
    // Args, not the shell, expand: $(JOB_UID) arrives as the value, $$(JOB_UID) as the literal,
    // $(UNDEFINED) unchanged, and a label the pod lacks as nothing.
    const script = 'printf "%s|%s|%s|%s|%s" "$1" "$2" "$3" "[$4]" "$GREETING" > /data/out.txt';
    await t.batch.createNamespacedJob({ namespace: NS, body: job('uid-reader', ['sh', '-c', script, 'sh', '$(JOB_UID)', '$$(JOB_UID)', '$(UNDEFINED)', '$(MISSING)'], { claim: 'uid-data', env }) });

    await t.cluster.settle();

    const created = await t.batch.readNamespacedJob({ namespace: NS, name: 'uid-reader' });
    const claim = await t.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'uid-data' });
    const uid = created.metadata!.uid!;
    expect(created.status?.succeeded).toBe(1);
    expect(await readFile(join(t.cluster.dirs.volume(claim.spec!.volumeName!), 'out.txt'), 'utf8')).toBe(`${uid}|$(JOB_UID)|$(UNDEFINED)|[]|uid=${uid}`);
  });

  it('fails a Job whose command exits non-zero once backoffLimit is used up', async () => {
    await t.batch.createNamespacedJob({ namespace: NS, body: job('exit-3', ['sh', '-c', 'echo boom >&2; exit 3'], { backoffLimit: 1 }) });

    await t.cluster.settle();

    const failed = await t.batch.readNamespacedJob({ namespace: NS, name: 'exit-3' });
    expect(failed.status?.failed).toBe(2);
    expect(failed.status?.conditions?.find((c) => c.type === 'Failed')).toMatchObject({ status: 'True', reason: 'BackoffLimitExceeded' });
    const pods = (await t.core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=exit-3' })).items;
    expect(pods.map((p) => p.status?.containerStatuses?.[0]?.state?.terminated?.exitCode)).toEqual([3, 3]);
  });

  it('fails a Job whose command does not exist here, with the reason', async () => {
    await t.batch.createNamespacedJob({ namespace: NS, body: job('no-binary', ['definitely-not-installed-tool']) });

    await t.cluster.settle();

    const [pod] = (await t.core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=no-binary' })).items;
    expect(pod?.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ reason: 'StartError', exitCode: 128 });
    expect(pod?.status?.containerStatuses?.[0]?.state?.terminated?.message).toContain('executable file not found');
    expect((await t.batch.readNamespacedJob({ namespace: NS, name: 'no-binary' })).status?.conditions?.some((c) => c.type === 'Failed')).toBe(true);
  });

  it('fails a Job that a fault says must fail, without running it', async () => {
    t.cluster.faults.failJobs({ namespace: NS, name: 'export-', message: 'injected: node lost' });

    await t.batch.createNamespacedJob({ namespace: NS, body: job('export-etcd-0', ['milvus-guard', '--help']) });
    await t.cluster.settle();

    const failed = await t.batch.readNamespacedJob({ namespace: NS, name: 'export-etcd-0' });
    expect(failed.status?.conditions?.find((c) => c.type === 'Failed')?.status).toBe('True');
    expect(t.cluster.timeline.events.filter((e) => e.name === 'export-etcd-0').map((e) => e.type)).toEqual(['JobStarted', 'JobFailed']);
  });

  it('deletes a finished Job and its pods once ttlSecondsAfterFinished has passed', async () => {
    const body = job('short-ttl', ['true']);
    body.spec!.ttlSecondsAfterFinished = 0;

    await t.batch.createNamespacedJob({ namespace: NS, body });
    await t.cluster.settle();

    expect((await t.batch.listNamespacedJob({ namespace: NS })).items.map((j) => j.metadata!.name)).not.toContain('short-ttl');
    expect((await t.core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=short-ttl' })).items).toHaveLength(0);
  });

  it('deletes the pods of a Job with background propagation', async () => {
    await t.batch.createNamespacedJob({ namespace: NS, body: job('cleanup', ['true']) });
    await t.cluster.settle();

    await t.batch.deleteNamespacedJob({ namespace: NS, name: 'cleanup', propagationPolicy: 'Background' });

    expect((await t.core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=cleanup' })).items).toHaveLength(0);
  });
});

describe('exec', () => {
  it('returns stdout, stderr and Success for a command that exits 0', async () => {
    const result = await execIn('db-0', 'db', ['sh', '-c', 'echo out; echo err >&2']);

    expect(result).toEqual({ stdout: 'out\n', stderr: 'err\n', status: expect.objectContaining({ status: 'Success' }) });
  });

  it('reports a non-zero exit code as NonZeroExitCode with the code', async () => {
    const result = await execIn('db-0', 'db', ['sh', '-c', 'exit 7']);

    expect(result.status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '7' }] } });
  });

  it('runs without a shell unless asked, so arguments arrive verbatim', async () => {
    const result = await execIn('db-0', 'db', ['echo', '$HOME', 'a b']);

    expect(result.stdout).toBe('$HOME a b\n');
  });

  it('sees the pod PVC at its mountPath', async () => {
    const claim = await t.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'data-db-0' });
    await writeFile(join(t.cluster.dirs.volume(claim.spec!.volumeName!), 'hello.txt'), 'from the volume');

    const result = await execIn('db-0', 'db', ['cat', '/var/lib/db/hello.txt']);

    expect(result.stdout).toBe('from the volume');
  });

  it('kills the command when the client disconnects', async () => {
    const stdout = new PassThrough();
    const printed = once(stdout, 'data');
    const ended = t.cluster.timeline.next((e) => e.type === 'PodExecFinished' && e.name === 'db-0');
    const ws = await new Exec(t.kc).exec(NS, 'db-0', 'db', ['sh', '-c', 'echo $$; exec sleep 30'], stdout, null, null, false);
    const pid = Number(String((await printed)[0]).trim());

    ws.close();
    const finished = await ended;

    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(pid).toBeGreaterThan(0);
    expect(finished.detail).toMatchObject({ exitCode: 137 });
    expect(alive()).toBe(false);
  });

  it('records exec in the timeline', async () => {
    await execIn('db-0', 'db', ['true']);

    expect(t.cluster.timeline.events.slice(-2).map((e) => [e.type, e.name])).toEqual([['PodExec', 'db-0'], ['PodExecFinished', 'db-0']]);
  });
});

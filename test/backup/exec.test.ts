import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { kubeConfigFromFile, makeKubeClients } from '../../core/kube/connect.js';
import { ExecTimeoutError, KubernetesExec } from '../../core/kube/exec.js';
import { NAMESPACE, startSeededCluster, type SeededCluster } from './helpers.js';

// The client-node ExecPort against the local cluster's exec WebSocket: exit codes, output and
// the timeout, on a datanode pod of the seeded Milvus.

let c: SeededCluster;
let exec: KubernetesExec;
let pod: string;

beforeAll(async () => {
  c = await startSeededCluster();
  const kube = makeKubeClients(kubeConfigFromFile(c.cluster.kubeconfigPath));
  exec = new KubernetesExec(kube.exec);
  const pods = await kube.core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'app.kubernetes.io/component=datanode' });
  pod = pods.items[0]!.metadata!.name!;
}, 60_000);

afterAll(async () => {
  await c?.dispose();
});

describe('KubernetesExec', () => {
  it('returns exit code 0 and the output of a command that succeeds', async () => {
    const result = await exec.exec({ namespace: NAMESPACE, pod, container: 'datanode', command: ['sh', '-c', 'echo out; echo err >&2'], timeoutSeconds: 10 });

    expect(result).toEqual({ exitCode: 0, stdout: 'out\n', stderr: 'err\n' });
  });

  it("returns a failing command's exit code and the API server's message", async () => {
    const result = await exec.exec({ namespace: NAMESPACE, pod, container: 'datanode', command: ['sh', '-c', 'exit 4'], timeoutSeconds: 10 });

    expect(result).toMatchObject({ exitCode: 4, message: expect.stringContaining('exit code 4') });
  });

  it('gives up with ExecTimeoutError when the command outlives its timeout', async () => {
    const started = Date.now();

    await expect(exec.exec({ namespace: NAMESPACE, pod, container: 'datanode', command: ['sleep', '30'], timeoutSeconds: 1 })).rejects.toThrow(ExecTimeoutError);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

import { execFileSync } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { kubeConfigFromFile, makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { ExecTimeoutError, KubernetesExec, type ExecTimer } from '../../core/kube/exec.js';
import { NAMESPACE, startSeededCluster, type SeededCluster } from './helpers.js';

// The client-node ExecPort against the local cluster's exec WebSocket: exit codes, output and
// the timeout, on a datanode pod of the seeded Milvus.

let c: SeededCluster;
let kube: KubeClients;
let exec: KubernetesExec;
let pod: string;

beforeAll(async () => {
  c = await startSeededCluster();
  kube = makeKubeClients(kubeConfigFromFile(c.cluster.kubeconfigPath));
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

  it('gives up with ExecTimeoutError when the command outlives its timeout, and the command is killed', async () => {
    // Prepare: a command that blocks reading a FIFO until it is killed, and a timer the test expires.
    const gate = join(c.cluster.dirs.pod(NAMESPACE, pod), 'exec-timeout-gate');
    execFileSync('mkfifo', [gate]);
    const timers: number[] = [];
    let expire!: () => void;
    const timer: ExecTimer = (seconds, fire) => {
      timers.push(seconds);
      expire = fire;
      return () => undefined;
    };
    const ended = c.cluster.timeline.next((e) => e.type === 'PodExecFinished' && e.name === pod);

    // Act: the writer's open returns once the command has opened the FIFO, i.e. runs.
    const attempt = new KubernetesExec(kube.exec, timer).exec({ namespace: NAMESPACE, pod, container: 'datanode', command: ['sh', '-c', `read line < ${gate}`], timeoutSeconds: 1 });
    const writer = await open(gate, 'w');
    try {
      expire();

      // Assess
      await expect(attempt).rejects.toThrow(ExecTimeoutError);
      expect(timers).toEqual([1]);
      expect((await ended).detail).toMatchObject({ container: 'datanode', exitCode: 137 });
    } finally {
      // Closing the only writer ends a command that was not killed (it reads end of file).
      await writer.close();
    }
  });
});

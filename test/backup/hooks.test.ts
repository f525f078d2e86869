import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { failsBackup, runHooks, summarize } from '../../core/backup/hooks.js';
import type { ResolvedPlan } from '../../core/config/resolve.js';
import type { ExecAction, Hook } from '../../core/config/schema.js';
import type { KubeClients } from '../../core/kube/connect.js';
import { RecordingExec } from '../../core/kube/exec.js';

// Hooks over the recording exec fake: which commands run where, in what order, with what
// retries, and how failures are reported.

const pod = (name: string, containers = ['datanode'], phase = 'Running'): V1Pod => ({
  metadata: { name, labels: { component: 'datanode' } },
  spec: { containers: containers.map((c) => ({ name: c })) },
  status: { phase },
});

function cluster(pods: V1Pod[]): KubeClients {
  return { core: { listNamespacedPod: async () => ({ items: pods }) } } as unknown as KubeClients;
}

const act = (command: string[], extra: Partial<ExecAction> = {}): ExecAction => ({ command, timeoutSeconds: 5, maxRetryCount: 0, ignoreFailure: false, ...extra });

function plan(mode: 'Sequential' | 'Parallel', hooks: Hook[], containerRegex?: string): ResolvedPlan {
  return {
    plan: { namespace: 'vector-db' },
    hooks: { mode, items: hooks.map((hook) => ({ hook, podSelector: { matchLabels: { component: 'datanode' } }, ...(containerRegex ? { containerRegex } : {}) })) },
  } as unknown as ResolvedPlan;
}

describe('runHooks', () => {
  it('runs a pre action on every running pod the selector chooses, in the hook container', async () => {
    const exec = new RecordingExec();

    const runs = await runHooks({ exec }, cluster([pod('b', ['sidecar', 'datanode']), pod('a'), pod('gone', ['datanode'], 'Succeeded')]), plan('Sequential', [{ name: 'sync', pre: act(['sync'], { container: 'datanode' }) }]), 'pre');

    expect(exec.requests.map((r) => `${r.pod}/${r.container}:${r.command.join(' ')}`)).toEqual(['a/datanode:sync', 'b/datanode:sync']);
    expect(runs.map((r) => r.outcome)).toEqual(['Succeeded', 'Succeeded']);
  });

  it('uses the first container when neither the hook nor the plan names one', async () => {
    const exec = new RecordingExec();

    await runHooks({ exec }, cluster([pod('a', ['main', 'sidecar'])]), plan('Sequential', [{ name: 'h', pre: act(['true']) }]), 'pre');

    expect(exec.requests.map((r) => r.container)).toEqual(['main']);
  });

  it('runs in every container the plan\'s containerRegex matches', async () => {
    const exec = new RecordingExec();

    await runHooks({ exec }, cluster([pod('a', ['datanode', 'datanode-sidecar', 'proxy'])]), plan('Sequential', [{ name: 'h', pre: act(['true']) }], '^datanode'), 'pre');

    expect(exec.requests.map((r) => r.container)).toEqual(['datanode', 'datanode-sidecar']);
  });

  it('passes the timeout and retries up to maxRetryCount, recording the attempts and the output', async () => {
    const exec = new RecordingExec().script('a', { exitCode: 1, stdout: '', stderr: 'busy' }, { exitCode: 0, stdout: 'ok', stderr: '' });

    const [run] = await runHooks({ exec }, cluster([pod('a')]), plan('Sequential', [{ name: 'h', pre: act(['sync'], { maxRetryCount: 2, timeoutSeconds: 7 }) }]), 'pre');

    expect(exec.requests.map((r) => r.timeoutSeconds)).toEqual([7, 7]);
    expect(run).toMatchObject({ attempts: 2, outcome: 'Succeeded', stdout: 'ok' });
  });

  it('records a timeout as TimedOut after the last attempt', async () => {
    const exec = new RecordingExec().script('a', 'timeout');

    const [run] = await runHooks({ exec }, cluster([pod('a')]), plan('Sequential', [{ name: 'h', pre: act(['sleep', '99'], { maxRetryCount: 1 }) }]), 'pre');

    expect(run).toMatchObject({ attempts: 2, outcome: 'TimedOut', error: expect.stringContaining('did not finish within 5 s') });
    expect(failsBackup(run!)).toBe(true);
  });

  it('records an ignored failure without failing the backup', async () => {
    const exec = new RecordingExec().script('a', { exitCode: 3, stdout: '', stderr: 'nope' });

    const runs = await runHooks({ exec }, cluster([pod('a')]), plan('Sequential', [{ name: 'h', pre: act(['false'], { ignoreFailure: true }) }]), 'pre');

    expect(runs[0]).toMatchObject({ outcome: 'FailedIgnored', exitCode: 3, stderr: 'nope' });
    expect(summarize(runs)).toEqual({ runs: 1, failed: 0, ignored: 1 });
  });

  it('stops the Sequential pre hooks at the first failure that is not ignored', async () => {
    const exec = new RecordingExec().script('a', { exitCode: 1, stdout: '', stderr: '' });

    const runs = await runHooks({ exec }, cluster([pod('a'), pod('b')]), plan('Sequential', [{ name: 'first', pre: act(['false']) }, { name: 'second', pre: act(['true']) }]), 'pre');

    expect(exec.requests.map((r) => r.pod)).toEqual(['a']);
    expect(runs.map((r) => r.outcome)).toEqual(['Failed']);
  });

  it('runs every post hook even after a failure, because post hooks undo pre hooks', async () => {
    const exec = new RecordingExec().script('a', { exitCode: 1, stdout: '', stderr: '' });

    await runHooks({ exec }, cluster([pod('a'), pod('b')]), plan('Sequential', [{ name: 'first', post: act(['false']) }, { name: 'second', post: act(['true']) }]), 'post');

    expect(exec.requests.map((r) => `${r.pod}:${r.command[0]}`)).toEqual(['a:false', 'b:false', 'a:true', 'b:true']);
  });

  it('starts every command at once in Parallel mode', async () => {
    let running = 0;
    let most = 0;
    const slow = () => {
      running += 1;
      most = Math.max(most, running);
      return { exitCode: 0, stdout: '', stderr: '' };
    };
    const exec = new RecordingExec().script('a', slow).script('b', slow);
    const original = exec.exec.bind(exec);
    exec.exec = async (request) => {
      const result = await original(request);
      await new Promise((r) => setImmediate(r));
      running -= 1;
      return result;
    };

    await runHooks({ exec }, cluster([pod('a'), pod('b')]), plan('Parallel', [{ name: 'h', pre: act(['sync']) }]), 'pre');

    expect(most).toBe(2);
  });

  it('fails a hook that matches no running pod unless its failure is ignored', async () => {
    const runs = await runHooks({ exec: new RecordingExec() }, cluster([]), plan('Sequential', [{ name: 'h', pre: act(['sync']) }]), 'pre');

    expect(runs).toEqual([expect.objectContaining({ hook: 'h', pod: '-', outcome: 'Failed', error: expect.stringContaining('no running pod in vector-db matches component=datanode') })]);
  });

  it('skips hooks without an action for the phase', async () => {
    const exec = new RecordingExec();

    const runs = await runHooks({ exec }, cluster([pod('a')]), plan('Sequential', [{ name: 'pre-only', pre: act(['sync']) }]), 'post');

    expect(runs).toEqual([]);
    expect(exec.requests).toEqual([]);
  });
});

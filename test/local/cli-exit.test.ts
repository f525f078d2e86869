import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NAMESPACE, PLAN, startSeededCluster, type SeededCluster } from '../backup/helpers.js';

// `milvus-guard backup create --local --wait` run as a process, as an operator runs it, against
// a local cluster whose API server holds a request open and never answers. The process must
// print how the backup ended and exit: a hung request costs one request deadline (here 0.5 s),
// and nothing the run opened (sockets, timers) may keep the process alive after the execution.

const CLI = fileURLToPath(new URL('../../bin/milvus-guard.js', import.meta.url));
const FULL_RUN = 180_000;

let c: SeededCluster;
let child: ChildProcess | undefined;

beforeAll(async () => {
  c = await startSeededCluster();
}, 60_000);

afterAll(async () => {
  await c?.dispose();
});

beforeEach(() => {
  c.cluster.faults.clear();
});

afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Milliseconds from the last byte of stdout to the exit. */
  readonly exitAfterOutputMs: number;
}

/** Runs the CLI until it exits, noting how long after its last output that was. */
function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let stdout = '';
    let stderr = '';
    let lastOutput = performance.now();
    proc.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      lastOutput = performance.now();
    });
    proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    proc.on('exit', (code) => resolve({ code, stdout, stderr, exitAfterOutputMs: performance.now() - lastOutput }));
  });
}

describe('milvus-guard backup create --local --wait (as a process) with a hung API request', () => {
  it('prints the backup, which completed after a retry, and exits 0', async () => {
    // Prepare: the API server holds the first VolumeSnapshot create open.
    c.cluster.faults.failRequests({ path: `^/apis/snapshot.storage.k8s.io/v1/namespaces/${NAMESPACE}/volumesnapshots$`, method: 'POST', hang: true, times: 1 });

    // Act
    const run = await cli('backup', 'create', '--local', '--state', c.stateDir, '--plan', PLAN, '--backup-name', 'cli-hung-snapshot', '--wait', '--kube-request-timeout', '0.5');

    // Assess
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toMatch(/^backup cli-hung-snapshot Available/m);
    expect(c.cluster.timeline.events.map((e) => e.type)).toEqual(expect.arrayContaining(['RequestHung', 'HungRequestClosed']));
    // It exits once it has printed, not after some straggling request or timer gives up.
    expect(run.exitAfterOutputMs).toBeLessThan(5_000);
  }, FULL_RUN);

  it('prints the failure naming the step and the Job when every Job create hangs, and exits 1', async () => {
    // Prepare
    c.cluster.faults.failRequests({ path: `^/apis/batch/v1/namespaces/${NAMESPACE}/jobs$`, method: 'POST', hang: true, times: null });

    // Act
    const run = await cli('backup', 'create', '--local', '--state', c.stateDir, '--plan', PLAN, '--backup-name', 'cli-hung-job', '--wait', '--kube-request-timeout', '0.5');

    // Assess
    expect(run).toMatchObject({ code: 1 });
    expect(run.stdout).toMatch(new RegExp(`^backup cli-hung-job Failed in StartExport \\(Export\\): KubernetesTransientError: create Job ${NAMESPACE}/export-[a-z0-9]+: no answer within 500 ms`, 'm'));
    expect(run.exitAfterOutputMs).toBeLessThan(5_000);
  }, FULL_RUN);

  it('refuses a request deadline that is not a positive number, before it starts anything', async () => {
    // Act
    const run = await cli('backup', 'create', '--local', '--state', c.stateDir, '--plan', PLAN, '--kube-request-timeout', '0');

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('"0" is not a positive number of seconds');
  }, 30_000);
});

/**
 * Pod exec over WebSocket, speaking the Kubernetes channel protocol (`v5.channel.k8s.io`,
 * `v4.channel.k8s.io`): every binary message starts with a channel byte — 0 stdin, 1 stdout,
 * 2 stderr, 3 the final Status, and (v5) 255 "close stream". The command runs as a real child
 * process in the pod's working directory with the container's volume mounts mapped (see
 * runtime.ts), without a shell unless the command is one, and is killed when the client goes
 * away. A non-zero exit is reported as the real kubelet does: Failure, reason
 * NonZeroExitCode, `details.causes[{reason: "ExitCode", message: "N"}]`.
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { Timeline } from '../timeline.js';
import type { VolumeDirs } from '../volumes.js';
import { ContainerStartError, prepareContainer } from '../runtime.js';
import { typeOf } from './resources.js';
import { badRequest } from './status.js';
import type { ObjectStore } from './store.js';

/** Subprotocols we speak, best first. */
export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const CLOSE = 255;

const POD = typeOf('Pod');

/** Collaborators of the exec handler. */
export interface ExecContext {
  store: ObjectStore;
  dirs: VolumeDirs;
  timeline: Timeline;
  /** `HTTP_PROXY` of exec'd processes: how they reach Services by DNS name (pod-network.ts). */
  podNetwork?: string;
}

const frame = (channel: number, data: Buffer | string) => Buffer.concat([Buffer.from([channel]), Buffer.isBuffer(data) ? data : Buffer.from(data)]);

/** Parses and checks an exec request before the upgrade, so errors are plain HTTP Status answers. */
export function parseExecRequest(ctx: ExecContext, namespace: string, podName: string, query: URLSearchParams) {
  const pod = ctx.store.require(POD, namespace, podName) as unknown as V1Pod;
  const command = query.getAll('command');
  if (command.length === 0) throw badRequest('you must specify at least 1 command');
  if (query.get('tty') === 'true' || query.get('tty') === '1') throw badRequest('the local cluster does not support a TTY for exec; run without -t');
  const containers = (pod.spec?.containers ?? []) as V1Container[];
  const containerName = query.get('container') ?? (containers.length === 1 ? containers[0]!.name : undefined);
  if (!containerName) throw badRequest(`a container name must be specified for pod ${podName}, choose one of: [${containers.map((c) => c.name).join(' ')}]`);
  const container = containers.find((c) => c.name === containerName);
  if (!container) throw badRequest(`container ${containerName} is not valid for pod ${podName}`);
  if (pod.status?.phase !== 'Running') {
    throw badRequest(`unable to upgrade connection: container not found ("${containerName}")`);
  }
  const flag = (name: string) => query.get(name) === 'true' || query.get(name) === '1';
  return { pod, container, command, stdin: flag('stdin'), stdout: flag('stdout'), stderr: flag('stderr') };
}

/** Completes the WebSocket upgrade of an exec request and runs the command. */
export function handleExecUpgrade(
  ctx: ExecContext,
  wss: WebSocketServer,
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  exec: ReturnType<typeof parseExecRequest>,
): void {
  wss.handleUpgrade(request, socket, head, (ws) => {
    void run(ctx, ws, exec);
  });
}

async function run(ctx: ExecContext, ws: WebSocket, exec: ReturnType<typeof parseExecRequest>): Promise<void> {
  const { pod, container, command } = exec;
  const namespace = pod.metadata!.namespace!;
  const name = pod.metadata!.name!;
  const finish = (status: Record<string, unknown>) => {
    if (ws.readyState === ws.OPEN) {
      ws.send(frame(ERROR, JSON.stringify({ metadata: {}, ...status })));
      ws.close(1000);
    }
  };
  ctx.timeline.record({ source: 'api', type: 'PodExec', namespace, name, detail: { container: container.name, command } });
  // Listen before the (asynchronous) container preparation: a client that pipes stdin sends
  // its frames, and the v5 close of stdin, right after the upgrade; they wait here until the
  // process exists. Frames arriving later go straight to it.
  const early: Buffer[] = [];
  let onFrame = (data: Buffer) => void early.push(data);
  ws.on('message', (data: Buffer) => onFrame(data));
  let prepared;
  try {
    prepared = await prepareContainer(pod, container, ctx.store, ctx.dirs, command);
  } catch (err) {
    if (!(err instanceof ContainerStartError)) throw err;
    ctx.timeline.record({ source: 'api', type: 'PodExecFinished', namespace, name, detail: { error: err.message } });
    finish({ status: 'Failure', message: err.message });
    return;
  }
  const child = spawn(prepared.file, prepared.args, {
    cwd: prepared.cwd,
    env: { ...prepared.env, ...(ctx.podNetwork ? { HTTP_PROXY: ctx.podNetwork, http_proxy: ctx.podNetwork } : {}) },
    stdio: [exec.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  // stdout/stderr are always drained; they are forwarded only when the client asked for them.
  child.stdout!.on('data', (d: Buffer) => exec.stdout && ws.readyState === ws.OPEN && ws.send(frame(STDOUT, d)));
  child.stderr!.on('data', (d: Buffer) => exec.stderr && ws.readyState === ws.OPEN && ws.send(frame(STDERR, d)));
  // A command that exits without reading its input must not crash the server with EPIPE.
  child.stdin?.on('error', () => undefined);
  onFrame = (data: Buffer) => {
    if (data.length === 0) return;
    if (data[0] === STDIN) child.stdin?.write(data.subarray(1));
    else if (data[0] === CLOSE && data[1] === STDIN) child.stdin?.end();
  };
  early.splice(0).forEach(onFrame);
  ws.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exitCode = await new Promise<number>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1)));
  });
  ctx.timeline.record({ source: 'api', type: 'PodExecFinished', namespace, name, detail: { container: container.name, exitCode } });
  if (exitCode === -1) {
    finish({ status: 'Failure', message: `exec: "${command[0]}" could not be started` });
  } else if (exitCode === 0) {
    finish({ status: 'Success' });
  } else {
    finish({
      status: 'Failure',
      message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${exitCode}`,
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
    });
  }
}

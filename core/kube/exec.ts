/**
 * Running a command in a pod's container: the `ExecPort` the hooks use, a client-node
 * implementation over the Kubernetes exec API (WebSocket), and `RecordingExec`, the documented
 * test fake that records every command and answers from a script.
 */
import { Writable } from 'node:stream';
import type { Exec, V1Status } from '@kubernetes/client-node';
import { translateKubeError } from './errors.js';

export interface ExecRequest {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  readonly command: readonly string[];
  /** Give up (and close the stream, which kills the process) after this long. */
  readonly timeoutSeconds: number;
}

export interface ExecResult {
  /** The command's exit code; -1 when it could not be started. */
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The API server's message when the command failed. */
  readonly message?: string;
}

/** The command did not finish within its timeout. */
export class ExecTimeoutError extends Error {
  constructor(readonly request: ExecRequest) {
    super(`command ${JSON.stringify(request.command)} in ${request.namespace}/${request.pod} (${request.container}) did not finish within ${request.timeoutSeconds} s`);
    this.name = 'ExecTimeoutError';
  }
}

/** Runs commands in containers. */
export interface ExecPort {
  exec(request: ExecRequest): Promise<ExecResult>;
}

/** Keeps at most this many bytes of each stream (hook output goes into the catalog). */
export const EXEC_OUTPUT_LIMIT = 16 * 1024;

class Capture extends Writable {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    if (this.size < EXEC_OUTPUT_LIMIT) {
      const part = chunk.subarray(0, EXEC_OUTPUT_LIMIT - this.size);
      this.chunks.push(part);
      this.size += part.length;
    }
    if (this.size >= EXEC_OUTPUT_LIMIT && chunk.length > 0) this.truncated = true;
    done();
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8') + (this.truncated ? '\n[output truncated]' : '');
  }
}

/** The exit code in a final exec Status: 0 on Success, `details.causes[ExitCode]` otherwise. */
export function exitCodeOf(status: V1Status): number {
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  const code = Number(cause?.message);
  return Number.isInteger(code) ? code : -1;
}

/** Starts the timer of one command's timeout: calls `expire` after `seconds`; returns the cancel. */
export type ExecTimer = (seconds: number, expire: () => void) => () => void;

const clockTimer: ExecTimer = (seconds, expire) => {
  const timer = setTimeout(expire, seconds * 1000);
  return () => clearTimeout(timer);
};

/** Exec over the Kubernetes API with client-node's `Exec` (the same KubeConfig as every call). */
export class KubernetesExec implements ExecPort {
  /** `timer` times each command; the default is the real clock (tests expire it themselves). */
  constructor(private readonly execApi: Exec, private readonly timer: ExecTimer = clockTimer) {}

  async exec(request: ExecRequest): Promise<ExecResult> {
    const stdout = new Capture();
    const stderr = new Capture();
    let settle!: (status: V1Status) => void;
    const finished = new Promise<V1Status>((resolve) => (settle = resolve));
    // Opening the stream fails like any request: a handshake past its deadline (connect.ts) or a
    // refused connection is a KubernetesTransientError naming the command and the pod.
    const ws = await this.execApi
      .exec(request.namespace, request.pod, request.container, [...request.command], stdout, stderr, null, false, (status) => settle(status))
      .catch((err: unknown) => {
        // The WebSocket reports an ErrorEvent, with the error inside.
        throw translateKubeError(`exec ${JSON.stringify(request.command)} in ${request.namespace}/${request.pod} (${request.container})`, (err as { error?: unknown }).error ?? err);
      });
    const closed = new Promise<V1Status>((resolve) =>
      ws.on('close', () => resolve({ status: 'Failure', message: 'the exec stream closed without a final status' })),
    );
    let cancel = () => {};
    const timedOut = new Promise<'timeout'>((resolve) => (cancel = this.timer(request.timeoutSeconds, () => resolve('timeout'))));
    try {
      const outcome = await Promise.race([finished, timedOut, closed.then(async (s) => (await Promise.race([finished, Promise.resolve(s)])))]);
      if (outcome === 'timeout') {
        // Closing the stream makes the API server stop the process.
        ws.close();
        throw new ExecTimeoutError(request);
      }
      const exitCode = exitCodeOf(outcome);
      return { exitCode, stdout: stdout.text(), stderr: stderr.text(), ...(exitCode === 0 ? {} : { message: outcome.message ?? 'the command failed' }) };
    } finally {
      cancel();
    }
  }
}

/** One scripted answer of {@link RecordingExec}. */
export type ScriptedExec = ExecResult | 'timeout' | ((request: ExecRequest) => ExecResult | 'timeout');

/**
 * The test fake of `ExecPort`: records every request in `requests` and answers with the next
 * scripted result for the pod (`script(pod, ...)`), else with success and no output.
 */
export class RecordingExec implements ExecPort {
  readonly requests: ExecRequest[] = [];
  private readonly scripts = new Map<string, ScriptedExec[]>();

  /** Queues answers for commands run in `pod`, used in order; the last one repeats. */
  script(pod: string, ...answers: ScriptedExec[]): this {
    this.scripts.set(pod, answers);
    return this;
  }

  async exec(request: ExecRequest): Promise<ExecResult> {
    this.requests.push(request);
    const queue = this.scripts.get(request.pod);
    const next = queue && (queue.length > 1 ? queue.shift()! : queue[0]);
    const answer = typeof next === 'function' ? next(request) : next;
    if (answer === 'timeout') throw new ExecTimeoutError(request);
    return answer ?? { exitCode: 0, stdout: '', stderr: '' };
  }
}

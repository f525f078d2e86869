/**
 * A line-oriented conversation with a process started by exec in a pod's container: requests go
 * to its stdin one JSON line each, answers come back on its stdout one JSON line each, matched
 * by `id`. One WebSocket carries every exchange of a session, so a step that makes hundreds of
 * calls pays for one exec handshake and one process start, not one per call.
 */
import { PassThrough, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { Exec, V1Status } from '@kubernetes/client-node';
import { translateKubeError } from './errors.js';

/** The session's process ended, or its stream closed, before it answered. */
export class ExecSessionClosedError extends Error {
  constructor(readonly where: string, detail: string) {
    super(`the exec session in ${where} ended: ${detail}`);
    this.name = 'ExecSessionClosed';
  }
}

/** No answer within the request's deadline. */
export class ExecSessionTimeoutError extends Error {
  constructor(readonly where: string, seconds: number) {
    super(`no answer from the exec session in ${where} within ${seconds} s`);
    this.name = 'ExecSessionTimeout';
  }
}

/** Keeps at most this much of the process's stderr, for the error that says why it ended. */
const STDERR_LIMIT = 4 * 1024;

interface Pending {
  resolve(answer: Record<string, unknown>): void;
  reject(err: Error): void;
  cancel(): void;
}

/** An open session; {@link openExecSession} starts one. */
export class ExecSession {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private ended: Error | undefined;
  private stderr = '';

  constructor(
    private readonly where: string,
    private readonly stdin: PassThrough,
    private readonly closeStream: () => void,
  ) {}

  /** Sends one request (an object; `id` is added) and resolves with its answer line, parsed. */
  request(message: Record<string, unknown>, timeoutSeconds: number): Promise<Record<string, unknown>> {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ExecSessionTimeoutError(this.where, timeoutSeconds));
      }, timeoutSeconds * 1000);
      this.pending.set(id, { resolve, reject, cancel: () => clearTimeout(timer) });
      this.stdin.write(`${JSON.stringify({ ...message, id })}\n`);
    });
  }

  /** Ends stdin (the process exits when it has answered everything) and closes the stream. */
  close(): void {
    this.stdin.end();
    this.closeStream();
    this.fail('the session was closed');
  }

  /** @internal One line of the process's stdout. */
  answer(line: string): void {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // Not ours (a log line); answers are JSON objects.
    }
    const id = typeof parsed.id === 'number' ? parsed.id : undefined;
    const waiting = id === undefined ? undefined : this.pending.get(id);
    if (!waiting) return;
    this.pending.delete(id!);
    waiting.cancel();
    waiting.resolve(parsed);
  }

  /** @internal Text the process wrote on stderr (kept short, for the error). */
  complain(text: string): void {
    if (this.stderr.length < STDERR_LIMIT) this.stderr = (this.stderr + text).slice(0, STDERR_LIMIT);
  }

  /** @internal The process or the stream ended: every waiting request fails with why. */
  fail(detail: string): void {
    if (this.ended) return;
    const last = this.stderr.trim().split('\n').filter((l) => l.trim() !== '').at(-1);
    this.ended = new ExecSessionClosedError(this.where, `${detail}${last ? ` (${last})` : ''}`);
    for (const waiting of this.pending.values()) {
      waiting.cancel();
      waiting.reject(this.ended);
    }
    this.pending.clear();
  }
}

/** Splits a byte stream into lines and hands each to `line` (a character split across frames stays whole). */
class Lines extends Writable {
  private rest = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly line: (text: string) => void) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    const text = this.rest + this.decoder.write(chunk);
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    for (const l of lines) if (l.trim() !== '') this.line(l);
    done();
  }
}

/** Starts `command` in `pod`'s `container` with stdin open, for a {@link ExecSession}. */
export async function openExecSession(exec: Exec, target: { namespace: string; pod: string; container: string; command: readonly string[] }): Promise<ExecSession> {
  const where = `${target.namespace}/${target.pod} (${target.container})`;
  const stdin = new PassThrough();
  let session: ExecSession | undefined;
  const stdout = new Lines((line) => session?.answer(line));
  const stderr = new Writable({
    write(chunk: Buffer, _enc, done) {
      session?.complain(chunk.toString('utf8'));
      done();
    },
  });
  const ws = await exec
    .exec(target.namespace, target.pod, target.container, [...target.command], stdout, stderr, stdin, false, (status: V1Status) => {
      session?.fail(status.status === 'Success' ? 'the process exited' : `the process failed: ${status.message ?? status.reason ?? 'no message'}`);
    })
    .catch((err: unknown) => {
      throw translateKubeError(`exec ${JSON.stringify(target.command)} in ${where}`, (err as { error?: unknown }).error ?? err);
    });
  session = new ExecSession(where, stdin, () => ws.close());
  ws.on('close', () => session?.fail('the exec stream closed'));
  return session;
}

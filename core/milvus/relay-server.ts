/**
 * The relay's process side (`milvus-guard datamover milvus-relay --stdio`), run by exec in the
 * relay pod (relay.ts): it reads one JSON call per stdin line, sends it to Milvus with the
 * credentials the pod's environment holds (from the plan's `authSecret`, put there by the
 * kubelet), and writes one JSON answer per stdout line. The credentials never leave the pod: not
 * in the exec command, not in an answer, not in a log line.
 *
 * Milvus takes them as `Authorization: Bearer <user>:<password>` on REST v2
 * and, when authorization is enabled, on the management port's `/api/v1` handlers
 * (internal/distributed/proxy/httpserver: `ParseUsernamePassword` reads basic auth or the bearer
 * value split at ':').
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { EnvHttpProxyAgent, request as undiciRequest } from 'undici';
import { UserError } from '../errors.js';

/** One call as the client side writes it (transport.ts `MilvusCall`, with its id). */
interface RelayCall {
  id: number;
  port: 'rest' | 'management';
  method: 'GET' | 'POST';
  path: string;
  query?: Record<string, string | number>;
  body?: string;
  timeoutMs?: number;
}

/** One answer: Milvus's status and body, or why it could not be reached. */
export type RelayAnswer = { id: number; status: number; body: string } | { id: number; unavailable: string } | { id: number; refused: string };

/** How the relay authenticates: the user and password of the plan's `authSecret`. */
export interface RelayCredentials {
  readonly username: string;
  readonly password: string;
}

export interface RelayOptions {
  /** Base URLs of Milvus's REST (19530) and management (9091) ports. */
  readonly rest: string;
  readonly management: string;
  readonly credentials: RelayCredentials;
  /**
   * The HTTP client; by default undici's `request` through `EnvHttpProxyAgent` (HTTP_PROXY and
   * NO_PROXY honoured). Not `fetch`: GetFlushState is a GET with a JSON body, which fetch refuses.
   */
  readonly send?: (url: string, init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; signal: AbortSignal }) => Promise<{ status: number; body: string }>;
}

/**
 * The calls the relay forwards: the ones milvus-guard makes (core/milvus/client.ts), and nothing
 * else. A guard against our own mistakes, not a security boundary: whoever can exec into the
 * relay pod can read the credentials from its environment anyway.
 */
const FORWARDED: Record<RelayCall['port'], readonly RegExp[]> = {
  rest: [/^\/v2\/vectordb\/(databases\/list|collections\/(list|flush|get_stats|get_load_state|load|release|describe)|entities\/(query|search))$/],
  management: [/^\/healthz$/, /^\/management\/datacoord\/garbage_collection\/(pause|resume)$/, /^\/api\/v1\/persist(\/state)?$/],
};

const DEFAULT_TIMEOUT_MS = 30_000;

/** The credentials from the environment the relay pod gets from the plan's `authSecret`. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv): RelayCredentials {
  const username = env.MILVUS_USERNAME;
  const password = env.MILVUS_PASSWORD;
  if (username && password !== undefined) return { username, password };
  throw new UserError('the relay has no Milvus credentials: set MILVUS_USERNAME and MILVUS_PASSWORD in its environment');
}

const authorization = (c: RelayCredentials): string => `Bearer ${c.username}:${c.password}`;

function isCall(value: unknown): value is RelayCall {
  const v = value as Partial<RelayCall> | null;
  return (
    typeof v === 'object' && v !== null && typeof v.id === 'number' && (v.port === 'rest' || v.port === 'management') && (v.method === 'GET' || v.method === 'POST') && typeof v.path === 'string'
  );
}

/** Sends one call to Milvus and says what came back. Never throws. */
export async function relayCall(call: RelayCall, options: RelayOptions): Promise<RelayAnswer> {
  if (!FORWARDED[call.port].some((p) => p.test(call.path))) return { id: call.id, refused: `the relay does not forward ${call.method} ${call.path} on the ${call.port} port` };
  const base = call.port === 'rest' ? options.rest : options.management;
  const url = new URL(call.path, base);
  for (const [k, v] of Object.entries(call.query ?? {})) url.searchParams.set(k, String(v));
  const send = options.send ?? defaultSend();
  try {
    const res = await send(url.href, {
      method: call.method,
      headers: { Authorization: authorization(options.credentials), Accept: 'application/json', ...(call.body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(call.body !== undefined ? { body: call.body } : {}),
      signal: AbortSignal.timeout(call.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    });
    const body = res.body;
    // What an HTTP proxy on the way says when nothing answers behind it (the Service has no ready pod).
    if (res.status === 502 || res.status === 503 || res.status === 504) return { id: call.id, unavailable: `${call.method} ${url.origin}${url.pathname}: HTTP ${res.status} ${body.trim().slice(0, 200)}` };
    return { id: call.id, status: res.status, body };
  } catch (err) {
    // Only the cause: an undici error can quote the request, and the request carries the credentials.
    // undici's request puts the code (ECONNREFUSED, ENOTFOUND, UND_ERR_*) on the error itself, fetch on its cause.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const code = (err as NodeJS.ErrnoException).code;
    const reason = (err as Error).name === 'TimeoutError' ? `no answer within ${(call.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000} s` : (code ?? cause?.code ?? cause?.message ?? (err as Error).name);
    return { id: call.id, unavailable: `${call.method} ${url.origin}${url.pathname}: ${reason}` };
  }
}

let agent: EnvHttpProxyAgent | undefined;
function defaultSend(): NonNullable<RelayOptions['send']> {
  agent ??= new EnvHttpProxyAgent();
  const dispatcher = agent;
  return async (url, init) => {
    const res = await undiciRequest(url, { ...init, dispatcher });
    return { status: res.statusCode, body: await res.body.text() };
  };
}

/**
 * Serves calls from `input` lines to `output` lines until `input` ends, answering each as soon
 * as Milvus does. A line that is not a call is answered with `refused` when it has an id, else ignored.
 */
export async function serveRelay(input: Readable, output: Writable, options: RelayOptions): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  const write = (answer: RelayAnswer) => void output.write(`${JSON.stringify(answer)}\n`);
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    if (!isCall(parsed)) {
      const id = (parsed as { id?: unknown } | null)?.id;
      if (typeof id === 'number') write({ id, refused: 'not a relay call: want {id, port, method, path, query?, body?}' });
      continue;
    }
    const work = relayCall(parsed, options).then(write);
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  }
  await Promise.all(inFlight);
}

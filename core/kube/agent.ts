/**
 * Connection reuse for the Kubernetes API. client-node 1.4 builds a new `https.Agent` for every
 * request (`KubeConfig.createAgent`, called by `applySecurityAuthentication` for the typed clients
 * and by `applyToHTTPSOptions` for our own requests; kubernetes-client/javascript#2893), so every
 * call opened a TCP connection and did a full TLS handshake: a round trip or two to the EKS
 * endpoint and the handshake's crypto on both sides, for each of the hundred-odd objects a
 * restore creates and each Milvus request sent through the API server's service proxy.
 *
 * Here each KubeConfig gets a keep-alive agent per set of TLS options (one, unless an exec
 * credential plugin rotates client certificates), made with the options of the agent
 * client-node made, and requests use it instead. Sockets idle for longer than
 * {@link MAX_IDLE_MS} are closed before a request picks one, measured on the wall clock: a warm
 * Lambda is frozen between invocations (timers do not run then), and a socket left from the
 * invocation before may have been closed by the server meanwhile; reusing it would fail the
 * request. Servers close idle connections too: kube-apiserver after 90 s (`IdleTimeout` in
 * k8s.io/apiserver's secure_serving.go), the local cluster's Node server after 5 s, which it
 * says (`Keep-Alive: timeout=5`, honoured by Node's agent as well); 4 s stays under both.
 */
import { createHash } from 'node:crypto';
import { Agent, type AgentOptions } from 'node:https';
import type { Socket } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';

/** Sockets idle for longer than this are not reused. */
export const MAX_IDLE_MS = 4000;

// What decides the TLS session: an agent made with other values of these is another agent.
const TLS_OPTIONS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername', 'ciphers', 'honorCipherOrder', 'ecdhCurve', 'crl', 'dhparam', 'secureOptions', 'secureProtocol', 'sessionIdContext'] as const;

/** A keep-alive agent that knows how long each free socket has been idle. */
export class ReusingAgent extends Agent {
  private readonly idleSince = new WeakMap<Socket, number>();

  constructor(
    options: AgentOptions,
    private readonly now: () => number = Date.now,
  ) {
    super({ ...options, keepAlive: true });
    // Emitted when a request is done with its socket (after the agent's own listener, which
    // keeps it alive or destroys it).
    this.on('free', (socket: Socket) => this.idleSince.set(socket, this.now()));
  }

  /** Whether a request is running or waiting for a socket. */
  busy(): boolean {
    const any = (group: NodeJS.ReadOnlyDict<unknown[]>) => Object.values(group).some((list) => (list?.length ?? 0) > 0);
    return any(this.sockets) || any(this.requests);
  }

  /**
   * Closes every free socket: one was found closed by the server under a request, and the
   * others, idle about as long, may be too (request.ts sends the request once more on a new one).
   */
  closeAllIdle(): void {
    for (const sockets of Object.values(this.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
  }

  /** Closes the free sockets idle for longer than `maxIdleMs`. */
  closeIdle(maxIdleMs = MAX_IDLE_MS): void {
    const now = this.now();
    for (const sockets of Object.values(this.freeSockets)) {
      for (const socket of sockets ?? []) {
        if (now - (this.idleSince.get(socket) ?? now) > maxIdleMs) socket.destroy();
      }
    }
  }
}

// Per KubeConfig, one agent per set of TLS options: an exec credential plugin may hand out a new
// client certificate while requests on the old one are still running, and those must finish.
const agents = new WeakMap<KubeConfig, Map<string, ReusingAgent>>();

/**
 * The agent a request to `kc`'s cluster should use in place of `made`, the one client-node made
 * for it: `kc`'s keep-alive agent with the same TLS options, its stale sockets closed. Anything
 * but a plain `https.Agent` (a proxy's agent, none) is returned as it is.
 */
export function reusedAgent<T>(kc: KubeConfig, made: T, now: () => number = Date.now): T | ReusingAgent {
  if (!(made instanceof Agent) || made.constructor !== Agent) return made;
  const options = (made as Agent & { options: AgentOptions }).options;
  const fingerprint = fingerprintOf(options);
  let byOptions = agents.get(kc);
  if (!byOptions) agents.set(kc, (byOptions = new Map()));
  let agent = byOptions.get(fingerprint);
  if (!agent) {
    agent = new ReusingAgent(Object.fromEntries(TLS_OPTIONS.filter((k) => options[k] !== undefined).map((k) => [k, options[k]])), now);
    byOptions.set(fingerprint, agent);
  }
  // The other agents of the KubeConfig (options no longer used) keep no idle socket, and go
  // once their last request has finished.
  for (const [key, other] of byOptions) {
    other.closeIdle();
    if (other !== agent && !other.busy()) {
      other.destroy();
      byOptions.delete(key);
    }
  }
  return agent;
}

function fingerprintOf(options: AgentOptions): string {
  const hash = createHash('sha256');
  for (const k of TLS_OPTIONS) {
    const v: unknown = options[k];
    hash.update(`${k}=`);
    if (v === undefined) hash.update('-');
    else if (Buffer.isBuffer(v) || typeof v === 'string') hash.update(v);
    else hash.update(JSON.stringify(v)); // arrays of CAs, numbers, booleans (Buffers in them serialize whole)
    hash.update('\n');
  }
  return hash.digest('hex');
}

/**
 * Connection reuse with the Kubernetes API (core/kube/agent.ts): the typed clients and our own
 * requests share one keep-alive connection per KubeConfig instead of a TLS handshake per call,
 * and a connection idle for longer than MAX_IDLE_MS (a warm Lambda frozen between invocations)
 * is not reused. Against a real HTTPS server on 127.0.0.1 that counts its TLS connections.
 */
import { readFileSync } from 'node:fs';
import { Agent, createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { MAX_IDLE_MS, ReusingAgent, reusedAgent } from '../../core/kube/agent.js';
import { makeKubeClients } from '../../core/kube/connect.js';
import { KubernetesTransientError } from '../../core/kube/errors.js';
import { kubeRequest } from '../../core/kube/request.js';
import { ServiceProxyTransport } from '../../core/milvus/transport.js';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const SERVER_CERT = fixture('apiserver-test-only.crt');

let server: Server;
let endpoint: string;
let connections = 0;
/** A request to /slow is answered once the test releases it. */
const held = { arrived: () => {}, released: Promise.resolve() };
/** How many times each path arrived, and how many requests each connection has carried. */
const arrivals = new Map<string, number>();
const carried = new WeakMap<object, number>();
/** Set: the next request on a kept-alive connection has it closed under it, whatever its path. */
let closeNextReused = false;

beforeAll(async () => {
  server = createServer({ cert: SERVER_CERT, key: fixture('apiserver-test-only.key') }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    const answer = () => res.end(JSON.stringify({ kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: [] }));
    const path = new URL(req.url ?? '/', 'https://local').pathname;
    arrivals.set(path, (arrivals.get(path) ?? 0) + 1);
    const nth = (carried.get(req.socket) ?? 0) + 1;
    carried.set(req.socket, nth);
    // The connection closes under the request, as when the server times it out as idle just as
    // the request is sent: on a kept-alive connection only (/closed-when-reused), or always.
    const closeReused = nth > 1 && (path.endsWith('/closed-when-reused') || closeNextReused);
    if (closeReused || path === '/closed') {
      if (closeReused) closeNextReused = false;
      req.socket.destroy();
      return;
    }
    if (req.url === '/slow') {
      held.arrived();
      void held.released.then(answer);
    } else answer();
  });
  server.on('secureConnection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
});

beforeEach(() => {
  server.closeAllConnections();
  connections = 0;
  arrivals.clear();
  closeNextReused = false;
});

function kubeConfig(ca = SERVER_CERT): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: endpoint, caData: Buffer.from(ca).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', token: 'test-token' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

/** GET `path` through `agent`; resolves when the answer has been read. */
function get(agent: Agent, path = '/api/v1/namespaces'): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = request(`${endpoint}${path}`, { agent, ca: SERVER_CERT }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', reject);
    r.end();
  });
}

describe('connections to the Kubernetes API', () => {
  it('serves one after another call of the typed clients and of kubeRequest over one TLS connection', async () => {
    const kc = kubeConfig();
    const clients = makeKubeClients(kc);

    for (let i = 0; i < 3; i++) await clients.core.listNamespace();
    for (let i = 0; i < 3; i++) expect((await kubeRequest(kc, { method: 'GET', path: '/api/v1/namespaces' })).status).toBe(200);

    expect(connections).toBe(1);
  });

  it('does not reuse a connection idle for longer than MAX_IDLE_MS by the wall clock', async () => {
    let now = 1_000_000;
    const kc = kubeConfig();
    const made = () => new Agent({ ca: SERVER_CERT });

    await get(reusedAgent(kc, made(), () => now) as Agent);
    now += MAX_IDLE_MS;
    await get(reusedAgent(kc, made(), () => now) as Agent);
    expect(connections).toBe(1);

    now += MAX_IDLE_MS + 1;
    await get(reusedAgent(kc, made(), () => now) as Agent);
    expect(connections).toBe(2);
  });

  it('lets a request finish when the next one comes with other TLS options (a rotated client certificate)', async () => {
    const kc = kubeConfig();
    const arrived = new Promise<void>((resolve) => (held.arrived = resolve));
    let release = () => {};
    held.released = new Promise<void>((resolve) => (release = resolve));

    const slow = get(reusedAgent(kc, new Agent({ ca: SERVER_CERT })) as Agent, '/slow');
    slow.catch(() => {}); // asserted below; a rejection must not go unhandled meanwhile
    await arrived;
    const other = get(reusedAgent(kc, new Agent({ ca: `${SERVER_CERT}\n` })) as Agent);
    release();

    await expect(slow).resolves.toBe(200);
    await expect(other).resolves.toBe(200);
  });

  it('drops an agent whose TLS options are no longer used once its requests are done', async () => {
    const kc = kubeConfig();
    const old = reusedAgent(kc, new Agent({ ca: SERVER_CERT })) as ReusingAgent;
    await get(old);
    const idle = Object.values(old.freeSockets).flat();
    const current = reusedAgent(kc, new Agent({ ca: `${SERVER_CERT}\n` }));

    expect(idle).toHaveLength(1);
    expect(idle[0]!.destroyed).toBe(true);
    expect(reusedAgent(kc, new Agent({ ca: SERVER_CERT }))).not.toBe(old);
    expect(current).not.toBe(old);
  });

  it('keeps one agent per KubeConfig and TLS options, and leaves other agents as they are', () => {
    const kc = kubeConfig();
    const first = reusedAgent(kc, new Agent({ ca: SERVER_CERT }));
    const other = new (class ProxyAgent extends Agent {})({ ca: SERVER_CERT });

    expect(first).toBeInstanceOf(ReusingAgent);
    expect(reusedAgent(kc, new Agent({ ca: SERVER_CERT }))).toBe(first);
    expect(reusedAgent(kubeConfig(), new Agent({ ca: SERVER_CERT }))).not.toBe(first);
    const second = reusedAgent(kc, new Agent({ ca: `${SERVER_CERT}\n` }));
    expect(second).not.toBe(first);
    expect(reusedAgent(kc, new Agent({ ca: `${SERVER_CERT}\n` }))).toBe(second);
    expect(reusedAgent(kc, other)).toBe(other);
    expect(reusedAgent(kc, undefined)).toBeUndefined();
  });
});

describe('a kept-alive connection closed under a request', () => {
  /** A KubeConfig with one connection already made and kept alive. */
  async function warm(): Promise<KubeConfig> {
    const kc = kubeConfig();
    const before = connections;
    await kubeRequest(kc, { method: 'GET', path: '/api/v1/namespaces' });
    expect(connections).toBe(before + 1);
    return kc;
  }

  it('sends an idempotent request again on a new connection', async () => {
    const kc = await warm();

    const res = await kubeRequest(kc, { method: 'GET', path: '/closed-when-reused' });

    expect(res.status).toBe(200);
    expect(arrivals.get('/closed-when-reused')).toBe(2);
    expect(connections).toBe(2);
  });

  it('sends a POST again only when the caller says it is idempotent', async () => {
    const kc = await warm();
    await expect(kubeRequest(kc, { method: 'POST', path: '/closed-when-reused', body: { search: 1 }, idempotent: true })).resolves.toMatchObject({ status: 200 });
    expect(arrivals.get('/closed-when-reused')).toBe(2);

    arrivals.clear();
    const once = kubeRequest(kc, { method: 'POST', path: '/closed-when-reused', body: { insert: 1 } });
    await expect(once).rejects.toThrow(KubernetesTransientError);
    await expect(once).rejects.toThrow(/^POST \/closed-when-reused: /);
    expect(arrivals.get('/closed-when-reused')).toBe(1);
  });

  it('closes the other idle connections first: the one more attempt goes on a new connection', async () => {
    const kc = kubeConfig();
    // Two requests at once: two connections, both kept alive.
    await Promise.all([kubeRequest(kc, { method: 'GET', path: '/api/v1/namespaces' }), kubeRequest(kc, { method: 'GET', path: '/api/v1/namespaces' })]);
    expect(connections).toBe(2);

    await expect(kubeRequest(kc, { method: 'GET', path: '/closed-when-reused' })).resolves.toMatchObject({ status: 200 });
    expect(arrivals.get('/closed-when-reused')).toBe(2);
    expect(connections).toBe(3);
  });

  it('sends a Milvus call through the service proxy again when the call says it may be', async () => {
    const kc = await warm();
    const proxy = new ServiceProxyTransport(kc, { namespace: 'vector-db', service: 'm-milvus', restPort: 19530, managementPort: 9091 });
    const path = '/api/v1/namespaces/vector-db/services/m-milvus:19530/proxy/closed-when-reused';

    await expect(proxy.call({ port: 'rest', method: 'POST', path: '/closed-when-reused', body: '{}', idempotent: true })).resolves.toMatchObject({ status: 200 });
    expect(arrivals.get(path)).toBe(2);
    arrivals.clear();
    await expect(proxy.call({ port: 'rest', method: 'POST', path: '/closed-when-reused', body: '{}' })).rejects.toThrow(KubernetesTransientError);
    expect(arrivals.get(path)).toBe(1);
  });

  it('does not send again a request whose own new connection closed, nor one the caller says is not idempotent', async () => {
    const fresh = kubeConfig();
    await expect(kubeRequest(fresh, { method: 'GET', path: '/closed' })).rejects.toThrow(KubernetesTransientError);
    expect(arrivals.get('/closed')).toBe(1);

    // A reused connection closes, and so does the new one the request is sent again on: that is the end.
    arrivals.clear();
    const kc = await warm();
    await expect(kubeRequest(kc, { method: 'GET', path: '/closed' })).rejects.toThrow(KubernetesTransientError);
    expect(arrivals.get('/closed')).toBe(2);

    arrivals.clear();
    await kubeRequest(kc, { method: 'GET', path: '/api/v1/namespaces' });
    await expect(kubeRequest(kc, { method: 'GET', path: '/closed-when-reused', idempotent: false })).rejects.toThrow(KubernetesTransientError);
    expect(arrivals.get('/closed-when-reused')).toBe(1);
  });
});

describe('a kept-alive connection closed under a typed call', () => {
  it('sends a GET once more, and a POST not at all', async () => {
    const clients = makeKubeClients(kubeConfig());
    await clients.core.listNamespace();

    closeNextReused = true;
    await expect(clients.core.listNamespace()).resolves.toMatchObject({ kind: 'NamespaceList' });
    expect(arrivals.get('/api/v1/namespaces')).toBe(3);
    expect(closeNextReused).toBe(false);

    // Two stale connections: the other one is closed before the one more attempt.
    await Promise.all([clients.core.listNamespace(), clients.core.listNamespace()]);
    const before = connections;
    closeNextReused = true;
    await expect(clients.core.listNamespace()).resolves.toMatchObject({ kind: 'NamespaceList' });
    expect(connections).toBe(before + 1);

    closeNextReused = true;
    const arrived = arrivals.get('/api/v1/namespaces')!;
    await expect(clients.core.createNamespace({ body: { metadata: { name: 'x' } } })).rejects.toThrow(/ECONNRESET|socket hang up/);
    expect(arrivals.get('/api/v1/namespaces')).toBe(arrived + 1);
  });
});

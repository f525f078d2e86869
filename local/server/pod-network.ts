/**
 * The pod network, as far as the local cluster has one: processes run in pods (here, by exec)
 * reach a Service by its cluster DNS name, `http://NAME.NAMESPACE.svc[.cluster.local]:PORT/...`.
 * There is no cluster DNS on this machine, so those processes get `HTTP_PROXY` pointing here, a
 * plain HTTP forward proxy on 127.0.0.1 that routes each request to the Service as the service
 * proxy does (proxy.ts: the ready pods behind the selector, the simulated Milvus). Unlike the API
 * server's service proxy, it passes every header on, `Authorization` included, as a pod-to-pod
 * request does; that is what lets a relay authenticate where the service proxy cannot.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { proxyToService, type MilvusInstances } from './proxy.js';
import { KubeApiError } from './status.js';
import type { ObjectStore } from './store.js';

/** `NAME.NAMESPACE.svc` or `NAME.NAMESPACE.svc.cluster.local`. */
const SERVICE_HOST = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$/;

export interface PodNetwork {
  /** The `HTTP_PROXY` value pod processes get. */
  readonly proxyUrl: string;
  close(): Promise<void>;
}

async function bodyOf(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Starts the forward proxy on 127.0.0.1 (a free port). It takes both ways a client uses an HTTP
 * proxy: a request naming the whole URL (absolute form), and a CONNECT tunnel (what undici's
 * proxy agents open for every request), whose bytes are then HTTP requests for the Service
 * named in CONNECT, served by the same handler.
 */
export async function startPodNetwork(store: ObjectStore, milvus: MilvusInstances): Promise<PodNetwork> {
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      let target: URL;
      try {
        // Absolute form through the proxy; origin form (with Host) inside a tunnel.
        target = new URL(req.url?.startsWith('http://') ? req.url : `http://${req.headers.host ?? ''}${req.url ?? '/'}`);
      } catch {
        res.writeHead(400, { 'Content-Type': 'text/plain' }).end('the pod network proxies absolute http:// URLs only\n');
        return;
      }
      const host = SERVICE_HOST.exec(target.hostname);
      if (target.protocol !== 'http:' || !host || !target.port) {
        // As a name cluster DNS does not resolve, or a port nothing listens on.
        res.writeHead(502, { 'Content-Type': 'text/plain' }).end(`${target.host} is not a Service of the local cluster (NAME.NAMESPACE.svc:PORT)\n`);
        return;
      }
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      try {
        const answer = await proxyToService(store, milvus, {
          namespace: host[3]!,
          service: `${host[1]}:${target.port}`,
          method: req.method ?? 'GET',
          path: target.pathname,
          query: target.searchParams,
          headers,
          body: await bodyOf(req),
        });
        res.writeHead(answer.status, answer.headers).end(answer.body);
      } catch (err) {
        // No Service, no port, no ready pod: on a pod network, nothing answers there.
        const message = err instanceof KubeApiError ? err.message : String(err);
        if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' }).end(`${message}\n`);
      }
    })();
  };
  const server: Server = createServer(handler);
  const tunnels: Server = createServer(handler);
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const authority = req.url ?? '';
    const [hostname, port] = authority.split(':');
    if (!hostname || !port || !SERVICE_HOST.test(hostname)) {
      socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      return;
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) socket.unshift(head);
    tunnels.emit('connection', socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    proxyUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        tunnels.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

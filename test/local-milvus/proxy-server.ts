/**
 * Test helper: a loopback HTTPS server that answers the Kubernetes service-proxy path
 * (`/api/v1/namespaces/NS/services/SVC:PORT/proxy/PATH`) with a `MilvusSimulator`, so the
 * product's `MilvusClient` (and the quiesce functions on top of it) talk to the simulated Milvus
 * exactly as they do through a real API server, without a whole local cluster.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { MilvusClient } from '../../core/milvus/client.js';
import type { MilvusSimulator } from '../../local/milvus/index.js';

const fixture = (name: string): string => readFileSync(new URL(`../eks/fixtures/${name}`, import.meta.url), 'utf8');
const PROXY = /^\/api\/v1\/namespaces\/([^/]+)\/services\/([^/]+)\/proxy(\/.*)?$/;

export interface SimulatorProxy {
  milvus: MilvusClient;
  close: () => Promise<void>;
}

/** Serves `sim()` (read per request, so a test may swap the simulator) behind a service proxy on 127.0.0.1. */
export async function simulatorBehindProxy(sim: () => MilvusSimulator): Promise<SimulatorProxy> {
  const cert = fixture('apiserver-test-only.crt');
  const server: Server = createServer({ cert, key: fixture('apiserver-test-only.key') }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'https://localhost');
      const m = PROXY.exec(url.pathname);
      if (!m) {
        res.statusCode = 404;
        res.end('not a service proxy path');
        return;
      }
      const port = Number(decodeURIComponent(m[2]!).split(':').pop());
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(',') : v;
      // As the real API server (and the local one) does: the caller's credentials stay behind.
      delete headers.authorization;
      sim()
        .handle({ port, method: req.method ?? 'GET', path: m[3] ?? '/', query: url.searchParams, headers, body: Buffer.concat(chunks) })
        .then((answer) => {
          res.statusCode = answer.status;
          for (const [k, v] of Object.entries(answer.headers)) res.setHeader(k, v);
          res.end(answer.body);
        })
        .catch((err: Error) => {
          res.statusCode = 500;
          res.end(err.message);
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser(
    { name: 'c', server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, caData: Buffer.from(cert).toString('base64'), skipTLSVerify: false },
    { name: 'u', token: 't' },
  );
  const milvus = new MilvusClient(kc, { namespace: 'vector-db', service: 'production-milvus-milvus', restPort: 19530, managementPort: 9091 });
  return { milvus, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

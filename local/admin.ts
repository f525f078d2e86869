/**
 * A client for the local cluster's admin endpoints (`/_local/*`), for tests and tools that run
 * in another process than the cluster (for example next to `milvus-guard local up`). It reads
 * the server address, certificate and bearer token from the cluster's kubeconfig.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { parse as parseYaml } from 'yaml';
import type { JobFault, RequestFault, SnapshotFault } from './faults.js';
import type { TimelineEvent } from './timeline.js';
import { LOCAL_CONTEXT } from './cluster.js';

/** Faults of one simulated Milvus (see local/milvus). */
export type MilvusFaultSwitches = Record<string, boolean | undefined>;

/** The admin operations of a running local cluster. */
export interface LocalAdmin {
  injectFault(fault: { request: RequestFault } | { snapshot: SnapshotFault } | { job: JobFault }): Promise<void>;
  clearFaults(): Promise<void>;
  setMilvusFaults(namespace: string, name: string, faults: MilvusFaultSwitches): Promise<void>;
  timeline(): Promise<TimelineEvent[]>;
  settle(): Promise<void>;
}

/** Thrown when an admin request is refused. */
export class LocalAdminError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalAdminError';
  }
}

/** An admin client for the local cluster whose kubeconfig is at `kubeconfigPath`. */
export function localAdmin(kubeconfigPath: string): LocalAdmin {
  const config = parseYaml(readFileSync(kubeconfigPath, 'utf8')) as {
    clusters: { name: string; cluster: { server: string; 'certificate-authority-data': string } }[];
    users: { name: string; user: { token: string } }[];
  };
  const cluster = config.clusters.find((c) => c.name === LOCAL_CONTEXT)?.cluster;
  const token = config.users.find((u) => u.name === LOCAL_CONTEXT)?.user.token;
  if (!cluster || !token) throw new LocalAdminError(`${kubeconfigPath} is not a local cluster kubeconfig (no "${LOCAL_CONTEXT}" cluster and user)`);
  const ca = Buffer.from(cluster['certificate-authority-data'], 'base64').toString('utf8');

  const call = (method: string, path: string, body?: unknown): Promise<any> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        `${cluster.server}${path}`,
        { method, ca, headers: { Authorization: `Bearer ${token}`, ...(payload ? { 'Content-Type': 'application/json' } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 500) >= 300) reject(new LocalAdminError(`${method} ${path} answered ${res.statusCode}: ${text}`));
            else resolve(text ? JSON.parse(text) : undefined);
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });

  return {
    injectFault: async (fault) => void (await call('POST', '/_local/faults', fault)),
    clearFaults: async () => void (await call('DELETE', '/_local/faults')),
    setMilvusFaults: async (namespace, name, faults) => void (await call('POST', `/_local/milvus/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/faults`, faults)),
    timeline: async () => ((await call('GET', '/_local/timeline')) as { events: TimelineEvent[] }).events,
    settle: async () => void (await call('POST', '/_local/settle')),
  };
}

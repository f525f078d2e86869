/**
 * The service proxy (`/api/v1/namespaces/NS/services/[http:]NAME[:PORT]/proxy/PATH`). The
 * local cluster has no pod network, so a Service only has somewhere to send a request when
 * its selector picks the ready pods of a Milvus custom resource: then the request goes to
 * that instance's `MilvusSimulator` (one per CR, created on first use) with the resolved
 * container port; the simulator behaves like the CR's version and security settings
 * ({@link milvusSettingsOf}). Anything else answers 503 `no endpoints available`, as the real proxy does
 * for a Service without ready endpoints.
 */
import { MilvusSimulator, type MilvusSettings, type MilvusVolumes } from '../milvus/index.js';
import { imageTag } from '../../core/milvus/version.js';
import { milvusObjectStorageOf } from '../controllers/milvus.js';
import type { Timeline } from '../timeline.js';
import type { VolumeDirs } from '../volumes.js';
import { typeOf } from './resources.js';
import { badRequest, serviceUnavailable } from './status.js';
import type { KubeObject, ObjectStore } from './store.js';

const MILVUS = typeOf('Milvus');
const POD = typeOf('Pod');
const PVC = typeOf('PersistentVolumeClaim');
const SERVICE = typeOf('Service');

/** The simulated Milvus instances, one per Milvus CR (keyed by namespace/name and uid). */
export class MilvusInstances {
  private readonly instances = new Map<string, { uid: string; simulator: MilvusSimulator }>();

  constructor(
    private readonly store: ObjectStore,
    private readonly dirs: VolumeDirs,
    private readonly timeline: Timeline,
    private readonly now: () => Date,
  ) {}

  /**
   * The directories behind a Milvus CR's etcd and MinIO PVCs (operator naming:
   * `data-<name>-etcd-N`, `export-<name>-minio-N`), ordered by N; undefined when the CR or
   * any of its volumes is missing or unbound, which the simulator reports as Milvus down.
   * A CR with external object storage has no MinIO PVCs: its objects are in the bucket and root
   * path its config names, under the state directory's object storage (read from the CR on every
   * call, so a CR pointed at another bucket reads there at once).
   */
  volumesOf(namespace: string, name: string): MilvusVolumes | undefined {
    const cr = this.store.get(MILVUS, namespace, name);
    if (!cr) return undefined;
    const pvcs = this.store.list(PVC, namespace);
    const dirsOf = (pattern: RegExp) =>
      pvcs
        .map((p) => ({ pvc: p, index: Number(p.metadata.name.match(pattern)?.[1] ?? NaN) }))
        .filter((x) => Number.isInteger(x.index))
        .sort((a, b) => a.index - b.index)
        .map((x) => (x.pvc.status?.phase === 'Bound' ? this.dirs.volume(x.pvc.spec.volumeName) : undefined));
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const etcdDirs = dirsOf(new RegExp(`^data-${escaped}-etcd-(\\d+)$`));
    const storage = milvusObjectStorageOf(cr);
    if (storage.external) {
      if (etcdDirs.length === 0 || etcdDirs.some((d) => d === undefined)) return undefined;
      return { etcdDirs: etcdDirs as string[], minioDirs: [], objectStorageDir: this.dirs.objectStorage(), bucket: storage.bucketName, rootPath: storage.rootPath };
    }
    const minioDirs = dirsOf(new RegExp(`^export-${escaped}-minio-(\\d+)$`));
    if (etcdDirs.length === 0 || minioDirs.length === 0 || [...etcdDirs, ...minioDirs].some((d) => d === undefined)) return undefined;
    return { etcdDirs: etcdDirs as string[], minioDirs: minioDirs as string[] };
  }

  /**
   * Resolves once every instance's load reads in progress have finished (see
   * `MilvusSimulator.loadsSettled`): the query nodes' work, which the cluster's `settle()` waits
   * for as it waits for a container's process.
   */
  async loadsSettled(): Promise<void> {
    await Promise.all([...this.instances.values()].map(({ simulator }) => simulator.loadsSettled()));
  }

  /** The simulator of a Milvus CR, or undefined when there is no such CR. */
  get(namespace: string, name: string): MilvusSimulator | undefined {
    const cr = this.store.get(MILVUS, namespace, name);
    if (!cr) return undefined;
    const key = `${namespace}/${name}`;
    const existing = this.instances.get(key);
    if (existing && existing.uid === cr.metadata.uid) return existing.simulator;
    // A recreated CR (same name, new uid) is a new Milvus: fresh simulator state.
    const simulator = new MilvusSimulator({
      volumes: async () => this.volumesOf(namespace, name),
      // Read per request: an upgrade (new image tag) or a config change shows at once.
      settings: () => milvusSettingsOf(this.store.get(MILVUS, namespace, name)),
      now: this.now,
      record: (call) => {
        const { seq: _seq, at, method, path, port, detail } = call;
        this.timeline.record({ source: 'milvus', type: `${method} ${path}`, namespace, name, at, detail: { port, ...detail } });
      },
    });
    this.instances.set(key, { uid: cr.metadata.uid!, simulator });
    return simulator;
  }
}

/**
 * What the simulated Milvus takes from its CR: the version from `spec.components.image`'s tag
 * (else `spec.components.version`), and `spec.config.common.security.authorizationEnabled` /
 * `defaultRootPassword`, the keys Milvus reads from its config (the operator renders
 * `spec.config` into milvus.yaml).
 */
export function milvusSettingsOf(cr: KubeObject | undefined): MilvusSettings {
  const components = cr?.spec?.components as { image?: string; version?: string } | undefined;
  const security = (cr?.spec?.config as { common?: { security?: { authorizationEnabled?: unknown; defaultRootPassword?: unknown } } } | undefined)?.common?.security;
  const version = imageTag(components?.image) ?? components?.version;
  return {
    ...(version ? { version } : {}),
    authorizationEnabled: security?.authorizationEnabled === true || security?.authorizationEnabled === 'true',
    ...(typeof security?.defaultRootPassword === 'string' && security.defaultRootPassword !== '' ? { defaultRootPassword: security.defaultRootPassword } : {}),
  };
}

/** A proxied request, before routing. */
export interface ServiceProxyRequest {
  namespace: string;
  /** `[scheme:]name[:port]` from the URL. */
  service: string;
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | undefined>;
  body: Buffer;
}

const matchesSelector = (pod: KubeObject, selector: Record<string, string> | undefined) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => pod.metadata.labels?.[k] === v);

/** Routes one service-proxy request; throws a Status error for a missing service or port. */
export async function proxyToService(
  store: ObjectStore,
  milvus: MilvusInstances,
  request: ServiceProxyRequest,
): Promise<{ status: number; headers: Record<string, string>; body: Buffer | string }> {
  const parts = request.service.split(':');
  if (parts.length === 3 || (parts.length === 2 && (parts[0] === 'http' || parts[0] === 'https'))) parts.shift();
  const [name, portText] = parts as [string, string | undefined];
  if (request.service.startsWith('https:')) throw badRequest('the local cluster proxies plain HTTP only');
  const service = store.require(SERVICE, request.namespace, name);
  const ports = (service.spec?.ports ?? []) as { name?: string; port: number; targetPort?: number | string }[];
  // As on the real server: without a port only an unnamed service port matches.
  const servicePort = ports.find((p) => (portText === undefined ? !p.name : p.name === portText || String(p.port) === portText));
  if (!servicePort) throw serviceUnavailable(`no endpoints available for service "${request.service}"`);
  const pods = store.list(POD, request.namespace).filter((p) => matchesSelector(p, service.spec?.selector));
  const ready = pods.filter((p) => p.status?.phase === 'Running' && (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True'));
  if (ready.length === 0) throw serviceUnavailable(`no endpoints available for service "${name}"`);
  // Resolve a named targetPort through the pods' container ports, as endpoints do.
  let port = servicePort.targetPort ?? servicePort.port;
  if (typeof port === 'string') {
    const container = ready.flatMap((p) => (p.spec?.containers ?? []) as { ports?: { name?: string; containerPort: number }[] }[]);
    const named = container.flatMap((c) => c.ports ?? []).find((p) => p.name === port);
    if (!named) throw serviceUnavailable(`no endpoints available for service "${name}"`);
    port = named.containerPort;
  }
  const instance = ready[0]!.metadata.labels?.['app.kubernetes.io/instance'];
  const isMilvus = ready[0]!.metadata.labels?.['app.kubernetes.io/name'] === 'milvus' && instance !== undefined;
  const simulator = isMilvus ? milvus.get(request.namespace, instance) : undefined;
  if (!simulator) {
    throw serviceUnavailable(`no endpoints available for service "${name}" (the local cluster can only proxy to the simulated Milvus)`);
  }
  return simulator.handle({ port, method: request.method, path: request.path, query: request.query, headers: request.headers, body: request.body });
}

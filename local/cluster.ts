/**
 * `startLocalCluster`: the embedded default's Kubernetes — an API server on
 * 127.0.0.1 speaking the subset of the Kubernetes API milvus-guard uses, its controllers, and
 * a simulated Milvus behind the service proxy, all persisted in one state directory.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { UserError } from '../core/errors.js';
import { ControllerManager, type ControllerContext } from './controllers/context.js';
import { JobController } from './controllers/jobs.js';
import { MilvusOperator, milvusObjectStorageOf } from './controllers/milvus.js';
import { NamespaceController } from './controllers/namespaces.js';
import { TokensController } from './controllers/tokens.js';
import { PodController } from './controllers/pods.js';
import { SnapshotController } from './controllers/snapshots.js';
import { ensureDefaultStorageClass, VolumeController } from './controllers/volumes.js';
import { DeploymentController, StatefulSetController } from './controllers/workloads.js';
import { ClusterFaults } from './faults.js';
import { seedLocalCluster, type ObjectStorageKind } from './seed.js';
import { createApiServer } from './server/http.js';
import { startPodNetwork } from './server/pod-network.js';
import { ensureTlsMaterial } from './server/tls.js';
import { MilvusInstances } from './server/proxy.js';
import { typeOf } from './server/resources.js';
import { ObjectStore } from './server/store.js';
import type { PayloadMode } from './milvus/index.js';
import { Timeline } from './timeline.js';
import { VolumeDirs } from './volumes.js';

/** The port `milvus-guard local up` listens on unless `--port` says otherwise. */
export const DEFAULT_LOCAL_PORT = 17443;
/** Name of the cluster, user and context in the kubeconfig. */
export const LOCAL_CONTEXT = 'milvus-guard-local';

/** Options of `startLocalCluster`. */
export interface LocalClusterOptions {
  /** Directory for objects, volumes, snapshots, pod directories and the kubeconfig; created if missing. */
  stateDir: string;
  /** TCP port on 127.0.0.1; 0 picks a free one. Default 0. */
  port?: number;
  /** Multiplies the size of the seeded Milvus data (fresh state directories only). Default 1. */
  dataScale?: number;
  /**
   * `capped` keeps the seeded payloads small (many rows in few bytes); `full` writes them at the
   * size the rows take in Milvus (fresh state directories only; see `SeedOptions.payloads`).
   * Default `capped`.
   */
  seedPayloads?: PayloadMode;
  /** The seeded Milvus CR's image tag (`v2.5.14`, `2.6.8`, `master-…`): the version the simulated Milvus behaves like (fresh state directories only). Default `DEFAULT_MILVUS_VERSION`. */
  milvusVersion?: string;
  /**
   * Seed a Milvus with authorization enabled (fresh state directories only): root's password is
   * random, in the Secret `SEED_AUTH_SECRET` of the Milvus namespace. Default false.
   */
  milvusAuth?: boolean;
  /**
   * Where the seeded Milvus keeps its objects (fresh state directories only): `minio`, an
   * in-cluster MinIO on PVCs, or `s3`, an external S3 bucket (`SEED_S3_BUCKET`, a directory under
   * `dirs.objectStorage()`) with no MinIO. Default `minio`.
   */
  objectStorage?: ObjectStorageKind;
  /** Clock for timestamps and the timeline. Default: the system clock. */
  now?: () => Date;
  /** Whether a fresh state directory gets the seeded Milvus. Default true. */
  seed?: boolean;
  /** Interval of the controllers' background pass in ms. Default 200. */
  tickMs?: number;
}

/** A running local cluster. */
export interface LocalCluster {
  /** `https://127.0.0.1:PORT` (self-signed; the kubeconfig carries the certificate). */
  readonly url: string;
  /** The kubeconfig (mode 0600) with cluster/user/context `milvus-guard-local` and the bearer token. */
  readonly kubeconfigPath: string;
  /** The bearer token every request needs. */
  readonly token: string;
  /** PEM certificate of the server, to trust in clients that do not read the kubeconfig. */
  readonly ca: string;
  /** Fault injection (also at `POST /_local/faults`; see faults.ts). */
  readonly faults: ClusterFaults;
  /** API server events and Milvus calls in one ordered list (also at `GET /_local/timeline`). */
  readonly timeline: Timeline;
  /** The object store, for assertions and direct setup in tests. */
  readonly store: ObjectStore;
  /** The simulated Milvus instances (one per Milvus CR). */
  readonly milvus: MilvusInstances;
  /** Where volumes, snapshots and pod directories live. */
  readonly dirs: VolumeDirs;
  /** The external S3 buckets the Milvus CRs use, with the directory each one is (none with in-cluster MinIO). */
  externalBuckets(): ExternalBucket[];
  /**
   * Runs the controllers until nothing changes and no Job container is running, then waits for
   * the simulated Milvus instances' load reads in progress.
   */
  settle(timeoutMs?: number): Promise<void>;
  /** Stops the controllers and the server and kills running containers. State stays on disk. */
  stop(): Promise<void>;
}

/** A Milvus CR's external bucket and where it lives locally. */
export interface ExternalBucket {
  namespace: string;
  /** The Milvus CR. */
  name: string;
  bucket: string;
  rootPath: string;
  /** The bucket's directory: `<state>/object-storage/<bucket>`. */
  dir: string;
}

/** State directories held by clusters of this process. */
const heldStateDirs = new Set<string>();

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Claims a state directory for one running cluster (two servers writing the same JSON files
 * would lose objects). A lock left by a process that is gone is taken over. Returns the release.
 */
function lockStateDir(stateDir: string): () => void {
  const file = join(stateDir, 'server.lock');
  const owner = existsSync(file) ? Number(readFileSync(file, 'utf8')) : undefined;
  if (heldStateDirs.has(stateDir) || (owner !== undefined && owner !== process.pid && isAlive(owner))) {
    throw new UserError(`the state directory ${stateDir} is in use by another local cluster (process ${owner ?? process.pid}); stop it first or pass another --state`);
  }
  writeFileSync(file, String(process.pid));
  heldStateDirs.add(stateDir);
  return () => {
    heldStateDirs.delete(stateDir);
    rmSync(file, { force: true });
  };
}

function existingToken(kubeconfigPath: string): string | undefined {
  if (!existsSync(kubeconfigPath)) return undefined;
  const config = parseYaml(readFileSync(kubeconfigPath, 'utf8')) as { users?: { name: string; user?: { token?: string } }[] };
  return config.users?.find((u) => u.name === LOCAL_CONTEXT)?.user?.token;
}

/**
 * Starts the local cluster on 127.0.0.1. A fresh state directory is seeded with a Milvus
 * instance (see seed.ts); an existing one is loaded as it was left, with the same bearer
 * token. Resolves once the server listens, the kubeconfig is written and seeding is done.
 * Every request needs the token (401 otherwise); test faults are injected with
 * `cluster.faults` or `POST /_local/faults`, and `cluster.settle()` makes controller effects
 * deterministic in tests.
 */
export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const stateDir = resolve(options.stateDir);
  mkdirSync(stateDir, { recursive: true });
  const release = lockStateDir(stateDir);
  try {
    return await start(stateDir, options, release);
  } catch (err) {
    release();
    throw err;
  }
}

async function start(stateDir: string, options: LocalClusterOptions, release: () => void): Promise<LocalCluster> {
  const now = options.now ?? (() => new Date());
  const objectsDir = join(stateDir, 'objects');
  const fresh = !existsSync(join(objectsDir, 'meta.json'));
  const kubeconfigPath = join(stateDir, 'kubeconfig');
  const token = existingToken(kubeconfigPath) ?? randomBytes(32).toString('hex');

  const store = new ObjectStore({ dir: objectsDir, now });
  const faults = new ClusterFaults();
  const timeline = new Timeline(now);
  const dirs = new VolumeDirs(stateDir);
  const milvus = new MilvusInstances(store, dirs, timeline, now);
  const manager = new ControllerManager(options.tickMs ?? 200);
  const ctx: ControllerContext = { store, dirs, faults, timeline, now, track: (work) => manager.track(work) };
  const snapshots = new SnapshotController(ctx);
  const jobs = new JobController(ctx);
  for (const controller of [
    new NamespaceController(ctx),
    new TokensController(ctx),
    new MilvusOperator(ctx),
    new StatefulSetController(ctx),
    new DeploymentController(ctx),
    new VolumeController(ctx),
    new PodController(ctx),
    snapshots,
    jobs,
  ]) {
    manager.add(controller);
  }
  // The controllers' work, then the simulated Milvus's: a load's background read makes no
  // controller pass, so one settle after a load request means the read is done (Loaded, or
  // stuck on a missing file) and a poll of its state after a settle sees that, not Loading.
  const settle = async (timeoutMs?: number) => {
    await manager.settle(timeoutMs);
    await milvus.loadsSettled();
  };
  const unsubscribe = store.onChange(() => manager.kick());

  const tls = await ensureTlsMaterial(stateDir);
  const podNetwork = await startPodNetwork(store, milvus);
  const api = createApiServer({
    tls,
    podNetwork: podNetwork.proxyUrl,
    store,
    faults,
    timeline,
    dirs,
    milvus,
    token,
    now,
    settle: () => settle(),
    afterCreate: async (type, object) => {
      if (type.kind === 'VolumeSnapshot') await snapshots.freeze(object);
    },
  });
  await new Promise<void>((resolveListen, reject) => {
    api.server.once('error', reject);
    api.server.listen(options.port ?? 0, '127.0.0.1', () => resolveListen());
  });
  const port = (api.server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;
  writeFileAtomic.sync(
    kubeconfigPath,
    stringifyYaml({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: LOCAL_CONTEXT, cluster: { server: url, 'certificate-authority-data': Buffer.from(tls.cert).toString('base64') } }],
      users: [{ name: LOCAL_CONTEXT, user: { token } }],
      contexts: [{ name: LOCAL_CONTEXT, context: { cluster: LOCAL_CONTEXT, user: LOCAL_CONTEXT, namespace: 'vector-db' } }],
      'current-context': LOCAL_CONTEXT,
      preferences: {},
    }),
    { mode: 0o600 },
  );

  const stop = async () => {
    unsubscribe();
    await manager.stop();
    jobs.killAll();
    await api.close();
    await podNetwork.close();
    await Promise.race([Promise.all(manager.work), new Promise((r) => setTimeout(r, 2000).unref())]);
    release();
  };
  try {
    // Before the seed: its PVCs need the class to be provisioned.
    ensureDefaultStorageClass(store);
    if (fresh && options.seed !== false) {
      await seedLocalCluster(store, milvus, () => settle(), { dataScale: options.dataScale, payloads: options.seedPayloads, milvusVersion: options.milvusVersion, milvusAuth: options.milvusAuth, objectStorage: options.objectStorage });
    }
    else if (fresh) store.create(typeOf('Namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
    await settle();
  } catch (err) {
    await stop();
    throw err;
  }
  manager.start();
  const externalBuckets = (): ExternalBucket[] =>
    store.list(typeOf('Milvus')).flatMap((cr) => {
      const storage = milvusObjectStorageOf(cr);
      if (!storage.external) return [];
      return [{ namespace: cr.metadata.namespace!, name: cr.metadata.name, bucket: storage.bucketName, rootPath: storage.rootPath, dir: join(dirs.objectStorage(), storage.bucketName) }];
    });
  return { url, kubeconfigPath, token, ca: tls.cert, faults, timeline, store, milvus, dirs, externalBuckets, settle, stop };
}

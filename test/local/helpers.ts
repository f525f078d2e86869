/**
 * Test helpers for the local cluster: a cluster in a temporary state directory on a free
 * port, client-node clients built from its kubeconfig (the same path production code takes),
 * and builders for the objects tests create.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, type V1EnvVar, type V1Job, type V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { startLocalCluster, type LocalCluster, type LocalClusterOptions } from '../../local/cluster.js';

/** A started cluster and its clients. */
export interface TestCluster {
  cluster: LocalCluster;
  stateDir: string;
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
  /** Stops the cluster and removes the state directory. */
  dispose(): Promise<void>;
}

/** Clients for a kubeconfig file. */
export function clientsFor(kubeconfigPath: string) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
  };
}

/** Starts a cluster (unseeded unless asked) in a fresh temporary directory on a free port. */
export async function startTestCluster(options: Partial<LocalClusterOptions> = {}): Promise<TestCluster> {
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'mg-local-')));
  const cluster = await startLocalCluster({ seed: false, port: 0, ...options, stateDir });
  return {
    cluster,
    stateDir,
    ...clientsFor(cluster.kubeconfigPath),
    dispose: async () => {
      await cluster.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** Creates a namespace through the API. */
export async function createNamespace(core: CoreV1Api, name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name } } });
}

/** A PVC builder. */
export function pvc(name: string, extra: Partial<V1PersistentVolumeClaim['spec']> = {}): V1PersistentVolumeClaim {
  return { metadata: { name }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...extra } };
}

/** A Job builder: one container running `command`, optional PVC mounted at `/data`. */
export function job(name: string, command: string[], options: { backoffLimit?: number; claim?: string; env?: V1EnvVar[] } = {}): V1Job {
  return {
    metadata: { name },
    spec: {
      backoffLimit: options.backoffLimit ?? 0,
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [{
            name: 'main',
            image: 'public.ecr.aws/milvus-guard/milvus-guard:latest',
            command,
            env: options.env,
            volumeMounts: options.claim ? [{ name: 'data', mountPath: '/data' }] : [],
          }],
          volumes: options.claim ? [{ name: 'data', persistentVolumeClaim: { claimName: options.claim } }] : [],
        },
      },
    },
  };
}

/** The path of kubectl when it is installed, else undefined. */
export function kubectlPath(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

/** The HTTP status code of a client-node ApiException (or undefined). */
export function statusCodeOf(err: unknown): number | undefined {
  return (err as { code?: number }).code;
}

/** The parsed Status body of a client-node ApiException. */
export function statusBodyOf(err: unknown): any {
  const body = (err as { body?: unknown }).body;
  return typeof body === 'string' ? JSON.parse(body) : body;
}

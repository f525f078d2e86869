/**
 * The workflow fault matrix: each fault × each step of the backup and restore workflows, one
 * workflow run per cell on the embedded default, with what the run left behind.
 *
 *   npm run faults:matrix -- [--only backup|restore] [--faults kube|s3] [--json]
 *
 * 1. Starts one seeded local cluster in a temporary directory and reuses it for every cell:
 *    each backup cell takes a fresh backup name, each restore cell restores one baseline backup
 *    into a fresh namespace (deleted after the cell), so cells do not see each other's objects.
 * 2. For each cell, runs the workflow with the fault switched on the moment the cell's step is
 *    first invoked (the runner's `beforeTask`) and off again when the failure path begins, so
 *    the fault hits that step and the cleanup runs on a healthy cluster. Polls await the
 *    cluster (`untilPoll`), retries take no time, a Kubernetes request's deadline is 2 s.
 * 3. After the run, counts what the run left: Jobs and PVCs labelled with the backup (and its
 *    VolumeSnapshots when the backup failed: an Available backup keeps its snapshots by design),
 *    or the restore's Jobs, VolumeSnapshots and VolumeSnapshotContents (the target namespace
 *    and its restored PVCs stay after a failed restore, for inspection, by design); whether the
 *    plan lock is still held; and the failure's cause (the record's `failure`, or the
 *    execution's error when the run failed before it made a record).
 * 4. Prints the table (stdout; progress on stderr). Exits 1 if any cell left an object, kept
 *    the lock, failed without naming its cause or naming another Task than the one the fault
 *    hit, never hit its fault, or ended otherwise than expected (a fault that is retried must
 *    end Available/Completed).
 *
 * S3 faults (`--faults s3`) run on the same cluster against another vault: s3rver on 127.0.0.1
 * behind the fault-injecting proxy of bench/faulty-s3.ts, reached by the steps through an
 * `S3VaultStore` built as the Lambdas build theirs (a fresh one per cell, as after a cold start)
 * and by the data-mover Jobs through `--endpoint` and `--credentials-file`. The fault hits the
 * vault request the cell's step makes (`S3_STEP_REQUESTS`: a write or a read of the key the step
 * owns), or, for the Export and hydration Jobs, the data mover's index write or pack reads
 * (switched on when the Task that creates the Job starts). The SDK's own retries run on the real
 * clock (a 500 on every write costs its 10 attempts per invocation, and the `transient` policy
 * invokes the Task again), so those cells take minutes. Kubernetes faults (`--faults kube`) keep
 * the state directory's `file://` vault.
 *
 * The failure-path steps (CleanUp, MarkFailed, ...) are not cells: a fault there needs a first
 * fault to reach them.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import prettyMs from 'pretty-ms';
import S3rver from 's3rver';
import type { BackupTimings } from '../core/backup/context.js';
import { labelValue } from '../core/backup/names.js';
import { loadConfigFile } from '../core/config/parse.js';
import type { Config } from '../core/config/schema.js';
import { kubeConfigFromFile, makeKubeClients, type KubeClients } from '../core/kube/connect.js';
import type { RestoreTimings } from '../core/restore/context.js';
import { RESTORE_LABEL } from '../core/restore/names.js';
import { backupPrefix, backupRecordKey, hookRunsKey, inventoryKey, manifestsPrefix, milvusStateKey, PACKS_PREFIX, VOLUMES_PREFIX } from '../core/vault/layout.js';
import { S3VaultStore } from '../core/vault/s3-store.js';
import { startLocalCluster, type LocalCluster } from '../local/cluster.js';
import type { RequestFault } from '../local/faults.js';
import { localBackupServices, runLocalWorkflow, type LocalBackupResult, type LocalVault } from '../local/workflows/runner.js';
import { FaultyS3Proxy, type ArmedS3Fault, type S3FaultRule } from './faulty-s3.js';

export const PLAN = 'milvus-production-backup';
const NAMESPACE = 'vector-db';
const SERVICE_PROXY = '/services/[^/]+/proxy';

/** The faults of the matrix. */
export type FaultKind = 'kube-500-once' | 'kube-500-always' | 'kube-hang' | 'job-fails' | 'snapshot-error' | S3FaultKind;
/** The S3 faults: they act on the vault, through the proxy. */
export type S3FaultKind = 's3-500-always' | 's3-slowdown-once' | 's3-reset-once' | 's3-cut-once' | 's3-cut-always' | 's3-denied';

/** How each fault reads in the table, and whether the workflow is expected to recover from it. */
export const FAULTS: Record<FaultKind, { readonly label: string; readonly recovers: boolean }> = {
  'kube-500-once': { label: 'Kubernetes 500 once', recovers: true },
  'kube-500-always': { label: 'Kubernetes 500 always', recovers: false },
  'kube-hang': { label: 'hung request (2 s deadline)', recovers: true },
  'job-fails': { label: 'data-mover Job fails', recovers: false },
  'snapshot-error': { label: 'VolumeSnapshot error', recovers: false },
  // The SDK retries a 500 (10 attempts), then the transient retry policy runs the Task again.
  's3-500-always': { label: 'S3 500 InternalError always', recovers: false },
  's3-slowdown-once': { label: 'S3 503 SlowDown once', recovers: true },
  's3-reset-once': { label: 'S3 connection reset once', recovers: true },
  // A download cut halfway through its body (a GET): not retried by the SDK; the vault store
  // downloads it again (3 tries), then VaultReadInterrupted, which the transient policy retries.
  's3-cut-once': { label: 'S3 download cut short once', recovers: true },
  's3-cut-always': { label: 'S3 download cut short always', recovers: false },
  // Not retried by the SDK nor by the workflow: a missing permission or KMS grant.
  's3-denied': { label: 'S3 403 AccessDenied always', recovers: false },
};

/** What each S3 fault does to the requests it matches (bench/faulty-s3.ts). */
const S3_FAULT_RULES: Record<S3FaultKind, Pick<S3FaultRule, 'kind' | 'times'>> = {
  's3-500-always': { kind: 'InternalError', times: null },
  's3-slowdown-once': { kind: 'SlowDown', times: 1 },
  's3-reset-once': { kind: 'reset', times: 1 },
  's3-cut-once': { kind: 'cut', times: 1 },
  's3-cut-always': { kind: 'cut', times: null },
  's3-denied': { kind: 'AccessDenied', times: null },
};

export const isS3Fault = (fault: FaultKind): fault is S3FaultKind => fault.startsWith('s3-');

export type Workflow = 'backup' | 'restore';

/** One cell: a fault on one step of one workflow. */
export interface Cell {
  readonly fault: FaultKind;
  readonly workflow: Workflow;
  /** The Task state the fault hits (core/workflow/steps.ts). */
  readonly step: string;
}

/**
 * The request each step makes that a request fault hits, as `local/faults.ts` matches it
 * (method and a regular expression on path and query). `ns` is the namespace the step works in:
 * the plan's for a backup, the target for a restore. Read off core/backup/*.ts and
 * core/restore/*.ts; a step whose call changes must change here too, or its cells report
 * "fault never hit".
 */
export const STEP_REQUESTS: Record<Workflow, Record<string, (ns: string) => Pick<RequestFault, 'method' | 'path'>>> = {
  backup: {
    // discover.ts lists every captured kind; the PVC list finds the volumes to protect.
    Discover: (ns) => ({ method: 'GET', path: `^/api/v1/namespaces/${ns}/persistentvolumeclaims(\\?|$)` }),
    // quiesce.ts: REST v2 through the service proxy.
    StartFlush: (ns) => ({ method: 'POST', path: `^/api/v1/namespaces/${ns}${SERVICE_PROXY}/v2/vectordb/collections/flush` }),
    CheckFlush: (ns) => ({ method: 'POST', path: `^/api/v1/namespaces/${ns}${SERVICE_PROXY}/v2/vectordb/collections/get_stats` }),
    PauseGc: (ns) => ({ method: 'GET', path: `^/api/v1/namespaces/${ns}${SERVICE_PROXY}/management/datacoord/garbage_collection/pause` }),
    // hooks.ts lists the hook's pods by selector, then execs.
    PreHooks: (ns) => ({ method: 'GET', path: `^/api/v1/namespaces/${ns}/pods\\?` }),
    // capture.ts reads every object again; ConfigMaps are among them.
    Capture: (ns) => ({ method: 'GET', path: `^/api/v1/namespaces/${ns}/configmaps(\\?|$)` }),
    Snapshot: (ns) => ({ method: 'POST', path: `^/apis/snapshot.storage.k8s.io/v1/namespaces/${ns}/volumesnapshots$` }),
    CheckSnapshots: (ns) => ({ method: 'GET', path: `^/apis/snapshot.storage.k8s.io/v1/namespaces/${ns}/volumesnapshots/` }),
    Unquiesce: (ns) => ({ method: 'GET', path: `^/api/v1/namespaces/${ns}${SERVICE_PROXY}/management/datacoord/garbage_collection/resume` }),
    // export.ts: clone PVC, then the data-mover Job; polled; removed.
    StartExport: (ns) => ({ method: 'POST', path: `^/apis/batch/v1/namespaces/${ns}/jobs$` }),
    CheckExport: (ns) => ({ method: 'GET', path: `^/apis/batch/v1/namespaces/${ns}/jobs/export-` }),
    FinishExport: (ns) => ({ method: 'DELETE', path: `^/apis/batch/v1/namespaces/${ns}/jobs/export-` }),
  },
  restore: {
    // prepare.ts inspects the target namespace before anything is recorded.
    PrepareRestore: (ns) => ({ method: 'GET', path: `^/api/v1/namespaces/${ns}$` }),
    CreateNamespace: () => ({ method: 'POST', path: '^/api/v1/namespaces$' }),
    // volumes.ts (vault source): a PVC and a hydration Job per volume; polled.
    RestoreVolumes: (ns) => ({ method: 'POST', path: `^/apis/batch/v1/namespaces/${ns}/jobs$` }),
    CheckVolumes: (ns) => ({ method: 'GET', path: `^/apis/batch/v1/namespaces/${ns}/jobs/hydrate-` }),
    // manifests.ts creates the captured objects in restore order; Services among them.
    ApplyManifests: (ns) => ({ method: 'POST', path: `^/api/v1/namespaces/${ns}/services$` }),
    CheckReadiness: (ns) => ({ method: 'GET', path: `^/apis/apps/v1/namespaces/${ns}/deployments(\\?|$)` }),
    Validate: (ns) => ({ method: 'POST', path: `^/api/v1/namespaces/${ns}${SERVICE_PROXY}/v2/vectordb/` }),
    // workflow.ts: Complete removes the restore's temporaries, found by label.
    Complete: (ns) => ({ method: 'GET', path: `^/apis/batch/v1/namespaces/${ns}/jobs\\?` }),
  },
};

/** The vault request of a step that an S3 fault hits: a write or a read of keys matching `key`. */
export interface S3StepRequest {
  readonly on: 'write' | 'read';
  /** A regular expression on the key below the vault's prefix. */
  readonly key: string;
  /** The Task at whose start the fault is switched on, when not the step itself (a Job's data mover runs after the Task that creates it). */
  readonly armAt?: string;
  /** Who makes the request: the step, or the data mover in the Job the step polls. */
  readonly by?: 'data mover';
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The vault request each step makes that an S3 fault hits, by the backup a backup cell makes or
 * the backup a restore cell restores. Read off core/backup/*.ts, core/restore/*.ts and the data
 * mover; keys come from core/vault/layout.ts. A step whose vault access changes must change here
 * too, or its cells report "fault never hit".
 */
export const S3_STEP_REQUESTS: Record<Workflow, Record<string, (backup: string) => S3StepRequest>> = {
  backup: {
    // discover.ts writes the inventory; quiesce.ts the Milvus state (CheckFlush reads it first).
    Discover: (b) => ({ on: 'write', key: `^${esc(inventoryKey(b))}$` }),
    StartFlush: (b) => ({ on: 'write', key: `^${esc(milvusStateKey(b))}$` }),
    CheckFlush: (b) => ({ on: 'read', key: `^${esc(milvusStateKey(b))}$` }),
    // workflow.ts records each phase's hook runs.
    PreHooks: (b) => ({ on: 'write', key: `^${esc(hookRunsKey(b, 'pre'))}$` }),
    // capture.ts writes every manifest (Secrets sealed).
    Capture: (b) => ({ on: 'write', key: `^${esc(manifestsPrefix(b))}` }),
    Unquiesce: (b) => ({ on: 'write', key: `^${esc(hookRunsKey(b, 'post'))}$` }),
    // The Export Job's data mover uploads new packs (an incremental backup of unchanged data
    // has none) and always the volume's index; CheckExport sees the Job fail.
    CheckExport: (b) => ({ on: 'write', key: `^${esc(backupPrefix(b))}volumes/[^/]+/index\\.jsonl\\.gz$`, armAt: 'StartExport', by: 'data mover' }),
    // workflow.ts: the backup's index, with the chain's commitments.
    Finalize: (b) => ({ on: 'write', key: `^${esc(backupRecordKey(b))}$` }),
  },
  restore: {
    // verify.ts walks the chain: backup.json, each summary, each index, each pack (HEAD).
    // (PrepareRestore reads the vault only to choose a snapshot source; these cells restore from the vault.)
    VerifyBackup: (b) => ({ on: 'read', key: `^${esc(VOLUMES_PREFIX)}[^/]+/backups/${esc(b)}\\.json$` }),
    // volumes.ts reads the captured PVCs.
    RestoreVolumes: (b) => ({ on: 'read', key: `^${esc(manifestsPrefix(b))}core/PersistentVolumeClaim/` }),
    // The hydration Job's data mover reads packs; CheckVolumes sees the Job fail.
    CheckVolumes: () => ({ on: 'read', key: `^${esc(PACKS_PREFIX)}`, armAt: 'RestoreVolumes', by: 'data mover' }),
    // manifests.ts lists and reads the captured objects.
    ApplyManifests: (b) => ({ on: 'read', key: `^${esc(manifestsPrefix(b))}` }),
  },
};

/** Which faults the matrix runs: Kubernetes ones (on the file:// vault), S3 ones, or both. */
export type FaultFamily = 'kube' | 's3';

/** Every cell of the matrix, backup cells first, Kubernetes faults before S3 faults. */
export function matrixCells(only?: Workflow, families: readonly FaultFamily[] = ['kube', 's3']): Cell[] {
  const cells: Cell[] = [];
  for (const workflow of ['backup', 'restore'] as const) {
    if (only && only !== workflow) continue;
    if (families.includes('kube')) {
      for (const fault of ['kube-500-once', 'kube-500-always', 'kube-hang'] as const) {
        for (const step of Object.keys(STEP_REQUESTS[workflow])) cells.push({ fault, workflow, step });
      }
      if (workflow === 'backup') cells.push({ fault: 'job-fails', workflow, step: 'CheckExport' }, { fault: 'snapshot-error', workflow, step: 'CheckSnapshots' });
      else cells.push({ fault: 'job-fails', workflow, step: 'CheckVolumes' });
    }
    if (families.includes('s3')) {
      for (const fault of ['s3-slowdown-once', 's3-reset-once', 's3-cut-once', 's3-cut-always', 's3-denied', 's3-500-always'] as const) {
        for (const step of Object.keys(S3_STEP_REQUESTS[workflow])) {
          const on = S3_STEP_REQUESTS[workflow][step]!('b').on;
          // A 500 on every request is a fault of writes; on reads it would only repeat the same path.
          if (fault === 's3-500-always' && on !== 'write') continue;
          // Only a download (a GET's body) can be cut short.
          if ((fault === 's3-cut-once' || fault === 's3-cut-always') && on !== 'read') continue;
          cells.push({ fault, workflow, step });
        }
      }
    }
  }
  return cells;
}

/** The step as the table names it: the data mover's cells say so. */
export function stepLabel(cell: Cell): string {
  return isS3Fault(cell.fault) && S3_STEP_REQUESTS[cell.workflow][cell.step]?.('b').by ? `${cell.step} (data mover)` : cell.step;
}

/** What one cell measured. */
export interface CellResult extends Cell {
  /** The backup or restore the run made. */
  readonly id: string;
  /** `Available`, `Completed` or `Failed`. */
  readonly outcome: 'Available' | 'Completed' | 'Failed';
  /** For a failed run: the error, the Task and timeline step that failed, and the cause. */
  readonly failure?: { readonly error: string; readonly state?: string; readonly step?: string; readonly cause: string; readonly from: 'record' | 'execution' };
  /** Objects the run left that it should not have (kind/name). */
  readonly leftovers: readonly string[];
  /** The plan lock's holder after the run, when it is still held. */
  readonly lockHeldBy?: string;
  /** How many requests the fault failed or held (request and S3 faults). */
  readonly faultHits?: number;
  readonly seconds: number;
  /** What is wrong with the cell, if anything. */
  readonly problems: readonly string[];
}

/** The cluster the cells share, with the config and a baseline backup for the restores. */
export interface MatrixCluster {
  readonly cluster: LocalCluster;
  readonly stateDir: string;
  readonly config: Config;
  readonly kube: KubeClients;
  /** The baseline backup restore cells restore (made on first use). */
  baseline?: string;
  /** The S3 vault of the S3 cells (started on first use). */
  s3?: MatrixS3;
  /** Numbers the cells' backup and restore names. */
  next: number;
  dispose(): Promise<void>;
}

/** s3rver behind the faulty proxy, as the S3 cells' vault. */
export interface MatrixS3 {
  readonly proxy: FaultyS3Proxy;
  /** The vault for one run: a fresh store (a cold Lambda's client), the Jobs' flags. */
  vault(): LocalVault;
  /** The baseline backup of the S3 restore cells (made on first use). */
  baseline?: string;
  stop(): Promise<void>;
}

const S3_BUCKET = 'milvus-guard-vault';
const S3_PREFIX = 'vault';
const S3_KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** Starts s3rver and the proxy in `stateDir`; the Jobs read the keys from a credentials file there. */
async function startMatrixS3(stateDir: string, config: Config): Promise<MatrixS3> {
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: join(stateDir, 's3rver'), configureBuckets: [{ name: S3_BUCKET, configs: [] }] });
  const { port } = await server.run();
  // The vault bucket has Object Lock with the vault's default rule (Finalize extends the
  // backup's lock); s3rver has none, the proxy adds it.
  const proxy = new FaultyS3Proxy(port, { objectLock: config.vaults[0]!.objectLock });
  const endpoint = await proxy.start();
  const credentials = join(stateDir, 's3-credentials');
  await writeFile(credentials, `[default]\naws_access_key_id = ${S3_KEYS.accessKeyId}\naws_secret_access_key = ${S3_KEYS.secretAccessKey}\n`, { mode: 0o600 });
  return {
    proxy,
    // As lambdas/backup/services.ts builds it (plus the endpoint and keys of s3rver; no KMS there).
    vault: () => ({
      store: new S3VaultStore({ bucket: S3_BUCKET, prefix: S3_PREFIX, endpoint, region: 'us-east-1', credentials: S3_KEYS }),
      url: `s3://${S3_BUCKET}/${S3_PREFIX}`,
      args: ['--endpoint', endpoint, '--region', 'us-east-1', '--credentials-file', credentials],
    }),
    stop: async () => {
      await proxy.stop();
      await server.close();
    },
  };
}

const TIMINGS: Partial<BackupTimings> = { flushTimeoutSeconds: 30, snapshotTimeoutSeconds: 60, exportTimeoutSeconds: 120, kubeRequestTimeoutSeconds: 2 };
const RESTORE_TIMINGS: Partial<RestoreTimings> = { volumeTimeoutSeconds: 120, readyTimeoutSeconds: 60, validateTimeoutSeconds: 60 };
/** The Tasks that begin a failure path: the fault is switched off there. */
const FAILURE_PATH = new Set(['CleanUp', 'UnquiesceAfterFailure', 'MarkFailed', 'CleanUpRestore', 'MarkRestoreFailed']);

/** Starts the seeded local cluster the cells share, in a temporary directory. */
export async function startMatrixCluster(): Promise<MatrixCluster> {
  const stateDir = await mkdtemp(join(tmpdir(), 'mg-faults-'));
  const cluster = await startLocalCluster({ stateDir, port: 0, tickMs: 50 });
  const config = await loadConfigFile(fileURLToPath(new URL('../examples/production.yaml', import.meta.url)));
  const m: MatrixCluster = {
    cluster,
    stateDir,
    config,
    kube: makeKubeClients(kubeConfigFromFile(cluster.kubeconfigPath)),
    next: 1,
    dispose: async () => {
      await m.s3?.stop();
      await cluster.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
  return m;
}

function run(m: MatrixCluster, workflow: Workflow, input: Record<string, unknown>, beforeTask?: (state: string) => void, vault?: LocalVault): Promise<LocalBackupResult> {
  return runLocalWorkflow({
    workflow,
    stateDir: m.stateDir,
    config: m.config,
    input,
    untilPoll: () => m.cluster.settle(),
    timings: TIMINGS,
    restoreTimings: RESTORE_TIMINGS,
    ...(beforeTask ? { beforeTask } : {}),
    ...(vault ? { vault } : {}),
  });
}

/** The baseline backup the restore cells restore, made once without faults (one per vault). */
async function baselineBackup(m: MatrixCluster, s3?: MatrixS3): Promise<string> {
  const made = s3 ? s3.baseline : m.baseline;
  if (made) return made;
  const name = s3 ? 'fault-matrix-baseline-s3' : 'fault-matrix-baseline';
  const result = await run(m, 'backup', { plan: PLAN, backupName: name }, undefined, s3?.vault());
  if (result.status !== 'SUCCEEDED') throw new Error(`the baseline backup failed: ${result.error?.name}: ${result.error?.message}`);
  if (s3) s3.baseline = name;
  else m.baseline = name;
  return name;
}

/** Switches an S3 cell's fault on at the proxy; returns how to read its hits. */
function armS3Fault(s3: MatrixS3, cell: Cell & { fault: S3FaultKind }, backup: string): () => number {
  const request = S3_STEP_REQUESTS[cell.workflow][cell.step];
  if (!request) throw new RangeError(`no vault request is mapped for the ${cell.workflow} step ${cell.step}`);
  const { on, key } = request(backup);
  const armed: ArmedS3Fault = s3.proxy.inject({ ...S3_FAULT_RULES[cell.fault], on, key: new RegExp(key.replace(/^\^/, `^${S3_PREFIX}/`)) });
  return () => armed.hits;
}

/** Switches the cell's fault on in the cluster; returns how to read its hits. */
function armFault(m: MatrixCluster, cell: Cell, ns: string): () => number | undefined {
  const faults = m.cluster.faults;
  if (cell.fault === 'job-fails') {
    faults.failJobs({ namespace: ns, name: cell.workflow === 'backup' ? 'export-' : 'hydrate-' });
    return () => undefined;
  }
  if (cell.fault === 'snapshot-error') {
    faults.failSnapshots({ namespace: ns, pvc: 'data-production-milvus-etcd-0' });
    return () => undefined;
  }
  const request = STEP_REQUESTS[cell.workflow][cell.step];
  if (!request) throw new RangeError(`no request is mapped for the ${cell.workflow} step ${cell.step}`);
  const shape = cell.fault === 'kube-hang' ? { hang: true, times: 1 } : cell.fault === 'kube-500-once' ? { status: 500 as const, times: 1 } : { status: 500 as const, times: null };
  faults.failRequests({ ...request(ns), ...shape });
  const before = faults.toJSON().requests.length - 1;
  return () => faults.toJSON().requests[before]?.hits;
}

const names = (items: { metadata?: { name?: string } }[] | undefined, kind: string) => (items ?? []).map((o) => `${kind}/${o.metadata?.name}`);

/** What a backup or restore left in the cluster that it should not have (see the module documentation). */
async function leftoversOf(m: MatrixCluster, workflow: Workflow, id: string, ns: string, kept: boolean): Promise<string[]> {
  const { batch, core, custom } = m.kube;
  const selector = `${workflow === 'backup' ? 'milvus-guard.io/backup' : RESTORE_LABEL}=${labelValue(id)}`;
  const snapshots = async () => (await custom.listNamespacedCustomObject({ group: 'snapshot.storage.k8s.io', version: 'v1', namespace: ns, plural: 'volumesnapshots', labelSelector: selector })) as { items?: { metadata?: { name?: string } }[] };
  const found = names((await batch.listNamespacedJob({ namespace: ns, labelSelector: selector })).items, 'Job');
  if (workflow === 'backup') {
    found.push(...names((await core.listNamespacedPersistentVolumeClaim({ namespace: ns, labelSelector: selector })).items, 'PVC'));
    if (!kept) found.push(...names((await snapshots()).items, 'VolumeSnapshot'));
  } else {
    found.push(...names((await snapshots()).items, 'VolumeSnapshot'));
    const contents = (await custom.listClusterCustomObject({ group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshotcontents', labelSelector: selector })) as { items?: { metadata?: { name?: string } }[] };
    found.push(...names(contents.items, 'VolumeSnapshotContent'));
  }
  return found;
}

/** The failure as the catalog records it, or as the execution ended when there is no record. */
async function failureOf(m: MatrixCluster, workflow: Workflow, id: string, result: LocalBackupResult): Promise<CellResult['failure']> {
  const catalog = localBackupServices(m.stateDir, m.config).catalog;
  const record = workflow === 'backup' ? await catalog.getBackup(id) : await catalog.getRestore(id);
  if (record?.failure) return { error: record.failure.error, cause: record.failure.cause, from: 'record', step: record.failure.step, ...(record.failure.state ? { state: record.failure.state } : {}) };
  return { error: result.error?.name ?? '', cause: result.error?.message ?? '', from: 'execution' };
}

/**
 * Runs one cell on the shared cluster: one backup (a fresh name) or one restore of the baseline
 * backup (into a fresh namespace, deleted afterwards) with the cell's fault, and measures what
 * it left. Faults are cleared before and after.
 */
export async function runCell(m: MatrixCluster, cell: Cell): Promise<CellResult> {
  const s3 = isS3Fault(cell.fault) ? (m.s3 ??= await startMatrixS3(m.stateDir, m.config)) : undefined;
  const n = m.next++;
  const baseline = cell.workflow === 'restore' ? await baselineBackup(m, s3) : undefined;
  const id = `fault-matrix-${cell.workflow === 'backup' ? 'b' : 'r'}${n}`;
  const ns = cell.workflow === 'backup' ? NAMESPACE : id;
  const input = cell.workflow === 'backup' ? { plan: PLAN, backupName: id } : { backupId: baseline, targetNamespace: ns, source: 'vault', restoreName: id };
  m.cluster.faults.clear();
  s3?.proxy.clear();
  const onRequest = cell.fault.startsWith('kube-') || s3 !== undefined;
  // The Task whose start switches a request fault on: the step, or the one that starts its Job.
  const armAt = s3 ? (S3_STEP_REQUESTS[cell.workflow][cell.step]?.(id).armAt ?? cell.step) : cell.step;
  let hits: () => number | undefined = () => undefined;
  let faultHits: number | undefined;
  const disarm = () => {
    faultHits ??= hits();
    m.cluster.faults.clear();
    s3?.proxy.clear();
  };
  // Job and snapshot faults act in the controllers, not on a request: on from the start.
  if (!onRequest) armFault(m, cell, ns);
  let armed = false;
  const started = performance.now();
  const result = await run(
    m,
    cell.workflow,
    input,
    (state) => {
      if (FAILURE_PATH.has(state)) disarm();
      else if (onRequest && state === armAt && !armed) {
        armed = true;
        hits = s3 ? armS3Fault(s3, cell as Cell & { fault: S3FaultKind }, baseline ?? id) : armFault(m, cell, ns);
      }
    },
    s3?.vault(),
  );
  const seconds = (performance.now() - started) / 1000;
  disarm();
  await m.cluster.settle().catch(() => undefined);

  const catalog = localBackupServices(m.stateDir, m.config).catalog;
  const outcome = result.status === 'SUCCEEDED' ? (cell.workflow === 'backup' ? 'Available' : 'Completed') : 'Failed';
  const failure = outcome === 'Failed' ? await failureOf(m, cell.workflow, id, result) : undefined;
  const leftovers = await leftoversOf(m, cell.workflow, id, ns, outcome === 'Available');
  const holder = await catalog.lockHolder(PLAN, new Date());
  const problems: string[] = [];
  if (leftovers.length > 0) problems.push(`left ${leftovers.join(', ')}`);
  if (holder) problems.push(`plan lock still held by ${holder.backupId}`);
  if (failure && (!failure.error || !failure.cause.trim() || (failure.from === 'record' && !failure.state))) problems.push('the failure names no cause or no Task');
  if (onRequest && !faultHits) problems.push('the fault was never hit (check STEP_REQUESTS)');
  // The Task the record names must be the one the fault hit (a Job fault is seen by the poll:
  // CheckExport, CheckVolumes; a snapshot error by CheckSnapshots, as the cell's step says).
  if (failure?.state && failure.state !== cell.step) problems.push(`the record names Task ${failure.state}, but the fault hit ${cell.step}`);
  if (FAULTS[cell.fault].recovers && outcome === 'Failed') problems.push(`a ${FAULTS[cell.fault].label} fault should be retried, yet the run failed`);
  if (!FAULTS[cell.fault].recovers && outcome !== 'Failed') problems.push('the fault should have failed the run');

  // Keep the shared cluster light: the restored namespace goes (with the Milvus it runs).
  if (cell.workflow === 'restore') await m.kube.core.deleteNamespace({ name: ns }).catch(() => undefined);
  return { ...cell, id, outcome, ...(failure ? { failure } : {}), leftovers, ...(holder ? { lockHeldBy: holder.backupId } : {}), ...(faultHits !== undefined ? { faultHits } : {}), seconds, problems };
}

/** One line of the outcome column: `Available`, or `Failed: Error at Task (step) — cause`. */
export function outcomeText(r: CellResult, causeWidth = 90): string {
  if (!r.failure) return r.outcome;
  const at = r.failure.state ? ` at ${r.failure.state}${r.failure.step && r.failure.step !== r.failure.state ? ` (${r.failure.step})` : ''}` : ' before the record (execution error)';
  const cause = r.failure.cause.replace(/\s+/g, ' ').trim();
  return `Failed: ${r.failure.error}${at} — ${cause.length > causeWidth ? `${cause.slice(0, causeWidth - 1)}…` : cause || '(no cause)'}`;
}

/** The matrix as a Markdown table. */
export function matrixTable(results: readonly CellResult[]): string {
  const rows = [
    '| fault | workflow | step | outcome | leftovers | lock | time |',
    '|---|---|---|---|---|---|---|',
    ...results.map((r) =>
      [
        FAULTS[r.fault].label,
        r.workflow,
        stepLabel(r),
        outcomeText(r).replace(/\|/g, '\\|'),
        r.leftovers.length === 0 ? '0' : `${r.leftovers.length}: ${r.leftovers.join(', ')}`,
        r.lockHeldBy ? `held by ${r.lockHeldBy}` : 'free',
        prettyMs(r.seconds * 1000, { secondsDecimalDigits: 1 }),
      ].join(' | '),
    ).map((line) => `| ${line} |`),
  ];
  return rows.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, faults: { type: 'string' }, json: { type: 'boolean', default: false } } });
  if (values.only !== undefined && values.only !== 'backup' && values.only !== 'restore') {
    process.stderr.write(`--only must be backup or restore, not ${values.only}; see the top of bench/fault-matrix.ts\n`);
    process.exit(2);
  }
  if (values.faults !== undefined && values.faults !== 'kube' && values.faults !== 's3') {
    process.stderr.write(`--faults must be kube or s3, not ${values.faults}; see the top of bench/fault-matrix.ts\n`);
    process.exit(2);
  }
  const cells = matrixCells(values.only as Workflow | undefined, values.faults ? [values.faults as FaultFamily] : ['kube', 's3']);
  process.stderr.write(`fault matrix: ${cells.length} cells on the embedded default\n`);
  const m = await startMatrixCluster();
  const results: CellResult[] = [];
  const started = performance.now();
  try {
    for (const [i, cell] of cells.entries()) {
      process.stderr.write(`[${i + 1}/${cells.length}] ${FAULTS[cell.fault].label} × ${cell.workflow} ${stepLabel(cell)} … `);
      const r = await runCell(m, cell);
      results.push(r);
      // The whole outcome, so a run that stops early still shows what each cell measured.
      process.stderr.write(`${outcomeText(r, 400)} in ${r.seconds.toFixed(1)} s${r.problems.length > 0 ? ` — PROBLEM: ${r.problems.join('; ')}` : ''}\n`);
    }
  } finally {
    await m.dispose();
  }
  const bad = results.filter((r) => r.problems.length > 0);
  if (values.json) process.stdout.write(`${JSON.stringify({ cells: results }, null, 2)}\n`);
  else {
    process.stdout.write(`${matrixTable(results)}\n\n`);
    process.stdout.write(`${results.length} cells in ${prettyMs(performance.now() - started)}; ${bad.length === 0 ? 'no leftover, no stuck lock, every failure names its cause' : `${bad.length} with a problem:`}\n`);
    for (const r of bad) process.stdout.write(`  ${FAULTS[r.fault].label} × ${r.workflow} ${stepLabel(r)}: ${r.problems.join('; ')}\n`);
  }
  process.exitCode = bad.length > 0 ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    process.stderr.write(`fault matrix: internal error (a bug in the bench): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}

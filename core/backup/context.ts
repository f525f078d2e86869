/**
 * The collaborators of the backup steps. Each step function takes a context that names exactly
 * the collaborators it uses (`Pick<BackupServices, ...>`), so a test builds only what a step
 * needs, and the Lambda entry points and the local runner each build one `BackupServices`
 * from their environment: EKS + S3 + DynamoDB + KMS + EventBridge in AWS, a kubeconfig + a
 * directory vault + files + a key file on the embedded default.
 */
import type { Config } from '../config/schema.js';
import type { BackupCatalog } from '../catalog/catalog.js';
import type { ExecPort } from '../kube/exec.js';
import type { KubeClients } from '../kube/connect.js';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../kube/deadline.js';
import type { VaultStore } from '../vault/store.js';
import type { PreparedBackup } from '../workflow/contracts.js';
import type { BackupEvents } from './events.js';
import type { SecretSealer } from './sealer.js';
import type { ExecutionStatus } from '../workflow/executions.js';
import type { ObjectCopyAccess } from './objects.js';

/** How the export step runs the data mover in the cluster. */
export interface DataMoverSettings {
  /** The data-mover image (the asset built from docker/datamover/Dockerfile); its ENTRYPOINT runs the data mover. */
  readonly image: string;
  /** The vault as the Job reaches it: `s3://bucket` in AWS, `file:///...` locally. */
  readonly vaultUrl: string;
  /** Further vault flags for the Job (`--region`, `--kms-key-id`, `--object-lock-mode`). */
  readonly vaultArgs: readonly string[];
  /** The service account the Job runs as (EKS Pod Identity gives it the vault role). */
  readonly serviceAccountName: string;
}

/** Deadlines and lease lengths; the workflow's Wait states poll within them. */
export interface BackupTimings {
  /** How long every collection's flush may take to be confirmed. */
  readonly flushTimeoutSeconds: number;
  /** How long snapshots may take to become readyToUse. */
  readonly snapshotTimeoutSeconds: number;
  /** How long one volume's data-mover Job may run. */
  readonly exportTimeoutSeconds: number;
  /**
   * How long datacoord GC stays paused unless resumed: a lease, so a workflow that dies before
   * Unquiesce does not leave GC off. It must cover hooks, capture and the snapshot deadline.
   */
  readonly gcPauseSeconds: number;
  /** How long a plan lock lives unless released (a safety net if the workflow dies). */
  readonly lockTtlSeconds: number;
  /**
   * How long one Kubernetes API request may go unanswered before it is aborted and retried as a
   * `KubernetesTransientError` (core/kube/deadline.ts): a hung request costs this, not the Task's timeout.
   */
  readonly kubeRequestTimeoutSeconds: number;
}

export const DEFAULT_TIMINGS: BackupTimings = {
  flushTimeoutSeconds: 600,
  snapshotTimeoutSeconds: 1800,
  exportTimeoutSeconds: 6 * 3600,
  // The snapshot deadline plus 15 minutes for hooks, capture and the recount after the snapshots:
  // short, and never shorter than the work it protects as long as those steps take minutes (a
  // RecountRows that runs into its Task timeout on every retry can outlast it; GC then resumes by
  // itself, and CopyObjects, for a Milvus on S3, pauses it again).
  gcPauseSeconds: 1800 + 900,
  lockTtlSeconds: 24 * 3600,
  kubeRequestTimeoutSeconds: DEFAULT_REQUEST_TIMEOUT_MS / 1000,
};

/** The cluster a prepared backup runs against. */
export type BackupCluster = PreparedBackup['cluster'];

/** Every collaborator of the backup steps. */
export interface BackupServices {
  readonly config: Config;
  /** The clock; steps read it once and pass the time down. */
  readonly now: () => Date;
  /** API clients for a plan's cluster (cached by the caller as it sees fit). */
  readonly kube: (cluster: BackupCluster) => Promise<KubeClients>;
  /** Exec in pods of that cluster. */
  readonly exec: (kube: KubeClients) => ExecPort;
  readonly vault: VaultStore;
  readonly catalog: BackupCatalog;
  readonly sealer: SecretSealer;
  readonly events: BackupEvents;
  readonly dataMover: DataMoverSettings;
  readonly timings: BackupTimings;
  /** Whether an execution still runs (the holder of a plan lock). */
  readonly executions: ExecutionStatus;
  /** How CopyObjects reaches an S3-backed Milvus's bucket and the vault. */
  readonly objectCopy: ObjectCopyAccess;
}

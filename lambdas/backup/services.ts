/**
 * The AWS collaborators of the backup steps, built once per cold start from the function's
 * environment: the plan's EKS cluster through an IAM token (one refreshing KubeConfig per
 * cluster, kept while the Lambda is warm), the S3 vault, the DynamoDB catalog, the vault's KMS
 * key for sealing Secrets, and EventBridge.
 */
import { DEFAULT_TIMINGS, type BackupServices } from '../../core/backup/context.js';
import { EventBridgeEvents } from '../../core/backup/events.js';
import { KmsSecretSealer } from '../../core/backup/sealer.js';
import { DynamoCatalog } from '../../core/catalog/dynamo.js';
import type { Config } from '../../core/config/schema.js';
import { kubeConfigForEks, makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { KubernetesExec } from '../../core/kube/exec.js';
import { S3VaultStore } from '../../core/vault/s3-store.js';
import type { ObjectCopyAccess } from '../../core/backup/objects.js';
import { createCopyClient, s3CopyBackend } from '../../core/objectstore/bucket-copy.js';
import type { BackupStepsEnvironment } from './environment.js';
import { SfnExecutions } from '../../core/workflow/executions.js';

/**
 * Clients for each plan's EKS cluster through an IAM token: one refreshing KubeConfig per
 * cluster, kept while the Lambda is warm. Each request has `requestTimeoutSeconds` to answer
 * (`KUBE_REQUEST_TIMEOUT_SECONDS`).
 */
export function eksClusters(requestTimeoutSeconds: number): BackupServices['kube'] {
  const options = { deadline: { timeoutMs: requestTimeoutSeconds * 1000 } };
  const clusters = new Map<string, Promise<KubeClients>>();
  return (cluster) => {
    const key = `${cluster.region}/${cluster.eksClusterName}`;
    let clients = clusters.get(key);
    if (!clients) {
      clients = kubeConfigForEks({ clusterName: cluster.eksClusterName, region: cluster.region }).then((kc) => makeKubeClients(kc, options));
      // A failed DescribeCluster must not stick to the warm Lambda.
      clients.catch(() => clusters.delete(key));
      clusters.set(key, clients);
    }
    return clients;
  };
}

/** This region's S3 vault, written with its KMS key and Object Lock mode. */
export function awsVault(env: Pick<BackupStepsEnvironment, 'VAULT_BUCKET' | 'VAULT_KMS_KEY_ARN' | 'VAULT_OBJECT_LOCK_MODE'>): S3VaultStore {
  return new S3VaultStore({ bucket: env.VAULT_BUCKET, kmsKeyId: env.VAULT_KMS_KEY_ARN, objectLockMode: env.VAULT_OBJECT_LOCK_MODE });
}

/**
 * CopyObjects and RestoreObjects in AWS: S3 copies the objects between the Milvus bucket and the
 * vault itself (CopyObject, UploadPartCopy), with this function's role; nothing passes through
 * the Lambda. A call copies for `OBJECT_COPY_CALL_SECONDS` (default 600 s of Lambda's 900).
 */
export function awsObjectCopy(env: Pick<BackupStepsEnvironment, 'VAULT_BUCKET' | 'VAULT_KMS_KEY_ARN' | 'VAULT_OBJECT_LOCK_MODE' | 'AWS_REGION' | 'OBJECT_COPY_CALL_SECONDS'>): ObjectCopyAccess {
  const vault = { bucket: env.VAULT_BUCKET, kmsKeyId: env.VAULT_KMS_KEY_ARN, objectLockMode: env.VAULT_OBJECT_LOCK_MODE };
  return {
    backend: (source) => s3CopyBackend({ client: createCopyClient({ bucket: vault.bucket, prefix: '', ...source }, env.AWS_REGION ? { region: env.AWS_REGION } : {}), vault }),
    callSeconds: env.OBJECT_COPY_CALL_SECONDS,
  };
}

export function awsBackupServices(config: Config, env: BackupStepsEnvironment): BackupServices {
  return {
    config,
    now: () => new Date(),
    kube: eksClusters(env.KUBE_REQUEST_TIMEOUT_SECONDS),
    exec: (kube) => new KubernetesExec(kube.exec),
    vault: awsVault(env),
    catalog: new DynamoCatalog({ tableName: env.CATALOG_TABLE }),
    sealer: new KmsSecretSealer(env.SEALING_KEY_ARN ?? env.VAULT_KMS_KEY_ARN),
    events: new EventBridgeEvents(env.EVENT_BUS_NAME),
    dataMover: {
      image: env.DATAMOVER_IMAGE,
      vaultUrl: `s3://${env.VAULT_BUCKET}`,
      // The Job's pod has credentials from Pod Identity but no region: the vault is in this one.
      vaultArgs: [...(env.AWS_REGION ? ['--region', env.AWS_REGION] : []), '--kms-key-id', env.VAULT_KMS_KEY_ARN, '--object-lock-mode', env.VAULT_OBJECT_LOCK_MODE],
      serviceAccountName: env.DATAMOVER_SERVICE_ACCOUNT,
    },
    executions: new SfnExecutions(),
    objectCopy: awsObjectCopy(env),
    timings: {
      ...DEFAULT_TIMINGS,
      flushTimeoutSeconds: env.FLUSH_TIMEOUT_SECONDS,
      snapshotTimeoutSeconds: env.SNAPSHOT_TIMEOUT_SECONDS,
      exportTimeoutSeconds: env.EXPORT_TIMEOUT_SECONDS,
      gcPauseSeconds: env.GC_PAUSE_SECONDS,
      lockTtlSeconds: env.LOCK_TTL_SECONDS,
      kubeRequestTimeoutSeconds: env.KUBE_REQUEST_TIMEOUT_SECONDS,
    },
  };
}

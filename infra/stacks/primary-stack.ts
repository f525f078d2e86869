/**
 * The stack of a vault region: the vault (replicating to its DR vaults), the catalog (the
 * global table itself in the installation's home region, its replica elsewhere), the workflow
 * role and its access to the plans' EKS clusters, the workflow Lambdas, the backup state
 * machine with its schedules, and the notification topic the alarms publish to.
 */
import { fileURLToPath } from 'node:url';
import { ArnFormat, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { resolveDrill, resolvePlan } from '../../core/config/load.js';
import { parseQuantity } from '../../core/config/quantity.js';
import type { Cluster, Config, StorageClass, Vault as VaultConfig } from '../../core/config/schema.js';
import { UserError } from '../../core/errors.js';
import { BackupStepEnvironment } from '../../lambdas/backup/environment.js';
import { placeholderOf, STEP_NAMES, type StepName } from '../../lambdas/backup/handlers.js';
import { PrepareEnvironment } from '../../lambdas/prepare/environment.js';
import { BackupWorkflow, type PlanSchedule } from '../constructs/backup-workflow.js';
import { Catalog } from '../constructs/catalog.js';
import { ClusterAccess } from '../constructs/cluster-access.js';
import { ClusterNetwork } from '../constructs/cluster-network.js';
import { DataMover } from '../constructs/data-mover.js';
import { MilvusGuardFunction } from '../constructs/milvus-guard-function.js';
import { Notifications } from '../constructs/notifications.js';
import { Vault, type VaultTransition } from '../constructs/vault.js';
import { acknowledge, acknowledgeWildcardResources } from '../nag.js';
import { catalogTableName, replicaBucketName, replicaKeyAlias, stateMachineName, vaultBucketName, vaultKeyAlias } from '../naming.js';

export interface PrimaryStackProps extends StackProps {
  readonly config: Config;
  /** The config name of the vault this stack's region holds. */
  readonly vaultName: string;
  /**
   * Whether this stack creates the catalog's global table (in one region of the installation);
   * the others use their region's replica of it.
   */
  readonly catalogHome: boolean;
  /** Regions holding a catalog replica (only read when `catalogHome`). */
  readonly catalogReplicaRegions: readonly string[];
}

const STORAGE_CLASSES: Record<StorageClass, s3.StorageClass> = {
  STANDARD_IA: s3.StorageClass.INFREQUENT_ACCESS,
  ONEZONE_IA: s3.StorageClass.ONE_ZONE_INFREQUENT_ACCESS,
  INTELLIGENT_TIERING: s3.StorageClass.INTELLIGENT_TIERING,
  GLACIER_IR: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
  GLACIER: s3.StorageClass.GLACIER,
  DEEP_ARCHIVE: s3.StorageClass.DEEP_ARCHIVE,
};

/** The vault's transitions from the config, for the Vault construct. */
export function vaultTransitions(vault: VaultConfig): VaultTransition[] {
  return vault.transitions.map((t) => ({ storageClass: STORAGE_CLASSES[t.storageClass], transitionAfter: Duration.days(t.afterDays) }));
}

/** A key that CloudWatch Logs in this region may encrypt log groups of this account with. */
export function logsEncryptionKey(scope: Construct, id: string): kms.Key {
  const stack = Stack.of(scope);
  const key = new kms.Key(scope, id, { description: 'Encrypts milvus-guard log groups', enableKeyRotation: true, removalPolicy: RemovalPolicy.DESTROY });
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'],
      conditions: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': stack.formatArn({ service: 'logs', resource: 'log-group', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) } },
    }),
  );
  return key;
}

export class PrimaryStack extends Stack {
  readonly vault: Vault;
  readonly catalogTable: dynamodb.ITableV2;
  readonly notifications: Notifications;
  readonly workflowRole: iam.Role;
  readonly prepareFunction: MilvusGuardFunction<typeof PrepareEnvironment>;
  /** The backup step functions (every Task after Prepare), by handler name. */
  readonly stepFunctions: ReadonlyMap<StepName, MilvusGuardFunction<typeof BackupStepEnvironment>>;
  readonly dataMover: DataMover;
  readonly backupWorkflow: BackupWorkflow;
  readonly clusterAccess: ClusterAccess;
  /** The VPC placement of the functions that call Kubernetes, when a cluster is private. */
  readonly network?: ClusterNetwork;

  constructor(scope: Construct, id: string, props: PrimaryStackProps) {
    super(scope, id, props);
    const { config } = props;
    const vaultConfig = config.vaults.find((v) => v.name === props.vaultName);
    if (!vaultConfig) throw new UserError(`vault "${props.vaultName}" is not defined in the config; defined: ${config.vaults.map((v) => v.name).join(', ')}`);
    const names = { installation: config.name, vault: vaultConfig.name, account: this.account };
    const plans = config.plans.filter((p) => p.vault === vaultConfig.name).map((p) => resolvePlan(config, p.name));

    this.notifications = new Notifications(this, 'Notifications', { subscriptions: config.notifications.subscriptions, displayName: config.name });
    const logsKey = logsEncryptionKey(this, 'LogsKey');

    this.vault = new Vault(this, 'Vault', {
      bucketName: vaultBucketName({ ...names, region: vaultConfig.region }),
      objectLockMode: vaultConfig.objectLock.mode,
      objectLockDefaultRetention: Duration.days(vaultConfig.objectLock.defaultRetentionDays),
      ...(vaultConfig.kmsKeyArn ? { encryptionKey: importVaultKey(this, vaultConfig) } : { keyAlias: vaultKeyAlias(names) }),
      transitions: vaultTransitions(vaultConfig),
      replicas: vaultConfig.replicaRegions.map((region) => ({ region, bucketName: replicaBucketName({ ...names, region }), keyAlias: replicaKeyAlias(names) })),
      ...(vaultConfig.thresholdCapacity ? { capacityAlarmThresholdBytes: parseQuantity(vaultConfig.thresholdCapacity)! } : {}),
      alarmTopic: this.notifications.topic,
    });

    if (props.catalogHome) {
      this.catalogTable = new Catalog(this, 'Catalog', { tableName: catalogTableName(config.name), replicaRegions: props.catalogReplicaRegions }).table;
    } else {
      this.catalogTable = dynamodb.TableV2.fromTableName(this, 'CatalogReplica', catalogTableName(config.name));
    }

    // One role for every workflow Lambda: it is the identity the EKS access entries map to
    // the milvus-guard Kubernetes group, and one entry per cluster is what EKS allows per
    // principal. Its permissions are the workflow's: this vault, the catalog, the clusters.
    this.workflowRole = new iam.Role(this, 'WorkflowRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `The milvus-guard workflow Lambdas of ${config.name} in ${vaultConfig.region}`,
    });
    this.vault.grantReadWriteChunks(this.workflowRole);
    this.catalogTable.grantReadWriteData(this.workflowRole);

    const clusters = [
      ...plans.map((p) => p.cluster),
      ...config.drills
        .filter((d) => plans.some((p) => p.plan.name === d.plan))
        .map((d) => resolveDrill(config, d.name).targetCluster)
        .filter((c) => c.region === vaultConfig.region),
    ];
    const clusterNames = clusters.map((c) => c.eksClusterName);
    this.clusterAccess = new ClusterAccess(this, 'ClusterAccess', { role: this.workflowRole, clusterNames });
    this.network = clusterNetwork(this, clusters, this.workflowRole);

    this.prepareFunction = new MilvusGuardFunction(this, 'Prepare', {
      entry: lambdaEntry('prepare'),
      description: 'Backup workflow, step 1: validate the input, resolve the plan, name the backup',
      environmentSchema: PrepareEnvironment,
      environment: { VAULT_NAME: vaultConfig.name, VAULT_BUCKET: this.vault.bucket.bucketName, CATALOG_TABLE: this.catalogTable.tableName },
      config,
      serviceName: config.name,
      role: this.workflowRole,
      logEncryptionKey: logsKey,
    });

    // The data-mover Jobs write the vault as their own role (EKS Pod Identity), not the workflow's.
    this.dataMover = new DataMover(this, 'DataMover', { targets: plans.map((p) => ({ clusterName: p.cluster.eksClusterName, namespace: p.plan.namespace })) });
    this.vault.grantReadWriteChunks(this.dataMover.role);
    // "Backup Available" / "Backup Failed" on the account's default bus.
    const bus = events.EventBus.fromEventBusName(this, 'DefaultEventBus', 'default');
    bus.grantPutEventsTo(this.workflowRole);

    // One function per Task, all from one bundle; they share the workflow role (the EKS identity).
    const stepEnvironment = {
      VAULT_NAME: vaultConfig.name,
      VAULT_BUCKET: this.vault.bucket.bucketName,
      VAULT_KMS_KEY_ARN: this.vault.encryptionKey.keyArn,
      VAULT_OBJECT_LOCK_MODE: vaultConfig.objectLock.mode,
      CATALOG_TABLE: this.catalogTable.tableName,
      EVENT_BUS_NAME: bus.eventBusName,
      DATAMOVER_IMAGE: this.dataMover.image.imageUri,
      DATAMOVER_SERVICE_ACCOUNT: this.dataMover.serviceAccountName,
    };
    const stepFunctions = new Map<StepName, MilvusGuardFunction<typeof BackupStepEnvironment>>();
    for (const step of STEP_NAMES) {
      stepFunctions.set(
        step,
        new MilvusGuardFunction(this, `Step-${step}`, {
          entry: lambdaEntry('backup'),
          handler: step,
          description: `Backup workflow step ${step}`,
          environmentSchema: BackupStepEnvironment,
          environment: stepEnvironment,
          config,
          serviceName: config.name,
          role: this.workflowRole,
          logEncryptionKey: logsKey,
          ...(this.network ? { network: this.network } : {}),
          // Quiesce lists and flushes every collection, hooks run with their own timeouts, and
          // CheckExport reads a pod log: minutes, never hours (the Wait states do the waiting).
          timeout: Duration.minutes(5),
        }),
      );
    }
    this.stepFunctions = stepFunctions;

    const schedules: PlanSchedule[] = plans.flatMap((p) => (p.schedule ? [{ plan: p.plan.name, cron: p.schedule.cron, timeZone: p.schedule.timeZone }] : []));
    this.backupWorkflow = new BackupWorkflow(this, 'BackupWorkflow', {
      stateMachineName: stateMachineName(config.name, 'backup'),
      taskFunctions: {
        [placeholderOf('prepare')]: this.prepareFunction.function,
        ...Object.fromEntries([...stepFunctions].map(([step, fn]) => [placeholderOf(step), fn.function])),
      },
      schedules,
      logEncryptionKey: logsKey,
      alarmTopic: this.notifications.topic,
    });

    this.acknowledgeFindings();
  }

  /** cdk-nag findings that are deliberate, each with the reason. */
  private acknowledgeFindings(): void {
    if (this.network) {
      acknowledgeWildcardResources(this.workflowRole, ['*'], 'Lambda creates and deletes its VPC network interfaces with the function role; those EC2 actions support no resource-level permissions.');
    }
    acknowledge(this.vault.accessLogsBucket, 'AwsSolutions-S1', "This bucket receives the vault's server access logs; logging it into itself would loop.");
    for (const fn of [this.prepareFunction, ...this.stepFunctions.values()]) {
      acknowledge(fn.function, 'AwsSolutions-L1', 'Node.js 22 is the runtime the bundle targets (esbuild target node22) and is tested on; moving to a newer runtime is a deliberate change of both.');
    }
    acknowledgeWildcardResources(this.dataMover.role, [this.vault.bucket.arnForObjects('*')], 'The data mover writes packs, indexes and summaries anywhere in the vault; the vault holds nothing else. No delete.');
    acknowledgeWildcardResources(this.workflowRole, [this.vault.bucket.arnForObjects('*')], 'Backups write and read chunks, indexes and manifests anywhere in the vault; the vault holds nothing else. No delete.');
    acknowledgeWildcardResources(this.workflowRole, [`${this.catalogTable.tableArn}/index/*`], "Querying the catalog's index; the table has one.");
    acknowledgeWildcardResources(this.workflowRole, ['*'], 'X-Ray (PutTraceSegments, PutTelemetryRecords) supports no resource-level permissions.');
  }
}

/** A vault key from the config's `kmsKeyArn`: a key ARN (IAM grants cannot name a key by alias). */
function importVaultKey(scope: Construct, vault: VaultConfig): kms.IKey {
  const arn = vault.kmsKeyArn!;
  if (/:alias\//.test(arn)) {
    throw new UserError(
      `vaults[${vault.name}].kmsKeyArn is an alias ARN (${arn}); IAM grants need the key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) — find it with: aws kms describe-key --key-id ${arn}`,
    );
  }
  return kms.Key.fromKeyArn(scope, 'VaultKey', arn);
}

function lambdaEntry(name: string): string {
  return fileURLToPath(new URL(`../../lambdas/${name}/index.ts`, import.meta.url));
}

/**
 * The VPC placement for the clusters of one region whose endpoint is private, or undefined when
 * all are public. The step functions serve every plan of the region, so they run in one VPC:
 * private clusters in different VPCs are refused with a message saying so.
 */
function clusterNetwork(scope: Construct, clusters: readonly Cluster[], role: iam.IRole): ClusterNetwork | undefined {
  const privates = [...new Map(clusters.filter((c) => c.endpointAccess === 'private').map((c) => [c.name, c])).values()];
  if (privates.length === 0) return undefined;
  const vpcIds = [...new Set(privates.map((c) => c.vpc!.vpcId))];
  if (vpcIds.length > 1) {
    throw new UserError(
      `clusters ${privates.map((c) => `${c.name} (${c.vpc!.vpcId})`).join(', ')} have private endpoints in different VPCs; ` +
        'the workflow Lambdas of one region run in one VPC: peer the VPCs and name one of them for every private cluster, or make the endpoints public',
    );
  }
  const vpc = privates[0]!.vpc!;
  return new ClusterNetwork(scope, 'ClusterNetwork', {
    vpcId: vpc.vpcId,
    subnetIds: vpc.subnetIds,
    ...(vpc.securityGroupIds ? { securityGroupIds: vpc.securityGroupIds } : {}),
    role,
  });
}

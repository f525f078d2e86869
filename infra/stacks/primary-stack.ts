/**
 * The stack of a vault region: the vault (replicating to its DR vaults), the catalog (the
 * global table itself in the installation's home region, its replica elsewhere), the workflow
 * role and its access to the region's EKS clusters, the workflow Lambdas, the backup, restore
 * and drill state machines with the plans' and drills' schedules (drills into a cluster of this
 * region; those into a DR region's cluster run in that region's DR stack), the retention state
 * machine with its daily schedule and its per-step roles, and the notification topic the alarms
 * publish to. Captured Secrets are sealed with the vault's multi-Region sealing key, which the
 * keys stack of this region creates before this stack and its DR stacks deploy.
 */
import { grantMilvusBucketRead, grantMilvusRestoreTargets } from '../constructs/milvus-buckets.js';
import { PACKS_PREFIX, RESTORE_PROGRESS_PREFIX } from '../../core/vault/layout.js';
import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import { RecoverEndedExecutions } from '../constructs/recover-ended.js';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { resolveDrill, resolvePlan, type ResolvedDrill } from '../../core/config/resolve.js';
import { parseQuantity } from '../../core/config/quantity.js';
import { drillNamespaceOf, type Config, type StorageClass, type Vault as VaultConfig } from '../../core/config/schema.js';
import { UserError } from '../../core/errors.js';
import { BACKUP_WORKFLOW, DRILL_WORKFLOW, RESTORE_WORKFLOW, RETENTION_WORKFLOW } from '../../core/workflow/steps.js';
import { BackupStepEnvironment } from '../../lambdas/backup/environment.js';
import { PrepareEnvironment } from '../../lambdas/prepare/environment.js';
import { RestoreStepEnvironment } from '../../lambdas/restore/environment.js';
import { RetentionStepEnvironment } from '../../lambdas/retention/environment.js';
import { Catalog } from '../constructs/catalog.js';
import { ClusterAccess } from '../constructs/cluster-access.js';
import { ClusterNetwork, clusterNetworkFor } from '../constructs/cluster-network.js';
import { DataMover } from '../constructs/data-mover.js';
import { Monitoring, type InstallationDashboardProps } from '../constructs/monitoring.js';
import { RpoCheck } from '../constructs/rpo-check.js';
import { Notifications } from '../constructs/notifications.js';
import { RetentionAccess } from '../constructs/retention-access.js';
import { Vault, replicationRuleId, type VaultTransition } from '../constructs/vault.js';
import { StepFunctions } from '../constructs/step-functions.js';
import { Workflow, type WorkflowSchedule } from '../constructs/workflow.js';
import { acknowledge, acknowledgeWildcardResources } from '../nag.js';
import { catalogTableName, RECOVERY_OUTPUTS, replicaBucketName, replicaKeyAlias, sealingKeyParameterName, stateMachineName, vaultBucketName, vaultKeyAlias } from '../../core/naming.js';
import { sealingKeyArnFromParameter } from '../constructs/sealing-key.js';

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

/**
 * When the retention workflow runs on its own: daily at 12:00 UTC. The config has no field for
 * it; noon UTC is far from the night when backups are usually scheduled (the example's run at
 * 02:00 UTC), so a backup rarely waits for the plan lock retention holds, or the other way round.
 * Either way nothing breaks: a plan whose backup runs is skipped for the day, and a backup
 * that starts during a run retries until the run releases the lock.
 */
export const RETENTION_SCHEDULE = { cron: ['0 12 * * *'], timeZone: 'UTC' } as const;

/**
 * The catalog's home region: the first vault's, where infra/installation.ts puts the global table
 * (`catalogHome`) and so the RPO check, which publishes every plan's age and RPO there, and the
 * installation's dashboard.
 */
export function catalogHomeRegion(config: Config): string {
  return config.vaults[0]!.region;
}

export class PrimaryStack extends Stack {
  readonly vault: Vault;
  readonly catalogTable: dynamodb.ITableV2;
  readonly notifications: Notifications;
  readonly workflowRole: iam.Role;
  /** The functions behind the workflows' Tasks, one per state (core/workflow/steps.ts). */
  readonly steps: StepFunctions;
  readonly dataMover: DataMover;
  readonly backupWorkflow: Workflow;
  readonly restoreWorkflow: Workflow;
  readonly drillWorkflow: Workflow;
  readonly retentionWorkflow: Workflow;
  /** The retention steps' roles, one per step, and ApplyPlan's access to the plans' clusters. */
  readonly retentionAccess: RetentionAccess;
  readonly clusterAccess: ClusterAccess;
  /** The VPC placement of the functions that call Kubernetes, when a cluster is private. */
  readonly network?: ClusterNetwork;
  /** The plans', vault's and drills' alarms, and the dashboard. */
  readonly monitoring: Monitoring;
  /** The RPO check and its alarms; in the catalog's home region only. */
  readonly rpoCheck?: RpoCheck;

  constructor(scope: Construct, id: string, props: PrimaryStackProps) {
    super(scope, id, props);
    const { config } = props;
    const vaultConfig = config.vaults.find((v) => v.name === props.vaultName);
    if (!vaultConfig) throw new UserError(`vault "${props.vaultName}" is not defined in the config; defined: ${config.vaults.map((v) => v.name).join(', ')}`);
    const names = { installation: config.name, vault: vaultConfig.name, account: this.account };
    const homeRegion = catalogHomeRegion(config);
    if (props.catalogHome !== (vaultConfig.region === homeRegion)) {
      // The RPO check and the dashboard are made in the home region's stack, and the dashboard draws the check's metrics from that region: both must name the same one.
      throw new Error(`${id}: catalogHome is ${props.catalogHome} for vault ${vaultConfig.name} in ${vaultConfig.region}, but the catalog's home region is ${homeRegion} (catalogHomeRegion: the first vault's)`);
    }
    const plans = config.plans.filter((p) => p.vault === vaultConfig.name).map((p) => resolvePlan(config, p.name));
    // A drill runs where its target cluster is: here, or in the DR stack of a region this vault
    // replicates into (restoring from the replica there, which is what a drill should prove).
    const drills = drillsOf(config, vaultConfig, plans.map((p) => p.plan.name)).filter((d) => d.targetCluster.region === vaultConfig.region);

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
      alarmNamePrefix: config.name,
      vaultName: vaultConfig.name,
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
    // A restore or drill of a backup whose packs the lifecycle archived thaws them first (StartThaw).
    this.vault.grantThaw(this.workflowRole, [PACKS_PREFIX]);
    this.catalogTable.grantReadWriteData(this.workflowRole);
    // S3-backed Milvus instances: read their declared root paths, write their restore targets.
    grantMilvusBucketRead(this.workflowRole, plans);
    grantMilvusRestoreTargets(this.workflowRole, plans);
    // Captured Secrets are sealed with the vault's multi-Region sealing key (the keys stack), so
    // that its replica in each DR region unseals them there; restores here unseal them with it.
    const sealingKeyArn = sealingKeyArnFromParameter(this, sealingKeyParameterName(names));
    iam.Grant.addToPrincipal({ grantee: this.workflowRole, actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resourceArns: [sealingKeyArn] });

    // The plans' clusters and every other cluster of this region: a restore may target any
    // cluster of the config (a standby, a staging cluster), and drills restore into theirs.
    const clusters = [...plans.map((p) => p.cluster), ...config.clusters.filter((c) => c.region === vaultConfig.region)];
    const clusterNames = clusters.map((c) => c.eksClusterName);
    this.clusterAccess = new ClusterAccess(this, 'ClusterAccess', { role: this.workflowRole, clusterNames });
    this.network = clusterNetworkFor(this, 'ClusterNetwork', clusters, this.workflowRole);

    // The data-mover Jobs use the vault as their own roles (EKS Pod Identity), not the
    // workflow's: export Jobs in the plans' namespaces write it, hydration Jobs in the drills'
    // namespaces only read it.
    this.dataMover = new DataMover(this, 'DataMover', {
      targets: plans.map((p) => ({ clusterName: p.cluster.eksClusterName, namespace: p.plan.namespace })),
      // Configured drills' namespaces, and the default drill namespace of every plan: where a drill
      // started for a plan (`{"plan": NAME}`) restores.
      restoreTargets: [
        ...drills.map((d) => ({ clusterName: d.targetCluster.eksClusterName, namespace: d.targetNamespace })),
        ...plans.map((p) => ({ clusterName: p.cluster.eksClusterName, namespace: drillNamespaceOf(p.plan.namespace) })),
      ],
    });
    if (this.dataMover.role) this.vault.grantWriteExports(this.dataMover.role);
    this.vault.grantRead(this.dataMover.restoreRole);
    // Hydration Jobs report their progress (core/datamover/progress.ts): small objects under
    // progress/restores/ only, each with its own short lock (so s3:PutObjectRetention there too).
    this.vault.grantWriteProgress(this.dataMover.restoreRole, [RESTORE_PROGRESS_PREFIX]);
    // A vault-sourced restore into a namespace no plan or drill names needs a Pod Identity
    // association for this role, made by hand (README); the ARN is what that takes.
    new CfnOutput(this, 'DataMoverRestoreRoleArn', {
      value: this.dataMover.restoreRole.roleArn,
      description: `aws eks create-pod-identity-association --cluster-name CLUSTER --namespace NAMESPACE --service-account ${this.dataMover.serviceAccountName} --role-arn <this>`,
    });
    // The workflows' events ("Backup Available", "Restore Completed", "Drill Passed", ...) go to
    // the account's default bus.
    const bus = events.EventBus.fromEventBusName(this, 'DefaultEventBus', 'default');
    bus.grantPutEventsTo(this.workflowRole);

    // Retention is the one workflow that deletes from the vault: its steps get a role each, with
    // what that step does and nothing of the backup's or restore's rights (and those have no
    // delete). ApplyPlan reaches the plans' clusters in a Kubernetes group of its own.
    this.retentionAccess = new RetentionAccess(this, 'RetentionAccess', {
      vault: this.vault,
      catalogTable: this.catalogTable,
      eventBus: bus,
      clusterNames: plans.map((p) => p.cluster.eksClusterName),
    });
    if (this.network) this.network.grantNetworkInterfaces(this.retentionAccess.roles.ApplyPlan);

    // One function per Task, all but the retention steps sharing the workflow role (the EKS
    // identity, already allowed the vault, its key, the catalog and the bus); each may run as
    // long as its Task waits.
    const stepEnvironment = {
      VAULT_NAME: vaultConfig.name,
      VAULT_BUCKET: this.vault.bucket.bucketName,
      VAULT_KMS_KEY_ARN: this.vault.encryptionKey.keyArn,
      VAULT_OBJECT_LOCK_MODE: vaultConfig.objectLock.mode,
      CATALOG_TABLE: this.catalogTable.tableName,
      EVENT_BUS_NAME: bus.eventBusName,
      DATAMOVER_IMAGE: this.dataMover.image.imageUri,
      DATAMOVER_SERVICE_ACCOUNT: this.dataMover.serviceAccountName,
      SEALING_KEY_ARN: sealingKeyArn,
    };
    this.steps = new StepFunctions(this, 'Steps', {
      workflows: [BACKUP_WORKFLOW, RESTORE_WORKFLOW, DRILL_WORKFLOW, RETENTION_WORKFLOW],
      bundles: {
        // Prepare needs the catalog and nothing of the cluster.
        prepare: {
          environmentSchema: PrepareEnvironment,
          environment: { VAULT_NAME: vaultConfig.name, VAULT_BUCKET: this.vault.bucket.bucketName, CATALOG_TABLE: this.catalogTable.tableName },
          callsKubernetes: false,
        },
        backup: { environmentSchema: BackupStepEnvironment, environment: stepEnvironment, callsKubernetes: true },
        restore: { environmentSchema: RestoreStepEnvironment, environment: stepEnvironment, callsKubernetes: true },
        // Only ApplyPlan calls Kubernetes (it deletes VolumeSnapshots). The lock TTL, the GC
        // slice and the number of backups whose snapshots stay (KEEP_SNAPSHOTS) keep the
        // defaults of their environment schema.
        retention: {
          environmentSchema: RetentionStepEnvironment,
          environment: {
            VAULT_NAME: vaultConfig.name,
            VAULT_BUCKET: this.vault.bucket.bucketName,
            VAULT_KMS_KEY_ARN: this.vault.encryptionKey.keyArn,
            VAULT_OBJECT_LOCK_MODE: vaultConfig.objectLock.mode,
            CATALOG_TABLE: this.catalogTable.tableName,
            EVENT_BUS_NAME: bus.eventBusName,
          },
          callsKubernetes: ['ApplyPlan'],
          roles: this.retentionAccess.roles,
        },
      },
      config,
      role: this.workflowRole,
      logEncryptionKey: logsKey,
      ...(this.network ? { network: this.network } : {}),
    });

    const planSchedules: WorkflowSchedule[] = plans.flatMap((p) =>
      p.schedule ? [{ name: p.plan.name, input: { plan: p.plan.name }, cron: p.schedule.cron, timeZone: p.schedule.timeZone, purpose: `Backs up plan ${p.plan.name}` }] : [],
    );
    this.backupWorkflow = new Workflow(this, 'BackupWorkflow', {
      definition: 'backup',
      stateMachineName: stateMachineName(config.name, 'backup'),
      taskFunctions: this.steps.taskFunctions(BACKUP_WORKFLOW),
      schedules: planSchedules,
      logEncryptionKey: logsKey,
      alarmTopic: this.notifications.topic,
    });
    // On demand only (console or CLI): a restore is a decision, not a routine.
    this.restoreWorkflow = new Workflow(this, 'RestoreWorkflow', {
      definition: 'restore',
      stateMachineName: stateMachineName(config.name, 'restore'),
      taskFunctions: this.steps.taskFunctions(RESTORE_WORKFLOW),
      logEncryptionKey: logsKey,
      alarmTopic: this.notifications.topic,
    });
    // A drill runs the restore workflow itself as a nested execution, so it proves exactly
    // what a real restore would do.
    this.drillWorkflow = new Workflow(this, 'DrillWorkflow', {
      definition: 'drill',
      stateMachineName: stateMachineName(config.name, 'drill'),
      taskFunctions: this.steps.taskFunctions(DRILL_WORKFLOW),
      nestedStateMachines: { RestoreStateMachineArn: this.restoreWorkflow.stateMachine },
      schedules: drills.map((d) => ({ name: d.drill.name, input: { drill: d.drill.name }, cron: d.schedule.cron, timeZone: d.schedule.timeZone, purpose: `Runs the DR drill ${d.drill.name} (plan ${d.plan.plan.name})` })),
      logEncryptionKey: logsKey,
      alarmTopic: this.notifications.topic,
    });

    // Daily for every plan of the vault, and on demand (console or CLI) with {"plan": NAME} or
    // {"all": true}, optionally "dryRun": true.
    this.retentionWorkflow = new Workflow(this, 'RetentionWorkflow', {
      definition: 'retention',
      stateMachineName: stateMachineName(config.name, 'retention'),
      taskFunctions: this.steps.taskFunctions(RETENTION_WORKFLOW),
      schedules: [{ name: 'daily', input: { all: true }, cron: RETENTION_SCHEDULE.cron, timeZone: RETENTION_SCHEDULE.timeZone, purpose: `Applies the retention policies of the plans of vault ${vaultConfig.name}` }],
      logEncryptionKey: logsKey,
      alarmTopic: this.notifications.topic,
    });

    // A backup execution that ends without its failure path (stopped, timed out, a Lambda that
    // crashed past its retries) is recovered after at once: its clones, Jobs and snapshots
    // removed, GC resumed, post hooks run, its record Failed and the plan lock released.
    new RecoverEndedExecutions(this, 'RecoverEndedBackups', {
      stateMachineArn: this.backupWorkflow.stateMachine.stateMachineArn,
      name: stateMachineName(config.name, 'backup'),
      recover: this.steps.eventFunction(BACKUP_WORKFLOW, 'RecoverExecution'),
      workflow: 'backup',
      outputName: RECOVERY_OUTPUTS.backup,
      alarmTopic: this.notifications.topic,
    });
    // The same for a restore execution (also a drill's nested one): its hydration Jobs and
    // snapshot objects removed, its record Failed (else it stays InProgress, and retention keeps
    // its backup forever); the target namespace stays for inspection.
    new RecoverEndedExecutions(this, 'RecoverEndedRestores', {
      stateMachineArn: this.restoreWorkflow.stateMachine.stateMachineArn,
      name: stateMachineName(config.name, 'restore'),
      recover: this.steps.eventFunction(RESTORE_WORKFLOW, 'RecoverExecution'),
      workflow: 'restore',
      outputName: RECOVERY_OUTPUTS.restore,
      alarmTopic: this.notifications.topic,
    });

    // Prepare and RecoverHolder ask whether the execution that holds a plan's lock still runs:
    // a backup's, or a retention run's (which locks every plan of the vault); RecoverExecution
    // whether the backup or restore execution an event names has ended. The ARNs are built from
    // the names: a reference to a state machine would make its role's policy depend on the state
    // machine, which depends on the functions that use the role.
    const described = (['backup', 'retention', 'restore'] as const).map((w) =>
      this.formatArn({ service: 'states', resource: 'execution', resourceName: `${stateMachineName(config.name, w)}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
    );
    this.workflowRole.addToPolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution'], resources: described }));
    acknowledgeWildcardResources(
      this.workflowRole,
      described,
      'Any execution of the backup or retention state machine may hold a plan lock, and any backup or restore execution may need recovering; names are chosen at run time. Describe only.',
    );

    // The RPO check (infra/constructs/rpo-check.ts) reads every plan of the installation from the
    // catalog, so it runs once: beside the global table, in its home region.
    if (props.catalogHome) {
      this.rpoCheck = new RpoCheck(this, 'RpoCheck', { config, catalogTable: this.catalogTable, alarmTopic: this.notifications.topic, logEncryptionKey: logsKey });
    }

    // The plans' failure-rate and duration alarms, the vault's replication latency, the drills
    // that run here; and, beside the RPO check, the installation's one dashboard (dashboards are
    // global to the account), drawing every vault's plans and S3 metrics from their regions.
    this.monitoring = new Monitoring(this, 'Monitoring', {
      installation: config.name,
      topic: this.notifications.topic,
      plans,
      drills,
      vault: this.vault,
      vaultName: vaultConfig.name,
      ...(props.catalogHome ? { dashboard: installationDashboard(config, this.account) } : {}),
    });

    // No role of the product may lift or shorten an Object Lock (Vault.denyGovernanceBypass
    // says why the deny names the product's roles rather than every principal). Every role of
    // this stack, so a role added later is covered without a list to keep in step.
    this.vault.denyGovernanceBypass(this.node.findAll().filter((c): c is iam.Role => c instanceof iam.Role));

    this.acknowledgeFindings();
  }

  /** cdk-nag findings that are deliberate, each with the reason. */
  private acknowledgeFindings(): void {
    if (this.network) {
      for (const role of [this.workflowRole, this.retentionAccess.roles.ApplyPlan]) {
        acknowledgeWildcardResources(role, ['*'], 'Lambda creates and deletes its VPC network interfaces with the function role; those EC2 actions support no resource-level permissions.');
      }
    }
    acknowledge(this.vault.accessLogsBucket, 'AwsSolutions-S1', "This bucket receives the vault's server access logs; logging it into itself would loop.");
    for (const fn of this.steps.functions.values()) {
      acknowledge(fn.function, 'AwsSolutions-L1', 'Node.js 22 is the runtime the bundle targets (esbuild target node22) and is tested on; moving to a newer runtime is a deliberate change of both.');
    }
    if (this.dataMover.role) {
      acknowledgeWildcardResources(this.dataMover.role, [this.vault.bucket.arnForObjects('*')], "An export reads its parent's index and summaries, and the locks of the packs it reuses, wherever they are in the vault. Read only.");
      acknowledgeWildcardResources(this.dataMover.role, this.vault.exportObjectArns(), 'An export writes packs, file indexes, volume summaries and its progress, named at run time; only those keys, never backup.json or manifests. No delete.');
    }
    acknowledgeWildcardResources(this.dataMover.restoreRole, [this.vault.bucket.arnForObjects('*')], 'A hydration Job reads the packs and indexes of the backup it restores, wherever they are in the vault. Read only.');
    acknowledgeWildcardResources(this.dataMover.restoreRole, [this.vault.bucket.arnForObjects(`${RESTORE_PROGRESS_PREFIX}*`)], 'A hydration Job writes its progress (one small object per volume, with its own one-day lock) under progress/restores/<restore>/, named at run time; its only writes.');
    acknowledgeWildcardResources(
      this.workflowRole,
      [this.vault.bucket.arnForObjects('*')],
      'Backups write and read chunks, indexes and manifests anywhere in the vault, restores read them and drills write their evidence under drills/; the vault holds nothing else. No delete.',
    );
    acknowledgeWildcardResources(this.workflowRole, [this.vault.bucket.arnForObjects(`${PACKS_PREFIX}*`)], "A restore thaws whichever archived packs the backup it restores needs (RestoreObject); packs only.");
    acknowledgeWildcardResources(this.workflowRole, [`${this.catalogTable.tableArn}/index/*`], "Querying the catalog's index; the table has one.");
    acknowledgeWildcardResources(this.workflowRole, ['*'], 'X-Ray (PutTraceSegments, PutTelemetryRecords) supports no resource-level permissions.');
  }
}

/**
 * The installation's dashboard, from the config: every vault with its plans and DR replicas,
 * named as their stacks name them. Built from names rather than from the other primary stacks'
 * constructs: those are in other regions, and a dashboard needs only the names (a reference
 * across regions would need CDK's cross-region references for nothing). `account` is this
 * stack's (the `AWS::AccountId` token without one): every stack of the installation shares it.
 */
export function installationDashboard(config: Config, account: string): InstallationDashboardProps {
  return {
    dashboardName: config.name,
    rpoCheckRegion: catalogHomeRegion(config),
    vaults: config.vaults.map((vault) => {
      const names = { installation: config.name, vault: vault.name, account };
      return {
        name: vault.name,
        region: vault.region,
        bucketName: vaultBucketName({ ...names, region: vault.region }),
        plans: config.plans.filter((p) => p.vault === vault.name).map((p) => p.name),
        // The rule ids the vault stacks' Vault constructs give their replication rules.
        replicas: vault.replicaRegions.map((region) => ({ region, bucketName: replicaBucketName({ ...names, region }), ruleId: replicationRuleId(region) })),
      };
    }),
  };
}

/**
 * The drills of `plans` (of vault `vault`), resolved. A drill restores into a cluster of the
 * vault's region (the primary stack runs it) or of one of its replica regions (that DR stack
 * runs it, from the replica); any other region has neither the vault nor a replica of it.
 */
export function drillsOf(config: Config, vault: VaultConfig, plans: readonly string[]): ResolvedDrill[] {
  const drills = config.drills.filter((d) => plans.includes(d.plan)).map((d) => resolveDrill(config, d.name));
  const regions = [vault.region, ...vault.replicaRegions];
  for (const d of drills) {
    if (!regions.includes(d.targetCluster.region)) {
      throw new UserError(
        `drill ${d.drill.name} restores into cluster ${d.targetCluster.name} in ${d.targetCluster.region}, but its plan's vault ${vault.name} is in ${vault.region}` +
          (vault.replicaRegions.length ? ` and replicates into ${vault.replicaRegions.join(', ')}` : ' and replicates nowhere') +
          `; a drill runs where the vault or its replica is: choose a targetCluster in ${regions.join(' or ')}, or add ${d.targetCluster.region} to the vault's replicaRegions`,
      );
    }
  }
  return drills;
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

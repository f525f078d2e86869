/**
 * The stack of a DR region: everything a restore here needs with the primary region gone.
 * - The DR vault the source vault replicates into: the same Object Lock, encryption,
 *   public-access and TLS rules as its source but its own KMS key, so a compromised or deleted
 *   primary key cannot take the replica with it.
 * - A replica of the source vault's multi-Region sealing key, which unseals the captured Secrets.
 * - The restore, drill and failover workflows, their Lambdas and a workflow role that reads the DR
 *   vault, uses this region's replica of the catalog (the global table, created by the home
 *   region's stack) and reaches this region's EKS clusters; the data mover's restore role.
 * - CheckReplication every five minutes, recording which backups are whole here, and alarms when
 *   replication is late or the check stops, to a topic of this region.
 * - The DR vault's capacity alarms (at the source vault's `thresholdCapacity` and 80% of it), to
 *   the same topic: S3 reports a bucket's size in the bucket's region.
 * Nothing here names the primary region: the stack finds the catalog, the sealing key's ARN and
 * the bus in its own region by name (core/naming.ts), so it deploys and runs without that region.
 */
import { grantMilvusRestoreTargets } from '../constructs/milvus-buckets.js';
import { ArnFormat, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import { RecoverEndedExecutions } from '../constructs/recover-ended.js';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { replicatesInto, resolvePlan } from '../../core/config/resolve.js';
import type { Config, Vault as VaultConfig } from '../../core/config/schema.js';
import { drRestoreTargets } from '../../core/dr/targets.js';
import { UserError } from '../../core/errors.js';
import { catalogTableName, DR_DATAMOVER_SERVICE_ACCOUNT, drStateMachineName, RECOVERY_OUTPUTS, replicaBucketName, replicaKeyAlias, sealingKeyAlias, sealingKeyParameterName } from '../../core/naming.js';
import { DRILLS_PREFIX, PACKS_PREFIX, RESTORE_PROGRESS_PREFIX } from '../../core/vault/layout.js';
import { bundleStates, DRILL_WORKFLOW, FAILOVER_WORKFLOW, RESTORE_WORKFLOW } from '../../core/workflow/steps.js';
import { RestoreStepEnvironment } from '../../lambdas/restore/environment.js';
import { ClusterAccess } from '../constructs/cluster-access.js';
import { clusterNetworkFor, type ClusterNetwork } from '../constructs/cluster-network.js';
import { DataMover } from '../constructs/data-mover.js';
import { METRICS, type MetricSpec } from '../../core/monitoring/metrics.js';
import { parseQuantity } from '../../core/config/quantity.js';
import { guardMetric, Monitoring } from '../constructs/monitoring.js';
import { Notifications } from '../constructs/notifications.js';
import { SealingKeyReplica } from '../constructs/sealing-key.js';
import { StepFunctions } from '../constructs/step-functions.js';
import { CAPACITY_WARNING_RATIO, Vault } from '../constructs/vault.js';
import { Workflow } from '../constructs/workflow.js';
import { acknowledge, acknowledgeWildcardResources } from '../nag.js';
import { drillsOf, logsEncryptionKey, vaultTransitions } from './primary-stack.js';

export interface DrStackProps extends StackProps {
  readonly config: Config;
}

/** How often CheckReplication runs; its stopped alarm fires after three missed runs. */
const REPLICATION_CHECK_RATE = Duration.minutes(5);

export class DrStack extends Stack {
  /** The config's vault that replicates into this region (one per DR region, core/config/schema.ts). */
  readonly sourceVault: VaultConfig;
  /** The DR vault: the replica of `sourceVault`. */
  readonly vault: Vault;
  readonly sealingKey: SealingKeyReplica;
  readonly catalogTable: dynamodb.ITableV2;
  readonly notifications: Notifications;
  readonly workflowRole: iam.Role;
  readonly clusterAccess: ClusterAccess;
  /** The VPC placement of the functions that call Kubernetes, when a DR cluster is private. */
  readonly network?: ClusterNetwork;
  readonly dataMover: DataMover;
  /** The functions behind the workflows' Tasks and CheckReplication. */
  readonly steps: StepFunctions;
  readonly restoreWorkflow: Workflow;
  readonly drillWorkflow: Workflow;
  readonly failoverWorkflow: Workflow;
  /** Runs CheckReplication every five minutes. */
  readonly replicationCheckRule: events.Rule;
  readonly replicationLateAlarm: cloudwatch.Alarm;
  readonly replicationCheckStoppedAlarm: cloudwatch.Alarm;
  readonly replicationCheckErrorsAlarm: cloudwatch.Alarm;
  /** The alarms of the drills that run here. */
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: DrStackProps) {
    super(scope, id, props);
    const { config } = props;
    const source = sourceVaultOf(config, this.region);
    this.sourceVault = source;
    const names = { installation: config.name, vault: source.name, account: this.account };
    const plans = config.plans.filter((p) => p.vault === source.name).map((p) => resolvePlan(config, p.name));
    const drills = drillsOf(config, source, plans.map((p) => p.plan.name)).filter((d) => d.targetCluster.region === this.region);
    const clusters = config.clusters.filter((c) => c.region === this.region);

    this.notifications = new Notifications(this, 'Notifications', { subscriptions: config.notifications.subscriptions, displayName: config.name });
    // The construct id predates the DR workflows; renaming it would replace the bucket.
    this.vault = new Vault(this, `Vault-${source.name}`, {
      bucketName: replicaBucketName({ ...names, region: this.region }),
      objectLockMode: source.objectLock.mode,
      objectLockDefaultRetention: Duration.days(source.objectLock.defaultRetentionDays),
      keyAlias: replicaKeyAlias(names),
      transitions: vaultTransitions(source),
      // The replica holds at least what its source holds: the same planned capacity, per DR vault,
      // named <name>-dr-vault-<vault>-capacity(-warning) apart from the source vault's alarms.
      ...(source.thresholdCapacity ? { capacityAlarmThresholdBytes: parseQuantity(source.thresholdCapacity)! } : {}),
      alarmTopic: this.notifications.topic,
      alarmNamePrefix: `${config.name}-dr`,
      vaultName: source.name,
    });
    this.describeCapacityAlarms(source);
    const logsKey = logsEncryptionKey(this, 'LogsKey');
    this.sealingKey = new SealingKeyReplica(this, 'SealingKey', { alias: sealingKeyAlias(names), parameterName: sealingKeyParameterName(names) });
    // This region's replica of the global table: the same name in every region.
    this.catalogTable = dynamodb.TableV2.fromTableName(this, 'CatalogReplica', catalogTableName(config.name));
    const bus = events.EventBus.fromEventBusName(this, 'DefaultEventBus', 'default');

    // One role for every workflow Lambda here, as in the primary stack (the identity the EKS
    // access entries name). It reads the DR vault and writes only drill evidence into it: the
    // replica is what survives a compromised primary, so nothing here deletes or overwrites it.
    this.workflowRole = new iam.Role(this, 'WorkflowRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `The milvus-guard DR workflow Lambdas of ${config.name} in ${this.region} (vault ${source.name}'s replica)`,
    });
    this.vault.grantRead(this.workflowRole);
    this.vault.grantPutObjects(this.workflowRole, [DRILLS_PREFIX]);
    // A restore of a backup whose packs the lifecycle archived thaws them first (StartThaw).
    this.vault.grantThaw(this.workflowRole, [PACKS_PREFIX]);
    // Restores, drills, failovers and CheckReplication read the catalog's replica (records are
    // listed through its index) and write their own records into it; nothing here deletes one.
    this.workflowRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem'],
        resources: [this.catalogTable.tableArn, `${this.catalogTable.tableArn}/index/*`],
      }),
    );
    this.sealingKey.grantUnseal(this.workflowRole);
    bus.grantPutEventsTo(this.workflowRole);
    // Restores of S3-backed Milvus instances write their bucket objects into the plans' restore targets.
    grantMilvusRestoreTargets(this.workflowRole, plans);

    // Every cluster of this region: a failover or restore may target any of them.
    this.clusterAccess = new ClusterAccess(this, 'ClusterAccess', { role: this.workflowRole, clusterNames: clusters.map((c) => c.eksClusterName) });
    this.network = clusterNetworkFor(this, 'ClusterNetwork', clusters, this.workflowRole);

    // Hydration Jobs read the DR vault as the data mover's restore role (EKS Pod Identity), in the
    // namespaces restores here are known to target: each plan's own namespace (a failover brings
    // the plan back under its name) and its drill namespace, on every cluster of this region, and
    // the namespaces of the drills that run here. No backup role: nothing backs up in a DR region.
    this.dataMover = new DataMover(this, 'DataMover', {
      serviceAccountName: DR_DATAMOVER_SERVICE_ACCOUNT,
      restoreTargets: drRestoreTargets(config, source.name, this.region).map((t) => ({ clusterName: t.cluster.eksClusterName, namespace: t.namespace })),
    });
    this.vault.grantRead(this.dataMover.restoreRole);
    // Hydration Jobs report their progress (core/datamover/progress.ts): small objects under
    // progress/restores/ only, each with its own short lock (so s3:PutObjectRetention there too).
    this.vault.grantWriteProgress(this.dataMover.restoreRole, [RESTORE_PROGRESS_PREFIX]);
    new CfnOutput(this, 'DataMoverRestoreRoleArn', {
      value: this.dataMover.restoreRole.roleArn,
      description: `aws eks create-pod-identity-association --region ${this.region} --cluster-name CLUSTER --namespace NAMESPACE --service-account ${this.dataMover.serviceAccountName} --role-arn <this>`,
    });

    const workflows = [RESTORE_WORKFLOW, DRILL_WORKFLOW, FAILOVER_WORKFLOW];
    this.steps = new StepFunctions(this, 'Steps', {
      workflows,
      bundles: {
        restore: {
          environmentSchema: RestoreStepEnvironment,
          environment: {
            // The source vault's name: records, plans and keys are the primary's, the bucket is the replica.
            VAULT_NAME: source.name,
            VAULT_BUCKET: this.vault.bucket.bucketName,
            VAULT_KMS_KEY_ARN: this.vault.encryptionKey.keyArn,
            VAULT_OBJECT_LOCK_MODE: source.objectLock.mode,
            CATALOG_TABLE: this.catalogTable.tableName,
            EVENT_BUS_NAME: bus.eventBusName,
            DATAMOVER_IMAGE: this.dataMover.image.imageUri,
            DATAMOVER_SERVICE_ACCOUNT: this.dataMover.serviceAccountName,
            SEALING_KEY_ARN: this.sealingKey.keyArn,
          },
          // CheckReplication reads the vault and the catalog only: it stays out of the VPC.
          callsKubernetes: bundleStates('restore', ...workflows).filter((state) => state !== 'CheckReplication'),
        },
      },
      config,
      role: this.workflowRole,
      logEncryptionKey: logsKey,
      ...(this.network ? { network: this.network } : {}),
    });

    // Names of their own (core/naming.ts drStateMachineName): the region may hold a vault too.
    this.restoreWorkflow = new Workflow(this, 'RestoreWorkflow', {
      definition: 'restore',
      stateMachineName: drStateMachineName(config.name, 'restore'),
      taskFunctions: this.steps.taskFunctions(RESTORE_WORKFLOW),
      logEncryptionKey: logsKey,
      alarmTopic: this.notifications.topic,
    });
    this.drillWorkflow = new Workflow(this, 'DrillWorkflow', {
      definition: 'drill',
      stateMachineName: drStateMachineName(config.name, 'drill'),
      taskFunctions: this.steps.taskFunctions(DRILL_WORKFLOW),
      nestedStateMachines: { RestoreStateMachineArn: this.restoreWorkflow.stateMachine },
      schedules: drills.map((d) => ({ name: d.drill.name, input: { drill: d.drill.name }, cron: d.schedule.cron, timeZone: d.schedule.timeZone, purpose: `Runs the DR drill ${d.drill.name} (plan ${d.plan.plan.name}) from the replica in ${this.region}` })),
      logEncryptionKey: logsKey,
      alarmTopic: this.notifications.topic,
    });
    // On demand only: failing over is a decision (the runbook's), not a routine.
    this.failoverWorkflow = new Workflow(this, 'FailoverWorkflow', {
      definition: 'failover',
      stateMachineName: drStateMachineName(config.name, 'failover'),
      taskFunctions: this.steps.taskFunctions(FAILOVER_WORKFLOW),
      nestedStateMachines: { RestoreStateMachineArn: this.restoreWorkflow.stateMachine },
      logEncryptionKey: logsKey,
      alarmTopic: this.notifications.topic,
    });

    // A restore execution here (a failover's or a drill's nested one, or one started by hand)
    // that ends without its failure path is recovered after, as in the primary region: its
    // hydration Jobs and snapshot objects removed, its record Failed, the namespace left.
    // RecoverExecution and RecoverFailover ask whether the execution an event names has ended
    // (ARNs built from the names, as in the primary stack: a reference would make the role depend
    // on the state machine).
    const recoverable = (['restore', 'failover'] as const).map((w) =>
      this.formatArn({ service: 'states', resource: 'execution', resourceName: `${drStateMachineName(config.name, w)}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
    );
    this.workflowRole.addToPolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution'], resources: recoverable }));
    acknowledgeWildcardResources(this.workflowRole, recoverable, 'Any execution of the DR restore or failover state machine may need recovering; its name is chosen at run time. Describe only.');
    new RecoverEndedExecutions(this, 'RecoverEndedRestores', {
      stateMachineArn: this.restoreWorkflow.stateMachine.stateMachineArn,
      name: drStateMachineName(config.name, 'restore'),
      recover: this.steps.eventFunction(RESTORE_WORKFLOW, 'RecoverExecution'),
      workflow: 'restore',
      outputName: RECOVERY_OUTPUTS.restore,
      alarmTopic: this.notifications.topic,
    });
    // A failover execution that ends without RecordFailover (stopped, timed out) would leave its
    // record InProgress: marked Failed (ExecutionEnded), with "Failover Failed".
    new RecoverEndedExecutions(this, 'RecoverEndedFailovers', {
      stateMachineArn: this.failoverWorkflow.stateMachine.stateMachineArn,
      name: drStateMachineName(config.name, 'failover'),
      recover: this.steps.eventFunction(FAILOVER_WORKFLOW, 'RecoverFailover'),
      workflow: 'failover',
      alarmTopic: this.notifications.topic,
    });

    // The event is ignored: the check reads the catalog. A run that cannot be delivered within
    // the period is dropped; the next one does the same work.
    // One run at a time, never retried: a run may take as long as the schedule's period, and
    // the next run does the same work (each goes on where the last stopped), so a retry or a
    // second run at once would only repeat reads and race on the records.
    const check = this.steps.eventFunction(FAILOVER_WORKFLOW, 'CheckReplication') as lambda.Function;
    (check.node.defaultChild as lambda.CfnFunction).reservedConcurrentExecutions = 1;
    check.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: REPLICATION_CHECK_RATE });
    this.replicationCheckRule = new events.Rule(this, 'CheckReplicationSchedule', {
      description: `Records which backups of vault ${source.name} are whole in its DR vault in ${this.region} (CheckReplication)`,
      schedule: events.Schedule.rate(REPLICATION_CHECK_RATE),
      targets: [new eventTargets.LambdaFunction(check, { retryAttempts: 0, maxEventAge: REPLICATION_CHECK_RATE })],
    });
    const alarmAction = new cloudwatchActions.SnsAction(this.notifications.topic);
    // CheckReplication's run totals: the metrics without `plan` (ReplicationLate is emitted per plan too, core/monitoring/metrics.ts).
    const replicationMetric = (spec: MetricSpec, statistic: string) => guardMetric(spec, config.name, undefined, { statistic, period: REPLICATION_CHECK_RATE });
    this.replicationLateAlarm = new cloudwatch.Alarm(this, 'ReplicationLateAlarm', {
      alarmName: `${config.name}-dr-replication-late`,
      alarmDescription:
        `Backups of vault ${source.name} are still not whole in the DR vault ${this.vault.bucket.bucketName} (${this.region}) after S3's 15-minute replication deadline: ` +
        `a failover now would restore an older backup than the newest. See which with: milvus-guard dr status --region ${this.region}. ` +
        `Then check the primary region's replication-failure alarm and the vault's replication rule (its role, the DR key's policy); objects S3 gave up on need S3 Batch Replication.`,
      metric: replicationMetric(METRICS.replicationLate, cloudwatch.Stats.MAXIMUM),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // Reported by the check; its silence is the other alarm's business.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.replicationLateAlarm.addAlarmAction(alarmAction);
    this.replicationCheckStoppedAlarm = new cloudwatch.Alarm(this, 'ReplicationCheckStoppedAlarm', {
      alarmName: `${config.name}-dr-replication-check-stopped`,
      alarmDescription:
        `CheckReplication in ${this.region} has not reported for 15 minutes: which backups of vault ${source.name} a failover here could restore is no longer being recorded. ` +
        `Look at its function's logs and errors (the rule ${this.node.path}/CheckReplicationSchedule invokes it every 5 minutes) and at the catalog replica ${catalogTableName(config.name)}.`,
      metric: replicationMetric(METRICS.replicationChecked, cloudwatch.Stats.SAMPLE_COUNT),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 3,
      // No data is exactly what this alarm is about.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    this.replicationCheckStoppedAlarm.addAlarmAction(alarmAction);
    this.replicationCheckErrorsAlarm = new cloudwatch.Alarm(this, 'ReplicationCheckErrorsAlarm', {
      alarmName: `${config.name}-dr-replication-check-errors`,
      alarmDescription:
        `CheckReplication in ${this.region} could not check some backups of vault ${source.name}: they stay unchecked, and a failover here will not choose them. ` +
        `Its function's log says why for each (usually access to the DR vault ${this.vault.bucket.bucketName} or its KMS key); milvus-guard dr status --region ${this.region} lists them as unchecked.`,
      metric: replicationMetric(METRICS.replicationCheckErrors, cloudwatch.Stats.MAXIMUM),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // Reported by every run; silence is the stopped alarm's business.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.replicationCheckErrorsAlarm.addAlarmAction(alarmAction);

    // The drills that run here emit their metrics in this region: their alarms are this
    // stack's. Replication itself is watched by the three alarms above and, in the primary
    // region, by the vault's failed-replication and latency alarms: nothing to add here.
    this.monitoring = new Monitoring(this, 'Monitoring', { installation: config.name, topic: this.notifications.topic, drills });

    // No role of the product may lift or shorten an Object Lock on the replica either.
    this.vault.denyGovernanceBypass(this.node.findAll().filter((c): c is iam.Role => c instanceof iam.Role));

    this.acknowledgeFindings();
  }

  /**
   * What to do differs from the source vault's capacity alarms (whose descriptions the Vault
   * construct writes): retention does not run in a DR vault and deletes in the source are not
   * replicated (README, DR: not done yet), so a DR vault only grows, and tightening retention or
   * running it frees nothing here.
   */
  private describeCapacityAlarms(source: VaultConfig): void {
    const vaultName = source.name;
    const bucket = this.vault.bucket.bucketName;
    for (const [alarm, ratio] of [
      [this.vault.capacityAlarm, 1],
      [this.vault.capacityWarningAlarm, CAPACITY_WARNING_RATIO],
    ] as const) {
      if (!alarm) continue;
      const cfn = alarm.node.defaultChild as cloudwatch.CfnAlarm;
      const what = `${ratio < 1 ? `${Math.round(ratio * 100)}% of ` : ''}vault ${vaultName}'s thresholdCapacity ${source.thresholdCapacity} (${cfn.threshold} bytes)`;
      cfn.alarmDescription =
        `The DR vault of ${vaultName} in ${this.region} (${bucket}) holds more than ${what}. S3 reports BucketSizeBytes once a day, so this alarm lags the vault by up to a day. ` +
        `A DR vault only grows: deletes in the source vault (retention) are not replicated and retention does not run here yet, so it keeps every backup ever replicated. ` +
        `Compare it with the source vault, per storage class, with: milvus-guard cost --vault ${vaultName}; raise thresholdCapacity (the source vault's too) when the growth is expected. ` +
        'Do not delete packs from it by hand: the backups kept there share them.';
    }
  }

  /** cdk-nag findings that are deliberate, each with the reason. */
  private acknowledgeFindings(): void {
    if (this.network) {
      acknowledgeWildcardResources(this.workflowRole, ['*'], 'Lambda creates and deletes its VPC network interfaces with the function role; those EC2 actions support no resource-level permissions.');
    }
    acknowledge(this.vault.accessLogsBucket, 'AwsSolutions-S1', "This bucket receives the DR vault's server access logs; logging it into itself would loop.");
    for (const fn of this.steps.functions.values()) {
      acknowledge(fn.function, 'AwsSolutions-L1', 'Node.js 22 is the runtime the bundle targets (esbuild target node22) and is tested on; moving to a newer runtime is a deliberate change of both.');
    }
    acknowledgeWildcardResources(this.dataMover.restoreRole, [this.vault.bucket.arnForObjects('*')], 'A hydration Job reads the packs and indexes of the backup it restores, wherever they are in the DR vault. Read only.');
    acknowledgeWildcardResources(this.dataMover.restoreRole, [this.vault.bucket.arnForObjects(`${RESTORE_PROGRESS_PREFIX}*`)], 'A hydration Job writes its progress (one small object per volume, with its own one-day lock) under progress/restores/<restore>/, named at run time; its only writes.');
    acknowledgeWildcardResources(this.workflowRole, [this.vault.bucket.arnForObjects('*')], 'Restores read the indexes, manifests and packs of the backup they restore, wherever they are in the DR vault. Read only.');
    acknowledgeWildcardResources(this.workflowRole, [this.vault.bucket.arnForObjects(`${DRILLS_PREFIX}*`)], "Drills write their evidence reports under drills/ (one per drill run, named at run time); the only writes into the DR vault.");
    acknowledgeWildcardResources(this.workflowRole, [this.vault.bucket.arnForObjects(`${PACKS_PREFIX}*`)], 'A restore thaws whichever archived packs the backup it restores needs (RestoreObject); packs only.');
    acknowledgeWildcardResources(this.workflowRole, [`${this.catalogTable.tableArn}/index/*`], "Querying the catalog's index; the table has one.");
    acknowledgeWildcardResources(this.workflowRole, ['*'], 'X-Ray (PutTraceSegments, PutTelemetryRecords) supports no resource-level permissions.');
  }
}

/** The vault whose DR region `region` is (the config allows one per DR region). */
function sourceVaultOf(config: Config, region: string): VaultConfig {
  const sources = config.vaults.filter((v) => replicatesInto(v, region));
  if (sources.length !== 1) {
    throw new UserError(
      sources.length === 0
        ? `no vault replicates into ${region}; a DR stack serves the vault whose replicaRegions name its region`
        : `vaults ${sources.map((v) => v.name).join(', ')} all replicate into ${region}; a DR region serves one vault: choose another DR region for all but one`,
    );
  }
  const source = sources[0]!;
  return source;
}


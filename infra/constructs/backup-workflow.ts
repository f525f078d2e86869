/**
 * The backup workflow: the Standard state machine defined by statemachines/backup.asl.json —
 * the same file the local runner executes — with its `${Placeholders}` filled by
 * CloudFormation, plus one EventBridge Scheduler schedule per cron expression of every
 * scheduled plan, and alarms on failed executions and undeliverable schedules.
 */
import { Duration, RemovalPolicy, TimeZone } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { definitionPath, loadDefinition, placeholdersOf } from '../../core/workflow/asl.js';
import { toSchedulerExpression } from '../../core/schedule/cron.js';
import { acknowledge, acknowledgeWildcardResources } from '../nag.js';

/** When a plan's backups run: five-field cron expressions in an IANA time zone. */
export interface PlanSchedule {
  /** The plan's name; the schedule starts the workflow with `{"plan": name}`. */
  readonly plan: string;
  /** Five-field cron expressions, e.g. `0 2 * * *`. */
  readonly cron: readonly string[];
  /** e.g. `UTC`, `Europe/Berlin`. */
  readonly timeZone: string;
}

export interface BackupWorkflowProps {
  /** The state machine's name, as operators find it in the console. */
  readonly stateMachineName: string;
  /**
   * The Lambda behind each Task, by the definition's placeholder (`PrepareFunctionArn` for
   * `${PrepareFunctionArn}`); it must name exactly the placeholders the definition has.
   */
  readonly taskFunctions: Readonly<Record<string, lambda.IFunction>>;
  /**
   * Scheduled plans; plans without a schedule run on demand only.
   * @default - no schedules
   */
  readonly schedules?: readonly PlanSchedule[];
  /**
   * The key the execution log group is encrypted with.
   * @default - CloudWatch Logs' own encryption
   */
  readonly logEncryptionKey?: kms.IKey;
  /**
   * How long execution logs are kept.
   * @default logs.RetentionDays.SIX_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Where the workflow's alarms notify.
   * @default - alarms have no action
   */
  readonly alarmTopic?: sns.ITopic;
}

export class BackupWorkflow extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;
  /** Schedules, by construct id (`<plan>-<n>`). */
  readonly schedules: ReadonlyMap<string, scheduler.Schedule>;
  /** The role EventBridge Scheduler starts executions with. */
  readonly schedulerRole: iam.Role;
  /** Receives schedule invocations that could not be delivered after all retries. */
  readonly deadLetterQueue: sqs.Queue;
  readonly failedExecutionsAlarm: cloudwatch.Alarm;
  readonly undeliveredSchedulesAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: BackupWorkflowProps) {
    super(scope, id);

    const substitutions: Record<string, string> = Object.fromEntries(Object.entries(props.taskFunctions).map(([placeholder, fn]) => [placeholder, fn.functionArn]));
    // Fail at synth, not at deploy, when the file and the substitutions drift apart.
    const placeholders = placeholdersOf(loadDefinition('backup'));
    const missing = placeholders.filter((p) => !(p in substitutions));
    const extra = Object.keys(substitutions).filter((p) => !placeholders.includes(p));
    if (missing.length || extra.length) {
      throw new Error(`statemachines/backup.asl.json and ${this.node.path} disagree: no substitution for [${missing.join(', ')}], no placeholder for [${extra.join(', ')}]`);
    }

    this.logGroup = new logs.LogGroup(this, 'ExecutionLogs', {
      logGroupName: `/aws/vendedlogs/states/${props.stateMachineName}`,
      retention: props.logRetention ?? logs.RetentionDays.SIX_MONTHS,
      ...(props.logEncryptionKey ? { encryptionKey: props.logEncryptionKey } : {}),
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: props.stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromFile(definitionPath('backup')),
      definitionSubstitutions: substitutions,
      // Every event, but no input or output: those carry plan and cluster details that do not
      // belong in logs, and the execution history keeps them for those allowed to read it.
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });
    // Exactly the functions the definition references.
    const functions = Object.values(props.taskFunctions);
    for (const fn of functions) fn.grantInvoke(this.stateMachine);
    acknowledgeWildcardResources(
      this.stateMachine.role,
      functions.map((fn) => `${fn.functionArn}:*`),
      'Invoking a function includes its versions and aliases (grantInvoke); each is still a function the definition names.',
    );
    acknowledgeWildcardResources(this.stateMachine.role, ['*'], 'Log delivery (logs:*LogDelivery, DescribeLogGroups, resource policies) and X-Ray (PutTraceSegments, PutTelemetryRecords, sampling) support no resource-level permissions.');

    this.deadLetterQueue = new sqs.Queue(this, 'ScheduleDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.deadLetterQueue, 'AwsSolutions-SQS3', 'This queue is itself the dead-letter queue of the schedules.');
    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': this.stateMachine.stack.account } } }),
      description: `Starts ${props.stateMachineName} executions on schedule`,
    });

    const schedules = new Map<string, scheduler.Schedule>();
    for (const plan of props.schedules ?? []) {
      // The target grants the role states:StartExecution on this state machine (and
      // sqs:SendMessage on the dead-letter queue), nothing else.
      const target = new targets.StepFunctionsStartExecution(this.stateMachine, {
        role: this.schedulerRole,
        input: scheduler.ScheduleTargetInput.fromObject({ plan: plan.plan }),
        deadLetterQueue: this.deadLetterQueue,
        // A backup that cannot start within the hour is better reported than run late into
        // the working day; the DLQ alarm reports it.
        maxEventAge: Duration.hours(1),
        retryAttempts: 10,
      });
      plan.cron.forEach((cron, i) => {
        const scheduleId = `${plan.plan}-${i}`;
        schedules.set(
          scheduleId,
          new scheduler.Schedule(this, `Schedule-${scheduleId}`, {
            description: `Backs up plan ${plan.plan} at "${cron}" (${plan.timeZone})`,
            schedule: scheduler.ScheduleExpression.expression(toSchedulerExpression(cron), TimeZone.of(plan.timeZone)),
            target,
            timeWindow: scheduler.TimeWindow.off(),
          }),
        );
      });
    }
    this.schedules = schedules;

    this.failedExecutionsAlarm = new cloudwatch.Alarm(this, 'FailedExecutionsAlarm', {
      alarmDescription: `A ${props.stateMachineName} execution failed, timed out or was aborted; open it in the Step Functions console for the cause.`,
      metric: new cloudwatch.MathExpression({
        expression: 'FILL(failed, 0) + FILL(timedOut, 0) + FILL(aborted, 0)',
        usingMetrics: {
          failed: this.stateMachine.metricFailed({ period: Duration.minutes(5) }),
          timedOut: this.stateMachine.metricTimedOut({ period: Duration.minutes(5) }),
          aborted: this.stateMachine.metricAborted({ period: Duration.minutes(5) }),
        },
        period: Duration.minutes(5),
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.undeliveredSchedulesAlarm = new cloudwatch.Alarm(this, 'UndeliveredSchedulesAlarm', {
      alarmDescription: `A scheduled ${props.stateMachineName} execution could not be started; the message in the dead-letter queue says why.`,
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      this.failedExecutionsAlarm.addAlarmAction(action);
      this.undeliveredSchedulesAlarm.addAlarmAction(action);
    }
  }
}

/**
 * The rule that recovers after a workflow execution that ended without reaching its failure
 * path (stopped, timed out, a Lambda that crashed past its retries): Step Functions' status
 * change event runs the workflow's `RecoverExecution` function at once. The event names the
 * execution; the function checks with Step Functions (DescribeExecution) that it has ended
 * before it acts on it.
 *
 * A recovery can fail too (the catalog throttled past the SDK's retries, a Lambda timeout). The
 * function is invoked asynchronously, so Lambda retries it twice; an event still failing then
 * goes to the failed-recoveries queue and raises an alarm, instead of vanishing and leaving a
 * record InProgress for good. `milvus-guard backup|restore cancel ID` runs the recovery again
 * once the cause is fixed: it finds the function by the stack output this construct adds
 * (cli/recover.ts).
 */
import { CfnOutput, Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge } from '../nag.js';

export interface RecoverEndedExecutionsProps {
  readonly stateMachineArn: string;
  /** The state machine's name, as operators see it (`<installation>-restore`). */
  readonly name: string;
  /** Its workflow's recovery function (RecoverExecution, RecoverFailover). */
  readonly recover: lambda.IFunction;
  /** Whose record the recovery ends: a backup's or a restore's (which `cancel` recovers again), or a failover's. */
  readonly workflow: 'backup' | 'restore' | 'failover';
  /** The stack output naming the function, for `backup|restore cancel` (cli/recover.ts RECOVERY_OUTPUTS reads it). */
  readonly outputName?: string;
  readonly alarmTopic?: sns.ITopic;
}

export class RecoverEndedExecutions extends Construct {
  readonly rule: events.Rule;
  /** Events whose recovery failed after Lambda's retries, kept 14 days. */
  readonly failedRecoveries: sqs.Queue;
  readonly failedRecoveriesAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: RecoverEndedExecutionsProps) {
    super(scope, id);
    this.rule = new events.Rule(this, 'Rule', {
      description: `Recovers after a ${props.name} execution that ended without reaching its failure path`,
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { stateMachineArn: [props.stateMachineArn], status: ['ABORTED', 'TIMED_OUT', 'FAILED'] },
      },
      // Delivery to Lambda's async queue is retried for 6 hours.
      targets: [new eventTargets.LambdaFunction(props.recover, { retryAttempts: 8, maxEventAge: Duration.hours(6) })],
    });

    this.failedRecoveries = new sqs.Queue(this, 'FailedRecoveries', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.failedRecoveries, 'AwsSolutions-SQS3', "This queue is itself the failure destination of the recovery function's asynchronous invocations.");
    new lambda.EventInvokeConfig(this, 'InvokeConfig', {
      function: props.recover,
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      // Grants the function's role sqs:SendMessage on this queue (the role the workflows' functions share).
      onFailure: new destinations.SqsDestination(this.failedRecoveries),
    });

    this.failedRecoveriesAlarm = new cloudwatch.Alarm(this, 'FailedRecoveriesAlarm', {
      alarmName: `${props.name}-recovery-failed`,
      alarmDescription:
        `The recovery after a ${props.name} execution that ended without its failure path failed, so its ${props.workflow} record stays InProgress${STAYS[props.workflow]}. ` +
        `See why in the function's log (${props.recover.functionName}) or the message in the queue <${this.node.path}/FailedRecoveries>, fix the cause, then ${AGAIN[props.workflow]}.`,
      // Each failure that arrives, not the queue's depth: the messages stay 14 days, and an alarm
      // on the depth would stay in ALARM and tell nobody of the next failed recovery.
      metric: this.failedRecoveries.metricNumberOfMessagesSent({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // No message sent in a period is no failure.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic) this.failedRecoveriesAlarm.addAlarmAction(new cloudwatchActions.SnsAction(props.alarmTopic));

    if (props.outputName) {
      const output = new CfnOutput(this, 'FunctionName', {
        value: props.recover.functionName,
        description: `RecoverExecution of ${props.name}: milvus-guard ${props.workflow} cancel invokes it for an execution that ended with its record still InProgress`,
      });
      // A fixed key: the CLI reads it by name.
      output.overrideLogicalId(props.outputName);
    }
  }
}

/** What an unrecovered record holds on to, per workflow (for the alarm's description). */
const STAYS = {
  backup: ' and holds its plan lock until the next backup recovers it',
  restore: ' and keeps its backup from retention',
  failover: ' (milvus-guard dr list shows it running; it blocks nothing)',
} as const;

/** How the operator recovers it again once the cause is fixed. */
const AGAIN = {
  backup: 'run: milvus-guard backup cancel ID (milvus-guard backup list shows the InProgress one)',
  restore: 'run: milvus-guard restore cancel ID (milvus-guard restore list shows the InProgress one)',
  failover: 'invoke the function again with the message from the queue as its payload (aws lambda invoke --function-name FUNCTION --cli-binary-format raw-in-base64-out --payload MESSAGE_BODY out.json); milvus-guard dr list --region REGION shows the failover',
} as const;

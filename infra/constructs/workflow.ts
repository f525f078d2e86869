/**
 * A milvus-guard workflow: the Standard state machine defined by `statemachines/<name>.asl.yaml`
 * — expanded the way the local runner expands it (core/workflow/asl.ts) — with its `${Placeholders}` filled by
 * CloudFormation (Lambda ARNs, and the ARNs of state machines it starts as nested executions),
 * its execution log group and X-Ray tracing, an alarm on failed executions, and optionally
 * EventBridge Scheduler schedules (one per cron expression) with a dead-letter queue and an
 * alarm when a scheduled execution cannot be started.
 *
 * The definition is also read at synth: its placeholders must be exactly the substitutions
 * given, every Lambda Task must have a `TimeoutSeconds` (see `taskFunctionTimeouts`), and every
 * nested state machine must be started by a Task, whose integration pattern decides the
 * permissions the state machine gets.
 */
import { Duration, RemovalPolicy, Stack, TimeZone } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { toSchedulerExpression } from '../../core/schedule/cron.js';
import { loadDefinition, placeholdersOf, walkStates } from '../../core/workflow/asl.js';
import { acknowledge, acknowledgeWildcardResources } from '../nag.js';

/** When a workflow runs on its own: five-field cron expressions in an IANA time zone. */
export interface WorkflowSchedule {
  /** Names the schedules in construct ids (`Schedule-<name>-<n>`): a plan's or a drill's name. */
  readonly name: string;
  /** The execution input, e.g. `{"plan": "nightly"}`. */
  readonly input: Readonly<Record<string, unknown>>;
  /** Five-field cron expressions, e.g. `0 2 * * *`. */
  readonly cron: readonly string[];
  /** e.g. `UTC`, `Europe/Berlin`. */
  readonly timeZone: string;
  /** What a run does, for the schedule's description: `Backs up plan nightly`. */
  readonly purpose: string;
}

export interface WorkflowProps {
  /** The definition's name: `backup` for statemachines/backup.asl.yaml. */
  readonly definition: string;
  /** The state machine's name, as operators find it in the console. */
  readonly stateMachineName: string;
  /**
   * The Lambda behind each Task, by the definition's placeholder (`PrepareFunctionArn` for
   * `${PrepareFunctionArn}`). The state machine may invoke exactly these.
   */
  readonly taskFunctions: Readonly<Record<string, lambda.IFunction>>;
  /**
   * State machines the definition starts as nested executions, by placeholder
   * (`RestoreStateMachineArn`). The state machine gets what the Task's integration pattern needs.
   * @default - none
   */
  readonly nestedStateMachines?: Readonly<Record<string, sfn.IStateMachine>>;
  /**
   * Runs on a schedule; without schedules the workflow runs on demand only, and no scheduler
   * role, dead-letter queue or delivery alarm is made.
   * @default - no schedules
   */
  readonly schedules?: readonly WorkflowSchedule[];
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

/** The state a definition's `Task` has, as far as deployment cares. */
interface TaskState {
  readonly state: string;
  readonly resource: string;
  readonly parameters?: Record<string, unknown>;
  readonly timeoutSeconds?: number;
}

/** Every Task of a definition, in Parallel branches and Map item processors too. */
function taskStates(definitionText: string): TaskState[] {
  const tasks: TaskState[] = [];
  walkStates(JSON.parse(definitionText) as Parameters<typeof walkStates>[0], (state, s) => {
    if (s.Type !== 'Task' || !s.Resource) return;
    tasks.push({ state, resource: s.Resource, ...(s.Parameters ? { parameters: s.Parameters } : {}), ...(s.TimeoutSeconds === undefined ? {} : { timeoutSeconds: s.TimeoutSeconds }) });
  });
  return tasks;
}

/** Lambda's own limit on a function's timeout. */
const LAMBDA_MAX_TIMEOUT_SECONDS = 900;

/**
 * The timeout of each function of workflow `definition`, by placeholder: the shortest
 * `TimeoutSeconds` of the Tasks that invoke it (at most Lambda's 15 minutes). A function must
 * not outlive the state that invoked it: once the state has timed out the workflow takes its
 * failure path, and a step still running then (creating objects while the cleanup deletes them)
 * would leave what the cleanup had already looked for. Throws when a Task that invokes a
 * `${...FunctionArn}` has no `TimeoutSeconds` (the default is 99999999 seconds).
 */
export function taskFunctionTimeouts(definition: string): ReadonlyMap<string, Duration> {
  const seconds = new Map<string, number>();
  for (const task of taskStates(loadDefinition(definition))) {
    const placeholder = /^\$\{([A-Za-z][A-Za-z0-9_]*FunctionArn)\}$/.exec(task.resource)?.[1];
    if (!placeholder) continue;
    if (task.timeoutSeconds === undefined) {
      throw new Error(`statemachines/${definition}.asl.yaml: Task ${task.state} has no TimeoutSeconds; give it one no longer than its function may run (at most ${LAMBDA_MAX_TIMEOUT_SECONDS} seconds)`);
    }
    seconds.set(placeholder, Math.min(seconds.get(placeholder) ?? LAMBDA_MAX_TIMEOUT_SECONDS, task.timeoutSeconds));
  }
  return new Map([...seconds].map(([placeholder, s]) => [placeholder, Duration.seconds(s)]));
}

/** The CLI command that lists a workflow's runs and why one failed, by definition (cli/commands). */
const CLI_LIST: Readonly<Record<string, (region: string) => string>> = {
  backup: (r) => `milvus-guard backup list --region ${r}, then milvus-guard backup describe NAME --region ${r}`,
  restore: (r) => `milvus-guard restore list --region ${r}, then milvus-guard restore describe ID --region ${r}`,
  drill: (r) => `milvus-guard drill list --region ${r}`,
  retention: (r) => `milvus-guard retention list --region ${r}`,
  failover: (r) => `milvus-guard dr list --region ${r}`,
};

/** The CLI command that starts a scheduled workflow by hand, by definition. */
const CLI_RUN: Readonly<Record<string, string>> = {
  backup: 'milvus-guard backup create --plan PLAN',
  drill: 'milvus-guard drill run --drill DRILL',
  retention: 'milvus-guard retention run --all',
};

/** How a Task starts a nested execution: `startExecution`, `.sync`, `.sync:2` or `.waitForTaskToken`. */
const START_EXECUTION = /^arn:aws:states:::states:startExecution(\.sync(:2)?|\.waitForTaskToken)?$/;

export class Workflow extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;
  /** Schedules, by construct id (`<name>-<n>`). */
  readonly schedules: ReadonlyMap<string, scheduler.Schedule>;
  /** The role EventBridge Scheduler starts executions with; present with schedules. */
  readonly schedulerRole?: iam.Role;
  /** Receives schedule invocations that could not be delivered after all retries; present with schedules. */
  readonly deadLetterQueue?: sqs.Queue;
  readonly failedExecutionsAlarm: cloudwatch.Alarm;
  /** Present with schedules. */
  readonly undeliveredSchedulesAlarm?: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: WorkflowProps) {
    super(scope, id);
    const definitionText = loadDefinition(props.definition);
    const nested = props.nestedStateMachines ?? {};

    const substitutions: Record<string, string> = {
      ...Object.fromEntries(Object.entries(props.taskFunctions).map(([placeholder, fn]) => [placeholder, fn.functionArn])),
      ...Object.fromEntries(Object.entries(nested).map(([placeholder, sm]) => [placeholder, sm.stateMachineArn])),
    };
    // Fail at synth, not at deploy, when the file and the substitutions drift apart.
    const placeholders = placeholdersOf(definitionText);
    const missing = placeholders.filter((p) => !(p in substitutions));
    const extra = Object.keys(substitutions).filter((p) => !placeholders.includes(p));
    const both = Object.keys(props.taskFunctions).filter((p) => p in nested);
    if (missing.length || extra.length || both.length) {
      throw new Error(
        `statemachines/${props.definition}.asl.yaml and ${this.node.path} disagree: no substitution for [${missing.join(', ')}], no placeholder for [${extra.join(', ')}]` +
          (both.length ? `, both a function and a state machine for [${both.join(', ')}]` : ''),
      );
    }
    const tasks = taskStates(definitionText);

    this.logGroup = new logs.LogGroup(this, 'ExecutionLogs', {
      logGroupName: `/aws/vendedlogs/states/${props.stateMachineName}`,
      retention: props.logRetention ?? logs.RetentionDays.SIX_MONTHS,
      ...(props.logEncryptionKey ? { encryptionKey: props.logEncryptionKey } : {}),
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: props.stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      // The expanded definition, inline: what the console shows is what the file says.
      definitionBody: sfn.DefinitionBody.fromString(JSON.stringify(JSON.parse(definitionText))),
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
    for (const [placeholder, child] of Object.entries(nested)) this.grantNestedExecution(props.definition, placeholder, child, tasks);

    const schedules = new Map<string, scheduler.Schedule>();
    if (props.schedules?.length) {
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
      for (const schedule of props.schedules) {
        // The target grants the role states:StartExecution on this state machine (and
        // sqs:SendMessage on the dead-letter queue), nothing else.
        const target = new targets.StepFunctionsStartExecution(this.stateMachine, {
          role: this.schedulerRole,
          input: scheduler.ScheduleTargetInput.fromObject(schedule.input),
          deadLetterQueue: this.deadLetterQueue,
          // A run that cannot start within the hour is better reported than run late into the
          // working day; the delivery alarm reports it.
          maxEventAge: Duration.hours(1),
          retryAttempts: 10,
        });
        schedule.cron.forEach((cron, i) => {
          const scheduleId = `${schedule.name}-${i}`;
          schedules.set(
            scheduleId,
            new scheduler.Schedule(this, `Schedule-${scheduleId}`, {
              description: `${schedule.purpose} at "${cron}" (${schedule.timeZone})`,
              schedule: scheduler.ScheduleExpression.expression(toSchedulerExpression(cron), TimeZone.of(schedule.timeZone)),
              target,
              timeWindow: scheduler.TimeWindow.off(),
            }),
          );
        });
      }
      this.undeliveredSchedulesAlarm = new cloudwatch.Alarm(this, 'UndeliveredSchedulesAlarm', {
        alarmName: `${props.stateMachineName}-undelivered-schedules`,
        alarmDescription:
          `A scheduled ${props.stateMachineName} execution could not be started, so a scheduled run did not happen. ` +
          `Read why from the message in the dead-letter queue (aws sqs receive-message --queue-url <${this.node.path}/ScheduleDeadLetterQueue> --attribute-names All --message-attribute-names All): ` +
          `usually the scheduler role or a state machine that was deleted; then start the run by hand (${CLI_RUN[props.definition] ?? 'the Step Functions console'}).`,
        metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        // SQS reports the queue's depth every few minutes; a gap in that report is not a lost run.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }
    this.schedules = schedules;

    this.failedExecutionsAlarm = new cloudwatch.Alarm(this, 'FailedExecutionsAlarm', {
      alarmName: `${props.stateMachineName}-failed-executions`,
      alarmDescription:
        `A ${props.stateMachineName} execution failed, timed out or was aborted. ` +
        `See which and why with: ${CLI_LIST[props.definition]?.(Stack.of(this).region) ?? `aws stepfunctions list-executions --status-filter FAILED --state-machine-arn <${props.stateMachineName}>`}` +
        ` (or open the execution in the Step Functions console); fix the cause and run it again.`,
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
      // Step Functions reports these only when executions end that way: no data is no failure.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      this.failedExecutionsAlarm.addAlarmAction(action);
      this.undeliveredSchedulesAlarm?.addAlarmAction(action);
    }
  }

  /**
   * What starting `child` takes, by the Tasks that start it (Step Functions' IAM policies for
   * nested executions): StartExecution on it; for `.sync` also Describe- and StopExecution on
   * its executions (the parent polls it and stops it when the parent stops) and the managed
   * EventBridge rule through which Step Functions learns that it finished.
   */
  private grantNestedExecution(definition: string, placeholder: string, child: sfn.IStateMachine, tasks: readonly TaskState[]): void {
    const starts = tasks.filter((t) => START_EXECUTION.test(t.resource) && t.parameters?.['StateMachineArn'] === `\${${placeholder}}`);
    if (starts.length === 0) {
      throw new Error(`statemachines/${definition}.asl.yaml has no startExecution Task with "StateMachineArn": "\${${placeholder}}"; ${this.node.path} cannot tell what starting it takes`);
    }
    const grants = sfn.StateMachineGrants.fromStateMachine(child);
    grants.startExecution(this.stateMachine);
    if (!starts.some((t) => /\.sync(:2)?$/.test(t.resource))) return;
    const executions = grants.execution(this.stateMachine, 'states:DescribeExecution', 'states:StopExecution');
    acknowledgeWildcardResources(
      this.stateMachine.role,
      executions.principalStatements.flatMap((s) => s.resources),
      `A nested .sync execution is polled and, when the parent stops, stopped; its name is chosen at run time, so the grant covers the executions of ${child.node.path} only.`,
    );
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        resources: [Stack.of(this).formatArn({ service: 'events', resource: 'rule', resourceName: 'StepFunctionsGetEventsForStepFunctionsExecutionRule' })],
      }),
    );
  }
}

/**
 * `backup cancel` and `restore cancel` against AWS. A running execution is stopped; the
 * `RecoverEnded*` rule then runs the workflow's RecoverExecution on the ABORTED event. An
 * execution that has already ended while its record still says InProgress had that chance and
 * missed it: the event was not delivered, or RecoverExecution failed (the catalog throttled, a
 * timeout) past its retries and its event went to the stack's failed-recoveries queue. Then the CLI runs RecoverExecution itself, with the event Step Functions would have sent,
 * so the recovery runs where it always does (in the stack's network, with its role), not with the
 * operator's own access to the cluster.
 *
 * The function's name is a stack output (`RecoverEndedBackupsFunction`,
 * `RecoverEndedRestoresFunction`, infra/constructs/recover-ended.ts); the stack is the primary
 * stack of the execution's region, or the DR stack for the DR restore state machine.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DescribeExecutionCommand, SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import type { Config } from '../core/config/schema.js';
import { UserError } from '../core/errors.js';
import { drStackName, drStateMachineName, primaryStackName, RECOVERY_OUTPUTS, stateMachineName } from '../core/naming.js';
import { explainAwsErrors } from './commands/common.js';

/**
 * How long after an execution ended `cancel` leaves its recovery to the rule: Lambda runs the
 * rule's asynchronous invocation at once and retries it twice (about 1 and 2 minutes after the
 * one before), and each attempt may run up to the function's 5-minute timeout: about 18
 * minutes in the worst case. A second recovery running beside it would run post hooks and
 * publish the failure twice.
 */
export const RULE_RECOVERY_MINUTES = 20;

export type Cancelled =
  /** The execution was running and is stopped; the rule recovers after it. */
  | { readonly action: 'stopped'; readonly executionArn: string }
  /** The execution had ended; RecoverExecution ran now and answered `result`. */
  | { readonly action: 'recovered'; readonly executionArn: string; readonly status: string; readonly result: unknown };

/** Region, state machine name and execution name of a Step Functions execution ARN. */
function partsOf(executionArn: string): { region: string; stateMachine: string } {
  // arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME
  const parts = executionArn.split(':');
  if (parts.length < 8 || parts[2] !== 'states' || parts[5] !== 'execution') throw new UserError(`the catalog names execution "${executionArn}", which is not a Step Functions execution ARN`);
  return { region: parts[3]!, stateMachine: parts[6]! };
}

/** The stack that holds the recovery function of executions of `stateMachine` in `region`. */
function recoveryStack(config: Config, workflow: 'backup' | 'restore', stateMachine: string, region: string): string {
  if (stateMachine === stateMachineName(config.name, workflow)) return primaryStackName(config.name, region);
  if (workflow === 'restore' && stateMachine === drStateMachineName(config.name, 'restore')) return drStackName(config.name, region);
  throw new UserError(`execution of state machine ${stateMachine} is not a ${workflow} execution of installation ${config.name} (expected ${stateMachineName(config.name, workflow)})`);
}

/**
 * Cancels the `workflow` execution `executionArn` of record `id`: stops it when it runs, and
 * otherwise runs its recovery now (see the file's comment), unless it ended less than
 * RULE_RECOVERY_MINUTES ago, when the rule's own recovery may still be running. Throws a
 * `UserError` saying what to do when there is nothing to do yet or the recovery fails.
 */
export async function cancelExecution(config: Config, workflow: 'backup' | 'restore', id: string, executionArn: string, now: () => Date = () => new Date()): Promise<Cancelled> {
  const { region, stateMachine } = partsOf(executionArn);
  const sfnTarget = { service: 'Step Functions', resource: `execution ${executionArn}`, region, actions: ['states:DescribeExecution', 'states:StopExecution'] };
  const sfn = explainAwsErrors(sfnTarget, new SFNClient({ region }));
  const execution = await sfn.send(new DescribeExecutionCommand({ executionArn }));
  if (execution.status === 'RUNNING' || execution.status === 'PENDING_REDRIVE') {
    await sfn.send(new StopExecutionCommand({ executionArn, cause: `cancelled with milvus-guard ${workflow} cancel` }));
    return { action: 'stopped', executionArn };
  }

  if (execution.status === 'SUCCEEDED') {
    throw new UserError(`${workflow} ${id}'s execution ${executionArn} succeeded, yet its record says InProgress: nothing was changed; see milvus-guard ${workflow} describe ${id}`);
  }
  const endedAt = execution.stopDate ?? execution.startDate;
  const endedMinutes = endedAt ? (now().getTime() - endedAt.getTime()) / 60_000 : Infinity;
  if (endedMinutes < RULE_RECOVERY_MINUTES) {
    throw new UserError(
      `${workflow} ${id}'s execution ended ${execution.status} ${Math.floor(endedMinutes)} minute(s) ago, and the RecoverEnded rule is recovering it (with retries); ` +
        `if its record is still InProgress ${RULE_RECOVERY_MINUTES} minutes after the end, run milvus-guard ${workflow} cancel ${id} again`,
    );
  }

  const stackName = recoveryStack(config, workflow, stateMachine, region);
  const output = RECOVERY_OUTPUTS[workflow];
  const cfn = explainAwsErrors({ service: 'CloudFormation', resource: `stack ${stackName}`, region, actions: ['cloudformation:DescribeStacks'] }, new CloudFormationClient({ region }));
  const stack = (await cfn.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0];
  const functionName = stack?.Outputs?.find((o) => o.OutputKey === output)?.OutputValue;
  if (!functionName) {
    throw new UserError(`stack ${stackName} in ${region} has no output ${output}: deploy this version of milvus-guard (cdk deploy) to recover ${workflow} ${id}, whose execution ended ${execution.status}`);
  }
  // The event "Step Functions Execution Status Change" as EventBridge delivers it to the rule's target (the fields RecoverExecution reads).
  const event = {
    version: '0',
    'detail-type': 'Step Functions Execution Status Change',
    source: 'aws.states',
    region,
    detail: { executionArn, stateMachineArn: execution.stateMachineArn, name: execution.name, status: execution.status, input: execution.input ?? null },
  };
  const lambda = explainAwsErrors({ service: 'Lambda', resource: `function ${functionName}`, region, actions: ['lambda:InvokeFunction'] }, new LambdaClient({ region }));
  const answer = await lambda.send(new InvokeCommand({ FunctionName: functionName, InvocationType: 'RequestResponse', Payload: new TextEncoder().encode(JSON.stringify(event)) }));
  const payload: unknown = answer.Payload?.length ? JSON.parse(new TextDecoder().decode(answer.Payload)) : undefined;
  if (answer.FunctionError) {
    const { errorType, errorMessage } = (payload ?? {}) as { errorType?: string; errorMessage?: string };
    throw new UserError(
      `the recovery of ${workflow} ${id} failed: ${errorType ?? answer.FunctionError}: ${errorMessage ?? 'no message'}. Its record stays InProgress; fix the cause and run milvus-guard ${workflow} cancel ${id} again (the function's log: /aws/lambda/${functionName})`,
    );
  }
  if (!(payload as { recovered?: string } | undefined)?.recovered) {
    throw new UserError(
      `RecoverExecution found nothing to recover for ${workflow} ${id} (execution ${executionArn}): its record is no longer InProgress, or names another execution, or its plan is not in the deployed config; see milvus-guard ${workflow} describe ${id}`,
    );
  }
  return { action: 'recovered', executionArn, status: execution.status!, result: payload };
}

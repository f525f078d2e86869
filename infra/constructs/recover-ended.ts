/**
 * The rule that recovers after a workflow execution that ended without reaching its failure
 * path (stopped, timed out, a Lambda that crashed past its retries): Step Functions' status
 * change event runs the workflow's `RecoverExecution` function at once. The event names the
 * execution, so the function needs no Step Functions permission to find it. An undelivered event
 * is retried for 6 hours; after that the next run of the workflow recovers (backups) or the
 * record waits for `cancel`.
 */
import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';

/** Adds rule `id` in `scope` for executions of the state machine `stateMachineArn` (named `name`). */
export function recoverEndedExecutions(scope: Construct, id: string, props: { readonly stateMachineArn: string; readonly name: string; readonly recover: lambda.IFunction }): events.Rule {
  return new events.Rule(scope, id, {
    description: `Recovers after a ${props.name} execution that ended without reaching its failure path`,
    eventPattern: {
      source: ['aws.states'],
      detailType: ['Step Functions Execution Status Change'],
      detail: { stateMachineArn: [props.stateMachineArn], status: ['ABORTED', 'TIMED_OUT', 'FAILED'] },
    },
    targets: [new eventTargets.LambdaFunction(props.recover, { retryAttempts: 8, maxEventAge: Duration.hours(6) })],
  });
}

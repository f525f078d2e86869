import { describe, expect, it } from '@jest/globals';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { loadDefinition, placeholdersOf } from '../../core/workflow/asl.js';
import { taskFunctionTimeouts, Workflow, type WorkflowProps } from '../../infra/constructs/workflow.js';

// The Workflow construct on its own, with inline functions (nothing to bundle): what it checks
// at synth and what it makes with and without schedules.

function stack(): Stack {
  return new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
}

/** A function per placeholder of workflow `definition` that names a function. */
function functionsFor(scope: Stack, definition: string): Record<string, lambda.IFunction> {
  return Object.fromEntries(
    placeholdersOf(loadDefinition(definition))
      .filter((p) => p.endsWith('FunctionArn'))
      .map((p) => [p, new lambda.Function(scope, p, { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('export const handler = async () => ({});') })]),
  );
}

function workflow(scope: Stack, id: string, props: Partial<WorkflowProps> & Pick<WorkflowProps, 'definition'>): Workflow {
  return new Workflow(scope, id, { stateMachineName: `test-${props.definition}`, ...props, taskFunctions: props.taskFunctions ?? functionsFor(scope, props.definition) });
}

describe('Workflow: the definition and the substitutions must agree', () => {
  it('names a placeholder left without a function', () => {
    const s = stack();
    const { VerifyBackupFunctionArn: _left, ...functions } = functionsFor(s, 'restore');

    expect(() => workflow(s, 'Restore', { definition: 'restore', taskFunctions: functions })).toThrow(/restore\.asl\.yaml and Test\/Restore disagree: no substitution for \[VerifyBackupFunctionArn\], no placeholder for \[\]/);
  });

  it('names a function that no placeholder asks for', () => {
    const s = stack();
    const functions = functionsFor(s, 'restore');

    expect(() => workflow(s, 'Restore', { definition: 'restore', taskFunctions: { ...functions, VerifyBackupsFunctionArn: functions['VerifyBackupFunctionArn']! } })).toThrow(
      /no substitution for \[\], no placeholder for \[VerifyBackupsFunctionArn\]/,
    );
  });

  it('names the nested state machine the drill definition starts when it is missing', () => {
    const s = stack();

    expect(() => workflow(s, 'Drill', { definition: 'drill' })).toThrow(/drill\.asl\.yaml and Test\/Drill disagree: no substitution for \[RestoreStateMachineArn\]/);
  });
});

describe('Workflow: nested executions', () => {
  it('grants the .sync pattern what it needs on the nested state machine and nothing on others', () => {
    const s = stack();
    const restore = workflow(s, 'Restore', { definition: 'restore' });
    const other = sfn.StateMachine.fromStateMachineName(s, 'Other', 'unrelated');

    const drill = workflow(s, 'Drill', { definition: 'drill', nestedStateMachines: { RestoreStateMachineArn: restore.stateMachine } });

    const policy = Template.fromStack(s).toJSON().Resources[(s.getLogicalId(drill.stateMachine.role.node.findChild('DefaultPolicy').node.defaultChild as never) as string)];
    const statements = policy.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[];
    const stateActions = statements.filter((st) => JSON.stringify(st.Action).includes('states:'));
    expect(stateActions.map((st) => st.Action)).toEqual(['states:StartExecution', ['states:DescribeExecution', 'states:StopExecution']]);
    expect(JSON.stringify(statements)).not.toContain(other.stateMachineArn);
  });
});

describe('Workflow: schedules', () => {
  it('makes no scheduler role, dead-letter queue or delivery alarm for an on-demand workflow', () => {
    const s = stack();

    const restore = workflow(s, 'Restore', { definition: 'restore' });

    expect([restore.schedulerRole, restore.deadLetterQueue, restore.undeliveredSchedulesAlarm]).toEqual([undefined, undefined, undefined]);
    Template.fromStack(s).resourceCountIs('AWS::SQS::Queue', 0);
  });

  it('makes one schedule per cron expression, named after the schedule, with its input', () => {
    const s = stack();

    const backup = workflow(s, 'Backup', { definition: 'backup', schedules: [{ name: 'nightly', input: { plan: 'nightly' }, cron: ['0 2 * * *', '0 14 * * *'], timeZone: 'UTC', purpose: 'Backs up plan nightly' }] });

    expect([...backup.schedules.keys()]).toEqual(['nightly-0', 'nightly-1']);
    Template.fromStack(s).hasResourceProperties('AWS::Scheduler::Schedule', { Description: 'Backs up plan nightly at "0 14 * * *" (UTC)', ScheduleExpression: 'cron(0 14 * * ? *)', Target: { Input: '{"plan":"nightly"}' } });
  });
});

describe('taskFunctionTimeouts', () => {
  it("is each function's Task timeout from the definition", () => {
    const timeouts = taskFunctionTimeouts('restore');

    expect(timeouts.get('VerifyBackupFunctionArn')!.toSeconds()).toBe(900);
    expect(timeouts.get('CheckVolumesFunctionArn')!.toSeconds()).toBe(300);
  });

  it('covers every function placeholder and nothing else', () => {
    expect([...taskFunctionTimeouts('drill').keys()].sort()).toEqual(placeholdersOf(loadDefinition('drill')).filter((p) => p.endsWith('FunctionArn')));
  });

  it('takes a shorter Task timeout over the default of the others', () => {
    expect(taskFunctionTimeouts('backup').get('StartExportFunctionArn')!.toSeconds()).toBe(120);
  });
});

import { describe, expect, it } from '@jest/globals';
import { inputOf, named, scriptedWorkflow, type Script } from './harness.js';

// The real drill definition, run by aws-local-stepfunctions with every Task scripted (see
// harness.ts), the nested restore (RunRestore, a startExecution.sync:2 Task) included: these
// tests pin down the drill's paths — above all that a failed restore still cleans up and leaves
// evidence, and that only a passing report ends the execution successfully.

const RESTORE_STATE_MACHINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:milvus-guard-restore';
const { run, executionId: EXECUTION_ID } = scriptedWorkflow('drill', { parameters: { RunRestore: { StateMachineArn: RESTORE_STATE_MACHINE } } });

const DRILL = { drillId: 'production-weekly-drill-20300105060000', plan: 'milvus-production-backup', cleanup: true, targetNamespace: 'vector-db-drill' };
const RESTORE_INPUT = { backupId: 'milvus-production-backup-20300105020000', targetNamespace: 'vector-db-drill', source: 'vault', cleanupOnFailure: false, restoreName: DRILL.drillId };

/** Answers of every step for a drill that passes; tests replace some. */
function happyPath(): Script {
  return {
    PrepareDrill: () => ({ drill: DRILL, restore: RESTORE_INPUT }),
    // What startExecution.sync:2 returns: the child's description, its output parsed.
    RunRestore: () => ({ Status: 'SUCCEEDED', Output: { restoreId: DRILL.drillId, status: 'Completed', rtoSeconds: 900 }, ExecutionArn: 'arn:child' }),
    CleanUpDrill: () => ({ namespaceDeleted: true }),
    RecordEvidence: () => ({ drillId: DRILL.drillId, passed: true, evidenceKey: `drills/${DRILL.plan}/${DRILL.drillId}.json` }),
  };
}

const INPUT = { drill: 'production-weekly-drill' };

describe('drill workflow: a drill that passes', () => {
  it('restores, cleans up, records the evidence and succeeds with the report', async () => {
    const { output, states } = await run(INPUT, happyPath());

    expect(states).toEqual(['PrepareDrill', 'RunRestore', 'CleanUpDrill', 'RecordEvidence']);
    expect(output).toEqual({ drillId: DRILL.drillId, passed: true, evidenceKey: `drills/${DRILL.plan}/${DRILL.drillId}.json` });
  });

  it('passes the execution input, id and start time to PrepareDrill', async () => {
    const { calls } = await run(INPUT, happyPath());

    expect(inputOf(calls, 'PrepareDrill')).toEqual({ input: INPUT, execution: { id: EXECUTION_ID, startTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) } });
  });

  it('starts the restore state machine with the prepared input, named after the drill', async () => {
    const { calls } = await run(INPUT, happyPath());

    expect(inputOf(calls, 'RunRestore')).toEqual({ StateMachineArn: RESTORE_STATE_MACHINE, Name: DRILL.drillId, Input: RESTORE_INPUT });
  });

  it('hands RecordEvidence the whole state: the drill, the restore result and the cleanup', async () => {
    const { calls } = await run(INPUT, happyPath());

    expect(inputOf(calls, 'RecordEvidence')).toEqual({
      ...INPUT,
      prepared: { drill: DRILL, restore: RESTORE_INPUT },
      restoreResult: { status: 'SUCCEEDED', output: { restoreId: DRILL.drillId, status: 'Completed', rtoSeconds: 900 } },
      cleanup: { namespaceDeleted: true },
    });
  });
});

describe('drill workflow: a drill that fails', () => {
  it('still cleans up and records the evidence when the restore fails, then ends DrillFailed', async () => {
    const cause = JSON.stringify({ Error: 'RowCountMismatch', Cause: 'collection docs: 10 rows at backup, 9 restored' });
    const script = {
      ...happyPath(),
      RunRestore: () => Promise.reject(named('States.TaskFailed', cause)),
      RecordEvidence: () => ({ drillId: DRILL.drillId, passed: false }),
    };

    const { error, states, calls } = await run(INPUT, script);

    expect(states).toEqual(['PrepareDrill', 'RunRestore', 'CleanUpDrill', 'RecordEvidence']);
    expect(inputOf(calls, 'CleanUpDrill')).toEqual({ drill: DRILL });
    expect(inputOf(calls, 'RecordEvidence')).toMatchObject({ restoreError: { Error: 'States.TaskFailed', Cause: cause } });
    expect(inputOf(calls, 'RecordEvidence').restoreResult).toBeUndefined();
    expect(error!.name).toBe('DrillFailed');
  });

  it('ends DrillFailed when the restore succeeded but the report does not pass', async () => {
    const script = { ...happyPath(), RecordEvidence: () => ({ drillId: DRILL.drillId, passed: false }) };

    const { error } = await run(INPUT, script);

    expect(error).toMatchObject({ name: 'DrillFailed', message: expect.stringContaining('evidence report') });
  });

  it('records the evidence with the cleanup error when the cleanup fails', async () => {
    const script = { ...happyPath(), CleanUpDrill: () => Promise.reject(named('KubernetesRequestError', 'namespace stuck')) };

    const { states, calls } = await run(INPUT, script);

    expect(states.at(-1)).toBe('RecordEvidence');
    expect(inputOf(calls, 'RecordEvidence')).toMatchObject({ cleanupError: { Error: 'KubernetesRequestError', Cause: expect.stringContaining('namespace stuck') } });
  });

  it.each(['InvalidInput', 'NothingToDrill'])('fails with %s from PrepareDrill without starting a restore', async (name) => {
    const script = { ...happyPath(), PrepareDrill: () => Promise.reject(named(name, `${name}: no Available backup of plan`)) };

    const { error, states } = await run(INPUT, script);

    expect(error).toMatchObject({ name, message: `${name}: no Available backup of plan` });
    expect(states).toEqual(['PrepareDrill']);
  });
});

describe('drill workflow: retries', () => {
  it('retries starting the restore when the account has too many executions', async () => {
    let starts = 0;
    const script = { ...happyPath(), RunRestore: (i: any) => (++starts === 1 ? Promise.reject(named('StepFunctions.ExecutionLimitExceededException')) : happyPath().RunRestore!(i)) };

    const { output } = await run(INPUT, script);

    expect(starts).toBe(2);
    expect(output).toMatchObject({ passed: true });
  });

  it('does not start the restore again when it failed', async () => {
    let starts = 0;
    const script = { ...happyPath(), RunRestore: () => (starts++, Promise.reject(named('States.TaskFailed', '{}'))) };

    await run(INPUT, script);

    expect(starts).toBe(1);
  });
});

import { beforeEach, describe, expect, it } from '@jest/globals';
import { DescribeExecutionCommand, GetExecutionHistoryCommand, type HistoryEvent } from '@aws-sdk/client-sfn';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { registerBackupCommands } from '../../cli/commands/backup.js';
import { registerDrillCommands } from '../../cli/commands/drill.js';
import { backupRecord, CONFIG, cliWith, mockAwsStart, PLAN } from './helpers.js';

const PARENT = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-drill:d1';
const { sfn, ddb } = mockAwsStart(PARENT);
const CHILD = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-restore:d1-restore';

const entered = (id: number, name: string, previousEventId?: number): HistoryEvent => ({ id, previousEventId, type: 'TaskStateEntered', timestamp: new Date(), stateEnteredEventDetails: { name } });
const done = { status: 'SUCCEEDED' as const, output: '{}', executionArn: PARENT, stateMachineArn: 'x', startDate: new Date() };
/** The lines progress printed, without their timestamps. */
const states = (err: string[]) => err.map((l) => l.replace(/^\s+\S+\s+/, '').trim());

beforeEach(() => {
  sfn.on(DescribeExecutionCommand).resolves(done);
});

describe('following an execution in AWS', () => {
  it("shows a nested execution's states under the state that started it, without its polling states", async () => {
    ddb.on(QueryCommand).resolves({ Items: [backupRecord()] });
    sfn.on(GetExecutionHistoryCommand, { executionArn: PARENT }).resolves({
      events: [
        entered(1, 'PrepareDrill'),
        entered(2, 'RunRestore'),
        { id: 3, previousEventId: 2, type: 'TaskScheduled', timestamp: new Date() },
        { id: 4, previousEventId: 3, type: 'TaskSubmitted', timestamp: new Date(), taskSubmittedEventDetails: { resourceType: 'states', resource: 'startExecution.sync:2', output: JSON.stringify({ ExecutionArn: CHILD }) } },
      ],
    });
    sfn.on(GetExecutionHistoryCommand, { executionArn: CHILD }).resolves({ events: [entered(1, 'PrepareRestore'), entered(2, 'WaitForVolumes'), entered(3, 'CheckVolumes'), entered(4, 'VolumesReady')] });
    const c = cliWith(registerDrillCommands);

    const code = await c.run('drill', 'run', '--plan', PLAN, '-c', CONFIG, '--wait');

    expect(code).toBe(0);
    expect(states(c.err)).toEqual(['PrepareDrill', 'RunRestore', 'RunRestore/PrepareRestore', 'RunRestore/CheckVolumes']);
  });

  it("shows the Task states of a Map's iterations once, without their Wait and Choice states", async () => {
    sfn.on(GetExecutionHistoryCommand).resolves({
      events: [entered(1, 'Export'), entered(2, 'StartExport'), entered(3, 'WaitForExport'), entered(4, 'CheckExport'), entered(5, 'ExportDone'), entered(6, 'StartExport'), entered(7, 'CheckExport')],
    });
    const c = cliWith(registerBackupCommands);

    const code = await c.run('backup', 'create', '--plan', PLAN, '-c', CONFIG, '--wait');

    expect(code).toBe(0);
    expect(states(c.err)).toEqual(['Export', 'StartExport', 'CheckExport']);
  });
});

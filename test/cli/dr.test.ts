import { describe, expect, it } from '@jest/globals';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { registerBackupCommands } from '../../cli/commands/backup.js';
import { stateMachineFor } from '../../cli/execution.js';
import { registerDrCommands, renderDrStatus } from '../../cli/commands/dr.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { drStatus } from '../../core/dr/status.js';
import { backupRecord, CONFIG, cliWith, localState, mockAwsStart, PLAN } from './helpers.js';

const REGION = 'us-west-2';
const NOW = new Date('2026-11-23T12:00:00.000Z');
const complete = (at: string) => ({ [REGION]: { status: 'Complete' as const, at, checkedAt: at, objects: 40, confirmed: 40 } });

// Three backups: the oldest complete in the DR region, the next late, the newest not checked yet.
const history = [
  backupRecord({ backupId: 'b-3', startedAt: '2026-11-23T02:00:00.000Z', steps: { Snapshot: { startedAt: '2026-11-23T02:01:00.000Z', outcome: 'Succeeded' } } }),
  backupRecord({
    backupId: 'b-2',
    startedAt: '2026-11-22T02:00:00.000Z',
    steps: { Snapshot: { startedAt: '2026-11-22T02:01:00.000Z', outcome: 'Succeeded' } },
    replication: { [REGION]: { status: 'Late', checkedAt: '2026-11-23T11:55:00.000Z', objects: 40, confirmed: 37, firstMissing: 'data/packs/ab/ab.pack' } },
  }),
  backupRecord({ backupId: 'b-1', startedAt: '2026-11-21T02:00:00.000Z', steps: { Snapshot: { startedAt: '2026-11-21T02:01:00.000Z', outcome: 'Succeeded' } }, replication: complete('2026-11-21T02:10:00.000Z') }),
];

describe('dr status', () => {
  it('finds per plan and DR region the newest backup complete there and its age, and the newer ones pending, late or unchecked', async () => {
    const config = await loadConfigFile(CONFIG);

    const [row] = drStatus(config, history, NOW);

    expect(row).toEqual({
      plan: PLAN,
      region: REGION,
      vault: 'primary',
      newestComplete: { backupId: 'b-1', pointInTime: '2026-11-21T02:01:00.000Z', completeAt: '2026-11-21T02:10:00.000Z' },
      rpoSeconds: (NOW.getTime() - Date.parse('2026-11-21T02:01:00.000Z')) / 1000,
      pending: [],
      late: ['b-2'],
      unchecked: ['b-3'],
      lastCheckedAt: '2026-11-23T11:55:00.000Z',
    });
    expect(renderDrStatus([row!])).toMatch(/^PLAN\s+REGION\s+NEWEST COMPLETE\s+TAKEN\s+RPO NOW\s+PENDING\s+LATE\s+UNCHECKED\s+CHECKED\n\S+\s+us-west-2\s+b-1\s+2026-11-21T02:01:00.000Z\s+2d09h\s+0\s+1 \(b-2\)\s+1\s+2026-11-23T11:55:00.000Z\n$/);
  });

  it('says NONE when nothing is complete in the region: a failover now has nothing to restore', async () => {
    const config = await loadConfigFile(CONFIG);
    const [row] = drStatus(config, history.slice(0, 2), NOW);

    expect(row).toMatchObject({ newestComplete: null, rpoSeconds: null, late: ['b-2'], unchecked: ['b-3'] });
    expect(renderDrStatus([row!])).toContain('NONE');
  });

  it('reads the local catalog with --local and prints JSON with -o json', async () => {
    const { dir, catalog } = await localState();
    // As the region's check leaves them: the backups' items, and a replication item per backup checked.
    for (const { replication, ...b } of history) {
      await catalog.createBackup(b);
      for (const [region, entry] of Object.entries(replication ?? {})) await catalog.recordReplication({ ...entry, backupId: b.backupId, region, plan: b.plan, executionId: 'CheckReplication' });
    }
    const cli = cliWith(registerDrCommands);

    const code = await cli.run('dr', 'status', '--local', '--state', dir, '--now', NOW.toISOString(), '-o', 'json');

    expect(code).toBe(0);
    expect(JSON.parse(cli.out.join(''))).toMatchObject([{ plan: PLAN, region: REGION, newestComplete: { backupId: 'b-1' }, late: ['b-2'] }]);
  });

  it("backup describe shows what each DR region's check recorded for the backup", async () => {
    const { dir, catalog } = await localState();
    for (const { replication, ...b } of history) {
      await catalog.createBackup(b);
      for (const [region, entry] of Object.entries(replication ?? {})) await catalog.recordReplication({ ...entry, backupId: b.backupId, region, plan: b.plan, executionId: 'CheckReplication' });
    }
    const cli = cliWith(registerBackupCommands);

    expect(await cli.run('backup', 'describe', 'b-2', '--local', '--state', dir)).toBe(0);
    expect(cli.out.join('')).toContain('Replicated:  us-west-2: Late, 37 of 40 objects there at 2026-11-23T11:55:00.000Z (data/packs/ab/ab.pack missing)\n');
    const json = cliWith(registerBackupCommands);
    await json.run('backup', 'describe', 'b-1', '--local', '--state', dir, '-o', 'json');
    expect(JSON.parse(json.out.join(''))).toMatchObject({ backupId: 'b-1', replication: { [REGION]: { status: 'Complete', at: '2026-11-21T02:10:00.000Z' } } });
  });

  it('refuses a region that is not a DR region of the config', async () => {
    const { dir } = await localState();
    await expect(cliWith(registerDrCommands).run('dr', 'status', '--local', '--state', dir, '--region', 'eu-west-1')).rejects.toThrow(
      '--region eu-west-1 is not a DR region of the config; its DR regions: us-west-2',
    );
  });

  describe('on AWS', () => {
    const { ddb } = mockAwsStart('arn:aws:states:us-west-2:123456789012:execution:milvus-guard-failover:x');
    it("reads the catalog's replica in the DR region named by --region", async () => {
      ddb.on(QueryCommand).resolves({ Items: [] });
      const cli = cliWith(registerDrCommands);

      expect(await cli.run('dr', 'status', '--region', REGION, '-c', CONFIG)).toBe(0);

      const query = ddb.commandCalls(QueryCommand)[0]!;
      expect(query.args[0].input.TableName).toBe('milvus-guard-catalog');
      // Sent to the replica in us-west-2, not to the primary region.
      expect(await (ddb.call(0).thisValue as { config: { region: () => Promise<string> } }).config.region()).toBe(REGION);
    });
  });
});

describe('which state machine the CLI starts', () => {
  it("starts a plan's restore and drill in a DR region on that region's DR stack, and in the vault's region on its own", async () => {
    const config = await loadConfigFile(CONFIG);

    expect(stateMachineFor(config, 'restore', PLAN, REGION)).toBe('milvus-guard-dr-restore');
    expect(stateMachineFor(config, 'drill', PLAN, REGION)).toBe('milvus-guard-dr-drill');
    expect(stateMachineFor(config, 'failover', PLAN, REGION)).toBe('milvus-guard-failover');
    expect(stateMachineFor(config, 'restore', PLAN, 'us-east-1')).toBe('milvus-guard-restore');
    expect(stateMachineFor(config, 'backup', PLAN, 'us-east-1')).toBe('milvus-guard-backup');
  });
});

describe('dr failover', () => {
  describe('on AWS', () => {
    const { sfn } = mockAwsStart('arn:aws:states:us-west-2:123456789012:execution:milvus-guard-failover:x');

    it("starts the failover state machine of the DR region's stack with the plan, target and point in time", async () => {
      const cli = cliWith(registerDrCommands);

      const code = await cli.run('dr', 'failover', '-c', CONFIG, '--plan', PLAN, '--region', REGION, '--target-cluster', 'dr', '--namespace', 'vector-db', '--point-in-time', '2026-11-22T00:00:00Z');

      expect(code).toBe(0);
      expect(sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input).toEqual({
        stateMachineArn: 'arn:aws:states:us-west-2:123456789012:stateMachine:milvus-guard-failover',
        input: JSON.stringify({ plan: PLAN, targetCluster: 'dr', targetNamespace: 'vector-db', pointInTime: '2026-11-22T00:00:00Z' }),
      });
      expect(cli.out.join('')).toBe('started arn:aws:states:us-west-2:123456789012:execution:milvus-guard-failover:x\n');
    });

    it('needs --region, and names the DR regions to choose from; nothing starts', async () => {
      await expect(cliWith(registerDrCommands).run('dr', 'failover', '-c', CONFIG, '--plan', PLAN, '--target-cluster', 'dr', '--namespace', 'vector-db')).rejects.toThrow(
        '--region is required: the DR region to fail over into (us-west-2)',
      );
      expect(sfn.commandCalls(StartExecutionCommand)).toEqual([]);
    });

    it('refuses a point in time that is not ISO 8601 before starting anything', async () => {
      await expect(
        cliWith(registerDrCommands).run('dr', 'failover', '-c', CONFIG, '--plan', PLAN, '--region', REGION, '--target-cluster', 'dr', '--namespace', 'vector-db', '--point-in-time', 'yesterday'),
      ).rejects.toThrow(/the failover flags.*pointInTime: must be an ISO 8601 timestamp/s);
      expect(sfn.commandCalls(StartExecutionCommand)).toEqual([]);
    });
  });
});

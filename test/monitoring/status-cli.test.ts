import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { Command, CommanderError } from 'commander';
import type { WorkflowIO } from '../../cli/commands/common.js';
import { registerStatusCommand, renderStatus, type StatusReport } from '../../cli/commands/status.js';
import { reportFailure } from '../../cli/main.js';
import { LocalCatalog } from '../../core/catalog/local.js';
import { backup, drillRestore, PLAN } from './helpers.js';

// `status` on the embedded default: a state directory as `local up` leaves it (as far as the
// CLI checks: a kubeconfig) with a local catalog holding records written here. No cluster runs.
// The example config's plan backs up daily at 02:00 UTC with rpo 26h into a vault that
// replicates into us-west-2.

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function stateWithHistory(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-status-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'kubeconfig'), '');
  const catalog = new LocalCatalog(join(dir, 'catalog'));
  await catalog.createBackup(backup('b-1', { startedAt: '2026-11-22T02:00:00.000Z', completedAt: '2026-11-22T02:20:00.000Z', bytesUploaded: 3 * 1024 ** 3 }));
  await catalog.createBackup(backup('b-2', { startedAt: '2026-11-23T02:00:00.000Z', completedAt: '2026-11-23T02:20:00.000Z', bytesUploaded: 1024 ** 3 }));
  await catalog.createBackup(
    backup('f-1', { status: 'Failed', startedAt: '2026-11-21T02:00:00.000Z', completedAt: '2026-11-21T02:05:00.000Z', failure: { step: 'Snapshot', state: 'WaitSnapshots', error: 'SnapshotTimeout', cause: 'not ready in 600 s' } }),
  );
  await catalog.recordReplication({ backupId: 'b-2', region: 'us-west-2', plan: PLAN, executionId: 'CheckReplication', status: 'Complete', at: '2026-11-23T02:30:00.000Z', checkedAt: '2026-11-23T02:30:00.000Z', objects: 40, confirmed: 40 });
  await catalog.createRestore(drillRestore('production-weekly-drill-20261122060000'));
  return dir;
}

function cli(): { run: (...args: string[]) => Promise<number>; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const io: WorkflowIO = { out: (t) => out.push(t), err: (t) => err.push(t), sleep: async () => undefined };
  return {
    out,
    err,
    run: async (...args) => {
      process.exitCode = undefined;
      const program = new Command('milvus-guard').exitOverride();
      // Usage errors as commander prints them go nowhere here; the thrown CommanderError is what tests read.
      program.configureOutput({ writeErr: () => undefined });
      registerStatusCommand(program, io);
      try {
        await program.parseAsync(['node', 'milvus-guard', ...args]);
        return typeof process.exitCode === 'number' ? process.exitCode : 0;
      } finally {
        process.exitCode = undefined;
      }
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err as Error,
  );
}

describe('milvus-guard status', () => {
  it('exits 0 and says yes when the newest Available backup is within the RPO', async () => {
    const dir = await stateWithHistory();
    const c = cli();

    const code = await c.run('status', '--local', '--state', dir, '--now', '2026-11-23T12:00:00Z');

    expect(code).toBe(0);
    const [header, row, ...rest] = c.out.join('').split('\n');
    expect(header).toMatch(/^PLAN\s+CLUSTER\/NAMESPACE\s+LAST AVAILABLE\s+AGE\s+RPO\s+MET\s+NEXT RUN\s+LAST FAILURE\s+VAULT BYTES\s+DR\s+LAST DRILL$/);
    expect(row!.split(/\s{3,}/)).toEqual([PLAN, 'prod/vector-db', 'b-2', '9h40m', '1d02h', 'yes', '2026-11-24T02:00:00.000Z', 'f-1 (2d09h ago)', '4.0GiB', 'us-west-2:Complete', 'Passed (1d05h ago)']);
    expect(rest).toEqual(['']);
    expect(c.err.join('')).toBe('');
  });

  it('exits 3 and says NO, and why on stderr, when the newest Available backup is older than the RPO', async () => {
    const dir = await stateWithHistory();
    const c = cli();

    const code = await c.run('status', '--local', '--state', dir, '--now', '2026-11-24T12:00:00Z');

    expect(code).toBe(3);
    expect(c.out.join('').split('\n')[1]!.split(/\s{3,}/).slice(2, 6)).toEqual(['b-2', '1d09h', '1d02h', 'NO']);
    expect(c.err.join('')).toBe(`${PLAN}: the newest Available backup is 1d09h old, over its RPO of 1d02h\n`);
  });

  it('prints the report as JSON with -o json', async () => {
    const dir = await stateWithHistory();
    const c = cli();

    const code = await c.run('status', '--local', '--state', dir, '--now', '2026-11-24T12:00:00Z', '-o', 'json', '--plan', PLAN);

    expect(code).toBe(3);
    const report = JSON.parse(c.out.join('')) as StatusReport;
    expect(report).toEqual({
      now: '2026-11-24T12:00:00.000Z',
      healthy: false,
      plans: [
        {
          plan: PLAN,
          cluster: 'prod',
          namespace: 'vector-db',
          rpo: { seconds: 93_600, source: 'config', rpo: '26h' },
          lastAvailable: { backupId: 'b-2', completedAt: '2026-11-23T02:20:00.000Z' },
          ageSeconds: 121_200,
          ageFrom: 'last-available',
          state: 'violated',
          met: false,
          nextRun: '2026-11-25T02:00:00.000Z',
          lastFailure: { backupId: 'f-1', at: '2026-11-21T02:05:00.000Z', step: 'Snapshot', error: 'SnapshotTimeout' },
          vaultBytes: 4 * 1024 ** 3,
          dr: [{ region: 'us-west-2', status: 'Complete' }],
          lastDrill: { drillId: 'production-weekly-drill-20261122060000', at: '2026-11-22T06:04:00.000Z', result: 'Passed', rtoSeconds: 240 },
        },
      ],
    });
  });

  it('shows a plan never backed up as not protected, and exits 3', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-status-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'kubeconfig'), '');
    const c = cli();

    const code = await c.run('status', '--local', '--state', dir, '--now', '2026-11-24T12:00:00Z');

    expect(code).toBe(3);
    expect(c.out.join('').split('\n')[1]!.split(/\s{3,}/)).toEqual([PLAN, 'prod/vector-db', '<none>', '<none>', '1d02h', 'NO', '2026-11-25T02:00:00.000Z', '<none>', '0B', '<none>', '<none>']);
    expect(c.err.join('')).toContain(`${PLAN}: no Available backup yet: it is not protected`);
  });

  it('refuses an unknown plan in one line that names --plan, exit 1', async () => {
    const dir = await stateWithHistory();

    const err = await rejection(cli().run('status', '--local', '--state', dir, '--plan', 'nope'));

    expect(err.message).toMatch(/^--plan: plan "nope" is not defined in the config; defined: milvus-production-backup$/);
    const printed: string[] = [];
    expect(reportFailure(err, (t) => printed.push(t))).toBe(1);
    expect(printed).toEqual([`error: ${err.message}\n`]);
  });

  it('refuses a --now that is not an ISO 8601 instant, naming the flag, exit 1', async () => {
    const dir = await stateWithHistory();

    const err = await rejection(cli().run('status', '--local', '--state', dir, '--now', 'yesterday'));

    expect(err).toBeInstanceOf(CommanderError);
    expect((err as CommanderError).exitCode).toBe(1);
    expect(err.message).toMatch(/--now <iso-8601>.*"yesterday" is not an ISO 8601 instant/);
  });

  it('reads the DynamoDB catalog in AWS: backups, their replication and the restores, one query each', async () => {
    const ddb = mockClient(DynamoDBDocumentClient);
    const partition = (p: string) => ({ IndexName: 'byTime', ExpressionAttributeValues: expect.objectContaining({ ':all': p }) });
    ddb.on(QueryCommand).resolves({ Items: [] });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':all': 'BACKUPS' } }).resolves({ Items: [backup('b-2', { completedAt: '2026-11-23T02:20:00.000Z' })] });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':all': 'RESTORES' } }).resolves({ Items: [drillRestore('d-1')] });
    const c = cli();

    try {
      const code = await c.run('status', '-c', 'examples/production.yaml', '--now', '2026-11-23T12:00:00Z', '-o', 'json');

      expect(code).toBe(0);
      expect(JSON.parse(c.out.join(''))).toMatchObject({ healthy: true, plans: [{ plan: PLAN, state: 'met', lastAvailable: { backupId: 'b-2' }, dr: [{ region: 'us-west-2', status: 'Unchecked' }], lastDrill: { drillId: 'd-1', result: 'Passed' } }] });
      const queries = ddb.commandCalls(QueryCommand).map((call) => call.args[0].input);
      expect(queries).toEqual([
        expect.objectContaining({ TableName: 'milvus-guard-catalog', ...partition('BACKUPS') }),
        expect.objectContaining(partition('REPLICATIONS')),
        expect.objectContaining(partition('RESTORES')),
      ]);
      expect(ddb.calls()).toHaveLength(3);
    } finally {
      ddb.restore();
    }
  });

  it('renders an on-demand plan without an RPO with no verdict', () => {
    const text = renderStatus({
      now: '2026-11-24T12:00:00.000Z',
      healthy: true,
      plans: [
        { plan: 'adhoc', cluster: 'prod', namespace: 'ns', rpo: { seconds: null, source: 'none', reason: 'on demand' }, lastAvailable: null, ageSeconds: null, ageFrom: null, state: 'no-rpo', met: true, nextRun: null, lastFailure: null, vaultBytes: 0, dr: [], lastDrill: null },
      ],
    });

    expect(text.split('\n')[1]!.split(/\s{3,}/)).toEqual(['adhoc', 'prod/ns', '<none>', '<none>', '<none>', '<none>', 'on demand', '<none>', '0B', '<none>', '<none>']);
  });
});

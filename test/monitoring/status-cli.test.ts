import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { CloudWatchClient, GetMetricDataCommand, ListMetricsCommand } from '@aws-sdk/client-cloudwatch';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { Command, CommanderError } from 'commander';
import type { WorkflowIO } from '../../cli/commands/common.js';
import { registerStatusCommand, renderStatus, type StatusReport } from '../../cli/commands/status.js';
import { reportFailure } from '../../cli/main.js';
import { LocalFirstSeen } from '../../core/catalog/first-seen.js';
import { LocalCatalog } from '../../core/catalog/local.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backup, drillRestore, PLAN } from './helpers.js';

// `status` on the embedded default: a state directory as `local up` leaves it (as far as the
// CLI checks: a kubeconfig) with a local catalog holding records written here and a vault
// directory of 5 MiB of objects. No cluster runs. The example config's plan backs up daily at
// 02:00 UTC with rpo 26h into a vault that replicates into us-west-2.

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function emptyState(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-status-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'kubeconfig'), '');
  return dir;
}

async function stateWithHistory(): Promise<string> {
  const dir = await emptyState();
  const vault = new FileVaultStore(join(dir, 'vault'));
  await vault.put('data/packs/00/pack-1', new Uint8Array(4 * 1024 ** 2));
  await vault.put('backups/b-2/record.json', new Uint8Array(1024 ** 2));
  await vault.flush();
  const catalog = new LocalCatalog(join(dir, 'catalog'));
  await catalog.createBackup(backup('b-1', { startedAt: '2026-11-22T02:00:00.000Z', completedAt: '2026-11-22T02:20:00.000Z', bytesUploaded: 3 * 1024 ** 3 }));
  await catalog.createBackup(backup('b-2', { startedAt: '2026-11-23T02:00:00.000Z', completedAt: '2026-11-23T02:20:00.000Z', bytesUploaded: 1024 ** 3 }));
  await catalog.createBackup(
    backup('f-1', { status: 'Failed', startedAt: '2026-11-21T02:00:00.000Z', completedAt: '2026-11-21T02:05:00.000Z', failure: { step: 'Snapshot', state: 'WaitSnapshots', error: 'SnapshotTimeout', cause: 'not ready in 600 s' } }),
  );
  await catalog.recordReplication({ backupId: 'b-2', region: 'us-west-2', plan: PLAN, executionId: 'CheckReplication', status: 'Complete', at: '2026-11-23T02:30:00.000Z', checkedAt: '2026-11-23T02:30:00.000Z', objects: 40, confirmed: 40 });
  await catalog.createRestore(drillRestore('production-weekly-drill-drill-20261122060000'));
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
    expect(row!.split(/\s{3,}/)).toEqual([PLAN, 'prod/vector-db', 'b-2', '9h40m', '1d02h', 'yes', '2026-11-24T02:00:00.000Z', 'f-1 (2d09h ago)', '5.0MiB', 'us-west-2:Complete', 'Passed (1d05h ago)']);
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
          ageSince: '2026-11-23T02:20:00.000Z',
          state: 'violated',
          met: false,
          nextRun: '2026-11-25T02:00:00.000Z',
          lastFailure: { backupId: 'f-1', at: '2026-11-21T02:05:00.000Z', step: 'Snapshot', error: 'SnapshotTimeout' },
          vault: 'primary',
          vaultBytes: 5 * 1024 ** 2,
          vaultBytesAt: '2026-11-24T12:00:00.000Z',
          dr: [{ region: 'us-west-2', status: 'Complete' }],
          lastDrill: { drillId: 'production-weekly-drill-drill-20261122060000', at: '2026-11-22T06:04:00.000Z', result: 'Passed', rtoSeconds: 240 },
          drills: [
            {
              drill: 'production-weekly-drill',
              plan: PLAN,
              periodSeconds: 8 * 86_400,
              lastPassed: { drillId: 'production-weekly-drill-drill-20261122060000', completedAt: '2026-11-22T06:04:00.000Z' },
              ageSeconds: 2 * 86_400 + 5 * 3600 + 56 * 60,
              ageFrom: 'last-passed',
              ageSince: '2026-11-22T06:04:00.000Z',
              overdue: false,
            },
          ],
        },
      ],
    });
  });

  it('records when it first saw a plan never backed up, and shows it pending with its age from then, exit 0', async () => {
    const dir = await emptyState();
    const c = cli();

    const code = await c.run('status', '--local', '--state', dir, '--now', '2026-11-23T12:00:00Z');

    expect(code).toBe(0);
    expect(c.out.join('').split('\n')[1]!.split(/\s{3,}/)).toEqual([PLAN, 'prod/vector-db', 'never', '0s (first seen)', '1d02h', 'pending', '2026-11-24T02:00:00.000Z', '<none>', '0B', '<none>', '<none>']);
    expect(c.err.join('')).toBe(
      `${PLAN}: no Available backup yet, 0s since the RPO check first saw it; it misses its RPO of 1d02h at 2026-11-24T14:00:00.000Z unless one becomes Available (milvus-guard backup create --plan ${PLAN})\n`,
    );
    expect(await new LocalFirstSeen(join(dir, 'catalog')).list()).toEqual(new Map([[PLAN, '2026-11-23T12:00:00.000Z']]));
  });

  it('shows a plan never backed up as missing its RPO once first seen longer ago than the RPO, exit 3, as its alarm would fire', async () => {
    const dir = await emptyState();
    await cli().run('status', '--local', '--state', dir, '--now', '2026-11-23T12:00:00Z');
    const within = cli();
    const over = cli();

    expect(await within.run('status', '--local', '--state', dir, '--now', '2026-11-24T14:00:00Z')).toBe(0);
    const code = await over.run('status', '--local', '--state', dir, '--now', '2026-11-24T14:15:00Z', '-o', 'json');

    expect(code).toBe(3);
    expect(JSON.parse(over.out.join(''))).toMatchObject({
      healthy: false,
      plans: [{ plan: PLAN, state: 'violated', met: false, lastAvailable: null, ageFrom: 'first-seen', ageSince: '2026-11-23T12:00:00.000Z', ageSeconds: 26 * 3600 + 15 * 60 }],
    });
  });

  it('marks LAST DRILL OVERDUE once a drill never attempted was first seen longer ago than its period, as its alarm would fire', async () => {
    const dir = await emptyState();
    await cli().run('status', '--local', '--state', dir, '--now', '2026-11-23T12:00:00Z');
    const within = cli();
    const over = cli();

    // The example's weekly drill: a period of a week plus a day.
    await within.run('status', '--local', '--state', dir, '--now', '2026-12-01T12:00:00Z');
    await over.run('status', '--local', '--state', dir, '--now', '2026-12-01T12:15:00Z');

    expect(within.out.join('').split('\n')[1]!.split(/\s{3,}/).at(-1)).toBe('<none>');
    expect(over.out.join('').split('\n')[1]!.split(/\s{3,}/).at(-1)).toBe('never (OVERDUE)');
    expect(over.err.join('')).toContain(`${PLAN}: drill production-weekly-drill has not passed in 8d15m since the RPO check first saw it, over its period of 8d (milvus-guard drill list --plan ${PLAN}; milvus-guard drill run --drill production-weekly-drill --wait)\n`);
    expect(await new LocalFirstSeen(join(dir, 'catalog'), 'drill').list()).toEqual(new Map([['production-weekly-drill', '2026-11-23T12:00:00.000Z']]));
  });

  it('ages a plan whose backups all failed from its first attempt, before it was first seen', async () => {
    const dir = await emptyState();
    await new LocalCatalog(join(dir, 'catalog')).createBackup(backup('f-1', { status: 'Failed', startedAt: '2026-11-22T02:00:00.000Z', completedAt: '2026-11-22T02:05:00.000Z' }));
    const c = cli();

    const code = await c.run('status', '--local', '--state', dir, '--now', '2026-11-23T12:00:00Z');

    expect(code).toBe(3);
    expect(c.out.join('').split('\n')[1]!.split(/\s{3,}/).slice(2, 6)).toEqual(['never', '1d10h (first attempt)', '1d02h', 'NO']);
    expect(c.err.join('')).toBe(`${PLAN}: no Available backup in 1d10h since its first attempt, over its RPO of 1d02h\n`);
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

  describe('against AWS', () => {
    const BUCKET = 'milvus-guard-primary-123456789012-us-east-1';
    const partition = (p: string) => ({ IndexName: 'byTime', ExpressionAttributeValues: expect.objectContaining({ ':all': p }) });
    const sizeQuery = (id: string, type: string) => ({
      Id: id,
      Label: type,
      MetricStat: { Metric: { Namespace: 'AWS/S3', MetricName: 'BucketSizeBytes', Dimensions: [{ Name: 'BucketName', Value: BUCKET }, { Name: 'StorageType', Value: type }] }, Period: 86_400, Stat: 'Average' },
      ReturnData: true,
    });
    const day = (d: string) => new Date(`${d}T00:00:00.000Z`);

    function mockAws() {
      const ddb = mockClient(DynamoDBDocumentClient);
      const sts = mockClient(STSClient);
      const cw = mockClient(CloudWatchClient);
      ddb.on(QueryCommand).resolves({ Items: [] });
      sts.on(GetCallerIdentityCommand).resolves({ Account: '123456789012' });
      return { ddb, sts, cw, restore: () => [ddb, sts, cw].forEach((m) => m.restore()) };
    }

    it('reads the catalog (backups, their replication, restores, plans\' and drills\' first-seen markers: one query each) and the vault bucket\'s latest daily size over its storage types', async () => {
      const aws = mockAws();
      aws.ddb.on(QueryCommand, { ExpressionAttributeValues: { ':all': 'BACKUPS' } }).resolves({ Items: [backup('b-2', { completedAt: '2026-11-23T02:20:00.000Z' })] });
      aws.ddb.on(QueryCommand, { ExpressionAttributeValues: { ':all': 'RESTORES' } }).resolves({ Items: [drillRestore('d-1')] });
      aws.cw.on(ListMetricsCommand).resolves({
        Metrics: ['StandardStorage', 'StandardIAStorage', 'GlacierInstantRetrievalStorage'].map((type) => ({ Namespace: 'AWS/S3', MetricName: 'BucketSizeBytes', Dimensions: [{ Name: 'StorageType', Value: type }, { Name: 'BucketName', Value: BUCKET }] })),
      });
      aws.cw.on(GetMetricDataCommand).resolves({
        MetricDataResults: [
          { Id: 't0', Label: 'StandardStorage', Timestamps: [day('2026-11-22'), day('2026-11-21')], Values: [300 * 1024 ** 3, 290 * 1024 ** 3], StatusCode: 'Complete' },
          { Id: 't1', Label: 'StandardIAStorage', Timestamps: [day('2026-11-22'), day('2026-11-21')], Values: [200 * 1024 ** 3, 200 * 1024 ** 3], StatusCode: 'Complete' },
          // A class the vault moved out of: its last datapoint is older and counts no more.
          { Id: 't2', Label: 'GlacierInstantRetrievalStorage', Timestamps: [day('2026-11-21')], Values: [999 * 1024 ** 3], StatusCode: 'Complete' },
        ],
      });
      const c = cli();

      try {
        const code = await c.run('status', '-c', 'examples/production.yaml', '--now', '2026-11-23T12:00:00Z', '-o', 'json');

        expect(code).toBe(0);
        expect(JSON.parse(c.out.join(''))).toMatchObject({
          healthy: true,
          plans: [{ plan: PLAN, state: 'met', lastAvailable: { backupId: 'b-2' }, vault: 'primary', vaultBytes: 500 * 1024 ** 3, vaultBytesAt: '2026-11-22T00:00:00.000Z', dr: [{ region: 'us-west-2', status: 'Unchecked' }], lastDrill: { drillId: 'd-1', result: 'Passed' } }],
        });
        const queries = aws.ddb.commandCalls(QueryCommand).map((call) => call.args[0].input);
        expect(queries).toEqual([
          expect.objectContaining({ TableName: 'milvus-guard-catalog', ...partition('BACKUPS') }),
          expect.objectContaining(partition('REPLICATIONS')),
          expect.objectContaining(partition('RESTORES')),
          expect.objectContaining({ TableName: 'milvus-guard-catalog', ...partition('FIRSTSEEN') }),
          expect.objectContaining({ TableName: 'milvus-guard-catalog', ...partition('FIRSTSEEN#drill') }),
        ]);
        // status in AWS only reads: the RPO check records first-seen markers.
        expect(aws.ddb.commandCalls(PutCommand)).toEqual([]);
        expect(aws.ddb.calls()).toHaveLength(5);
        expect(aws.cw.commandCalls(ListMetricsCommand).map((call) => call.args[0].input)).toEqual([{ Namespace: 'AWS/S3', MetricName: 'BucketSizeBytes', Dimensions: [{ Name: 'BucketName', Value: BUCKET }] }]);
        expect(aws.cw.commandCalls(GetMetricDataCommand).map((call) => call.args[0].input)).toEqual([
          {
            MetricDataQueries: [sizeQuery('t0', 'StandardStorage'), sizeQuery('t1', 'StandardIAStorage'), sizeQuery('t2', 'GlacierInstantRetrievalStorage')],
            // Seven whole days back, up to now.
            StartTime: day('2026-11-16'),
            EndTime: new Date('2026-11-23T12:00:00.000Z'),
            ScanBy: 'TimestampDescending',
          },
        ]);
        expect(await aws.cw.commandCalls(ListMetricsCommand)[0]!.thisValue.config.region()).toBe('us-east-1');
      } finally {
        aws.restore();
      }
    });

    it('judges a plan never backed up from the marker the RPO check wrote, and writes none itself', async () => {
      const aws = mockAws();
      aws.ddb.on(QueryCommand, { ExpressionAttributeValues: { ':all': 'FIRSTSEEN' } }).resolves({ Items: [{ pk: `FIRSTSEEN#${PLAN}`, sk: 'FIRSTSEEN', plan: PLAN, firstSeenAt: '2026-11-20T00:00:00.000Z' }] });
      aws.cw.on(ListMetricsCommand).resolves({ Metrics: [] });
      const c = cli();

      try {
        const code = await c.run('status', '-c', 'examples/production.yaml', '--now', '2026-11-23T12:00:00Z');

        expect(code).toBe(3);
        expect(c.out.join('').split('\n')[1]!.split(/\s{3,}/).slice(2, 9)).toEqual(['never', '3d12h (first seen)', '1d02h', 'NO', '2026-11-24T02:00:00.000Z', '<none>', '<unknown>']);
        expect(c.err.join('')).toBe(
          `${PLAN}: no Available backup in 3d12h since the RPO check first saw it, over its RPO of 1d02h\n` +
            `vault primary: size unknown: S3 has reported no BucketSizeBytes for bucket ${BUCKET} in the last 7 days (it reports once a day, from the day after the bucket first holds objects)\n`,
        );
        expect(aws.ddb.commandCalls(PutCommand)).toEqual([]);
        expect(aws.cw.commandCalls(GetMetricDataCommand)).toEqual([]);
      } finally {
        aws.restore();
      }
    });

    it('cannot judge a plan with no backup record that the RPO check never saw, says so, and fails the health check (exit 3)', async () => {
      const aws = mockAws();
      aws.cw.on(ListMetricsCommand).rejects(Object.assign(new Error('User is not authorized to perform: cloudwatch:ListMetrics'), { name: 'AccessDenied' }));
      const json = cli();
      const table = cli();

      try {
        const code = await json.run('status', '-c', 'examples/production.yaml', '--now', '2026-11-23T12:00:00Z', '-o', 'json');
        expect(await table.run('status', '-c', 'examples/production.yaml', '--now', '2026-11-23T12:00:00Z')).toBe(3);

        expect(code).toBe(3);
        expect(JSON.parse(json.out.join(''))).toMatchObject({ healthy: false });
        expect(JSON.parse(json.out.join('')).plans[0]).toMatchObject({ state: 'unknown', met: false, ageSeconds: null, ageFrom: null, vaultBytes: null, vaultBytesAt: null, vaultBytesUnknown: 'AccessDenied: User is not authorized to perform: cloudwatch:ListMetrics' });
        expect(table.out.join('').split('\n')[1]!.split(/\s{3,}/).slice(2, 6)).toEqual(['never', '<none>', '1d02h', 'unknown']);
        expect(table.err.join('').split('\n')[0]).toBe(
          `${PLAN}: no backup record and the RPO check has never seen the plan, so nothing says since when it is unprotected: is it deployed with this config (npx cdk deploy; the check runs every 15 minutes after), and is the RPO check running (see the milvus-guard-rpo-check-stopped alarm)? Not healthy until the check has seen it`,
        );
      } finally {
        aws.restore();
      }
    });

    it('still passes a plan without an RPO that the RPO check never saw: nothing to miss, exit 0', async () => {
      const aws = mockAws();
      aws.cw.on(ListMetricsCommand).resolves({ Metrics: [] });
      const dir = await emptyState();
      const file = join(dir, 'on-demand.yaml');
      // The example's plan on demand only (no schedule) and without an rpo.
      writeFileSync(file, readFileSync('examples/production.yaml', 'utf8').replace(/^ {4}schedule: daily-0200\n/m, '').replace(/^ {4}rpo: 26h.*\n/m, ''));
      const c = cli();

      try {
        const code = await c.run('status', '-c', file, '--now', '2026-11-23T12:00:00Z', '-o', 'json');

        expect(JSON.parse(c.out.join('')).plans[0]).toMatchObject({ state: 'no-rpo', met: true, ageSeconds: null });
        expect(code).toBe(0);
      } finally {
        aws.restore();
      }
    });
  });

  it('renders an on-demand plan without an RPO with no verdict', () => {
    const text = renderStatus({
      now: '2026-11-24T12:00:00.000Z',
      healthy: true,
      plans: [
        { plan: 'adhoc', cluster: 'prod', namespace: 'ns', rpo: { seconds: null, source: 'none', reason: 'on demand' }, lastAvailable: null, ageSeconds: null, ageFrom: null, ageSince: null, state: 'no-rpo', met: true, nextRun: null, lastFailure: null, vault: 'v', vaultBytes: 0, vaultBytesAt: '2026-11-24T00:00:00.000Z', dr: [], lastDrill: null, drills: [] },
      ],
    });

    expect(text.split('\n')[1]!.split(/\s{3,}/)).toEqual(['adhoc', 'prod/ns', 'never', '<none>', '<none>', '<none>', 'on demand', '<none>', '0B', '<none>', '<none>']);
  });
});

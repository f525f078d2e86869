import { Writable } from 'node:stream';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { DescribeExecutionCommand, GetExecutionHistoryCommand } from '@aws-sdk/client-sfn';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { registerBackupCommands } from '../../cli/commands/backup.js';
import { registerRestoreCommands } from '../../cli/commands/restore.js';
import { progressView } from '../../cli/execution.js';
import { formatProgress } from '../../cli/format.js';
import { PROGRESS_FORMAT, type VolumeProgress } from '../../core/datamover/progress.js';
import { backupProgressKey, restoreProgressKey } from '../../core/vault/layout.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backupRecord, CONFIG, cliWith, localState, mockAwsStart, PLAN, restoreRecord } from './helpers.js';

const EXECUTION = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-backup:nightly-1';
const { sfn, ddb, sts } = mockAwsStart(EXECUTION);

/** A progress object of one volume; `over` changes fields. */
function progress(over: Partial<VolumeProgress> = {}): VolumeProgress {
  return {
    format: PROGRESS_FORMAT,
    kind: 'export',
    volume: 'export-milvus-minio-0',
    backupId: 'nightly-1',
    phase: 'copying',
    startedAt: '2026-11-23T02:04:00.000Z',
    updatedAt: '2026-11-23T02:05:00.000Z',
    filesDone: 120,
    filesTotal: 300,
    bytesDone: 42 * 1024 * 1024,
    bytesTotal: 100 * 1024 * 1024,
    bytesPerSecond: 2 * 1024 * 1024,
    etaSeconds: 29,
    ...over,
  };
}

const json = (p: VolumeProgress) => Buffer.from(JSON.stringify(p));

describe('describe shows the progress of a running volume', () => {
  it('backup describe: percent, bytes done of the total, files, rate and ETA per exporting volume (--local)', async () => {
    // Prepare: a running backup, and the progress its data mover last wrote to the local vault.
    const { dir, catalog } = await localState();
    await catalog.createBackup(backupRecord({ status: 'InProgress', completedAt: undefined, components: [{ pvc: 'export-milvus-minio-0', role: 'object-storage', status: 'SnapshotReady' }] }));
    await new FileVaultStore(join(dir, 'vault')).put(backupProgressKey('nightly-1', 'export-milvus-minio-0'), json(progress()));
    const cli = cliWith(registerBackupCommands);

    // Act
    expect(await cli.run('backup', 'describe', 'nightly-1', '--local', '--state', dir)).toBe(0);

    // Assess
    const text = cli.out.join('');
    expect(text).toContain('Export progress:');
    const row = text.split('\n').find((l) => l.startsWith('export-milvus-minio-0') && l.includes('copying'))!;
    expect(row.split(/\s{3,}/)).toEqual(['export-milvus-minio-0', 'copying', '42%', '42.0MiB/100.0MiB', '120/300', '2.0MiB/s', '29s', '2026-11-23T02:05:00.000Z']);
  });

  it('backup describe shows no progress for a backup that has ended', async () => {
    const { dir, catalog } = await localState();
    await catalog.createBackup(backupRecord());
    await new FileVaultStore(join(dir, 'vault')).put(backupProgressKey('nightly-1', 'export-milvus-minio-0'), json(progress({ phase: 'done' })));
    const cli = cliWith(registerBackupCommands);

    await cli.run('backup', 'describe', 'nightly-1', '--local', '--state', dir);

    expect(cli.out.join('')).not.toContain('Export progress:');
  });

  it('restore describe: the progress of each volume a running restore hydrates (--local)', async () => {
    const { dir, catalog } = await localState();
    const record = restoreRecord({ status: 'InProgress', completedAt: undefined, rtoSeconds: undefined, validation: undefined });
    await catalog.createRestore(record);
    await new FileVaultStore(join(dir, 'vault')).put(
      restoreProgressKey(record.restoreId, 'data-production-milvus-etcd-0'),
      json(progress({ kind: 'hydrate', restoreId: record.restoreId, volume: 'data-production-milvus-etcd-0', bytesDone: 0, filesDone: 0, bytesPerSecond: null, etaSeconds: null })),
    );
    const cli = cliWith(registerRestoreCommands);

    expect(await cli.run('restore', 'describe', record.restoreId, '--local', '--state', dir)).toBe(0);

    const text = cli.out.join('');
    expect(text).toContain('Hydration progress:');
    expect(text).toMatch(/data-production-milvus-etcd-0\s+copying\s+0%\s+0B\/100\.0MiB\s+0\/300/);
  });
});

describe('restore describe against AWS shows the progress of each volume a running restore hydrates', () => {
  const RESTORE = 'nightly-1-r20261123100000';
  const hydrating = (volume: string, over: Partial<VolumeProgress> = {}) => progress({ kind: 'hydrate', restoreId: RESTORE, backupId: 'nightly-1', volume, ...over });

  /** A running restore whose execution runs in `region`, and the progress its two hydrations last wrote to the vault there. */
  function running(region: string, bucket: string) {
    const s3 = mockClient(S3Client);
    const record = restoreRecord({
      restoreId: RESTORE,
      status: 'InProgress',
      completedAt: undefined,
      rtoSeconds: undefined,
      validation: undefined,
      executionId: `arn:aws:states:${region}:123456789012:execution:milvus-guard-restore:r1`,
      volumes: [
        { pvc: 'data-production-milvus-etcd-0', role: 'etcd', status: 'Pending', from: 'hydrate-etcd-0' },
        { pvc: 'export-milvus-minio-0', role: 'object-storage', status: 'Pending', from: 'hydrate-minio-0' },
      ],
    });
    ddb.on(GetCommand).resolves({ Item: record });
    const etcd = restoreProgressKey(RESTORE, 'data-production-milvus-etcd-0');
    const minio = restoreProgressKey(RESTORE, 'export-milvus-minio-0');
    s3.on(ListObjectsV2Command, { Bucket: bucket }).resolves({ Contents: [{ Key: etcd, Size: 300 }, { Key: minio, Size: 300 }] });
    const body = (p: VolumeProgress) => ({ Body: { transformToByteArray: async () => new Uint8Array(json(p)) } }) as never;
    s3.on(GetObjectCommand, { Bucket: bucket, Key: etcd }).resolves(body(hydrating('data-production-milvus-etcd-0', { phase: 'done', bytesDone: 100 * 1024 * 1024, filesDone: 300, bytesPerSecond: null, etaSeconds: 0 })));
    s3.on(GetObjectCommand, { Bucket: bucket, Key: minio }).resolves(body(hydrating('export-milvus-minio-0')));
    return s3;
  }

  it('reads the vault bucket in the region of a restore that runs there (the primary)', async () => {
    const s3 = running('us-east-1', 'milvus-guard-primary-123456789012-us-east-1');
    const cli = cliWith(registerRestoreCommands);

    try {
      expect(await cli.run('restore', 'describe', RESTORE, '-c', CONFIG)).toBe(0);

      const text = cli.out.join('');
      expect(text).toContain('Hydration progress:');
      const rows = text.slice(text.indexOf('Hydration progress:')).split('\n');
      expect(rows.find((l) => l.startsWith('export-milvus-minio-0'))!.split(/\s{3,}/).slice(0, 7)).toEqual(['export-milvus-minio-0', 'copying', '42%', '42.0MiB/100.0MiB', '120/300', '2.0MiB/s', '29s']);
      expect(rows.find((l) => l.startsWith('data-production-milvus-etcd-0'))!.split(/\s{3,}/).slice(0, 4)).toEqual(['data-production-milvus-etcd-0', 'done', '100%', '100.0MiB/100.0MiB']);
      expect(new Set(s3.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input.Prefix))).toEqual(new Set([`progress/restores/${RESTORE}/`]));
      expect(cli.err.join('')).toBe('');
    } finally {
      s3.restore();
    }
  });

  it("reads the DR region's replica bucket for a restore whose execution runs there (a failover or a DR drill), found from the execution ARN", async () => {
    const s3 = running('us-west-2', 'milvus-guard-primary-dr-123456789012-us-west-2');
    const cli = cliWith(registerRestoreCommands);

    try {
      expect(await cli.run('restore', 'describe', RESTORE, '-c', CONFIG, '-o', 'json')).toBe(0);

      const shown = JSON.parse(cli.out.join('')) as { progress: VolumeProgress[] };
      expect(shown.progress.map((p) => [p.volume, p.phase, p.bytesDone])).toEqual(
        expect.arrayContaining([
          ['data-production-milvus-etcd-0', 'done', 100 * 1024 * 1024],
          ['export-milvus-minio-0', 'copying', 42 * 1024 * 1024],
        ]),
      );
      expect(shown.progress).toHaveLength(2);
      // Only the replica bucket, through a client in the DR region; the account named it, asked in that region too.
      expect(new Set(s3.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input.Bucket))).toEqual(new Set(['milvus-guard-primary-dr-123456789012-us-west-2']));
      expect(await s3.commandCalls(ListObjectsV2Command)[0]!.thisValue.config.region()).toBe('us-west-2');
      expect(await sts.commandCalls(GetCallerIdentityCommand)[0]!.thisValue.config.region()).toBe('us-west-2');
    } finally {
      s3.restore();
    }
  });
});

describe('a progress line without totals', () => {
  it('says what is done while counting, when the count failed, and when the run failed meanwhile', () => {
    const uncounted = { filesTotal: null, bytesTotal: null, bytesDone: 6 * 1024 * 1024, filesDone: 20, bytesPerSecond: 200 * 1024, etaSeconds: null };

    expect(formatProgress(progress({ ...uncounted, phase: 'counting', bytesDone: 0, filesDone: 0, bytesPerSecond: null }))).toBe('counting files');
    expect(formatProgress(progress({ ...uncounted, phase: 'counting' }))).toBe('6.0MiB and 20 files done (counting files), 200.0KiB/s');
    expect(formatProgress(progress({ ...uncounted, phase: 'copying' }))).toBe('6.0MiB and 20 files done (total unknown), 200.0KiB/s');
    expect(formatProgress(progress({ ...uncounted, phase: 'failed' }))).toBe('failed after 6.0MiB and 20 files done');
  });
});

describe('--wait when stderr is not a terminal', () => {
  it('prints a plain line per volume when its phase changes, and when it moved after the interval', () => {
    // Prepare
    let t = Date.parse('2026-11-23T02:05:00Z');
    const lines: string[] = [];
    const view = progressView({ tty: false, now: () => new Date(t), lineEverySeconds: 30 }, (l) => lines.push(l));

    // Act: counting, counting with bytes copied 30 s later, copying, moved 10 s later (quiet), moved 30 s later, unchanged 60 s later (quiet), done.
    view.show([progress({ phase: 'counting', filesTotal: null, bytesTotal: null, bytesDone: 0, filesDone: 0, bytesPerSecond: null, etaSeconds: null })]);
    t += 30_000;
    view.show([progress({ phase: 'counting', filesTotal: null, bytesTotal: null, bytesDone: 6 * 1024 * 1024, filesDone: 20, bytesPerSecond: 200 * 1024, etaSeconds: null })]);
    view.show([progress({ bytesDone: 0, filesDone: 0, bytesPerSecond: null, etaSeconds: null })]);
    t += 10_000;
    view.show([progress({ bytesDone: 10 * 1024 * 1024 })]);
    t += 30_000;
    view.show([progress()]);
    t += 60_000;
    view.show([progress()]);
    view.show([progress({ phase: 'done', bytesDone: 100 * 1024 * 1024, filesDone: 300, etaSeconds: 0 })]);
    view.stop();

    // Assess: plain text, no escape codes.
    expect(lines).toEqual([
      '  02:05:00  export export-milvus-minio-0: counting files\n',
      '  02:05:30  export export-milvus-minio-0: 6.0MiB and 20 files done (counting files), 200.0KiB/s\n',
      '  02:05:30  export export-milvus-minio-0: 0% (0B of 100.0MiB, 0 of 300 files)\n',
      '  02:06:10  export export-milvus-minio-0: 42% (42.0MiB of 100.0MiB, 120 of 300 files), 2.0MiB/s, ETA 29s\n',
      '  02:07:10  export export-milvus-minio-0: done (100.0MiB of 100.0MiB, 300 of 300 files)\n',
    ]);
  });

  it('backup create --wait follows the volumes in the S3 vault and prints plain lines between the states', async () => {
    // Prepare: an execution that runs for two polls; the backup's record; its progress in the vault.
    const s3 = mockClient(S3Client);
    ddb.on(QueryCommand).resolves({ Items: [backupRecord({ status: 'InProgress', completedAt: undefined, executionId: EXECUTION })] });
    sfn.on(GetExecutionHistoryCommand).resolves({ events: [{ id: 1, type: 'TaskStateEntered', timestamp: new Date(), stateEnteredEventDetails: { name: 'Export' } }] });
    sfn
      .on(DescribeExecutionCommand)
      .resolvesOnce({ status: 'RUNNING', executionArn: EXECUTION, stateMachineArn: 'x', startDate: new Date() })
      .resolves({ status: 'SUCCEEDED', output: '{}', executionArn: EXECUTION, stateMachineArn: 'x', startDate: new Date() });
    const key = backupProgressKey('nightly-1', 'export-milvus-minio-0');
    s3.on(ListObjectsV2Command).resolves({ Contents: [{ Key: key, Size: 300 }] });
    const bodies = [progress(), progress({ phase: 'done', bytesDone: 100 * 1024 * 1024, filesDone: 300, etaSeconds: 0 })];
    let read = 0;
    s3.on(GetObjectCommand, { Key: key }).callsFake(async () => {
      const body = json(bodies[Math.min(read++, bodies.length - 1)]!);
      return { Body: { transformToByteArray: async () => new Uint8Array(body) } };
    });
    const cli = cliWith(registerBackupCommands);

    try {
      // Act
      const code = await cli.run('backup', 'create', '--plan', PLAN, '-c', CONFIG, '--wait');

      // Assess
      expect(code).toBe(0);
      const err = cli.err.map((l) => l.replace(/^\s+\d\d:\d\d:\d\d\s+/, '').trim());
      expect(err).toEqual(['Export', 'export export-milvus-minio-0: 42% (42.0MiB of 100.0MiB, 120 of 300 files), 2.0MiB/s, ETA 29s', 'export export-milvus-minio-0: done (100.0MiB of 100.0MiB, 300 of 300 files)']);
      expect(cli.err.join('')).not.toContain('\x1b');
      // The reports are found by listing the backup's own progress prefix, outside backups/.
      expect(new Set(s3.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input.Prefix))).toEqual(new Set(['progress/backups/nightly-1/']));
    } finally {
      s3.restore();
    }
  });
});

describe('--wait on a terminal', () => {
  it('draws a progress bar per volume with the percentage, bytes, rate and ETA', () => {
    // Prepare: a stream that says it is a terminal and keeps what is drawn.
    const drawn: string[] = [];
    const stream = Object.assign(new Writable({ write: (chunk: Buffer, _e, done) => (drawn.push(chunk.toString()), done()) }), { isTTY: true, columns: 160, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
    const view = progressView({ tty: true, stream }, () => undefined);

    // Act
    view.show([progress()]);
    view.stop();

    // Assess
    expect(drawn.join('')).toMatch(/export export-milvus-minio-0 \[[█░]+\] 42% \| 42\.0MiB of 100\.0MiB \| 2\.0MiB\/s \| ETA 29s/);
  });
});

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parse, stringify } from 'yaml';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { registerRetentionCommands, renderReport } from '../../cli/commands/retention.js';
import type { RetentionReport } from '../../core/retention/contracts.js';
import { registerBackupCommands } from '../../cli/commands/backup.js';
import { backupRecord, CONFIG, cliWith, localState, mockAwsStart, PLAN } from './helpers.js';
import { backupVolume } from '../../core/datamover/backup.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { volumeSummaryKey } from '../../core/vault/layout.js';

// `retention preview -o json` is a contract other tools read: its exact shape is asserted here.
// `retention run` and `backup create --now` refuse what they cannot do, in one line.

const { sfn } = mockAwsStart('arn:aws:states:us-east-1:123456789012:execution:milvus-guard-retention:r1');

describe('retention preview', () => {
  it('prints the keep set with rules and lock dates and the expire set with reasons (-o json)', async () => {
    const { dir, catalog } = await localState();
    // Daily backups 2026-11-01 .. 2026-11-12; the example policy keeps the last 7 and the 1st (monthly).
    for (let d = 1; d <= 12; d++) {
      const day = String(d).padStart(2, '0');
      await catalog.createBackup(backupRecord({ backupId: `b-${day}`, startedAt: `2026-11-${day}T02:00:00.000Z`, executionId: `e-${day}` }));
    }
    const cli = cliWith(registerRetentionCommands);

    const code = await cli.run('retention', 'preview', '--plan', PLAN, '--now', '2026-11-12T12:00:00Z', '-o', 'json', '--local', '--state', dir);

    expect(code).toBe(0);
    const out = JSON.parse(cli.out.join('')) as { plan: string; now: string; keep: { backupId: string; startedAt: string; rules: string[]; retainUntil: string }[]; expire: { backupId: string; startedAt: string; reason: string }[] };
    expect(Object.keys(out)).toEqual(['plan', 'now', 'keep', 'expire']);
    expect(out.plan).toBe(PLAN);
    expect(out.now).toBe('2026-11-12T12:00:00.000Z');
    expect(out.keep.map((k) => k.backupId)).toEqual(['b-12', 'b-11', 'b-10', 'b-09', 'b-08', 'b-07', 'b-06', 'b-01']);
    expect(Object.keys(out.keep[0]!)).toEqual(['backupId', 'startedAt', 'rules', 'retainUntil']);
    expect(out.keep.find((k) => k.backupId === 'b-01')!.rules).toContain('monthly 2026-11');
    expect(out.expire.map((e) => e.backupId)).toEqual(['b-05', 'b-04', 'b-03', 'b-02']);
    expect(Object.keys(out.expire[0]!)).toEqual(['backupId', 'startedAt', 'reason']);
  });
});

describe('retention list', () => {
  it('lists the recorded runs, newest first', async () => {
    const { dir, catalog } = await localState();
    await catalog.recordRetentionRun({ runId: 'retention-20261112t120000z', executionId: 'e', status: 'Completed', now: '2026-11-12T12:00:00.000Z', dryRun: false, plans: [{ plan: PLAN, kept: 8, expired: ['b-02'], locksExtended: 3 }], skipped: [], packsDeleted: 2, bytesFreed: 2048, reportKey: 'retention/retention-20261112t120000z.json' });
    const cli = cliWith(registerRetentionCommands);

    expect(await cli.run('retention', 'list', '--local', '--state', dir)).toBe(0);

    expect(cli.out.join('')).toMatch(/retention-20261112t120000z\s+2026-11-12T12:00:00.000Z\s+1\s+8\s+1\s+2\s+2\.0KiB/);
  });
});

describe('retention run', () => {
  it('starts the retention state machine with {"all": true} in AWS', async () => {
    const cli = cliWith(registerRetentionCommands);

    expect(await cli.run('retention', 'run', '--all', '-c', CONFIG)).toBe(0);

    expect(sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input).toMatchObject({
      stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:milvus-guard-retention',
      input: JSON.stringify({ all: true }),
    });
  });

  it('with --all, starts the retention state machine of every vault region that has plans', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mg-retention-cli-'));
    const example = parse(readFileSync(CONFIG, 'utf8')) as { clusters: object[]; vaults: object[]; plans: { name: string }[] };
    const twoRegions = {
      ...example,
      clusters: [...example.clusters, { name: 'eu', eksClusterName: 'eu-eks', region: 'eu-west-1' }],
      vaults: [...example.vaults, { name: 'europe', region: 'eu-west-1', objectLock: { mode: 'GOVERNANCE', defaultRetentionDays: 7 } }],
      plans: [...example.plans, { ...example.plans[0]!, name: 'eu-backup', cluster: 'eu', vault: 'europe' }],
    };
    writeFileSync(join(dir, 'config.yaml'), stringify(twoRegions));
    const cli = cliWith(registerRetentionCommands);

    expect(await cli.run('retention', 'run', '--all', '-c', join(dir, 'config.yaml'), '-o', 'json')).toBe(0);

    expect(sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input.stateMachineArn)).toEqual([
      'arn:aws:states:us-east-1:123456789012:stateMachine:milvus-guard-retention',
      'arn:aws:states:eu-west-1:123456789012:stateMachine:milvus-guard-retention',
    ]);
    expect(JSON.parse(cli.out.join(''))).toHaveLength(2);
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    [['--plan', PLAN, '--all'], 'name one plan with --plan NAME, or every plan with --all'],
    [[], 'name one plan with --plan NAME, or every plan with --all'],
    [['--all', '--now', '2026-11-12T12:00:00Z'], '--now needs --local: in AWS a retention run is as of its execution start'],
  ])('refuses %j', async (args, message) => {
    const cli = cliWith(registerRetentionCommands);
    await expect(cli.run('retention', 'run', '-c', CONFIG, ...args)).rejects.toThrow(message);
  });

  it('refuses a --now that is not an ISO 8601 instant', async () => {
    const cli = cliWith(registerRetentionCommands);
    await expect(cli.run('retention', 'preview', '--plan', PLAN, '--now', 'yesterday')).rejects.toThrow('"yesterday" is not an ISO 8601 instant such as 2026-11-23T02:00:00Z');
  });
});

describe('backup create --now', () => {
  it('is refused without --local', async () => {
    const cli = cliWith(registerBackupCommands);
    await expect(cli.run('backup', 'create', '--plan', PLAN, '-c', CONFIG, '--now', '2026-11-12T02:00:00Z')).rejects.toThrow('--now needs --local');
  });
});

describe('backup hold and release', () => {
  it('hold records the reason and holds every object; describe shows it; release clears it (--local)', async () => {
    const { dir, catalog } = await localState();
    const source = mkdtempSync(join(tmpdir(), 'mg-hold-src-'));
    writeFileSync(join(source, 'segment.bin'), Buffer.alloc(50_000, 7));
    const vault = new FileVaultStore(join(dir, 'vault'));
    await backupVolume({ source, vault, volume: 'minio', backupId: 'nightly-1', now: new Date('2026-11-23T02:00:00Z'), workers: 1 });
    await catalog.createBackup(backupRecord({ components: [{ pvc: 'minio', role: 'object-storage', status: 'Exported' }] }));
    const cli = cliWith(registerBackupCommands);

    expect(await cli.run('backup', 'hold', 'nightly-1', '--reason', 'litigation 2026-114', '--local', '--state', dir)).toBe(0);
    expect(cli.out.join('')).toMatch(/^backup nightly-1 held: legal hold on \d+ object\(s\); retention will not expire it/);
    expect((await vault.head(volumeSummaryKey('nightly-1', 'minio')))?.legalHold).toBe(true);
    await cli.run('backup', 'describe', 'nightly-1', '--local', '--state', dir);
    expect(cli.out.join('')).toContain('Legal hold:  since ');
    expect(cli.out.join('')).toContain('litigation 2026-114');

    expect(await cli.run('backup', 'release', 'nightly-1', '--local', '--state', dir)).toBe(0);
    expect((await vault.head(volumeSummaryKey('nightly-1', 'minio')))?.legalHold).toBe(false);
    expect((await catalog.getBackup('nightly-1'))?.hold).toBeNull();
    await expect(cli.run('backup', 'hold', 'nightly-1', '--local', '--state', dir)).rejects.toThrow("required option '--reason <text>' not specified");
    rmSync(source, { recursive: true, force: true });
  });
});

describe('the report of a run', () => {
  const report = (gc: Partial<RetentionReport['gc']>): RetentionReport => ({
    runId: 'r1',
    now: '2031-01-05T02:00:00.000Z',
    dryRun: false,
    plans: [],
    skipped: [],
    expired: 0,
    locksExtended: 0,
    packsDeleted: 2,
    bytesFreed: 2048,
    gc: { packsScanned: 9, packsReferenced: 4, packsDeleted: 2, packsLocked: 1, packsFailed: 0, packsArchivable: 0, errors: [], bytesFreed: 2048, ...gc },
  });

  it('says how many unreferenced packs were too young to delete, and only when there are some', () => {
    expect(renderReport(report({ packsYoung: 3 }))).toContain('packs: 9 scanned, 2 deleted (2.0KiB freed), 1 unreferenced but still locked, 3 unreferenced but younger than garbage collection\'s minimum age (a later run deletes them)\n');
    expect(renderReport(report({ packsYoung: 0 }))).toContain('1 unreferenced but still locked\n');
    expect(renderReport(report({ interruptedWritesRemoved: 2 }))).toContain('1 unreferenced but still locked, 2 file(s) of interrupted writes removed\n');
    // A report of a run before the minimum age existed has no count.
    expect(renderReport(report({}))).toContain('1 unreferenced but still locked\n');
  });
});

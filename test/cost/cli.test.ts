import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { CommanderError } from 'commander';
import { registerCostCommand } from '../../cli/commands/cost.js';
import type { CostReport } from '../../core/cost/report.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backupRecord, cliWith, localState, mockAwsStart, PLAN } from '../cli/helpers.js';

const cli = () => cliWith(registerCostCommand);
const MiB = 1024 * 1024;

describe('milvus-guard cost --local', () => {
  it('reports the local vault by storage class, the request estimate and the full-copy comparison from the local catalog', async () => {
    const { dir, catalog } = await localState();
    const vault = new FileVaultStore(join(dir, 'vault'));
    await vault.put('data/packs/aa/aa01', Buffer.alloc(2 * MiB));
    await vault.put('data/packs/bb/bb01', Buffer.alloc(2 * MiB));
    await vault.put('backups/nightly-1/backup.json', Buffer.from('{}'));
    await vault.put('backups/nightly-2/backup.json', Buffer.from('{}'));
    await vault.transition('data/packs/aa/aa01', 'GLACIER_IR');
    await catalog.createBackup(backupRecord({ backupId: 'nightly-1', startedAt: '2026-11-22T02:00:00.000Z', sizeBytes: 4 * MiB, bytesUploaded: 2 * MiB }));
    await catalog.createBackup(backupRecord({ backupId: 'nightly-2', startedAt: '2026-11-23T02:00:00.000Z', sizeBytes: 5 * MiB, bytesUploaded: 2 * MiB }));
    const c = cli();
    expect(await c.run('cost', '--local', '--state', dir, '--now', '2026-11-30T03:00:00Z', '--project', '30', '-o', 'json')).toBe(0);
    const report = JSON.parse(c.out.join('')) as CostReport;
    const v = report.vaults[0]!;
    expect(v.locations).toHaveLength(1);
    expect(v.locations[0]!.classes.map((x) => [x.storageClass, x.objects, x.bytes])).toEqual([
      ['STANDARD', 3, 2 * MiB + 4],
      ['GLACIER_IR', 1, 2 * MiB],
    ]);
    // nightly-2 wrote one pack (2 MiB, the vault's average) and its record.
    expect(v.requests).toMatchObject({ backups: ['nightly-2', 'nightly-1'], putsPerBackup: 2, uploadedBytesPerDay: 2 * MiB });
    expect(v.fullCopies[0]).toMatchObject({ plan: PLAN, newestBackup: 'nightly-2', copies: 23, fullCopyBytes: 5 * MiB });
    expect(v.projection!.locations[0]!.bytes).toBe(4 * MiB + 4 + 60 * MiB);
  });

  it('prints a kubectl-style table by default', async () => {
    const { dir, catalog } = await localState();
    await new FileVaultStore(join(dir, 'vault')).put('data/packs/aa/aa01', Buffer.alloc(1024));
    await catalog.createBackup(backupRecord({ sizeBytes: 1024 }));
    const c = cli();
    expect(await c.run('cost', '--local', '--state', dir, '--now', '2026-11-30T03:00:00Z')).toBe(0);
    const text = c.out.join('');
    expect(text).toMatch(/COPY\s+REGION\s+STORAGE CLASS\s+OBJECTS\s+SIZE\s+PER GB-MONTH\s+PER MONTH/);
    expect(text).toMatch(/primary\s+us-east-1\s+S3 Standard\s+1\s+1\.0KiB\s+\$0\.023/);
    expect(text).toContain('Requests: not estimated: the vault has fewer than two Available backups');
    expect(text).toMatch(/milvus-production-backup\s+23 \(rules add up to 25\)/);
    // The model behind the number, with its inputs: copies per rule × the full copy = total, in GB × the price.
    expect(text).toContain('The same retention as full copies (S3 Standard in us-east-1, primary only):');
    expect(text).toContain('  milvus-production-backup: 23 copies (latest 7 + weekly 3 (of 4) + monthly 12 + yearly 1 (of 2)) × 1.0KiB = 23.0KiB = 0.000022 GB × $0.023 per GB-month = $5.0e-7 a month\n');
    // Where the built-in numbers come from and when, honestly: summaries of the page, not the page.
    expect(text).toContain('Prices (USD): transcribed 2026-12-06 from secondary summaries of the Amazon S3 pricing page https://aws.amazon.com/s3/pricing/ quoting its 2024-2025 list prices');
    expect(text).toContain('not the page itself: verify them there');
  });

  it('adds the vault of a linked DR state directory as the replica', async () => {
    const primary = await localState();
    const dr = await localState();
    const { linkDrRegion } = await import('../../cli/local-mode.js');
    await linkDrRegion(dr.dir, primary.dir, 'us-west-2');
    await new FileVaultStore(join(dr.dir, 'vault')).put('data/packs/aa/aa01', Buffer.alloc(10));
    const c = cli();
    expect(await c.run('cost', '--local', '--state', primary.dir, '--dr-state', dr.dir, '-o', 'json')).toBe(0);
    const v = (JSON.parse(c.out.join('')) as CostReport).vaults[0]!;
    expect(v.locations.map((l) => [l.role, l.region, l.bytes])).toEqual([
      ['primary', 'us-east-1', 0],
      ['replica', 'us-west-2', 10],
    ]);
  });

  it('refuses --recent under 2, naming the flag and what it allows, exit 1', async () => {
    const { dir } = await localState();
    const err = await cli()
      .run('cost', '--local', '--state', dir, '--recent', '1')
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(CommanderError);
    expect((err as CommanderError).exitCode).toBe(1);
    expect((err as CommanderError).message).toMatch(/option '--recent <n>' argument '1' is invalid\. "1" is not a whole number of at least 2: the rates come from the interval between the oldest and the newest/);
  });

  it('projects the local vault by its net churn: the uploads minus what the recorded retention runs freed', async () => {
    const { dir, catalog } = await localState();
    await new FileVaultStore(join(dir, 'vault')).put('data/packs/aa/aa01', Buffer.alloc(8 * MiB));
    await catalog.createBackup(backupRecord({ backupId: 'nightly-1', startedAt: '2026-11-22T02:00:00.000Z', sizeBytes: 4 * MiB, bytesUploaded: 2 * MiB }));
    await catalog.createBackup(backupRecord({ backupId: 'nightly-2', startedAt: '2026-11-23T02:00:00.000Z', sizeBytes: 5 * MiB, bytesUploaded: 3 * MiB }));
    const run = { executionId: 'x', status: 'Completed' as const, plans: [{ plan: PLAN, kept: 2, expired: [], locksExtended: 0 }], skipped: [], packsDeleted: 1, reportKey: 'r' };
    await catalog.recordRetentionRun({ ...run, runId: 'r-1', now: '2026-11-22T03:00:00.000Z', dryRun: false, bytesFreed: 1 * MiB });
    // A dry run frees nothing, whatever it would have.
    await catalog.recordRetentionRun({ ...run, runId: 'r-2', now: '2026-11-22T04:00:00.000Z', dryRun: true, bytesFreed: 2 * MiB });
    const json = cli();
    const text = cli();

    expect(await json.run('cost', '--local', '--state', dir, '--now', '2026-11-30T03:00:00Z', '--project', '10', '-o', 'json')).toBe(0);
    expect(await text.run('cost', '--local', '--state', dir, '--now', '2026-11-30T03:00:00Z', '--project', '10')).toBe(0);

    const v = (JSON.parse(json.out.join('')) as CostReport).vaults[0]!;
    expect(v.projection).toMatchObject({ churn: 'net', retentionRuns: 1, uploadedBytesPerDay: 3 * MiB, freedBytesPerDay: MiB, netBytesPerDay: 2 * MiB });
    expect(v.projection!.locations[0]!.bytes).toBe(8 * MiB + 20 * MiB);
    expect(text.out.join('')).toContain('In 10 days at a net +2.0MiB a day (3.0MiB uploaded, 1.0MiB freed by 1 retention run(s), 2026-11-22 to 2026-11-23); DR replicas grow by the uploads (deletes are not replicated):');
  });

  it('refuses a DR state directory that is not linked', async () => {
    const primary = await localState();
    const other = await localState();
    await expect(cli().run('cost', '--local', '--state', primary.dir, '--dr-state', other.dir)).rejects.toThrow(/is not linked as a DR region/);
  });

  it('refuses a price file that does not validate, naming the file and the field', async () => {
    const { dir } = await localState();
    const { writeFile } = await import('node:fs/promises');
    const file = join(dir, 'prices.json');
    await writeFile(file, JSON.stringify({ currency: 'USD', source: 'x', takenAt: '2026-01-01', regions: { 'us-east-1': {} } }));
    await expect(cli().run('cost', '--local', '--state', dir, '--prices', file)).rejects.toThrow(new RegExp(`price file ${file} is not valid[^]*regions\\.us-east-1\\.storagePerGbMonth`));
  });
});

describe('milvus-guard cost (AWS)', () => {
  const { ddb } = mockAwsStart('unused');
  const s3 = mockClient(S3Client);

  it('lists the primary bucket and the replica bucket named from the account, and reads the catalog by plan', async () => {
    s3.reset();
    ddb.on(QueryCommand).resolves({ Items: [backupRecord({ sizeBytes: 1024 ** 4 })] });
    s3.on(ListObjectsV2Command, { Bucket: 'milvus-guard-primary-123456789012-us-east-1' })
      .resolves({ Contents: [{ Key: 'data/packs/aa/aa01', Size: 1024 ** 3, StorageClass: 'STANDARD_IA' }] })
      .on(ListObjectsV2Command, { Bucket: 'milvus-guard-primary-dr-123456789012-us-west-2' })
      .resolves({ Contents: [{ Key: 'data/packs/aa/aa01', Size: 1024 ** 3, StorageClass: 'STANDARD' }] });
    const c = cli();
    expect(await c.run('cost', '-c', 'examples/production.yaml', '--now', '2026-11-30T03:00:00Z', '-o', 'json')).toBe(0);
    const v = (JSON.parse(c.out.join('')) as CostReport).vaults[0]!;
    expect(v.locations.map((l) => [l.role, l.region, l.monthlyStorageUsd])).toEqual([
      ['primary', 'us-east-1', 0.0125],
      ['replica', 'us-west-2', 0.023],
    ]);
    expect(s3.commandCalls(ListObjectsV2Command).map((x) => x.args[0].input.Bucket).sort()).toEqual(['milvus-guard-primary-123456789012-us-east-1', 'milvus-guard-primary-dr-123456789012-us-west-2']);
    expect(ddb.commandCalls(QueryCommand)).toHaveLength(1);
    expect(v.fullCopies[0]).toMatchObject({ copies: 23, bytes: 23 * 1024 ** 4, gb: 23 * 1024, pricePerGbMonth: 0.023 });
    expect(v.fullCopies[0]!.monthlyUsd).toBeCloseTo(23 * 1024 * 0.023, 6);
  });

  it('reports a replica it cannot list instead of failing', async () => {
    s3.reset();
    ddb.on(QueryCommand).resolves({ Items: [] });
    s3.on(ListObjectsV2Command, { Bucket: 'milvus-guard-primary-123456789012-us-east-1' })
      .resolves({ Contents: [] })
      .on(ListObjectsV2Command, { Bucket: 'milvus-guard-primary-dr-123456789012-us-west-2' })
      .rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));
    const c = cli();
    expect(await c.run('cost', '-c', 'examples/production.yaml', '--now', '2026-11-30T03:00:00Z')).toBe(0);
    expect(c.out.join('')).toMatch(/replica in us-west-2 not listed: s3:\/\/milvus-guard-primary-dr-123456789012-us-west-2.*Access Denied/);
  });
});

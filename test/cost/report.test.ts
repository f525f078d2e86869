import { describe, expect, it } from '@jest/globals';
import { BackupRecord, type BackupRecordInput } from '../../core/catalog/record.js';
import type { VaultInventory } from '../../core/cost/inventory.js';
import { DEFAULT_PRICES } from '../../core/cost/prices.js';
import { costReport, GIB, type CostPlanInput, type CostVaultInput } from '../../core/cost/report.js';

const NOW = new Date('2026-11-30T03:00:00Z');
const TB = 1024 * GIB;
const SEED: CostPlanInput = {
  name: 'nightly',
  retention: { latest: 7, weekly: 4, dayOfWeek: 'Sunday', monthly: 12, dateOfMonth: 1, yearly: 2, monthOfYear: 'January', maxAgeDays: 730 },
  timeZone: 'UTC',
  schedule: { cron: ['0 2 * * *'], timeZone: 'UTC' },
};
const NO_YEARLY: CostPlanInput = { ...SEED, retention: { latest: 7, weekly: 4, dayOfWeek: 'Sunday', monthly: 12, dateOfMonth: 1 } };

function backup(id: string, startedAt: string, over: Partial<BackupRecordInput> = {}): BackupRecord {
  return BackupRecord.parse({ backupId: id, plan: 'nightly', cluster: 'prod', namespace: 'vector-db', vault: 'primary', executionId: `exec-${id}`, status: 'Available', startedAt, ...over });
}

function inventory(over: Partial<VaultInventory> = {}): VaultInventory {
  return { role: 'primary', region: 'us-east-1', url: 's3://primary', classes: [], objects: 0, bytes: 0, packs: { objects: 0, bytes: 0 }, backupObjects: {}, ...over };
}

function vault(over: Partial<CostVaultInput> = {}): CostVaultInput {
  return { name: 'primary', region: 'us-east-1', inventories: [inventory()], plans: [SEED], backups: [], ...over };
}

const report = (v: CostVaultInput, extra: { projectDays?: number } = {}) => costReport({ now: NOW, prices: DEFAULT_PRICES, vaults: [v], recentBackups: 10, ...extra });

describe('costReport: the full-copy comparison', () => {
  it("prices the seed blog's policy (7 daily + 4 weekly + 12 monthly) of a 1 TiB backup as 22 copies, 22 TiB, 22,528 GB × $0.023 = $518.14 a month", () => {
    const r = report(vault({ plans: [NO_YEARLY], backups: [backup('b1', '2026-11-30T02:00:00Z', { sizeBytes: TB })] }));
    const full = r.vaults[0]!.fullCopies[0]!;
    // The calculator keeps 22 distinct backups (a Sunday among the latest 7 also stands for its week): 22 TiB.
    // Not the blog's 17.4 TB ≈ $400: see core/cost/full-copies.ts and test/cost/full-copies.test.ts.
    expect(full).toMatchObject({ plan: 'nightly', newestBackup: 'b1', copies: 22, ruleSum: 23, bytes: 22 * TB, gb: 22_528, pricePerGbMonth: 0.023 });
    expect(full.tiers).toEqual([
      { tier: 'latest', rule: 7, copies: 7 },
      { tier: 'weekly', rule: 4, copies: 3 },
      { tier: 'monthly', rule: 12, copies: 12 },
    ]);
    expect(full.monthlyUsd).toBeCloseTo(518.144, 3);
  });

  it("takes the plan's whole retention policy, yearly backups included", () => {
    const r = report(vault({ backups: [backup('b1', '2026-11-30T02:00:00Z', { sizeBytes: TB })] }));
    expect(r.vaults[0]!.fullCopies[0]).toMatchObject({ copies: 23, ruleSum: 25 });
  });

  it("sizes a full copy by the plan's newest Available backup, not a failed or older one", () => {
    const r = report(
      vault({
        backups: [backup('old', '2026-11-28T02:00:00Z', { sizeBytes: 5 * GIB }), backup('new', '2026-11-29T02:00:00Z', { sizeBytes: 2 * GIB }), backup('failed', '2026-11-30T02:00:00Z', { status: 'Failed', sizeBytes: 9 * GIB })],
      }),
    );
    expect(r.vaults[0]!.fullCopies[0]).toMatchObject({ newestBackup: 'new', fullCopyBytes: 2 * GIB });
  });
});

describe('costReport: storage', () => {
  it('prices each storage class of each copy at its region list price', () => {
    const primary = inventory({ classes: [{ storageClass: 'STANDARD', objects: 10, bytes: 100 * GIB }, { storageClass: 'GLACIER_IR', objects: 5, bytes: 1000 * GIB }], objects: 15, bytes: 1100 * GIB });
    const replica = inventory({ role: 'replica', region: 'us-west-2', url: 's3://replica', classes: [{ storageClass: 'STANDARD', objects: 15, bytes: 1100 * GIB }], objects: 15, bytes: 1100 * GIB });
    const v = report(vault({ inventories: [primary, replica] })).vaults[0]!;
    expect(v.locations[0]!.classes.map((c) => [c.storageClass, c.monthlyUsd])).toEqual([
      ['STANDARD', 100 * 0.023],
      ['GLACIER_IR', 1000 * 0.004],
    ]);
    expect(v.locations[1]!.monthlyStorageUsd).toBeCloseTo(1100 * 0.023, 9);
    expect(v.storageMonthlyUsd).toBeCloseTo(2.3 + 4 + 25.3, 9);
  });

  it('prices a class the table does not know as S3 Standard and says so', () => {
    const v = report(vault({ inventories: [inventory({ classes: [{ storageClass: 'REDUCED_REDUNDANCY', objects: 1, bytes: GIB }], objects: 1, bytes: GIB })] })).vaults[0]!;
    expect(v.locations[0]!.classes[0]).toMatchObject({ label: 'REDUCED_REDUNDANCY (priced as S3 Standard)', monthlyUsd: 0.023 });
  });
});

describe('costReport: requests and churn', () => {
  const primary = inventory({ objects: 2000, packs: { objects: 100, bytes: 100 * 16 * 1024 * 1024 }, backupObjects: { b2: 12, b3: 8 } });
  const replica = inventory({ role: 'replica', region: 'us-west-2', url: 's3://replica' });
  // Three daily backups: the two after the oldest uploaded 320 MiB (20 packs) and 160 MiB (10 packs) plus 5 copied objects.
  const backups = [
    backup('b1', '2026-11-27T02:00:00Z', { bytesUploaded: 50 * GIB }),
    backup('b2', '2026-11-28T02:00:00Z', { bytesUploaded: 320 * 1024 * 1024, components: [{ pvc: 'etcd', role: 'etcd', status: 'Exported', bytesUploaded: 320 * 1024 * 1024 }] }),
    backup('b3', '2026-11-29T02:00:00Z', {
      bytesUploaded: 160 * 1024 * 1024 + 1000,
      objectCopy: { source: { bucket: 'b', rootPath: 'files' }, key: 'k', sha256: 'a'.repeat(64), size: 1, pages: 1, objects: 50, bytes: 10_000, copied: 5, bytesCopied: 1000 },
    }),
  ];

  it("estimates PUTs per backup from its packs, its copied objects and the objects it owns, over the interval since the oldest recent backup", () => {
    const r = report(vault({ inventories: [primary, replica], backups })).vaults[0]!.requests!;
    expect(r.backups).toEqual(['b3', 'b2', 'b1']);
    // b2: 20 packs + 12 own objects; b3: 10 packs + 5 copies + 8 own objects.
    expect(r.putsPerBackup).toBe((32 + 23) / 2);
    expect(r.backupsPerMonth).toBeCloseTo(30.4375, 9);
    expect(r.putsPerMonth).toBeCloseTo(27.5 * 30.4375, 9);
    expect(r.listsPerMonth).toBeCloseTo(2 * 30.4375, 9);
    expect(r.replicationPutsPerMonth).toBeCloseTo(r.putsPerMonth, 9);
    expect(r.requestsMonthlyUsd).toBeCloseTo(((2 * r.putsPerMonth + r.listsPerMonth) / 1000) * 0.005, 12);
  });

  it('charges inter-region transfer for the bytes uploaded, once per replica', () => {
    const r = report(vault({ inventories: [primary, replica], backups })).vaults[0]!.requests!;
    const perDay = (320 * 1024 * 1024 + 160 * 1024 * 1024 + 1000) / 2;
    expect(r.uploadedBytesPerDay).toBeCloseTo(perDay, 6);
    expect(r.transferMonthlyUsd).toBeCloseTo(((perDay * 30.4375) / GIB) * 0.02, 9);
  });

  const tenGib = inventory({ bytes: 10 * GIB, classes: [{ storageClass: 'STANDARD', objects: 1, bytes: 10 * GIB }], objects: 1 });

  it('projects gross uploads, and says so (an upper bound), when no retention run freed anything in the rates\' window', () => {
    const v = report(vault({ inventories: [tenGib, replica], backups }), { projectDays: 30 }).vaults[0]!;
    const added = v.requests!.uploadedBytesPerDay * 30;
    expect(v.projection).toMatchObject({ churn: 'gross', retentionRuns: 0, freedBytesPerDay: 0, netBytesPerDay: v.requests!.uploadedBytesPerDay });
    expect(v.projection!.locations.map((l) => l.bytes)).toEqual([10 * GIB + added, added]);
    expect(v.projection!.monthlyStorageUsd).toBeCloseTo(((10 * GIB + 2 * added) / GIB) * 0.023, 9);
  });

  it("projects the primary by the net churn (uploads minus what retention runs freed in the rates' window) and a replica by the uploads alone", () => {
    const retentionRuns = [
      { now: '2026-11-27T01:00:00.000Z', bytesFreed: 1000 * GIB }, // before the window (b1 started at 02:00): not counted
      { now: '2026-11-27T03:00:00.000Z', bytesFreed: 100 * 1024 * 1024 },
      { now: '2026-11-28T03:00:00.000Z', bytesFreed: 60 * 1024 * 1024 },
      { now: '2026-11-29T03:00:00.000Z', bytesFreed: 1000 * GIB }, // after the newest backup started: not counted
    ];
    const v = report(vault({ inventories: [tenGib, replica], backups, retentionRuns }), { projectDays: 30 }).vaults[0]!;
    const uploaded = v.requests!.uploadedBytesPerDay;
    const freed = (160 * 1024 * 1024) / 2;

    expect(v.requests!.window).toEqual({ from: '2026-11-27T02:00:00Z', to: '2026-11-29T02:00:00Z', days: 2 });
    expect(v.projection).toMatchObject({ churn: 'net', retentionRuns: 2, freedBytesPerDay: freed, netBytesPerDay: uploaded - freed });
    expect(v.projection!.locations.map((l) => l.bytes)).toEqual([10 * GIB + (uploaded - freed) * 30, uploaded * 30]);
  });

  it('never projects a primary that retention shrinks below empty', () => {
    const v = report(vault({ inventories: [inventory({ bytes: GIB, objects: 1 })], backups, retentionRuns: [{ now: '2026-11-28T03:00:00.000Z', bytesFreed: 100 * GIB }] }), { projectDays: 365 }).vaults[0]!;
    expect(v.projection!.netBytesPerDay).toBeLessThan(0);
    expect(v.projection!.locations[0]!.bytes).toBe(0);
    expect(v.projection!.monthlyStorageUsd).toBe(0);
  });

  it('takes the rates from exactly as many recent backups as asked, two at least', () => {
    expect(costReport({ now: NOW, prices: DEFAULT_PRICES, vaults: [vault({ backups })], recentBackups: 2 }).vaults[0]!.requests!.backups).toEqual(['b3', 'b2']);
    expect(() => costReport({ now: NOW, prices: DEFAULT_PRICES, vaults: [vault({ backups })], recentBackups: 1 })).toThrow(/recentBackups must be a whole number of at least 2, not 1/);
  });

  it('estimates no rate, so no requests and no projection, from fewer than two Available backups', () => {
    const v = report(vault({ backups: [backups[0]!] }), { projectDays: 30 }).vaults[0]!;
    expect(v.requests).toBeUndefined();
    expect(v.projection).toBeUndefined();
    expect(v.monthlyUsd).toBe(v.storageMonthlyUsd);
  });

  it('states how every number was estimated', () => {
    expect(report(vault()).basis.join('\n')).toMatch(/PUTs per backup[^]*LISTs[^]*not included: GETs/);
  });
});

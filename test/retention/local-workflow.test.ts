import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { BackupRecord } from '../../core/catalog/record.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { verifyVault } from '../../core/datamover/verify.js';
import { kubeConfigFromFile, makeKubeClients } from '../../core/kube/connect.js';
import type { RetentionReport } from '../../core/retention/contracts.js';
import type { RetentionTimings } from '../../core/retention/workflow.js';
import { holdBackup, releaseBackup } from '../../core/retention/hold.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backupPrefix, volumeSummaryKey } from '../../core/vault/layout.js';
import { localCatalog, localPaths, runLocalBackup, runLocalRetention } from '../../local/workflows/runner.js';
import { NAMESPACE, PLAN, startSeededCluster, type SeededCluster } from '../backup/helpers.js';
import { publishedEventTypes } from '../events/published.js';
import { packsOf } from './helpers.js';

// The retention workflow's real ASL and handlers on the embedded default, over a history of
// backups taken at fixed clocks: latest 2 on a daily schedule, a vault floor of 7 days. The
// second backup carries a file no other backup has, so its pack is referenced by it alone.

// Dates ahead of the real clock: the data-mover Jobs are processes of their own, on the real
// clock, and refuse an Object Lock date in the past (S3 would).
const day = (d: number, hour = 2) => new Date(Date.UTC(2031, 10, d, hour));
let c: SeededCluster;
let config: Config;
const ids: string[] = [];

async function backupAt(when: Date): Promise<string> {
  const result = await runLocalBackup({ stateDir: c.stateDir, config, input: { plan: PLAN }, now: () => when, untilPoll: () => c.cluster.settle() });
  expect(result.error).toBeUndefined();
  return (result.output as { backupId: string }).backupId;
}

async function retentionAt(when: Date, input: Record<string, unknown> = { plan: PLAN }, retentionTimings: Partial<RetentionTimings> = {}): Promise<RetentionReport> {
  const result = await runLocalRetention({ stateDir: c.stateDir, config, input, now: () => when, untilPoll: () => c.cluster.settle(), retentionTimings });
  expect(result).toMatchObject({ status: 'SUCCEEDED' });
  return result.output as RetentionReport;
}

const record = async (id: string): Promise<BackupRecord> => (await localCatalog(c.stateDir).getBackup(id))!;
const vaultAt = (when: Date) => new FileVaultStore(localPaths(c.stateDir).vault, { now: () => when });
async function keysOf(id: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of vaultAt(day(1)).list(backupPrefix(id))) keys.push(o.key);
  return keys;
}

/** The directory behind the MinIO volume of the seeded Milvus. */
async function minioDir(): Promise<string> {
  const kube = makeKubeClients(kubeConfigFromFile(localPaths(c.stateDir).kubeconfig));
  const claims = await kube.core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE });
  const claim = claims.items.find((p) => /minio/.test(p.metadata!.name!))!;
  return c.cluster.dirs.volume(claim.spec!.volumeName!);
}

beforeAll(async () => {
  c = await startSeededCluster();
  const example = await loadConfigFile('examples/production.yaml');
  config = { ...example, plans: example.plans.map((p) => ({ ...p, retention: { latest: 2 } })) };
  const extra = join(await minioDir(), 'only-in-the-second-backup.bin');
  ids.push(await backupAt(day(1)));
  await writeFile(extra, randomBytes(600_000));
  ids.push(await backupAt(day(2)));
  await rm(extra);
  ids.push(await backupAt(day(3)));
  ids.push(await backupAt(day(4)));
}, 300_000);

afterAll(async () => {
  await c?.dispose();
});

describe('the retention workflow on the embedded default', () => {
  it('locks each backup at creation until the earliest date its policy could expire it, raised to the vault floor', async () => {
    // latest 2 on a daily schedule would free the first backup on day 3; the vault's 7 days win.
    expect((await record(ids[0]!)).retainUntil).toBe(day(8).toISOString());
  });

  it('a dry run decides and changes nothing', async () => {
    const report = await retentionAt(day(4, 12), { plan: PLAN, dryRun: true });

    expect(report.plans[0]!.expired.map((e) => e.backupId)).toEqual([ids[1], ids[0]]);
    expect(report.gc.skipped).toBe('dry run');
    expect((await record(ids[0]!)).status).toBe('Available');
  });

  it('expires what latest 2 no longer keeps, but leaves objects under Object Lock for a later run', async () => {
    const report = await retentionAt(day(4, 12));

    const plan = report.plans[0]!;
    expect(plan.kept.map((k) => [k.backupId, k.rules])).toEqual([
      [ids[3], ['latest', 'newest-available']],
      [ids[2], ['latest']],
    ]);
    expect(plan.expired).toEqual([
      { backupId: ids[1], startedAt: day(2).toISOString(), reason: expect.any(String), cleared: false },
      { backupId: ids[0], startedAt: day(1).toISOString(), reason: expect.any(String), cleared: false },
    ]);
    expect(plan.objectsLocked).toBeGreaterThan(0);
    expect(report.packsDeleted).toBe(0);
    expect(await record(ids[0]!)).toMatchObject({ status: 'Expired', expired: { at: day(4, 12).toISOString(), cleared: false } });
    expect((await keysOf(ids[0]!)).length).toBeGreaterThan(0);
    // The plan lock is free again: a backup may start.
    expect(await localCatalog(c.stateDir).lockHolder(PLAN, day(4, 12))).toBeUndefined();
  });

  it('once the locks have passed, deletes the expired backups and the pack only one of them referenced; the kept ones still verify byte for byte', async () => {
    // No time for lock extensions: every ApplyPlan call extends one object and hands the rest
    // to the next through the workflow's MorePlan loop, as a very large backup would.
    const report = await retentionAt(day(10, 12), { plan: PLAN }, { extendBudgetSeconds: 0 });

    expect(report.plans[0]!.expired).toEqual([]);
    expect(await record(ids[0]!)).toMatchObject({ status: 'Expired', expired: { cleared: true } });
    expect(await record(ids[1]!)).toMatchObject({ status: 'Expired', expired: { cleared: true } });
    expect(await keysOf(ids[0]!)).toEqual([]);
    expect(await keysOf(ids[1]!)).toEqual([]);
    expect(report.packsDeleted).toBeGreaterThanOrEqual(1);
    expect(report.bytesFreed).toBeGreaterThanOrEqual(600_000);

    const runs = await localCatalog(c.stateDir).listRetentionRuns();
    expect(runs.map((r) => r.now)).toEqual([day(10, 12).toISOString(), day(4, 12).toISOString()]);
    expect(runs[0]).toMatchObject({ status: 'Completed', packsDeleted: report.packsDeleted, bytesFreed: report.bytesFreed, reportKey: `retention/${report.runId}.json` });
    expect(JSON.parse((await vaultAt(day(10, 12)).get(runs[0]!.reportKey)).toString())).toEqual(report);

    const verified = await verifyVault({ vault: vaultAt(day(10, 12)), readData: true });
    expect(verified.problems).toEqual([]);
    expect(verified.backups).toBe(2);
  });

  it('extends the locks of kept backups, the newest (kept until further notice) to six days from the run, never shortening one', async () => {
    const newest = await record(ids[3]!);
    // Its "latest" rule ends at day 12 (the second scheduled run after day 10, 12:00), but as
    // the newest available backup it is kept with no end date: locked for six days from the
    // run, since its lock (day 11) would end within three days.
    const locked = day(16, 12).toISOString();
    expect(newest.retainUntil).toBe(locked);
    expect(newest.retention).toEqual({ rules: ['latest', 'newest-available'], evaluatedAt: day(10, 12).toISOString() });
    const head = await vaultAt(day(10, 12)).head(`${backupPrefix(ids[3]!)}backup.json`);
    expect(head?.retainUntil?.toISOString()).toBe(locked);
    // Every object it needs, the last packs too, though the run extended one object per call.
    const vault = vaultAt(day(10, 12));
    const objects = [...(await keysOf(ids[3]!))];
    for (const { pvc } of newest.components) objects.push(volumeSummaryKey(ids[3]!, pvc), ...(await packsOf(vault, ids[3]!, pvc)));
    expect(objects.length).toBeGreaterThan(10);
    for (const key of objects) expect([key, (await vault.head(key))?.retainUntil?.toISOString()]).toEqual([key, locked]);
    // The other kept one, by "latest" alone, until the date that rule could drop it.
    expect((await record(ids[2]!)).retainUntil).toBe(day(11).toISOString());
  });
});

describe('a legal hold on the embedded default', () => {
  it('keeps a held backup past its expiry, and its objects with it; once released the next run expires it', async () => {
    const vault = vaultAt(day(10, 12));
    await holdBackup({ catalog: localCatalog(c.stateDir), vault, now: () => day(10, 12) }, ids[2]!, 'audit 2031-17');
    ids.push(await backupAt(day(11)));
    ids.push(await backupAt(day(12)));

    const held = await retentionAt(day(12, 12));

    expect(held.plans[0]!.kept.map((k) => [k.backupId, k.rules])).toEqual([
      [ids[5], ['latest', 'newest-available']],
      [ids[4], ['latest']],
      [ids[2], ['hold']],
    ]);
    expect(held.plans[0]!.expired.map((e) => e.backupId)).toEqual([ids[3]]);
    expect(await record(ids[2]!)).toMatchObject({ status: 'Available', hold: { reason: 'audit 2031-17' } });

    await releaseBackup({ catalog: localCatalog(c.stateDir), vault: vaultAt(day(12, 12)), now: () => day(12, 12) }, ids[2]!);
    const released = await retentionAt(day(20, 12));

    expect(released.plans[0]!.expired.map((e) => e.backupId)).toEqual([ids[2]]);
    expect(await record(ids[2]!)).toMatchObject({ status: 'Expired', expired: { cleared: true } });
    const verified = await verifyVault({ vault: vaultAt(day(20, 12)), readData: true });
    expect(verified.problems).toEqual([]);
    expect(verified.backups).toBe(2);
  });

  it('published Backup Available and Retention Completed events, each as docs/events.md documents it', async () => {
    const types = await publishedEventTypes(c.stateDir);
    expect(types).toContain('Backup Available');
    expect(types).toContain('Retention Completed');
  });
});

/**
 * The retention steps (ApplyPolicy, CollectGarbage) and legal hold over `S3VaultStore`, on real
 * data-mover backups, in two parts:
 *
 * 1. Against s3rver on 127.0.0.1: expiring a backup, deleting its unique packs, and the kept
 *    backup still verifying and restoring byte-exact; tiering's tags. s3rver has no versioning
 *    and no Object Lock (ListObjectVersions and PutObjectLegalHold answer MethodNotAllowed,
 *    GetObjectRetention NotImplemented), so it cannot check that deletes reach every version,
 *    that locked packs stay, lock extension or legal holds: the backups there are written without
 *    a lock, and the records carry a retain-until past any rule's date, so ApplyPolicy asks for no
 *    extension (it would fail with NotImplemented).
 * 2. At the request level (aws-sdk-client-mock), over `InMemoryLockedBucket` (locked-bucket.ts),
 *    a bucket with versioning and Object Lock that answers as S3 does: what those steps send to
 *    the vault bucket in AWS — version deletes, lock refusals, PutObjectRetention, tags, legal
 *    holds — and that no request asks to bypass governance retention.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectRetentionCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  PutObjectTaggingCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { HttpResponse, type HttpRequest } from '@smithy/protocol-http';
import { mockClient } from 'aws-sdk-client-mock';
import S3rver from 's3rver';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan, type ResolvedPlan } from '../../core/config/resolve.js';
import type { Config } from '../../core/config/schema.js';
import { backupVolume } from '../../core/datamover/backup.js';
import { restoreVolume } from '../../core/datamover/restore.js';
import { verifyVault } from '../../core/datamover/verify.js';
import type { GcProgress, PlanOutcome, RetentionRun } from '../../core/retention/contracts.js';
import { holdBackup, releaseBackup } from '../../core/retention/hold.js';
import { applyPolicy, collectGarbageStep, recordArchivable } from '../../core/retention/workflow.js';
import { backupPrefix, packKey, volumeSummaryKey } from '../../core/vault/layout.js';
import { S3VaultStore } from '../../core/vault/s3-store.js';
import { ARCHIVABLE_TAG, type VaultStore } from '../../core/vault/store.js';
import { backupInput } from '../backup/catalog-helpers.js';
import { SMALL_CHUNKS, snapshotTree, tempDir } from '../datamover/helpers.js';
import { packKeys, packsOf } from './helpers.js';
import { InMemoryLockedBucket } from './locked-bucket.js';

const PLAN = 'milvus-production-backup';
const DAY = 86_400_000;
const T0 = new Date('2031-01-05T02:00:00.000Z');
const at = (days: number) => new Date(T0.getTime() + days * DAY);
/** Past every lock the backups below are written with (a week, the vault's floor). */
const LATER = at(27);
const VOLUME = 'minio';

let config: Config;
let latestOne: ResolvedPlan;
let monthly: ResolvedPlan;

beforeAll(async () => {
  config = await loadConfigFile('examples/production.yaml');
  const withRetention = (retention: Config['plans'][number]['retention']): ResolvedPlan => resolvePlan({ ...config, plans: config.plans.map((p) => ({ ...p, retention })) }, PLAN);
  latestOne = withRetention({ latest: 1 });
  monthly = withRetention({ latest: 1, monthly: 2, dateOfMonth: 1 });
});

const run = (now: Date): RetentionRun => ({ runId: 'r', executionId: 'e', now: now.toISOString(), dryRun: false, vault: 'primary', plans: [PLAN], locked: [PLAN], skipped: [], collectGarbage: true });
const timings = { lockTtlSeconds: 60, gcSlicePrefixes: 256, keepSnapshots: 1 };
const collect = (vault: VaultStore, now: Date, plans: PlanOutcome[] = []): Promise<GcProgress> => collectGarbageStep({ vault, catalog: new InMemoryCatalog(), now: () => now, retention: timings }, run(now), undefined, plans);

/** A source tree `data/<name>` per file, kept for the byte-exact comparison after a restore. */
async function sourceOf(files: Record<string, Buffer>): Promise<string> {
  const dir = await tempDir('retention-s3');
  await mkdir(join(dir, 'data'));
  for (const [name, body] of Object.entries(files)) await writeFile(join(dir, 'data', name), body);
  return dir;
}

/** A data-mover backup of `files` into `vault` and its Available record (locked until `retainUntil` when given). */
async function backup(vault: VaultStore, catalog: InMemoryCatalog, id: string, startedAt: Date, files: Record<string, Buffer>, lock: { retainUntil?: Date; recordUntil?: Date } = {}): Promise<string> {
  const source = await sourceOf(files);
  await backupVolume({ source, vault, volume: VOLUME, backupId: id, now: startedAt, chunker: SMALL_CHUNKS, packSize: 32 * 1024, workers: 1, ...(lock.retainUntil ? { retainUntil: lock.retainUntil } : {}) });
  const until = lock.recordUntil ?? lock.retainUntil;
  await catalog.createBackup({
    ...backupInput(id, startedAt.toISOString()),
    status: 'Available',
    components: [{ pvc: VOLUME, role: 'object-storage', status: 'Exported' }],
    ...(until ? { retainUntil: until.toISOString() } : {}),
  });
  return source;
}

/** The pack keys backup `id`'s index references. */
const minus = (a: Set<string>, b: Set<string>): string[] => [...a].filter((k) => !b.has(k)).sort();

// ---- 1. s3rver ----------------------------------------------------------------------------

describe('over S3 on s3rver (no versioning, no Object Lock)', () => {
  const KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  let server: S3rver;
  let endpoint: string;
  let seq = 0;
  let vault: S3VaultStore;
  let catalog: InMemoryCatalog;

  beforeAll(async () => {
    server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: await tempDir('s3rver-retention'), configureBuckets: [{ name: 'vault', configs: [] }] });
    const { port } = await server.run();
    endpoint = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await server?.close();
  });

  beforeEach(() => {
    // Three attempts, not one: s3rver answers a DeleteObjects whose keys share a directory
    // (`data/packs/fe/…` twice) with InternalError, every time — its deletes run in parallel and
    // race to remove the emptied directory (s3rver lib/stores/filesystem.js deleteObject). The
    // product's client retries a 500 as it would S3's own InternalError (10 attempts by default),
    // and the retry finds the keys gone. With one attempt this test failed whenever two random
    // packs landed in the same prefix.
    vault = new S3VaultStore({ bucket: 'vault', prefix: `t${++seq}`, endpoint, region: 'us-east-1', credentials: KEYS, checksums: 'WHEN_REQUIRED', maxAttempts: 3, now: () => LATER });
    catalog = new InMemoryCatalog();
  });

  // No Object Lock on s3rver: the records say the backups are locked past any rule's date, so
  // ApplyPolicy finds nothing to extend (the extension is checked at the request level below).
  const noExtension = { recordUntil: new Date('2040-01-01T00:00:00.000Z') };

  it('expires the older backup, deletes the packs only it referenced, and the kept backup verifies and restores byte-exact', async () => {
    const shared = randomBytes(150_000);
    await backup(vault, catalog, 'old', T0, { 'shared.bin': shared, 'gone.bin': randomBytes(150_000) }, noExtension);
    const kept = await backup(vault, catalog, 'new', at(1), { 'shared.bin': shared, 'own.bin': randomBytes(40_000) }, noExtension);
    const needed = await packsOf(vault, 'new');
    const onlyOld = minus(await packsOf(vault, 'old'), needed);
    const before = await packKeys(vault);

    const outcome = await applyPolicy({ catalog, vault }, run(LATER), latestOne, await catalog.listBackups(), { keepSnapshots: 1 });
    const gc = await collect(vault, LATER);

    expect(outcome).toMatchObject({ expired: [{ backupId: 'old', cleared: true }], locksExtended: 0, objectsLocked: 0, objectsFailed: 0, errors: [] });
    expect(await catalog.getBackup('old')).toMatchObject({ status: 'Expired', expired: { cleared: true } });
    expect(onlyOld.length).toBeGreaterThan(0);
    expect(gc).toMatchObject({ packsScanned: before.length, packsDeleted: onlyOld.length, packsLocked: 0, packsFailed: 0, errors: [] });
    expect(gc.bytesFreed).toBeGreaterThan(0);
    expect(await packKeys(vault)).toEqual(minus(new Set(before), new Set(onlyOld)));
    const left: string[] = [];
    for await (const o of vault.list(backupPrefix('old'))) left.push(o.key);
    expect(left).toEqual([]);
    expect(await vault.head(volumeSummaryKey('old', VOLUME))).toBeUndefined();

    expect((await verifyVault({ vault, readData: true, concurrency: 2 })).problems).toEqual([]);
    const target = join(await tempDir('retention-s3-restore'), 'restored');
    await restoreVolume({ vault, volume: VOLUME, backupId: 'new', target, workers: 0 });
    expect(await snapshotTree(target)).toEqual(await snapshotTree(kept));
  });

  it("takes a pack's age from S3's LastModified: one written just now is kept as young, and deleted once a run is a day later", async () => {
    const key = packKey('5a'.repeat(16));
    await vault.put(key, Buffer.from('an unreferenced pack'));
    const listed = [];
    for await (const o of vault.list(key)) listed.push(o);
    // s3rver stamps the object with the real time of the PUT, as S3 does.
    const written = listed[0]!.lastModified!;
    expect(Math.abs(written.getTime() - Date.now())).toBeLessThan(3_600_000);

    expect(await collect(vault, new Date(written.getTime() + 3_600_000))).toMatchObject({ packsDeleted: 0, packsYoung: 1 });
    expect(await packKeys(vault)).toEqual([key]);
    expect(await collect(vault, new Date(written.getTime() + 25 * 3_600_000))).toMatchObject({ packsDeleted: 1, packsYoung: 0 });
    expect(await packKeys(vault)).toEqual([]);
  });

  it('tags archivable, as tags S3 keeps, the packs only a backup that left the hot set references', async () => {
    const shared = randomBytes(100_000);
    await backup(vault, catalog, 'first', new Date('2031-01-01T02:00:00.000Z'), { 'shared.bin': shared, 'only-first.bin': randomBytes(100_000) }, noExtension);
    await backup(vault, catalog, 'second', new Date('2031-01-02T02:00:00.000Z'), { 'shared.bin': shared }, noExtension);
    const now = new Date('2031-01-02T12:00:00.000Z');

    const outcome = await applyPolicy({ catalog, vault }, run(now), monthly, await catalog.listBackups(), { keepSnapshots: 1 });
    const gc = await collect(vault, now, [outcome]);

    expect(outcome).toMatchObject({ hot: ['second'], cooled: ['first'], expired: [] });
    const archivable = minus(await packsOf(vault, 'first'), await packsOf(vault, 'second'));
    expect(gc).toMatchObject({ packsArchivable: archivable.length, packsDeleted: 0 });
    for (const key of await packKeys(vault)) expect([key, await vault.isArchivable(key)]).toEqual([key, archivable.includes(key)]);
  });
});

// ---- 2. request level: a versioned, Object-Locked bucket --------------------------------------

describe('at the request level, on a versioned bucket with Object Lock', () => {
  const client = new S3Client({ region: 'eu-west-1' });
  const s3 = mockClient(client);
  const PREFIX = 'milvus/prod';
  const full = (key: string) => `${PREFIX}/${key}`;
  let bucket: InMemoryLockedBucket;
  let vault: S3VaultStore;
  let catalog: InMemoryCatalog;

  /** The inputs of every `Command` the store sent, in order. */
  const inputs = <I extends object>(command: abstract new (input: I) => { input: I }): I[] => s3.commandCalls(command as never).map((c) => c.args[0].input as I);

  beforeEach(() => {
    s3.reset();
    bucket = new InMemoryLockedBucket('vault-bucket', T0);
    bucket.install(s3);
    vault = new S3VaultStore({ bucket: 'vault-bucket', prefix: PREFIX, client, objectLockMode: 'GOVERNANCE', now: () => bucket.now });
    catalog = new InMemoryCatalog();
  });

  /** Two backups a day apart, each locked for the vault's week: "old" has a file of its own, both share one. */
  async function twoBackups(): Promise<{ onlyOld: string[]; needed: Set<string> }> {
    const shared = randomBytes(150_000);
    await backup(vault, catalog, 'old', T0, { 'shared.bin': shared, 'gone.bin': randomBytes(150_000) }, { retainUntil: at(7) });
    bucket.now = at(1);
    await backup(vault, catalog, 'new', at(1), { 'shared.bin': shared }, { retainUntil: at(8) });
    const needed = await packsOf(vault, 'new');
    const onlyOld = minus(await packsOf(vault, 'old'), needed);
    expect(onlyOld.length).toBeGreaterThan(1);
    s3.resetHistory();
    return { onlyOld, needed };
  }

  /** "first" on the 1st (kept monthly once "second" is the latest), "second" on the 2nd; a week's lock each. */
  async function monthlyBackups(options: { keepRequests?: boolean } = {}): Promise<{ onlyFirst: string[]; ofSecond: Set<string>; ofFirst: Set<string> }> {
    const shared = randomBytes(100_000);
    const first = new Date('2031-01-01T02:00:00.000Z');
    const second = new Date('2031-01-02T02:00:00.000Z');
    bucket.now = first;
    await backup(vault, catalog, 'first', first, { 'shared.bin': shared, 'only-first.bin': randomBytes(100_000) }, { retainUntil: new Date(first.getTime() + 7 * DAY) });
    bucket.now = second;
    await backup(vault, catalog, 'second', second, { 'shared.bin': shared }, { retainUntil: new Date(second.getTime() + 7 * DAY) });
    bucket.now = new Date('2031-01-02T12:00:00.000Z');
    const ofFirst = await packsOf(vault, 'first');
    const ofSecond = await packsOf(vault, 'second');
    if (!options.keepRequests) s3.resetHistory();
    return { onlyFirst: minus(ofFirst, ofSecond), ofSecond, ofFirst };
  }

  describe('garbage collection', () => {
    it('deletes every version and delete marker of an unreferenced pack by version id, after listing them, so the data leaves', async () => {
      const { onlyOld, needed } = await twoBackups();
      // A retried upload left an older version of one pack, and an earlier plain delete a marker.
      bucket.addOlder(full(onlyOld[0]!), { marker: true });
      bucket.addOlder(full(onlyOld[0]!));
      const expected = onlyOld.flatMap((k) => bucket.versions(full(k)).map((v) => `${full(k)}@${v.versionId}`)).sort();
      bucket.now = LATER;

      await applyPolicy({ catalog, vault }, run(LATER), latestOne, await catalog.listBackups(), { keepSnapshots: 1 });
      s3.resetHistory();
      const gc = await collect(vault, LATER);

      expect(gc).toMatchObject({ packsDeleted: onlyOld.length, packsLocked: 0, packsFailed: 0, errors: [] });
      const sent = inputs(DeleteObjectsCommand).flatMap((i) => i.Delete!.Objects!);
      expect(sent.every((o) => o.VersionId !== undefined)).toBe(true);
      expect(sent.map((o) => `${o.Key}@${o.VersionId}`).sort()).toEqual(expected);
      expect(inputs(DeleteObjectCommand)).toEqual([]);
      // Listed first: every ListObjectVersions comes before the first DeleteObjects.
      const sentInOrder = s3.calls().map((c) => c.args[0]);
      const lastListing = sentInOrder.findLastIndex((c) => c instanceof ListObjectVersionsCommand);
      expect(lastListing).toBeGreaterThanOrEqual(0);
      expect(lastListing).toBeLessThan(sentInOrder.findIndex((c) => c instanceof DeleteObjectsCommand));
      // Gone, not hidden behind a delete marker; every pack "new" needs is whole.
      for (const k of onlyOld) expect(bucket.versions(full(k))).toEqual([]);
      for (const k of needed) expect(bucket.current(full(k))).toBeDefined();
      expect((await verifyVault({ vault, readData: true, concurrency: 2 })).problems).toEqual([]);
    });

    it('deletes an expired backup\'s own objects and summary by version id too', async () => {
      await twoBackups();
      const own = bucket.allKeys(full(backupPrefix('old')));
      bucket.now = LATER;

      const outcome = await applyPolicy({ catalog, vault }, run(LATER), latestOne, await catalog.listBackups(), { keepSnapshots: 1 });

      expect(outcome).toMatchObject({ expired: [{ backupId: 'old', cleared: true }], objectsLocked: 0, objectsFailed: 0 });
      const sent = inputs(DeleteObjectsCommand).flatMap((i) => i.Delete!.Objects!);
      expect(sent.every((o) => o.VersionId !== undefined)).toBe(true);
      expect(sent.map((o) => o.Key).sort()).toEqual([...own, full(volumeSummaryKey('old', VOLUME))].sort());
      for (const k of [...own, full(volumeSummaryKey('old', VOLUME))]) expect(bucket.versions(k)).toEqual([]);
    });

    it('expires a backup whose objects are still locked: S3 refuses their versions, the record says not cleared, and a run after the date clears it', async () => {
      await twoBackups();
      const owned = [...bucket.allKeys(full(backupPrefix('old'))), full(volumeSummaryKey('old', VOLUME))];
      bucket.now = at(3); // "old" is locked until at(7)

      const early = await applyPolicy({ catalog, vault }, run(at(3)), latestOne, await catalog.listBackups(), { keepSnapshots: 1 });

      // Its summary is refused first; nothing else of it is tried while the summary stays (it must find its index).
      expect(early).toMatchObject({ expired: [{ backupId: 'old', cleared: false }], objectsDeleted: 0, objectsLocked: 1, objectsFailed: 0, errors: [] });
      expect(await catalog.getBackup('old')).toMatchObject({ status: 'Expired', expired: { cleared: false } });
      for (const k of owned) expect(bucket.current(k)).toBeDefined();
      // Its summary is still there, so its packs are still referenced: garbage collection keeps them.
      expect(await collect(vault, at(3))).toMatchObject({ packsDeleted: 0, packsLocked: 0 });

      bucket.now = LATER;
      const late = await applyPolicy({ catalog, vault }, run(LATER), latestOne, await catalog.listBackups(), { keepSnapshots: 1 });

      expect(late).toMatchObject({ objectsDeleted: owned.length, objectsLocked: 0 });
      expect(await catalog.getBackup('old')).toMatchObject({ status: 'Expired', expired: { cleared: true } });
      for (const k of owned) expect(bucket.versions(k)).toEqual([]);
    });

    it('reports a pack with a version still retained or held as locked, not deleted and not an error, and keeps it readable', async () => {
      const { onlyOld } = await twoBackups();
      const [retained, held] = onlyOld as [string, string];
      // Another backup extended one pack's lock; an older version of another is under legal hold.
      bucket.lock(full(retained), { retainUntil: at(60) });
      bucket.addOlder(full(held), { legalHold: true });
      bucket.now = LATER;
      await applyPolicy({ catalog, vault }, run(LATER), latestOne, await catalog.listBackups(), { keepSnapshots: 1 });
      s3.resetHistory();

      const gc = await collect(vault, LATER);

      expect(gc).toMatchObject({ packsDeleted: onlyOld.length - 2, packsLocked: 2, packsFailed: 0, errors: [] });
      expect(bucket.current(full(retained))).toBeDefined();
      // The held pack's older version was refused, so its current version was not even asked for.
      expect(bucket.current(full(held))).toBeDefined();
      const currentOfHeld = bucket.current(full(held))!.versionId;
      expect(inputs(DeleteObjectsCommand).flatMap((i) => i.Delete!.Objects!).some((o) => o.VersionId === currentOfHeld)).toBe(false);

      // Once the date has passed, the next run deletes the retained pack; the held one waits.
      bucket.now = at(61);
      const next = await collect(vault, at(61));
      expect(next).toMatchObject({ packsDeleted: 1, packsLocked: 1, packsFailed: 0 });
      expect(bucket.versions(full(retained))).toEqual([]);
    });
  });

  describe('lock extension and tiering', () => {
    it('extends a kept backup\'s lock by reading its retention first and sending PutObjectRetention only where the date moves later', async () => {
      const { onlyFirst, ofFirst } = await monthlyBackups();
      // One pack is locked already past the monthly rule's date (a yearly backup shares it, say).
      const farther = onlyFirst[0]!;
      bucket.lock(full(farther), { retainUntil: new Date('2032-06-01T00:00:00.000Z') });
      const before = new Map(bucket.allKeys().map((k) => [k, bucket.current(k)?.retainUntil?.getTime()]));

      const outcome = await applyPolicy({ catalog, vault }, run(bucket.now), monthly, await catalog.listBackups(), { keepSnapshots: 1 });

      const kept = outcome.kept.find((k) => k.backupId === 'first')!;
      expect(kept.rules).toEqual([expect.stringMatching(/^monthly /)]);
      const until = new Date(kept.retainUntil);
      expect(until.getTime()).toBeGreaterThan(new Date('2031-01-08T02:00:00.000Z').getTime());
      const firstObjects = [...bucket.allKeys(full(backupPrefix('first'))), full(volumeSummaryKey('first', VOLUME)), ...[...ofFirst].map(full)];
      const puts = inputs(PutObjectRetentionCommand);
      expect(puts.map((p) => p.Key).sort()).toEqual(firstObjects.filter((k) => k !== full(farther)).sort());
      expect(outcome.locksExtended).toBe(puts.length);
      const calls = s3.calls().map((c) => c.args[0]);
      for (const put of puts) {
        expect(put).toMatchObject({ Retention: { Mode: 'GOVERNANCE', RetainUntilDate: until } });
        expect(put.Retention!.RetainUntilDate!.getTime()).toBeGreaterThan(before.get(put.Key!)!);
        // GetObjectRetention of the same key went first.
        const putAt = calls.findIndex((c) => c instanceof PutObjectRetentionCommand && c.input.Key === put.Key);
        expect(calls.slice(0, putAt).some((c) => c instanceof GetObjectRetentionCommand && c.input.Key === put.Key)).toBe(true);
      }
      // Never shortened: the pack locked farther was read and left alone.
      expect(inputs(GetObjectRetentionCommand).some((g) => g.Key === full(farther))).toBe(true);
      expect(bucket.current(full(farther))!.retainUntil).toEqual(new Date('2032-06-01T00:00:00.000Z'));
      expect((await catalog.getBackup('first'))?.retainUntil).toBe(kept.retainUntil);

      // The next run finds the record's date already there: no retention request at all.
      s3.resetHistory();
      await applyPolicy({ catalog, vault }, run(bucket.now), monthly, await catalog.listBackups(), { keepSnapshots: 1 });
      expect(inputs(GetObjectRetentionCommand)).toEqual([]);
      expect(inputs(PutObjectRetentionCommand)).toEqual([]);
    });

    it('tags milvus-guard-archivable=true once on each pack only the cooled backup references, and never again', async () => {
      const { onlyFirst, ofSecond } = await monthlyBackups();
      const outcome = await applyPolicy({ catalog, vault }, run(bucket.now), monthly, await catalog.listBackups(), { keepSnapshots: 1 });
      s3.resetHistory();

      const gc = await collect(vault, bucket.now, [outcome]);

      expect(ARCHIVABLE_TAG).toBe('milvus-guard-archivable');
      const tagged = inputs(PutObjectTaggingCommand);
      expect(tagged.map((t) => t.Key).sort()).toEqual(onlyFirst.map(full));
      for (const t of tagged) expect(t).toMatchObject({ Bucket: 'vault-bucket', Tagging: { TagSet: [{ Key: 'milvus-guard-archivable', Value: 'true' }] } });
      expect(gc).toMatchObject({ packsArchivable: onlyFirst.length, packsDeleted: 0 });
      for (const k of ofSecond) expect(bucket.current(full(k))!.tags).toEqual([]);

      // FinishRetention records that the cooled backup's packs are tagged.
      await recordArchivable({ catalog }, run(bucket.now), [outcome], gc);
      s3.resetHistory();
      const again = await applyPolicy({ catalog, vault }, run(bucket.now), monthly, await catalog.listBackups(), { keepSnapshots: 1 });
      await collect(vault, bucket.now, [again]);
      expect(inputs(PutObjectTaggingCommand)).toEqual([]);
    });

    // S3 answers GetObjectRetention of an object that never had a retention with
    // NoSuchObjectLockConfiguration and HTTP 404 (pinned in the next test): the store must not
    // take that 404 for a missing object. A bucket without a default retention has such objects.
    it('locks an object that had no retention when its lock is extended', async () => {
      await vault.put('backups/b1/backup.json', Buffer.from('{}'));

      await expect(vault.extendRetention('backups/b1/backup.json', at(30))).resolves.toBe(true);
      expect(bucket.current(full('backups/b1/backup.json'))).toMatchObject({ mode: 'GOVERNANCE', retainUntil: at(30) });
    });

    it('answers GetObjectRetention of an object without a retention as the SDK raises S3\'s answer: NoSuchObjectLockConfiguration, HTTP 404', async () => {
      const xml = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchObjectLockConfiguration</Code><Message>The specified object does not have a ObjectLock configuration</Message></Error>';
      const overHttp = new S3Client({
        region: 'eu-west-1',
        maxAttempts: 1,
        requestHandler: { handle: async () => ({ response: new HttpResponse({ statusCode: 404, headers: { 'content-type': 'application/xml' }, body: Readable.from([Buffer.from(xml)]) }) }) } as never,
      });
      await vault.put('k', Buffer.from('x'));

      const fromS3 = await overHttp.send(new GetObjectRetentionCommand({ Bucket: 'vault-bucket', Key: 'k' })).catch((e: unknown) => e);
      const fromDouble = await client.send(new GetObjectRetentionCommand({ Bucket: 'vault-bucket', Key: full('k') })).catch((e: unknown) => e);

      expect(fromS3).toMatchObject({ name: 'NoSuchObjectLockConfiguration', $metadata: { httpStatusCode: 404 } });
      expect(fromDouble).toMatchObject({ name: 'NoSuchObjectLockConfiguration', $metadata: { httpStatusCode: 404 } });
    });
  });

  describe('legal hold', () => {
    const holds = () => inputs(PutObjectLegalHoldCommand);
    const s = () => ({ catalog, vault, now: () => bucket.now });

    it('holds every object of the backup and every pack it references with PutObjectLegalHold ON', async () => {
      await twoBackups();
      const everything = [...bucket.allKeys(full(backupPrefix('new'))), full(volumeSummaryKey('new', VOLUME)), ...[...(await packsOf(vault, 'new'))].map(full)].sort();
      s3.resetHistory();

      const r = await holdBackup(s(), 'new', 'litigation 2031-7');

      expect(holds().map((h) => h.Key).sort()).toEqual(everything);
      expect(holds().every((h) => h.LegalHold?.Status === 'ON' && h.Bucket === 'vault-bucket')).toBe(true);
      expect(r.objects).toBe(everything.length);
      for (const k of everything) expect(bucket.current(k)!.legalHold).toBe(true);
    });

    it('releases with OFF every object of the backup except the packs another held backup needs', async () => {
      const { onlyOld, needed } = await twoBackups();
      await holdBackup(s(), 'old', 'audit');
      await holdBackup(s(), 'new', 'litigation');
      const ownOfOld = [...bucket.allKeys(full(backupPrefix('old'))), full(volumeSummaryKey('old', VOLUME))];
      const sharedWithNew = [...(await packsOf(vault, 'old'))].filter((k) => needed.has(k));
      expect(sharedWithNew.length).toBeGreaterThan(0);
      s3.resetHistory();

      const r = await releaseBackup(s(), 'old');

      expect(holds().every((h) => h.LegalHold?.Status === 'OFF')).toBe(true);
      expect(holds().map((h) => h.Key).sort()).toEqual([...ownOfOld, ...onlyOld.map(full)].sort());
      expect(r.packsKeptForOthers).toBe(sharedWithNew.length);
      for (const k of sharedWithNew) expect(bucket.current(full(k))!.legalHold).toBe(true);
      for (const k of [...ownOfOld, ...onlyOld.map(full)]) expect(bucket.current(k)!.legalHold).toBe(false);
    });
  });

  describe('governance retention is never bypassed', () => {
    /** Serializes `command` with the SDK's real serializer and returns the HTTP request's headers. */
    const wire = new S3Client({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDTESTONLY', secretAccessKey: 'test-only-secret' } });
    class Serialized extends Error {
      constructor(readonly headers: Record<string, string>) {
        super('serialized');
      }
    }
    wire.middlewareStack.add(
      () => async (args) => {
        throw new Serialized({ ...(args.request as HttpRequest).headers });
      },
      { step: 'build', priority: 'low', name: 'stopAfterSerializing' },
    );
    async function headersOf(command: { input: object; constructor: unknown }): Promise<Record<string, string>> {
      const Ctor = command.constructor as new (input: object) => Parameters<S3Client['send']>[0];
      try {
        await wire.send(new Ctor(command.input));
      } catch (err) {
        if (err instanceof Serialized) return err.headers;
        throw err;
      }
      throw new Error(`${(command.constructor as { name: string }).name} went past stopAfterSerializing`);
    }

    it('sees the bypass header when a request asks for it (the check below can fail)', async () => {
      const headers = await headersOf(new DeleteObjectsCommand({ Bucket: 'b', BypassGovernanceRetention: true, Delete: { Objects: [{ Key: 'k', VersionId: 'v' }] } }));

      expect(headers['x-amz-bypass-governance-retention']).toBe('true');
    });

    it('no request of backups, lock extension, tiering, hold, release, expiry and garbage collection carries x-amz-bypass-governance-retention', async () => {
      await monthlyBackups({ keepRequests: true });
      const outcome = await applyPolicy({ catalog, vault }, run(bucket.now), monthly, await catalog.listBackups(), { keepSnapshots: 1 });
      await collect(vault, bucket.now, [outcome]);
      await holdBackup({ catalog, vault, now: () => bucket.now }, 'second', 'audit');
      await releaseBackup({ catalog, vault, now: () => bucket.now }, 'second');
      // Months later, past every lock, "latest 1" keeps only "second": "first" and its packs go.
      bucket.now = new Date('2031-06-01T00:00:00.000Z');
      const expiry = await applyPolicy({ catalog, vault }, run(bucket.now), latestOne, await catalog.listBackups(), { keepSnapshots: 1 });
      const gc = await collect(vault, bucket.now);
      expect(expiry.expired).toEqual([expect.objectContaining({ backupId: 'first', cleared: true })]);
      expect(gc.packsDeleted).toBeGreaterThan(0);
      const sent = s3.calls().map((c) => c.args[0] as unknown as { input: object; constructor: { name: string } });
      // The flow sent every kind of request that could carry the header.
      for (const kind of [PutObjectCommand, DeleteObjectsCommand, ListObjectVersionsCommand, PutObjectRetentionCommand, PutObjectLegalHoldCommand, PutObjectTaggingCommand]) expect([kind.name, sent.some((c) => c instanceof kind)]).toEqual([kind.name, true]);

      for (const command of sent) {
        expect(command.input).not.toHaveProperty('BypassGovernanceRetention');
        const headers = await headersOf(command);
        expect([command.constructor.name, headers['x-amz-bypass-governance-retention']]).toEqual([command.constructor.name, undefined]);
      }
    });
  });
});


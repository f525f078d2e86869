import { createHash, randomBytes } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { checkReplicationStep, neededObjects } from '../../core/dr/replication.js';
import { objectCopyCommitKey, objectManifestPageKey } from '../../core/objectstore/layout.js';
import { backupRecordKey } from '../../core/vault/layout.js';
import { backupInput } from '../backup/catalog-helpers.js';
import { bucketCopies, objectKeyOf, workflowBackup, type BucketCopies } from '../retention/bucket-copies.js';

// The DR region's replication check for backups of an S3-backed Milvus: such a backup is complete
// in the region only when its bucket copy is there too (commit, manifest pages, every copied
// object), and an object an earlier complete backup shares is not looked at again. The vault here
// is the DR region's: objects "not replicated yet" are deleted from it.

const PLAN = 'milvus-production-backup';
const REGION = 'us-west-2';
const T0 = new Date('2031-01-05T02:00:00.000Z');
const DAY = 86_400_000;
const shared = randomBytes(300);
const onlyB2 = randomBytes(200);
let config: Config;
let copies: BucketCopies;
let catalog: InMemoryCatalog;
let now = T0;

beforeAll(async () => {
  config = await loadConfigFile('examples/production.yaml');
});

beforeEach(async () => {
  now = T0;
  copies = await bucketCopies(() => now);
  catalog = new InMemoryCatalog();
});

async function backup(id: string, startedAt: Date, files: Record<string, Buffer>): Promise<void> {
  const { objectCopy } = await workflowBackup(copies, id, files, startedAt);
  await catalog.createBackup({ ...backupInput(id, startedAt.toISOString(), { plan: PLAN }), status: 'Available', completedAt: startedAt.toISOString(), objectCopy });
}

const check = () => checkReplicationStep({ config, catalog, vault: copies.vault, now: () => now }, 'primary', REGION);
const entryOf = async (id: string) => (await catalog.listReplication({ backupId: id, region: REGION }))[0];

describe('replication of a bucket copy', () => {
  it('records a backup complete only once every copied object is in the region, and names the missing one', async () => {
    await backup('b1', T0, { 'insert_log/1/shared': shared, 'insert_log/2/b1': randomBytes(100) });
    const missing = objectKeyOf('insert_log/1/shared', shared);
    const body = await copies.vault.get(missing);
    await copies.vault.delete(missing);
    now = new Date(T0.getTime() + 60_000);

    const first = await check();

    expect(first).toMatchObject({ complete: 0, pending: 1, errors: [] });
    expect(await entryOf('b1')).toMatchObject({ status: 'Pending', firstMissing: missing });

    await copies.vault.put(missing, body);
    expect(await check()).toMatchObject({ complete: 1, errors: [] });
  });

  it('leaves a backup pending while its commit or a manifest page has not arrived', async () => {
    await backup('b1', T0, { 'insert_log/1/a': randomBytes(10), 'insert_log/1/b': randomBytes(10), 'insert_log/1/c': randomBytes(10) });
    await copies.vault.delete(objectManifestPageKey('b1', 2));

    expect(await neededObjects(copies.vault, 'b1', () => false, undefined, (await catalog.getBackup('b1'))!.objectCopy)).toMatchObject({ missing: objectManifestPageKey('b1', 2) });
    await copies.vault.delete(objectCopyCommitKey('b1'));
    expect(await neededObjects(copies.vault, 'b1', () => false)).toMatchObject({ missing: objectCopyCommitKey('b1') });
  });

  it('checks only the copied objects an earlier complete backup of the plan does not have', async () => {
    await backup('b1', T0, { 'insert_log/1/shared': shared });
    await backup('b2', new Date(T0.getTime() + DAY), { 'insert_log/1/shared': shared, 'insert_log/3/b2': onlyB2 });
    now = new Date(T0.getTime() + 2 * DAY);
    expect(await check()).toMatchObject({ complete: 2, errors: [] });

    const b1 = (await catalog.getBackup('b1'))!;
    const needed = await neededObjects(copies.vault, 'b2', () => true, { backupId: 'b1', sha256: b1.objectCopy!.sha256 });
    const copied = needed.keys.filter((k) => k.startsWith('milvus-objects/'));

    expect(copied).toEqual([objectKeyOf('insert_log/3/b2', onlyB2)]);
    // The run checked b2 so, b1 being complete before it.
    const alone = await neededObjects(copies.vault, 'b2', () => true);
    expect((await entryOf('b2'))!.objects).toBe(needed.keys.length);
    expect(alone.keys.length).toBe(needed.keys.length + 1);
  });

  it('reports a backup whose commit in the region is not the one its record commits to, and checks the others', async () => {
    await backup('b1', T0, { 'insert_log/1/a': randomBytes(10) });
    await backup('b2', new Date(T0.getTime() + DAY), { 'insert_log/1/b': randomBytes(10) });
    await copies.vault.delete(objectCopyCommitKey('b1'));
    await copies.vault.put(objectCopyCommitKey('b1'), Buffer.from('{}\n'));

    const result = await check();

    expect(result.errors).toEqual([expect.stringMatching(/^backup b1: .*commit\.json .* has SHA-256 /)]);
    expect(result.complete).toBe(1);
  });

  it('reports a backup whose backup.json in the region is not the one its record holds the hash of, and checks the others', async () => {
    await backup('b1', T0, { 'insert_log/1/a': randomBytes(10) });
    await backup('b2', new Date(T0.getTime() + DAY), { 'insert_log/1/b': randomBytes(10) });
    const body = await copies.vault.get(backupRecordKey('b1'));
    await catalog.updateBackup('b1', { indexSha256: createHash('sha256').update(body).digest('hex') });
    await copies.vault.delete(backupRecordKey('b1'));
    await copies.vault.put(backupRecordKey('b1'), Buffer.concat([body, Buffer.from('\n')]));

    const result = await check();

    expect(result.errors).toEqual([expect.stringMatching(/^backup b1: backups\/b1\/backup\.json .* is not the document the backup wrote/)]);
    expect(result.complete).toBe(1);
    expect(await entryOf('b1')).toBeUndefined();
  });
});

/**
 * S3VaultStore and archive classes, at the request level (aws-sdk-client-mock): the storage
 * class and x-amz-restore header of HeadObject, RestoreObject's input and answers, the mapping
 * of InvalidObjectState, and the archivable tag's requests. The S3 behaviour these stand in for
 * is cited in s3-store.ts's module comment.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  DeleteObjectTaggingCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectTaggingCommand,
  RestoreObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { parseRestoreHeader, S3VaultStore } from '../../core/vault/s3-store.js';
import { ObjectArchivedError, ObjectNotFoundError, ThawTierUnavailableError } from '../../core/vault/store.js';

const client = new S3Client({ region: 'eu-west-1' });
const s3 = mockClient(client);
const PACK = 'data/packs/ab/abc.pack';
const FULL = `milvus/prod/${PACK}`;
const store = () => new S3VaultStore({ bucket: 'vault-bucket', prefix: 'milvus/prod', client });

/** An error as the SDK throws it for an S3 error code. */
const s3Error = (name: string, status: number, extra: Record<string, unknown> = {}) =>
  Object.assign(new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name }), extra);

beforeEach(() => {
  s3.reset();
});

describe('parseRestoreHeader', () => {
  it('reads a thaw in progress', () => {
    expect(parseRestoreHeader('ongoing-request="true"')).toEqual({ ongoing: true });
  });

  it('reads a finished thaw with the expiry of its copy', () => {
    expect(parseRestoreHeader('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"')).toEqual({ ongoing: false, expiresAt: new Date('2012-12-21T00:00:00Z') });
  });

  it('ignores an absent or unreadable header', () => {
    expect(parseRestoreHeader(undefined)).toBeUndefined();
    expect(parseRestoreHeader('something else')).toBeUndefined();
  });
});

describe('S3VaultStore head and list: storage class and thaw', () => {
  it('reports the x-amz-storage-class and x-amz-restore headers of HeadObject', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10, StorageClass: 'GLACIER', Restore: 'ongoing-request="true"' });

    expect(await store().head(PACK)).toEqual({ key: PACK, size: 10, legalHold: false, storageClass: 'GLACIER', restore: { ongoing: true } });
  });

  it('reports no storage class for STANDARD (S3 sends none)', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10 });

    expect(await store().head(PACK)).toEqual({ key: PACK, size: 10, legalHold: false });
  });

  it('takes the storage class of each listed object from ListObjectsV2', async () => {
    s3.on(ListObjectsV2Command).resolves({ Contents: [{ Key: FULL, Size: 3, StorageClass: 'DEEP_ARCHIVE' }, { Key: 'milvus/prod/data/packs/cd/x.pack', Size: 4, StorageClass: 'STANDARD' }] });

    const listed = [];
    for await (const o of store().list('data/packs/')) listed.push(o);

    expect(listed).toEqual([
      { key: PACK, size: 3, storageClass: 'DEEP_ARCHIVE' },
      { key: 'data/packs/cd/x.pack', size: 4 },
    ]);
  });
});

describe('S3VaultStore reads of archived objects', () => {
  it('maps InvalidObjectState of GetObject to ObjectArchivedError naming the key and class', async () => {
    s3.on(GetObjectCommand).rejects(s3Error('InvalidObjectState', 403, { StorageClass: 'GLACIER' }));

    const read = store().getRange(PACK, 0, 4);

    await expect(read).rejects.toThrow(ObjectArchivedError);
    await expect(read).rejects.toMatchObject({ name: 'ObjectArchived', key: PACK, storageClass: 'GLACIER' });
    await expect(store().get(PACK)).rejects.toThrow(/is in archive class GLACIER and must be thawed/);
    await expect(store().openRead(PACK)).rejects.toThrow(ObjectArchivedError);
  });
});

describe('S3VaultStore thaw', () => {
  it('sends RestoreObject with the days and the tier for an archived object without a thaw', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10, StorageClass: 'GLACIER' });
    s3.on(RestoreObjectCommand).resolves({});

    expect(await store().thaw(PACK, { days: 3, tier: 'Bulk' })).toBe('started');

    expect(s3.commandCalls(RestoreObjectCommand).map((c) => c.args[0].input)).toEqual([
      { Bucket: 'vault-bucket', Key: FULL, RestoreRequest: { Days: 3, GlacierJobParameters: { Tier: 'Bulk' } } },
    ]);
  });

  it('answers available without a RestoreObject for an object in an instant class', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10, StorageClass: 'GLACIER_IR' });

    expect(await store().thaw(PACK, { days: 3, tier: 'Standard' })).toBe('available');
    expect(s3.commandCalls(RestoreObjectCommand)).toHaveLength(0);
  });

  it('answers available without a RestoreObject when the thawed copy is there', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10, StorageClass: 'GLACIER', Restore: 'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"' });

    expect(await store().thaw(PACK, { days: 3, tier: 'Standard' })).toBe('available');
    expect(s3.commandCalls(RestoreObjectCommand)).toHaveLength(0);
  });

  it('answers in-progress without a RestoreObject when head shows a thaw running', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10, StorageClass: 'DEEP_ARCHIVE', Restore: 'ongoing-request="true"' });

    expect(await store().thaw(PACK, { days: 3, tier: 'Standard' })).toBe('in-progress');
    expect(s3.commandCalls(RestoreObjectCommand)).toHaveLength(0);
  });

  it('answers in-progress when S3 says RestoreAlreadyInProgress (another request came first)', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10, StorageClass: 'GLACIER' });
    s3.on(RestoreObjectCommand).rejects(s3Error('RestoreAlreadyInProgress', 409));

    expect(await store().thaw(PACK, { days: 3, tier: 'Standard' })).toBe('in-progress');
  });

  it('refuses Expedited for DEEP_ARCHIVE before any RestoreObject', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10, StorageClass: 'DEEP_ARCHIVE' });

    await expect(store().thaw(PACK, { days: 3, tier: 'Expedited' })).rejects.toThrow(ThawTierUnavailableError);
    expect(s3.commandCalls(RestoreObjectCommand)).toHaveLength(0);
  });

  it('maps GlacierExpeditedRetrievalNotAvailable to ThawTierUnavailableError', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10, StorageClass: 'GLACIER' });
    s3.on(RestoreObjectCommand).rejects(s3Error('GlacierExpeditedRetrievalNotAvailable', 503));

    await expect(store().thaw(PACK, { days: 1, tier: 'Expedited' })).rejects.toMatchObject({ name: 'ThawTierUnavailable', tier: 'Expedited' });
  });

  it('throws ObjectNotFoundError for a missing object', async () => {
    s3.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));

    await expect(store().thaw(PACK, { days: 3, tier: 'Standard' })).rejects.toThrow(ObjectNotFoundError);
  });
});

describe('S3VaultStore archivable tag', () => {
  it('sets it with one PutObjectTagging holding only the tag', async () => {
    s3.on(PutObjectTaggingCommand).resolves({});

    await store().markArchivable(PACK, true);

    expect(s3.calls()).toHaveLength(1);
    expect(s3.commandCalls(PutObjectTaggingCommand)[0]!.args[0].input).toEqual({ Bucket: 'vault-bucket', Key: FULL, Tagging: { TagSet: [{ Key: 'milvus-guard-archivable', Value: 'true' }] } });
  });

  it('removes it with one DeleteObjectTagging', async () => {
    s3.on(DeleteObjectTaggingCommand).resolves({});

    await store().markArchivable(PACK, false);

    expect(s3.calls()).toHaveLength(1);
    expect(s3.commandCalls(DeleteObjectTaggingCommand)[0]!.args[0].input).toEqual({ Bucket: 'vault-bucket', Key: FULL });
  });

  it('reads it with GetObjectTagging', async () => {
    s3.on(GetObjectTaggingCommand).resolves({ TagSet: [{ Key: 'milvus-guard-archivable', Value: 'true' }] });

    expect(await store().isArchivable(PACK)).toBe(true);
  });

  it('throws ObjectNotFoundError when tagging a missing object', async () => {
    s3.on(PutObjectTaggingCommand).rejects(s3Error('NoSuchKey', 404));

    await expect(store().markArchivable(PACK, true)).rejects.toThrow(ObjectNotFoundError);
  });
});

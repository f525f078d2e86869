import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  S3Client,
  UploadPartCommand,
  type ObjectVersion,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { S3DeleteError, S3VaultStore } from '../../core/vault/s3-store.js';
import { ObjectChecksumMismatchError, ObjectExistsError, ObjectLockedError, ObjectNotFoundError, VaultReadInterruptedError } from '../../core/vault/store.js';
import { tempDir } from '../datamover/helpers.js';

const KMS = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const UNTIL = new Date('2027-03-01T00:00:00Z');
/** The stores' clock in these tests: before UNTIL. */
const NOW = new Date('2026-12-05T00:00:00Z');

const client = new S3Client({ region: 'eu-west-1' });
const s3 = mockClient(client);
/** The part of the SDK's response stream that the store uses. */
const body = (bytes: Buffer) => ({ transformToByteArray: async () => new Uint8Array(bytes) });
const notFound = Object.assign(new Error('not found'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });

function store(extra: Partial<ConstructorParameters<typeof S3VaultStore>[0]> = {}): S3VaultStore {
  return new S3VaultStore({ bucket: 'vault-bucket', prefix: 'milvus/prod', client, kmsKeyId: KMS, objectLockMode: 'COMPLIANCE', now: () => NOW, ...extra });
}

describe('S3VaultStore requests', () => {
  beforeEach(() => {
    s3.reset();
  });

  it('writes every object with SSE-KMS, the Object Lock mode and the retain-until date', async () => {
    s3.on(PutObjectCommand).resolves({});

    await store().put('data/packs/ab/abc.pack', Buffer.from('pack'), { retainUntil: UNTIL });

    expect(s3.commandCalls(PutObjectCommand)[0]!.args[0].input).toMatchObject({
      Bucket: 'vault-bucket',
      Key: 'milvus/prod/data/packs/ab/abc.pack',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: KMS,
      ObjectLockMode: 'COMPLIANCE',
      ObjectLockRetainUntilDate: UNTIL,
      ContentLength: 4,
    });
  });

  it('sends a pack held in shared memory as a private copy of its bytes', async () => {
    s3.on(PutObjectCommand).resolves({});
    const shared = Buffer.from(new SharedArrayBuffer(64), 8, 16).fill(7);

    await store().put('data/packs/ab/abc.pack', shared);

    const sent = s3.commandCalls(PutObjectCommand)[0]!.args[0].input.Body as Uint8Array;
    expect(sent.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(Buffer.from(sent).equals(Buffer.alloc(16, 7))).toBe(true);
  });

  it('locks in GOVERNANCE mode unless the vault is configured for COMPLIANCE', async () => {
    s3.on(PutObjectCommand).resolves({});

    await store({ objectLockMode: undefined }).put('k', Buffer.from('x'), { retainUntil: UNTIL });

    expect(s3.commandCalls(PutObjectCommand)[0]!.args[0].input).toMatchObject({ ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: UNTIL });
  });

  it('sends no Object Lock headers when no retention is asked for', async () => {
    s3.on(PutObjectCommand).resolves({});

    await store({ kmsKeyId: undefined }).put('k', Buffer.from('x'));

    const input = s3.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(input).not.toHaveProperty('ObjectLockMode');
    expect(input).not.toHaveProperty('ObjectLockRetainUntilDate');
    expect(input).not.toHaveProperty('ServerSideEncryption');
  });

  describe('a write that may only create (ifAbsent)', () => {
    const PACK_KEY = 'data/packs/ab/abc.pack';
    const precondition = Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), { name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
    const there = (bytes: Buffer) => s3.on(GetObjectCommand, { Key: `milvus/prod/${PACK_KEY}` }).resolves({ Body: Readable.from([bytes]) as never });

    it('sends If-None-Match: * on PutObject', async () => {
      s3.on(PutObjectCommand).resolves({});

      await store().put(PACK_KEY, Buffer.from('pack'), { ifAbsent: true });

      expect(s3.commandCalls(PutObjectCommand)[0]!.args[0].input).toMatchObject({ Key: `milvus/prod/${PACK_KEY}`, IfNoneMatch: '*' });
    });

    it('sends If-None-Match: * on the CompleteMultipartUpload of a file in parts', async () => {
      s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
      s3.on(UploadPartCommand).resolves({ ETag: '"e"' });
      s3.on(CompleteMultipartUploadCommand).resolves({});
      const file = join(await tempDir('s3'), 'index');
      await writeFile(file, Buffer.alloc(11 * 1024 * 1024, 7));

      await store({ partSize: 5 * 1024 * 1024 }).putFile('backups/b1/volumes/v/index.jsonl.gz', file, { ifAbsent: true });

      // lib-storage passes its params to every request; CreateMultipartUpload and UploadPart have
      // no If-None-Match member, so the SDK's serializer sends the header only here.
      expect(s3.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input).toMatchObject({ IfNoneMatch: '*' });
    });

    it('counts a 412 as done when the object there holds the bytes it sent (a write sent again after its answer was lost)', async () => {
      s3.on(PutObjectCommand).rejects(precondition);
      there(Buffer.from('pack'));

      await expect(store().put(PACK_KEY, Buffer.from('pack'), { ifAbsent: true })).resolves.toBeUndefined();
    });

    it('refuses with ObjectExists when the object there holds other bytes, and leaves it', async () => {
      s3.on(PutObjectCommand).rejects(precondition);
      there(Buffer.from('other'));

      const refused = await store().put(PACK_KEY, Buffer.from('pack'), { ifAbsent: true }).catch((e: unknown) => e);

      expect(refused).toBeInstanceOf(ObjectExistsError);
      expect((refused as Error).message).toBe(
        `object ${PACK_KEY} in vault s3://vault-bucket/milvus/prod/ already exists with other bytes; this write may only create it, so the object there was kept (another writer got there first; for a backup, run a new one, and milvus-guard datamover verify to see what is there)`,
      );
    });

    it('sends the whole write again on 409 ConditionalRequestConflict (the same write still in flight), then takes the 412 that follows for done', async () => {
      const conflict = Object.assign(new Error('A conflicting operation occurred'), { name: 'ConditionalRequestConflict', $metadata: { httpStatusCode: 409 } });
      s3.on(PutObjectCommand).rejectsOnce(conflict).rejects(precondition);
      there(Buffer.from('pack'));

      await store().put(PACK_KEY, Buffer.from('pack'), { ifAbsent: true });

      expect(s3.commandCalls(PutObjectCommand)).toHaveLength(2);
    });

    it('gives up after a few 409s, with S3 error', async () => {
      const conflict = Object.assign(new Error('A conflicting operation occurred'), { name: 'ConditionalRequestConflict', $metadata: { httpStatusCode: 409 } });
      s3.on(PutObjectCommand).rejects(conflict);

      await expect(store().put(PACK_KEY, Buffer.from('pack'), { ifAbsent: true })).rejects.toThrow('A conflicting operation occurred');
      expect(s3.commandCalls(PutObjectCommand)).toHaveLength(3);
    });

    /** A 6 MiB file whose multipart upload (5 MiB parts) goes up, but whose CompleteMultipartUpload meets `refusal`. */
    async function multipartCompleteRefused(refusal: Error): Promise<string> {
      s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
      s3.on(UploadPartCommand).resolves({ ETag: '"e"' });
      s3.on(CompleteMultipartUploadCommand).rejects(refusal);
      s3.on(AbortMultipartUploadCommand).resolves({});
      const file = join(await tempDir('s3'), 'index');
      await writeFile(file, Buffer.alloc(6 * 1024 * 1024, 7));
      return file;
    }

    it('takes NoSuchUpload from a CompleteMultipartUpload sent again after the first completed for done, when the object holds its bytes', async () => {
      const noSuchUpload = Object.assign(new Error('The specified upload does not exist.'), { name: 'NoSuchUpload', $metadata: { httpStatusCode: 404 } });
      const file = await multipartCompleteRefused(noSuchUpload);
      s3.on(GetObjectCommand).resolvesOnce({ Body: Readable.from([Buffer.alloc(6 * 1024 * 1024, 7)]) as never }).rejects(notFound);
      const vault = store({ partSize: 5 * 1024 * 1024 });

      await expect(vault.putFile(PACK_KEY, file, { ifAbsent: true })).resolves.toBeUndefined();
      // No object there: the upload is really gone, and that is the error.
      await expect(vault.putFile(PACK_KEY, file, { ifAbsent: true })).rejects.toThrow('The specified upload does not exist.');
    });

    it('compares a file it uploaded by its bytes too', async () => {
      const file = await multipartCompleteRefused(precondition);
      s3.on(GetObjectCommand).resolves({ Body: Readable.from([Buffer.alloc(6 * 1024 * 1024, 7)]) as never });

      await expect(store({ partSize: 5 * 1024 * 1024 }).putFile(PACK_KEY, file, { ifAbsent: true })).resolves.toBeUndefined();
    });

    it('does not take a 412 for done on a write that did not ask to only create', async () => {
      s3.on(PutObjectCommand).rejects(precondition);
      there(Buffer.from('pack'));

      await expect(store().put(PACK_KEY, Buffer.from('pack'))).rejects.toThrow('pre-conditions');
    });
  });

  it('uploads a large file in parts, with the lock and encryption on the multipart upload', async () => {
    s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    s3.on(UploadPartCommand).resolves({ ETag: '"e"' });
    s3.on(CompleteMultipartUploadCommand).resolves({});
    const file = join(await tempDir('s3'), 'index');
    await writeFile(file, Buffer.alloc(11 * 1024 * 1024, 7));

    await store({ partSize: 5 * 1024 * 1024 }).putFile('backups/b1/volumes/v/index.jsonl.gz', file, { retainUntil: UNTIL });

    expect(s3.commandCalls(CreateMultipartUploadCommand)[0]!.args[0].input).toMatchObject({
      Key: 'milvus/prod/backups/b1/volumes/v/index.jsonl.gz',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: KMS,
      ObjectLockMode: 'COMPLIANCE',
      ObjectLockRetainUntilDate: UNTIL,
    });
    expect(s3.commandCalls(UploadPartCommand)).toHaveLength(3);
  });

  it('extends the retention of an object locked until an earlier date, keeping its mode', async () => {
    s3.on(GetObjectRetentionCommand).resolves({ Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date('2026-12-01T00:00:00Z') } });
    s3.on(PutObjectRetentionCommand).resolves({});

    const changed = await store().extendRetention('data/packs/ab/abc.pack', UNTIL);

    expect(changed).toBe(true);
    expect(s3.commandCalls(PutObjectRetentionCommand)[0]!.args[0].input).toEqual({
      Bucket: 'vault-bucket',
      Key: 'milvus/prod/data/packs/ab/abc.pack',
      Retention: { Mode: 'GOVERNANCE', RetainUntilDate: UNTIL },
    });
  });

  it('takes the lock a HEAD reported instead of asking for it again, and keeps its mode', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10, ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date('2026-12-01T00:00:00Z') });
    s3.on(PutObjectRetentionCommand).resolves({});
    const vault = store();

    const info = await vault.head('data/packs/ab/abc.pack');
    expect(info).toMatchObject({ size: 10, lockMode: 'COMPLIANCE' });
    expect(await vault.extendRetention('data/packs/ab/abc.pack', UNTIL, info)).toBe(true);

    expect(s3.commandCalls(GetObjectRetentionCommand)).toHaveLength(0);
    expect(s3.commandCalls(PutObjectRetentionCommand)[0]!.args[0].input.Retention).toEqual({ Mode: 'COMPLIANCE', RetainUntilDate: UNTIL });
  });

  it('asks for the lock when the HEAD reported none (no s3:GetObjectRetention, or no lock yet)', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10 });
    s3.on(GetObjectRetentionCommand).resolves({ Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date('2028-01-01T00:00:00Z') } });
    const vault = store();

    expect(await vault.extendRetention('data/packs/ab/abc.pack', UNTIL, await vault.head('data/packs/ab/abc.pack'))).toBe(false);

    expect(s3.commandCalls(GetObjectRetentionCommand)).toHaveLength(1);
    expect(s3.commandCalls(PutObjectRetentionCommand)).toHaveLength(0);
  });

  it('reports an object deleted between its lookup and its extension as not found', async () => {
    s3.on(PutObjectRetentionCommand).rejects(Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }));

    await expect(store().extendRetention('data/packs/ab/abc.pack', UNTIL, { lockMode: 'GOVERNANCE', retainUntil: new Date('2026-12-01T00:00:00Z') })).rejects.toThrow(ObjectNotFoundError);
  });

  it('never shortens the retention of an object locked until a later date', async () => {
    s3.on(GetObjectRetentionCommand).resolves({ Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date('2028-01-01T00:00:00Z') } });

    const changed = await store().extendRetention('data/packs/ab/abc.pack', UNTIL);

    expect(changed).toBe(false);
    expect(s3.commandCalls(PutObjectRetentionCommand)).toHaveLength(0);
  });

  it('locks an object that had no retention with the configured mode', async () => {
    s3.on(GetObjectRetentionCommand).rejects(Object.assign(new Error('none'), { name: 'NoSuchObjectLockConfiguration' }));
    s3.on(PutObjectRetentionCommand).resolves({});

    await store().extendRetention('k', UNTIL);

    expect(s3.commandCalls(PutObjectRetentionCommand)[0]!.args[0].input.Retention).toEqual({ Mode: 'COMPLIANCE', RetainUntilDate: UNTIL });
  });

  it('reads a chunk with a byte range', async () => {
    s3.on(GetObjectCommand).resolves({ Body: body(Buffer.from('chunk')) as never });

    const bytes = await store().getRange('data/packs/ab/abc.pack', 100, 5);

    expect(bytes.toString()).toBe('chunk');
    expect(s3.commandCalls(GetObjectCommand)[0]!.args[0].input).toMatchObject({ Key: 'milvus/prod/data/packs/ab/abc.pack', Range: 'bytes=100-104' });
  });

  it('downloads a body cut short again, up to 3 tries, then names the read as interrupted, not the object as damaged', async () => {
    const failing = (message: string, code?: string) => ({ transformToByteArray: async () => Promise.reject(Object.assign(new Error(message), code ? { code } : {})) });
    s3.on(GetObjectCommand)
      .resolvesOnce({ Body: failing('aborted', 'ECONNRESET') as never })
      .resolvesOnce({ Body: failing('Connection lost or stream closed before all data was received.') as never })
      .resolves({ Body: body(Buffer.from('chunk')) as never });

    const bytes = await store().getRange('data/packs/ab/abc.pack', 100, 5);

    expect(bytes.toString()).toBe('chunk');
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(3);
    s3.reset();
    s3.on(GetObjectCommand).resolves({ Body: failing('aborted', 'ECONNRESET') as never });
    const cut = await store().get('x/y').catch((e: unknown) => e);
    expect(cut).toBeInstanceOf(VaultReadInterruptedError);
    expect(cut).toMatchObject({ name: 'VaultReadInterrupted', message: 'object x/y in vault s3://vault-bucket/milvus/prod/ could not be read: its download was cut short 3 times (aborted); try again' });
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(3);
  });

  it('names an object whose body fails its S3 checksum on every try as damaged, and does not retry other failures', async () => {
    const failing = (message: string) => ({ transformToByteArray: async () => Promise.reject(new Error(message)) });
    s3.on(GetObjectCommand).resolves({ Body: failing('Checksum mismatch: expected "AAAAAA==" but received "BBBBBB==" in response header "x-amz-checksum-crc32".') as never });
    const mismatch = await store().get('x/y').catch((e: unknown) => e);
    const calls = s3.commandCalls(GetObjectCommand).length;
    s3.reset();
    s3.on(GetObjectCommand).resolves({ Body: failing('something else') as never });
    const other = await store().get('x/y').catch((e: unknown) => e);

    expect(mismatch).toBeInstanceOf(ObjectChecksumMismatchError);
    expect((mismatch as Error).message).toBe('object x/y in vault s3://vault-bucket/milvus/prod/ is damaged: it does not match the checksum the store keeps for it (Checksum mismatch: expected "AAAAAA==" but received "BBBBBB==" in response header "x-amz-checksum-crc32", 3 download(s)); run milvus-guard datamover verify to see what else is, and restore another backup');
    expect(calls).toBe(3);
    expect((other as Error).message).toBe('something else');
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(1);
  });

  it('turns NoSuchKey into ObjectNotFoundError naming the key', async () => {
    s3.on(GetObjectCommand).rejects(notFound);

    await expect(store().getRange('data/packs/ab/abc.pack', 0, 5)).rejects.toThrow(ObjectNotFoundError);
    await expect(store().get('x/y')).rejects.toThrow('object x/y does not exist in vault s3://vault-bucket/milvus/prod/');
  });

  it('reports the retention date of an existing object and undefined for a missing one', async () => {
    s3.on(HeadObjectCommand, { Key: 'milvus/prod/a' }).resolves({ ContentLength: 3, ObjectLockRetainUntilDate: UNTIL });
    s3.on(HeadObjectCommand, { Key: 'milvus/prod/b' }).rejects(Object.assign(new Error('nf'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } }));

    await expect(store().head('a')).resolves.toEqual({ key: 'a', size: 3, retainUntil: UNTIL, legalHold: false });
    await expect(store().head('b')).resolves.toBeUndefined();
  });

  it('retries with the adaptive strategy so throttling slows down instead of failing', async () => {
    const own = new S3VaultStore({ bucket: 'vault-bucket', region: 'eu-west-1' });

    expect(await own.client.config.retryStrategy()).toMatchObject({ mode: 'adaptive' });
    expect(await own.client.config.maxAttempts()).toBe(10);
  });
});

const PACK = 'data/packs/ab/abc.pack';
const FULL = `milvus/prod/${PACK}`;
const version = (Key: string, VersionId: string, IsLatest: boolean): ObjectVersion => ({ Key, VersionId, IsLatest, Size: 4 });
const lockRefusal = (Key: string, VersionId: string) => ({ Key, VersionId, Code: 'AccessDenied', Message: 'Access Denied because object protected by object lock.' });
const objectsOf = (call: number) => s3.commandCalls(DeleteObjectsCommand)[call]!.args[0].input.Delete!;

describe('S3VaultStore deletes on a versioned, Object-Locked bucket', () => {
  beforeEach(() => {
    s3.reset();
  });

  it('deletes every version and delete marker of the key by version id, older ones first', async () => {
    s3.on(ListObjectVersionsCommand).resolves({
      Versions: [version(FULL, 'v2', true), version(FULL, 'v1', false), version(`${FULL}.old`, 'x1', true)],
      DeleteMarkers: [{ Key: FULL, VersionId: 'm1', IsLatest: false }],
    });
    s3.on(HeadObjectCommand).resolves({ ContentLength: 4, ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date('2026-11-01T00:00:00Z') });
    s3.on(DeleteObjectsCommand).resolves({});

    await store().delete(PACK);

    expect(s3.commandCalls(ListObjectVersionsCommand)[0]!.args[0].input).toEqual({ Bucket: 'vault-bucket', Prefix: FULL });
    expect(s3.commandCalls(HeadObjectCommand).map((c) => c.args[0].input.VersionId).sort()).toEqual(['v1', 'v2']);
    expect(s3.commandCalls(DeleteObjectsCommand)).toHaveLength(2);
    expect(objectsOf(0)).toEqual({ Quiet: true, Objects: [{ Key: FULL, VersionId: 'v1' }, { Key: FULL, VersionId: 'm1' }] });
    expect(objectsOf(1)).toEqual({ Quiet: true, Objects: [{ Key: FULL, VersionId: 'v2' }] });
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
  });

  it('never asks S3 to bypass governance retention', async () => {
    s3.on(ListObjectVersionsCommand).resolves({ Versions: [version(FULL, 'v1', true)] });
    s3.on(HeadObjectCommand).resolves({ ContentLength: 4 });
    s3.on(DeleteObjectsCommand).resolves({});

    await store().delete(PACK);
    await store().deleteMany([PACK]);

    for (const call of s3.commandCalls(DeleteObjectsCommand)) expect(call.args[0].input).not.toHaveProperty('BypassGovernanceRetention');
    expect(s3.calls().every((c) => !('BypassGovernanceRetention' in (c.args[0].input as object)))).toBe(true);
  });

  it('refuses a key with a version still retained, naming the date, and deletes nothing of it', async () => {
    s3.on(ListObjectVersionsCommand).resolves({ Versions: [version(FULL, 'v2', true), version(FULL, 'v1', false)] });
    s3.on(HeadObjectCommand, { VersionId: 'v1' }).resolves({ ContentLength: 4 });
    s3.on(HeadObjectCommand, { VersionId: 'v2' }).resolves({ ContentLength: 4, ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: UNTIL });

    await expect(store().delete(PACK)).rejects.toThrow(ObjectLockedError);
    await expect(store().delete(PACK)).rejects.toMatchObject({ key: PACK, retainUntil: UNTIL, legalHold: false });

    expect(s3.commandCalls(DeleteObjectsCommand)).toHaveLength(0);
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
  });

  it('refuses a key with a version under legal hold and deletes nothing of it', async () => {
    s3.on(ListObjectVersionsCommand).resolves({ Versions: [version(FULL, 'v1', true)] });
    s3.on(HeadObjectCommand).resolves({ ContentLength: 4, ObjectLockRetainUntilDate: new Date('2026-01-01T00:00:00Z'), ObjectLockLegalHoldStatus: 'ON' });

    await expect(store().delete(PACK)).rejects.toMatchObject({ name: 'ObjectLockedError', legalHold: true, retainUntil: undefined });

    expect(s3.commandCalls(DeleteObjectsCommand)).toHaveLength(0);
  });

  it('deletes a version whose retain-until date the clock has passed', async () => {
    s3.on(ListObjectVersionsCommand).resolves({ Versions: [version(FULL, 'v1', true)] });
    s3.on(HeadObjectCommand).resolves({ ContentLength: 4, ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: UNTIL });
    s3.on(DeleteObjectsCommand).resolves({});

    await store({ now: () => UNTIL }).delete(PACK);

    expect(objectsOf(0).Objects).toEqual([{ Key: FULL, VersionId: 'v1' }]);
  });

  it('turns S3 refusing a version for Object Lock into ObjectLockedError', async () => {
    s3.on(ListObjectVersionsCommand).resolves({ Versions: [version(FULL, 'v1', true)] });
    s3.on(HeadObjectCommand).resolves({ ContentLength: 4 });
    s3.on(DeleteObjectsCommand).resolves({ Errors: [lockRefusal(FULL, 'v1')] });

    await expect(store().delete(PACK)).rejects.toThrow(ObjectLockedError);
  });

  it('follows the version listing across pages', async () => {
    s3.on(ListObjectVersionsCommand, { KeyMarker: undefined })
      .resolves({ Versions: [version(FULL, 'v3', true)], IsTruncated: true, NextKeyMarker: FULL, NextVersionIdMarker: 'v3' })
      .on(ListObjectVersionsCommand, { KeyMarker: FULL, VersionIdMarker: 'v3' })
      .resolves({ Versions: [version(FULL, 'v2', false)], IsTruncated: false });
    s3.on(HeadObjectCommand).resolves({ ContentLength: 4 });
    s3.on(DeleteObjectsCommand).resolves({});

    await store().delete(PACK);

    expect(s3.commandCalls(ListObjectVersionsCommand)).toHaveLength(2);
    expect(s3.commandCalls(DeleteObjectsCommand).flatMap((c) => c.args[0].input.Delete!.Objects!.map((o) => o.VersionId))).toEqual(['v2', 'v3']);
  });

  it('deletes the "null" version of an unversioned bucket by that version id', async () => {
    s3.on(ListObjectVersionsCommand).resolves({ Versions: [version(FULL, 'null', true)] });
    s3.on(HeadObjectCommand).resolves({ ContentLength: 4 });
    s3.on(DeleteObjectsCommand).resolves({});

    await store().delete(PACK);

    expect(s3.commandCalls(HeadObjectCommand)[0]!.args[0].input).toMatchObject({ Key: FULL, VersionId: 'null' });
    expect(objectsOf(0).Objects).toEqual([{ Key: FULL, VersionId: 'null' }]);
  });

  it('falls back to a plain delete on a server that cannot list versions', async () => {
    s3.on(ListObjectVersionsCommand).rejects(Object.assign(new Error('not allowed'), { name: 'MethodNotAllowed', $metadata: { httpStatusCode: 405 } }));
    s3.on(HeadObjectCommand).resolves({ ContentLength: 4 });
    s3.on(DeleteObjectCommand).resolves({});
    s3.on(DeleteObjectsCommand).resolves({});
    const vault = store();

    await vault.delete(PACK);
    await vault.deleteMany(['a/1', 'a/2']);

    expect(s3.commandCalls(ListObjectVersionsCommand)).toHaveLength(1); // asked once per store
    expect(s3.commandCalls(DeleteObjectCommand)[0]!.args[0].input).toEqual({ Bucket: 'vault-bucket', Key: FULL });
    expect(objectsOf(0)).toEqual({ Quiet: true, Objects: [{ Key: 'milvus/prod/a/1' }, { Key: 'milvus/prod/a/2' }] });
  });
});

describe('S3VaultStore batch deletes for garbage collection', () => {
  beforeEach(() => {
    s3.reset();
  });

  const packKeys = (n: number, dir = 'cd') => Array.from({ length: n }, (_, i) => `data/packs/${dir}/${String(i).padStart(5, '0')}.pack`);

  it('lists each directory once and deletes at most 1000 versions a request, in quiet mode', async () => {
    const keys = packKeys(2500);
    s3.on(ListObjectVersionsCommand).resolves({ Versions: keys.map((k) => version(`milvus/prod/${k}`, `v-${k}`, true)) });
    s3.on(DeleteObjectsCommand).resolves({});

    const result = await store().deleteMany(keys);

    expect(s3.commandCalls(ListObjectVersionsCommand).map((c) => c.args[0].input.Prefix)).toEqual(['milvus/prod/data/packs/cd/']);
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
    expect(s3.commandCalls(DeleteObjectsCommand).map((c) => c.args[0].input.Delete!.Objects!.length)).toEqual([1000, 1000, 500]);
    expect(s3.commandCalls(DeleteObjectsCommand).every((c) => c.args[0].input.Delete!.Quiet === true)).toBe(true);
    expect(result).toEqual({ deleted: keys, failed: [] });
  });

  it('reports each key S3 refuses, with why, and deletes the others', async () => {
    const [a, b, c] = packKeys(3);
    s3.on(ListObjectVersionsCommand).resolves({ Versions: [a!, b!, c!].map((k) => version(`milvus/prod/${k}`, `v-${k}`, true)) });
    s3.on(DeleteObjectsCommand).resolves({ Errors: [lockRefusal(`milvus/prod/${a}`, `v-${a}`), { Key: `milvus/prod/${c}`, VersionId: `v-${c}`, Code: 'InternalError', Message: 'try again' }] });

    const result = await store().deleteMany([a!, b!, c!]);

    expect(result.deleted).toEqual([b]);
    expect(result.failed.map((f) => f.key)).toEqual([a, c]);
    expect(result.failed[0]!.error).toBeInstanceOf(ObjectLockedError);
    expect(result.failed[1]!.error).toBeInstanceOf(S3DeleteError);
    expect(result.failed[1]!.error.message).toContain('InternalError: try again');
  });

  it('keeps the current version of a key whose older version S3 refused', async () => {
    const [a, b] = packKeys(2);
    s3.on(ListObjectVersionsCommand).resolves({
      Versions: [version(`milvus/prod/${a}`, 'a2', true), version(`milvus/prod/${a}`, 'a1', false), version(`milvus/prod/${b}`, 'b1', true)],
    });
    s3.on(DeleteObjectsCommand).resolvesOnce({ Errors: [lockRefusal(`milvus/prod/${a}`, 'a1')] }).resolves({});

    const result = await store().deleteMany([a!, b!]);

    expect(objectsOf(0).Objects).toEqual([{ Key: `milvus/prod/${a}`, VersionId: 'a1' }]);
    expect(objectsOf(1).Objects).toEqual([{ Key: `milvus/prod/${b}`, VersionId: 'b1' }]);
    expect(result).toEqual({ deleted: [b], failed: [{ key: a, error: expect.any(ObjectLockedError) }] });
  });

  it('reports the keys of a request that failed as a whole and goes on with the rest', async () => {
    const keys = [...packKeys(1000, 'aa'), ...packKeys(2, 'bb')];
    s3.on(ListObjectVersionsCommand).callsFake((input: { Prefix: string }) => ({
      Versions: keys.filter((k) => `milvus/prod/${k}`.startsWith(input.Prefix)).map((k) => version(`milvus/prod/${k}`, 'v', true)),
    }));
    s3.on(DeleteObjectsCommand).rejectsOnce(Object.assign(new Error('socket hang up'), { name: 'TimeoutError' })).resolves({});

    const result = await store().deleteMany(keys);

    expect(result.failed).toHaveLength(1000);
    expect(result.deleted).toHaveLength(2);
  });

  it('lists a key alone in its directory by itself, not its whole directory', async () => {
    s3.on(ListObjectVersionsCommand).resolves({});

    await store().deleteMany([PACK, 'backups/b1/backup.json']);

    expect(s3.commandCalls(ListObjectVersionsCommand).map((c) => c.args[0].input.Prefix).sort()).toEqual(['milvus/prod/backups/b1/backup.json', FULL]);
    expect(s3.commandCalls(DeleteObjectsCommand)).toHaveLength(0);
  });
});

describe('S3VaultStore legal holds', () => {
  beforeEach(() => {
    s3.reset();
  });

  it.each([[true, 'ON'], [false, 'OFF']] as const)('setLegalHold(%s) sends PutObjectLegalHold with status %s', async (on, status) => {
    s3.on(PutObjectLegalHoldCommand).resolves({});

    await store().setLegalHold(PACK, on);

    expect(s3.commandCalls(PutObjectLegalHoldCommand)[0]!.args[0].input).toEqual({ Bucket: 'vault-bucket', Key: FULL, LegalHold: { Status: status } });
  });

  it('refuses a legal hold on a missing object with ObjectNotFoundError', async () => {
    s3.on(PutObjectLegalHoldCommand).rejects(notFound);

    await expect(store().setLegalHold(PACK, true)).rejects.toThrow(ObjectNotFoundError);
  });

  it('reports a legal hold and the lock mode in head', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 4, ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: UNTIL, ObjectLockLegalHoldStatus: 'ON' });

    await expect(store().head(PACK)).resolves.toEqual({ key: PACK, size: 4, retainUntil: UNTIL, lockMode: 'GOVERNANCE', legalHold: true });
  });
});

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { S3VaultStore } from '../../core/vault/s3-store.js';
import { ObjectNotFoundError } from '../../core/vault/store.js';
import { tempDir } from '../datamover/helpers.js';

const KMS = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const UNTIL = new Date('2027-03-01T00:00:00Z');

const client = new S3Client({ region: 'eu-west-1' });
const s3 = mockClient(client);
/** The part of the SDK's response stream that the store uses. */
const body = (bytes: Buffer) => ({ transformToByteArray: async () => new Uint8Array(bytes) });
const notFound = Object.assign(new Error('not found'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });

function store(extra: Partial<ConstructorParameters<typeof S3VaultStore>[0]> = {}): S3VaultStore {
  return new S3VaultStore({ bucket: 'vault-bucket', prefix: 'milvus/prod', client, kmsKeyId: KMS, objectLockMode: 'COMPLIANCE', ...extra });
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

  it('sends no Object Lock headers when no retention is asked for', async () => {
    s3.on(PutObjectCommand).resolves({});

    await store({ kmsKeyId: undefined }).put('k', Buffer.from('x'));

    const input = s3.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(input).not.toHaveProperty('ObjectLockMode');
    expect(input).not.toHaveProperty('ObjectLockRetainUntilDate');
    expect(input).not.toHaveProperty('ServerSideEncryption');
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

  it('turns NoSuchKey into ObjectNotFoundError naming the key', async () => {
    s3.on(GetObjectCommand).rejects(notFound);

    await expect(store().getRange('data/packs/ab/abc.pack', 0, 5)).rejects.toThrow(ObjectNotFoundError);
    await expect(store().get('x/y')).rejects.toThrow('object x/y does not exist in vault s3://vault-bucket/milvus/prod/');
  });

  it('reports the retention date of an existing object and undefined for a missing one', async () => {
    s3.on(HeadObjectCommand, { Key: 'milvus/prod/a' }).resolves({ ContentLength: 3, ObjectLockRetainUntilDate: UNTIL });
    s3.on(HeadObjectCommand, { Key: 'milvus/prod/b' }).rejects(Object.assign(new Error('nf'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } }));

    await expect(store().head('a')).resolves.toEqual({ key: 'a', size: 3, retainUntil: UNTIL });
    await expect(store().head('b')).resolves.toBeUndefined();
  });

  it('retries with the adaptive strategy so throttling slows down instead of failing', async () => {
    const own = new S3VaultStore({ bucket: 'vault-bucket', region: 'eu-west-1' });

    expect(await own.client.config.retryStrategy()).toMatchObject({ mode: 'adaptive' });
    expect(await own.client.config.maxAttempts()).toBe(10);
  });
});

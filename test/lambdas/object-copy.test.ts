import { afterEach, describe, expect, it } from '@jest/globals';
import { CopyObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { awsObjectCopy } from '../../lambdas/backup/services.js';
import { noRequests } from '../../core/objectstore/manifest.js';

// The Lambdas' object copy at the request level: the backend CopyObjects and RestoreObjects use
// lists the Milvus bucket, and copies into this region's vault with its KMS key, Object Lock mode
// and the retain-until date, on the condition of the listed ETag.

const s3 = mockClient(S3Client);
const ENV = { VAULT_BUCKET: 'milvus-guard-vault', VAULT_KMS_KEY_ARN: 'arn:aws:kms:us-east-1:123456789012:key/vault', VAULT_OBJECT_LOCK_MODE: 'COMPLIANCE' as const, AWS_REGION: 'us-east-1', OBJECT_COPY_CALL_SECONDS: 600 };
const roles = { reading: 'the Milvus bucket', writing: 'the vault', whenChanged: 'back up again' };

afterEach(() => {
  s3.reset();
});

describe('awsObjectCopy', () => {
  it('lists a page of the Milvus root path', async () => {
    s3.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'files/insert_log/1', Size: 10, ETag: '"abc"' }], IsTruncated: false });

    const page = await awsObjectCopy(ENV).backend({ region: 'us-east-1' }).listSource('acme-milvus', { prefix: 'files/', maxKeys: 1000 }, noRequests());

    expect(page.objects).toEqual([{ key: 'files/insert_log/1', size: 10, etag: '"abc"' }]);
    expect(s3.commandCalls(ListObjectsV2Command)[0]!.args[0].input).toEqual({ Bucket: 'acme-milvus', Prefix: 'files/', MaxKeys: 1000 });
  });

  it("copies into the vault server-side, encrypted with the vault's key and locked, if the source still has the listed ETag", async () => {
    s3.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"def"' } });
    const until = new Date('2027-01-01T00:00:00Z');

    const etag = await awsObjectCopy(ENV).backend({}).copyToVault({ bucket: 'acme-milvus', key: 'files/insert_log/1', size: 10, etag: '"abc"' }, 'milvus-objects/aa/aabb', { retainUntil: until }, noRequests(), roles);

    expect(etag).toBe('"def"');
    expect(s3.commandCalls(CopyObjectCommand)[0]!.args[0].input).toMatchObject({
      Bucket: 'milvus-guard-vault',
      Key: 'milvus-objects/aa/aabb',
      CopySource: 'acme-milvus/files/insert_log/1',
      CopySourceIfMatch: '"abc"',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: ENV.VAULT_KMS_KEY_ARN,
      ObjectLockMode: 'COMPLIANCE',
      ObjectLockRetainUntilDate: until,
    });
  });
});

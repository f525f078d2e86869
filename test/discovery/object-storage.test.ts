import { describe, expect, it } from '@jest/globals';
import { stringify } from 'yaml';
import { awsS3Endpoint, externalObjectStorage } from '../../core/discovery/object-storage.js';

// Where a Milvus keeps its objects when no PVC holds them: read from the Operator's CR
// (spec.dependencies.storage, spec.config.minio) or the Helm chart's rendered config.

const cr = (spec: Record<string, unknown>) => ({ metadata: { name: 'production-milvus' }, spec });

describe('externalObjectStorage from a Milvus CR', () => {
  it('reads the bucket, root path, endpoint and region of an external S3 bucket', () => {
    const found = externalObjectStorage({
      instance: 'production-milvus',
      milvusCr: cr({
        config: { minio: { bucketName: 'acme-milvus', rootPath: '/prod/files/', region: 'us-east-1', useIAM: true } },
        dependencies: { storage: { external: true, type: 'S3', endpoint: 's3.us-east-1.amazonaws.com:443', secretRef: 'milvus-s3' } },
      }),
    });

    expect(found).toEqual({ bucket: 'acme-milvus', rootPath: 'prod/files', endpoint: 's3.us-east-1.amazonaws.com:443', onAws: true, region: 'us-east-1', type: 'S3', declaredBy: 'milvus-cr' });
  });

  it("falls back to the Operator's bucket (the CR's name) and Milvus's root path (files)", () => {
    const found = externalObjectStorage({ instance: 'production-milvus', milvusCr: cr({ dependencies: { storage: { external: true, type: 'S3', endpoint: 's3.amazonaws.com:443' } } }) });

    expect(found).toMatchObject({ bucket: 'production-milvus', rootPath: 'files', onAws: true });
  });

  it('finds none for the in-cluster MinIO (its data is on PVCs)', () => {
    expect(externalObjectStorage({ instance: 'production-milvus', milvusCr: cr({ dependencies: { storage: { type: 'MinIO', inCluster: { values: { mode: 'distributed' } } } } }) })).toBeUndefined();
    expect(externalObjectStorage({ instance: 'production-milvus', milvusCr: cr({}) })).toBeUndefined();
  });
});

describe('awsS3Endpoint', () => {
  it.each([
    ['s3.us-east-1.amazonaws.com:443', 'us-east-1'],
    ['https://s3.eu-central-1.amazonaws.com', 'eu-central-1'],
    ['s3-us-west-2.amazonaws.com', 'us-west-2'],
    ['s3.dualstack.ap-southeast-2.amazonaws.com', 'ap-southeast-2'],
    ['s3-fips.us-gov-west-1.amazonaws.com', 'us-gov-west-1'],
    ['s3.amazonaws.com', undefined],
  ])('knows %s as AWS S3 in %s', (endpoint, region) => {
    expect(awsS3Endpoint(endpoint)).toEqual({ onAws: true, ...(region ? { region } : {}) });
  });

  it.each(['minio.storage.svc:9000', 's3.example.com', 'storage.googleapis.com:443', 's3.us-east-1.amazonaws.com.evil.example'])('knows %s is not AWS S3', (endpoint) => {
    expect(awsS3Endpoint(endpoint)).toEqual({ onAws: false });
  });
});

describe('externalObjectStorage from the Helm chart config', () => {
  const config = (minio: Record<string, unknown>) => ({ metadata: { name: 'my-release-milvus' }, data: { 'default.yaml': stringify({ minio: { address: 'my-release-minio', port: 9000, bucketName: 'milvus-bucket', rootPath: 'file' } }), 'user.yaml': stringify({ minio }) } });

  it('reads externalS3 as the chart renders it: an address other than the release MinIO', () => {
    const found = externalObjectStorage({ instance: 'my-release', helmConfig: config({ address: 's3.us-west-2.amazonaws.com', port: 443, bucketName: 'acme-milvus', rootPath: 'milvus', cloudProvider: 'aws', region: 'us-west-2' }) });

    expect(found).toEqual({ bucket: 'acme-milvus', rootPath: 'milvus', endpoint: 's3.us-west-2.amazonaws.com:443', onAws: true, region: 'us-west-2', type: 'S3', declaredBy: 'helm-config' });
  });

  it("finds none when the address is the release's own MinIO", () => {
    expect(externalObjectStorage({ instance: 'my-release', helmConfig: config({}) })).toBeUndefined();
  });
});

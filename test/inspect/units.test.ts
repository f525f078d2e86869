import { describe, expect, it } from '@jest/globals';
import { volumeRole } from '../../core/discovery/volumes.js';
import { formatLabelSelector } from '../../core/kube/selector.js';
import { serviceProxyPath } from '../../core/kube/request.js';

describe('formatLabelSelector', () => {
  it('renders matchLabels as equality terms', () => {
    expect(formatLabelSelector({ matchLabels: { 'app.kubernetes.io/instance': 'production-milvus', tier: 'db' } })).toBe(
      'app.kubernetes.io/instance=production-milvus,tier=db',
    );
  });

  it('renders every set-based operator in the API syntax', () => {
    const selector = formatLabelSelector({
      matchExpressions: [
        { key: 'component', operator: 'In', values: ['datanode', 'querynode'] },
        { key: 'tier', operator: 'NotIn', values: ['test'] },
        { key: 'milvus', operator: 'Exists' },
        { key: 'legacy', operator: 'DoesNotExist' },
      ],
    });
    expect(selector).toBe('component in (datanode,querynode),tier notin (test),milvus,!legacy');
  });
});

describe('volumeRole', () => {
  it.each([
    ['data-production-milvus-etcd-0', 'etcd'],
    ['export-production-milvus-minio-3', 'object-storage'],
    ['production-milvus-minio', 'object-storage'],
    ['production-milvus-pulsar-bookie-journal-production-milvus-pulsar-bookie-0', 'message-queue'],
    ['data-production-milvus-kafka-1', 'message-queue'],
    ['production-milvus-milvus', 'milvus-local'],
  ])('recognises %s as %s', (pvc, role) => {
    expect(volumeRole(pvc, 'production-milvus')).toBe(role);
  });

  it("ignores another instance's volumes that share a prefix", () => {
    expect(volumeRole('data-production-milvus-2-etcd-0', 'production-milvus')).toBeUndefined();
    expect(volumeRole('export-staging-milvus-minio-0', 'production-milvus')).toBeUndefined();
  });

  it('treats the instance name literally, not as a pattern', () => {
    expect(volumeRole('data-milvusXa-etcd-0', 'milvus.a')).toBeUndefined();
  });
});

describe('serviceProxyPath', () => {
  it('addresses a named port of a service through the API server', () => {
    expect(serviceProxyPath('vector-db', 'production-milvus-milvus', 19530, '/v2/vectordb/databases/list')).toBe(
      '/api/v1/namespaces/vector-db/services/production-milvus-milvus:19530/proxy/v2/vectordb/databases/list',
    );
  });
});

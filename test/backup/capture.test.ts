import { describe, expect, it } from '@jest/globals';
import { sanitizeManifest } from '../../core/backup/capture.js';

describe('sanitizeManifest', () => {
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'production-milvus-milvus',
      namespace: 'vector-db',
      uid: 'u-1',
      resourceVersion: '42',
      generation: 3,
      creationTimestamp: '2026-11-01T00:00:00Z',
      managedFields: [{ manager: 'milvus-operator' }],
      ownerReferences: [{ kind: 'Milvus', name: 'production-milvus', uid: 'u-0' }],
      labels: { app: 'milvus' },
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{...}' },
    },
    spec: { type: 'ClusterIP', clusterIP: '10.100.0.7', clusterIPs: ['10.100.0.7'], ports: [{ port: 19530 }] },
    status: { loadBalancer: {} },
  };

  it('drops everything the API server assigns and keeps what defines the object', () => {
    expect(sanitizeManifest(service)).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'production-milvus-milvus', namespace: 'vector-db', labels: { app: 'milvus' } },
      spec: { type: 'ClusterIP', ports: [{ port: 19530 }] },
    });
  });

  it('keeps no token, CA, namespace, account uid or cleaner labels the cluster issued into a ServiceAccount token Secret', () => {
    const token = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/service-account-token',
      metadata: { name: 'milvus-token', namespace: 'vector-db', labels: { 'kubernetes.io/legacy-token-last-used': '2026-11-30' }, annotations: { 'kubernetes.io/service-account.name': 'milvus', 'kubernetes.io/service-account.uid': 'u-9' } },
      data: { token: 'dG9rZW4=', 'ca.crt': 'Y2E=', namespace: 'dmVjdG9yLWRi' },
    };

    expect(sanitizeManifest(token)).toEqual({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/service-account-token', metadata: { name: 'milvus-token', namespace: 'vector-db', annotations: { 'kubernetes.io/service-account.name': 'milvus' } }, data: {} });
  });

  it('does not change the object it was given', () => {
    const copy = structuredClone(service);

    sanitizeManifest(service);

    expect(service).toEqual(copy);
  });

  it('keeps clusterIP None: a headless Service must come back headless', () => {
    const headless = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'production-milvus-etcd-headless' }, spec: { clusterIP: 'None', clusterIPs: ['None'], ports: [{ port: 2379 }] } };

    expect(sanitizeManifest(headless)).toEqual(headless);
  });

  it('keeps clusterIP fields of kinds other than Service', () => {
    const odd = { apiVersion: 'example.io/v1', kind: 'Thing', metadata: { name: 'x' }, spec: { clusterIP: 'keep' } };

    expect(sanitizeManifest(odd)).toEqual(odd);
  });
});

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MilvusClient } from '../../core/milvus/client.js';
import { startTestCluster, type TestCluster } from './helpers.js';

// The local cluster's settle() waits for the simulated Milvus's work as for a container's: the
// background read of a load. The local runner's Wait states and Validate's polls are settles.

let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster({ seed: true });
}, 60_000);

afterAll(async () => {
  await t?.dispose();
});

describe('settle', () => {
  it('returns once a requested load has read its segments: the next poll says Loaded', async () => {
    const milvus = new MilvusClient(t.kc, { namespace: 'vector-db', service: 'production-milvus-milvus', restPort: 19530, managementPort: 9091 });
    expect(await milvus.loadState('analytics', 'session_vectors')).toBe('LoadStateNotLoad');

    await milvus.load('analytics', 'session_vectors');
    await t.cluster.settle();

    expect(await milvus.loadState('analytics', 'session_vectors')).toBe('LoadStateLoaded');
  });
});

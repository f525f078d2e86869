import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeConfigFromFile, makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { MilvusClient } from '../../core/milvus/client.js';
import { detectMilvusVersion } from '../../core/milvus/version.js';
import { startLocalCluster, type LocalCluster } from '../../local/cluster.js';
import { SEED_MILVUS, SEED_NAMESPACE } from '../../local/seed.js';

// A test picks the seeded Milvus version (the seed option behind `--milvus-version`); the
// product reads it back from the cluster, and the simulated Milvus behind the service proxy
// behaves like it.
let cluster: LocalCluster;
let stateDir: string;
let kube: KubeClients;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'mg-version-'));
  cluster = await startLocalCluster({ stateDir, port: 0, tickMs: 50, milvusVersion: 'v2.5.14' });
  kube = makeKubeClients(kubeConfigFromFile(cluster.kubeconfigPath));
});

afterAll(async () => {
  await cluster.stop();
  await rm(stateDir, { recursive: true, force: true });
});

describe('a local cluster seeded as Milvus v2.5.14', () => {
  test('the backup detects v2.5.14 from the Milvus CR', async () => {
    const found = await detectMilvusVersion(kube, SEED_NAMESPACE, SEED_MILVUS);
    expect(found).toMatchObject({ version: { kind: 'release', text: 'v2.5.14' }, source: `Milvus ${SEED_NAMESPACE}/${SEED_MILVUS} .spec.components.image` });
  });

  test('its GC pause answers no ticket, as 2.5 does', async () => {
    const milvus = new MilvusClient(kube.kc, { namespace: SEED_NAMESPACE, service: `${SEED_MILVUS}-milvus`, restPort: 19530, managementPort: 9091 });
    expect(await milvus.pauseGc(60)).toEqual({});
    expect(cluster.milvus.get(SEED_NAMESPACE, SEED_MILVUS)!.gcState()).toMatchObject({ paused: true, tickets: [] });
    await milvus.resumeGc(undefined);
    expect(cluster.milvus.get(SEED_NAMESPACE, SEED_MILVUS)!.gcState().paused).toBe(false);
  });
});

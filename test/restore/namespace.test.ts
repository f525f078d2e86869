import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { createNamespace, deleteNamespace, inspectNamespace, TargetNamespaceNotEmptyError } from '../../core/restore/namespace.js';
import { restoreLabels } from '../../core/restore/names.js';
import { startTestCluster, type TestCluster } from '../local/helpers.js';

// The target namespace checks against the local cluster, whose namespace controller adds the
// default ServiceAccount and kube-root-ca.crt to every namespace, as a real cluster does.

let t: TestCluster;
let kube: KubeClients;

beforeAll(async () => {
  t = await startTestCluster();
  kube = makeKubeClients(t.kc);
}, 30_000);

afterAll(async () => {
  await t?.dispose();
});

const settle = () => t.cluster.settle();

describe('inspectNamespace', () => {
  it('reports a namespace that does not exist as absent and empty', async () => {
    expect(await inspectNamespace(kube, 'nowhere')).toEqual({ exists: false, empty: true, found: [] });
  });

  it('does not count what Kubernetes puts in every namespace', async () => {
    await t.core.createNamespace({ body: { metadata: { name: 'fresh' } } });
    await settle();
    expect(await inspectNamespace(kube, 'fresh')).toEqual({ exists: true, empty: true, found: [] });
  });

  it('lists what is in a namespace that is not empty, as Kind/name', async () => {
    await t.core.createNamespace({ body: { metadata: { name: 'used' } } });
    await t.core.createNamespacedConfigMap({ namespace: 'used', body: { metadata: { name: 'milvus-config' }, data: {} } });
    await t.core.createNamespacedSecret({ namespace: 'used', body: { metadata: { name: 'root' }, data: {} } });
    await settle();
    expect(await inspectNamespace(kube, 'used')).toEqual({ exists: true, empty: false, found: ['ConfigMap/milvus-config', 'Secret/root'] });
  });
});

describe('TargetNamespaceNotEmptyError', () => {
  it('names up to ten objects and says how to proceed', () => {
    const found = Array.from({ length: 12 }, (_, i) => `ConfigMap/c${i}`);
    const err = new TargetNamespaceNotEmptyError('vector-db', found);
    expect(err.name).toBe('TargetNamespaceNotEmpty');
    expect(err.message).toContain('ConfigMap/c9 and 2 more');
    expect(err.message).not.toContain('ConfigMap/c10');
    expect(err.message).toMatch(/does not exist.*or empty this one/);
  });
});

describe('createNamespace', () => {
  it('creates the namespace with the restore labels', async () => {
    expect(await createNamespace(kube, 'target-a', restoreLabels('r-a'))).toEqual({ created: true });
    const ns = await t.core.readNamespace({ name: 'target-a' });
    expect(ns.metadata?.labels?.['milvus-guard.io/restore']).toBe('r-a');
  });

  it('reports a namespace an earlier attempt of the same restore made as its own', async () => {
    await createNamespace(kube, 'target-b', restoreLabels('r-b'));
    expect(await createNamespace(kube, 'target-b', restoreLabels('r-b'))).toEqual({ created: true });
  });

  it('does not claim a namespace that someone else made', async () => {
    await t.core.createNamespace({ body: { metadata: { name: 'theirs' } } });
    expect(await createNamespace(kube, 'theirs', restoreLabels('r-c'))).toEqual({ created: false });
  });
});

describe('deleteNamespace', () => {
  it('deletes the namespace with what is in it, and reports a namespace already gone', async () => {
    await createNamespace(kube, 'doomed', restoreLabels('r-d'));
    await t.core.createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'c' }, data: {} } });
    expect(await deleteNamespace(kube, 'doomed')).toBe(true);
    await settle();
    expect((await inspectNamespace(kube, 'doomed')).exists).toBe(false);
    expect(await deleteNamespace(kube, 'doomed')).toBe(false);
  });
});

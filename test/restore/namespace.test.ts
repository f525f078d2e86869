import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiException } from '@kubernetes/client-node';
import { makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { createNamespace, deleteNamespace, inspectNamespace, TargetNamespaceNotEmptyError } from '../../core/restore/namespace.js';
import { restoreLabels } from '../../core/restore/names.js';
import { startTestCluster, type TestCluster } from '../local/helpers.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { cleanUpRestoreStep } from '../../core/restore/workflow.js';
import type { PreparedRestore } from '../../core/workflow/restore-state.js';
import { restoreRecord } from '../cli/helpers.js';

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
  it('deletes the namespace with what is in it, and takes a namespace already gone (a retried step) as deleted', async () => {
    await createNamespace(kube, 'doomed', restoreLabels('r-d'));
    await t.core.createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'c' }, data: {} } });
    await deleteNamespace(kube, 'doomed');
    await settle();
    expect((await inspectNamespace(kube, 'doomed')).exists).toBe(false);
    await expect(deleteNamespace(kube, 'doomed')).resolves.toBeUndefined();
  });

  // The local cluster removes a namespace at once; a real one keeps it Terminating until its
  // content is gone, and answers another delete with this 409 (pkg/registry/core/namespace/storage).
  const terminating = new ApiException(409, 'Conflict', JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'Conflict', code: 409, message: 'Operation cannot be fulfilled on namespaces "doomed": The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.' }), {});
  const clients = (read: () => Promise<unknown>) => ({ core: { deleteNamespace: () => Promise.reject(terminating), readNamespace: read } }) as unknown as KubeClients;

  it('takes a namespace still Terminating from an earlier delete as deleted', async () => {
    await expect(deleteNamespace(clients(async () => ({ metadata: { name: 'doomed', deletionTimestamp: new Date() } })), 'doomed')).resolves.toBeUndefined();
    await expect(deleteNamespace(clients(() => Promise.reject(new ApiException(404, 'Not Found', '{}', {}))), 'doomed')).resolves.toBeUndefined();
  });

  it('fails on a 409 for a namespace that is not being deleted', async () => {
    await expect(deleteNamespace(clients(async () => ({ metadata: { name: 'doomed' } })), 'doomed')).rejects.toThrow(/delete Namespace doomed answered 409: .*ensuring all content/);
  });
});

describe('cleaning up after a restore stopped while it created its namespace', () => {
  const NOW = () => new Date('2026-11-23T10:05:00.000Z');
  /** The restore's record as CreateNamespace leaves it when stopped between the create and its record: no createdNamespace. */
  async function stopped(restoreId: string, namespace: string): Promise<{ catalog: InMemoryCatalog; restore: PreparedRestore }> {
    const catalog = new InMemoryCatalog();
    await catalog.createRestore(restoreRecord({ restoreId, targetNamespace: namespace, status: 'InProgress', completedAt: undefined, rtoSeconds: undefined, createdNamespace: undefined }));
    const restore = { restoreId, backupId: 'nightly-1', to: { cluster: { name: 'local' }, namespace }, cleanupOnFailure: true } as unknown as PreparedRestore;
    return { catalog, restore };
  }

  it('deletes the namespace the restore labelled as its own, though its record never said so, and records it', async () => {
    const { catalog, restore } = await stopped('r-half', 'half-made');
    await createNamespace(kube, 'half-made', restoreLabels('r-half'));

    const cleanup = await cleanUpRestoreStep({ catalog, kube: async () => kube, now: NOW }, restore);

    expect(cleanup.namespaceDeleted).toBe(true);
    expect((await catalog.getRestore('r-half'))?.createdNamespace).toBe(true);
    await settle();
    expect((await inspectNamespace(kube, 'half-made')).exists).toBe(false);
  });

  it("leaves a namespace without the restore's label", async () => {
    const { catalog, restore } = await stopped('r-other', 'someone-elses');
    await t.core.createNamespace({ body: { metadata: { name: 'someone-elses' } } });

    const cleanup = await cleanUpRestoreStep({ catalog, kube: async () => kube, now: NOW }, restore);

    expect(cleanup.namespaceDeleted).toBe(false);
    expect((await catalog.getRestore('r-other'))?.createdNamespace).toBeUndefined();
    expect((await inspectNamespace(kube, 'someone-elses')).exists).toBe(true);
  });
});

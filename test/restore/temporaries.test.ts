import { describe, expect, it } from '@jest/globals';
import { ApiException } from '@kubernetes/client-node';
import type { KubeClients } from '../../core/kube/connect.js';
import { deleteRestoreTemporaries } from '../../core/restore/volumes.js';

// A vault restore needs no VolumeSnapshot CRDs, so it may target a cluster without them (a DR or
// staging cluster no plan names). Such an API server answers a list of those kinds with 404 and
// a plain-text body (the group is not served: "404 page not found"), unlike an empty list.

const notServed = () => Promise.reject(new ApiException(404, 'Not Found', '404 page not found\n', {}));
const to = { cluster: { name: 'dr', eksClusterName: 'dr-eks', region: 'us-west-2' }, namespace: 'vector-db-dr' };

function clients(list: () => Promise<unknown>): KubeClients {
  return {
    batch: { listNamespacedJob: async () => ({ items: [] }) },
    core: { listNamespacedPod: async () => ({ items: [] }) },
    custom: { listNamespacedCustomObject: list, listClusterCustomObject: list },
  } as unknown as KubeClients;
}

describe("deleting a restore's temporary objects", () => {
  it('takes snapshot kinds the cluster does not serve as having no objects', async () => {
    await expect(deleteRestoreTemporaries(clients(notServed), { restoreId: 'r-1', to })).resolves.toEqual([]);
  });

  it('still fails on any other error listing them', async () => {
    const forbidden = () => Promise.reject(new ApiException(403, 'Forbidden', JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403, message: 'volumesnapshots.snapshot.storage.k8s.io is forbidden' }), {}));
    await expect(deleteRestoreTemporaries(clients(forbidden), { restoreId: 'r-1', to })).rejects.toThrow(/list VolumeSnapshots of r-1/);
  });
});

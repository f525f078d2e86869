/**
 * applyManifests creates one step of RESTORE_ORDER at a time and the objects of a step at once;
 * readManifests keeps the vault's key order whatever order its reads finish in. The API server
 * is a request function the test answers itself: between answers it sees exactly which creates
 * are waiting, so a restore that started the next step early, or created a step's objects one
 * at a time, shows in the pending list.
 */
import { describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { SecretSealer } from '../../core/backup/sealer.js';
import type { KubeClients } from '../../core/kube/connect.js';
import type { KubeRequest, KubeResponse } from '../../core/kube/request.js';
import { applyManifests, readManifests } from '../../core/restore/manifests.js';
import { manifestKey } from '../../core/vault/layout.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import type { PreparedRestore } from '../../core/workflow/restore-state.js';

const BACKUP = 'b-20260301-020000';
const FROM = 'vector-db';
const TO = 'vector-db-restored';

/** What the backup captured: three ConfigMaps, two Services, a Milvus CR. */
const OBJECTS = [
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'milvus-user', namespace: FROM }, data: { 'user.yaml': 'a: 1' } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'milvus', namespace: FROM }, spec: { ports: [{ port: 19530 }] } },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'hooks', namespace: FROM }, data: { x: 'y' } },
  { apiVersion: 'milvus.io/v1beta1', kind: 'Milvus', metadata: { name: 'milvus', namespace: FROM }, spec: { mode: 'cluster' } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'milvus-metrics', namespace: FROM }, spec: { ports: [{ port: 9091 }] } },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'tuning', namespace: FROM }, data: { z: 'w' } },
];

const keyOf = (o: (typeof OBJECTS)[number]): string =>
  manifestKey(BACKUP, { group: o.apiVersion.includes('/') ? o.apiVersion.split('/')[0]! : 'core', kind: o.kind, namespace: FROM, name: o.metadata.name });

async function vaultWithObjects(): Promise<InMemoryVaultStore> {
  const vault = new InMemoryVaultStore();
  for (const o of OBJECTS) await vault.put(keyOf(o), Buffer.from(stringify(o)));
  return vault;
}

const noSealer = { seal: () => Promise.reject(new Error('not used')), open: () => Promise.reject(new Error('not used')) } as unknown as SecretSealer;

/** Lets every promise chain that can move without an answer move (no I/O is involved). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('applying a backup\'s manifests', () => {
  it('creates the objects of one step of the order at once, and the next step only once they are created', async () => {
    const pending: { name: string; req: KubeRequest; answer: (r: KubeResponse) => void }[] = [];
    const send = (_kc: KubeConfig, req: KubeRequest): Promise<KubeResponse> =>
      new Promise((answer) => {
        const body = req.body as { kind: string; metadata: { name: string } };
        pending.push({ name: `${req.method} ${body.kind}/${body.metadata.name}`, req, answer });
      });
    /** Answers every waiting create with its own object, as the API server's 201 does. */
    const answerAll = (): void => {
      for (const p of pending.splice(0)) p.answer({ status: 201, headers: {}, body: JSON.stringify(p.req.body) });
    };
    const waiting = (): string[] => pending.map((p) => p.name).sort();
    const restore = { restoreId: 'r1', backupId: BACKUP, from: { namespace: FROM }, to: { namespace: TO }, storageClassMap: {} } as unknown as PreparedRestore;

    const applying = applyManifests({ vault: await vaultWithObjects(), sealer: noSealer }, { kc: new KubeConfig() } as KubeClients, restore, send);

    await settle();
    expect(waiting()).toEqual(['POST ConfigMap/hooks', 'POST ConfigMap/milvus-user', 'POST ConfigMap/tuning']);
    answerAll();
    await settle();
    expect(waiting()).toEqual(['POST Service/milvus', 'POST Service/milvus-metrics']);
    answerAll();
    await settle();
    expect(waiting()).toEqual(['POST Milvus/milvus']);
    expect(pending[0]!.req.path).toBe(`/apis/milvus.io/v1beta1/namespaces/${TO}/milvuses`);
    answerAll();
    expect(await applying).toEqual({ created: 6, existing: 0, secrets: 0 });
  });

  it('reads the manifests in key order, whichever read finishes first', async () => {
    const vault = await vaultWithObjects();
    // Reads answered last-asked first: results in completion order would come out reversed.
    const reads: (() => void)[] = [];
    const slow = new Proxy(vault, {
      get(target, property, receiver) {
        if (property !== 'get') return Reflect.get(target, property, receiver) as unknown;
        return (key: string) => new Promise<Buffer>((resolve, reject) => reads.push(() => void target.get(key).then(resolve, reject)));
      },
    });

    const reading = readManifests({ vault: slow, sealer: noSealer }, BACKUP);
    await settle();
    expect(reads).toHaveLength(OBJECTS.length);
    for (const read of reads.reverse()) read();

    expect((await reading).map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'ConfigMap/hooks',
      'ConfigMap/milvus-user',
      'ConfigMap/tuning',
      // milvus-metrics.yaml before milvus.yaml: '-' sorts before '.'.
      'Service/milvus-metrics',
      'Service/milvus',
      'Milvus/milvus',
    ]);
  });
});

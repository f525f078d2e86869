/**
 * applyManifests creates one step of RESTORE_ORDER at a time and the objects of a step at once;
 * readManifests keeps the vault's key order whatever order its reads finish in. The API server
 * is a request function the test answers itself: it waits for a step's creates to arrive and
 * then sees exactly which are waiting, so a restore that started the next step early shows in
 * the pending list, and one that created a step's objects one at a time never sends the rest.
 * readManifests also refuses what changed under the backup since VerifyBackup checked it.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { SecretSealer } from '../../core/backup/sealer.js';
import type { KubeClients } from '../../core/kube/connect.js';
import type { KubeRequest, KubeResponse } from '../../core/kube/request.js';
import { applyManifests, readManifests } from '../../core/restore/manifests.js';
import { BackupIntegrityError } from '../../core/restore/verify.js';
import { backupRecordKey, manifestKey, manifestsPrefix } from '../../core/vault/layout.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import type { PreparedRestore } from '../../core/workflow/restore-state.js';
import { commitManifests } from '../datamover/helpers.js';

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
  // backup.json commits to them, as Finalize writes it (readManifests reads only what it commits to).
  await commitManifests(vault, BACKUP, FROM);
  return vault;
}

const noSealer = { seal: () => Promise.reject(new Error('not used')), open: () => Promise.reject(new Error('not used')) } as unknown as SecretSealer;

/** Resolves once `count()` reaches `n`; `notify` is called after each change of it. */
function awaiter(count: () => number): { notify: () => void; until: (n: number) => Promise<void> } {
  const waiters: { n: number; resolve: () => void }[] = [];
  return {
    notify: () => {
      for (const w of waiters.filter((x) => count() >= x.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    },
    until: (n) => (count() >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

describe('applying a backup\'s manifests', () => {
  it('creates the objects of one step of the order at once, and the next step only once they are created', async () => {
    const pending: { name: string; req: KubeRequest; answer: (r: KubeResponse) => void }[] = [];
    let sent = 0;
    const requests = awaiter(() => sent);
    const send = (_kc: KubeConfig, req: KubeRequest): Promise<KubeResponse> =>
      new Promise((answer) => {
        const body = req.body as { kind: string; metadata: { name: string } };
        pending.push({ name: `${req.method} ${body.kind}/${body.metadata.name}`, req, answer });
        sent += 1;
        requests.notify();
      });
    /** Answers every waiting create with its own object, as the API server's 201 does. */
    const answerAll = (): void => {
      for (const p of pending.splice(0)) p.answer({ status: 201, headers: {}, body: JSON.stringify(p.req.body) });
    };
    const waiting = (): string[] => pending.map((p) => p.name).sort();
    const restore = { restoreId: 'r1', backupId: BACKUP, from: { namespace: FROM }, to: { namespace: TO }, storageClassMap: {} } as unknown as PreparedRestore;

    const applying = applyManifests({ vault: await vaultWithObjects(), sealer: noSealer }, { kc: new KubeConfig() } as KubeClients, restore, send);

    // Each step is awaited by the requests it makes; one that went out early shows in the next.
    await requests.until(3);
    expect(waiting()).toEqual(['POST ConfigMap/hooks', 'POST ConfigMap/milvus-user', 'POST ConfigMap/tuning']);
    answerAll();
    await requests.until(5);
    expect(waiting()).toEqual(['POST Service/milvus', 'POST Service/milvus-metrics']);
    answerAll();
    await requests.until(6);
    expect(waiting()).toEqual(['POST Milvus/milvus']);
    expect(pending[0]!.req.path).toBe(`/apis/milvus.io/v1beta1/namespaces/${TO}/milvuses`);
    answerAll();
    expect(await applying).toEqual({ created: 6, existing: 0, secrets: 0 });
  });

  it('reads the manifests in key order, whichever read finishes first', async () => {
    const vault = await vaultWithObjects();
    // Reads answered last-asked first: results in completion order would come out reversed.
    const reads: (() => void)[] = [];
    const asked = awaiter(() => reads.length);
    const slow = new Proxy(vault, {
      get(target, property, receiver) {
        if (property !== 'get') return Reflect.get(target, property, receiver) as unknown;
        return (key: string) =>
          // backup.json first, at once: it says which manifests there are.
          !key.startsWith(manifestsPrefix(BACKUP)) ? target.get(key) : new Promise<Buffer>((resolve, reject) => {
            reads.push(() => void target.get(key).then(resolve, reject));
            asked.notify();
          });
      },
    });

    const reading = readManifests({ vault: slow, sealer: noSealer }, BACKUP);
    // All six reads are asked for before any is answered (eight may run at once).
    await asked.until(OBJECTS.length);
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

  // VerifyBackup checked the manifests hours before (hydration runs in between): what changed
  // since is refused when they are read to be applied, before anything is created.
  it('refuses an object added under the backup since, naming it', async () => {
    const vault = await vaultWithObjects();
    const added = manifestKey(BACKUP, { group: 'rbac.authorization.k8s.io', kind: 'ClusterRoleBinding', name: 'everyone-admin' });
    await vault.put(added, Buffer.from('apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: everyone-admin\n'));

    const refused = await readManifests({ vault, sealer: noSealer }, BACKUP).catch((e: unknown) => e);

    expect(refused).toBeInstanceOf(BackupIntegrityError);
    expect((refused as BackupIntegrityError).breaks).toEqual([`${added} is not committed by backup.json: it was added after the backup`]);
  });

  it('refuses an object whose bytes changed since, naming it', async () => {
    const vault = await vaultWithObjects();
    const key = keyOf(OBJECTS[0]!);
    await vault.delete(key);
    await vault.put(key, Buffer.from(stringify({ ...OBJECTS[0], data: { 'user.yaml': 'a: 2' } })));

    const refused = await readManifests({ vault, sealer: noSealer }, BACKUP).catch((e: unknown) => e);

    expect(refused).toBeInstanceOf(BackupIntegrityError);
    expect((refused as BackupIntegrityError).breaks).toEqual([expect.stringMatching(new RegExp(`^${key} was altered: \\d+ bytes with SHA-256 [0-9a-f]{64} where backup.json commits to \\d+ bytes with [0-9a-f]{64}$`))]);
  });

  it('refuses a backup whose committed object was deleted since, naming it, rather than restore without it', async () => {
    const vault = await vaultWithObjects();
    const key = keyOf(OBJECTS[1]!);
    await vault.delete(key);

    const refused = await readManifests({ vault, sealer: noSealer }, BACKUP).catch((e: unknown) => e);

    expect(refused).toBeInstanceOf(BackupIntegrityError);
    expect((refused as BackupIntegrityError).breaks).toEqual([`${key} is committed by backup.json but missing from the vault`]);
  });

  it('refuses a backup.json other than the one the record holds the hash of', async () => {
    const vault = await vaultWithObjects();
    const recorded = createHash('sha256').update(await vault.get(backupRecordKey(BACKUP))).digest('hex');
    await expect(readManifests({ vault, sealer: noSealer }, BACKUP, recorded)).resolves.toHaveLength(OBJECTS.length);
    const body = await vault.get(backupRecordKey(BACKUP));
    await vault.delete(backupRecordKey(BACKUP));
    await vault.put(backupRecordKey(BACKUP), Buffer.concat([body, Buffer.from('\n')]));

    await expect(readManifests({ vault, sealer: noSealer }, BACKUP, recorded)).rejects.toThrow(`backups/${BACKUP}/backup.json is not the document the backup wrote`);
  });
});

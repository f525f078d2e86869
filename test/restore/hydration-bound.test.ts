/**
 * The hydration bound and small etcd volumes: at most `hydrationConcurrency` Jobs run at once,
 * largest first, while an etcd volume whose backup holds at most SMALL_ETCD_BYTES starts with the
 * first wave and neither takes nor frees a slot; object storage keeps the bound whatever its
 * size. Against a recording Kubernetes fake (PVCs and Jobs kept in maps, a Job completed when the
 * test says) and an in-memory vault holding a backup's index and PVC manifests.
 */
import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { stringify } from 'yaml';
import type { V1Job, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { KubeClients } from '../../core/kube/connect.js';
import { hydrateJobName } from '../../core/restore/names.js';
import { checkVolumeRestore, hydrateJob, readBackupVolumes, SMALL_ETCD_BYTES, startQueuedHydrations, startVolumeRestore, type HydrationContext } from '../../core/restore/volumes.js';
import { BackupIntegrityError } from '../../core/restore/verify.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import type { CommittedObject } from '../../core/vault/backup-index.js';
import { backupRecordKey, manifestKey } from '../../core/vault/layout.js';
import { VolumeRestore, type PreparedRestore } from '../../core/workflow/restore-state.js';

const BACKUP = 'nightly-1';
const FROM = 'vector-db';
const TO = 'vector-db-restored';
const NOW = new Date('2026-12-06T02:00:00.000Z');
const MiB = 1024 * 1024;
const GiB = 1024 * 1024 * 1024;

const restore: PreparedRestore = {
  restoreId: 'nightly-1-r-1',
  backupId: BACKUP,
  plan: 'production',
  source: 'vault',
  from: { cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'us-east-1' }, namespace: FROM },
  to: { cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'us-east-1' }, namespace: TO },
  vault: { name: 'primary', bucket: 'memory://vault', region: 'us-east-1' },
  milvus: { service: 'production-milvus', restPort: 19530, managementPort: 9091 },
  storageClassMap: {},
  cleanupOnFailure: false,
  validateRowCounts: true,
  executionId: 'test',
  requestedAt: '2026-12-06T02:00:00.000Z',
};

const ctx: HydrationContext = {
  dataMover: { image: 'milvus-guard-datamover:test', vaultUrl: 'memory://vault', vaultArgs: [], serviceAccountName: 'milvus-guard-datamover' },
  timings: { volumeTimeoutSeconds: 3600, hydrationConcurrency: 4 },
};

/**
 * A Milvus cluster's volumes: three etcd of 420 MiB (six WAL segments preallocated at 64 MB and a
 * small db), MinIO of hundreds of GiB.
 */
const etcd = (i: number, bytes = 420 * MiB) => ({ pvc: `data-production-milvus-etcd-${i}`, role: 'etcd', bytes });
const minio = (i: number, gib: number) => ({ pvc: `export-production-milvus-minio-${i}`, role: 'object-storage', bytes: gib * GiB });
const ETCD = [etcd(0), etcd(1), etcd(2)];
const MINIO = [minio(0, 400), minio(1, 380), minio(2, 350), minio(3, 300)];

const job = (pvc: string) => hydrateJobName(restore.restoreId, pvc);

/** What the backup's index commits to for the summary of `pvc` (a stand-in digest per volume). */
const summaryHash = (pvc: string): string => createHash('sha256').update(`summary of ${pvc}`).digest('hex');

/** A backup in the vault: its index (`bytesTotal` only where `bytes` is given) and a PVC manifest per volume. */
async function vaultWith(volumes: readonly { pvc: string; role: string; bytes?: number }[], manifests?: readonly CommittedObject[]): Promise<InMemoryVaultStore> {
  const vault = new InMemoryVaultStore();
  const index = {
    ...(manifests ? { manifests } : {}),
    namespace: FROM,
    volumes: volumes.map((v) => ({ pvc: v.pvc, role: v.role, snapshot: `${BACKUP}-${v.pvc}`, summarySha256: summaryHash(v.pvc), ...(v.bytes === undefined ? {} : { bytesTotal: v.bytes }) })),
  };
  await vault.put(backupRecordKey(BACKUP), Buffer.from(JSON.stringify(index)));
  for (const v of volumes) {
    const manifest = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: v.pvc, namespace: FROM }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'gp3', resources: { requests: { storage: '500Gi' } } } };
    await vault.put(manifestKey(BACKUP, { group: 'core', kind: 'PersistentVolumeClaim', namespace: FROM, name: v.pvc }), Buffer.from(stringify(manifest)));
  }
  return vault;
}

const notFound = () => Object.assign(new Error('not found'), { code: 404 });
const conflict = () => Object.assign(new Error('already exists'), { code: 409 });

/** A Kubernetes API that keeps PVCs and Jobs and records every Job created, in order. */
function fakeKube() {
  const pvcs = new Map<string, V1PersistentVolumeClaim>();
  const jobs = new Map<string, V1Job>();
  const created: string[] = [];
  const matches = (labels: Record<string, string> | undefined, selector: string) => selector.split(',').every((term) => labels?.[term.split('=')[0]!] === term.split('=')[1]);
  const kube = {
    core: {
      createNamespacedServiceAccount: async (req: { body: unknown }) => req.body,
      createNamespacedPersistentVolumeClaim: async (req: { body: V1PersistentVolumeClaim }) => {
        if (pvcs.has(req.body.metadata!.name!)) throw conflict();
        pvcs.set(req.body.metadata!.name!, req.body);
        return req.body;
      },
      readNamespacedPersistentVolumeClaim: async (req: { name: string }) => pvcs.get(req.name) ?? Promise.reject(notFound()),
    },
    batch: {
      createNamespacedJob: async (req: { body: V1Job }) => {
        const name = req.body.metadata!.name!;
        if (jobs.has(name)) throw conflict();
        jobs.set(name, req.body);
        created.push(name);
        return req.body;
      },
      readNamespacedJob: async (req: { name: string }) => jobs.get(req.name) ?? Promise.reject(notFound()),
      listNamespacedJob: async (req: { labelSelector: string }) => ({ items: [...jobs.values()].filter((j) => matches(j.metadata?.labels, req.labelSelector)) }),
    },
  };
  /** The Job controller's verdict: the Job of `pvc` completed. */
  const complete = (pvc: string) => {
    jobs.get(job(pvc))!.status = { conditions: [{ type: 'Complete', status: 'True' }] };
  };
  return { kube: kube as unknown as KubeClients, created, jobs, complete };
}

let k: ReturnType<typeof fakeKube>;
beforeEach(() => {
  k = fakeKube();
});

/** One CheckVolumes poll: check, then start queued volumes in the free slots. */
async function poll(state: VolumeRestore): Promise<{ state: VolumeRestore; started: string[] }> {
  const checked = await checkVolumeRestore(k.kube, restore, state, NOW);
  return startQueuedHydrations(ctx, k.kube, restore, checked, NOW);
}

describe('small etcd volumes hydrate outside the bound', () => {
  it('takes an etcd volume of 600 MiB, above a real etcd\'s preallocated WAL, as small', async () => {
    const vault = await vaultWith([...MINIO, etcd(0, 600 * MiB)]);

    const started = await startVolumeRestore(ctx, k.kube, vault, restore, NOW);

    expect(started.items.find((i) => i.pvc === etcd(0).pvc)).toMatchObject({ small: true, job: job(etcd(0).pvc) });
    expect(k.created).toHaveLength(5);
  });

  it('takes an etcd volume of up to SMALL_ETCD_BYTES (5 GiB) as small, and one byte more waits for a slot', async () => {
    const edge = etcd(0, 5 * GiB);
    const over = etcd(1, 5 * GiB + 1);
    const vault = await vaultWith([...MINIO, over, edge]);

    const started = await startVolumeRestore({ ...ctx, timings: { volumeTimeoutSeconds: 3600 } }, k.kube, vault, restore, NOW);

    expect(SMALL_ETCD_BYTES).toBe(edge.bytes);
    expect(started.items.filter((i) => i.job === undefined).map((i) => i.pvc)).toEqual([over.pvc]);
    expect(started.items.find((i) => i.pvc === over.pvc)?.small).toBeUndefined();
    expect(started.items.find((i) => i.pvc === edge.pvc)?.small).toBe(true);
  });

  it('keeps object-storage volumes in the bound whatever their size: 600 MiB, or a dev MinIO\'s 256 MiB of 4 KiB objects', async () => {
    const mid = { pvc: 'export-production-milvus-minio-4', role: 'object-storage', bytes: 600 * MiB };
    const dev = { pvc: 'export-production-milvus-minio-5', role: 'object-storage', bytes: 256 * MiB };
    const vault = await vaultWith([...MINIO, mid, dev]);

    const started = await startVolumeRestore(ctx, k.kube, vault, restore, NOW);

    expect(started.items.filter((i) => i.job === undefined).map((i) => i.pvc)).toEqual([mid.pvc, dev.pvc]);
    expect(started.items.some((i) => i.small)).toBe(false);
    expect(k.created).toEqual(MINIO.map((v) => job(v.pvc)));
  });

  it('puts every volume in the bound with smallEtcdBytes 0, an empty etcd volume included', async () => {
    const empty = etcd(0, 0);
    const vault = await vaultWith([...MINIO, empty]);

    const started = await startVolumeRestore({ ...ctx, timings: { ...ctx.timings, smallEtcdBytes: 0 } }, k.kube, vault, restore, NOW);

    expect(started.items.filter((i) => i.job === undefined).map((i) => i.pvc)).toEqual([empty.pvc]);
    expect(started.items.find((i) => i.pvc === empty.pvc)?.small).toBeUndefined();
  });

  it('starts all seven Jobs of 3 small etcd and 4 large MinIO volumes at once with the bound 4, and a later poll starts nothing', async () => {
    const vault = await vaultWith([...ETCD, ...MINIO]);

    const started = await startVolumeRestore(ctx, k.kube, vault, restore, NOW);

    expect(k.created).toHaveLength(7);
    expect(started.items.every((i) => i.job !== undefined)).toBe(true);
    // Largest first as before: the four MinIO Jobs, then the etcd ones beside them.
    expect(k.created.slice(0, 4)).toEqual(MINIO.map((v) => job(v.pvc)));
    expect(started.items.filter((i) => i.small).map((i) => i.pvc)).toEqual(ETCD.map((v) => v.pvc));
    const again = await poll(started);
    expect(again.started).toEqual([]);
    expect(k.created).toHaveLength(7);
  });

  it('keeps large volumes to the bound, largest first, whatever the small ones do', async () => {
    const vault = await vaultWith([...ETCD, ...MINIO, minio(4, 200)]);

    // Prepare: the bound 4 holds the four largest MinIO volumes; the fifth waits, etcd does not.
    let state = await startVolumeRestore(ctx, k.kube, vault, restore, NOW);
    expect(state.items.filter((i) => i.job === undefined).map((i) => i.pvc)).toEqual(['export-production-milvus-minio-4']);

    // The small volumes finishing free no slot: the fifth MinIO volume still waits.
    for (const v of ETCD) k.complete(v.pvc);
    let next = await poll(state);
    expect(next.state.items.filter((i) => i.done).map((i) => i.pvc)).toEqual(ETCD.map((v) => v.pvc));
    expect(next.started).toEqual([]);

    // A large one finishing frees one slot, and the fifth starts there.
    k.complete(MINIO[0]!.pvc);
    state = next.state;
    next = await poll(state);
    expect(next.started).toEqual(['export-production-milvus-minio-4']);
    expect(k.created).toHaveLength(8);
    // Every Job, the queued one too, refuses any summary but the one backup.json commits to.
    for (const [name, j] of k.jobs) {
      const args = j.spec!.template.spec!.containers[0]!.args!;
      const pvc = args[args.indexOf('--volume') + 1]!;
      expect([name, args[args.indexOf('--summary-sha256') + 1]]).toEqual([name, summaryHash(pvc)]);
    }
  });

  it('does not count running small Jobs when it fills the slots finished large ones left', async () => {
    // Two large Jobs done, two running, the three small ones running, two large queued.
    const state: VolumeRestore = {
      items: [
        ...MINIO.map((v, i) => ({ pvc: v.pvc, role: v.role, job: job(v.pvc), done: i < 2 })),
        ...[minio(4, 200), minio(5, 100)].map((v) => ({ pvc: v.pvc, role: v.role, done: false })),
        ...ETCD.map((v) => ({ pvc: v.pvc, role: v.role, small: true, job: job(v.pvc), done: false })),
      ],
      ready: false,
      deadline: '2026-12-06T03:00:00.000Z',
    };

    const next = await startQueuedHydrations(ctx, k.kube, restore, state, NOW);

    expect(next.started).toEqual(['export-production-milvus-minio-4', 'export-production-milvus-minio-5']);
  });

  it('keeps an etcd volume of unknown size waiting for a slot, while a small one beside it starts', async () => {
    const unknown = { pvc: 'data-production-milvus-etcd-1', role: 'etcd' };
    const vault = await vaultWith([...MINIO, unknown, etcd(0)]);

    const started = await startVolumeRestore(ctx, k.kube, vault, restore, NOW);

    expect(started.items.filter((i) => i.job === undefined).map((i) => i.pvc)).toEqual([unknown.pvc]);
    expect(started.items.find((i) => i.pvc === unknown.pvc)?.small).toBeUndefined();
    expect(k.created).toContain(job(etcd(0).pvc));
  });

  it('does not count a small volume\'s Job a retried step finds against the bound', async () => {
    const vault = await vaultWith([...ETCD, ...MINIO]);
    // Prepare: the etcd Jobs exist already, as a first attempt left them.
    for (const v of ETCD) await k.kube.batch.createNamespacedJob({ namespace: TO, body: hydrateJob(ctx.dataMover, 3600, restore, v) });

    const retried = await startVolumeRestore(ctx, k.kube, vault, restore, NOW);

    expect(retried.items.filter((i) => i.job === undefined)).toEqual([]);
    expect([...k.jobs.keys()].sort()).toEqual([...ETCD, ...MINIO].map((v) => job(v.pvc)).sort());
  });

  it('counts a running item without the `small` field, as an older execution wrote it, against the bound', async () => {
    // An execution started before the field: three MinIO Jobs and one etcd Job running, one MinIO queued.
    const old = VolumeRestore.parse(
      JSON.parse(
        JSON.stringify({
          items: [
            ...MINIO.slice(0, 3).map((v) => ({ pvc: v.pvc, role: v.role, job: job(v.pvc), done: false })),
            { pvc: MINIO[3]!.pvc, role: 'object-storage', done: false },
            { pvc: ETCD[0]!.pvc, role: 'etcd', job: job(ETCD[0]!.pvc), done: false },
          ],
          ready: false,
          deadline: '2026-12-06T03:00:00.000Z',
        }),
      ),
    );

    const next = await startQueuedHydrations(ctx, k.kube, restore, old, NOW);

    expect(next.started).toEqual([]);
    expect(next.state.items.find((i) => i.pvc === MINIO[3]!.pvc)?.job).toBeUndefined();
  });
});

describe('the volumes read hours after VerifyBackup', () => {
  const pvcKey = (pvc: string) => manifestKey(BACKUP, { group: 'core', kind: 'PersistentVolumeClaim', namespace: FROM, name: pvc });
  /** The vault of one etcd volume whose backup.json commits to its PVC manifest as written. */
  async function committed(): Promise<{ vault: InMemoryVaultStore; indexSha256: string }> {
    const plain = await vaultWith([etcd(0)]);
    const body = await plain.get(pvcKey(etcd(0).pvc));
    const vault = await vaultWith([etcd(0)], [{ key: pvcKey(etcd(0).pvc), sha256: createHash('sha256').update(body).digest('hex'), size: body.length }]);
    return { vault, indexSha256: createHash('sha256').update(await vault.get(backupRecordKey(BACKUP))).digest('hex') };
  }

  it('are read from the backup.json the record anchors, each PVC manifest as committed', async () => {
    const { vault, indexSha256 } = await committed();

    expect(await readBackupVolumes(vault, BACKUP, indexSha256)).toEqual([expect.objectContaining({ pvc: etcd(0).pvc, size: '500Gi', summarySha256: summaryHash(etcd(0).pvc) })]);
    await expect(readBackupVolumes(vault, BACKUP, createHash('sha256').update('other').digest('hex'))).rejects.toThrow(`backups/${BACKUP}/backup.json is not the document the backup wrote`);
  });

  it('refuses a PVC manifest that changed, or one backup.json does not commit to', async () => {
    const { vault, indexSha256 } = await committed();
    const key = pvcKey(etcd(0).pvc);
    const body = await vault.get(key);
    await vault.delete(key);
    await vault.put(key, Buffer.from(body.toString('utf8').replace('500Gi', '1Gi')));

    await expect(readBackupVolumes(vault, BACKUP, indexSha256)).rejects.toThrow(BackupIntegrityError);
    await expect(readBackupVolumes(vault, BACKUP, indexSha256)).rejects.toThrow(`${key} was altered`);

    const uncommitted = await vaultWith([etcd(0)], []);
    await expect(readBackupVolumes(uncommitted, BACKUP)).rejects.toThrow(`${key} is not committed by backup.json`);
  });

  it('takes a size from the inventory backup.json commits to, and refuses one altered or gone', async () => {
    const inventoryKey = `backups/${BACKUP}/inventory.json`;
    const inventory = Buffer.from(JSON.stringify({ volumes: [{ pvc: etcd(0).pvc, capacity: '600Gi', storageClass: 'gp3' }] }));
    const vault = await vaultWith([etcd(0)]);
    const document = JSON.parse((await vault.get(backupRecordKey(BACKUP))).toString()) as object;
    await vault.delete(backupRecordKey(BACKUP));
    await vault.put(backupRecordKey(BACKUP), Buffer.from(JSON.stringify({ ...document, inventoryKey, inventorySha256: createHash('sha256').update(inventory).digest('hex') })));
    await vault.put(inventoryKey, inventory);

    expect((await readBackupVolumes(vault, BACKUP))[0]).toMatchObject({ size: '600Gi' });

    await vault.delete(inventoryKey);
    await vault.put(inventoryKey, Buffer.from(JSON.stringify({ volumes: [{ pvc: etcd(0).pvc, capacity: '900Ti', storageClass: 'gp3' }] })));
    await expect(readBackupVolumes(vault, BACKUP)).rejects.toThrow(BackupIntegrityError);
    await expect(readBackupVolumes(vault, BACKUP)).rejects.toThrow(new RegExp(`${inventoryKey} was altered: its SHA-256 is [0-9a-f]{64} where backup.json commits to [0-9a-f]{64}`));

    await vault.delete(inventoryKey);
    await expect(readBackupVolumes(vault, BACKUP)).rejects.toThrow(`${inventoryKey} is missing`);
  });
});

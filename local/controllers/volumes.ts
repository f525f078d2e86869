/**
 * Dynamic provisioning, like the EBS CSI driver with a `gp3` default StorageClass: a PVC
 * gets a PersistentVolume `pvc-<uid>` backed by a real directory, then `Bound`. Only for a
 * StorageClass this cluster serves whose provisioner is that driver, as on a real cluster: a PVC
 * of a class that does not exist, of another provisioner's class, or of class "" (static
 * binding only) stays Pending; one without a class got the default class when it was created
 * (the API server's DefaultStorageClass admission), or stays Pending until a class is made
 * default, which is then written into it (retroactive assignment). A class
 * with `volumeBindingMode: WaitForFirstConsumer` (EKS's own gp2, the EBS CSI driver's examples)
 * provisions only once a pod that mounts the claim exists, as the scheduler's selected-node
 * annotation makes the external provisioner do. A PVC whose
 * `spec.dataSource` is a VolumeSnapshot in its namespace starts as a copy of the cloud
 * snapshot behind the snapshot's bound content (its snapshot handle), whether the content
 * was made by a dynamic snapshot or pre-provisioned from a handle; it stays Pending until the
 * snapshot is ready, and while that cloud snapshot does not exist. Deleting a PVC deletes its
 * PV (reclaim policy Delete) and the directory.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { defaultStorageClass, typeOf } from '../server/resources.js';
import type { KubeObject } from '../server/store.js';
import { copyTree } from '../volumes.js';
import type { Controller, ControllerContext } from './context.js';

/** The StorageClass a PVC without one gets (EKS clusters commonly make `gp3` the default). */
export const DEFAULT_STORAGE_CLASS = 'gp3';
/** The CSI driver the local volumes and snapshots claim to come from. */
export const CSI_DRIVER = 'ebs.csi.aws.com';
/**
 * Provisioners whose classes this cluster serves: the EBS CSI driver, and the in-tree EBS plugin
 * of EKS's own gp2 class, which CSI migration hands to that driver.
 */
const SERVED_PROVISIONERS = new Set([CSI_DRIVER, 'kubernetes.io/aws-ebs']);

/**
 * Serves the default StorageClass the provisioner below stands for, as an EKS cluster with the
 * EBS CSI driver does: marked default, `Immediate` binding (this provisioner binds at once). A
 * cluster state saved before it was served gets it when loaded.
 */
export function ensureDefaultStorageClass(store: ControllerContext['store']): void {
  if (store.get(STORAGE_CLASS, undefined, DEFAULT_STORAGE_CLASS)) return;
  store.create(STORAGE_CLASS, {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: DEFAULT_STORAGE_CLASS, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: CSI_DRIVER,
    parameters: { type: 'gp3' },
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
    allowVolumeExpansion: true,
  });
}

const PVC = typeOf('PersistentVolumeClaim');
const POD = typeOf('Pod');
const STORAGE_CLASS = typeOf('StorageClass');
const PV = typeOf('PersistentVolume');
const SNAPSHOT = typeOf('VolumeSnapshot');
const CONTENT = typeOf('VolumeSnapshotContent');

/** The provisioner and binder of PersistentVolumeClaims. */
export class VolumeController implements Controller {
  readonly name = 'volumes';

  constructor(private readonly ctx: ControllerContext) {}

  async reconcile(): Promise<boolean> {
    let changed = false;
    for (const pvc of this.ctx.store.list(PVC)) {
      if (pvc.status?.phase === 'Bound') continue;
      changed = (await this.provision(pvc)) || changed;
    }
    changed = (await this.reclaim()) || changed;
    return changed;
  }

  /**
   * Why `pvc` cannot be provisioned yet (kube-controller-manager's and external-provisioner's
   * reasons, as their Events give them), or its class when it can.
   */
  private classOf(pvc: KubeObject): { name: string } | { waiting: string } | { assigned: string } {
    const { store } = this.ctx;
    const explicit: string | undefined = pvc.spec.storageClassName ?? undefined;
    if (explicit === '') return { waiting: 'no persistent volumes available for this claim and no storage class is set' };
    // A claim without a class was created while none was default (admission gives the default
    // class at create); the PV controller's retroactive assignment (KEP-3333, GA in Kubernetes
    // 1.28) writes the default class into such a claim, if it names no volume, once there is one.
    const cls = explicit === undefined ? defaultStorageClass(store.list(STORAGE_CLASS)) : store.list(STORAGE_CLASS).find((c) => c.metadata.name === explicit);
    if (!cls) return { waiting: explicit !== undefined ? `storageclass.storage.k8s.io "${explicit}" not found` : 'no persistent volumes available for this claim and no storage class is set' };
    if (explicit === undefined && !pvc.spec.volumeName) {
      const current = store.get(PVC, pvc.metadata.namespace, pvc.metadata.name);
      if (current && current.metadata.uid === pvc.metadata.uid) store.replace(PVC, { ...current, spec: { ...current.spec, storageClassName: cls.metadata.name } });
      return { assigned: cls.metadata.name };
    }
    if (!SERVED_PROVISIONERS.has(String(cls.provisioner))) return { waiting: `waiting for a volume to be created by the external provisioner "${String(cls.provisioner)}"` };
    if (cls.volumeBindingMode === 'WaitForFirstConsumer' && !this.consumed(pvc)) return { waiting: 'waiting for first consumer to be created before binding' };
    return { name: cls.metadata.name };
  }

  /** Whether a pod that has not ended mounts `pvc` (what a scheduler would place and select a node for). */
  private consumed(pvc: KubeObject): boolean {
    return this.ctx.store
      .list(POD, pvc.metadata.namespace)
      .some(
        (pod) =>
          !['Succeeded', 'Failed'].includes(pod.status?.phase) &&
          ((pod.spec?.volumes ?? []) as { persistentVolumeClaim?: { claimName: string } }[]).some((v) => v.persistentVolumeClaim?.claimName === pvc.metadata.name),
      );
  }

  private async provision(pvc: KubeObject): Promise<boolean> {
    const { store, dirs } = this.ctx;
    const ns = pvc.metadata.namespace!;
    const cls = this.classOf(pvc);
    if ('assigned' in cls) return true; // provisioned on the next pass, from the claim as it is now
    if ('waiting' in cls) return this.pending(pvc, cls.waiting);
    let source: string | undefined;
    let sourceSize: string | undefined;
    const dataSource = pvc.spec.dataSourceRef ?? pvc.spec.dataSource;
    if (dataSource) {
      if (dataSource.kind !== 'VolumeSnapshot') return this.pending(pvc, `data source kind ${dataSource.kind} is not supported; use a VolumeSnapshot`);
      const snapshot = store.get(SNAPSHOT, ns, dataSource.name);
      if (!snapshot?.status?.readyToUse) return this.pending(pvc, `waiting for VolumeSnapshot ${ns}/${dataSource.name} to be ready to use`);
      const content = store.get(CONTENT, undefined, snapshot.status.boundVolumeSnapshotContentName);
      const handle: string | undefined = content?.status?.snapshotHandle ?? content?.spec?.source?.snapshotHandle;
      if (!handle || !existsSync(dirs.snapshot(handle))) {
        return this.pending(pvc, `failed to provision volume: the snapshot ${handle ?? '(no handle)'} behind VolumeSnapshot ${ns}/${dataSource.name} does not exist`);
      }
      source = dirs.snapshot(handle);
      sourceSize = snapshot.status.restoreSize;
    }
    const pvName = pvc.spec.volumeName || `pvc-${pvc.metadata.uid}`;
    if (!store.get(PV, undefined, pvName)) {
      if (source) await copyTree(source, dirs.volume(pvName));
      else await mkdir(dirs.volume(pvName), { recursive: true });
      const current = store.get(PVC, ns, pvc.metadata.name);
      if (current?.metadata.uid !== pvc.metadata.uid) {
        await rm(dirs.volume(pvName), { recursive: true, force: true }); // deleted while we copied
        return true;
      }
      store.create(PV, {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: pvName, annotations: { 'pv.kubernetes.io/provisioned-by': CSI_DRIVER } },
        spec: {
          capacity: { storage: pvc.spec.resources.requests.storage ?? sourceSize },
          accessModes: pvc.spec.accessModes,
          persistentVolumeReclaimPolicy: 'Delete',
          storageClassName: cls.name,
          volumeMode: pvc.spec.volumeMode ?? 'Filesystem',
          claimRef: { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: ns, name: pvc.metadata.name, uid: pvc.metadata.uid, resourceVersion: pvc.metadata.resourceVersion },
          csi: { driver: CSI_DRIVER, fsType: 'ext4', volumeHandle: `vol-${randomBytes(8).toString('hex').slice(0, 17)}` },
        },
      });
      const pv = store.require(PV, undefined, pvName);
      store.replace(PV, { ...pv, status: { phase: 'Bound' } }, { subresource: 'status' });
    }
    const fresh = store.require(PVC, ns, pvc.metadata.name);
    const bound = store.replace(PVC, {
      ...fresh,
      metadata: {
        ...fresh.metadata,
        annotations: {
          ...fresh.metadata.annotations,
          'pv.kubernetes.io/bind-completed': 'yes',
          'pv.kubernetes.io/bound-by-controller': 'yes',
          'volume.beta.kubernetes.io/storage-provisioner': CSI_DRIVER,
          'volume.kubernetes.io/storage-provisioner': CSI_DRIVER,
        },
      },
      spec: { ...fresh.spec, volumeName: pvName, storageClassName: cls.name, volumeMode: fresh.spec.volumeMode ?? 'Filesystem' },
    });
    store.replace(PVC, {
      ...bound,
      status: { phase: 'Bound', accessModes: fresh.spec.accessModes, capacity: { storage: fresh.spec.resources.requests.storage } },
    }, { subresource: 'status' });
    return true;
  }

  /**
   * Leaves a PVC Pending. Why it waits is not recorded on the object (the real controllers emit
   * Events, a kind this cluster does not serve), so it never leaks into captured manifests.
   */
  private pending(pvc: KubeObject, _why: string): boolean {
    if (pvc.status?.phase === 'Pending') return false;
    this.ctx.store.replace(PVC, { ...pvc, status: { phase: 'Pending' } }, { subresource: 'status' });
    return true;
  }

  /** Deletes PVs whose claim is gone (reclaim policy Delete) and directories no PV owns. */
  private async reclaim(): Promise<boolean> {
    const { store, dirs } = this.ctx;
    let changed = false;
    for (const pv of store.list(PV)) {
      const ref = pv.spec.claimRef;
      if (!ref || pv.spec.persistentVolumeReclaimPolicy !== 'Delete') continue;
      const claim = store.get(PVC, ref.namespace, ref.name);
      if (claim && claim.metadata.uid === ref.uid) continue;
      store.delete(PV, undefined, pv.metadata.name);
      changed = true;
    }
    const entries = await dirs.entries('volumes');
    // Read after the listing, as the snapshot sweep does: a volume provisioned meanwhile is no orphan.
    const live = new Set(store.list(PV).map((pv) => pv.metadata.name));
    for (const entry of entries) {
      if (!live.has(entry) && !store.list(PVC).some((c) => `pvc-${c.metadata.uid}` === entry)) {
        await rm(dirs.volume(entry), { recursive: true, force: true });
      }
    }
    return changed;
  }
}

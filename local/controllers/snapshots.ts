/**
 * The CSI snapshot controller and driver in one. The content of a VolumeSnapshot is frozen in
 * the create request itself (`freeze`, called by the API server before it answers), so writes
 * to the PVC after the snapshot was created never leak into it. The controller then binds a
 * VolumeSnapshotContent `snapcontent-<uid>` and marks the snapshot ready, or records
 * `status.error` when the PVC is missing or a fault says snapshots of the PVC fail.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { typeOf } from '../server/resources.js';
import type { KubeObject } from '../server/store.js';
import { copyTree, treeSize } from '../volumes.js';
import type { Controller, ControllerContext } from './context.js';
import { CSI_DRIVER } from './volumes.js';

/** The VolumeSnapshotClass a snapshot without one gets. */
export const DEFAULT_SNAPSHOT_CLASS = 'csi-aws-vsc';

const SNAPSHOT = typeOf('VolumeSnapshot');
const CONTENT = typeOf('VolumeSnapshotContent');
const CLASS = typeOf('VolumeSnapshotClass');
const PVC = typeOf('PersistentVolumeClaim');
const PV = typeOf('PersistentVolume');

type Frozen = { ok: true; bytes: number } | { ok: false; message: string };

/** Snapshot controller: freezing, content binding, readiness, deletion. */
export class SnapshotController implements Controller {
  readonly name = 'snapshots';
  /** Outcome of freezing, by snapshot uid; absent while the copy is running. */
  private readonly frozen = new Map<string, Frozen>();
  private readonly freezing = new Map<string, Promise<void>>();

  constructor(private readonly ctx: ControllerContext) {}

  /** Content name of a snapshot, as the external snapshotter names it. */
  static contentName(snapshot: KubeObject): string {
    return `snapcontent-${snapshot.metadata.uid}`;
  }

  /**
   * Copies the source PVC's directory into the snapshot's content directory now. Called in
   * the create request path; a missing or unbound PVC, or an injected fault, is recorded and
   * becomes `status.error`.
   */
  freeze(snapshot: KubeObject): Promise<void> {
    const uid = snapshot.metadata.uid!;
    const existing = this.freezing.get(uid);
    if (existing) return existing;
    const work = this.copy(snapshot).then((result) => {
      this.frozen.set(uid, result);
    });
    this.freezing.set(uid, work);
    this.ctx.timeline.record({
      source: 'api',
      type: 'VolumeSnapshotCreated',
      namespace: snapshot.metadata.namespace,
      name: snapshot.metadata.name,
      detail: { pvc: snapshot.spec?.source?.persistentVolumeClaimName },
    });
    return work;
  }

  private async copy(snapshot: KubeObject): Promise<Frozen> {
    const { store, dirs, faults } = this.ctx;
    const ns = snapshot.metadata.namespace!;
    const pvcName: string | undefined = snapshot.spec?.source?.persistentVolumeClaimName;
    if (!pvcName) return { ok: true, bytes: 0 };
    const fault = faults.snapshotFailure(ns, pvcName);
    if (fault) return { ok: false, message: fault };
    const pvc = store.get(PVC, ns, pvcName);
    if (!pvc) return { ok: false, message: `failed to get input parameters to create snapshot ${snapshot.metadata.name}: "persistentvolumeclaims \\"${pvcName}\\" not found"` };
    if (pvc.status?.phase !== 'Bound') return { ok: false, message: `the source PVC ${pvcName} is not yet bound to a volume` };
    try {
      const target = dirs.snapshot(SnapshotController.contentName(snapshot));
      await copyTree(dirs.volume(pvc.spec.volumeName), target);
      return { ok: true, bytes: await treeSize(target) };
    } catch (err) {
      return { ok: false, message: `failed to take snapshot of volume ${pvc.spec.volumeName}: ${(err as Error).message}` };
    }
  }

  async reconcile(): Promise<boolean> {
    const { store } = this.ctx;
    let changed = false;
    for (const snapshot of store.list(SNAPSHOT)) {
      if (snapshot.status?.readyToUse || snapshot.status?.error) continue;
      if (!snapshot.spec?.volumeSnapshotClassName && snapshot.spec?.source?.persistentVolumeClaimName) {
        store.replace(SNAPSHOT, { ...snapshot, spec: { ...snapshot.spec, volumeSnapshotClassName: DEFAULT_SNAPSHOT_CLASS } });
        changed = true;
        continue;
      }
      if (snapshot.spec?.source?.volumeSnapshotContentName) {
        changed = this.bindPreProvisioned(snapshot) || changed;
        continue;
      }
      // Snapshots created while the server was down, or by a path that skipped freeze().
      if (!this.freezing.has(snapshot.metadata.uid!)) void this.freeze(snapshot);
      const frozen = this.frozen.get(snapshot.metadata.uid!);
      if (!frozen) {
        this.ctx.track(this.freezing.get(snapshot.metadata.uid!)!);
        continue;
      }
      changed = true;
      if (!frozen.ok) this.fail(snapshot, frozen.message);
      else this.bind(snapshot, frozen.bytes);
    }
    changed = (await this.deleteOrphans()) || changed;
    return changed;
  }

  private fail(snapshot: KubeObject, message: string): void {
    const time = this.ctx.now().toISOString();
    this.ctx.store.replace(SNAPSHOT, { ...snapshot, status: { readyToUse: false, error: { message, time } } }, { subresource: 'status' });
    this.ctx.timeline.record({ source: 'api', type: 'VolumeSnapshotFailed', namespace: snapshot.metadata.namespace, name: snapshot.metadata.name, detail: { message } });
  }

  private bind(snapshot: KubeObject, bytes: number): void {
    const { store, now } = this.ctx;
    const ns = snapshot.metadata.namespace!;
    const className: string = snapshot.spec.volumeSnapshotClassName;
    const snapshotClass = store.get(CLASS, undefined, className);
    if (!snapshotClass) {
      this.fail(snapshot, `failed to get input parameters to create snapshot ${snapshot.metadata.name}: "volumesnapshotclass.snapshot.storage.k8s.io \\"${className}\\" not found"`);
      return;
    }
    const pvc = store.get(PVC, ns, snapshot.spec.source.persistentVolumeClaimName);
    const pv = pvc && store.get(PV, undefined, pvc.spec.volumeName);
    const restoreSize: string = pvc?.status?.capacity?.storage ?? `${bytes}`;
    const created = now();
    const contentName = SnapshotController.contentName(snapshot);
    if (!store.get(CONTENT, undefined, contentName)) {
      store.create(CONTENT, {
        apiVersion: 'snapshot.storage.k8s.io/v1',
        kind: 'VolumeSnapshotContent',
        metadata: { name: contentName },
        spec: {
          deletionPolicy: snapshotClass.deletionPolicy,
          driver: snapshotClass.driver,
          source: { volumeHandle: pv?.spec?.csi?.volumeHandle ?? pvc?.spec?.volumeName },
          sourceVolumeMode: 'Filesystem',
          volumeSnapshotClassName: className,
          volumeSnapshotRef: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', name: snapshot.metadata.name, namespace: ns, uid: snapshot.metadata.uid },
        },
      });
    }
    const content = store.require(CONTENT, undefined, contentName);
    store.replace(CONTENT, {
      ...content,
      status: {
        creationTime: created.getTime() * 1_000_000,
        readyToUse: true,
        restoreSize: bytes,
        snapshotHandle: `snap-${randomBytes(9).toString('hex').slice(0, 17)}`,
      },
    }, { subresource: 'status' });
    store.replace(SNAPSHOT, {
      ...snapshot,
      status: { boundVolumeSnapshotContentName: contentName, creationTime: created.toISOString(), readyToUse: true, restoreSize },
    }, { subresource: 'status' });
    this.ctx.timeline.record({ source: 'api', type: 'VolumeSnapshotReady', namespace: ns, name: snapshot.metadata.name, detail: { content: contentName, bytes, driver: snapshotClass.driver ?? CSI_DRIVER } });
  }

  private bindPreProvisioned(snapshot: KubeObject): boolean {
    const content = this.ctx.store.get(CONTENT, undefined, snapshot.spec.source.volumeSnapshotContentName);
    if (!content?.status?.readyToUse) return false;
    this.ctx.store.replace(SNAPSHOT, {
      ...snapshot,
      status: {
        boundVolumeSnapshotContentName: content.metadata.name,
        creationTime: new Date(content.status.creationTime / 1_000_000).toISOString(),
        readyToUse: true,
        restoreSize: String(content.status.restoreSize),
      },
    }, { subresource: 'status' });
    return true;
  }

  /** Contents whose snapshot is gone (policy Delete), and content directories without a content. */
  private async deleteOrphans(): Promise<boolean> {
    const { store, dirs } = this.ctx;
    let changed = false;
    for (const content of store.list(CONTENT)) {
      const ref = content.spec?.volumeSnapshotRef;
      if (content.spec?.deletionPolicy !== 'Delete' || !ref?.uid) continue;
      const snapshot = store.get(SNAPSHOT, ref.namespace, ref.name);
      if (snapshot?.metadata.uid === ref.uid) continue;
      store.delete(CONTENT, undefined, content.metadata.name);
      changed = true;
    }
    const live = new Set(store.list(CONTENT).map((c) => c.metadata.name));
    const snapshots = new Set(store.list(SNAPSHOT).map((s) => SnapshotController.contentName(s)));
    for (const entry of await dirs.entries('snapshots')) {
      if (!live.has(entry) && !snapshots.has(entry)) {
        await rm(dirs.snapshot(entry), { recursive: true, force: true });
        this.frozen.delete(entry.replace(/^snapcontent-/, ''));
      }
    }
    return changed;
  }
}

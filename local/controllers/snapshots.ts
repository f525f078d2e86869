/**
 * The CSI snapshot controller, the external snapshotter and the EBS driver in one.
 *
 * Dynamic snapshots. The content of a VolumeSnapshot is frozen in the create request itself
 * (`freeze`, called by the API server before it answers), so writes to the PVC after the
 * snapshot was created never leak into it. The controller then binds a VolumeSnapshotContent
 * `snapcontent-<uid>` and marks the snapshot ready, or records `status.error` when the PVC is
 * missing or a fault says snapshots of the PVC fail.
 *
 * Cloud snapshots. What the driver would keep in EBS lives under the snapshot handle
 * (`snap-<17 hex>`): the frozen files in `snapshots/<handle>/` and, in `snapshots/<handle>.json`,
 * what DescribeSnapshots reports (source volume, start time, volume size). A handle's data
 * lives as long as some VolumeSnapshotContent names it (`status.snapshotHandle` or
 * `spec.source.snapshotHandle`). Deleting a content with `deletionPolicy: Delete` therefore
 * deletes the cloud snapshot only when no other content still names the handle. Real EBS is
 * less forgiving: deleting a Delete content deletes the snapshot even when another content
 * names it, which is why a restore should switch the source content to Retain (as Velero does)
 * if it must outlive its VolumeSnapshot.
 *
 * Pre-provisioned contents (`spec.source.snapshotHandle`, the way a snapshot is brought into
 * another namespace) become ready with the cloud snapshot's creation time and size when the
 * handle exists, and get `status.error` when it does not; a VolumeSnapshot naming such a
 * content (`spec.source.volumeSnapshotContentName`) binds to it when the content's
 * `volumeSnapshotRef` names that snapshot, and takes over its readiness or its error.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
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

/** What the cloud knows about one snapshot (the fields of EBS DescribeSnapshots we use). */
export interface CloudSnapshotRecord {
  snapshotId: string;
  /** The source volume's handle. */
  volumeId: string;
  /** ISO time the snapshot was taken. */
  startTime: string;
  /** Size of the source volume in bytes: what a content reports as `restoreSize`. */
  volumeSizeBytes: number;
}

type Frozen = { ok: true; record: CloudSnapshotRecord } | { ok: false; message: string };

/** The handle a content names: the driver's (status) or the pre-provisioned one (spec). */
export function snapshotHandleOf(content: KubeObject): string | undefined {
  return content.status?.snapshotHandle ?? content.spec?.source?.snapshotHandle;
}

/** A byte count as a Kubernetes quantity, in the largest binary unit that divides it (1073741824 → "1Gi"). */
export function bytesToQuantity(bytes: number): string {
  const units = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
  let value = bytes;
  let unit = '';
  for (const next of units) {
    if (value === 0 || value % 1024 !== 0) break;
    value /= 1024;
    unit = next;
  }
  return `${value}${unit}`;
}

const QUANTITY_FACTORS: Record<string, number> = {
  '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/**
 * A storage quantity (`10Gi`, `500M`, `1073741824`) in bytes, or undefined when it is not one.
 * client-node 1.x does not export its quantity parser, and storage sizes need only this subset.
 */
export function quantityBytes(quantity: string | undefined): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.exec(quantity?.trim() ?? '');
  return m ? Math.ceil(Number(m[1]) * QUANTITY_FACTORS[m[2] ?? '']!) : undefined;
}

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
   * The EBS snapshot id a dynamic snapshot gets. Derived from the snapshot's uid so that the
   * freeze (in the create request) and the binding (later, maybe after a restart) agree.
   */
  static handleOf(snapshot: KubeObject): string {
    return `snap-${createHash('sha256').update(snapshot.metadata.uid!).digest('hex').slice(0, 17)}`;
  }

  /**
   * Copies the source PVC's directory into the snapshot's cloud-snapshot directory now.
   * Called in the create request path; a missing or unbound PVC, or an injected fault, is
   * recorded and becomes `status.error`.
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
    const { store, dirs, faults, now } = this.ctx;
    const ns = snapshot.metadata.namespace!;
    const pvcName: string | undefined = snapshot.spec?.source?.persistentVolumeClaimName;
    const handle = SnapshotController.handleOf(snapshot);
    if (!pvcName) return { ok: false, message: 'not a dynamic snapshot' };
    const fault = faults.snapshotFailure(ns, pvcName);
    if (fault) return { ok: false, message: fault };
    const pvc = store.get(PVC, ns, pvcName);
    if (!pvc) return { ok: false, message: `failed to get input parameters to create snapshot ${snapshot.metadata.name}: "persistentvolumeclaims \\"${pvcName}\\" not found"` };
    if (pvc.status?.phase !== 'Bound') return { ok: false, message: `the source PVC ${pvcName} is not yet bound to a volume` };
    try {
      const target = dirs.snapshot(handle);
      await copyTree(dirs.volume(pvc.spec.volumeName), target);
      const pv = store.get(PV, undefined, pvc.spec.volumeName);
      const record: CloudSnapshotRecord = {
        snapshotId: handle,
        volumeId: pv?.spec?.csi?.volumeHandle ?? pvc.spec.volumeName,
        startTime: now().toISOString(),
        volumeSizeBytes: quantityBytes(pvc.status?.capacity?.storage) ?? (await treeSize(target)),
      };
      await writeFile(dirs.snapshotRecord(handle), JSON.stringify(record, null, 1));
      return { ok: true, record };
    } catch (err) {
      return { ok: false, message: `failed to take snapshot of volume ${pvc.spec.volumeName}: ${(err as Error).message}` };
    }
  }

  async reconcile(): Promise<boolean> {
    const { store } = this.ctx;
    let changed = await this.reconcilePreProvisionedContents();
    for (const snapshot of store.list(SNAPSHOT)) {
      if (snapshot.status?.readyToUse || snapshot.status?.error) continue;
      if (snapshot.spec?.source?.volumeSnapshotContentName) {
        changed = this.bindPreProvisioned(snapshot) || changed;
        continue;
      }
      if (!snapshot.spec?.volumeSnapshotClassName) {
        store.replace(SNAPSHOT, { ...snapshot, spec: { ...snapshot.spec, volumeSnapshotClassName: DEFAULT_SNAPSHOT_CLASS } });
        changed = true;
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
      else this.bind(snapshot, frozen.record);
    }
    changed = (await this.deleteOrphans()) || changed;
    return changed;
  }

  private fail(snapshot: KubeObject, message: string, time = this.ctx.now().toISOString()): void {
    this.ctx.store.replace(SNAPSHOT, { ...snapshot, status: { readyToUse: false, error: { message, time } } }, { subresource: 'status' });
    this.ctx.timeline.record({ source: 'api', type: 'VolumeSnapshotFailed', namespace: snapshot.metadata.namespace, name: snapshot.metadata.name, detail: { message } });
  }

  private bind(snapshot: KubeObject, record: CloudSnapshotRecord): void {
    const { store } = this.ctx;
    const ns = snapshot.metadata.namespace!;
    const className: string = snapshot.spec.volumeSnapshotClassName;
    const snapshotClass = store.get(CLASS, undefined, className);
    if (!snapshotClass) {
      this.fail(snapshot, `failed to get input parameters to create snapshot ${snapshot.metadata.name}: "volumesnapshotclass.snapshot.storage.k8s.io \\"${className}\\" not found"`);
      return;
    }
    const pvc = store.get(PVC, ns, snapshot.spec.source.persistentVolumeClaimName);
    const restoreSize: string = pvc?.status?.capacity?.storage ?? bytesToQuantity(record.volumeSizeBytes);
    const created = new Date(record.startTime);
    const contentName = SnapshotController.contentName(snapshot);
    if (!store.get(CONTENT, undefined, contentName)) {
      store.create(CONTENT, {
        apiVersion: 'snapshot.storage.k8s.io/v1',
        kind: 'VolumeSnapshotContent',
        metadata: { name: contentName },
        spec: {
          deletionPolicy: snapshotClass.deletionPolicy,
          driver: snapshotClass.driver,
          source: { volumeHandle: record.volumeId },
          sourceVolumeMode: 'Filesystem',
          volumeSnapshotClassName: className,
          volumeSnapshotRef: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', name: snapshot.metadata.name, namespace: ns, uid: snapshot.metadata.uid },
        },
      });
    }
    const content = store.require(CONTENT, undefined, contentName);
    store.replace(CONTENT, {
      ...content,
      status: { creationTime: created.getTime() * 1_000_000, readyToUse: true, restoreSize: record.volumeSizeBytes, snapshotHandle: record.snapshotId },
    }, { subresource: 'status' });
    store.replace(SNAPSHOT, {
      ...snapshot,
      status: { boundVolumeSnapshotContentName: contentName, creationTime: created.toISOString(), readyToUse: true, restoreSize },
    }, { subresource: 'status' });
    this.ctx.timeline.record({ source: 'api', type: 'VolumeSnapshotReady', namespace: ns, name: snapshot.metadata.name, detail: { content: contentName, handle: record.snapshotId, driver: snapshotClass.driver ?? CSI_DRIVER } });
  }

  /**
   * The external snapshotter's check of pre-provisioned contents: the driver looks the handle
   * up (ListSnapshots by id) and the content becomes ready with the snapshot's time and size,
   * or records the driver's error. Contents of other drivers are left alone, as their own
   * sidecar would handle them.
   */
  private async reconcilePreProvisionedContents(): Promise<boolean> {
    const { store } = this.ctx;
    let changed = false;
    for (const content of store.list(CONTENT)) {
      const handle: string | undefined = content.spec?.source?.snapshotHandle;
      if (!handle || content.status?.readyToUse || content.status?.error || content.spec?.driver !== CSI_DRIVER) continue;
      const record = await this.cloudSnapshot(handle);
      const now = this.ctx.now();
      const status = record
        ? { creationTime: Date.parse(record.startTime) * 1_000_000, readyToUse: true, restoreSize: record.volumeSizeBytes, snapshotHandle: handle }
        : {
            readyToUse: false,
            error: {
              message: `Failed to check and update snapshot content: failed to list snapshot for content ${content.metadata.name}: "rpc error: code = Internal desc = Could not get snapshot ID \\"${handle}\\": InvalidSnapshot.NotFound: The snapshot '${handle}' does not exist."`,
              time: now.toISOString(),
            },
          };
      store.replace(CONTENT, { ...content, status }, { subresource: 'status' });
      this.ctx.timeline.record({ source: 'api', type: record ? 'VolumeSnapshotContentReady' : 'VolumeSnapshotContentFailed', name: content.metadata.name, detail: { handle } });
      changed = true;
    }
    return changed;
  }

  /** The cloud snapshot behind a handle, or undefined when it does not exist. */
  private async cloudSnapshot(handle: string): Promise<CloudSnapshotRecord | undefined> {
    const { dirs } = this.ctx;
    if (!existsSync(dirs.snapshot(handle))) return undefined;
    try {
      return JSON.parse(await readFile(dirs.snapshotRecord(handle), 'utf8')) as CloudSnapshotRecord;
    } catch {
      return undefined; // data without its record: a copy that never completed
    }
  }

  /** Binds a snapshot to the pre-provisioned content it names, as the common snapshot controller does. */
  private bindPreProvisioned(snapshot: KubeObject): boolean {
    const { store } = this.ctx;
    const contentName: string = snapshot.spec.source.volumeSnapshotContentName;
    const content = store.get(CONTENT, undefined, contentName);
    if (!content) return false; // the content may be created after the snapshot; wait for it
    const ref = content.spec?.volumeSnapshotRef ?? {};
    if (ref.name !== snapshot.metadata.name || ref.namespace !== snapshot.metadata.namespace || (ref.uid && ref.uid !== snapshot.metadata.uid)) {
      this.fail(snapshot, `VolumeSnapshotContent ${contentName} is bound to VolumeSnapshot ${ref.namespace}/${ref.name}${ref.uid ? ` (uid ${ref.uid})` : ''}, not to this snapshot`);
      return true;
    }
    let changed = false;
    if (!ref.uid) {
      // Binding fills in the uid, which is what ties a Delete content's life to this snapshot.
      store.replace(CONTENT, { ...content, spec: { ...content.spec, volumeSnapshotRef: { ...ref, uid: snapshot.metadata.uid } } });
      changed = true;
    }
    if (content.status?.error) {
      this.fail(snapshot, content.status.error.message, content.status.error.time);
      return true;
    }
    if (!content.status?.readyToUse) return changed;
    store.replace(SNAPSHOT, {
      ...snapshot,
      status: {
        boundVolumeSnapshotContentName: contentName,
        creationTime: new Date(content.status.creationTime / 1_000_000).toISOString(),
        readyToUse: true,
        restoreSize: bytesToQuantity(Number(content.status.restoreSize)),
      },
    }, { subresource: 'status' });
    this.ctx.timeline.record({ source: 'api', type: 'VolumeSnapshotReady', namespace: snapshot.metadata.namespace, name: snapshot.metadata.name, detail: { content: contentName, handle: snapshotHandleOf(content) } });
    return true;
  }

  /**
   * Deletes contents whose snapshot is gone (policy Delete), then cloud snapshots no content
   * and no snapshot being taken names any more.
   */
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
    await this.migrateContentNamedDirs(store.list(CONTENT));
    const entries = await dirs.entries('snapshots');
    // What is in use is read after the directory listing, never before an await: a snapshot
    // created meanwhile (its freeze copying into a directory the listing saw) is in the store by
    // then, since the create request stores the object before it freezes it. Read before, it
    // would be taken for an orphan and its copy deleted while being made.
    const inUse = (): Set<string> =>
      new Set<string>([
        ...store.list(CONTENT).map(snapshotHandleOf).filter((h): h is string => h !== undefined),
        ...store.list(SNAPSHOT).filter((s) => s.spec?.source?.persistentVolumeClaimName).map((s) => SnapshotController.handleOf(s)),
      ]);
    for (const entry of entries) {
      const handle = entry.replace(/\.json$/, '');
      if (inUse().has(handle)) continue;
      await rm(dirs.snapshot(handle), { recursive: true, force: true });
      await rm(dirs.snapshotRecord(handle), { force: true });
    }
    // The same for the freezes: a stale list would forget a snapshot's freeze, and the next pass
    // would freeze it again, later than its creation.
    const live = new Set(store.list(SNAPSHOT).map((s) => s.metadata.uid));
    for (const uid of [...this.frozen.keys()]) {
      if (!live.has(uid)) {
        this.frozen.delete(uid);
        this.freezing.delete(uid);
      }
    }
    return changed;
  }

  /**
   * State directories written before cloud snapshots were kept by handle hold the data under
   * the content's name; move it to the handle (and write its record) so it is not collected.
   */
  private async migrateContentNamedDirs(contents: KubeObject[]): Promise<void> {
    const { dirs } = this.ctx;
    for (const content of contents) {
      const handle = snapshotHandleOf(content);
      const old = dirs.snapshot(content.metadata.name);
      if (!handle || existsSync(dirs.snapshot(handle)) || !existsSync(old)) continue;
      await rename(old, dirs.snapshot(handle));
      const record: CloudSnapshotRecord = {
        snapshotId: handle,
        volumeId: content.spec?.source?.volumeHandle ?? '',
        startTime: new Date(Number(content.status?.creationTime ?? 0) / 1_000_000).toISOString(),
        volumeSizeBytes: Number(content.status?.restoreSize ?? 0),
      };
      await writeFile(dirs.snapshotRecord(handle), JSON.stringify(record, null, 1));
    }
  }
}

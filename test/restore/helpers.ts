/**
 * Helpers for the restore and drill workflow tests on the local cluster: runner calls with
 * short polls and deadlines, on the seeded cluster of test/backup/helpers.ts.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackupTimings } from '../../core/backup/context.js';
import type { KubeClients } from '../../core/kube/connect.js';
import type { Config } from '../../core/config/schema.js';
import type { RestoreTimings } from '../../core/restore/context.js';
import type { RowCount } from '../../core/catalog/record.js';
import { localRestoreServices, runLocalDrill, runLocalRestore, type LocalBackupResult } from '../../local/workflows/runner.js';
import type { SeededCluster } from '../backup/helpers.js';

const FAST: Partial<BackupTimings> = { flushTimeoutSeconds: 30, snapshotTimeoutSeconds: 60, exportTimeoutSeconds: 120 };
const FAST_RESTORE: Partial<RestoreTimings> = { volumeTimeoutSeconds: 120, readyTimeoutSeconds: 60, validateTimeoutSeconds: 60 };

/**
 * Runs the restore workflow on the cluster, each poll once the cluster has settled; `clock` gives
 * the steps a clock of the test's own (`now`, and `beforeTask` to move it as each Task starts);
 * `restoreTimings` overrides the short deadlines' defaults (the hydration bound, say).
 */
export function restore(
  c: SeededCluster,
  config: Config,
  input: Record<string, unknown>,
  onState?: (s: string) => void,
  clock?: { now: () => Date; beforeTask: (state: string) => void },
  restoreTimings: Partial<RestoreTimings> = {},
): Promise<LocalBackupResult> {
  return runLocalRestore({ stateDir: c.stateDir, config, input, untilPoll: () => c.cluster.settle(), timings: FAST, restoreTimings: { ...FAST_RESTORE, ...restoreTimings }, ...(onState ? { onState } : {}), ...(clock ?? {}) });
}

/** Runs the drill workflow (with its nested restore) on the cluster, each poll once the cluster has settled. */
export function drill(c: SeededCluster, config: Config, input: Record<string, unknown>, onState?: (s: string) => void): Promise<LocalBackupResult> {
  return runLocalDrill({ stateDir: c.stateDir, config, input, untilPoll: () => c.cluster.settle(), timings: FAST, restoreTimings: FAST_RESTORE, ...(onState ? { onState } : {}) });
}

/** The restore steps' local collaborators (catalog, vault, cluster) of the cluster. */
export function restoreServicesOf(c: SeededCluster, config: Config) {
  return localRestoreServices(c.stateDir, config, { restoreTimings: FAST_RESTORE });
}

/**
 * A recorded row count with every count the backup took of it (at the flush, before it, after the
 * snapshots) `n` higher: what a restore that lost `n` rows is validated against.
 */
export function countsRaisedBy(r: RowCount, n: number): RowCount {
  return {
    ...r,
    rows: r.rows + n,
    ...(r.rowsBeforeFlush !== undefined ? { rowsBeforeFlush: r.rowsBeforeFlush + n } : {}),
    ...(r.rowsAfterSnapshots !== undefined ? { rowsAfterSnapshots: r.rowsAfterSnapshots + n } : {}),
  };
}

/** Every entry under `dir`: path → type, mode and content hash (files) or target (links). */
export async function tree(dir: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(join(dir, prefix))).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    const s = await lstat(join(dir, rel));
    const mode = (s.mode & 0o7777).toString(8);
    if (s.isDirectory()) {
      out[rel] = `dir ${mode}`;
      Object.assign(out, await tree(dir, rel));
    } else if (s.isSymbolicLink()) {
      out[rel] = `link ${await readlink(join(dir, rel))}`;
    } else {
      out[rel] = `file ${mode} ${createHash('sha256').update(await readFile(join(dir, rel))).digest('hex')}`;
    }
  }
  return out;
}

/** The directory behind PVC `pvc` of `namespace` on the local cluster. */
export async function volumeDir(c: SeededCluster, kube: KubeClients, namespace: string, pvc: string): Promise<string> {
  const claim = await kube.core.readNamespacedPersistentVolumeClaim({ namespace, name: pvc });
  return c.cluster.dirs.volume(claim.spec!.volumeName!);
}

/** The frozen files of the cloud snapshot behind VolumeSnapshot `snapshot` of `namespace`. */
export async function snapshotDir(c: SeededCluster, kube: KubeClients, namespace: string, snapshot: string): Promise<string> {
  const s = (await kube.custom.getNamespacedCustomObject({ group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshots', namespace, name: snapshot })) as { status: { boundVolumeSnapshotContentName: string } };
  const content = (await kube.custom.getClusterCustomObject({ group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshotcontents', name: s.status.boundVolumeSnapshotContentName })) as { status: { snapshotHandle: string } };
  return c.cluster.dirs.snapshot(content.status.snapshotHandle);
}

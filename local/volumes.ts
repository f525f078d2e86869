/**
 * Where the local cluster keeps bytes: one directory per PersistentVolume
 * (`volumes/<pv-name>/`), one "cloud snapshot" per snapshot handle (`snapshots/<handle>/` with
 * the frozen files and `snapshots/<handle>.json` with what the cloud reports about it: source
 * volume, start time, size), one working directory per pod (`pods/<ns>/<name>/`, with the
 * container log), and the external object storage (`object-storage/<bucket>/<key>`, the S3 buckets
 * a Milvus with external storage uses; layout and write rules in local/milvus/bucket.ts). Snapshots are keyed by handle, not by VolumeSnapshotContent, because several
 * contents (in several namespaces) can name the same cloud snapshot. Only this module builds
 * these paths.
 */
import { cp, mkdir, readdir, rm, lstat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** The subdirectory of a state directory that holds the external S3 buckets, one directory per bucket. */
export const OBJECT_STORAGE_DIR = 'object-storage';

/** The directory layout of a state directory. */
export class VolumeDirs {
  constructor(readonly stateDir: string) {}

  /** The directory behind a PersistentVolume. */
  volume(pvName: string): string {
    return join(this.stateDir, 'volumes', pvName);
  }

  /** The frozen files of the cloud snapshot with this handle (`snap-…`). */
  snapshot(handle: string): string {
    return join(this.stateDir, 'snapshots', handle);
  }

  /** The record (JSON) of the cloud snapshot with this handle. */
  snapshotRecord(handle: string): string {
    return join(this.stateDir, 'snapshots', `${handle}.json`);
  }

  /**
   * The absolute directory holding the external S3 buckets: `<dir>/<bucket>/<key>`, one plain
   * file per object, written through `<dir>/.staging/` and renamed into place.
   */
  objectStorage(): string {
    return resolve(this.stateDir, OBJECT_STORAGE_DIR);
  }

  /** A pod's working directory (its cwd, emptyDir volumes and log). */
  pod(namespace: string, name: string): string {
    return join(this.stateDir, 'pods', namespace, name);
  }

  /** The file holding the log of a pod's container. */
  podLog(namespace: string, name: string, container: string): string {
    return join(this.pod(namespace, name), 'logs', `${container}.log`);
  }

  /** Names of the entries under `volumes/` or `snapshots/` (there: handles and `<handle>.json`). */
  async entries(kind: 'volumes' | 'snapshots'): Promise<string[]> {
    return readdir(join(this.stateDir, kind)).catch(() => []);
  }
}

/**
 * Copies a directory tree (modes, timestamps and symlinks preserved) into a fresh `to`;
 * a copy that fails part-way is removed so it is never mistaken for a complete one.
 */
export async function copyTree(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true });
  await mkdir(to, { recursive: true });
  try {
    await cp(from, to, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true, force: true });
  } catch (err) {
    await rm(to, { recursive: true, force: true });
    throw err;
  }
}

/** Total size in bytes of the regular files under a directory. */
export async function treeSize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await treeSize(path);
    else if (entry.isFile()) total += (await lstat(path)).size;
  }
  return total;
}

/**
 * Helpers for the restore and drill workflow tests on the local cluster: runner calls with
 * short polls and deadlines, on the seeded cluster of test/backup/helpers.ts.
 */
import type { BackupTimings } from '../../core/backup/context.js';
import type { Config } from '../../core/config/schema.js';
import type { RestoreTimings } from '../../core/restore/context.js';
import { localRestoreServices, runLocalDrill, runLocalRestore, type LocalBackupResult } from '../../local/workflows/runner.js';
import type { SeededCluster } from '../backup/helpers.js';

const FAST: Partial<BackupTimings> = { flushTimeoutSeconds: 30, snapshotTimeoutSeconds: 60, exportTimeoutSeconds: 120 };
const FAST_RESTORE: Partial<RestoreTimings> = { volumeTimeoutSeconds: 120, readyTimeoutSeconds: 60, validateTimeoutSeconds: 60 };

/** Runs the restore workflow on the cluster, each poll once the cluster has settled. */
export function restore(c: SeededCluster, config: Config, input: Record<string, unknown>, onState?: (s: string) => void): Promise<LocalBackupResult> {
  return runLocalRestore({ stateDir: c.stateDir, config, input, untilPoll: () => c.cluster.settle(), timings: FAST, restoreTimings: FAST_RESTORE, ...(onState ? { onState } : {}) });
}

/** Runs the drill workflow (with its nested restore) on the cluster, each poll once the cluster has settled. */
export function drill(c: SeededCluster, config: Config, input: Record<string, unknown>, onState?: (s: string) => void): Promise<LocalBackupResult> {
  return runLocalDrill({ stateDir: c.stateDir, config, input, untilPoll: () => c.cluster.settle(), timings: FAST, restoreTimings: FAST_RESTORE, ...(onState ? { onState } : {}) });
}

/** The restore steps' local collaborators (catalog, vault, cluster) of the cluster. */
export function restoreServicesOf(c: SeededCluster, config: Config) {
  return localRestoreServices(c.stateDir, config, { restoreTimings: FAST_RESTORE });
}

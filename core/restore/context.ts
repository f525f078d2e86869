/**
 * The collaborators of the restore and drill steps: the backup steps' collaborators (cluster
 * clients, vault, catalog, sealer, events, the data-mover settings) without the ones only a
 * backup uses, plus the restore's own deadlines. The Lambda entry points and the local runner
 * each build one from their environment, as they do `BackupServices`.
 */
import type { BackupServices } from '../backup/context.js';

/** Deadlines of the restore's polling loops. */
export interface RestoreTimings {
  /** How long every volume may take to be filled (snapshot provisioning or vault hydration). */
  readonly volumeTimeoutSeconds: number;
  /** How long the restored Milvus may take to become ready (pods Ready, `/healthz`). */
  readonly readyTimeoutSeconds: number;
  /** How long loading collections for validation may take. */
  readonly validateTimeoutSeconds: number;
  /** How long packs in an archive class may take to thaw (S3 Deep Archive Bulk: up to 48 h). */
  readonly thawTimeoutSeconds: number;
}

export const DEFAULT_RESTORE_TIMINGS: RestoreTimings = {
  // As long as an export may take: hydration moves the same bytes the other way.
  volumeTimeoutSeconds: 6 * 3600,
  readyTimeoutSeconds: 30 * 60,
  validateTimeoutSeconds: 30 * 60,
  thawTimeoutSeconds: 48 * 3600,
};

/** Every collaborator of the restore and drill steps. */
export interface RestoreServices extends Pick<BackupServices, 'config' | 'now' | 'kube' | 'vault' | 'catalog' | 'sealer' | 'events' | 'dataMover' | 'objectCopy'> {
  readonly restoreTimings: RestoreTimings;
  /**
   * The region these steps run in, whose vault `vault` is: the vault's own region, or (in a DR
   * region's stack) one it replicates into, where only backups complete in that region's
   * replica can be restored. Default: the region of the vault of the backup's plan.
   */
  readonly region?: string;
}

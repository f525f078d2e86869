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
  /**
   * How long one Validate round may wait for collections to load before it answers `loading`
   * and leaves the rest to the workflow's WaitForLoad (10 s) and a later round. See
   * {@link DEFAULT_VALIDATE_LOAD_WAIT_SECONDS}.
   */
  readonly validateLoadWaitSeconds: number;
  /** How long packs in an archive class may take to thaw (S3 Deep Archive Bulk: up to 48 h). */
  readonly thawTimeoutSeconds: number;
  /**
   * How many volumes hydrate from the vault at once (one data-mover Job each); the others wait
   * for a free slot, largest first. Small etcd volumes start at once outside the bound. See
   * {@link DEFAULT_HYDRATION_CONCURRENCY}.
   */
  readonly hydrationConcurrency: number;
  /**
   * An etcd volume whose backup holds at most this many bytes is small and hydrates outside the
   * bound; no other role ever does. Default: `SMALL_ETCD_BYTES` of core/restore/volumes.ts
   * (5 GiB, which says why); 0 or less puts every volume in the bound, an empty one included.
   */
  readonly smallEtcdBytes?: number;
}

/**
 * Four hydrations at once, as the backup's Export map exports four volumes at once. Each data
 * mover already uses every core its pod gets; what several Jobs add is disk bandwidth, since each
 * PVC is a volume of its own (an EBS gp3 volume moves 125 MiB/s unless provisioned for more). A
 * node's EBS bandwidth is shared by every volume attached to it, though: an m5.xlarge moves about
 * 593 MB/s in bursts, an m6i.2xlarge about 1,250 MB/s, so four default gp3 volumes (~500 MiB/s)
 * fill the usual worker node, and more Jobs would split the same bandwidth while each holds a
 * pod's requests (500m CPU, 512 MiB). The vault is not the limit: a hydration reads ~16 MiB
 * packs, about 30 GETs a second at 500 MB/s, far below S3's 5,500 GETs a second per prefix.
 * One kind of volume bypasses the bound: an etcd volume whose backup holds at most 5 GiB
 * (`SMALL_ETCD_BYTES` in core/restore/volumes.ts: a healthy etcd of the Milvus chart, up to its
 * 4 GiB backend quota plus its preallocated 64 MB WAL segments) starts at once without taking a
 * slot, since Milvus needs that metadata to start and waiting would cost it a slot and then up
 * to two 15 s polls. It is a handful of large files, so its bytes measure its time: at most
 * ~41 s at a gp3 volume's 125 MiB/s, and usually a few seconds. Object storage never bypasses
 * the bound, whatever its size (a MinIO volume of 256 MiB can be 65,000 objects of 4 KiB, which
 * take minutes); an etcd volume above the cap or of unknown size waits like any other. A Milvus
 * standalone (2 or 3 volumes) hydrates all at once; a cluster with 3 etcd and 4 MinIO volumes
 * starts all 7 at once, the 4 MinIO volumes in the slots and the etcd ones beside them. Raise
 * it (`HYDRATION_CONCURRENCY` of the restore functions) for nodes and volumes provisioned for
 * more.
 */
export const DEFAULT_HYDRATION_CONCURRENCY = 4;

/**
 * Twenty seconds of waiting inside a Validate round: two WaitForLoad states' worth. A load the
 * round waits out costs no Wait state, which would add up to 10 s to the RTO each; a collection
 * of a few GB of sealed segments loads in seconds to tens of seconds (the query nodes read its
 * binlogs and index files from object storage), so most restores validate in one round. Longer
 * loads still end in WaitForLoad rounds, so a Lambda never sleeps through one: the wait costs at
 * most 20 s of a 512 MB function per round (about $0.0002), far inside the Validate Task's 900 s
 * timeout, and is never spent past the validation deadline.
 */
export const DEFAULT_VALIDATE_LOAD_WAIT_SECONDS = 20;

export const DEFAULT_RESTORE_TIMINGS: RestoreTimings = {
  // As long as an export may take: hydration moves the same bytes the other way.
  volumeTimeoutSeconds: 6 * 3600,
  readyTimeoutSeconds: 30 * 60,
  validateTimeoutSeconds: 30 * 60,
  validateLoadWaitSeconds: DEFAULT_VALIDATE_LOAD_WAIT_SECONDS,
  thawTimeoutSeconds: 48 * 3600,
  hydrationConcurrency: DEFAULT_HYDRATION_CONCURRENCY,
};

/** Every collaborator of the restore and drill steps. */
export interface RestoreServices extends Pick<BackupServices, 'config' | 'now' | 'kube' | 'vault' | 'catalog' | 'sealer' | 'events' | 'dataMover' | 'objectCopy' | 'executions'> {
  readonly restoreTimings: RestoreTimings;
  /**
   * Waits `ms` within a step (Validate waits briefly for loads): a timer in a Lambda and in
   * the local runner, the local cluster settling when a test's runner waits for work rather
   * than time (`untilPoll`), a function of the test's clock in other tests, so no test sleeps.
   */
  readonly sleep: (ms: number) => Promise<void>;
  /**
   * The region these steps run in, whose vault `vault` is: the vault's own region, or (in a DR
   * region's stack) one it replicates into, where only backups complete in that region's
   * replica can be restored. Default: the region of the vault of the backup's plan.
   */
  readonly region?: string;
}

/**
 * Public types of the simulated Milvus used by the local cluster. The local
 * Kubernetes API server creates one `MilvusSimulator` per Milvus custom resource and calls
 * `seedMilvusData` to fill that instance's etcd and MinIO volume directories.
 */

/**
 * Where one Milvus instance keeps its data: the directories behind its etcd PVCs, and either
 * its MinIO PVCs or, with external object storage (S3), a bucket directory.
 */
export interface MilvusVolumes {
  /** One directory per etcd member PVC (`data-<release>-etcd-N`); raft replicas hold the same data. */
  etcdDirs: string[];
  /**
   * One directory per MinIO PVC (`export-<release>-minio-N`), or a single one for standalone
   * MinIO. Empty with `objectStorageDir`.
   */
  minioDirs: string[];
  /**
   * External object storage (S3): the directory holding the buckets, one subdirectory per
   * bucket and one plain file per object (`<objectStorageDir>/<bucket>/<key>`, see bucket.ts).
   * When set, the objects live there and `minioDirs` is not used.
   */
  objectStorageDir?: string;
  /** Bucket Milvus writes to (`minio.bucketName`). Default `milvus-bucket` (the Helm chart's, and the bucket of the local in-cluster MinIO). */
  bucket?: string;
  /** Root path inside the bucket (`minio.rootPath`). Default `file` (the Helm chart's). */
  rootPath?: string;
}

/** How much of each binlog and index payload the simulator writes; see `SeedOptions.payloads`. */
export type PayloadMode = 'capped' | 'full';
export const PAYLOAD_MODES: readonly PayloadMode[] = ['capped', 'full'];

/** What `seedMilvusData` writes. */
export interface SeedOptions {
  /** Seed of the pseudo-random generator; the same seed gives byte-identical files. Default 42. */
  seed?: number;
  /** Multiplies row counts and payload sizes; 1 is the small default (a few MiB in total with capped payloads). */
  scale?: number;
  /**
   * `capped` (the default) keeps each payload small, so a large `scale` means many rows in few
   * bytes (fast tests and data-mover benchmarks); `full` writes every binlog and index at the size
   * its rows take in Milvus, so a seed of N GiB holds the rows an N GiB Milvus holds (what a
   * restore benchmark that searches every row needs).
   */
  payloads?: PayloadMode;
  /** Collections to create. Default: `DEFAULT_COLLECTIONS`. */
  collections?: CollectionSpec[];
}

/** One collection to seed. */
export interface CollectionSpec {
  database: string;
  name: string;
  /** Dimension of the float vector field. */
  dim: number;
  /** Rows to insert, before `scale` and before deletions. */
  rows: number;
  /** Sealed segments to spread the rows over. Default: one per 8,192 rows, at least 1. */
  segments?: number;
}

/** One request the simulator served, in order; also what the API server records for snapshots. */
export interface MilvusCall {
  seq: number;
  /** ISO-8601 time taken from the simulator's clock. */
  at: string;
  port: number;
  method: string;
  path: string;
  /** What the call was about: database, collection, ticket, outcome code. */
  detail?: Record<string, unknown>;
}

/** A request that reached the Milvus service through the Kubernetes service proxy. */
export interface ProxyRequest {
  port: number;
  method: string;
  /** The path after `/proxy`, starting with `/`. */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | undefined>;
  body: Buffer;
}

/** What the service proxy sends back to its client. */
export interface ProxyResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string;
}

/** Failure modes a test can switch on. */
export interface MilvusFaults {
  /** A flush (`/api/v1/persist` or `collections/flush`) is accepted but its segments never become flushed. */
  flushNeverCompletes?: boolean;
  /** GC pause answers without a ticket and resume ignores tickets, as before Milvus 2.6.8 (one global pause), whatever the version. */
  gcPauseWithoutTicket?: boolean;
  /** `/healthz` answers 500 and the REST API answers 503. */
  unhealthy?: boolean;
}

/** Options of `MilvusSimulator`. */
export interface MilvusSimulatorOptions {
  /** The instance's volumes; `undefined` means the instance is down (503). Called per request. */
  volumes: () => Promise<MilvusVolumes | undefined>;
  /** Clock. Default: the system clock. */
  now?: () => Date;
  /** Called with every call as it is recorded. */
  record?: (call: MilvusCall) => void;
  /**
   * How long after it is requested a flush completes (the datanodes sync the sealed segments in
   * the background, whatever the client does meanwhile): the first request served at or after
   * that moment finds it done. Default 0: the next request.
   */
  flushDelayMs?: number;
  /**
   * When set, REST v2 calls need these credentials (`Authorization: Bearer <username>:<password>`
   * or Basic), whatever `settings` says. Tests of a fixed user; the local cluster uses `settings`.
   */
  auth?: { username: string; password: string };
  /**
   * The instance's version and security settings, read on every request (the local cluster
   * derives them from the Milvus CR, which may change). Default: {@link DEFAULT_MILVUS_VERSION},
   * authorization off.
   */
  settings?: () => MilvusSettings;
  /**
   * Waits `ms` of simulated time (the REST flush of 3.0/master waits for the flush). Default:
   * a real timer. Tests pass one that advances their clock, so nothing sleeps.
   */
  sleep?: (ms: number) => Promise<void>;
}

/** What the simulated Milvus takes from its CR (or a test). */
export interface MilvusSettings {
  /** Version or image tag (`v2.5.14`, `2.6.8`, `master-…`): which line's behaviour to show. */
  version?: string;
  /** `common.security.authorizationEnabled`. */
  authorizationEnabled?: boolean;
  /** `common.security.defaultRootPassword` (honoured from 2.4.7; default `Milvus`). */
  defaultRootPassword?: string;
}

/** Datacoord garbage-collection state, for tests. */
export interface GcState {
  /** Whether GC of every collection is paused (a global pause). */
  paused: boolean;
  /** Collection ids paused by a collection-level pause (2.6.8+, `collection_id`). */
  collections?: string[];
  /** ISO time when the current pause expires, when paused. */
  until?: string;
  /** Tickets of the pauses that are in force. */
  tickets: string[];
}

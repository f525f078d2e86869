/**
 * The Milvus behind the local cluster's service proxy: REST v2 on port 19530 and the
 * management endpoints on port 9091, answering with the shapes, status codes and error codes
 * of the Milvus version its CR runs (`settings`; what differs per line comes from
 * core/milvus/version.ts `milvusBehaviour`: REST flush, GC tickets, authenticated /api/v1).
 * Collections are read from etcd on every request, and the row counts of the collection a
 * request counts, queries or searches from its segments' binlog headers in MinIO; only what a
 * running Milvus keeps in memory or in its message queue (GC pause leases, flushes and loads in
 * progress, rows inserted or deleted since the last flush, and the searchable rows its query
 * nodes read when they loaded a collection's segments) lives in the simulator object.
 *
 * Authentication, when the CR enables it: as the proxy's `authenticate` middleware
 * (internal/distributed/proxy/service.go; httpserver/utils.go `ParseUsernamePassword`), see
 * `authenticate` below. Recorded calls never hold headers or credentials.
 *
 * Data: `entities/insert`, `entities/delete` (by filter) and `entities/query` (filter, limit,
 * offset, outputFields; filter.ts has the expression subset), in the request and answer shapes
 * of internal/distributed/proxy/httpserver/handler_v2.go.
 *
 * Flush, and how a client confirms it. A flush seals the collection's
 * growing segments and answers at once; it completes `flushDelayMs` later, on its own (the
 * datanodes sync in the background): the first request served after that moment writes the
 * segments' binlogs to MinIO and marks them Flushed in etcd, whatever that request is. Rows
 * inserted after the flush was asked for go to a new growing segment, and deletions after it stay
 * unflushed: neither is part of that flush (see PendingFlush). Two ways
 * in: `POST /v2/vectordb/collections/flush` (REST v2: absent before 2.5.4; on 2.5.4+/2.6 it
 * answers `{"code":0,"data":{}}` at once and says nothing else; on 3.0/master it waits for the
 * flush, up to the request timeout); and the proxy's HTTP API on the management port,
 * `POST :9091/api/v1/persist` (every line), which answers the Flush response as JSON — the
 * sealed segment ids and the flush timestamp, int64 numbers — and
 * `GET :9091/api/v1/persist/state` with those in a JSON body, which answers `"flushed": true`
 * once every one of the segments is flushed (the field is omitted while false).
 * `collections/get_stats` reports what datacoord's statistics do: the row count etcd records
 * for every segment, growing ones included (rows inserted since the segment's last sync, its
 * flush here, are not recorded yet), deleted rows included until compaction, read from
 * no file (so a restore that lost a segment's files still reports its rows, as Milvus does; see
 * state.ts `statsRows`); `entities/query` with
 * `count(*)` counts every live row, growing ones included, deletions applied. The two differ on
 * any collection with deletes, as in Milvus.
 *
 * GC pause (2.6.8+). `GET :9091/management/datacoord/garbage_collection/pause?pause_seconds=N`
 * takes a lease (of one collection with `collection_id`) and answers
 * `{"msg":"OK","data":{"ticket":"…"}}` (the shape Milvus Backup reads); GC stays paused while
 * any lease is unexpired. `…/resume?ticket=T` releases that lease; an unknown or missing ticket
 * changes nothing and still answers `{"msg":"OK"}`, as the real one does, which is why a client
 * must keep its ticket. Before 2.6.8 (or with the `gcPauseWithoutTicket` fault): no ticket, one
 * global pause, any resume ends it.
 *
 * Load. querycoord's load info (`querycoord-collection-loadinfo/<collID>` in etcd) is what
 * survives a restart, as in Milvus. `collections/load` saves it with status Loading, then answers
 * and starts the work querycoord hands its query nodes: every sealed segment's files are read
 * from the bucket (insert binlogs, stats and delete logs, index files), then the searchable rows,
 * in the background. Until that is done `get_load_state` and `describe` say LoadStateLoading with
 * the progress querycoord reports, and searches and queries answer 103 (not fully loaded); once
 * done the load info says Loaded. A load whose files are missing never completes, and querycoord
 * cancels it at its timeout, deleting the load info (see `loadStateOf`).
 * `collections/release` ends the load, lets go of what the query nodes held and deletes the load
 * info; a collection not loaded is released successfully all the same. What runs in memory (the
 * load jobs, the rows held) is lost when the instance goes down or other volumes are mounted; what
 * etcd says then decides, as querycoord's `Recover` at start does: Loaded is loaded from the
 * start, Loading is loaded again (a fourth start finding it still loading releases it), and a read
 * of other volumes than the current ones never makes a collection loaded.
 * `loadsSettled()` lets a test await the reads and background etcd writes instead of a time.
 *
 * Search. `POST /v2/vectordb/entities/search` takes Milvus's `SearchReqV2` body and answers
 * `{"code":0,"cost":0,"data":[{"distance":…,"id":"…"}]}` with real primary keys of the rows on
 * the volumes, ranked by the index metric (see search.ts for how rows and vectors are found).
 */
import { randomUUID } from 'node:crypto';
import { EtcdDataMissingError, readEtcd } from './etcd-store.js';
import { bucketOf, InvalidBucketNameError } from './bucket.js';
import { liveKeyList, nearest, readLiveRows, rowVector, withUnflushed, type LiveRows, type MetricType } from './search.js';
import { resolveVolumes } from './seed.js';
import { completeFlush, dropCollection, openGrowingSegment, readMilvusState, updateLoadInfo, type CollectionState, type MilvusState } from './state.js';
import { FilterError, parseFilter, type FieldKinds, type ScalarValue } from './filter.js';
import { milvusBehaviour, milvusLine, parseMilvusVersion, type MilvusBehaviour, type MilvusVersion } from '../../core/milvus/version.js';
import { etcdKeys, hybridTimestamp, objectKeys, type LoadInfo, type SegmentIndex } from './meta.js';
import { parse as parseLossless, stringify as stringifyLossless } from 'lossless-json';
import type {
  GcState,
  MilvusCall,
  MilvusFaults,
  MilvusSettings,
  MilvusSimulatorOptions,
  MilvusVolumes,
  ProxyRequest,
  ProxyResponse,
} from './types.js';
import { deadlineAfter } from '../../core/deadline.js';
import { mapBounded } from '../../core/objectstore/bounded.js';

/**
 * The version a simulator shows when nothing says otherwise, and the image tag the seeded Milvus
 * CR gets: a 2.6 release with GC tickets (2.6.8+) and authenticated `/api/v1` (2.6.10+).
 */
export const DEFAULT_MILVUS_VERSION = 'v2.6.10';

export const REST_PORT = 19530;
export const MANAGEMENT_PORT = 9091;

/** Milvus error codes (`pkg/util/merr`) the simulator answers with. */
export const MilvusErrorCode = {
  CollectionNotFound: 100,
  /** An object missing from the bucket (`merr.ErrIoKeyNotFound`): what a query node's failed segment load reports. */
  IoKeyNotFound: 1000,
  CollectionNotLoaded: 101,
  /** A search or query of a collection still loading (`merr.ErrCollectionNotFullyLoaded`). */
  CollectionNotFullyLoaded: 103,
  DatabaseNotFound: 800,
  NeedAuthenticate: 1800,
  IncorrectParameterFormat: 1801,
  MissingRequiredParameters: 1802,
  InvalidInsertData: 1804,
  ParameterInvalid: 1100,
  /** `merr.TimeoutCode`, answered with HTTP 408 by the REST timeout middleware. */
  Timeout: 10001,
} as const;

/**
 * How long a load may go without progress before querycoord cancels it
 * (`queryCoord.loadTimeoutSeconds`, default 600: paramtable/component_param.go; the
 * CollectionObserver's observeTimeout cancels it once `time.Now().After(UpdatedAt + timeout)`,
 * strictly later).
 */
const LOAD_TIMEOUT_MS = 600_000;

/**
 * Starts querycoord may find a collection still loading in its load info before it releases it
 * instead of loading it again (`queryCoord.collectionRecoverTimes`, default 3:
 * paramtable/component_param.go; meta/collection_manager.go `Recover`).
 */
const COLLECTION_RECOVER_TIMES_LIMIT = 3;

/** How long querycoord's FailedLoadCache keeps a failure (`expireTime`, 24 h; meta/failed_load_cache.go). */
const FAILED_LOAD_EXPIRY_MS = 24 * 3600_000;

/** Sealed segments whose files a load reads at once (a query node loads several segments in parallel). */
const SEGMENT_LOADS_AT_ONCE = 4;

/**
 * A load run by this instance, asked for through the API or resumed at start (querycoord's load
 * job for one collection); see {@link MilvusSimulator.startLoad}. `loaded` once every target is
 * loaded, the searchable rows are held and etcd's load info says Loaded; until then `loading`,
 * with the targets loaded so far.
 */
type LoadJob =
  | { readonly state: 'loaded'; readonly volumes: string }
  | {
      readonly state: 'loading';
      /** The volumes the load reads (`volumesKey`): it counts only while they are the instance's. */
      readonly volumes: string;
      /** The same volumes, to read again when querycoord retries a failed segment. */
      readonly source: MilvusVolumes;
      /** Sealed segments whose files were read: a retry reads only the others. */
      readonly segmentsRead: Set<string>;
      /** Whether a read is in progress. */
      reading: boolean;
      /** What querycoord's target holds: the DML channels (one per shard) and the sealed segments; undefined until read. */
      targets?: number;
      /** Targets loaded so far: the channels at once (subscribing reads nothing), then each segment once its files are read. */
      done: number;
      /** When progress last moved (epoch ms): the load timeout counts from here, as querycoord's `UpdatedAt`. */
      updatedAt: number;
      /** Why the read failed; the load then makes no progress until it is cancelled. */
      failure?: string;
    };

/** A segment the query nodes cannot load: a file its metadata lists is missing from the bucket. */
class SegmentLoadError extends Error {
  constructor(segmentId: string, key: string) {
    super(`failed to load segment ${segmentId}: ${key}: The specified key does not exist.`);
    this.name = 'SegmentLoadError';
  }
}

/** How a request reads the state first: etcd alone, no segment logs (see `withSegments`). */
const ETCD_ONLY = { segmentsOf: () => false };

/** Milvus's bound on a query's offset + limit (`quotaAndLimits`' max query result window). */
const MAX_QUERY_WINDOW = 16_384;
/** The REST request timeout when the client sends no `Request-Timeout` header (`http.requestTimeoutMs`). */
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

const REST_PREFIX = '/v2/vectordb/';
/** Milvus's bounds on a search's `limit` (topK), and the REST default when it is absent. */
const MAX_TOP_K = 16_384;
const DEFAULT_SEARCH_LIMIT = 100;
const GC_PAUSE = '/management/datacoord/garbage_collection/pause';
/** The proxy's HTTP API on the management port: Flush and GetFlushState as JSON. */
const PERSIST = '/api/v1/persist';
const PERSIST_STATE = '/api/v1/persist/state';
const GC_RESUME = '/management/datacoord/garbage_collection/resume';

class RestError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'RestError';
  }
}

/** An answer that is not the usual `{"code":N,…}` with HTTP 200 (the REST timeout middleware's 408). */
class HttpAnswer extends Error {
  constructor(readonly response: ProxyResponse) {
    super(`HTTP ${response.status}`);
    this.name = 'HttpAnswer';
  }
}

/** Writes since the last flush that live only in the message queue (and this object): inserted rows and deletions. */
interface Mutations {
  /** The growing segment new rows are assigned: none once a flush sealed it. */
  segmentId?: string;
  /** The segment being opened for the next rows (concurrent inserts share it, as datacoord assigns one). */
  opening?: Promise<string>;
  /** Rows inserted and not flushed yet, each with its segment. */
  inserted: { pk: bigint; vector: number[]; segmentId: string }[];
  /** Primary keys of live rows deleted and not flushed yet. */
  deletes: Set<bigint>;
}

/**
 * A flush Milvus accepted and has not completed. Datacoord's Flush seals the collection's growing
 * segments (`SealAllSegments`, internal/datacoord/segment_manager.go) and flushes those; a sealed
 * segment is given no more rows, so rows inserted after the flush was asked for go to a new
 * growing segment and are not part of it, nor are deletions after it.
 */
interface PendingFlush {
  readonly dueAt: number;
  /** The segments the flush sealed. */
  readonly segments: ReadonlySet<string>;
  /** The deletions made before it (and not in an earlier flush still pending). */
  readonly deletes: readonly bigint[];
}

/** A REST answer with top-level fields besides `code` and `data` (search adds `cost`). */
class RestAnswer {
  constructor(
    readonly data: unknown,
    readonly extra: Record<string, unknown>,
  ) {}
}

interface RestContext {
  request: ProxyRequest;
  volumes: MilvusVolumes;
  state: MilvusState;
  body: Record<string, unknown>;
  dbName: string;
  detail: Record<string, unknown>;
}

function json(status: number, value: unknown): ProxyResponse {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(value) };
}

/** A management-port answer that the collection does not exist (merr 100, as the proxy's JSON handlers write it). */
function collectionNotFound(dbName: string, name: string, detail: Record<string, unknown>): ProxyResponse {
  detail.outcome = 'collection not found';
  return text(200, JSON.stringify({ status: { error_code: 4, reason: `collection not found[database=${dbName}][collection=${name}]`, code: MilvusErrorCode.CollectionNotFound } }));
}

/**
 * Whether `value` (an answer's data) holds a bigint at its top level: only describe's
 * `collectionID` does; a nested int64 would need a deeper look.
 */
function hasBigInt(value: object): boolean {
  return Object.values(value).some((v) => typeof v === 'bigint');
}

function text(status: number, body: string): ProxyResponse {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body };
}

const notFound = (): ProxyResponse => text(404, '404 page not found');

/** The proxy's answer without valid credentials (merr.ErrNeedAuthenticate, HTTP 401). */
const unauthenticated = (): ProxyResponse => json(401, { code: MilvusErrorCode.NeedAuthenticate, message: "user hasn't authenticated" });

/** A request's JSON body, int64 numbers as decimal strings; `{}` when there is none. */
function parseJsonBody(body: Buffer | string | undefined): Record<string, unknown> {
  const raw = body === undefined ? '' : body.toString();
  if (raw.trim() === '') return {};
  const parsed = parseLossless(raw, null, (value: string) => (Number.isSafeInteger(Number(value)) ? Number(value) : value)) as unknown;
  return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
}

/** One simulated Milvus instance. */
export class MilvusSimulator {
  /** Failure modes; mutable so tests and the local API server can switch them at any time. */
  faults: MilvusFaults = {};

  private readonly options: MilvusSimulatorOptions;
  private readonly now: () => Date;
  private readonly flushDelayMs: number;
  private readonly recorded: MilvusCall[] = [];
  /** Flushes accepted but not yet complete, by collection id: when each completes. */
  private readonly flushes = new Map<string, PendingFlush[]>();
  /** Every segment a flush sealed: no insert is assigned one again, whether its flush is pending, being written or done. */
  private readonly sealed = new Set<string>();
  /** Loads this instance ran or runs, by collection id (see {@link startLoad}, {@link recoverLoads}). */
  private readonly loads = new Map<string, LoadJob>();
  /**
   * querycoord's FailedLoadCache: the last segment load failure of each collection (by id) and
   * when it was recorded, which 2.4 to 2.6 answer GetLoadState with once the load was cancelled
   * (see {@link loadStateOf}).
   */
  private readonly failedLoads = new Map<string, { message: string; volumes: string; at: number }>();
  /** The background reads of loads in progress (see {@link loadsSettled}). */
  private readonly loadReads = new Set<Promise<void>>();
  /**
   * Load infos being deleted from etcd after querycoord cancelled their load (see
   * {@link loadStateOf}), by collection id: until the write is done, the record still saying
   * Loading is not a load to recover (see {@link recoverLoads}).
   */
  private readonly cancelledLoadInfo = new Map<string, Promise<void>>();
  /** What a background etcd write failed with, other than etcd being gone; {@link loadsSettled} throws it. */
  private backgroundFailure: Error | undefined;
  /** Unexpired GC pause leases: ticket → expiry (epoch ms) and the collection (0: every collection). */
  private readonly gcLeases = new Map<string, { until: number; collectionId: number }>();
  /** Inserts and deletes not yet flushed, by collection id. */
  private readonly mutations = new Map<string, Mutations>();
  /**
   * What the query nodes hold of each loaded collection, by collection id: its searchable rows
   * (read from the segments' stats and delete logs) and the segments they were read from (see
   * {@link loadedRows}).
   */
  private readonly loadedSegments = new Map<string, { segments: string; rows: LiveRows }>();
  private readonly sleep: (ms: number) => Promise<void>;
  /** The single pause of the ticketless (old) management API: expiry (epoch ms). */
  private legacyGcPauseUntil: number | undefined;

  constructor(options: MilvusSimulatorOptions) {
    this.options = options;
    this.now = options.now ?? (() => new Date());
    this.flushDelayMs = Math.max(0, options.flushDelayMs ?? 0);
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** The version and security settings in force now (from the CR, read per request). */
  settings(): { version: MilvusVersion; behaviour: MilvusBehaviour; authorizationEnabled: boolean; rootPassword: string } {
    const s: MilvusSettings = this.options.settings?.() ?? {};
    const version = parseMilvusVersion(s.version ?? DEFAULT_MILVUS_VERSION);
    const behaviour = milvusBehaviour(version);
    // root's first password comes from common.security.defaultRootPassword from 2.4.7 on.
    const rootPassword = behaviour.defaultRootPasswordSetting && s.defaultRootPassword ? s.defaultRootPassword : 'Milvus';
    return { version, behaviour, authorizationEnabled: this.options.auth !== undefined || s.authorizationEnabled === true, rootPassword };
  }

  /** Every call served, in order. */
  get calls(): readonly MilvusCall[] {
    return this.recorded;
  }

  /** Whether datacoord GC is paused now, until when, and by which tickets. */
  gcState(): GcState {
    const now = this.now().getTime();
    for (const [ticket, lease] of this.gcLeases) if (lease.until <= now) this.gcLeases.delete(ticket);
    if (this.legacyGcPauseUntil !== undefined && this.legacyGcPauseUntil <= now) this.legacyGcPauseUntil = undefined;
    const global = [...this.gcLeases.values()].filter((l) => l.collectionId === 0);
    const collections = [...new Set([...this.gcLeases.values()].filter((l) => l.collectionId !== 0).map((l) => String(l.collectionId)))];
    const untils = [...global.map((l) => l.until), ...(this.legacyGcPauseUntil ? [this.legacyGcPauseUntil] : [])];
    const extra = collections.length > 0 ? { collections } : {};
    if (untils.length === 0) return { paused: false, ...extra, tickets: [...this.gcLeases.keys()] };
    return { paused: true, until: new Date(Math.max(...untils)).toISOString(), ...extra, tickets: [...this.gcLeases.keys()] };
  }

  /** Serves one request that arrived through the service proxy. */
  async handle(request: ProxyRequest): Promise<ProxyResponse> {
    const detail: Record<string, unknown> = {};
    let response: ProxyResponse;
    try {
      response = await this.dispatch(request, detail);
    } catch (err) {
      detail.error = (err as Error).message;
      response = text(500, `internal error: ${(err as Error).message}`);
    }
    detail.status = response.status;
    this.record(request, detail);
    return response;
  }

  /** Records a call. Only `detail` is recorded, never the headers: credentials stay out of every timeline. */
  private record(request: ProxyRequest, detail: Record<string, unknown>): void {
    const call: MilvusCall = {
      seq: this.recorded.length + 1,
      at: this.now().toISOString(),
      port: request.port,
      method: request.method.toUpperCase(),
      path: request.path,
      detail,
    };
    this.recorded.push(call);
    this.options.record?.(call);
  }

  private async dispatch(request: ProxyRequest, detail: Record<string, unknown>): Promise<ProxyResponse> {
    const volumes = await this.options.volumes();
    if (!volumes) {
      // Its query nodes are gone with it: what they held is loaded again when it is back. So is
      // querycoord's memory: the loads in progress (a read still running is discarded when it
      // ends, see readForLoad; the load info in etcd resumes them, see recoverLoads) and the
      // failures of its FailedLoadCache.
      this.loadedSegments.clear();
      this.loads.clear();
      this.failedLoads.clear();
      detail.outcome = 'instance down';
      return text(503, 'Milvus is not running: its pods are gone or not ready');
    }
    let state: MilvusState;
    try {
      // etcd's view only: a request that needs a collection's rows reads its segments (withSegments).
      state = await readMilvusState(volumes, ETCD_ONLY);
    } catch (err) {
      if (!(err instanceof EtcdDataMissingError) && !(err instanceof InvalidBucketNameError)) throw err;
      // Without its metadata (or with a bucket name S3 refuses) Milvus crash-loops; the Service
      // has no ready endpoints.
      detail.outcome = err instanceof EtcdDataMissingError ? 'etcd data missing' : 'invalid bucket name';
      return text(503, `Milvus cannot start: ${err.message}`);
    }
    state = await this.completeDueFlushes(volumes, state, detail);
    // A load of other volumes (a PVC swapped, a CR pointed at another bucket) is not a load of these.
    const current = volumesKey(volumes);
    for (const [id, job] of this.loads) if (job.volumes !== current) this.loads.delete(id);
    for (const [id, failure] of this.failedLoads) if (failure.volumes !== current) this.failedLoads.delete(id);
    await this.recoverLoads(volumes, state, detail);
    const path = request.path.split('?')[0]!;
    if (request.port === MANAGEMENT_PORT) return this.management(request, path, state, detail);
    if (request.port === REST_PORT) return this.rest(request, path, volumes, state, detail);
    detail.outcome = 'port not served';
    return text(503, `dial tcp :${request.port}: connect: connection refused`);
  }

  /** Accepts a flush of collection `c`: it completes `flushDelayMs` from now (or never, under the fault). */
  /** Rows inserted into `c` that etcd, as `c` was read, has not recorded: those of its growing segments. */
  private unflushedRows(c: CollectionState): Mutations['inserted'] {
    const growing = new Set(c.growingSegmentIds);
    return (this.mutations.get(c.id)?.inserted ?? []).filter((r) => growing.has(r.segmentId));
  }

  private acceptFlush(c: CollectionState): PendingFlush {
    const queued = this.flushes.get(c.id) ?? [];
    const m = this.mutations.get(c.id);
    const taken = new Set(queued.flatMap((f) => f.deletes));
    const flush: PendingFlush = {
      dueAt: this.now().getTime() + this.flushDelayMs,
      segments: new Set(c.growingSegmentIds.filter((id) => !queued.some((f) => f.segments.has(id)))),
      deletes: [...(m?.deletes ?? [])].filter((pk) => !taken.has(pk)),
    };
    this.flushes.set(c.id, [...queued, flush]);
    for (const id of flush.segments) this.sealed.add(id);
    // Sealed: the next insert starts a new growing segment (one being opened may be sealed too).
    if (m) {
      delete m.segmentId;
      delete m.opening;
    }
    return flush;
  }

  /** Completes every flush whose time has come (see the module documentation); the state after. */
  private async completeDueFlushes(volumes: MilvusVolumes, state: MilvusState, detail: Record<string, unknown>): Promise<MilvusState> {
    if (this.faults.flushNeverCompletes) return state;
    const now = this.now().getTime();
    const due = [...this.flushes].filter(([, queued]) => queued.some((f) => f.dueAt <= now));
    if (due.length === 0) return state;
    const flushed: string[] = [];
    for (const [id, queued] of due) {
      // Forget them before writing, so a concurrent request cannot write them twice.
      const later = queued.filter((f) => f.dueAt > now);
      if (later.length > 0) this.flushes.set(id, later);
      else this.flushes.delete(id);
      const done = queued.filter((f) => f.dueAt <= now);
      const segments = new Set(done.flatMap((f) => [...f.segments]));
      const deletes = done.flatMap((f) => f.deletes);
      const m = this.mutations.get(id);
      const inserted = new Map<string, bigint[]>();
      for (const r of m?.inserted ?? []) if (segments.has(r.segmentId)) inserted.set(r.segmentId, [...(inserted.get(r.segmentId) ?? []), r.pk]);
      // The deletions leave the message queue for MinIO: forget them before writing, as above.
      if (m) for (const pk of deletes) m.deletes.delete(pk);
      flushed.push(...(await completeFlush(volumes, id, this.now(), { inserted, deletes }, segments)));
      // The rows are forgotten once written: until then a request that reads etcd finds their
      // segment still growing and counts them from here; after, from their binlogs (see
      // unflushedRows). Rows of segments this flush did not seal stay.
      const left = this.mutations.get(id);
      if (left) {
        left.inserted = left.inserted.filter((r) => !segments.has(r.segmentId));
        if (left.inserted.length === 0 && left.deletes.size === 0 && left.segmentId === undefined && left.opening === undefined) this.mutations.delete(id);
      }
    }
    detail.flushedSegments = flushed;
    return readMilvusState(volumes, ETCD_ONLY);
  }

  // ---- port 9091 ---------------------------------------------------------------------

  private management(request: ProxyRequest, path: string, state: MilvusState, detail: Record<string, unknown>): ProxyResponse {
    // From 2.5.27/2.6.10 the proxy's /api/v1 handlers on this port authenticate like REST v2
    // when authorization is on (handler_authz_test.go, master); /healthz and /management/* do not.
    const settings = this.settings();
    if (path.startsWith('/api/v1/') && settings.authorizationEnabled && settings.behaviour.managementApiAuth) {
      detail.auth = this.authenticate(request) ? 'accepted' : 'rejected';
      if (detail.auth === 'rejected') return unauthenticated();
    }
    if (path === PERSIST && request.method.toUpperCase() === 'POST') return this.persist(request, state, detail);
    if (path === PERSIST_STATE && request.method.toUpperCase() === 'GET') return this.persistState(request, state, detail);
    if (path === '/healthz') {
      if (this.faults.unhealthy) {
        detail.healthy = false;
        return json(500, { state: 'Abnormal', detail: 'querynode is not healthy' });
      }
      detail.healthy = true;
      return text(200, 'OK');
    }
    if (path === GC_PAUSE) return this.gcPause(request, detail);
    if (path === GC_RESUME) return this.gcResume(request, detail);
    detail.outcome = 'no such endpoint';
    return notFound();
  }

  /**
   * `POST /api/v1/persist` with `{"db_name", "collection_names"}`: the proxy's Flush as JSON
   * (milvuspb.FlushResponse, Go's encoding/json: int64 as numbers, empty fields omitted).
   */
  private persist(request: ProxyRequest, state: MilvusState, detail: Record<string, unknown>): ProxyResponse {
    const body = parseJsonBody(request.body);
    const dbName = typeof body.db_name === 'string' && body.db_name !== '' ? body.db_name : 'default';
    const names = Array.isArray(body.collection_names) ? body.collection_names.map(String) : [];
    const segIds: string[] = [];
    const flushTs: string[] = [];
    const sealTimes: string[] = [];
    const ts = hybridTimestamp(this.now().getTime()).toString();
    for (const name of names) {
      const c = state.collections.find((x) => x.database === dbName && x.name === name);
      if (!c) return collectionNotFound(dbName, name, detail);
      this.acceptFlush(c);
      segIds.push(`${JSON.stringify(name)}:{"data":[${c.growingSegmentIds.join(',')}]}`);
      flushTs.push(`${JSON.stringify(name)}:${ts}`);
      sealTimes.push(`${JSON.stringify(name)}:${Math.floor(this.now().getTime() / 1000)}`);
      detail.sealedSegments = [...((detail.sealedSegments as string[] | undefined) ?? []), ...c.growingSegmentIds];
    }
    detail.flush = 'accepted';
    return text(200, `{"status":{},"db_name":${JSON.stringify(dbName)},"coll_segIDs":{${segIds.join(',')}},"coll_seal_times":{${sealTimes.join(',')}},"coll_flush_ts":{${flushTs.join(',')}}}`);
  }

  /** `GET /api/v1/persist/state` with `{"segmentIDs", "flush_ts", "db_name", "collection_name"}` as its JSON body. */
  private persistState(request: ProxyRequest, state: MilvusState, detail: Record<string, unknown>): ProxyResponse {
    const body = parseJsonBody(request.body);
    const ids = Array.isArray(body.segmentIDs) ? body.segmentIDs.map(String) : [];
    const dbName = typeof body.db_name === 'string' && body.db_name !== '' ? body.db_name : 'default';
    const name = typeof body.collection_name === 'string' ? body.collection_name : '';
    // Given a name, the proxy resolves it to the collection's id for datacoord's channel check
    // (internal/proxy/impl.go GetFlushState, globalMetaCache.GetCollectionID): a dropped
    // collection's name resolves to nothing. Without one, only the segments are looked at.
    const c = state.collections.find((x) => x.database === dbName && x.name === name);
    if (name !== '' && !c) return collectionNotFound(dbName, name, detail);
    // A segment sealed by the flush is done once it is no longer growing (flushed, dropped, or
    // compacted away: datacoord's GetHealthySegment finds none of those).
    const growing = new Set(state.collections.flatMap((x) => x.growingSegmentIds));
    const flushed = ids.every((id) => !growing.has(id));
    detail.flushed = flushed;
    return text(200, flushed ? '{"status":{},"flushed":true}' : '{"status":{}}');
  }

  private gcPause(request: ProxyRequest, detail: Record<string, unknown>): ProxyResponse {
    const raw = request.query.get('pause_seconds');
    const seconds = Number(raw);
    detail.pauseSeconds = raw;
    if (raw === null || !Number.isInteger(seconds) || seconds <= 0) {
      detail.outcome = 'invalid pause_seconds';
      return json(500, { msg: `failed to pause garbage collection, pause duration not valid: ${String(raw)}` });
    }
    const until = deadlineAfter(this.now(), seconds).getTime();
    if (this.ticketless()) {
      // Before 2.6.8: one global pause, no ticket; collection_id is not read.
      this.legacyGcPauseUntil = until;
      detail.until = new Date(until).toISOString();
      return json(200, { msg: 'OK' });
    }
    const raw_collection = Number(request.query.get('collection_id') ?? 0);
    const collectionId = Number.isSafeInteger(raw_collection) && raw_collection > 0 ? raw_collection : 0;
    const ticket = Buffer.from(JSON.stringify({ token: randomUUID(), collection_id: collectionId })).toString('base64');
    this.gcLeases.set(ticket, { until, collectionId });
    if (collectionId !== 0) detail.collectionId = String(collectionId);
    detail.ticket = ticket;
    detail.until = new Date(until).toISOString();
    return json(200, { msg: 'OK', data: { ticket } });
  }

  private gcResume(request: ProxyRequest, detail: Record<string, unknown>): ProxyResponse {
    const ticket = request.query.get('ticket') ?? undefined;
    detail.ticket = ticket;
    this.gcState(); // drop expired leases first
    if (this.ticketless()) {
      this.legacyGcPauseUntil = undefined;
      this.gcLeases.clear();
      detail.resumed = true;
      return json(200, { msg: 'OK' });
    }
    const resumed = ticket !== undefined && this.gcLeases.delete(ticket);
    detail.resumed = resumed;
    if (!resumed) detail.outcome = ticket === undefined ? 'no ticket: nothing resumed' : 'unknown ticket: nothing resumed';
    detail.stillPaused = this.gcState().paused;
    return json(200, { msg: 'OK' });
  }

  /** Whether GC pauses are the old global, ticketless kind: before 2.6.8, or under the fault. */
  private ticketless(): boolean {
    return this.faults.gcPauseWithoutTicket === true || this.settings().behaviour.gcPause === 'global-without-ticket';
  }

  // ---- port 19530 --------------------------------------------------------------------

  private async rest(
    request: ProxyRequest,
    path: string,
    volumes: MilvusVolumes,
    state: MilvusState,
    detail: Record<string, unknown>,
  ): Promise<ProxyResponse> {
    const settings = this.settings();
    // The proxy's `authenticate` is a middleware of the whole REST server (service.go,
    // startHTTPServer: ginHandler.Use(authenticate)), so it answers before any route, unknown
    // ones included: HTTP 401 with code 1800.
    if (settings.authorizationEnabled) {
      detail.auth = this.authenticate(request) ? 'accepted' : 'rejected';
      if (detail.auth === 'rejected') {
        detail.outcome = 'unauthenticated';
        return unauthenticated();
      }
    }
    if (!path.startsWith(REST_PREFIX) || request.method.toUpperCase() !== 'POST') {
      detail.outcome = 'no such endpoint';
      return notFound();
    }
    const action = path.slice(REST_PREFIX.length).replace(/\/+$/, '');
    const handler = this.routes[action];
    // 2.4 and 2.5.0–2.5.3 register no collections/flush, and 2.4 before 2.4.18 no databases/*:
    // gin's 404 for an unknown route.
    const absent = (action === 'collections/flush' && settings.behaviour.restFlush === 'absent') || (action.startsWith('databases/') && !settings.behaviour.restDatabases);
    if (!handler || absent) {
      detail.outcome = 'no such endpoint';
      return notFound();
    }
    if (this.faults.unhealthy) {
      detail.outcome = 'unhealthy';
      return text(503, 'Milvus proxy is not ready');
    }
    try {
      const body = this.parseBody(request.body);
      const dbName = stringField(body, 'dbName') ?? headerValue(request, 'db-name') ?? 'default';
      detail.database = dbName;
      if (!state.databases.some((d) => d.name === dbName)) {
        throw new RestError(MilvusErrorCode.DatabaseNotFound, `database not found[database=${dbName}]`);
      }
      const data = await handler.call(this, { request, volumes, state, body, dbName, detail });
      detail.code = 0;
      if (data instanceof RestAnswer) return json(200, { code: 0, ...data.extra, data: data.data });
      // int64 values as Go's encoding/json writes them: every digit (JSON.stringify has no bigints).
      if (data && typeof data === 'object' && hasBigInt(data)) return { ...json(200, {}), body: stringifyLossless({ code: 0, data }) ?? '' };
      return json(200, { code: 0, data });
    } catch (err) {
      if (err instanceof HttpAnswer) return err.response;
      if (!(err instanceof RestError)) throw err;
      detail.code = err.code;
      detail.message = err.message;
      // Milvus reports API errors in the body with HTTP 200.
      return json(200, { code: err.code, message: err.message });
    }
  }

  /**
   * Whether the request carries valid credentials, as the proxy's `authenticate` checks them
   * (service.go; httpserver/utils.go `ParseUsernamePassword`): HTTP Basic, else
   * `Authorization: Bearer <user>:<password>` (the prefix `Bearer ` is trimmed, the rest split
   * at the first `:`); a token without `:` is an API key, which the simulated Milvus has none
   * of. The one user is `root`, with `defaultRootPassword` (2.4.7+) or `Milvus`; with the `auth`
   * option, that user and password instead.
   */
  private authenticate(request: ProxyRequest): boolean {
    const header = headerValue(request, 'authorization') ?? '';
    let user: string | undefined;
    let password: string | undefined;
    const basic = /^Basic\s+(.+)$/i.exec(header);
    const decoded = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8') : header.startsWith('Bearer ') ? header.slice('Bearer '.length) : header;
    const i = decoded.indexOf(':');
    if (i !== -1) {
      user = decoded.slice(0, i);
      password = decoded.slice(i + 1);
    }
    if (!user || !password) return false;
    const expected = this.options.auth ?? { username: 'root', password: this.settings().rootPassword };
    return user === expected.username && password === expected.password;
  }

  private parseBody(body: Buffer): Record<string, unknown> {
    const raw = body.toString('utf8').trim();
    if (raw === '') {
      throw new RestError(
        MilvusErrorCode.IncorrectParameterFormat,
        'invalid parameter format, the request body should be nil, however {} is valid',
      );
    }
    let parsed: unknown;
    try {
      // int64 values beyond 2^53 (primary keys) stay exact: they arrive as decimal strings.
      parsed = parseLossless(raw, null, (value: string) => (Number.isSafeInteger(Number(value)) || !/^-?\d+$/.test(value) ? Number(value) : value));
    } catch (err) {
      throw new RestError(MilvusErrorCode.IncorrectParameterFormat, `invalid parameter format, error: ${(err as Error).message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new RestError(MilvusErrorCode.IncorrectParameterFormat, 'invalid parameter format, error: body must be a JSON object');
    }
    return parsed as Record<string, unknown>;
  }

  private collection(ctx: RestContext): CollectionState {
    const name = stringField(ctx.body, 'collectionName');
    if (!name) {
      throw new RestError(
        MilvusErrorCode.MissingRequiredParameters,
        "missing required parameters, error: Key: 'collectionName' Error:Field validation for 'collectionName' failed on the 'required' tag",
      );
    }
    ctx.detail.collection = name;
    const found = ctx.state.collections.find((c) => c.database === ctx.dbName && c.name === name);
    if (!found) {
      throw new RestError(MilvusErrorCode.CollectionNotFound, `collection not found[database=${ctx.dbName}][collection=${name}]`);
    }
    return found;
  }

  /**
   * Collection `c` with its segment logs read from MinIO: a request's state is etcd's view only
   * (row counts, search and queries read the segments of the one collection they are about).
   */
  private async withSegments(ctx: RestContext, c: CollectionState): Promise<CollectionState> {
    if (c.segmentsRead) return c;
    const found = (await readMilvusState(ctx.volumes, { segmentsOf: (id) => id === c.id })).collections.find((x) => x.id === c.id);
    if (!found) throw new RestError(MilvusErrorCode.CollectionNotFound, `collection not found[database=${ctx.dbName}][collection=${c.name}]`);
    return found;
  }

  private mutationsOf(collectionId: string): Mutations {
    let m = this.mutations.get(collectionId);
    if (!m) this.mutations.set(collectionId, (m = { inserted: [], deletes: new Set() }));
    return m;
  }

  /**
   * A filter's predicate; an expression outside the subset (filter.ts) answers as Milvus's
   * planner does: code 1100, `cannot parse expression: <expr>, error: <why>` (planparserv2
   * ParseExpr), wrapped by the proxy's `failed to create query plan: …` for a query.
   */
  private predicate(c: CollectionState, filter: string, kind: 'query' | 'delete'): (fields: ReadonlyMap<string, ScalarValue>) => boolean {
    const kinds: FieldKinds = new Map(
      c.info.schema.fields.map((f) => [f.name, f.data_type === 'Int64' ? 'int' : f.data_type === 'VarChar' ? 'string' : 'vector'] as const),
    );
    try {
      return parseFilter(filter, kinds);
    } catch (err) {
      if (!(err instanceof FilterError)) throw err;
      const parse = `cannot parse expression: ${filter}, error: ${err.message}`;
      throw new RestError(MilvusErrorCode.ParameterInvalid, `${kind === 'query' ? `failed to create query plan: ${parse}` : parse}: invalid parameter`);
    }
  }

  /**
   * The rows whose content is known, in primary-key order: flushed rows found on the volumes
   * (search.ts `liveKeys`) and rows inserted since the last flush, minus deletions since then.
   * Rows of a seeded growing segment are counted by count(*) but their keys are unknown (they
   * exist only in the unsimulated message queue), so no query returns them.
   */
  private async knownRows(ctx: RestContext, c: CollectionState): Promise<KnownRow[]> {
    const m = this.mutations.get(c.id);
    const pkName = primaryKeyName(c);
    const vectorName = c.info.schema.fields.find((f) => f.data_type === 'FloatVector')?.name ?? 'embedding';
    const row = (pk: bigint, vector: () => number[]): KnownRow => ({
      pk,
      fields: new Map([[pkName, pk]]),
      vector: (name) => (name === vectorName ? vector() : undefined),
    });
    const read = await this.withSegments(ctx, c);
    const flushed = liveKeyList(await this.loadedRows(ctx.volumes, read)).map((pk) => row(pk, () => Array.from(rowVector(c.id, pk, c.dim))));
    const inserted = this.unflushedRows(read).map((r) => row(r.pk, () => r.vector));
    return [...flushed, ...inserted].filter((r) => !m?.deletes.has(r.pk)).sort((a, b) => (a.pk < b.pk ? -1 : a.pk > b.pk ? 1 : 0));
  }

  /**
   * The searchable rows of a loaded collection, as its query nodes hold them. Milvus reads a
   * collection's sealed segments from object storage when it loads them and serves every search
   * and query from memory ("All search and query operations within Milvus are executed in
   * memory", milvus.io/docs load_collection; in the full-load mode "each QueryNode [loads] all
   * data fields and indexes of a segment at initialization", milvus.io/docs
   * tiered-storage-overview). So the stats and delete logs are read once per set of segments,
   * not per request: again when anything that decides what is searchable changes, which every
   * request sees in the state it re-reads from the volumes: another volume set (a new PVC, a
   * CR pointed at another bucket), a segment added, flushed or dropped (a flush, including the
   * L0 segment that carries deletions), or a primary-key binlog or delete log gone, corrupt or
   * with another row count. A collection found not loaded forgets its rows. What this does not
   * see is a stats log or delete log rewritten in place with the same headers, which a loaded
   * Milvus does not see either until it loads the segment again.
   */
  private async loadedRows(volumes: MilvusVolumes, c: CollectionState): Promise<LiveRows> {
    const segments = heldSegmentsKey(volumes, c);
    const held = this.loadedSegments.get(c.id);
    if (held?.segments === segments) return held.rows;
    const rows = await readLiveRows(volumes, c);
    this.loadedSegments.set(c.id, { segments, rows });
    return rows;
  }

  private isLoaded(c: CollectionState): boolean {
    return c.loadRecorded || this.loads.get(c.id)?.state === 'loaded';
  }

  /**
   * The load state of `c` as `get_load_state` answers it. While loading, `loadProgress` is what
   * querycoord's CollectionObserver computes (observePartitionLoadStatus): the targets loaded,
   * subscribed DML channels plus sealed segments in the query nodes' view, over all targets, in
   * percent; held below 100 until the load is complete.
   *
   * A segment that fails to load (a file missing) is recorded in querycoord's FailedLoadCache
   * (task/scheduler.go `recordSegmentTaskError`) and tried again by querycoord's segment checker
   * (a request that finds no read in progress starts the retry here; a retry reads only the
   * segments not read yet, so it progresses only if a file came back). Without progress for
   * `queryCoord.loadTimeoutSeconds` (strictly more) querycoord cancels the load (observeTimeout:
   * RemoveCollection). What GetLoadState answers then depends on the version. On 2.4, 2.5 and
   * 2.6, ShowLoadCollections (ShowCollections on 2.4) finds no load and a cached failure and
   * returns `errors.Wrap(<the cached error>, "show collection failed")`, with the cached error's
   * code, and the proxy's GetLoadState (internal/proxy/impl.go) turns only
   * ErrCollectionNotLoaded into LoadStateNotLoad: the REST answer is that error (here 1000, the
   * query node's key not found). Newer querycoord (master, 3.0) wraps the cached failure as
   * `merr.WrapErrCollectionNotLoaded(collectionID, err.Error())`, so GetLoadState answers
   * LoadStateNotLoad. Either way a failed load never says Loaded: it says Loading, stuck, then
   * the failure or NotLoad, and another load request starts over. The failure is forgotten after
   * 24 hours (FailedLoadCache `TryExpire`), or when querycoord restarts. Cancelling deletes the
   * load info from etcd (`RemoveCollection` → `catalog.ReleaseCollection`), in the background
   * (see {@link forgetCancelledLoad}): a cancelled load is not resumed when Milvus restarts.
   */
  private loadStateOf(c: CollectionState): { loadState: string; loadProgress?: number } {
    if (this.isLoaded(c)) return { loadState: 'LoadStateLoaded', loadProgress: 100 };
    const job = this.loads.get(c.id);
    if (job?.state !== 'loading') return { loadState: 'LoadStateNotLoad' };
    if (job.failure !== undefined && this.now().getTime() > job.updatedAt + LOAD_TIMEOUT_MS) {
      this.loads.delete(c.id);
      this.forgetCancelledLoad(job.source, c.id);
      return { loadState: 'LoadStateNotLoad' };
    }
    if (job.failure !== undefined && !job.reading) this.readForLoad(c.id, job);
    const progress = job.targets ? Math.min(99, Math.floor((job.done * 100) / job.targets)) : 0;
    return { loadState: 'LoadStateLoading', loadProgress: progress };
  }

  /**
   * The failure GetLoadState answers for `c` on 2.4 to 2.6 (see {@link loadStateOf}): the
   * failure querycoord cached of a load it cancelled, while `c` is neither loaded nor loading.
   */
  private cancelledLoadFailure(c: CollectionState): RestError | undefined {
    const failure = this.failedLoads.get(c.id);
    if (!failure) return undefined;
    if (this.now().getTime() - failure.at > FAILED_LOAD_EXPIRY_MS) {
      this.failedLoads.delete(c.id);
      return undefined;
    }
    const { version } = this.settings();
    if (version.kind !== 'release' || milvusLine(version) === '3.0') return undefined;
    return new RestError(MilvusErrorCode.IoKeyNotFound, `show collection failed: ${failure.message}`);
  }

  /**
   * Starts loading `c` in the background, as querycoord's load job does. The job saves the
   * collection's load info with status Loading in etcd before the request answers
   * (LoadCollectionJob.Execute, job/job_load.go step 5: `CollectionManager.PutCollection` →
   * `catalog.SaveCollection`; the proxy waits for the job), so a Milvus that restarts resumes the
   * load (see {@link recoverLoads}). Then the query nodes read every sealed segment's files from
   * the bucket — what they read to serve it: the insert binlogs the metadata lists (the
   * primary-key ones, whose headers count the rows), the primary-key stats logs, the delete logs
   * of L0 segments, and the index files of each built segment index — then the searchable rows
   * (`readLiveRows`), which become what searches use (see {@link loadedRows}). A file missing
   * fails the segment, and the load stays Loading (see {@link loadStateOf}). One read per load: a
   * load request while one runs, or of a loaded collection, changes nothing (querycoordv2's
   * LoadCollectionJob finds the collection in its meta and answers success without loading it
   * again). Decided under the etcd lock, so two requests at once start one load.
   */
  private async startLoad(volumes: MilvusVolumes, c: CollectionState): Promise<'started' | 'already loading' | 'already loaded'> {
    let outcome: 'started' | 'already loading' | 'already loaded' = 'already loading';
    await updateLoadInfo(volumes, c.id, (current) => {
      const job = this.loads.get(c.id);
      if (current?.status === 'Loaded' || job?.state === 'loaded') {
        outcome = 'already loaded';
        return undefined;
      }
      if (job?.state === 'loading') return undefined;
      outcome = 'started';
      const started = this.newLoadJob(volumes);
      const save: LoadInfo = { collectionID: c.id, status: 'Loading', replica_number: 1, load_percentage: 0 };
      return { save, applied: () => this.runLoad(c.id, started) };
    });
    return outcome;
  }

  /** A load job of `volumes` that has read nothing yet. */
  private newLoadJob(volumes: MilvusVolumes): Extract<LoadJob, { state: 'loading' }> {
    return { state: 'loading', volumes: volumesKey(volumes), source: volumes, segmentsRead: new Set(), reading: false, done: 0, updatedAt: this.now().getTime() };
  }

  /** Makes `job` collection `id`'s load and starts its read. */
  private runLoad(id: string, job: Extract<LoadJob, { state: 'loading' }>): void {
    this.loads.set(id, job);
    this.readForLoad(id, job);
  }

  /**
   * What querycoord's `CollectionManager.Recover` does at start (meta/collection_manager.go), for
   * each collection whose load info in etcd says Loading while no load of it runs here (the
   * instance came back up, the simulator is new, or other volumes were mounted): the load is put
   * back with `recover_times` + 1 saved, and its segments are read again (the target observer and
   * checkers load them anew); once `recover_times` reached {@link COLLECTION_RECOVER_TIMES_LIMIT},
   * querycoord releases it instead (`catalog.ReleaseCollection`). A Loaded one needs nothing: it
   * is loaded from the start (`CollectionState.loadRecorded`). Checked again under the etcd lock,
   * so a release or another request's recovery in between is not undone.
   */
  private async recoverLoads(volumes: MilvusVolumes, state: MilvusState, detail: Record<string, unknown>): Promise<void> {
    const idle = (id: string) => !this.loads.has(id) && !this.cancelledLoadInfo.has(id);
    for (const c of state.collections) {
      if (c.recordedLoad?.status !== 'Loading' || !idle(c.id)) continue;
      await updateLoadInfo(volumes, c.id, (current) => {
        if (current?.status !== 'Loading' || !idle(c.id)) return undefined;
        const times = current.recover_times ?? 0;
        const note = (key: string) => () => (detail[key] = [...((detail[key] as string[] | undefined) ?? []), `${c.database}.${c.name}`]);
        if (times >= COLLECTION_RECOVER_TIMES_LIMIT) return { save: null, applied: note('loadsReleasedAtStart') };
        const job = this.newLoadJob(volumes);
        return {
          save: { ...current, recover_times: times + 1 },
          applied: () => {
            this.runLoad(c.id, job);
            note('loadsResumed')();
          },
        };
      });
    }
  }

  /**
   * Deletes the load info of collection `id` after querycoord cancelled its load at the load
   * timeout (see {@link loadStateOf}, which answers at once, as the observer removes it on its own
   * tick). Tracked for {@link loadsSettled}. A load asked for again before the write takes the
   * lock keeps the Loading record it saved.
   */
  private forgetCancelledLoad(volumes: MilvusVolumes, id: string): void {
    const removal: Promise<void> = updateLoadInfo(volumes, id, (current) => (current === undefined || this.loads.has(id) ? undefined : { save: null }))
      .catch((err: unknown) => this.keepBackgroundFailure(err))
      .finally(() => {
        if (this.cancelledLoadInfo.get(id) === removal) this.cancelledLoadInfo.delete(id);
      });
    this.cancelledLoadInfo.set(id, removal);
  }

  /**
   * Keeps what a background etcd write failed with, for {@link loadsSettled} to throw. An etcd
   * that is gone (the volumes were taken away meanwhile) holds nothing to write to, and a Milvus
   * without it does not start: that is not a failure of the write.
   */
  private keepBackgroundFailure(err: unknown): void {
    if (err instanceof EtcdDataMissingError) return;
    this.backgroundFailure ??= err instanceof Error ? err : new Error(String(err));
  }

  /**
   * Reads in the background what the load `job` of collection `id` has not read yet (see
   * {@link startLoad}). What was read counts only while the job is still the collection's load
   * (not released, not cancelled, not forgotten with the instance going down or its volumes
   * changing: see `dispatch`) and its volumes are still the instance's when the read ends. Then
   * the load info is saved with status Loaded, as the CollectionObserver does once the load
   * reaches 100 % (`UpdateCollectionLoadPercent` saves it with `recover_times` cleared), and the
   * collection is loaded; both under the etcd lock, after checking there that the job is still
   * the collection's load, so a release that came first is not undone by a Loaded record.
   */
  private readForLoad(id: string, job: Extract<LoadJob, { state: 'loading' }>): void {
    job.reading = true;
    const read = this.readSegments(id, job).then(
      async (held) => {
        const volumes = await this.options.volumes();
        if (!volumes || volumesKey(volumes) !== job.volumes) {
          if (this.loads.get(id) === job) this.loads.delete(id);
          return;
        }
        try {
          await updateLoadInfo(job.source, id, (current) => {
            // The one check that counts: under the lock, where no release can come in between.
            if (this.loads.get(id) !== job) return undefined;
            // protobuf's JSON leaves out recover_times once it is 0 again: the seed's shape.
            const save: LoadInfo = { collectionID: id, status: 'Loaded', replica_number: current?.replica_number ?? 1, load_percentage: 100 };
            return {
              save,
              applied: () => {
                this.loadedSegments.set(id, held);
                this.loads.set(id, { state: 'loaded', volumes: job.volumes });
              },
            };
          });
        } catch (err) {
          // The observer saves again at its next tick: the job stays Loading, and a request retries it (loadStateOf).
          if (this.loads.get(id) === job) job.failure = `failed to save the load info: ${err instanceof Error ? err.message : String(err)}`;
        }
      },
      (err: unknown) => {
        job.failure = err instanceof Error ? err.message : String(err);
        if (this.loads.get(id) === job) this.failedLoads.set(id, { message: job.failure, volumes: job.volumes, at: this.now().getTime() });
      },
    );
    const tracked = read.finally(() => {
      job.reading = false;
      this.loadReads.delete(tracked);
    });
    this.loadReads.add(tracked);
  }

  /**
   * What a load of collection `id` reads (see {@link startLoad}): the files of each sealed
   * segment not read yet, each counted as progress once read; then the searchable rows and the
   * segments they are of.
   */
  private async readSegments(id: string, job: Extract<LoadJob, { state: 'loading' }>): Promise<{ segments: string; rows: LiveRows }> {
    const volumes = job.source;
    const c = (await readMilvusState(volumes, { segmentsOf: (x) => x === id })).collections.find((x) => x.id === id);
    if (!c) throw new Error(`collection ${id} was dropped while it loaded`);
    const sealed = c.segments.filter((seg) => seg.state === 'Flushed');
    const shards = c.info.shards_num;
    job.targets = shards + sealed.length;
    job.done = shards + sealed.filter((seg) => job.segmentsRead.has(seg.id)).length;
    const v = resolveVolumes(volumes);
    const drives = bucketOf(v);
    const indexFiles = await segmentIndexFiles(v.etcdDirs, v.rootPath, id);
    await mapBounded(
      sealed.filter((seg) => !job.segmentsRead.has(seg.id)),
      SEGMENT_LOADS_AT_ONCE,
      async (seg) => {
        // `missingObjects`: primary-key binlogs or delta logs absent or corrupt (state.ts reads their headers).
        if (seg.missingObjects.length > 0) throw new SegmentLoadError(seg.id, seg.missingObjects[0]!);
        for (const key of [...seg.statsLogKeys, ...(indexFiles.get(seg.id) ?? [])]) {
          if (!(await drives.exists(key))) throw new SegmentLoadError(seg.id, key);
        }
        job.segmentsRead.add(seg.id);
        job.done++;
        job.updatedAt = this.now().getTime();
      },
    );
    return { segments: heldSegmentsKey(volumes, c), rows: await readLiveRows(volumes, c) };
  }

  /**
   * Resolves once every load read in progress has finished (loaded or failed) and the load infos
   * of cancelled loads are deleted, so a test awaits the query nodes' and querycoord's work
   * rather than a time; a load requested meanwhile is awaited too. Throws what a background etcd
   * write failed with, once.
   */
  async loadsSettled(): Promise<void> {
    while (this.loadReads.size > 0 || this.cancelledLoadInfo.size > 0) await Promise.all([...this.loadReads, ...this.cancelledLoadInfo.values()]);
    const failure = this.backgroundFailure;
    this.backgroundFailure = undefined;
    if (failure) throw failure;
  }

  /**
   * Answers code 101 for a collection that is not loaded and 103 for one still loading, as the
   * proxy does when querycoord has no shard leaders for it (GetShardLeaders:
   * ErrCollectionNotLoaded, or ErrCollectionNotFullyLoaded below 100 percent).
   */
  private requireLoaded(c: CollectionState): void {
    if (this.isLoaded(c)) return;
    if (this.loadStateOf(c).loadState === 'LoadStateLoading') {
      throw new RestError(MilvusErrorCode.CollectionNotFullyLoaded, `collection not fully loaded[collection=${c.id}]`);
    }
    this.loadedSegments.delete(c.id);
    throw new RestError(MilvusErrorCode.CollectionNotLoaded, `collection not loaded[collection=${c.name}]`);
  }

  private readonly routes: Record<string, (this: MilvusSimulator, ctx: RestContext) => Promise<unknown>> = {
    async 'databases/list'(ctx) {
      return [...ctx.state.databases].sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1)).map((d) => d.name);
    },

    async 'collections/list'(ctx) {
      return ctx.state.collections.filter((c) => c.database === ctx.dbName).map((c) => c.name);
    },

    async 'collections/describe'(ctx) {
      const c = this.collection(ctx);
      return {
        collectionName: c.name,
        // An int64 beyond JavaScript's safe integers (a TSO-based id): written with every digit.
        collectionID: BigInt(c.id),
        description: c.info.schema.description,
        autoId: false,
        fields: c.info.schema.fields.map((f) => ({
          name: f.name,
          id: Number(f.fieldID),
          type: f.data_type,
          primaryKey: f.is_primary_key,
          partitionKey: false,
          autoId: f.autoID,
          description: f.description,
          params: f.type_params,
        })),
        functions: [],
        aliases: [],
        indexes: c.index ? [{ fieldName: c.index.fieldName, indexName: c.index.indexName, metricType: c.index.metricType }] : [],
        load: this.loadStateOf(c).loadState,
        shardsNum: c.info.shards_num,
        partitionsNum: c.info.partitionIDs.length,
        consistencyLevel: c.info.consistency_level,
        enableDynamicField: c.info.schema.enable_dynamic_field,
        properties: c.info.properties,
      };
    },

    async 'collections/flush'(ctx) {
      const c = this.collection(ctx);
      const mine = this.acceptFlush(c);
      ctx.detail.sealedSegments = c.growingSegmentIds;
      ctx.detail.flush = 'accepted';
      if (this.settings().behaviour.restFlush !== 'waits') return {};
      // 3.0/master: the handler waits for the flush (waitForFlush), bounded by the request
      // timeout (`Request-Timeout` seconds, else 30 s), after which the timeout middleware
      // (timeout_middleware.go) answers HTTP 408 {"code":10001,"message":"request timeout"}.
      const header = Number(headerValue(ctx.request, 'request-timeout'));
      const timeoutMs = Number.isInteger(header) && header > 0 ? header * 1000 : DEFAULT_REQUEST_TIMEOUT_MS;
      const start = this.now().getTime();
      while ((this.flushes.get(c.id) ?? []).includes(mine) || this.faults.flushNeverCompletes) {
        const waited = this.now().getTime() - start;
        if (waited >= timeoutMs) {
          ctx.detail.flush = 'timed out waiting';
          throw new HttpAnswer(json(408, { code: MilvusErrorCode.Timeout, message: 'request timeout' }));
        }
        await this.sleep(Math.min(1000, timeoutMs - waited));
        await this.completeDueFlushes(ctx.volumes, ctx.state, ctx.detail);
      }
      ctx.detail.flush = 'waited until flushed';
      return {};
    },

    async 'collections/get_stats'(ctx) {
      const c = await this.withSegments(ctx, this.collection(ctx));
      ctx.detail.flush = this.flushes.has(c.id) ? 'in progress' : 'none pending';
      ctx.detail.rowCount = c.statsRows;
      return { rowCount: c.statsRows };
    },

    async 'collections/load'(ctx) {
      const c = this.collection(ctx);
      // A load whose time is up is cancelled first (loadStateOf): then it may be asked for again.
      this.loadStateOf(c);
      ctx.detail.load = await this.startLoad(ctx.volumes, c);
      return {};
    },

    async 'collections/release'(ctx) {
      // querycoord's ReleaseCollection (services.go; job/job_release.go): a collection not loaded
      // answers success ("the collection has not been loaded into QueryNode"); else the load job
      // ends, the query nodes let go of its segments, and `RemoveCollection` deletes its load info
      // from etcd (`catalog.ReleaseCollection`); then the FailedLoadCache entry is removed. Under
      // the etcd lock, so a load that completes meanwhile cannot write Loaded back.
      const c = this.collection(ctx);
      let released = false;
      await updateLoadInfo(ctx.volumes, c.id, (current) => {
        released = current !== undefined || this.loads.has(c.id);
        return {
          save: null,
          applied: () => {
            this.loads.delete(c.id);
            this.loadedSegments.delete(c.id);
            this.failedLoads.delete(c.id);
          },
        };
      });
      ctx.detail.release = released ? 'released' : 'not loaded';
      return {};
    },

    async 'collections/drop'(ctx) {
      // DropCollection (internal/rootcoord/drop_collection_task.go): dropping a collection that
      // does not exist succeeds ("make dropping collection idempotent"); the load ends with it.
      const name = stringField(ctx.body, 'collectionName');
      const c = ctx.state.collections.find((x) => x.database === ctx.dbName && x.name === name);
      if (!c) {
        ctx.detail.drop = 'not found';
        return {};
      }
      ctx.detail.collection = name;
      await dropCollection(ctx.volumes, c.id);
      // Its channels are gone: nothing of it is flushed any more, and rows only in its growing
      // segments go with it.
      this.flushes.delete(c.id);
      this.mutations.delete(c.id);
      this.loads.delete(c.id);
      this.loadedSegments.delete(c.id);
      this.failedLoads.delete(c.id);
      ctx.detail.drop = 'dropped';
      return {};
    },

    async 'collections/get_load_state'(ctx) {
      const c = this.collection(ctx);
      const state = this.loadStateOf(c);
      const failure = state.loadState === 'LoadStateNotLoad' ? this.cancelledLoadFailure(c) : undefined;
      if (failure) throw failure;
      Object.assign(ctx.detail, state);
      return state;
    },

    async 'entities/query'(ctx) {
      // QueryReqV2: filter, outputFields, limit, offset. Checks in the order of the proxy's
      // queryTask.PreExecute (internal/proxy/task_query.go): the collection, the result window,
      // the plan (expression, output fields), "empty expression should be used with limit",
      // count with pagination; the load state when it executes.
      const c = this.collection(ctx);
      const names = Array.isArray(ctx.body.outputFields) ? ctx.body.outputFields.map(String) : [];
      const counts = names.filter((n) => n.trim().toLowerCase() === 'count(*)').length;
      const isCount = counts > 0;
      if (isCount && names.length > 1) {
        // Only a lone count(*) is a count (task_query.go matchCountRule); mixed in, it is no field.
        throw new RestError(MilvusErrorCode.ParameterInvalid, `field count(*) not exist: invalid parameter`);
      }
      if (isCount && typeof ctx.body.limit === 'number' && ctx.body.limit > 0) {
        throw new RestError(MilvusErrorCode.ParameterInvalid, 'count entities with pagination is not allowed: invalid parameter');
      }
      const fieldNames = c.info.schema.fields.map((f) => f.name);
      for (const name of isCount ? [] : names) {
        if (name !== '*' && !fieldNames.includes(name)) throw new RestError(MilvusErrorCode.ParameterInvalid, `field ${name} not exist: invalid parameter`);
      }
      const limit = ctx.body.limit;
      const offset = ctx.body.offset ?? 0;
      if (limit !== undefined && limit !== 0) {
        const window = Number(limit) + Number(offset);
        if (!Number.isInteger(limit) || !Number.isInteger(offset) || (limit as number) < 1 || (offset as number) < 0 || window > MAX_QUERY_WINDOW) {
          throw new RestError(
            MilvusErrorCode.ParameterInvalid,
            `invalid max query result window, (offset+limit) should be in range [1, ${MAX_QUERY_WINDOW}], but got ${window}: invalid parameter`,
          );
        }
      }
      const filter = typeof ctx.body.filter === 'string' ? ctx.body.filter.trim() : '';
      const hasLimit = typeof limit === 'number' && limit > 0;
      if (!isCount && filter === '' && !hasLimit) {
        throw new RestError(MilvusErrorCode.ParameterInvalid, 'empty expression should be used with limit: invalid parameter');
      }
      const predicate = filter === '' ? () => true : this.predicate(c, filter, 'query');
      this.requireLoaded(c);
      const m = this.mutations.get(c.id);
      if (isCount && filter === '') {
        // Every live row, growing ones included (those etcd records, and those still only in the
        // queue and the datanode's buffer); deletions since the last flush applied at once.
        const rows = await this.withSegments(ctx, c);
        const count = rows.persistedRows + rows.growingRows + this.unflushedRows(rows).length - (m?.deletes.size ?? 0);
        ctx.detail.count = count;
        return [{ 'count(*)': count }];
      }
      const rows = (await this.knownRows(ctx, c)).filter((r) => predicate(r.fields));
      if (isCount) {
        ctx.detail.count = rows.length;
        return [{ 'count(*)': rows.length }];
      }
      const page = rows.slice(Number(offset), hasLimit ? Number(offset) + (limit as number) : undefined);
      const wanted = names.length === 0 ? [primaryKeyName(c)] : names.includes('*') ? fieldNames : [...new Set([primaryKeyName(c), ...names])];
      Object.assign(ctx.detail, { filter, matched: rows.length, returned: page.length });
      // int64 values are strings, as the REST API writes them without Accept-Type-Allow-Int64.
      return new RestAnswer(
        page.map((r) => Object.fromEntries(wanted.map((name) => [name, outputValue(r.fields.get(name) ?? r.vector(name))]))),
        { cost: 0 },
      );
    },

    async 'entities/insert'(ctx) {
      // CollectionDataReq: `data` is a list of rows, each with every field of the schema.
      const c = this.collection(ctx);
      const data = ctx.body.data;
      if (data === undefined || data === null) {
        throw new RestError(
          MilvusErrorCode.MissingRequiredParameters,
          "missing required parameters, error: Key: 'CollectionDataReq.Data' Error:Field validation for 'Data' failed on the 'required' tag",
        );
      }
      // merr.ErrInvalidInsertData (1804) is "fail to deal the insert data"; the handler appends ", error: …".
      const invalid = (why: string) => new RestError(MilvusErrorCode.InvalidInsertData, `fail to deal the insert data, error: ${why}`);
      const rows = Array.isArray(data) ? data : [data];
      if (rows.length === 0) throw invalid('no rows to insert');
      const pkName = primaryKeyName(c);
      const vectorName = c.info.schema.fields.find((f) => f.data_type === 'FloatVector')?.name ?? 'embedding';
      const known = new Set(c.info.schema.fields.map((f) => f.name));
      const inserted = rows.map((row, i) => {
        if (row === null || typeof row !== 'object' || Array.isArray(row)) throw invalid(`row ${i} is not a JSON object`);
        const r = row as Record<string, unknown>;
        for (const key of Object.keys(r)) if (!known.has(key)) throw invalid(`field ${key} is not in the schema and the dynamic field is disabled`);
        const pk = r[pkName];
        if (pk === undefined) throw invalid(`strconv.ParseInt: parsing "": invalid syntax, field ${pkName} is missing`);
        if (!((typeof pk === 'number' && Number.isSafeInteger(pk)) || (typeof pk === 'string' && /^-?\d+$/.test(pk)))) throw invalid(`${JSON.stringify(pk)} is not an int64 for field ${pkName}`);
        const vector = r[vectorName];
        if (!Array.isArray(vector) || !vector.every((x) => typeof x === 'number' && Number.isFinite(x))) throw invalid(`field ${vectorName} of row ${i} is not a float vector`);
        if (vector.length !== c.dim) throw invalid(`dimension: ${c.dim}, but length of []float: ${vector.length}`);
        return { pk: BigInt(pk), vector: vector as number[] };
      });
      const current = this.mutationsOf(c.id);
      let segmentId = current.segmentId;
      if (segmentId === undefined) {
        const opening = (current.opening ??= openGrowingSegment(ctx.volumes, c.id, this.now()));
        let opened: string;
        try {
          opened = await opening;
        } finally {
          // A failed open is not kept for the next insert to fail on.
          if (current.opening === opening) delete current.opening;
        }
        // Later rows go to it too, unless a flush accepted meanwhile sealed it (then these rows,
        // allocated before the seal, are that flush's), or another insert opened one first.
        if (!this.sealed.has(opened)) this.mutationsOf(c.id).segmentId ??= opened;
        segmentId = opened;
        if (this.sealed.has(opened) && !(this.flushes.get(c.id) ?? []).some((f) => f.segments.has(opened))) {
          // Its flush is written already: rows assigned to it now would never be flushed.
          segmentId = await openGrowingSegment(ctx.volumes, c.id, this.now());
          this.mutationsOf(c.id).segmentId ??= segmentId;
        }
      }
      // Assigned with no wait after the segment is chosen: a flush accepted later takes these rows.
      const m = this.mutationsOf(c.id);
      m.inserted.push(...inserted.map((r) => ({ ...r, segmentId: segmentId! })));
      Object.assign(ctx.detail, { inserted: inserted.length, growingSegment: segmentId });
      return new RestAnswer({ insertCount: inserted.length, insertIds: inserted.map((r) => r.pk.toString()) }, { cost: 0 });
    },

    async 'entities/delete'(ctx) {
      // CollectionFilterReq: `filter` is required. Deleted rows leave count(*) at once; get_stats
      // keeps counting them (no segment's row count changes until compaction).
      const c = this.collection(ctx);
      const filter = typeof ctx.body.filter === 'string' ? ctx.body.filter.trim() : '';
      if (filter === '') {
        throw new RestError(
          MilvusErrorCode.MissingRequiredParameters,
          "missing required parameters, error: Key: 'CollectionFilterReq.Filter' Error:Field validation for 'Filter' failed on the 'required' tag",
        );
      }
      const predicate = this.predicate(c, filter, 'delete');
      const matched = (await this.knownRows(ctx, c)).filter((r) => predicate(r.fields));
      const m = this.mutationsOf(c.id);
      for (const r of matched) m.deletes.add(r.pk);
      Object.assign(ctx.detail, { filter, deleted: matched.length });
      // 2.4 answers {} (wrapperReturnDefault); later lines the number deleted.
      if (milvusLine(this.settings().version) === '2.4') return {};
      return new RestAnswer({ deleteCount: matched.length }, { cost: 0 });
    },

    async 'entities/search'(ctx) {
      // The checks run in the order of Milvus's REST handler: the schema (collection), the
      // query vectors against the schema, then the proxy's own checks (limit, load state).
      const c = this.collection(ctx);
      const { field, dim, vectors } = searchVectors(ctx.body, c);
      const limit = ctx.body.limit ?? DEFAULT_SEARCH_LIMIT;
      if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_TOP_K) {
        throw new RestError(
          MilvusErrorCode.ParameterInvalid,
          `invalid parameter[expected=within range [1, ${MAX_TOP_K}]][actual=${JSON.stringify(limit)}]: top k should be in range [1, ${MAX_TOP_K}]`,
        );
      }
      const filter = ctx.body.filter;
      if (filter !== undefined && filter !== null && String(filter).trim() !== '') {
        throw new RestError(
          MilvusErrorCode.ParameterInvalid,
          `invalid parameter[expected=filter ""][actual=${JSON.stringify(filter)}]: the local Milvus simulator searches without filters only`,
        );
      }
      const outputs = ctx.body.outputFields ?? [];
      const fieldNames = new Set(c.info.schema.fields.map((f) => f.name));
      for (const name of Array.isArray(outputs) ? outputs : [outputs]) {
        if (typeof name !== 'string' || !fieldNames.has(name)) {
          throw new RestError(MilvusErrorCode.ParameterInvalid, `field ${String(name)} not exist: invalid parameter`);
        }
      }
      const withVector = (outputs as string[]).includes(field);
      this.requireLoaded(c);
      const metric = (c.index?.fieldName === field ? c.index.metricType : 'COSINE') as MetricType;
      const read = await this.withSegments(ctx, c);
      const pending = this.mutations.get(c.id);
      const keys = withUnflushed(await this.loadedRows(ctx.volumes, read), pending?.deletes ?? new Set(), this.unflushedRows(read).map((r) => r.pk));
      // Several query vectors give their hits one after another in one flat list, as the REST API does.
      const hits = [];
      for (const vector of vectors) {
        for (const hit of await nearest(c.id, keys, vector, limit, metric)) {
          hits.push({
            distance: hit.distance,
            // int64 keys are strings unless the client sends Accept-Type-Allow-Int64 (not supported here).
            id: hit.pk.toString(),
            ...(withVector ? { [field]: Array.from(hit.vector) } : {}),
          });
        }
      }
      Object.assign(ctx.detail, { annsField: field, dim, metric, limit, nq: vectors.length, searchableRows: keys.size, hits: hits.length });
      return new RestAnswer(hits, { cost: 0 });
    },
  };
}

const parameterFormat = (message: string) => new RestError(MilvusErrorCode.IncorrectParameterFormat, `invalid parameter format, error: ${message}`);

/**
 * The vector field and query vectors of a search body, checked like Milvus's REST handler
 * (`generatePlaceholderGroup`): `annsField` may be omitted when the collection has one vector
 * field; every vector must be numbers of the field's dimension. Errors are code 1801 or 1802.
 */
function searchVectors(body: Record<string, unknown>, c: CollectionState): { field: string; dim: number; vectors: number[][] } {
  const data = body.data;
  if (data === undefined || data === null) {
    throw new RestError(
      MilvusErrorCode.MissingRequiredParameters,
      "missing required parameters, error: Key: 'SearchReqV2.Data' Error:Field validation for 'Data' failed on the 'required' tag",
    );
  }
  if (!Array.isArray(data)) throw parameterFormat(`json: cannot unmarshal ${typeof data} into Go struct field SearchReqV2.data of type []interface {}`);
  const vectorFields = c.info.schema.fields.filter((f) => f.data_type.endsWith('Vector'));
  const annsField = stringField(body, 'annsField');
  let field;
  if (annsField === undefined) {
    if (vectorFields.length > 1) {
      throw parameterFormat(`search without annsField, but already found multiple vector fields: [${vectorFields[0]!.name}, ${vectorFields[1]!.name},,,]`);
    }
    field = vectorFields[0];
  } else {
    field = vectorFields.find((f) => f.name === annsField);
  }
  if (!field) throw parameterFormat(`cannot find a vector field named: ${annsField ?? ''}`);
  const dim = Number(field.type_params.find((p) => p.key === 'dim')?.value ?? 0);
  const vectors = data.map((vector) => {
    const text = JSON.stringify(vector);
    if (!Array.isArray(vector) || !vector.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw parameterFormat(`invalid parameter[expected=FloatVector][actual=${text}]: json: cannot unmarshal into []float32`);
    }
    if (vector.length !== dim) {
      throw parameterFormat(`invalid parameter[expected=FloatVector][actual=${text}]: dimension: ${dim}, but length of []float: ${vector.length}`);
    }
    return vector as number[];
  });
  if (vectors.length === 0) throw parameterFormat('invalid parameter[expected=FloatVector][actual=[]]: no query vector');
  return { field: field.name, dim, vectors };
}

/** A row a query can return: its key, its scalar fields, and its vector on demand. */
interface KnownRow {
  pk: bigint;
  fields: ReadonlyMap<string, ScalarValue>;
  vector: (name: string) => number[] | undefined;
}

function primaryKeyName(c: CollectionState): string {
  return c.info.schema.fields.find((f) => f.is_primary_key)?.name ?? 'id';
}

/** A field value as the REST API writes it: int64 as a decimal string. */
function outputValue(v: ScalarValue | number[] | undefined): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

function stringField(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A request header by case-insensitive name (proxies and clients differ in casing). */
function headerValue(request: ProxyRequest, name: string): string | undefined {
  for (const [key, value] of Object.entries(request.headers)) {
    if (key.toLowerCase() === name && value !== undefined && value !== '') return value;
  }
  return undefined;
}

/** Which volumes an instance runs on, as one comparable key. */
function volumesKey(volumes: MilvusVolumes): string {
  return JSON.stringify(resolveVolumes(volumes));
}

/**
 * What the query nodes hold rows of: the volumes and the collection's sealed segments. Rows read
 * for one key serve every request that finds the same key (see `loadedRows`).
 */
function heldSegmentsKey(volumes: MilvusVolumes, c: CollectionState): string {
  return JSON.stringify([resolveVolumes(volumes), c.segments.filter((s) => s.state !== 'Growing')]);
}

/**
 * The object keys of the index files of each of collection `collectionId`'s segments, by
 * segment id, from datacoord's segment-index records in etcd (`index_file_keys` under
 * `index_files/<buildID>/<version>/<partition>/<segment>/`, as Milvus's `metautil` builds them).
 */
async function segmentIndexFiles(etcdDirs: readonly string[], rootPath: string, collectionId: string): Promise<Map<string, string[]>> {
  const { entries } = await readEtcd(etcdDirs);
  const prefix = etcdKeys.segmentIndex(collectionId, '', '', '').replace(/\/+$/, '') + '/';
  const files = new Map<string, string[]>();
  for (const [key, value] of entries) {
    if (!key.startsWith(prefix)) continue;
    let index: SegmentIndex;
    try {
      index = JSON.parse(value) as SegmentIndex;
    } catch {
      continue;
    }
    const keys = index.index_file_keys.map((name) => objectKeys.indexFile(rootPath, index.buildID, index.index_version, index.partitionID, index.segmentID, name));
    files.set(index.segmentID, [...(files.get(index.segmentID) ?? []), ...keys]);
  }
  return files;
}

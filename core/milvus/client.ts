/**
 * A Milvus client. By default it goes through the Kubernetes API service proxy
 * (`/api/v1/namespaces/NS/services/SVC:PORT/proxy/...`), so Lambdas reach Milvus with the same
 * credentials as every other cluster call and need no VPC route to the pods; a Milvus that wants
 * credentials is reached through the relay instead (transport.ts, relay.ts). REST v2 (port
 * 19530, all POST with JSON) answers HTTP 200 with `{"code": 0, "data": ...}` or a non-zero
 * `code` and a `message`; the management endpoints live on port 9091.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { parse as parseLossless, parseNumberAndBigInt } from 'lossless-json';
import { KubernetesRequestError } from '../kube/errors.js';
import { ServiceProxyTransport, type MilvusAnswer, type MilvusCall, type MilvusEndpoint, type MilvusTransport } from './transport.js';

export type { MilvusEndpoint } from './transport.js';

/** What confirming a flush takes: the segments it sealed and its timestamp (int64s, as decimal strings). */
export interface PersistTicket {
  readonly segmentIds: readonly string[];
  readonly flushTs: string;
}

/** A decimal integer as a JSON number literal, checked so nothing else enters the request. */
function decimal(value: string): string {
  if (!/^\d{1,20}$/.test(value)) throw new RangeError(`"${value}" is not an unsigned decimal integer`);
  return value;
}

/** Milvus answered with a non-zero REST v2 code (for example 100: collection not found). */
export class MilvusApiError extends Error {
  /** `code` is the HTTP status of the answer (an error before Milvus's handler: a router, a proxy), not a code Milvus wrote. */
  readonly httpStatus: boolean;
  constructor(
    readonly operation: string,
    readonly code: number,
    message: string,
    options: { httpStatus?: boolean } = {},
  ) {
    super(`Milvus ${operation} failed with code ${code}: ${message}`);
    this.name = 'MilvusApiError';
    this.httpStatus = options.httpStatus ?? false;
  }
}

/**
 * Milvus codes (pkg/util/merr/errors.go) with which a query or a search refuses a collection its
 * query nodes cannot serve yet, on 2.4 to 2.6 and master. Before it queries, the proxy asks
 * querycoord for the collection's shard leaders, and GetShardLeaders
 * (internal/querycoordv2/utils/util.go) answers:
 * - 101 `ErrCollectionNotLoaded` (`checkLoadStatus`): querycoord holds no load of it;
 * - 103 `ErrCollectionNotFullyLoaded` (`checkLoadStatus`): its load is below 100 percent;
 * - 106 `ErrCollectionOnRecovering` (`GetShardLeaders`): it is loaded but the current target has
 *   no channel yet ("loaded collection do not found any channel in target, may be in
 *   recovery"), as right after a load completes or while querycoord recovers;
 * - 503 `ErrChannelNotAvailable` (`GetShardLeadersWithChannels`): no replica has a serviceable
 *   leader for a channel; the proxy's load balancer answers it too when it finds no shard leader
 *   to send the request to ("no available shard leaders", internal/proxy/lb_policy.go
 *   `selectNode`).
 * Each can pass by itself (106 is marked retriable), or last while query nodes are down: either
 * way the collection's data is not in question, only whether it can be queried now.
 */
export const NOT_QUERYABLE_CODES: ReadonlySet<number> = new Set([101, 103, 106, 503]);

/** Whether `err` is Milvus refusing a query or search because the collection cannot be served yet ({@link NOT_QUERYABLE_CODES}). */
export function isNotQueryable(err: unknown): err is MilvusApiError {
  return err instanceof MilvusApiError && NOT_QUERYABLE_CODES.has(err.code);
}

/**
 * The Milvus is older than milvus-guard can work with: a backup refuses its version
 * (core/milvus/version.ts `backupUnsupportedReason`), or it lacks a route the version that added
 * it serves.
 */
export class MilvusVersionUnsupportedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MilvusVersionUnsupported';
  }
}

/** Whether `err` is the REST router's own 404 for a route it does not have (gin: `404 page not found`), through the relay or the service proxy. */
function isRouteNotFound(err: unknown): boolean {
  const status = err instanceof MilvusApiError ? (err.httpStatus ? err.code : undefined) : err instanceof KubernetesRequestError ? err.status : undefined;
  return status === 404 && /404 page not found/.test((err as Error).message);
}

/** A management endpoint (port 9091) refused the request. */
export class MilvusManagementError extends Error {
  constructor(
    readonly operation: string,
    message: string,
    /** The code Milvus wrote in the answer's status (merr), when it answered one. */
    readonly milvusCode?: number,
  ) {
    super(`Milvus ${operation} failed: ${message}`);
    this.name = 'MilvusManagementError';
  }
}

/**
 * merr codes (pkg/util/merr/errors.go) with which Milvus refuses a collection or database that
 * does not exist: 100 `ErrCollectionNotFound`, 800 `ErrDatabaseNotFound`. During a backup they
 * mean the collection was dropped after it was listed (an application swapping collections behind
 * an alias drops the old one), not that Milvus is unwell.
 */
const GONE_CODES: ReadonlySet<number> = new Set([100, 800]);

/**
 * Whether `err` is Milvus refusing a call for the user's privileges, which asking again will not
 * change: HTTP 403 from REST v2's privilege check (httpserver `checkAuthorizationV2`), or merr
 * 1401 `ErrPrivilegeNotPermitted` / 1400 `ErrPrivilegeNotAuthenticated`.
 */
export function isPrivilegeRefusal(err: unknown): boolean {
  if (!(err instanceof MilvusApiError)) return false;
  return err.httpStatus ? err.code === 403 : err.code === 1401 || err.code === 1400;
}

/**
 * Whether `err` is Milvus refusing to describe a collection, as opposed to no answer: an error
 * Milvus wrote (a privilege refusal, or one that may pass, such as 65535 from a coordinator not
 * ready), or HTTP 403 ({@link isPrivilegeRefusal}). Not a proxy's other HTTP statuses, nor no
 * answer at all. Gone ({@link isCollectionGone}) is told apart first.
 */
export function idRefused(err: unknown): boolean {
  if (!(err instanceof MilvusApiError)) return false;
  return !err.httpStatus || isPrivilegeRefusal(err);
}

/** Whether `err` is Milvus's own answer that the collection (or its database) does not exist ({@link GONE_CODES}). */
export function isCollectionGone(err: unknown): boolean {
  if (err instanceof MilvusApiError) return !err.httpStatus && GONE_CODES.has(err.code);
  return err instanceof MilvusManagementError && err.milvusCode !== undefined && GONE_CODES.has(err.milvusCode);
}

export type LoadState = 'LoadStateNotExist' | 'LoadStateNotLoad' | 'LoadStateLoading' | 'LoadStateLoaded';

/** The vector field a sample search runs on. */
export interface VectorField {
  field: string;
  dim: number;
  /** Metric of the field's index (`COSINE`, `IP`, `L2`, ...); absent when the field has no index. */
  metricType?: string;
}

/** One search hit. int64 keys arrive as strings (the REST default), other keys as they are. */
export interface SearchHit {
  id: string | number;
  distance: number;
}

/** The collection has no float-vector field to search on. */
export class MilvusSchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MilvusSchemaError';
  }
}

/**
 * The REST v2 operations that may be sent twice (every one is a POST): the reads, and flush, load
 * and release, whose second call finds the state the first made. An operation that adds (an
 * insert, a create) must never be here.
 */
const IDEMPOTENT_OPERATIONS: ReadonlySet<string> = new Set([
  'databases/list',
  'collections/list',
  'collections/describe',
  'collections/get_stats',
  'collections/get_load_state',
  'collections/flush',
  'collections/load',
  'collections/release',
  'entities/query',
  'entities/search',
]);

interface DescribedCollection {
  fields?: { name: string; type: string; params?: { key: string; value: string | number }[] }[];
  indexes?: { fieldName: string; metricType?: string }[];
}

/**
 * Task-level operations on one Milvus instance. Every method is one REST call; waiting and
 * confirming (a flush, a load) is the caller's policy, because Lambda steps poll from Step
 * Functions rather than sleep.
 */
export class MilvusClient {
  private readonly transport: MilvusTransport;

  /** Through the service proxy of `kc`'s cluster, unless another `transport` is given. */
  constructor(kc: KubeConfig, endpoint: MilvusEndpoint, transport?: MilvusTransport) {
    this.transport = transport ?? new ServiceProxyTransport(kc, endpoint);
  }

  /** Releases the transport (the relay's exec session); call it when the step is done. */
  async close(): Promise<void> {
    await this.transport.close();
  }

  /**
   * Names of every database. Milvus 2.4 before 2.4.18 has no such route (milvus-io/milvus#38188):
   * its router's 404, through the relay or the service proxy, becomes {@link MilvusVersionUnsupportedError}.
   */
  async listDatabases(): Promise<string[]> {
    try {
      return await this.rest<string[]>('databases/list', {});
    } catch (err) {
      if (isRouteNotFound(err)) {
        throw new MilvusVersionUnsupportedError('Milvus answered 404 page not found for REST v2 databases/list, which Milvus serves from 2.4.18: upgrade Milvus to 2.4.18 or later', { cause: err });
      }
      throw err;
    }
  }

  /** Names of the collections in `dbName`. */
  async listCollections(dbName: string): Promise<string[]> {
    return this.rest<string[]>('collections/list', { dbName });
  }

  /** Asks Milvus to seal and persist the collection's growing segments (REST v2, 2.5.4+). Returns before completion. */
  async flush(dbName: string, collectionName: string): Promise<void> {
    await this.rest('collections/flush', { dbName, collectionName });
  }

  /**
   * Flushes a collection through the proxy's HTTP API on the management port
   * (`POST :9091/api/v1/persist`, every line from 2.4 to 2.6 and master: the proxy's Flush as
   * JSON), and returns what confirming it takes: the segments sealed for it and the flush
   * timestamp. Both are int64/uint64 values beyond JavaScript's safe integers, kept as decimal
   * strings. Unlike REST v2 (no flush before 2.5.4, and no way to learn the flush's segments or
   * timestamp on any line), this is the call milvus-backup makes over gRPC.
   */
  async persist(dbName: string, collectionName: string): Promise<PersistTicket> {
    // Sent twice, the second flush answers a later flush_ts, and the flush state waits for every
    // channel's checkpoint to pass it: past what the first one sealed too.
    const body = await this.managementJson('POST', '/api/v1/persist', JSON.stringify({ db_name: dbName, collection_names: [collectionName] }), 'flush', { idempotent: true });
    const segments = (body.coll_segIDs as Record<string, { data?: unknown[] }> | undefined)?.[collectionName]?.data ?? [];
    const flushTs = (body.coll_flush_ts as Record<string, unknown> | undefined)?.[collectionName];
    if (flushTs === undefined) throw new MilvusManagementError('flush', `answered no flush timestamp for ${dbName}.${collectionName}`);
    return { segmentIds: segments.map(String), flushTs: String(flushTs) };
  }

  /**
   * Whether the flush `persist` answered is complete: every segment it sealed is flushed and
   * every channel's checkpoint passed its timestamp (`GET :9091/api/v1/persist/state`, the
   * proxy's GetFlushState; the request is a JSON body, which the handler binds).
   */
  async flushed(dbName: string, collectionName: string, ticket: PersistTicket): Promise<boolean> {
    const raw = `{"segmentIDs":[${ticket.segmentIds.map(decimal).join(',')}],"flush_ts":${decimal(ticket.flushTs)},"db_name":${JSON.stringify(dbName)},"collection_name":${JSON.stringify(collectionName)}}`;
    const body = await this.managementJson('GET', '/api/v1/persist/state', raw, 'flush state');
    // `flushed` is omitted when false (protobuf JSON, omitempty).
    return body.flushed === true;
  }

  /**
   * `get_stats`: the row counts datacoord records for the collection's segments
   * (`meta.GetNumRowsOfCollection`), growing ones as of their last sync, deleted rows included
   * until compaction. Metadata only: it needs no query node and reads no file.
   */
  async persistedRowCount(dbName: string, collectionName: string): Promise<number> {
    const data = await this.rest<{ rowCount: number | string }>('collections/get_stats', { dbName, collectionName });
    return Number(data.rowCount);
  }

  /** Whether the collection is loaded into query nodes (queries need it). */
  async loadState(dbName: string, collectionName: string): Promise<LoadState> {
    const data = await this.rest<{ loadState: LoadState }>('collections/get_load_state', { dbName, collectionName });
    return data.loadState;
  }

  /** Starts loading the collection into query nodes. */
  async load(dbName: string, collectionName: string): Promise<void> {
    await this.rest('collections/load', { dbName, collectionName });
  }

  /**
   * Releases the collection from the query nodes: querycoord drops its load info from etcd, so a
   * restart does not load it again. Releasing one that is not loaded succeeds.
   */
  async release(dbName: string, collectionName: string): Promise<void> {
    await this.rest('collections/release', { dbName, collectionName });
  }

  /**
   * Live rows (inserted, not deleted) by `count(*)`; the collection must be loaded. `strong`
   * counts every row written before the request (consistency level Strong), where the
   * collection's own level (Bounded by default) may leave out the last seconds' writes: a count
   * that bounds what a snapshot holds needs them. The level is QueryReqV2's `consistencyLevel`
   * (internal/distributed/proxy/httpserver/request_v2.go); a Milvus whose REST v2 lacks the field
   * ignores it, as Go's JSON decoding drops unknown fields.
   */
  async countRows(dbName: string, collectionName: string, options: { strong?: boolean } = {}): Promise<number> {
    const rows = await this.rest<{ 'count(*)': number | string }[]>('entities/query', {
      dbName,
      collectionName,
      filter: '',
      outputFields: ['count(*)'],
      ...(options.strong ? { consistencyLevel: 'Strong' } : {}),
    });
    return Number(rows[0]?.['count(*)'] ?? 0);
  }

  /**
   * The collection's (first) dense float-vector field with its dimension and index metric, from
   * `collections/describe`. Throws {@link MilvusSchemaError} when there is none, and
   * {@link MilvusApiError} when Milvus refuses (100: collection not found).
   */
  async describeVectorField(dbName: string, collectionName: string): Promise<VectorField> {
    const data = await this.rest<DescribedCollection>('collections/describe', { dbName, collectionName });
    const field = (data.fields ?? []).find((f) => f.type === 'FloatVector');
    const dim = Number(field?.params?.find((p) => p.key === 'dim')?.value);
    if (!field || !Number.isInteger(dim) || dim <= 0) {
      throw new MilvusSchemaError(`collection ${dbName}.${collectionName} has no FloatVector field with a dimension; a sample search needs one`);
    }
    const metricType = data.indexes?.find((i) => i.fieldName === field.name)?.metricType;
    return { field: field.name, dim, ...(metricType ? { metricType } : {}) };
  }

  /**
   * One vector search (`entities/search`) returning up to `limit` hits, best first as the
   * field's metric ranks them. The collection must be loaded (else {@link MilvusApiError} code
   * 101); a vector of the wrong dimension is refused with code 1801.
   */
  async search(
    dbName: string,
    collectionName: string,
    request: { vector: readonly number[]; limit: number; annsField?: string },
  ): Promise<SearchHit[]> {
    const hits = await this.rest<{ id: string | number; distance: number }[]>('entities/search', {
      dbName,
      collectionName,
      data: [request.vector],
      limit: request.limit,
      ...(request.annsField ? { annsField: request.annsField } : {}),
      outputFields: [],
    });
    return (hits ?? []).map((h) => ({ id: h.id, distance: Number(h.distance) }));
  }

  /**
   * Pauses datacoord garbage collection for `seconds` and returns the ticket that resumes it
   * (`undefined` on versions without tickets, where one global pause exists). Newer Milvus
   * answers `{"msg":"OK","data":{"ticket":"…"}}`; a top-level `ticket` is accepted too.
   * Throws {@link MilvusManagementError} when Milvus refuses.
   */
  async pauseGc(seconds: number): Promise<{ ticket?: string }> {
    // A GET, but each pause is another ticket: not sent twice.
    const body = await this.management('/management/datacoord/garbage_collection/pause', { pause_seconds: seconds }, 'GC pause', { idempotent: false });
    const ticket = body.data?.ticket ?? body.ticket;
    return typeof ticket === 'string' && ticket !== '' ? { ticket } : {};
  }

  /**
   * Resumes garbage collection paused with `ticket`. Without the ticket a newer Milvus answers
   * OK and changes nothing, so callers must pass the one `pauseGc` returned.
   */
  async resumeGc(ticket: string | undefined): Promise<void> {
    await this.management('/management/datacoord/garbage_collection/resume', ticket === undefined ? {} : { ticket }, 'GC resume');
  }

  /** True when the instance's `/healthz` answers OK. */
  async healthy(): Promise<boolean> {
    try {
      const res = await this.transport.call({ port: 'management', method: 'GET', path: '/healthz', timeoutMs: 10_000 });
      return res.status === 200 && res.body.trim() === 'OK';
    } catch (err) {
      // Not "not healthy yet": credentials that cannot be used will not start working.
      if ((err as Error).name === 'MilvusCredentials') throw err;
      return false;
    }
  }

  private async management(
    path: string,
    query: Record<string, string | number>,
    what: string,
    options: { idempotent?: boolean } = {},
  ): Promise<{ msg?: string; ticket?: unknown; data?: { ticket?: unknown } }> {
    let res;
    try {
      res = await this.send({ port: 'management', method: 'GET', path, query, ...options }, what);
    } catch (err) {
      if (err instanceof KubernetesRequestError) throw new MilvusManagementError(what, err.message);
      throw err;
    }
    let body: { msg?: string; ticket?: unknown; data?: { ticket?: unknown } };
    try {
      body = JSON.parse(res.body) as typeof body;
    } catch {
      throw new MilvusManagementError(what, `answered ${res.body.slice(0, 200)}`);
    }
    if (body.msg !== undefined && body.msg !== 'OK') throw new MilvusManagementError(what, body.msg);
    return body;
  }

  /**
   * A JSON call on the management port's `/api/v1` (the proxy's HTTP handlers): int64 numbers
   * come back as bigints, and a status other than success is an error naming the operation.
   */
  private async managementJson(method: 'GET' | 'POST', path: string, rawBody: string, what: string, options: { idempotent?: boolean } = {}): Promise<Record<string, unknown>> {
    let res;
    try {
      res = await this.send({ port: 'management', method, path, body: rawBody, ...options }, what);
    } catch (err) {
      if (err instanceof KubernetesRequestError) throw new MilvusManagementError(what, err.message);
      throw err;
    }
    let body: Record<string, unknown>;
    try {
      body = parseLossless(res.body, null, parseNumberAndBigInt) as Record<string, unknown>;
    } catch {
      throw new MilvusManagementError(what, `answered ${res.body.slice(0, 200)}`);
    }
    const status = body.status as { error_code?: unknown; code?: unknown; reason?: unknown } | undefined;
    const failed = (status?.error_code !== undefined && status.error_code !== 0 && status.error_code !== 'Success') || (status?.code !== undefined && Number(status.code) !== 0);
    if (failed) {
      const code = Number(status?.code);
      throw new MilvusManagementError(what, String(status?.reason ?? JSON.stringify(status)), Number.isInteger(code) && code !== 0 ? code : undefined);
    }
    return body;
  }

  /**
   * One management call. The service proxy rejects a non-2xx answer itself; through the relay a
   * 401/403 of Milvus (the `/api/v1` handlers that want credentials) comes back as an answer.
   */
  private async send(call: MilvusCall, what: string): Promise<MilvusAnswer> {
    const res = await this.transport.call(call);
    if (res.status >= 400) throw new MilvusManagementError(what, `answered HTTP ${res.status}: ${res.body.slice(0, 200)}`);
    return res;
  }

  /**
   * The collection's id (`collections/describe`), as decimal digits: an int64 beyond JavaScript's
   * safe integers, which REST v2 writes as a JSON number, so it is parsed without rounding. A
   * collection dropped and created again under its name has a new id. Undefined when the answer
   * holds none (describe has answered `collectionID` since milvus-io/milvus#31269, before 2.4.0).
   */
  async collectionId(dbName: string, collectionName: string): Promise<string | undefined> {
    const data = await this.rest<{ collectionID?: unknown }>('collections/describe', { dbName, collectionName }, { lossless: true });
    const id = data?.collectionID;
    return (typeof id === 'bigint' || typeof id === 'number' || typeof id === 'string') && /^\d+$/.test(String(id)) ? String(id) : undefined;
  }

  private async rest<T>(operation: string, body: Record<string, unknown>, options: { lossless?: boolean } = {}): Promise<T> {
    const res = await this.transport.call({ port: 'rest', method: 'POST', path: `/v2/vectordb/${operation}`, body: JSON.stringify(body), idempotent: IDEMPOTENT_OPERATIONS.has(operation) });
    if (res.status >= 400) throw new MilvusApiError(operation, res.status, `HTTP ${res.status}: ${res.body.slice(0, 200)}`, { httpStatus: true });
    // Lossless: numbers beyond the safe integers come back as bigints, the others as numbers.
    const parsed = (options.lossless ? parseLossless(res.body, null, parseNumberAndBigInt) : JSON.parse(res.body)) as { code: number | bigint; message?: string; data?: T };
    if (Number(parsed.code) !== 0) throw new MilvusApiError(operation, Number(parsed.code), parsed.message ?? 'no message');
    return parsed.data as T;
  }
}

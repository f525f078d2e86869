/**
 * The Milvus behind the local cluster's service proxy: REST v2 on port 19530 and the
 * management endpoints on port 9091, answering with the shapes, status codes and error codes
 * of Milvus 2.4/2.5. Collections and row counts are read from the volumes on every request;
 * only what a running Milvus keeps in memory (GC pause leases, flushes in progress, loads in
 * progress) lives in the simulator object.
 *
 * Flush, and how a client confirms it, as Milvus 2.4 to 2.6 do. A flush seals the collection's
 * growing segments and answers at once; it completes `flushDelayMs` later, on its own (the
 * datanodes sync in the background): the first request served after that moment writes the
 * segments' binlogs to MinIO and marks them Flushed in etcd, whatever that request is. Two ways
 * in: `POST /v2/vectordb/collections/flush` (REST v2, 2.5.4+), which answers
 * `{"code":0,"data":{}}` and says nothing else; and the proxy's HTTP API on the management port,
 * `POST :9091/api/v1/persist` (every line), which answers the Flush response as JSON — the
 * sealed segment ids and the flush timestamp, int64 numbers — and
 * `GET :9091/api/v1/persist/state` with those in a JSON body, which answers `"flushed": true`
 * once every one of the segments is flushed (the field is omitted while false).
 * `collections/get_stats` reports what datacoord's statistics do: the rows in the insert
 * binlogs of flushed segments, deleted rows included until compaction; `entities/query` with
 * `count(*)` counts every live row, growing ones included, deletions applied. The two differ on
 * any collection with deletes, as in Milvus.
 *
 * GC pause. `GET :9091/management/datacoord/garbage_collection/pause?pause_seconds=N` takes a
 * lease and answers `{"msg":"OK","data":{"ticket":"…"}}` (the shape Milvus Backup reads);
 * GC stays paused while any lease is unexpired. `…/resume?ticket=T` releases that lease; an
 * unknown or missing ticket changes nothing and still answers `{"msg":"OK"}`, as the real
 * one does, which is why a client must keep its ticket. With the `gcPauseWithoutTicket`
 * fault it behaves like older Milvus: no ticket, one global pause, any resume ends it.
 *
 * Search. `POST /v2/vectordb/entities/search` takes Milvus's `SearchReqV2` body and answers
 * `{"code":0,"cost":0,"data":[{"distance":…,"id":"…"}]}` with real primary keys of the rows on
 * the volumes, ranked by the index metric (see search.ts for how rows and vectors are found).
 */
import { randomUUID } from 'node:crypto';
import { EtcdDataMissingError } from './etcd-store.js';
import { liveKeys, nearest, type MetricType } from './search.js';
import { completeFlush, readMilvusState, type CollectionState, type MilvusState } from './state.js';
import { hybridTimestamp } from './meta.js';
import { parse as parseLossless } from 'lossless-json';
import type {
  GcState,
  MilvusCall,
  MilvusFaults,
  MilvusSimulatorOptions,
  MilvusVolumes,
  ProxyRequest,
  ProxyResponse,
} from './types.js';
import { deadlineAfter } from '../../core/deadline.js';

export const REST_PORT = 19530;
export const MANAGEMENT_PORT = 9091;

/** Milvus error codes (`pkg/util/merr`) the simulator answers with. */
export const MilvusErrorCode = {
  CollectionNotFound: 100,
  CollectionNotLoaded: 101,
  DatabaseNotFound: 800,
  NeedAuthenticate: 1800,
  IncorrectParameterFormat: 1801,
  MissingRequiredParameters: 1802,
  ParameterInvalid: 1100,
} as const;

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

/** A REST answer with top-level fields besides `code` and `data` (search adds `cost`). */
class RestAnswer {
  constructor(
    readonly data: unknown,
    readonly extra: Record<string, unknown>,
  ) {}
}

interface RestContext {
  volumes: MilvusVolumes;
  state: MilvusState;
  body: Record<string, unknown>;
  dbName: string;
  detail: Record<string, unknown>;
}

function json(status: number, value: unknown): ProxyResponse {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(value) };
}

function text(status: number, body: string): ProxyResponse {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body };
}

const notFound = (): ProxyResponse => text(404, '404 page not found');

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
  private readonly flushes = new Map<string, { dueAt: number }>();
  /** Loads requested through the API, by collection id: `true` once complete. */
  private readonly loads = new Map<string, boolean>();
  /** Unexpired GC pause leases: ticket → expiry (epoch ms). */
  private readonly gcLeases = new Map<string, number>();
  /** The single pause of the ticketless (old) management API: expiry (epoch ms). */
  private legacyGcPauseUntil: number | undefined;

  constructor(options: MilvusSimulatorOptions) {
    this.options = options;
    this.now = options.now ?? (() => new Date());
    this.flushDelayMs = Math.max(0, options.flushDelayMs ?? 0);
  }

  /** Every call served, in order. */
  get calls(): readonly MilvusCall[] {
    return this.recorded;
  }

  /** Whether datacoord GC is paused now, until when, and by which tickets. */
  gcState(): GcState {
    const now = this.now().getTime();
    for (const [ticket, until] of this.gcLeases) if (until <= now) this.gcLeases.delete(ticket);
    if (this.legacyGcPauseUntil !== undefined && this.legacyGcPauseUntil <= now) this.legacyGcPauseUntil = undefined;
    const untils = [...this.gcLeases.values(), ...(this.legacyGcPauseUntil ? [this.legacyGcPauseUntil] : [])];
    if (untils.length === 0) return { paused: false, tickets: [] };
    return { paused: true, until: new Date(Math.max(...untils)).toISOString(), tickets: [...this.gcLeases.keys()] };
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
      detail.outcome = 'instance down';
      return text(503, 'Milvus is not running: its pods are gone or not ready');
    }
    let state: MilvusState;
    try {
      state = await readMilvusState(volumes);
    } catch (err) {
      if (!(err instanceof EtcdDataMissingError)) throw err;
      // Without its metadata Milvus crash-loops; the Service has no ready endpoints.
      detail.outcome = 'etcd data missing';
      return text(503, `Milvus cannot start: ${err.message}`);
    }
    state = await this.completeDueFlushes(volumes, state, detail);
    const path = request.path.split('?')[0]!;
    if (request.port === MANAGEMENT_PORT) return this.management(request, path, state, detail);
    if (request.port === REST_PORT) return this.rest(request, path, volumes, state, detail);
    detail.outcome = 'port not served';
    return text(503, `dial tcp :${request.port}: connect: connection refused`);
  }

  /** Accepts a flush of collection `c`: it completes `flushDelayMs` from now (or never, under the fault). */
  private acceptFlush(c: CollectionState): void {
    if (!this.flushes.has(c.id)) this.flushes.set(c.id, { dueAt: this.now().getTime() + this.flushDelayMs });
  }

  /** Completes every flush whose time has come (see the module documentation); the state after. */
  private async completeDueFlushes(volumes: MilvusVolumes, state: MilvusState, detail: Record<string, unknown>): Promise<MilvusState> {
    if (this.faults.flushNeverCompletes) return state;
    const now = this.now().getTime();
    const due = [...this.flushes].filter(([, f]) => f.dueAt <= now).map(([id]) => id);
    if (due.length === 0) return state;
    // Forget them before writing, so a concurrent request cannot write them twice.
    for (const id of due) this.flushes.delete(id);
    const flushed: string[] = [];
    for (const id of due) flushed.push(...(await completeFlush(volumes, id, this.now())));
    detail.flushedSegments = flushed;
    return readMilvusState(volumes);
  }

  // ---- port 9091 ---------------------------------------------------------------------

  private management(request: ProxyRequest, path: string, state: MilvusState, detail: Record<string, unknown>): ProxyResponse {
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
      if (!c) {
        detail.outcome = 'collection not found';
        return text(200, JSON.stringify({ status: { error_code: 4, reason: `collection not found[database=${dbName}][collection=${name}]`, code: MilvusErrorCode.CollectionNotFound } }));
      }
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
    const c = state.collections.find((x) => x.database === (body.db_name || 'default') && x.name === body.collection_name);
    // A segment sealed by the flush is done once it is no longer growing (flushed, or compacted away).
    const flushed = c !== undefined && ids.every((id) => !c.growingSegmentIds.includes(id));
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
    if (this.faults.gcPauseWithoutTicket) {
      this.legacyGcPauseUntil = until;
      detail.until = new Date(until).toISOString();
      return json(200, { msg: 'OK' });
    }
    const collectionId = Number(request.query.get('collection_id') ?? 0);
    const ticket = Buffer.from(
      JSON.stringify({ token: randomUUID(), collection_id: Number.isFinite(collectionId) ? collectionId : 0 }),
    ).toString('base64');
    this.gcLeases.set(ticket, until);
    detail.ticket = ticket;
    detail.until = new Date(until).toISOString();
    return json(200, { msg: 'OK', data: { ticket } });
  }

  private gcResume(request: ProxyRequest, detail: Record<string, unknown>): ProxyResponse {
    const ticket = request.query.get('ticket') ?? undefined;
    detail.ticket = ticket;
    this.gcState(); // drop expired leases first
    if (this.faults.gcPauseWithoutTicket) {
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

  // ---- port 19530 --------------------------------------------------------------------

  private async rest(
    request: ProxyRequest,
    path: string,
    volumes: MilvusVolumes,
    state: MilvusState,
    detail: Record<string, unknown>,
  ): Promise<ProxyResponse> {
    if (!path.startsWith(REST_PREFIX) || request.method.toUpperCase() !== 'POST') {
      detail.outcome = 'no such endpoint';
      return notFound();
    }
    const action = path.slice(REST_PREFIX.length).replace(/\/+$/, '');
    const handler = this.routes[action];
    if (!handler) {
      detail.outcome = 'no such endpoint';
      return notFound();
    }
    if (this.faults.unhealthy) {
      detail.outcome = 'unhealthy';
      return text(503, 'Milvus proxy is not ready');
    }
    if (this.options.auth && !this.authorized(request)) {
      detail.outcome = 'unauthenticated';
      return json(401, { code: MilvusErrorCode.NeedAuthenticate, message: "user hasn't authenticated" });
    }
    try {
      const body = this.parseBody(request.body);
      const dbName = stringField(body, 'dbName') ?? headerValue(request, 'db-name') ?? 'default';
      detail.database = dbName;
      if (!state.databases.some((d) => d.name === dbName)) {
        throw new RestError(MilvusErrorCode.DatabaseNotFound, `database not found[database=${dbName}]`);
      }
      const data = await handler.call(this, { volumes, state, body, dbName, detail });
      detail.code = 0;
      if (data instanceof RestAnswer) return json(200, { code: 0, ...data.extra, data: data.data });
      return json(200, { code: 0, data });
    } catch (err) {
      if (!(err instanceof RestError)) throw err;
      detail.code = err.code;
      detail.message = err.message;
      // Milvus reports API errors in the body with HTTP 200.
      return json(200, { code: err.code, message: err.message });
    }
  }

  private authorized(request: ProxyRequest): boolean {
    const header = headerValue(request, 'authorization');
    const expected = `${this.options.auth!.username}:${this.options.auth!.password}`;
    return header !== undefined && /^Bearer\s+/i.test(header) && header.replace(/^Bearer\s+/i, '') === expected;
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
      parsed = JSON.parse(raw);
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

  private isLoaded(c: CollectionState): boolean {
    return c.loadRecorded || this.loads.get(c.id) === true;
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
        collectionID: Number(c.id),
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
        load: this.isLoaded(c) ? 'LoadStateLoaded' : this.loads.has(c.id) ? 'LoadStateLoading' : 'LoadStateNotLoad',
        shardsNum: c.info.shards_num,
        partitionsNum: c.info.partitionIDs.length,
        consistencyLevel: c.info.consistency_level,
        enableDynamicField: c.info.schema.enable_dynamic_field,
        properties: c.info.properties,
      };
    },

    async 'collections/flush'(ctx) {
      const c = this.collection(ctx);
      this.acceptFlush(c);
      ctx.detail.sealedSegments = c.growingSegmentIds;
      ctx.detail.flush = 'accepted';
      return {};
    },

    async 'collections/get_stats'(ctx) {
      const c = this.collection(ctx);
      ctx.detail.flush = this.flushes.has(c.id) ? 'in progress' : 'none pending';
      ctx.detail.rowCount = c.statsRows;
      return { rowCount: c.statsRows };
    },

    async 'collections/load'(ctx) {
      const c = this.collection(ctx);
      if (!this.isLoaded(c)) this.loads.set(c.id, false);
      return {};
    },

    async 'collections/get_load_state'(ctx) {
      const c = this.collection(ctx);
      if (this.isLoaded(c)) return { loadState: 'LoadStateLoaded', loadProgress: 100 };
      if (this.loads.has(c.id)) {
        // A load takes one poll to finish: the first answer says Loading, the next Loaded.
        this.loads.set(c.id, true);
        return { loadState: 'LoadStateLoading', loadProgress: 50 };
      }
      return { loadState: 'LoadStateNotLoad' };
    },

    async 'entities/query'(ctx) {
      const c = this.collection(ctx);
      const outputs = ctx.body.outputFields;
      const isCount =
        Array.isArray(outputs) && outputs.length === 1 && String(outputs[0]).trim().toLowerCase() === 'count(*)';
      if (!isCount) {
        throw new RestError(
          MilvusErrorCode.ParameterInvalid,
          'invalid parameter[expected=outputFields ["count(*)"]][actual=' +
            JSON.stringify(outputs ?? null) +
            ']: the local Milvus simulator answers count(*) queries only',
        );
      }
      if (!this.isLoaded(c)) {
        throw new RestError(MilvusErrorCode.CollectionNotLoaded, `collection not loaded[collection=${c.name}]`);
      }
      const count = c.persistedRows + c.growingRows;
      ctx.detail.count = count;
      return [{ 'count(*)': count }];
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
      if (!this.isLoaded(c)) {
        throw new RestError(MilvusErrorCode.CollectionNotLoaded, `collection not loaded[collection=${c.name}]`);
      }
      const metric = (c.index?.fieldName === field ? c.index.metricType : 'COSINE') as MetricType;
      const keys = await liveKeys(ctx.volumes, c);
      // Several query vectors give their hits one after another in one flat list, as the REST API does.
      const hits = vectors.flatMap((vector) =>
        nearest(c.id, keys, vector, limit, metric).map((hit) => ({
          distance: hit.distance,
          // int64 keys are strings unless the client sends Accept-Type-Allow-Int64 (not supported here).
          id: hit.pk.toString(),
          ...(withVector ? { [field]: Array.from(hit.vector) } : {}),
        })),
      );
      Object.assign(ctx.detail, { annsField: field, dim, metric, limit, nq: vectors.length, searchableRows: keys.length, hits: hits.length });
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

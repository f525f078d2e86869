/**
 * A Milvus client that goes through the Kubernetes API service proxy
 * (`/api/v1/namespaces/NS/services/SVC:PORT/proxy/...`), so Lambdas reach Milvus with the same
 * credentials as every other cluster call and need no VPC route to the pods. REST v2 (port
 * 19530, all POST with JSON) answers HTTP 200 with `{"code": 0, "data": ...}` or a non-zero
 * `code` and a `message`; the management endpoints live on port 9091.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { KubernetesRequestError } from '../kube/errors.js';
import { kubeRequest, serviceProxyPath } from '../kube/request.js';

/** Where a Milvus instance's Service is and how to authenticate to it. */
export interface MilvusEndpoint {
  namespace: string;
  service: string;
  restPort: number;
  managementPort: number;
}

/** Milvus answered with a non-zero REST v2 code (for example 100: collection not found). */
export class MilvusApiError extends Error {
  constructor(
    readonly operation: string,
    readonly code: number,
    message: string,
  ) {
    super(`Milvus ${operation} failed with code ${code}: ${message}`);
    this.name = 'MilvusApiError';
  }
}

/** A management endpoint (port 9091) refused the request. */
export class MilvusManagementError extends Error {
  constructor(
    readonly operation: string,
    message: string,
  ) {
    super(`Milvus ${operation} failed: ${message}`);
    this.name = 'MilvusManagementError';
  }
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
  constructor(
    private readonly kc: KubeConfig,
    private readonly endpoint: MilvusEndpoint,
  ) {}

  /** Names of every database. */
  async listDatabases(): Promise<string[]> {
    return this.rest<string[]>('databases/list', {});
  }

  /** Names of the collections in `dbName`. */
  async listCollections(dbName: string): Promise<string[]> {
    return this.rest<string[]>('collections/list', { dbName });
  }

  /** Asks Milvus to seal and persist the collection's growing segments. Returns before completion. */
  async flush(dbName: string, collectionName: string): Promise<void> {
    await this.rest('collections/flush', { dbName, collectionName });
  }

  /** Rows persisted in the collection's segments, as datacoord reports them. */
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

  /** Live rows (inserted, not deleted) by `count(*)`; the collection must be loaded. */
  async countRows(dbName: string, collectionName: string): Promise<number> {
    const rows = await this.rest<{ 'count(*)': number | string }[]>('entities/query', {
      dbName,
      collectionName,
      filter: '',
      outputFields: ['count(*)'],
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
    const body = await this.management('/management/datacoord/garbage_collection/pause', { pause_seconds: seconds }, 'GC pause');
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
      const res = await kubeRequest(this.kc, { method: 'GET', path: this.managementPath('/healthz'), timeoutMs: 10_000 });
      return res.body.trim() === 'OK';
    } catch {
      return false;
    }
  }

  private async management(path: string, query: Record<string, string | number>, what: string): Promise<{ msg?: string; ticket?: unknown; data?: { ticket?: unknown } }> {
    let res;
    try {
      res = await kubeRequest(this.kc, { method: 'GET', path: this.managementPath(path), query });
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

  private managementPath(path: string): string {
    return serviceProxyPath(this.endpoint.namespace, this.endpoint.service, this.endpoint.managementPort, path);
  }

  private async rest<T>(operation: string, body: Record<string, unknown>): Promise<T> {
    const path = serviceProxyPath(this.endpoint.namespace, this.endpoint.service, this.endpoint.restPort, `/v2/vectordb/${operation}`);
    const res = await kubeRequest(this.kc, { method: 'POST', path, body });
    const parsed = JSON.parse(res.body) as { code: number; message?: string; data?: T };
    if (parsed.code !== 0) throw new MilvusApiError(operation, parsed.code, parsed.message ?? 'no message');
    return parsed.data as T;
  }
}

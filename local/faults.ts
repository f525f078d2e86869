/**
 * Fault injection for the local cluster. Tests switch faults on in-process
 * (`cluster.faults.failRequests(...)`) or, from another process, over HTTP on the admin path
 * `POST /_local/faults` with one of the JSON bodies below (bearer token required):
 *
 * - `{"request": {"path": "^/apis/batch/", "method": "POST", "status": 429, "times": 2}}` —
 *   the next 2 matching requests get a 429 Status (with `Retry-After`); `status` 500 gives an
 *   InternalError Status; `{"hang": true}` holds the request open until the client gives up;
 *   `{"delayMs": 3000}` answers normally after a delay, unless the cluster closes first, which
 *   drops the request (exec upgrades honour `status` and `hang` only). `path` is a regular expression
 *   matched against the path and query; `times` defaults to 1, `null` means every time.
 * - `{"snapshot": {"namespace": "vector-db", "pvc": "data-production-milvus-etcd-0", "message": "..."}}` —
 *   VolumeSnapshots of that PVC fail (`status.error`, never readyToUse).
 * - `{"job": {"namespace": "vector-db", "name": "export-"}}` — Jobs whose name starts with
 *   `name` fail (every pod attempt exits 1 without running), honouring backoffLimit.
 *
 * `GET /_local/faults` lists the active faults, `DELETE /_local/faults` clears them. Related
 * admin endpoints: `POST /_local/milvus/<ns>/<name>/faults` with the simulated Milvus's fault
 * switches (`{"flushNeverCompletes": true}`: no flush ever completes, so persist/state never
 * says flushed and a 3.0 REST flush times out; `{"gcPauseWithoutTicket": true}`: the pre-2.6.8
 * GC pause on any version; `{"unhealthy": true}`; `DELETE` clears them; which Milvus version
 * the instance shows comes from its CR, see local/milvus/README.md), `GET /_local/timeline` and
 * `POST /_local/settle`. `localAdmin(kubeconfigPath)` (admin.ts) wraps them all.
 */

/** A request fault: what to match and how to fail. */
export interface RequestFault {
  /** Regular expression tested against `path?query`. */
  path: string;
  /** HTTP method to match; any when omitted. */
  method?: string;
  /** Answer with this status: 429 (TooManyRequests) or 500/503 (InternalError/ServiceUnavailable). */
  status?: 429 | 500 | 503;
  /** Wait this long, then answer normally (or with `status` when set). */
  delayMs?: number;
  /** Never answer; the client must time out. */
  hang?: boolean;
  /** How many matching requests fail; `null` = all of them. Default 1. */
  times?: number | null;
}

/** Snapshots of one PVC fail. */
export interface SnapshotFault {
  namespace: string;
  pvc: string;
  message?: string;
}

/** Jobs with a name prefix fail. */
export interface JobFault {
  namespace: string;
  /** Name prefix of the Jobs to fail. */
  name: string;
  message?: string;
}

interface ActiveRequestFault extends RequestFault {
  id: number;
  matcher: RegExp;
  hits: number;
}

/** The faults in force, shared by the HTTP layer and the controllers. */
export class ClusterFaults {
  private readonly requests: ActiveRequestFault[] = [];
  private readonly snapshots: SnapshotFault[] = [];
  private readonly jobs: JobFault[] = [];
  private nextId = 1;

  /** Makes matching API requests fail (see the module documentation). */
  failRequests(fault: RequestFault): void {
    const matcher = new RegExp(fault.path);
    this.requests.push({ ...fault, times: fault.times === undefined ? 1 : fault.times, id: this.nextId++, matcher, hits: 0 });
  }

  /** Makes VolumeSnapshots of a PVC fail. */
  failSnapshots(fault: SnapshotFault): void {
    this.snapshots.push(fault);
  }

  /** Makes Jobs whose name starts with `fault.name` fail. */
  failJobs(fault: JobFault): void {
    this.jobs.push(fault);
  }

  /** Removes every fault. */
  clear(): void {
    this.requests.length = 0;
    this.snapshots.length = 0;
    this.jobs.length = 0;
  }

  /** The faults in force, as JSON. */
  toJSON(): { requests: (RequestFault & { hits: number })[]; snapshots: SnapshotFault[]; jobs: JobFault[] } {
    return {
      requests: this.requests.map(({ matcher: _m, id: _i, ...rest }) => rest),
      snapshots: [...this.snapshots],
      jobs: [...this.jobs],
    };
  }

  /** The request fault that applies to this request, consuming one of its `times`. */
  takeRequestFault(method: string, pathAndQuery: string): RequestFault | undefined {
    const fault = this.requests.find(
      (f) => (!f.method || f.method.toUpperCase() === method) && f.matcher.test(pathAndQuery) && (f.times === null || f.hits < f.times!),
    );
    if (fault) fault.hits++;
    return fault;
  }

  /** Why a snapshot of this PVC must fail, or undefined. */
  snapshotFailure(namespace: string, pvc: string): string | undefined {
    const fault = this.snapshots.find((f) => f.namespace === namespace && f.pvc === pvc);
    return fault && (fault.message ?? `injected fault: snapshots of PVC ${namespace}/${pvc} fail`);
  }

  /** Why this Job must fail, or undefined. */
  jobFailure(namespace: string, job: string): string | undefined {
    const fault = this.jobs.find((f) => f.namespace === namespace && job.startsWith(f.name));
    return fault && (fault.message ?? `injected fault: Job ${namespace}/${job} fails`);
  }

  /** Applies a body of `POST /_local/faults`; throws on an unknown shape. */
  apply(body: unknown): void {
    const b = (body ?? {}) as { request?: RequestFault; snapshot?: SnapshotFault; job?: JobFault };
    if (b.request && typeof b.request.path === 'string') this.failRequests(b.request);
    else if (b.snapshot && b.snapshot.namespace && b.snapshot.pvc) this.failSnapshots(b.snapshot);
    else if (b.job && b.job.namespace && typeof b.job.name === 'string') this.failJobs(b.job);
    else throw new Error('expected {"request": {path, ...}}, {"snapshot": {namespace, pvc}} or {"job": {namespace, name}}');
  }
}

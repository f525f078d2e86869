/**
 * Quiesce and unquiesce Milvus (backup steps 3 and 6): flush every collection of every
 * database and confirm each flush, pause datacoord garbage collection keeping the ticket, and
 * resume it with that ticket afterwards. Confirmation is polled by the workflow (a Wait/Choice
 * loop calls `checkFlush`), never by a sleeping Lambda.
 *
 * How a flush is confirmed: `get_stats` reports the rows persisted in flushed segments and
 * `count(*)` counts every live row, growing ones included; the flush is complete when the two
 * agree. `count(*)` needs the collection loaded; for a collection that is not loaded (nothing
 * can be writing to it through a query path, and loading it would take query-node memory the
 * operator did not plan for) the persisted count must stay the same across two polls after the
 * flush. Each collection's row count at confirmation is what the backup records.
 */
import type { ResolvedPlan } from '../config/resolve.js';
import type { RowCount } from '../catalog/record.js';
import type { KubeClients } from '../kube/connect.js';
import { MilvusApiError, MilvusClient } from '../milvus/client.js';
import type { VaultStore } from '../vault/store.js';
import type { FlushProgress, GcPause } from '../workflow/backup-state.js';
import type { BackupTimings } from './context.js';
import { milvusStateKey } from '../vault/layout.js';
import { deadlineAfter } from '../deadline.js';

/** Milvus REST v2 code for a collection that is not loaded. */
const COLLECTION_NOT_LOADED = 101;

/** Some flushes were not confirmed before the deadline. Not retried: the workflow fails. */
export class FlushNotConfirmedError extends Error {
  constructor(readonly pending: readonly string[], timeoutSeconds: number) {
    super(
      `the flush of ${pending.length} collection(s) was not confirmed within ${timeoutSeconds} s: ${pending.slice(0, 10).join(', ')}${pending.length > 10 ? ', ...' : ''}. ` +
        'Persisted rows (get_stats) never matched count(*); check the datanodes and the message queue (kubectl logs of the datanode pods), then run the backup again',
    );
    this.name = 'FlushNotConfirmed';
  }
}

interface CollectionFlush {
  database: string;
  collection: string;
  confirmed: boolean;
  confirmedBy?: RowCount['confirmedBy'];
  rows?: number;
  /** The persisted count at the previous poll (for collections that are not loaded). */
  lastPersisted?: number;
  polls: number;
}

interface MilvusState {
  format: 'milvus-guard/milvus-state-v1';
  backupId: string;
  flushStartedAt: string;
  timeoutSeconds: number;
  collections: CollectionFlush[];
}

/** A client for the plan's Milvus through the cluster's service proxy. */
export function milvusFor(kube: KubeClients, resolved: ResolvedPlan): MilvusClient {
  const { plan } = resolved;
  return new MilvusClient(kube.kc, { namespace: plan.namespace, service: plan.milvus.service, restPort: plan.milvus.restPort, managementPort: plan.milvus.managementPort });
}

async function readState(vault: VaultStore, key: string): Promise<MilvusState> {
  return JSON.parse((await vault.get(key)).toString('utf8')) as MilvusState;
}

async function writeState(vault: VaultStore, key: string, state: MilvusState): Promise<void> {
  await vault.put(key, Buffer.from(JSON.stringify(state, null, 2)));
}

/**
 * Lists every collection of every database, asks Milvus to flush each one, and records the
 * list in the vault (`milvus.json`). Returns the progress the workflow polls with
 * {@link checkFlush}, with the confirmation deadline.
 */
export async function startFlush(
  ctx: { readonly vault: VaultStore; readonly timings: Pick<BackupTimings, 'flushTimeoutSeconds'> },
  milvus: MilvusClient,
  backupId: string,
  now: Date,
): Promise<FlushProgress> {
  const collections: CollectionFlush[] = [];
  for (const database of await milvus.listDatabases()) {
    for (const collection of await milvus.listCollections(database)) {
      await milvus.flush(database, collection);
      collections.push({ database, collection, confirmed: false, polls: 0 });
    }
  }
  const key = milvusStateKey(backupId);
  await writeState(ctx.vault, key, { format: 'milvus-guard/milvus-state-v1', backupId, flushStartedAt: now.toISOString(), timeoutSeconds: ctx.timings.flushTimeoutSeconds, collections });
  return {
    milvusKey: key,
    collections: collections.length,
    pending: collections.length,
    confirmed: collections.length === 0,
    deadline: deadlineAfter(now, ctx.timings.flushTimeoutSeconds).toISOString(),
  };
}

/**
 * Polls every unconfirmed flush once (see the module documentation for how) and records the
 * outcome in the vault. When every flush is confirmed, returns the row counts too. Throws
 * {@link FlushNotConfirmedError} once `now` is past the deadline with flushes still pending.
 */
export async function checkFlush(
  ctx: { readonly vault: VaultStore },
  milvus: MilvusClient,
  progress: FlushProgress,
  now: Date,
): Promise<{ progress: FlushProgress; rowCounts?: RowCount[] }> {
  const state = await readState(ctx.vault, progress.milvusKey);
  for (const c of state.collections.filter((x) => !x.confirmed)) {
    c.polls += 1;
    const persisted = await milvus.persistedRowCount(c.database, c.collection);
    let live: number | undefined;
    try {
      live = await milvus.countRows(c.database, c.collection);
    } catch (err) {
      if (!(err instanceof MilvusApiError && err.code === COLLECTION_NOT_LOADED)) throw err;
    }
    if (live !== undefined) {
      if (persisted === live) Object.assign(c, { confirmed: true, confirmedBy: 'count', rows: live });
    } else if (c.lastPersisted === persisted) {
      Object.assign(c, { confirmed: true, confirmedBy: 'stable-stats', rows: persisted });
    }
    c.lastPersisted = persisted;
  }
  await writeState(ctx.vault, progress.milvusKey, state);
  const pending = state.collections.filter((c) => !c.confirmed);
  if (pending.length > 0 && now.getTime() > Date.parse(progress.deadline)) {
    throw new FlushNotConfirmedError(pending.map((c) => `${c.database}.${c.collection}`), state.timeoutSeconds);
  }
  const next = { ...progress, pending: pending.length, confirmed: pending.length === 0 };
  if (pending.length > 0) return { progress: next };
  return {
    progress: next,
    rowCounts: state.collections.map((c) => ({ database: c.database, collection: c.collection, rows: c.rows!, confirmedBy: c.confirmedBy! })),
  };
}

/**
 * Pauses datacoord GC for `gcPauseSeconds` (a lease: if unquiesce never runs, GC resumes by
 * itself) and returns the ticket to resume it with.
 */
export async function pauseGc(ctx: { readonly timings: Pick<BackupTimings, 'gcPauseSeconds'> }, milvus: MilvusClient, now: Date): Promise<GcPause> {
  const { ticket } = await milvus.pauseGc(ctx.timings.gcPauseSeconds);
  return { ...(ticket ? { ticket } : {}), pausedUntil: deadlineAfter(now, ctx.timings.gcPauseSeconds).toISOString() };
}

/** Resumes GC with the ticket of the pause; without a pause there is nothing to resume. */
export async function resumeGc(milvus: MilvusClient, pause: GcPause | undefined): Promise<boolean> {
  if (!pause) return false;
  await milvus.resumeGc(pause.ticket);
  return true;
}

/**
 * Quiesce and unquiesce Milvus (backup steps 3 and 6): flush every collection of every
 * database and confirm each flush, pause datacoord garbage collection keeping the ticket, and
 * resume it with that ticket afterwards. Confirmation is polled by the workflow (a Wait/Choice
 * loop calls `checkFlush`), never by a sleeping Lambda.
 *
 * The version of the plan's Milvus is detected at run time (core/milvus/version.ts: the Milvus
 * CR, else the proxy/standalone image) and decides the method ({@link quiesceMethod}, one table);
 * `milvus.json` and the PauseGc step detail record which version was found where and the method.
 *
 * How a flush is confirmed, the same on 2.4, 2.5, 2.6 and later: the proxy's Flush and
 * GetFlushState, as JSON on the management port (`POST :9091/api/v1/persist`, then
 * `GET :9091/api/v1/persist/state` with the sealed segments and the flush timestamp it answered,
 * until `flushed`), which is what milvus-backup does over gRPC. REST v2 cannot: 2.4 has no flush
 * there, 2.5 and 2.6 answer before the flush completes and say neither its segments nor its
 * timestamp, and there is no flush-state route (README, "Milvus versions"). Comparing
 * `get_stats` with `count(*)`, as earlier versions of this module did, never confirms a
 * collection with deletes: `get_stats` counts deleted rows until compaction rewrites the segment.
 *
 * The row count recorded per collection once its flush is confirmed: the live `count(*)` when the
 * collection can be queried (`count`); when it is not loaded, is still loading, or its query nodes
 * cannot serve it yet (see {@link countNow}), `get_stats` (loading it would take query-node memory
 * the operator did not plan for, and waiting for a load could block the backup for as long as the
 * load takes), which still counts rows deleted since the last compaction (`stats`: restore
 * validation then compares the restored Milvus's `get_stats` with it, and requires the live
 * count to be no higher).
 *
 * Milvus keeps taking writes during a backup, so one count cannot say what a restore brings back:
 * rows written after the flush (growing segments, the queue's messages) are outside the backup
 * and may be lost on restore, while a segment Milvus seals and flushes by itself before etcd's
 * snapshot, or an in-cluster queue cut after it, brings back rows written after the count; a
 * compaction between the count and the cut changes `get_stats`. So each collection is counted
 * three times, the same way each time: before any flush is asked for (`rowsBeforeFlush`), once
 * the flush is confirmed (`rows`), and once every snapshot is cut ({@link recountRows},
 * `rowsAfterSnapshots`). While nothing writes, the three agree and validation requires exactly
 * that count; otherwise it requires the restored count to lie between the lowest and the highest
 * (README, "Writes during a backup").
 *
 * A collection may be dropped, or dropped and created again under its name, while the backup
 * runs. Each look at a collection reads its id too ({@link lookAt}); one Milvus says no longer
 * exists, or whose name has another id, is recorded dropped and not looked at again: before its
 * flush is confirmed it is left out of the counts, after it its count is kept, marked
 * `droppedDuringBackup` (README, "Collections dropped during a backup").
 */
import type { ResolvedPlan } from '../config/resolve.js';
import type { RowCount } from '../catalog/record.js';
import type { KubeClients } from '../kube/connect.js';
import { idRefused, isCollectionGone, isNotQueryable, MilvusApiError, MilvusClient, MilvusVersionUnsupportedError, type PersistTicket } from '../milvus/client.js';
import type { VaultStore } from '../vault/store.js';
import type { FlushProgress, GcPause } from '../workflow/backup-state.js';
import type { BackupServices, BackupTimings } from './context.js';
import { BACKUP_LABEL } from './names.js';
import { deleteRelays, RelayTransport, type RelaySpec } from '../milvus/relay.js';
import { backupUnsupportedReason, quiesceMethod, type DetectedVersion } from '../milvus/version.js';
import { milvusStateKey } from '../vault/layout.js';
import { deadlineAfter } from '../deadline.js';
import { mapBounded } from '../objectstore/bounded.js';


/** Some flushes were not confirmed before the deadline. Not retried: the workflow fails. */
export class FlushNotConfirmedError extends Error {
  constructor(readonly pending: readonly string[], timeoutSeconds: number) {
    super(
      `the flush of ${pending.length} collection(s) was not confirmed within ${timeoutSeconds} s: ${pending.slice(0, 10).join(', ')}${pending.length > 10 ? ', ...' : ''}. ` +
        'Milvus never reported them flushed (GetFlushState on :9091/api/v1/persist/state); check the datanodes and the message queue (kubectl logs of the datanode pods), then run the backup again',
    );
    this.name = 'FlushNotConfirmed';
  }
}

/** How a collection was counted: `count(*)` of a collection Milvus serves, else `get_stats`. */
type CountMethod = 'count' | 'stats';

/** One count of a collection and how it was taken. */
interface Count {
  rows: number;
  by: CountMethod;
}

interface CollectionFlush {
  database: string;
  collection: string;
  confirmed: boolean;
  confirmedBy?: RowCount['confirmedBy'];
  rows?: number;
  /** Counted before its flush was asked for (absent in states written before it was). */
  before?: Count;
  /** Why it was not counted before its flush (Milvus's answer). */
  beforeProblem?: string;
  /** Counted once every snapshot was cut ({@link recountRows}); absent until then, or when it could not be. */
  after?: Count;
  /** Why it was not counted after the snapshots. */
  afterProblem?: string;
  /** Its id when it was looked at before its flush (absent in older states, or when Milvus refused it). */
  collectionId?: string;
  /** What the flush request answered: the segments it sealed and its timestamp. */
  ticket?: PersistTicket;
  polls: number;
  /**
   * Milvus answered that the collection (or its database) no longer exists ({@link isCollectionGone}):
   * `flush` when that was before its flush was confirmed (it has no count, and the backup records
   * none), `recount` when it was once every snapshot was cut (its count stays; a restore may or may
   * not have it, as the drop came before or after etcd's cut).
   */
  dropped?: 'flush' | 'recount';
  /** What Milvus answered that told it was dropped. */
  droppedBecause?: string;
  /** The id of the collection its name belonged to when it was found dropped, when there was one (created again). */
  recreatedAs?: string;
}

interface MilvusState {
  format: 'milvus-guard/milvus-state-v1';
  backupId: string;
  flushStartedAt: string;
  timeoutSeconds: number;
  /** The Milvus version found at StartFlush, where, and the method it chose (absent in older files). */
  milvus?: { version: string; source: string; flush: string; gcPause: string; summary: string };
  collections: CollectionFlush[];
}

/** The version as recorded: its text, `master…`, or `unknown`. */
function versionText(detected: DetectedVersion): string {
  return detected.version.kind === 'unknown' ? 'unknown' : detected.version.text;
}

/** What reaching a plan's Milvus may take: the relay's image and timings, when the plan names an `authSecret`. */
export type MilvusAccess = Pick<BackupServices, 'dataMover' | 'timings'>;

/**
 * How long a backup's relay may live: from StartFlush to Unquiesce, which the flush deadline and
 * the GC pause (snapshots, hooks and capture) bound, plus a margin. Unquiesce deletes it sooner.
 */
const relayDeadlineSeconds = (t: BackupTimings): number => t.flushTimeoutSeconds + t.gcPauseSeconds + 900;

/**
 * A client for the plan's Milvus: through the cluster's service proxy, or, when the plan names
 * an `authSecret`, through the backup's relay (core/milvus/relay.ts). Close it when done.
 */
function milvusFor(kube: KubeClients, resolved: ResolvedPlan, access: MilvusAccess, backupId: string, guard?: RelaySpec['whileOpen']): MilvusClient {
  const { plan } = resolved;
  const endpoint = { namespace: plan.namespace, service: plan.milvus.service, restPort: plan.milvus.restPort, managementPort: plan.milvus.managementPort };
  const authSecret = plan.milvus.authSecret;
  if (!authSecret) return new MilvusClient(kube.kc, endpoint);
  const relay = new RelayTransport(kube, {
    endpoint,
    authSecret,
    secretField: `plan ${plan.name}, milvus.authSecret`,
    image: access.dataMover.image,
    run: { label: BACKUP_LABEL, id: backupId },
    deadlineSeconds: relayDeadlineSeconds(access.timings),
    callTimeoutSeconds: access.timings.kubeRequestTimeoutSeconds,
    ...(guard ? { whileOpen: guard } : {}),
  });
  return new MilvusClient(kube.kc, endpoint, relay);
}

/**
 * Runs `use` with a client for the plan's Milvus (see {@link milvusFor}) and closes it after.
 * `guard` makes a relay through the backup's cleanup barrier: every step but those of the
 * failure path and the recovery, which remove the relay they make themselves.
 */
export async function withMilvus<T>(
  kube: KubeClients,
  resolved: ResolvedPlan,
  access: MilvusAccess,
  backupId: string,
  use: (milvus: MilvusClient) => Promise<T>,
  guard?: RelaySpec['whileOpen'],
): Promise<T> {
  const milvus = milvusFor(kube, resolved, access, backupId, guard);
  try {
    return await use(milvus);
  } finally {
    await milvus.close();
  }
}

/**
 * Removes the backup's relay (when the plan has one), best effort: a relay left behind ends by
 * its own deadline (`activeDeadlineSeconds`) and the next sweep of the backup's objects removes
 * it, so failing to delete it must not fail a step whose work is done (nor run its hooks again).
 */
export async function removeRelay(kube: KubeClients, resolved: ResolvedPlan, backupId: string): Promise<void> {
  if (!resolved.plan.milvus.authSecret) return;
  await deleteRelays(kube, resolved.plan.namespace, { label: BACKUP_LABEL, id: backupId }).catch(() => undefined);
}

async function readState(vault: VaultStore, key: string): Promise<MilvusState> {
  return JSON.parse((await vault.get(key)).toString('utf8')) as MilvusState;
}

async function writeState(vault: VaultStore, key: string, state: MilvusState): Promise<void> {
  await vault.put(key, Buffer.from(JSON.stringify(state, null, 2)));
}

/**
 * Lists every collection of every database, asks Milvus to flush each one the way its version
 * allows confirming (`detected`, {@link quiesceMethod}; unknown when not given), and records the
 * list, the version and the method in the vault (`milvus.json`). Returns the progress the
 * workflow polls with {@link checkFlush}, with the confirmation deadline.
 */
export async function startFlush(
  ctx: { readonly vault: VaultStore; readonly timings: Pick<BackupTimings, 'flushTimeoutSeconds'> },
  milvus: MilvusClient,
  backupId: string,
  now: Date,
  detected: DetectedVersion = { version: { kind: 'unknown' }, source: 'not detected' },
): Promise<FlushProgress> {
  // Before any call: an old Milvus would fail a call below with a 404 that names no cause.
  const unsupported = backupUnsupportedReason(detected.version);
  if (unsupported) throw new MilvusVersionUnsupportedError(`${unsupported} (the version is from ${detected.source}); nothing was flushed or paused`);
  const method = quiesceMethod(detected.version);
  // Every supported line confirms through persist/state (see quiesceMethod); a new method
  // added to the table must be handled here before it can be chosen.
  if (method.flush !== 'persist') throw new Error(`flush method ${String(method.flush)} is not implemented`);
  const names: { database: string; collection: string }[] = [];
  for (const database of await milvus.listDatabases()) {
    // A database dropped since it was listed (its collections were dropped first) has none left.
    const listed = await milvus.listCollections(database).catch((err: unknown) => {
      if (isCollectionGone(err)) return [];
      throw err;
    });
    for (const collection of listed) names.push({ database, collection });
  }
  // Every collection is looked at before any flush is asked for, a few at a time: its id (a
  // collection dropped and created again under its name later has another), and its count (with
  // inserts only, each flush holds at least these rows). A count Milvus refuses is left out, not
  // a reason to fail the backup: it only narrows what validation can tell.
  const befores = await mapBounded(names, COUNTS_AT_ONCE, ({ database, collection }) => lookAt(milvus, database, collection));
  const collections: CollectionFlush[] = [];
  for (const [i, { database, collection }] of names.entries()) {
    const before = befores[i]!;
    // Dropped since it was listed (an application swapping collections behind an alias drops the
    // old one): there is nothing of it to flush or to expect of a restore.
    const dropped = (because: string): CollectionFlush => ({ database, collection, confirmed: true, polls: 0, dropped: 'flush', droppedBecause: because });
    if ('gone' in before) {
      collections.push(dropped(before.gone));
      continue;
    }
    let ticket: PersistTicket;
    try {
      ticket = await milvus.persist(database, collection);
    } catch (err) {
      if (!isCollectionGone(err)) throw err;
      collections.push(dropped(errorText(err)));
      continue;
    }
    const { count } = before;
    collections.push({
      database,
      collection,
      ...(before.id !== undefined ? { collectionId: before.id } : {}),
      confirmed: false,
      ticket,
      polls: 0,
      ...('problem' in count ? { beforeProblem: count.problem } : { before: count }),
    });
  }
  const key = milvusStateKey(backupId);
  const recorded = { version: versionText(detected), source: detected.source, flush: method.flush, gcPause: method.gcPause, summary: method.summary };
  await writeState(ctx.vault, key, { format: 'milvus-guard/milvus-state-v1', backupId, flushStartedAt: now.toISOString(), timeoutSeconds: ctx.timings.flushTimeoutSeconds, milvus: recorded, collections });
  return {
    milvusKey: key,
    collections: collections.length,
    pending: collections.filter((c) => !c.confirmed).length,
    confirmed: collections.every((c) => c.confirmed),
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
): Promise<{ progress: FlushProgress; rowCounts?: RowCount[]; droppedBeforeFlush?: { database: string; collection: string }[] }> {
  const state = await readState(ctx.vault, progress.milvusKey);
  for (const c of state.collections.filter((x) => !x.confirmed)) {
    c.polls += 1;
    if (!c.ticket) throw new Error(`milvus.json of backup ${state.backupId} has no flush ticket for ${c.database}.${c.collection}: it was written by an older version; run the backup again`);
    // A collection dropped since its flush was asked for: the flush state of a name that no longer
    // resolves, or of dropped segments (datacoord counts them flushed), then its count, say so.
    let count: Count;
    try {
      if (!(await milvus.flushed(c.database, c.collection, c.ticket))) continue;
      const now = await lookAt(milvus, c.database, c.collection, c.collectionId);
      if ('gone' in now) {
        Object.assign(c, { confirmed: true, dropped: 'flush', droppedBecause: now.gone, ...(now.recreatedAs !== undefined ? { recreatedAs: now.recreatedAs } : {}) });
        continue;
      }
      // Refused (not a collection gone): the step fails with Milvus's answer, as before.
      if ('problem' in now.count) throw now.count.error;
      count = now.count;
    } catch (err) {
      if (!isCollectionGone(err)) throw err;
      Object.assign(c, { confirmed: true, dropped: 'flush', droppedBecause: errorText(err) });
      continue;
    }
    Object.assign(c, { confirmed: true, confirmedBy: count.by, rows: count.rows });
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
    rowCounts: rowCountsOf(state),
    droppedBeforeFlush: state.collections.filter((c) => c.dropped === 'flush').map((c) => ({ database: c.database, collection: c.collection })),
  };
}

/**
 * A collection's count now, the way Milvus can give it: `count(*)` when Milvus says the collection
 * is loaded and serves it, else `get_stats`. The count asks for consistency level Strong (every
 * write before the request), which REST v2 reads from milvus-io/milvus#41825/#41830 on; older
 * releases count at the collection's level (Bounded: all but the last `common.gracefulTime`), which
 * the workflow's wait before the recount makes up for (statemachines/backup.asl.yaml).
 */
async function countNow(milvus: MilvusClient, database: string, collection: string): Promise<Count> {
  // Counted by `count(*)` only when Milvus says the collection is loaded. A query of one still
  // loading answers 103 (ErrCollectionNotFullyLoaded), which merr marks retriable, and from
  // 2.4.15 the proxy retries a retriable shard-leader lookup until the request's deadline
  // (milvus-io/milvus#37326, #37687): asking would hold the step a request timeout per
  // collection. get_load_state is metadata querycoord answers at once; an error from it (the
  // failure of a load querycoord gave up on, 2.4 to 2.6) is no loaded collection either.
  const loaded = await milvus.loadState(database, collection).then(
    (s) => s === 'LoadStateLoaded',
    (err: unknown) => {
      // Milvus's own answer; an HTTP status (a proxy or router in the way) is no load state.
      if (err instanceof MilvusApiError && !err.httpStatus) return false;
      throw err;
    },
  );
  if (!loaded) return { rows: await milvus.persistedRowCount(database, collection), by: 'stats' };
  try {
    return { rows: await milvus.countRows(database, collection, { strong: true }), by: 'count' };
  } catch (err) {
    // `count(*)` refuses a collection its query nodes cannot serve yet (NOT_QUERYABLE_CODES,
    // core/milvus/client.ts): 101 not loaded, 103 loading (internal/querycoordv2/utils
    // `checkLoadStatus`), and, right after a load completes or with a query node down, 106
    // on recovering (`GetShardLeaders`: no channel in the current target yet) or 503 no
    // serviceable shard leader (`GetShardLeadersWithChannels`). A load in progress, one that
    // cannot finish (a segment file missing: querycoord retries it until its load timeout), or
    // query nodes that cannot serve must not fail a backup: all are counted by `get_stats`,
    // which datacoord answers without query nodes, as for a collection not loaded.
    if (!isNotQueryable(err)) throw err;
    return { rows: await milvus.persistedRowCount(database, collection), by: 'stats' };
  }
}

/** Requests of the counts before the flushes and after the snapshots sent to Milvus at once. */
export const COUNTS_AT_ONCE = 4;

/**
 * {@link countNow}, or what Milvus answered when it refused (a collection dropped since it was
 * listed, a count it cannot serve): such a count is left out. No answer, or an HTTP status from a
 * proxy in the way, is thrown: the step fails (the workflow retries the transient failures).
 */
async function countOrProblem(milvus: MilvusClient, database: string, collection: string): Promise<Count | { problem: string; error: MilvusApiError }> {
  try {
    return await countNow(milvus, database, collection);
  } catch (err) {
    if (err instanceof MilvusApiError && !err.httpStatus) return { problem: `Milvus answered: ${err.message}`, error: err };
    throw err;
  }
}

/**
 * A collection's count and id now, or `gone` (what Milvus answered) when it no longer exists:
 * Milvus says so ({@link isCollectionGone}), or its name now belongs to another collection than
 * `expectedId` (dropped and created again under its name). The count is taken first: ids are
 * never reused, so an id read after it that is still `expectedId` says the count was of that
 * collection. A count Milvus refuses is `problem`. The id is only a check: when Milvus refuses
 * describe ({@link idRefused}: under RBAC it needs DescribeCollection, which Milvus grants every
 * user through the public role unless that is turned off) or answers none, it is left undefined
 * and the collection is backed up as before, without telling a collection created again.
 */
async function lookAt(milvus: MilvusClient, database: string, collection: string, expectedId?: string): Promise<{ gone: string; recreatedAs?: string } | { id?: string; count: Count | { problem: string; error: MilvusApiError } }> {
  const count = await countOrProblem(milvus, database, collection);
  if ('problem' in count && isCollectionGone(count.error)) return { gone: count.problem };
  let id: string | undefined;
  try {
    id = await milvus.collectionId(database, collection);
  } catch (err) {
    if (isCollectionGone(err)) return { gone: errorText(err) };
    // Milvus's own refusal, or a 403 for the user's privileges: no id, as a count Milvus refuses is
    // left out. No answer, or a proxy's other HTTP status, is thrown: the step fails (the
    // workflow retries the transient failures), rather than skipping the check unnoticed.
    if (!idRefused(err)) throw err;
  }
  if (expectedId !== undefined && id !== undefined && id !== expectedId) return { gone: `dropped and created again under its name (id ${expectedId}, now ${id})`, recreatedAs: id };
  return { ...(id !== undefined ? { id } : {}), count };
}

/** When a collection was found dropped, and what that means for a restore: for summaries. */
function droppedWhen(c: CollectionFlush): string {
  const again = c.recreatedAs !== undefined ? ', and created again under its name' : '';
  return c.dropped === 'flush' ? `before its flush was confirmed${again}: not in the backup` : `after its flush${again}: a restore may or may not have it`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The row counts to record: each confirmed count, with the counts before the flush and after
 * the snapshots that were taken the same way (a collection loaded or released in between was
 * counted two ways, which cannot be compared).
 */
function rowCountsOf(state: MilvusState): RowCount[] {
  // A collection dropped before its flush was confirmed has no count and nothing to restore.
  return state.collections
    .filter((c) => c.dropped !== 'flush')
    .map((c) => ({
      database: c.database,
      collection: c.collection,
      rows: c.rows!,
      confirmedBy: c.confirmedBy!,
      ...(c.before && c.before.by === c.confirmedBy ? { rowsBeforeFlush: c.before.rows } : {}),
      ...(c.after && c.after.by === c.confirmedBy ? { rowsAfterSnapshots: c.after.rows } : {}),
      ...(c.collectionId !== undefined ? { collectionId: c.collectionId } : {}),
      ...(c.dropped === 'recount' ? { droppedDuringBackup: true } : {}),
    }));
}

/** What RecountRows found: how many collections it counted, and those whose count moved during the backup. */
export interface RecountSummary {
  readonly collections: number;
  /** Counted again the way the flush's count was taken. */
  readonly counted: number;
  /** `db.collection: before → after` of each collection whose count moved (at most 5 named). */
  readonly moved: readonly string[];
  readonly movedCount: number;
  /** `db.collection: why` of each collection with a count left out, before the flush or after the snapshots (at most 5 named). */
  readonly uncounted: readonly string[];
  readonly uncountedCount: number;
  /** `db.collection (when)` of each collection Milvus said was dropped during the backup (at most 5 named). */
  readonly dropped: readonly string[];
  readonly droppedCount: number;
}

/**
 * RecountRows: once every snapshot is cut, counts each collection again, the way its flush's
 * count was taken, and records it beside the others (`milvus.json`, and the row counts returned
 * for the catalog). A collection Milvus cannot count now the same way (dropped, loaded or released
 * since, or Milvus answering an error of its own for it) keeps the other counts, and the reason is
 * recorded; anything else (Milvus unreachable) fails the Task, which the workflow retries and
 * then passes over: the backup is good without these counts (statemachines/backup.asl.yaml).
 */
export async function recountRows(ctx: { readonly vault: VaultStore }, milvus: MilvusClient, backupId: string): Promise<{ rowCounts: RowCount[]; summary: RecountSummary }> {
  const key = milvusStateKey(backupId);
  const state = await readState(ctx.vault, key);
  // Once found dropped, a collection is not looked at again (a retried Task): one created again
  // under its name since is another collection.
  const todo = state.collections.filter((c) => c.confirmed && !c.after && !c.dropped);
  const looks = await mapBounded(todo, COUNTS_AT_ONCE, (c) => lookAt(milvus, c.database, c.collection, c.collectionId));
  for (const [i, c] of todo.entries()) {
    const look = looks[i]!;
    delete c.afterProblem;
    if ('gone' in look) {
      Object.assign(c, { dropped: 'recount', droppedBecause: look.gone, ...(look.recreatedAs !== undefined ? { recreatedAs: look.recreatedAs } : {}) });
      continue;
    }
    const after = look.count;
    if ('problem' in after) c.afterProblem = after.problem;
    else if (after.by !== c.confirmedBy) c.afterProblem = `counted by ${after.by} now and by ${c.confirmedBy} at the flush (loaded or released since)`;
    else c.after = after;
  }
  await writeState(ctx.vault, key, state);
  const rowCounts = rowCountsOf(state);
  const moved = rowCounts.filter((r) => (r.rowsBeforeFlush ?? r.rows) !== r.rows || (r.rowsAfterSnapshots ?? r.rows) !== r.rows);
  const problems = (c: CollectionFlush) => [c.beforeProblem && `before the flush: ${c.beforeProblem}`, c.afterProblem && `after the snapshots: ${c.afterProblem}`].filter(Boolean).join('; ');
  const uncounted = state.collections.filter((c) => !c.dropped && problems(c) !== '');
  const dropped = state.collections.filter((c) => c.dropped);
  return {
    rowCounts,
    summary: {
      collections: state.collections.length,
      counted: state.collections.filter((c) => c.after).length,
      moved: moved.slice(0, 5).map((r) => `${r.database}.${r.collection}: ${[r.rowsBeforeFlush, r.rows, r.rowsAfterSnapshots].filter((n) => n !== undefined).join(' → ')}`),
      movedCount: moved.length,
      uncounted: uncounted.slice(0, 5).map((c) => `${c.database}.${c.collection}: ${problems(c)}`),
      uncountedCount: uncounted.length,
      dropped: dropped.slice(0, 5).map((c) => `${c.database}.${c.collection} (${droppedWhen(c)})`),
      droppedCount: dropped.length,
    },
  };
}

/**
 * Pauses datacoord GC for `gcPauseSeconds` (a lease: if unquiesce never runs, GC resumes by
 * itself) and returns the ticket to resume it with. One global pause on every version (see
 * {@link quiesceMethod} for why not a collection-level one): with a ticket from 2.6.8, without
 * one before. What Milvus answers decides, not the version: a ticket answered is always kept.
 */
export async function pauseGc(ctx: { readonly timings: Pick<BackupTimings, 'gcPauseSeconds'> }, milvus: MilvusClient, now: Date): Promise<GcPause> {
  const { ticket } = await milvus.pauseGc(ctx.timings.gcPauseSeconds);
  return { ...(ticket ? { ticket } : {}), pausedUntil: deadlineAfter(now, ctx.timings.gcPauseSeconds).toISOString() };
}

/**
 * The PauseGc step's detail: the pause, and the version and method behind it. Says so when the
 * answer does not match the version: a 2.6.8+ that gave no ticket cannot be resumed (GC resumes
 * when the pause expires), and a ticket from an older version means the version is misread.
 */
export function describeGcPause(pause: GcPause, detected: DetectedVersion): string {
  const method = quiesceMethod(detected.version);
  const mismatch =
    method.gcPause === 'global-with-ticket' && !pause.ticket
      ? '; Milvus answered no ticket although this version gives one: GC resumes when the pause expires'
      : method.gcPause === 'global-without-ticket' && pause.ticket
        ? '; Milvus answered a ticket although this version gives none: the version was misread, the ticket is kept'
        : '';
  return `flushed and confirmed; GC paused until ${pause.pausedUntil}${pause.ticket ? '' : ' (no ticket: Milvus without GC tickets)'}. ${method.summary} (version from ${detected.source})${mismatch}`;
}

/**
 * Resumes GC with the ticket of the pause; without a pause there is nothing to resume. Without
 * a ticket (Milvus before 2.6.8) the resume ends the one global pause, whoever took it.
 */
export async function resumeGc(milvus: MilvusClient, pause: GcPause | undefined): Promise<boolean> {
  if (!pause) return false;
  await milvus.resumeGc(pause.ticket);
  return true;
}

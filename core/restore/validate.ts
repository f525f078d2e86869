/**
 * Validation (restore step "Validate"): the restored Milvus holds what the backup recorded.
 * For every collection whose row count the backup recorded: it exists, it is loaded, its
 * `count(*)` equals the recorded rows (at most them, for a count the backup took with get_stats, which includes deleted rows), and a sample search with a vector of the
 * collection's dimension returns hits. The checks are returned for the catalog;
 * {@link validationFailure} turns the failing ones into the named error.
 *
 * Collections are independent, so up to {@link VALIDATION_CONCURRENCY} are checked at once (each
 * one's requests in order): a restore of many collections is not validated one round trip at a
 * time, and Milvus's proxy is never sent more than a few searches at once. Each collection not
 * loaded is asked to load, and its load state is polled every {@link LOAD_POLL_MS} until it is
 * loaded, for at most the round's load wait (`RestoreTimings.validateLoadWaitSeconds`); it is
 * counted and searched as soon as it is loaded, while others still load. A collection still
 * loading when the wait is over makes the round answer `loading`: the workflow's WaitForLoad
 * and a later round take over, so a Lambda sleeps a few seconds to save a 10 s Wait state, never
 * through a long load.
  */
import type { CollectionCheck, RowCount } from '../catalog/record.js';
import { MilvusApiError, MilvusSchemaError, type MilvusClient } from '../milvus/client.js';
import type { ValidationProgress } from '../workflow/restore-state.js';
import { deadlineAfter } from '../deadline.js';
import { mapBounded } from '../objectstore/bounded.js';

/** Collections whose load state, counts and sample search are checked at once. */
export const VALIDATION_CONCURRENCY = 4;

/**
 * How often a loading collection's state is polled within a round: every 0.5 s, as pymilvus's
 * `wait_for_loading_collection` polls `get_loading_progress` (`Config.WaitTimeDurationWhenLoad`,
 * 0.5 s) and the Java SDK v2's `loadCollection` polls `getLoadState` (`Thread.sleep(500)`).
 * get_load_state is a metadata call querycoord answers from memory, so this costs Milvus nothing;
 * a load finishes a poll interval sooner at most, against a 10 s WaitForLoad.
 */
export const LOAD_POLL_MS = 500;

/** How a round waits for loads: for at most `seconds` of `now`, pausing with `sleep` between polls. */
export interface LoadWait {
  readonly seconds: number;
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
}

/** Milvus REST v2 code for a database that does not exist. */
const DATABASE_NOT_FOUND = 800;

/** Restored collections are missing, unsearchable or hold other row counts than recorded. */
export class RestoreValidationFailedError extends Error {
  constructor(readonly failed: readonly CollectionCheck[]) {
    super(
      `the restored data does not match the backup: ${failed.map(describeFailure).join('; ')}. ` +
        'The restore is left in place for inspection; check the backup with `milvus-guard datamover verify` and restore another backup',
    );
    this.name = 'RestoreValidationFailed';
  }
}

/** Collections were still loading when the validation deadline passed. */
export class ValidationTimeoutError extends Error {
  constructor(
    readonly loading: readonly string[],
    deadline: string,
  ) {
    super(`collection(s) ${loading.join(', ')} were still loading at the validation deadline ${deadline}; check the query nodes of the restored Milvus, or raise the validation timeout`);
    this.name = 'ValidationTimeout';
  }
}

function describeFailure(c: CollectionCheck): string {
  const problem = c.problem ?? 'failed';
  // A count mismatch's problem already states both counts; any other gets them appended.
  const counts = problem.includes('expected') ? '' : ` (expected ${c.expected} rows${c.restored !== undefined ? `, restored ${c.restored}` : ''})`;
  return `${c.database}.${c.collection}: ${problem}${counts}`;
}

/** The collections of each database, or undefined for a database that does not exist. */
async function collectionsOf(milvus: MilvusClient, database: string): Promise<Set<string> | undefined> {
  try {
    return new Set(await milvus.listCollections(database));
  } catch (err) {
    if (err instanceof MilvusApiError && err.code === DATABASE_NOT_FOUND) return undefined;
    throw err;
  }
}

/**
 * A query vector for a collection of dimension `dim`: fixed, unit length, not axis-aligned,
 * so every metric (COSINE, IP, L2) ranks real neighbours and the result is reproducible.
 */
export function sampleVector(dim: number): number[] {
  const raw = Array.from({ length: dim }, (_, i) => Math.sin(i + 1));
  const norm = Math.sqrt(raw.reduce((s, x) => s + x * x, 0)) || 1;
  return raw.map((x) => x / norm);
}

/**
 * Hits of a sample search of one collection; `skipped` when it has no float-vector field to
 * search (binary or sparse vectors only: the count is all we can check), a problem when
 * Milvus refuses the search.
 */
async function sampleSearch(milvus: MilvusClient, database: string, collection: string): Promise<{ hits: number } | { skipped: true } | { problem: string }> {
  let field;
  try {
    field = await milvus.describeVectorField(database, collection);
  } catch (err) {
    if (err instanceof MilvusSchemaError) return { skipped: true };
    throw err;
  }
  try {
    const hits = await milvus.search(database, collection, { annsField: field.field, vector: sampleVector(field.dim), limit: 3 });
    return { hits: hits.length };
  } catch (err) {
    if (err instanceof MilvusApiError) return { problem: `the sample search failed: ${err.message}` };
    throw err;
  }
}

/**
 * One round of validation of `expected` (see the module documentation). Loads what is not
 * loaded and, with `loadWait`, waits for the loads (polling every {@link LOAD_POLL_MS}, up to
 * `loadWait.seconds` and never past the deadline), checking each collection once it is loaded.
 * While a collection still loads at the end of the wait it returns `done: false` with
 * `loading: ["db.collection", ...]` and no checks (those made are redone next round); past the
 * deadline (`progress.deadline`, or `timeoutSeconds` from `now` on the first round, which sets
 * it) it throws {@link ValidationTimeoutError}. Once nothing loads it returns `done: true` and a
 * check per collection; row counts are compared only with `validateRowCounts`, but counted
 * always. Idempotent: asking Milvus to load a loading collection again is harmless. Without
 * `loadWait` each collection's load state is read once.
 */
export async function checkValidation(
  milvus: MilvusClient,
  expected: readonly RowCount[],
  progress: ValidationProgress,
  options: { validateRowCounts: boolean; now: Date; timeoutSeconds: number; loadWait?: LoadWait },
): Promise<{ progress: ValidationProgress; checks?: CollectionCheck[] }> {
  const deadline = progress.deadline ?? deadlineAfter(options.now, options.timeoutSeconds).toISOString();
  const byDatabase = new Map<string, Set<string> | undefined>();
  for (const database of new Set(expected.map((e) => e.database))) byDatabase.set(database, await collectionsOf(milvus, database));
  const missing = new Map<RowCount, CollectionCheck>();
  for (const e of expected) {
    const collections = byDatabase.get(e.database);
    if (collections?.has(e.collection)) continue;
    const problem = collections ? `missing: database ${e.database} has no collection ${e.collection}` : `missing: there is no database ${e.database}`;
    missing.set(e, { database: e.database, collection: e.collection, expected: e.rows, loaded: false, ok: false, problem });
  }
  const waitUntil = Math.min(options.now.getTime() + (options.loadWait?.seconds ?? 0) * 1000, Date.parse(deadline));
  // Bounded by count as well as by the clock: a round makes at most one poll per interval of
  // its wait, whatever the clock says (a frozen test clock, a clock that jumps back).
  const polls = 1 + Math.max(0, Math.floor(((options.loadWait?.seconds ?? 0) * 1000) / LOAD_POLL_MS));
  const results = await mapBounded(expected, VALIDATION_CONCURRENCY, async (e): Promise<CollectionCheck | 'loading'> => {
    const gone = missing.get(e);
    if (gone) return gone;
    if (!(await loaded(milvus, e, options.loadWait, waitUntil, polls))) return 'loading';
    return checkCollection(milvus, e, options.validateRowCounts);
  });
  const loading = expected.filter((_, i) => results[i] === 'loading').map((e) => `${e.database}.${e.collection}`);
  if (loading.length > 0) {
    if (options.now.getTime() > Date.parse(deadline)) throw new ValidationTimeoutError(loading, deadline);
    return { progress: { done: false, loading, deadline } };
  }
  return { progress: { done: true, loading: [], deadline }, checks: results as CollectionCheck[] };
}

/**
 * Whether collection `e` is loaded: asks Milvus to load it when it is not (again, when Milvus
 * cancelled a load that made no progress), and with `wait` polls its state every
 * {@link LOAD_POLL_MS} until it is loaded, `polls` polls are made, or the next poll would come
 * after `waitUntil`.
 */
async function loaded(milvus: MilvusClient, e: RowCount, wait: LoadWait | undefined, waitUntil: number, polls: number): Promise<boolean> {
  for (let poll = 1; ; poll++) {
    const state = await milvus.loadState(e.database, e.collection);
    if (state === 'LoadStateLoaded') return true;
    if (state === 'LoadStateNotLoad') await milvus.load(e.database, e.collection);
    if (!wait || poll >= polls || wait.now().getTime() + LOAD_POLL_MS > waitUntil) return false;
    await wait.sleep(LOAD_POLL_MS);
  }
}

/** The check of one loaded collection: its counts and a sample search. */
async function checkCollection(milvus: MilvusClient, e: RowCount, validateRowCounts: boolean): Promise<CollectionCheck> {
  // A count the backup took with get_stats (the collection was not loaded then) still held the
  // rows deleted since the last compaction: compare it with get_stats of the restored segments
  // (the same binlogs, the same rows), and require the live count to be no higher.
  const byStats = e.confirmedBy === 'stats';
  const live = await milvus.countRows(e.database, e.collection);
  const restored = byStats ? await milvus.persistedRowCount(e.database, e.collection) : live;
  const search = await sampleSearch(milvus, e.database, e.collection);
  const countOk = !validateRowCounts || (restored === e.rows && live <= restored);
  // An empty collection has nothing to find; any other must answer a search.
  const searchOk = 'skipped' in search || ('hits' in search && (search.hits > 0 || live === 0));
  const problems = [
    ...(countOk ? [] : [byStats ? `expected ${e.rows} rows by get_stats (deleted rows included), restored ${restored} (${live} live)` : `expected ${e.rows} rows, restored ${restored}`]),
    ...('problem' in search ? [search.problem] : searchOk ? [] : ['the sample search returned no hits']),
  ];
  return {
    database: e.database,
    collection: e.collection,
    expected: e.rows,
    restored,
    countedBy: byStats ? 'stats' : 'count',
    loaded: true,
    ...('hits' in search ? { searchHits: search.hits } : {}),
    ok: countOk && searchOk,
    ...(problems.length > 0 ? { problem: problems.join('; ') } : {}),
  };
}

/** The error for the failing checks (each named as db.collection with both counts), or undefined when all passed. */
export function validationFailure(checks: readonly CollectionCheck[]): RestoreValidationFailedError | undefined {
  const failed = checks.filter((c) => !c.ok);
  return failed.length > 0 ? new RestoreValidationFailedError(failed) : undefined;
}

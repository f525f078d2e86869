/**
 * Validation (restore step "Validate"): the restored Milvus holds what the backup recorded.
 * For every collection whose row count the backup recorded: it exists, it is loaded (loading it
 * when it is not, and coming back on a later poll — a Lambda does not sleep through a load),
 * its `count(*)` equals the recorded rows (at most them, for a count the backup took with get_stats, which includes deleted rows), and a sample search with a vector of the
 * collection's dimension returns hits. The checks are returned for the catalog;
 * {@link validationFailure} turns the failing ones into the named error.
 *
 * Collections are independent, so up to {@link VALIDATION_CONCURRENCY} are checked at once (each
 * one's requests in order): a restore of many collections is not validated one round trip at a
 * time, and Milvus's proxy is never sent more than a few searches at once.
 */
import type { CollectionCheck, RowCount } from '../catalog/record.js';
import { MilvusApiError, MilvusSchemaError, type MilvusClient } from '../milvus/client.js';
import type { ValidationProgress } from '../workflow/restore-state.js';
import { deadlineAfter } from '../deadline.js';
import { mapBounded } from '../objectstore/bounded.js';

/** Collections whose load state, counts and sample search are checked at once. */
export const VALIDATION_CONCURRENCY = 4;

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
 * One round of validation of `expected` (see the module documentation). While a collection
 * loads it returns `done: false` with `loading: ["db.collection", ...]` and no checks; past the
 * deadline (`progress.deadline`, or `timeoutSeconds` from `now` on the first round, which sets
 * it) it throws {@link ValidationTimeoutError}. Once nothing loads it returns `done: true` and a
 * check per collection; row counts are compared only with `validateRowCounts`, but counted
 * always. Idempotent: asking Milvus to load a loading collection again is harmless.
 */
export async function checkValidation(
  milvus: MilvusClient,
  expected: readonly RowCount[],
  progress: ValidationProgress,
  options: { validateRowCounts: boolean; now: Date; timeoutSeconds: number },
): Promise<{ progress: ValidationProgress; checks?: CollectionCheck[] }> {
  const deadline = progress.deadline ?? deadlineAfter(options.now, options.timeoutSeconds).toISOString();
  const byDatabase = new Map<string, Set<string> | undefined>();
  for (const database of new Set(expected.map((e) => e.database))) byDatabase.set(database, await collectionsOf(milvus, database));
  const missing: CollectionCheck[] = [];
  for (const e of expected) {
    const collections = byDatabase.get(e.database);
    if (collections?.has(e.collection)) continue;
    const problem = collections ? `missing: database ${e.database} has no collection ${e.collection}` : `missing: there is no database ${e.database}`;
    missing.push({ database: e.database, collection: e.collection, expected: e.rows, loaded: false, ok: false, problem });
  }
  const present = expected.filter((e) => byDatabase.get(e.database)?.has(e.collection));
  const stillLoading = await mapBounded(present, VALIDATION_CONCURRENCY, async (e) => {
    const state = await milvus.loadState(e.database, e.collection);
    if (state === 'LoadStateLoaded') return undefined;
    if (state === 'LoadStateNotLoad') await milvus.load(e.database, e.collection);
    return `${e.database}.${e.collection}`;
  });
  const loading = stillLoading.filter((name): name is string => name !== undefined);
  if (loading.length > 0) {
    if (options.now.getTime() > Date.parse(deadline)) throw new ValidationTimeoutError(loading, deadline);
    return { progress: { done: false, loading, deadline } };
  }

  const checks = await mapBounded(expected, VALIDATION_CONCURRENCY, async (e): Promise<CollectionCheck> => {
    const gone = missing.find((m) => m.database === e.database && m.collection === e.collection);
    if (gone) return gone;
    // A count the backup took with get_stats (the collection was not loaded then) still held the
    // rows deleted since the last compaction: compare it with get_stats of the restored segments
    // (the same binlogs, the same rows), and require the live count to be no higher.
    const byStats = e.confirmedBy === 'stats';
    const live = await milvus.countRows(e.database, e.collection);
    const restored = byStats ? await milvus.persistedRowCount(e.database, e.collection) : live;
    const search = await sampleSearch(milvus, e.database, e.collection);
    const countOk = !options.validateRowCounts || (restored === e.rows && live <= restored);
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
  });
  return { progress: { done: true, loading: [], deadline }, checks };
}

/** The error for the failing checks (each named as db.collection with both counts), or undefined when all passed. */
export function validationFailure(checks: readonly CollectionCheck[]): RestoreValidationFailedError | undefined {
  const failed = checks.filter((c) => !c.ok);
  return failed.length > 0 ? new RestoreValidationFailedError(failed) : undefined;
}

/**
 * Validation (restore step "Validate"): the restored Milvus holds what the backup recorded.
 * For every collection whose row count the backup recorded: it exists, it is loaded, its
 * `count(*)` equals the recorded rows (its `get_stats` does, and `count(*)` is at most that, for
 * a count the backup took with get_stats, which includes deleted rows; between the backup's
 * lowest and highest count of it when its count moved while the backup ran, see
 * {@link expectedOf}), and a sample search with a vector of the collection's dimension returns
 * hits. The checks are returned for the catalog; {@link validationFailure} turns the
 * failing ones into the named error.
 *
 * A round first asks for every load in one quick pass: the load state of each present
 * collection, and a load request for each not loaded, so Milvus loads them all in parallel
 * whatever their number. Then, with a load wait, it polls the collections still loading every
 * {@link LOAD_POLL_MS}, all in one poll, for at most the round's load wait
 * (`RestoreTimings.validateLoadWaitSeconds`), and counts and searches each collection as soon as
 * it is loaded, while others still load. Milvus's proxy is never sent more than
 * {@link VALIDATION_CONCURRENCY} of the round's requests at once, and checks never take the last
 * of those slots, so polls keep their interval however many checks wait. A collection still
 * loading when the wait is over makes the round answer `loading`: the workflow's WaitForLoad and
 * a later round take over, so a Lambda sleeps a few seconds to save a 10 s Wait state, never
 * through a long load; no check starts after the wait. A collection Milvus says is loaded but
 * whose count or search it refuses as not servable yet (NOT_QUERYABLE_CODES) is loading again,
 * not a failure. A check that fails ends the round at once: a known mismatch does not wait for
 * the other loads. A load Milvus failed is asked for again; its error is kept and named if the
 * validation times out.
 *
 * A collection the source had released comes back released, checked all the same. It is one the
 * backup counted with get_stats (it was not loaded then) and that the restored Milvus has not
 * loaded at the first round's look: querycoord persists what is loaded in etcd and loads it again
 * when it starts (CollectionManager.Recover, internal/querycoordv2/meta/collection_manager.go), so
 * a restored Milvus loads what the source had loaded, by itself. Users release a collection so
 * that the query nodes hold only what is served; loading every released one beside the loaded
 * ones could fail on query-node memory and would leave the restored Milvus serving, and paying
 * for, more than the source did. So they are loaded {@link RELEASED_LOADS_AT_ONCE} at a time, while
 * the others load, checked as the others are, and released once their check passed (a failed one
 * stays loaded, for inspection).
 *
 * Which they are is decided once, by a first round that only looks (when the backup counted any
 * collection by get_stats): it reads every load state, asks for the loads Milvus lacks of the
 * others, and answers `again: true` so the workflow starts the next round at once, without
 * WaitForLoad. Deciding and loading in one round would not survive a retry of that round: the
 * retry gets the round's input again, finds loaded the collection it had started to load, and
 * would keep it loaded as the source's. `progress.released` then names those not checked yet,
 * and `progress.releasedChecked` what the checks of the others found. A release Milvus refuses
 * (a user without the privilege) does not fail a restore whose data passed: the collection stays
 * loaded and its check says why; any other error of a release may pass, so the release is asked
 * again, and a collection still not released after that is left loaded the same way. A
 * collection whose load state Milvus answers with an error when the first round looks is not
 * taken for released: it is loaded and kept loaded, as the source's loaded ones are, never
 * released on a guess. The validation deadline bounds a validation that stops making progress:
 * each round that releases one moves it to `timeoutSeconds` after the round began, so many
 * released collections, loaded in turn, do not time out a restore that moves on. (The relay pod
 * of a Milvus with credentials ends at its own deadline, validateTimeoutSeconds and more after it
 * started; a round after that fails as MilvusRelayUnavailable, which the step retries, and its
 * retries start a new relay.)
 */
import type { CollectionCheck, RowCount } from '../catalog/record.js';
import { idRefused, isNotQueryable, isPrivilegeRefusal, MilvusApiError, MilvusSchemaError, type LoadState, type MilvusClient } from '../milvus/client.js';
import { mapBounded } from '../objectstore/bounded.js';
import type { ValidationProgress } from '../workflow/restore-state.js';
import { deadlineAfter } from '../deadline.js';
import { Semaphore } from '../vault/semaphore.js';

/**
 * Requests of a round (load states, loads, counts, searches) sent to Milvus at once. Checks hold
 * at most `VALIDATION_CONCURRENCY - 1` of them: one is always left to the polls.
 */
export const VALIDATION_CONCURRENCY = 4;

/**
 * How often a loading collection's state is polled within a round: every 0.5 s, as pymilvus's
 * `wait_for_loading_collection` polls `get_loading_progress` (`Config.WaitTimeDurationWhenLoad`,
 * 0.5 s) and the Java SDK v2's `loadCollection` polls `getLoadState` (`Thread.sleep(500)`).
 * get_load_state is a metadata call querycoord answers from memory, so this costs Milvus nothing;
 * a load finishes a poll interval sooner at most, against a 10 s WaitForLoad.
 */
export const LOAD_POLL_MS = 500;

/**
 * Milvus's answers to a release that mean it will not do it for this user: merr
 * ErrPrivilegeNotPermitted (1401), and HTTP 403, which the REST server answers it with where it
 * maps codes to statuses (internal/distributed/proxy/httpserver). Any other error may pass.
 */
const RELEASE_REFUSED_CODES: ReadonlySet<number> = new Set([1401, 403]);
/** Tries of a release Milvus answers with another error (see `releaseAgain`). */
const RELEASE_ATTEMPTS = 3;

/**
 * Collections the source had released that validation loads at once: one, so the query nodes
 * hold at most one collection more than the source's loaded ones. Each load takes a poll interval
 * at least, and the deadline moves on with each one released (see the module documentation).
 */
export const RELEASED_LOADS_AT_ONCE = 1;

/** How a round waits for loads: for at most `seconds` of `now`, pausing with `sleep` between polls. */
export interface LoadWait {
  readonly seconds: number;
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
}

/** Milvus REST v2 code for a database that does not exist. */
const DATABASE_NOT_FOUND = 800;

/** Collections a timeout names (with their last errors); the rest are counted. */
const NAMED_AT_MOST = 10;
/**
 * Bounds of what a round carries to the next in `progress.loadErrors` (execution state, at most
 * 256 KiB in Step Functions): characters of one error, and collections with one.
 */
const LOAD_ERROR_CHARS = 300;
const LOAD_ERRORS_KEPT = 50;

/** A collection as `loading`, `loadErrors` and the errors name it. */
const nameOf = (e: RowCount): string => `${e.database}.${e.collection}`;

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

/**
 * Every collection the backup counted was dropped during it, and none restored is the one backed
 * up: nothing could be checked, which must not pass for a validated restore.
 */
export class NothingValidatedError extends Error {
  constructor(readonly collections: number) {
    super(
      `nothing restored could be checked: all ${collections} of the backup's counted collection(s) were dropped, or dropped and created again under their names, while it ran (found by the backup, or by their ids at validation), and the restore has none of them as backed up. ` +
        'Restore another backup (milvus-guard backup list), or look at what the backup recorded (milvus-guard backup describe)',
    );
    this.name = 'NothingToValidate';
  }
}

/**
 * Collections were still loading when the validation deadline passed. `loadErrors` holds the
 * last error Milvus answered for some of them (a failed load, a refused count), by name.
 */
export class ValidationTimeoutError extends Error {
  constructor(
    readonly loading: readonly string[],
    deadline: string,
    readonly loadErrors: Readonly<Record<string, string>> = {},
    /** Of `loading`, how many the source had released and were still waiting for their turn to load. */
    waiting = 0,
  ) {
    // Named up to NAMED_AT_MOST: the message goes into the execution's error, the catalog's record
    // and an event, each with a size limit, and a restore may hold hundreds of collections.
    const more = (n: number): string => (n > NAMED_AT_MOST ? ` and ${n - NAMED_AT_MOST} more` : '');
    const reasons = loading.filter((name) => loadErrors[name] !== undefined).map((name) => `${name}: ${loadErrors[name]}`);
    super(
      `collection(s) ${loading.slice(0, NAMED_AT_MOST).join(', ')}${more(loading.length)} were still loading at the validation deadline ${deadline}` +
        (waiting > 0 ? ` (${waiting} of them released at the source, waiting to be loaded ${RELEASED_LOADS_AT_ONCE} at a time)` : '') +
        (reasons.length > 0 ? `; Milvus last answered ${reasons.slice(0, NAMED_AT_MOST).join('; ')}${more(reasons.length)}` : '') +
        '; check the query nodes of the restored Milvus (kubectl logs of the querynode pods), or raise the validation timeout',
    );
    this.name = 'ValidationTimeout';
  }
}

function describeFailure(c: CollectionCheck): string {
  const problem = c.problem ?? 'failed';
  // A count mismatch's problem already states both counts; any other gets them appended.
  const counts = problem.includes('expected') ? '' : ` (expected ${describeExpected(c)} rows${c.restored !== undefined ? `, restored ${c.restored}` : ''})`;
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
async function sampleSearch(
  milvus: MilvusClient,
  database: string,
  collection: string,
  bounded: <T>(request: () => Promise<T>) => Promise<T>,
): Promise<{ hits: number } | { skipped: true } | { problem: string }> {
  let field: Awaited<ReturnType<MilvusClient['describeVectorField']>>;
  try {
    field = await bounded(() => milvus.describeVectorField(database, collection));
  } catch (err) {
    if (err instanceof MilvusSchemaError) return { skipped: true };
    throw err;
  }
  try {
    const hits = await bounded(() => milvus.search(database, collection, { annsField: field.field, vector: sampleVector(field.dim), limit: 3 }));
    return { hits: hits.length };
  } catch (err) {
    // A collection not servable yet is loading again (see checkValidation), not a failed search.
    if (isNotQueryable(err) || !(err instanceof MilvusApiError)) throw err;
    return { problem: `the sample search failed: ${err.message}` };
  }
}

/**
 * One round of validation of `expected` (see the module documentation). Asks for every load
 * first, then, with `loadWait`, waits for the loads (polling every {@link LOAD_POLL_MS}, up to
 * `loadWait.seconds` and never past the deadline), checking each collection once it is loaded.
 * While a collection still loads (or, released at the source, waits for its turn) at the end of
 * the wait and no check failed, it returns `done: false` with `loading: ["db.collection", ...]`
 * and no checks (those made are redone next round, except those of released collections, kept in
 * `releasedChecked`); past the deadline (`progress.deadline`, or `timeoutSeconds` from `now` on
 * the first round, which sets it) it throws {@link ValidationTimeoutError}, naming the last error
 * Milvus answered for each (`progress.loadErrors` carries them between rounds). Once nothing
 * loads, or as soon as a check fails (a collection missing, a count or a search wrong), it
 * returns `done: true` and the checks made, in the order of `expected`: one per collection,
 * except those still loading when a check failed. Row counts are compared only with
 * `validateRowCounts`, but counted always. Idempotent: asking Milvus to load a loading collection
 * again, or to release a released one, is harmless. Without `loadWait` each collection's load
 * state is read once, and every loaded collection is checked.
 */
export async function checkValidation(
  milvus: MilvusClient,
  expected: readonly RowCount[],
  progress: ValidationProgress,
  options: { validateRowCounts: boolean; now: Date; timeoutSeconds: number; loadWait?: LoadWait },
): Promise<{ progress: ValidationProgress; checks?: CollectionCheck[] }> {
  // The first round sets the deadline; it is also the one that tells which collections the source
  // had released. An execution of older code in flight (a deadline, no `released`) releases nothing.
  const firstRound = progress.deadline === undefined;
  let deadline = progress.deadline ?? deadlineAfter(options.now, options.timeoutSeconds).toISOString();
  const byDatabase = new Map<string, Set<string> | undefined>();
  for (const database of new Set(expected.map((e) => e.database))) byDatabase.set(database, await collectionsOf(milvus, database));
  const checks = new Map<RowCount, CollectionCheck>();
  for (const e of expected) {
    const collections = byDatabase.get(e.database);
    if (collections?.has(e.collection)) continue;
    // Dropped during the backup, after its flush: whether the restore has it depends on whether
    // the drop reached etcd before its cut. Without it, there is nothing of it to check.
    if (e.droppedDuringBackup) {
      checks.set(e, { database: e.database, collection: e.collection, ...expectedOf(e), loaded: false, ok: true, droppedDuringBackup: true });
      continue;
    }
    const problem = collections ? `missing: database ${e.database} has no collection ${e.collection}` : `missing: there is no database ${e.database}`;
    checks.set(e, { database: e.database, collection: e.collection, ...expectedOf(e), loaded: false, ok: false, problem });
  }
  // A restored collection whose id is not the one the backup recorded is one created again under
  // its name during the backup (its drop and create reached etcd before the cut), which the
  // backup's counts do not describe: the backup found it dropped, or its recount was passed over.
  // Looked at once, by the first round (or each round of an execution of older code, which kept
  // no list), a few at a time. An id Milvus refuses to tell for the user's privileges leaves the
  // collection checked as any other.
  // Not read in a round that has already failed (a collection missing): it ends at once.
  const failedAlready = [...checks.values()].some((c) => !c.ok);
  const ids = progress.recreated !== undefined ? { names: progress.recreated, complete: true } : failedAlready ? { names: [], complete: false } : await recreatedOf(milvus, expected.filter((e) => !checks.has(e)));
  const recreated = new Set(ids.names);
  // Carried when there were ids to read (records from before ids were recorded have none), and
  // only when every id was read or refused for good: an id Milvus refused for a reason that may
  // pass is read again by the next round. An empty list means "looked, none".
  const carriedIds = ids.complete && expected.some((e) => e.collectionId !== undefined) ? { recreated: [...recreated] } : {};
  for (const e of expected) {
    if (checks.has(e) || !recreated.has(nameOf(e))) continue;
    checks.set(e, { database: e.database, collection: e.collection, ...expectedOf(e), loaded: false, ok: true, droppedDuringBackup: true, recreatedDuringBackup: true });
  }
  const releasedChecked = new Map(Object.entries(progress.releasedChecked ?? {}));
  const released = new Set([...(progress.released ?? []), ...releasedChecked.keys()]);
  for (const e of expected) {
    const earlier = checks.has(e) ? undefined : releasedChecked.get(nameOf(e));
    if (earlier) checks.set(e, releasedCheck(e, earlier));
  }
  const present = expected.filter((e) => !checks.has(e));
  const loadErrors = new Map(Object.entries(progress.loadErrors ?? {}));
  // The round that only looks (see the module documentation): not when a collection is missing,
  // as that round fails at once anyway.
  const lookRound = firstRound && !failedAlready && present.some((e) => e.confirmedBy === 'stats');
  // Released collections this round released again: each moves the deadline on.
  let releasedNow = 0;
  // Released collections waiting for their turn, in the order of `expected`, and how many of them
  // are loading or being checked now (at most RELEASED_LOADS_AT_ONCE).
  const queued = present.filter((e) => released.has(nameOf(e)));
  let releasedActive = 0;
  const started: RowCount[] = [];
  // None is started in a round that has already failed (a collection missing): it would stay loaded.
  const startReleased = (): void => {
    while (releasedActive < RELEASED_LOADS_AT_ONCE && queued.length > 0 && !failed()) {
      started.push(queued.shift()!);
      releasedActive++;
    }
  };

  // Every request of the round takes one of VALIDATION_CONCURRENCY slots, in order of asking.
  // A check also holds one of VALIDATION_CONCURRENCY - 1 check slots from start to end, so at
  // most that many check requests hold or wait for a slot: a poll's requests queue behind no
  // more than those, and polls keep their interval however many collections wait for a check.
  const slots = new Semaphore(VALIDATION_CONCURRENCY);
  const checkSlots = new Semaphore(VALIDATION_CONCURRENCY - 1);
  // Once a poll's request failed the round is over: requests still waiting for a slot are not
  // sent (a hung proxy would otherwise hold the round for each of them in turn). The failure is
  // noted before its slot is released, so no request queued behind it goes out.
  let stopped: { err: unknown } | undefined;
  const bounded = <T>(request: () => Promise<T>, stopsRound = false): Promise<T> =>
    holding(slots, async () => {
      if (stopped) throw stopped.err;
      try {
        return await request();
      } catch (err) {
        if (stopsRound) stopped ??= { err };
        throw err;
      }
    });
  const wait = options.loadWait;
  // No check starts past the round's wait (from `now`, not cut short by the deadline, so the last
  // round still checks what is loaded): a check started later could outlive the Lambda, while
  // one not started is only loading to the next round.
  const checksUntil = wait ? options.now.getTime() + wait.seconds * 1000 : Infinity;
  // Checks run while the others load; the first error of one ends the round once they are done.
  const running = new Set<Promise<void>>();
  // Loaded collections handed back unchecked: Milvus would not serve them yet, or too late to start.
  const again: RowCount[] = [];
  let error: { err: unknown } | undefined;
  const check = (e: RowCount): void => {
    const run: Promise<void> = holding(checkSlots, async () => {
      if (wait && wait.now().getTime() > checksUntil) return void again.push(e);
      let result: CollectionCheck;
      try {
        result = await checkCollection(milvus, e, options.validateRowCounts, bounded);
      } catch (err) {
        // Loaded by its load state, yet its shard leaders cannot serve a query: 106 before the
        // current target has the collection's channels, 503 with no serviceable leader, 101/103
        // after a release (NOT_QUERYABLE_CODES). It loads again, as far as this round knows.
        if (!isNotQueryable(err)) throw err;
        loadErrors.set(nameOf(e), err.message.slice(0, LOAD_ERROR_CHARS));
        again.push(e);
        return;
      }
      if (released.has(nameOf(e)) && result.ok) {
        const refused = await releaseAgain(milvus, e, bounded, wait);
        const found = { restored: result.restored!, ...(result.searchHits !== undefined ? { searchHits: result.searchHits } : {}), ...(refused !== undefined ? { releaseRefused: refused } : {}) };
        releasedChecked.set(nameOf(e), found);
        result = releasedCheck(e, found);
        releasedActive--;
        releasedNow++;
        startReleased();
      }
      checks.set(e, result);
    })
      .catch((err: unknown) => void (error ??= { err }))
      .finally(() => void running.delete(run));
    running.add(run);
  };
  const failed = () => error !== undefined || [...checks.values()].some((c) => !c.ok);
  /**
   * Polls the load state of `collections` (asking for a load where there is none, except of those
   * in `lookOnly`) and starts the check of each loaded one (unless `checkLoaded` is false: then it
   * is still to check); returns those still loading, and those of `lookOnly` found not loaded (or
   * whose state Milvus answered with an error). Every request of the poll has ended when it
   * returns or throws (its first error).
   */
  const poll = async (collections: readonly RowCount[], lookOnly: ReadonlySet<RowCount> = new Set(), checkLoaded = true): Promise<{ still: RowCount[]; notLoaded: RowCount[] }> => {
    const settled = await Promise.allSettled(collections.map((e) => bounded(() => requestLoad(milvus, e, !lookOnly.has(e)), true)));
    const refused = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (refused) throw stopped ? stopped.err : refused.reason;
    const still: RowCount[] = [];
    const notLoaded: RowCount[] = [];
    for (const [i, e] of collections.entries()) {
      const answer = (settled[i] as PromiseFulfilledResult<LoadAnswer>).value;
      if (answer.loadError !== undefined) loadErrors.set(nameOf(e), answer.loadError.slice(0, LOAD_ERROR_CHARS));
      if (answer.loaded && checkLoaded) check(e);
      else if (answer.notLoaded) notLoaded.push(e);
      else still.push(e);
    }
    return { still, notLoaded };
  };

  let loading: RowCount[] = [];
  try {
    // One pass over every collection first: each load is asked for at once, whatever their number,
    // but those the source had released, which wait for their turn.
    startReleased();
    // In any first round those the backup counted by get_stats are only looked at: one that failed
    // at once (a collection missing) must not load them all.
    const first = await poll([...present.filter((e) => !released.has(nameOf(e))), ...started.splice(0)], new Set(firstRound ? present.filter((e) => e.confirmedBy === 'stats') : []), !lookRound);
    if (lookRound) {
      // Those the backup counted by get_stats and the restored Milvus has not loaded: the source's released.
      const found = new Set(first.notLoaded);
      const names = (of: (e: RowCount) => boolean) => expected.filter(of).map(nameOf);
      const errors = Object.fromEntries([...loadErrors].slice(0, LOAD_ERRORS_KEPT));
      return {
        progress: {
          done: false,
          loading: names((e) => present.includes(e) && !found.has(e)),
          deadline,
          ...(Object.keys(errors).length > 0 ? { loadErrors: errors } : {}),
          ...(found.size > 0 ? { released: names((e) => found.has(e)) } : {}),
          ...carriedIds,
          again: true,
        },
      };
    }
    loading = first.still;
    if (wait) {
      const waitUntil = Math.min(checksUntil, Date.parse(deadline));
      // Bounded by count as well as by the clock: a round makes at most one poll per interval of
      // its wait, whatever the clock says (a frozen test clock, a clock that jumps back).
      const polls = 1 + Math.max(0, Math.floor((wait.seconds * 1000) / LOAD_POLL_MS));
      let made = 1;
      while (!failed()) {
        loading.push(...again.splice(0), ...started.splice(0));
        if (loading.length === 0) {
          // Nothing to poll: wait for a check to end, which may hand its collection back.
          if (running.size === 0) break;
          await Promise.race(running);
          continue;
        }
        if (made >= polls || wait.now().getTime() + LOAD_POLL_MS > waitUntil) break;
        await wait.sleep(LOAD_POLL_MS);
        if (failed()) break;
        loading = (await poll(loading)).still;
        made++;
      }
    }
  } finally {
    // Nothing of the round is still talking to Milvus when it ends, whichever way: a poll has
    // settled all its requests, and every check started is awaited (none starts after the wait).
    await Promise.all([...running]);
  }
  if (error) throw error.err;
  loading.push(...again.splice(0), ...started.splice(0));
  const pending = [...loading, ...queued];
  const made = expected.flatMap((e) => checks.get(e) ?? []);
  if (releasedNow > 0) deadline = new Date(Math.max(Date.parse(deadline), deadlineAfter(options.now, options.timeoutSeconds).getTime())).toISOString();
  // Released collections not checked yet (waiting or loading), and what the checks of the others found.
  const unchecked = expected.filter((e) => released.has(nameOf(e)) && pending.includes(e)).map(nameOf);
  const carried = {
    ...(unchecked.length > 0 ? { released: unchecked } : {}),
    ...(releasedChecked.size > 0 ? { releasedChecked: Object.fromEntries(releasedChecked) } : {}),
  };
  if (pending.length > 0 && !failed()) {
    const names = expected.filter((e) => pending.includes(e)).map(nameOf);
    // Kept for the collections still loading only: the next round's timeout, and its failed load.
    const errors: Record<string, string> = {};
    for (const name of names) {
      const message = loadErrors.get(name);
      // Cut here, where they are written, so entries an earlier round carried are cut too.
      if (message !== undefined && Object.keys(errors).length < LOAD_ERRORS_KEPT) errors[name] = message.slice(0, LOAD_ERROR_CHARS);
    }
    if (options.now.getTime() > Date.parse(deadline)) throw new ValidationTimeoutError(names, deadline, errors, queued.length);
    const stillLoading = expected.filter((e) => loading.includes(e)).map(nameOf);
    return { progress: { done: false, loading: stillLoading, deadline, ...(Object.keys(errors).length > 0 ? { loadErrors: errors } : {}), ...carried, ...carriedIds } };
  }
  return { progress: { done: true, loading: [], deadline }, checks: made };
}

/**
 * The passing check of a released collection, from what `releasedChecked` keeps of it: released
 * again, or left loaded with the reason Milvus refused the release.
 */
function releasedCheck(e: RowCount, found: NonNullable<ValidationProgress['releasedChecked']>[string]): CollectionCheck {
  return {
    database: e.database,
    collection: e.collection,
    ...expectedOf(e),
    restored: found.restored,
    countedBy: e.confirmedBy === 'stats' ? 'stats' : 'count',
    loaded: true,
    ...(found.searchHits !== undefined ? { searchHits: found.searchHits } : {}),
    ...(found.releaseRefused === undefined ? { released: true } : {}),
    ok: true,
    ...(found.releaseRefused !== undefined ? { problem: `left loaded: the source had it released, but Milvus did not release it again: ${found.releaseRefused}` } : {}),
  };
}

/** Runs `task` holding one slot of `semaphore`. */
async function holding<T>(semaphore: Semaphore, task: () => Promise<T>): Promise<T> {
  await semaphore.acquire();
  try {
    return await task();
  } finally {
    semaphore.release();
  }
}

/**
 * Releases collection `e` again, as the source had it, once its check passed; the error it was
 * left loaded with, cut to LOAD_ERROR_CHARS, if it was. A release Milvus refuses (a user without
 * the privilege: RELEASE_REFUSED_CODES) is not asked again. Any other error Milvus answers may
 * pass (a proxy not healthy yet), so the release alone is asked again, up to RELEASE_ATTEMPTS
 * times, LOAD_POLL_MS apart (with `wait`); releasing a collection already released succeeds, so a
 * release that took effect but answered an error passes on the next try. Either way the data
 * passed its check and the restore does not fail for it: the collection stays loaded, as every
 * collection did before validation released any, and its check says why. A call without an
 * answer (the relay, the network) is thrown: the step's retry checks the collection again.
 */
async function releaseAgain(milvus: MilvusClient, e: RowCount, bounded: <T>(request: () => Promise<T>) => Promise<T>, wait: LoadWait | undefined): Promise<string | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      await bounded(() => milvus.release(e.database, e.collection));
      return undefined;
    } catch (err) {
      if (!(err instanceof MilvusApiError)) throw err;
      if (RELEASE_REFUSED_CODES.has(err.code) || attempt >= RELEASE_ATTEMPTS) return err.message.slice(0, LOAD_ERROR_CHARS);
    }
    await wait?.sleep(LOAD_POLL_MS);
  }
}

/** Whether a collection is loaded; `loadError`, the error Milvus answered its load state with. */
interface LoadAnswer {
  readonly loaded: boolean;
  /** Not loaded, and no load was asked for (`load: false`). */
  readonly notLoaded?: boolean;
  readonly loadError?: string;
}

/**
 * Whether collection `e` is loaded, asking Milvus to load it when it is not: when its state is
 * NotLoad, and when Milvus answers the state with an error. Milvus 2.4 to 2.6 answer
 * GetLoadState with the error of a failed load once querycoord cancelled that load (at its load
 * timeout): ShowLoadCollections finds the collection no longer loading and returns
 * `errors.Wrap(<the cached error>, "show collection failed")` with that error's code, from
 * `meta.GlobalFailedLoadCache` (internal/querycoordv2/services.go), which the proxy's
 * GetLoadState passes on, as it turns only ErrCollectionNotLoaded into LoadStateNotLoad
 * (internal/proxy/impl.go). A new load request starts a new load job (job_load.go removes the
 * cached error first). The error is kept to name in a timeout; it does not fail the validation
 * by itself: the same text can come from a passing fault (a proxy not ready, a deadline), and
 * the cached one names whichever segment failed last, so "the same error twice" tells neither a
 * permanent failure nor a new one. Any error of the load request itself (a collection dropped, no
 * permission) is thrown. With `load` false nothing is loaded: a NotLoad state is only reported
 * (`notLoaded`), an error as the load error of a collection still loading.
 */
async function requestLoad(milvus: MilvusClient, e: RowCount, load: boolean): Promise<LoadAnswer> {
  let state: LoadState;
  try {
    state = await milvus.loadState(e.database, e.collection);
  } catch (err) {
    if (!(err instanceof MilvusApiError)) throw err;
    // Not known to be released: looked at (and loaded) again like the source's loaded ones, so
    // a collection the restored Milvus serves is never released on a guess.
    if (!load) return { loaded: false, loadError: err.message };
    await milvus.load(e.database, e.collection);
    return { loaded: false, loadError: err.message };
  }
  if (state === 'LoadStateNotLoad') {
    if (!load) return { loaded: false, notLoaded: true };
    await milvus.load(e.database, e.collection);
  }
  return { loaded: state === 'LoadStateLoaded' };
}

/** The check of one loaded collection: its counts and a sample search. */
async function checkCollection(milvus: MilvusClient, e: RowCount, validateRowCounts: boolean, bounded: <T>(request: () => Promise<T>) => Promise<T>): Promise<CollectionCheck> {
  // A count the backup took with get_stats (the collection was not loaded then) still held the
  // rows deleted since the last compaction: compare it with get_stats of the restored Milvus (the
  // same segment records, the same rows), and require the live count to be no higher.
  const byStats = e.confirmedBy === 'stats';
  const live = await bounded(() => milvus.countRows(e.database, e.collection));
  const restored = byStats ? await bounded(() => milvus.persistedRowCount(e.database, e.collection)) : live;
  const search = await sampleSearch(milvus, e.database, e.collection, bounded);
  const want = expectedOf(e);
  const countOk = !validateRowCounts || (withinExpected(want, restored) && live <= restored);
  // A collection the backup recorded empty has nothing to find; any other must answer a search,
  // with or without the count check: one restored empty (a damaged index, lost segments) finds
  // nothing, and without this it passed whenever the counts were not compared.
  // Counted by get_stats, the backup's count includes deleted rows: a collection whose every row
  // was deleted has a count above 0 and none live, and restores so (the same segment records).
  const backedUpEmpty = (want.expectedMin ?? want.expected) === 0 || (byStats && withinExpected(want, restored));
  const searchOk = 'skipped' in search || ('hits' in search && (search.hits > 0 || (live === 0 && backedUpEmpty)));
  const problems = [
    ...(countOk ? [] : [`expected ${describeExpected(want)} rows${byStats ? ' by get_stats (deleted rows included)' : ''}, restored ${restored}${byStats ? ` (${live} live)` : ''}`]),
    ...('problem' in search ? [search.problem] : searchOk ? [] : ['the sample search returned no hits']),
  ];
  return {
    database: e.database,
    collection: e.collection,
    ...want,
    restored,
    countedBy: byStats ? 'stats' : 'count',
    loaded: true,
    ...('hits' in search ? { searchHits: search.hits } : {}),
    ok: countOk && searchOk,
    ...(problems.length > 0 ? { problem: problems.join('; ') } : {}),
  };
}

/**
 * What a restore of `e` may bring back. Milvus takes writes during a backup: rows written after
 * the flush may be lost (they are outside the backup), and rows a segment sealed by Milvus itself
 * or an in-cluster queue carried past the count may come back; a compaction moves `get_stats`.
 * The backup counted each collection before its flush, at the flush and after the snapshots
 * (core/backup/quiesce.ts), so a restored count between the lowest and the highest is what the
 * backup holds. When they agree (nothing was written), exactly that count; so too for a record
 * from before the other two counts were taken.
 */
function expectedOf(e: RowCount): Pick<CollectionCheck, 'expected' | 'expectedMin' | 'expectedMax'> {
  const counts = [e.rows, ...(e.rowsBeforeFlush !== undefined ? [e.rowsBeforeFlush] : []), ...(e.rowsAfterSnapshots !== undefined ? [e.rowsAfterSnapshots] : [])];
  const lowest = Math.min(...counts);
  const highest = Math.max(...counts);
  return { expected: e.rows, ...(lowest < highest ? { expectedMin: lowest, expectedMax: highest } : {}) };
}

/** Whether `rows` is a count a restore may bring back: the expected one, or one in its range (see {@link expectedOf}). */
export function withinExpected(c: Pick<CollectionCheck, 'expected' | 'expectedMin' | 'expectedMax'>, rows: number): boolean {
  return rows >= (c.expectedMin ?? c.expected) && rows <= (c.expectedMax ?? c.expected);
}

/** `1000`, or `1000 (998–1012)` when the count moved while the backup ran: for tables. */
export function expectedCell(c: Pick<CollectionCheck, 'expected' | 'expectedMin' | 'expectedMax'>): string {
  return c.expectedMin !== undefined && c.expectedMax !== undefined ? `${c.expected} (${c.expectedMin}–${c.expectedMax})` : `${c.expected}`;
}

/**
 * `db.collection` of each of `present` whose restored id is not the one the backup recorded (a few
 * at a time), and whether every id was read or refused for good (for the user's privileges).
 */
async function recreatedOf(milvus: MilvusClient, present: readonly RowCount[]): Promise<{ names: string[]; complete: boolean }> {
  const withId = present.filter((e) => e.collectionId !== undefined);
  const ids = await mapBounded(withId, VALIDATION_CONCURRENCY, (e) => restoredId(milvus, e));
  return { names: withId.filter((e, i) => typeof ids[i] === 'string' && ids[i] !== e.collectionId).map(nameOf), complete: !ids.includes(null) };
}

/**
 * The restored collection's id; undefined when Milvus answers none or refuses it for the user's
 * privileges (for good), null when it refuses it for a reason that may pass (read again later).
 */
async function restoredId(milvus: MilvusClient, e: RowCount): Promise<string | undefined | null> {
  try {
    return await milvus.collectionId(e.database, e.collection);
  } catch (err) {
    if (isPrivilegeRefusal(err)) return undefined;
    if (idRefused(err)) return null;
    throw err;
  }
}

/** How many checks checked a collection: not one dropped during the backup and not restored as backed up. */
export function collectionsChecked(checks: readonly Pick<CollectionCheck, 'droppedDuringBackup'>[]): number {
  return checks.filter((c) => !c.droppedDuringBackup).length;
}

/** A check's last table column: its problem, or why a collection dropped during the backup is absent. */
export function checkNote(c: Pick<CollectionCheck, 'problem' | 'droppedDuringBackup' | 'recreatedDuringBackup'>): string {
  if (c.problem !== undefined) return c.problem;
  if (c.recreatedDuringBackup) return 'dropped and created again during the backup: not the collection backed up, not counted';
  return c.droppedDuringBackup ? 'dropped during the backup: not restored' : '';
}

/** `1000`, or `1000 (998 to 1012: written during the backup)` when the count moved while the backup ran. */
export function describeExpected(c: Pick<CollectionCheck, 'expected' | 'expectedMin' | 'expectedMax'>): string {
  return c.expectedMin !== undefined && c.expectedMax !== undefined ? `${c.expected} (${c.expectedMin} to ${c.expectedMax}: written during the backup)` : `${c.expected}`;
}

/** The error for the failing checks (each named as db.collection with both counts), or undefined when all passed. */
export function validationFailure(checks: readonly CollectionCheck[]): RestoreValidationFailedError | NothingValidatedError | undefined {
  if (checks.length > 0 && checks.every((c) => c.droppedDuringBackup)) return new NothingValidatedError(checks.length);
  const failed = checks.filter((c) => !c.ok);
  return failed.length > 0 ? new RestoreValidationFailedError(failed) : undefined;
}

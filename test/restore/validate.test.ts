import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import type { CollectionCheck, RowCount } from '../../core/catalog/record.js';
import { MilvusApiError, MilvusClient, type LoadState, type VectorField } from '../../core/milvus/client.js';
import type { MilvusAnswer, MilvusCall, MilvusTransport } from '../../core/milvus/transport.js';
import { checkValidation, LOAD_POLL_MS, RELEASED_LOADS_AT_ONCE, RestoreValidationFailedError, VALIDATION_CONCURRENCY, ValidationTimeoutError, validationFailure, type LoadWait } from '../../core/restore/validate.js';
import { MilvusSimulator, readMilvusState, seedMilvusData } from '../../local/milvus/index.js';
import type { ValidationProgress } from '../../core/workflow/restore-state.js';
import { countRows, persist, rest, simulatorAnswer, statsRows, tempVolumes, type TempVolumes } from '../local-milvus/helpers.js';

// Validation of a restored Milvus with many collections: the product's MilvusClient against the
// simulated Milvus, through a transport that counts the calls in flight.

const NOW = new Date('2026-11-23T02:05:00.000Z');
const COLLECTIONS = Array.from({ length: 9 }, (_, i) => ({ database: 'default', name: `c${i}`, dim: 4, rows: 40 + i }));

/** Hands each call to the simulator a turn of the event loop later, so calls made at once overlap. */
class CountingTransport implements MilvusTransport {
  inFlight = 0;
  mostInFlight = 0;
  /** Each call as `<path after /v2/vectordb/> <db>.<collection>`, in the order made. */
  readonly calls: string[] = [];
  constructor(private readonly sim: MilvusSimulator) {}
  async call(call: MilvusCall): Promise<MilvusAnswer> {
    const body = JSON.parse(call.body ?? '{}') as { dbName?: string; collectionName?: string };
    this.calls.push(`${call.path.replace('/v2/vectordb/', '')} ${body.dbName ?? 'default'}.${body.collectionName ?? ''}`);
    this.inFlight++;
    this.mostInFlight = Math.max(this.mostInFlight, this.inFlight);
    try {
      await new Promise<void>((resolve) => setImmediate(resolve));
      return await simulatorAnswer(this.sim, call);
    } finally {
      this.inFlight--;
    }
  }
  async close(): Promise<void> {}
}

let v: TempVolumes;
let expected: RowCount[];

beforeAll(async () => {
  v = await tempVolumes();
  await seedMilvusData(v.volumes, { collections: COLLECTIONS });
  // What a backup of a flushed instance records: count(*) of every collection.
  const state = await readMilvusState(v.volumes);
  expected = state.collections.map((c) => ({ database: c.database, collection: c.name, rows: c.persistedRows + c.growingRows, confirmedBy: 'count' }));
});

afterAll(async () => {
  await v.cleanup();
});

function client(): { milvus: MilvusClient; transport: CountingTransport } {
  const transport = new CountingTransport(new MilvusSimulator({ volumes: async () => v.volumes, now: () => NOW }));
  return { milvus: new MilvusClient(new KubeConfig(), { namespace: 'restored', service: 'm-milvus', restPort: 19530, managementPort: 9091 }, transport), transport };
}

describe('validation of many collections', () => {
  it('checks several collections at once, never more than VALIDATION_CONCURRENCY', async () => {
    const { milvus, transport } = client();

    const result = await checkValidation(milvus, expected, { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });

    expect(result.progress.done).toBe(true);
    expect(validationFailure(result.checks!)).toBeUndefined();
    expect(transport.mostInFlight).toBeGreaterThan(1);
    expect(transport.mostInFlight).toBeLessThanOrEqual(VALIDATION_CONCURRENCY);
  });

  it('reports the checks in the order of the recorded row counts, each with its own counts', async () => {
    const { milvus } = client();
    const wrong = expected.map((e) => (e.collection === 'c5' ? { ...e, rows: e.rows + 1 } : e));

    const result = await checkValidation(milvus, wrong, { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });

    expect(result.checks!.map((c) => c.collection)).toEqual(expected.map((e) => e.collection));
    expect(result.checks!.map((c) => c.restored)).toEqual(expected.map((e) => e.rows));
    expect(result.checks!.filter((c) => !c.ok).map((c) => c.collection)).toEqual(['c5']);
    expect(result.checks!.every((c) => (c.searchHits ?? 0) > 0)).toBe(true);
  });
});

/**
 * A Milvus whose collections each load after a given number of load-state polls following the
 * load request (`Infinity`: never within the test), recording every call in order.
 */
class LoadingMilvus {
  readonly log: string[] = [];
  private readonly pollsSinceLoad = new Map<string, number>();
  constructor(private readonly loadsAfter: Readonly<Record<string, number>>) {}
  async listCollections(): Promise<string[]> {
    return Object.keys(this.loadsAfter);
  }
  async loadState(_db: string, name: string): Promise<LoadState> {
    this.log.push(`loadState ${name}`);
    const after = this.loadsAfter[name]!;
    if (after === 0) return 'LoadStateLoaded';
    const polls = this.pollsSinceLoad.get(name);
    if (polls === undefined) return 'LoadStateNotLoad';
    this.pollsSinceLoad.set(name, polls + 1);
    return polls + 1 >= after ? 'LoadStateLoaded' : 'LoadStateLoading';
  }
  async load(_db: string, name: string): Promise<void> {
    this.log.push(`load ${name}`);
    if (!this.pollsSinceLoad.has(name)) this.pollsSinceLoad.set(name, 0);
  }
  /** Releases to fail before one succeeds, by collection, and the error they fail with. */
  readonly releaseFailures = new Map<string, number>();
  releaseError = (): Error => new MilvusApiError('collections/release', 65535, 'proxy not healthy');
  async release(_db: string, name: string): Promise<void> {
    this.log.push(`release ${name}`);
    const failures = this.releaseFailures.get(name) ?? 0;
    if (failures > 0) {
      this.releaseFailures.set(name, failures - 1);
      throw this.releaseError();
    }
    this.pollsSinceLoad.delete(name);
  }
  loaded(name: string): boolean {
    return this.loadsAfter[name] === 0 || (this.pollsSinceLoad.get(name) ?? -1) >= this.loadsAfter[name]!;
  }
  async countRows(_db: string, name: string): Promise<number> {
    this.log.push(`count ${name}`);
    return 10;
  }
  async persistedRowCount(): Promise<number> {
    return 10;
  }
  async describeVectorField(): Promise<VectorField> {
    return { field: 'embedding', dim: 4 };
  }
  async search(_db: string, name: string): Promise<unknown[]> {
    this.log.push(`search ${name}`);
    return [{}, {}, {}];
  }
  polls(name: string): number {
    return this.log.filter((l) => l === `loadState ${name}`).length;
  }
}

/** A test clock that `sleep` advances: a round's wait takes no real time. */
function fakeClock(start: Date): LoadWait & { elapsedMs: () => number } {
  let t = start.getTime();
  return { seconds: 20, now: () => new Date(t), sleep: async (ms) => void (t += ms), elapsedMs: () => t - start.getTime() };
}

const rowsOf = (...names: string[]): RowCount[] => names.map((collection) => ({ database: 'default', collection, rows: 10, confirmedBy: 'count' }));
/** Row counts a backup took with get_stats: the collections were not loaded then. */
const statsRowsOf = (...names: string[]): RowCount[] => names.map((collection) => ({ database: 'default', collection, rows: 10, confirmedBy: 'stats' }));

describe('waiting for loads within a round', () => {
  it('checks in one round a collection that loads a few polls after the load request', async () => {
    const milvus = new LoadingMilvus({ late: 3 });
    const clock = fakeClock(NOW);

    const result = await checkValidation(milvus as unknown as MilvusClient, rowsOf('late'), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: clock });

    expect(result.progress.done).toBe(true);
    expect(result.checks).toEqual([expect.objectContaining({ collection: 'late', loaded: true, restored: 10, searchHits: 3, ok: true })]);
    expect(milvus.log.slice(0, 5)).toEqual(['loadState late', 'load late', 'loadState late', 'loadState late', 'loadState late']);
    expect(clock.elapsedMs()).toBe(3 * LOAD_POLL_MS);
  });

  it('answers loading once the wait is spent, polling no more often than every LOAD_POLL_MS', async () => {
    const milvus = new LoadingMilvus({ slow: Infinity });
    const clock = { ...fakeClock(NOW), seconds: 2 };

    const result = await checkValidation(milvus as unknown as MilvusClient, rowsOf('slow'), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: clock });

    expect(result).toEqual({ progress: { done: false, loading: ['default.slow'], deadline: '2026-11-23T02:06:00.000Z' } });
    expect(milvus.polls('slow')).toBe(1 + 2000 / LOAD_POLL_MS);
    expect(clock.elapsedMs()).toBeLessThanOrEqual(2000);
  });

  it('counts and searches a loaded collection while another still loads', async () => {
    const milvus = new LoadingMilvus({ slow: 4, ready: 0 });

    const result = await checkValidation(milvus as unknown as MilvusClient, rowsOf('slow', 'ready'), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: fakeClock(NOW) });

    expect(result.checks!.map((c) => `${c.collection}:${c.ok}`)).toEqual(['slow:true', 'ready:true']);
    const lastSlowPoll = milvus.log.lastIndexOf('loadState slow');
    expect(milvus.log.indexOf('search ready')).toBeGreaterThan(-1);
    expect(milvus.log.indexOf('search ready')).toBeLessThan(lastSlowPoll);
    expect(milvus.log.indexOf('count slow')).toBeGreaterThan(lastSlowPoll);
  });

  it('waits no later than the validation deadline, and past it fails with ValidationTimeout without waiting', async () => {
    const nearDeadline = { done: false, loading: ['default.slow'], deadline: new Date(NOW.getTime() + 1000).toISOString() };
    const pastDeadline = { ...nearDeadline, deadline: new Date(NOW.getTime() - 1000).toISOString() };
    const near = new LoadingMilvus({ slow: Infinity });
    const past = new LoadingMilvus({ slow: Infinity });

    const round = await checkValidation(near as unknown as MilvusClient, rowsOf('slow'), nearDeadline, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: fakeClock(NOW) });
    const late = checkValidation(past as unknown as MilvusClient, rowsOf('slow'), pastDeadline, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: fakeClock(NOW) });

    expect(round.progress).toEqual(nearDeadline);
    expect(near.polls('slow')).toBe(1 + 1000 / LOAD_POLL_MS);
    await expect(late).rejects.toBeInstanceOf(ValidationTimeoutError);
    await expect(late).rejects.toThrow(/default\.slow were still loading at the validation deadline/);
    expect(past.polls('slow')).toBe(1);
  });
});

describe('asking for loads', () => {
  it('asks for the load of every collection before any wait, however many there are', async () => {
    const names = Array.from({ length: VALIDATION_CONCURRENCY + 3 }, (_, i) => `c${i}`);
    const milvus = new LoadingMilvus(Object.fromEntries(names.map((n) => [n, 3])));
    const clock = fakeClock(NOW);
    const loadsAtFirstSleep: string[] = [];
    const wait: LoadWait = {
      ...clock,
      sleep: async (ms) => {
        if (loadsAtFirstSleep.length === 0) loadsAtFirstSleep.push(...milvus.log.filter((l) => l.startsWith('load ')));
        await clock.sleep(ms);
      },
    };

    const result = await checkValidation(milvus as unknown as MilvusClient, rowsOf(...names), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: wait });

    expect(loadsAtFirstSleep.sort()).toEqual(names.map((n) => `load ${n}`).sort());
    expect(result.progress.done).toBe(true);
    expect(result.checks!.every((c) => c.ok)).toBe(true);
    expect(clock.elapsedMs()).toBe(3 * LOAD_POLL_MS);
  });

  it('polls every collection still loading in one poll per interval', async () => {
    const milvus = new LoadingMilvus({ a: 2, b: 4, c: 6, d: 8, e: 10, f: 12 });
    const clock = fakeClock(NOW);

    await checkValidation(milvus as unknown as MilvusClient, rowsOf('a', 'b', 'c', 'd', 'e', 'f'), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: clock });

    expect(clock.elapsedMs()).toBe(12 * LOAD_POLL_MS);
    expect(milvus.polls('f')).toBe(1 + 12);
  });
});

describe('a failed check ends the round', () => {
  it('fails a round with a count mismatch at once, without waiting for another collection still loading', async () => {
    const milvus = new LoadingMilvus({ wrong: 0, slow: Infinity });
    const clock = fakeClock(NOW);
    const rows = [...rowsOf('wrong').map((e) => ({ ...e, rows: 11 })), ...rowsOf('slow')];

    const result = await checkValidation(milvus as unknown as MilvusClient, rows, { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: clock });

    expect(result.progress.done).toBe(true);
    expect(result.checks).toEqual([expect.objectContaining({ collection: 'wrong', ok: false, restored: 10, problem: 'expected 11 rows, restored 10' })]);
    expect(validationFailure(result.checks!)).toBeInstanceOf(RestoreValidationFailedError);
    // The check runs while the poll loop sleeps: the round ends at the first poll after it failed.
    expect(clock.elapsedMs()).toBeLessThanOrEqual(2 * LOAD_POLL_MS);
    expect(milvus.polls('slow')).toBeLessThanOrEqual(3);
  });

  it('fails a round with a missing collection without waiting for the loads of the others', async () => {
    const milvus = new LoadingMilvus({ slow: Infinity, ready: 0 });
    const clock = fakeClock(NOW);

    const result = await checkValidation(milvus as unknown as MilvusClient, rowsOf('gone', 'slow', 'ready'), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: clock });

    expect(result.checks!.map((c) => `${c.collection}:${c.ok}`)).toEqual(['gone:false', 'ready:true']);
    expect(clock.elapsedMs()).toBe(0);
  });
});

describe('a load Milvus cancelled', () => {
  it('asks again for the load of a collection whose load state Milvus answers with the failed load (2.4 to 2.6)', async () => {
    const milvus = new LoadingMilvus({ failed: 2 });
    const loadState = milvus.loadState.bind(milvus);
    let first = true;
    milvus.loadState = async (db, name) => {
      if (!first) return loadState(db, name);
      first = false;
      milvus.log.push(`loadState ${name}`);
      throw new MilvusApiError('collections/get_load_state', 65535, 'show collection failed: failed to load segment 7: The specified key does not exist.');
    };

    const result = await checkValidation(milvus as unknown as MilvusClient, rowsOf('failed'), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: fakeClock(NOW) });

    expect(milvus.log.slice(0, 2)).toEqual(['loadState failed', 'load failed']);
    expect(result.checks).toEqual([expect.objectContaining({ collection: 'failed', ok: true })]);
  });
});

/**
 * Yields `n` times to whatever else is ready: long enough that code which ended a round without
 * waiting for a request would have ended it first. No clock and no event-loop turn are involved.
 */
async function yieldTimes(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

const FAILED_LOAD = 'Milvus collections/get_load_state failed with code 65535: show collection failed: failed to load segment 7: The specified key does not exist.';

/** A LoadingMilvus whose load state answers the error of a failed load while `loadFailed` (querycoord cancelled the load); a load request clears it. */
class FailingLoadMilvus extends LoadingMilvus {
  loadFailed = true;
  override async loadState(db: string, name: string): Promise<LoadState> {
    if (!this.loadFailed) return super.loadState(db, name);
    this.log.push(`loadState ${name}`);
    throw new MilvusApiError('collections/get_load_state', 65535, 'show collection failed: failed to load segment 7: The specified key does not exist.');
  }
  override async load(db: string, name: string): Promise<void> {
    this.loadFailed = false;
    await super.load(db, name);
  }
}

describe('a loaded collection Milvus cannot serve yet', () => {
  it('polls again in the round a collection whose count answers 106 then 503 after its load state said Loaded, and checks it once served', async () => {
    const milvus = new LoadingMilvus({ fresh: 0 });
    const refusals = [new MilvusApiError('entities/query', 106, 'collection on recovering'), new MilvusApiError('entities/query', 503, 'channel not available: no available shard leaders')];
    const countRows = milvus.countRows.bind(milvus);
    milvus.countRows = async (db, name) => {
      const refusal = refusals.shift();
      if (refusal) throw refusal;
      return countRows(db, name);
    };
    const clock = fakeClock(NOW);

    const result = await checkValidation(milvus as unknown as MilvusClient, rowsOf('fresh'), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: clock });

    expect(result.progress.done).toBe(true);
    expect(result.checks).toEqual([expect.objectContaining({ collection: 'fresh', ok: true, restored: 10 })]);
    expect(milvus.polls('fresh')).toBe(3);
    expect(clock.elapsedMs()).toBe(2 * LOAD_POLL_MS);
  });

  it('answers loading, not a failed search, for a collection whose search answers 503 until the wait is spent', async () => {
    const milvus = new LoadingMilvus({ busy: 0 });
    milvus.search = async () => {
      throw new MilvusApiError('entities/search', 503, 'channel not available: no available shard leaders');
    };

    const result = await checkValidation(milvus as unknown as MilvusClient, rowsOf('busy'), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: { ...fakeClock(NOW), seconds: 2 } });

    expect(result.checks).toBeUndefined();
    expect(result.progress).toEqual({
      done: false,
      loading: ['default.busy'],
      deadline: '2026-11-23T02:06:00.000Z',
      loadErrors: { 'default.busy': 'Milvus entities/search failed with code 503: channel not available: no available shard leaders' },
    });
  });
});

describe('a load that cannot finish', () => {
  it('asks for a load Milvus failed again, even when it fails again with the same error, and keeps the error for a timeout', async () => {
    // The same text can come from a passing fault, and the cached one names whichever segment
    // failed last: an error answered twice is no proof the load cannot finish.
    const milvus = new FailingLoadMilvus({ broken: Infinity });
    const first = await checkValidation(milvus as unknown as MilvusClient, rowsOf('broken'), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 1800, loadWait: { ...fakeClock(NOW), seconds: 1 } });
    milvus.loadFailed = true;
    const later = new Date(NOW.getTime() + 700_000);

    const second = await checkValidation(milvus as unknown as MilvusClient, rowsOf('broken'), first.progress, { validateRowCounts: true, now: later, timeoutSeconds: 1800, loadWait: { ...fakeClock(later), seconds: 1 } });

    expect(first.progress).toEqual(expect.objectContaining({ done: false, loadErrors: { 'default.broken': FAILED_LOAD } }));
    expect(second.progress).toEqual(expect.objectContaining({ done: false, loading: ['default.broken'], loadErrors: { 'default.broken': FAILED_LOAD } }));
    expect(second.checks).toBeUndefined();
    expect(milvus.log.filter((l) => l === 'load broken')).toHaveLength(2);
  });

  it('carries at most 50 errors of at most 300 characters to the next round, and a timeout names 10 collections', async () => {
    const names = Array.from({ length: 60 }, (_, i) => `c${String(i).padStart(2, '0')}`);
    const milvus = new FailingLoadMilvus(Object.fromEntries(names.map((n) => [n, Infinity])));
    const long = `show collection failed: ${'x'.repeat(1000)}`;
    milvus.loadState = async (_db, name) => {
      milvus.log.push(`loadState ${name}`);
      throw new MilvusApiError('collections/get_load_state', 65535, long);
    };

    const first = await checkValidation(milvus as unknown as MilvusClient, rowsOf(...names), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: { ...fakeClock(NOW), seconds: 1 } });
    const late = checkValidation(milvus as unknown as MilvusClient, rowsOf(...names), first.progress, { validateRowCounts: true, now: new Date(NOW.getTime() + 61_000), timeoutSeconds: 60 });

    const errors = Object.values(first.progress.loadErrors ?? {});
    expect(errors).toHaveLength(50);
    expect(errors.every((e) => e.length === 300)).toBe(true);
    const err = (await late.catch((e: unknown) => e)) as ValidationTimeoutError;
    expect(err).toBeInstanceOf(ValidationTimeoutError);
    expect(err.message).toContain('default.c09 and 50 more were still loading');
    expect(err.message).toContain('and 40 more; check the query nodes');
  });

  it('cuts an error an earlier round carried to 300 characters when it carries it on', async () => {
    const milvus = new LoadingMilvus({ slow: Infinity });
    const carried = { done: false, loading: ['default.slow'], deadline: '2026-11-23T02:06:00.000Z', loadErrors: { 'default.slow': 'y'.repeat(1000) } };

    const result = await checkValidation(milvus as unknown as MilvusClient, rowsOf('slow'), carried, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: { ...fakeClock(NOW), seconds: 1 } });

    expect(result.progress.loadErrors).toEqual({ 'default.slow': 'y'.repeat(300) });
  });

  it('names the last error Milvus answered, from an earlier round, in the ValidationTimeout', async () => {
    const milvus = new FailingLoadMilvus({ broken: Infinity });
    const first = await checkValidation(milvus as unknown as MilvusClient, rowsOf('broken'), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: { ...fakeClock(NOW), seconds: 1 } });
    const pastDeadline = new Date(NOW.getTime() + 61_000);

    const late = checkValidation(milvus as unknown as MilvusClient, rowsOf('broken'), first.progress, { validateRowCounts: true, now: pastDeadline, timeoutSeconds: 60, loadWait: fakeClock(pastDeadline) });

    await expect(late).rejects.toBeInstanceOf(ValidationTimeoutError);
    await expect(late).rejects.toThrow(`default.broken were still loading at the validation deadline 2026-11-23T02:06:00.000Z; Milvus last answered default.broken: ${FAILED_LOAD}`);
  });
});

describe('a round and its requests', () => {
  it('sends no queued request once a poll request failed, and throws that error', async () => {
    const names = Array.from({ length: 3 * VALIDATION_CONCURRENCY }, (_, i) => `q${i}`);
    const milvus = new LoadingMilvus(Object.fromEntries(names.map((n) => [n, 2])));
    const refusal = new MilvusApiError('collections/load', 65535, 'the proxy is gone');
    milvus.load = async (_db, name) => {
      milvus.log.push(`load ${name}`);
      throw refusal;
    };

    const round = checkValidation(milvus as unknown as MilvusClient, rowsOf(...names), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: fakeClock(NOW) });

    await expect(round).rejects.toBe(refusal);
    // The first four asked at once; their failure stops the other eight before they are sent.
    expect(milvus.log.filter((l) => l.startsWith('loadState ')).length).toBe(VALIDATION_CONCURRENCY);
  });

  it('stops the round on a poll request rejected without a reason, sending nothing queued behind it', async () => {
    const names = Array.from({ length: 3 * VALIDATION_CONCURRENCY }, (_, i) => `u${i}`);
    const milvus = new LoadingMilvus(Object.fromEntries(names.map((n) => [n, 2])));
    milvus.load = async (_db, name) => {
      milvus.log.push(`load ${name}`);
      throw undefined; // what a broken client library could reject with
    };

    const outcome = await checkValidation(milvus as unknown as MilvusClient, rowsOf(...names), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: fakeClock(NOW) }).then(
      () => 'resolved',
      (err: unknown) => ({ rejectedWith: err }),
    );

    expect(outcome).toEqual({ rejectedWith: undefined });
    expect(milvus.log.filter((l) => l.startsWith('loadState ')).length).toBe(VALIDATION_CONCURRENCY);
  });

  it('polls a loading collection while as many checks as can run are still counting', async () => {
    const names = Array.from({ length: 2 * VALIDATION_CONCURRENCY }, (_, i) => `r${i}`);
    const milvus = new LoadingMilvus({ ...Object.fromEntries(names.map((n) => [n, 0])), slow: 2 });
    // Every count answers only once 'slow' has been polled a second time: with polls queued
    // behind checks the round could not make that poll, and would never end.
    let polledAgain!: () => void;
    const polledTwice = new Promise<void>((resolve) => (polledAgain = resolve));
    const loadState = milvus.loadState.bind(milvus);
    milvus.loadState = async (db, name) => {
      const state = await loadState(db, name);
      if (milvus.polls('slow') === 2) polledAgain();
      return state;
    };
    milvus.countRows = async (_db, name) => {
      milvus.log.push(`count ${name}`);
      await polledTwice;
      milvus.log.push(`counted ${name}`);
      return 10;
    };

    const result = await checkValidation(milvus as unknown as MilvusClient, rowsOf(...names, 'slow'), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: fakeClock(NOW) });

    expect(result.checks!.every((c) => c.ok)).toBe(true);
    const secondSlowPoll = milvus.log.indexOf('loadState slow', milvus.log.indexOf('loadState slow') + 1);
    expect(secondSlowPoll).toBeGreaterThan(-1);
    expect(secondSlowPoll).toBeLessThan(milvus.log.findIndex((l) => l.startsWith('counted ')));
  });

  it('starts no check once the wait is over, and answers those collections as loading', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `r${i}`);
    const milvus = new LoadingMilvus(Object.fromEntries(names.map((n) => [n, 0])));
    const clock = fakeClock(NOW);
    // Every count takes 5 s of the round's 20 s wait.
    milvus.countRows = async (_db, name) => {
      milvus.log.push(`count ${name}`);
      await clock.sleep(5000);
      return 10;
    };

    const result = await checkValidation(milvus as unknown as MilvusClient, rowsOf(...names), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 600, loadWait: clock });

    const counted = names.filter((n) => milvus.log.includes(`count ${n}`));
    expect(counted.length).toBeGreaterThan(0);
    expect(counted.length).toBeLessThan(names.length);
    expect(result.progress.done).toBe(false);
    expect(result.progress.loading).toEqual(names.filter((n) => !counted.includes(n)).map((n) => `default.${n}`));
  });

  it('ends a round whose poll failed only once every request of the poll has answered', async () => {
    const milvus = new LoadingMilvus({ bad: 0, slow: Infinity });
    // 'slow' answers well after 'bad' failed.
    let badFailed!: () => void;
    const failure = new Promise<void>((resolve) => (badFailed = resolve));
    milvus.loadState = async (_db, name) => {
      if (name === 'bad') {
        badFailed();
        throw new Error('socket hang up');
      }
      await failure;
      await yieldTimes(50);
      milvus.log.push(`loadState ${name} answered`);
      return 'LoadStateLoading';
    };

    const round = checkValidation(milvus as unknown as MilvusClient, rowsOf('bad', 'slow'), { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60, loadWait: fakeClock(NOW) });
    round.catch(() => milvus.log.push('round ended'));

    await expect(round).rejects.toThrow('socket hang up');
    expect(milvus.log.indexOf('loadState slow answered')).toBeGreaterThan(-1);
    expect(milvus.log.indexOf('loadState slow answered')).toBeLessThan(milvus.log.indexOf('round ended'));
  });
});

describe('collections the source had released', () => {
  const options = (wait: LoadWait, now = NOW) => ({ validateRowCounts: true, now, timeoutSeconds: 60, loadWait: { ...wait, now: () => new Date(Math.max(wait.now().getTime(), now.getTime())) } });
  /** Indexes in the log of each line, -1 when absent. */
  const at = (milvus: LoadingMilvus, ...lines: string[]): number[] => lines.map((l) => milvus.log.indexOf(l));
  /** Runs rounds as the workflow does, 12 s apart (a round and a WaitForLoad), until done; every round's answer. */
  async function rounds(milvus: LoadingMilvus, rows: RowCount[], start: ValidationProgress = { done: false, loading: [] }, wait = fakeClock(NOW)) {
    const answers: Awaited<ReturnType<typeof checkValidation>>[] = [];
    let progress = start;
    for (let i = 0; !progress.done && i < 20; i++) {
      const now = new Date(NOW.getTime() + i * 12_000);
      answers.push(await checkValidation(milvus as unknown as MilvusClient, rows, progress, options(wait, now)));
      progress = answers.at(-1)!.progress;
    }
    return answers;
  }

  it('first only looks: asks for no load of those the backup counted by get_stats, and answers at once which are released', async () => {
    const milvus = new LoadingMilvus({ a: 2, b: 2, own: 0, other: 2 });
    const rows = [...statsRowsOf('a', 'b', 'own'), ...rowsOf('other')];

    const first = await checkValidation(milvus as unknown as MilvusClient, rows, { done: false, loading: [] }, options(fakeClock(NOW)));
    // A retry of the round gets the same input, and decides the same.
    const retried = await checkValidation(milvus as unknown as MilvusClient, rows, { done: false, loading: [] }, options(fakeClock(NOW)));

    expect(first).toEqual({ progress: { done: false, loading: ['default.own', 'default.other'], deadline: '2026-11-23T02:06:00.000Z', released: ['default.a', 'default.b'], again: true } });
    expect(retried).toEqual(first);
    expect(milvus.log.filter((l) => !l.startsWith('loadState'))).toEqual(['load other']);
  });

  it('loads them one at a time, checks each and releases it once checked, while the loaded ones are checked at once', async () => {
    expect(RELEASED_LOADS_AT_ONCE).toBe(1);
    const milvus = new LoadingMilvus({ a: 2, b: 2, served: 0 });

    const answers = await rounds(milvus, [...statsRowsOf('a', 'b'), ...rowsOf('served')]);

    expect(answers).toHaveLength(2);
    const result = answers[1]!;
    expect(result.progress.done).toBe(true);
    expect(result.checks).toEqual([
      expect.objectContaining({ collection: 'a', countedBy: 'stats', loaded: true, released: true, ok: true }),
      expect.objectContaining({ collection: 'b', countedBy: 'stats', loaded: true, released: true, ok: true }),
      expect.objectContaining({ collection: 'served', countedBy: 'count', loaded: true, ok: true }),
    ]);
    expect(result.checks![2]).not.toHaveProperty('released');
    expect(validationFailure(result.checks!)).toBeUndefined();
    // b's load waits until a is released.
    const [loadA, searchA, releaseA, loadB, releaseB] = at(milvus, 'load a', 'search a', 'release a', 'load b', 'release b');
    expect(loadA).toBeGreaterThan(-1);
    expect(searchA).toBeGreaterThan(loadA);
    expect(releaseA).toBeGreaterThan(searchA);
    expect(loadB).toBeGreaterThan(releaseA);
    expect(releaseB).toBeGreaterThan(loadB);
    expect(milvus.log).not.toContain('release served');
    expect([milvus.loaded('a'), milvus.loaded('b'), milvus.loaded('served')]).toEqual([false, false, true]);
  });

  it('carries those not checked yet and what the checks of the others found to the next round, which reports every check', async () => {
    const milvus = new LoadingMilvus({ a: 1, b: 6 });
    const short = { ...fakeClock(NOW), seconds: 2 };

    const [look, second, third] = await rounds(milvus, statsRowsOf('a', 'b'), undefined, short);

    expect(second!.checks).toBeUndefined();
    // a was checked and released within the second round: the deadline moved to a minute after it began.
    expect(second!.progress).toEqual({ done: false, loading: ['default.b'], deadline: '2026-11-23T02:06:12.000Z', released: ['default.b'], releasedChecked: { 'default.a': { restored: 10, searchHits: 3 } } });
    expect(look!.progress.deadline).toBe('2026-11-23T02:06:00.000Z');
    expect(third!.progress).toEqual({ done: true, loading: [], deadline: '2026-11-23T02:06:24.000Z' });
    expect(third!.checks).toEqual([
      { database: 'default', collection: 'a', expected: 10, restored: 10, countedBy: 'stats', loaded: true, searchHits: 3, released: true, ok: true },
      expect.objectContaining({ collection: 'b', released: true, ok: true }),
    ]);
    expect(milvus.log.filter((l) => l === 'load a')).toHaveLength(1);
    expect([milvus.loaded('a'), milvus.loaded('b')]).toEqual([false, false]);
  });

  it('leaves loaded a collection counted by get_stats that the restored Milvus loads by itself', async () => {
    const milvus = new LoadingMilvus({ own: 0 });

    const answers = await rounds(milvus, statsRowsOf('own'));

    expect(answers.at(-1)!.checks).toEqual([expect.objectContaining({ collection: 'own', ok: true })]);
    expect(answers.at(-1)!.checks![0]).not.toHaveProperty('released');
    expect(milvus.log).not.toContain('release own');
  });

  it('leaves loaded, for inspection, a released collection whose check failed', async () => {
    const milvus = new LoadingMilvus({ a: 1, b: 1 });
    const wrong = statsRowsOf('a', 'b').map((e) => (e.collection === 'a' ? { ...e, rows: 11 } : e));

    const answers = await rounds(milvus, wrong);

    expect(answers.at(-1)!.progress.done).toBe(true);
    expect(answers.at(-1)!.checks).toEqual([expect.objectContaining({ collection: 'a', ok: false })]);
    expect(milvus.log).not.toContain('release a');
    expect(milvus.log).not.toContain('load b');
    expect(milvus.loaded('a')).toBe(true);
  });

  it('fails the round when a release gets no answer, and its retry checks the collection again and releases it', async () => {
    const milvus = new LoadingMilvus({ a: 1 });
    const look = await checkValidation(milvus as unknown as MilvusClient, statsRowsOf('a'), { done: false, loading: [] }, options(fakeClock(NOW)));
    const release = milvus.release.bind(milvus);
    let lost = 1;
    milvus.release = async (db, name) => {
      if (lost-- > 0) throw new Error('socket hang up');
      return release(db, name);
    };

    // The step's retry sends the round's input again.
    const second = checkValidation(milvus as unknown as MilvusClient, statsRowsOf('a'), look.progress, options(fakeClock(NOW)));
    await expect(second).rejects.toThrow(/socket hang up/);
    expect(milvus.loaded('a')).toBe(true);
    const retried = await checkValidation(milvus as unknown as MilvusClient, statsRowsOf('a'), look.progress, options(fakeClock(NOW)));

    expect(retried.checks).toEqual([expect.objectContaining({ collection: 'a', released: true, ok: true })]);
    expect(milvus.log.filter((l) => l === 'load a')).toHaveLength(1);
    expect(milvus.loaded('a')).toBe(false);
  });

  it('passes a collection whose release Milvus refuses, left loaded and said so, and goes on with the next', async () => {
    const milvus = new LoadingMilvus({ a: 1, b: 1 });
    milvus.releaseFailures.set('a', 5);
    milvus.releaseError = () => new MilvusApiError('collections/release', 1401, 'privilege not permitted[user=backup]');

    const answers = await rounds(milvus, statsRowsOf('a', 'b'));

    const checks = answers.at(-1)!.checks!;
    expect(validationFailure(checks)).toBeUndefined();
    expect(checks[0]).toEqual({
      database: 'default',
      collection: 'a',
      expected: 10,
      restored: 10,
      countedBy: 'stats',
      loaded: true,
      searchHits: 3,
      ok: true,
      problem: 'left loaded: the source had it released, but Milvus did not release it again: Milvus collections/release failed with code 1401: privilege not permitted[user=backup]',
    });
    expect(checks[1]).toEqual(expect.objectContaining({ collection: 'b', released: true, ok: true }));
    expect([milvus.loaded('a'), milvus.loaded('b')]).toEqual([true, false]);
    // A refusal is not asked again.
    expect(milvus.log.filter((l) => l === 'release a')).toHaveLength(1);
  });

  it('asks a release Milvus answers with another error again, alone, and leaves the collection loaded after three tries', async () => {
    const milvus = new LoadingMilvus({ a: 1, b: 1 });
    milvus.releaseFailures.set('a', 99);

    const answers = await rounds(milvus, statsRowsOf('a', 'b'));

    const checks = answers.at(-1)!.checks!;
    expect(validationFailure(checks)).toBeUndefined();
    expect(checks[0]).toEqual(expect.objectContaining({ collection: 'a', ok: true, problem: 'left loaded: the source had it released, but Milvus did not release it again: Milvus collections/release failed with code 65535: proxy not healthy' }));
    expect(checks[0]).not.toHaveProperty('released');
    expect(checks[1]).toEqual(expect.objectContaining({ collection: 'b', released: true, ok: true }));
    // Checked once and loaded once: only the release is asked again.
    expect(milvus.log.filter((l) => l.endsWith(' a') && !l.startsWith('loadState'))).toEqual(['load a', 'count a', 'search a', 'release a', 'release a', 'release a']);
  });

  it('asks again for a release Milvus answers with another error, and releases the collection on a later try', async () => {
    const milvus = new LoadingMilvus({ a: 1, b: 1 });
    milvus.releaseFailures.set('a', 2);

    const answers = await rounds(milvus, statsRowsOf('a', 'b'));

    expect(answers.at(-1)!.checks!.map((c) => [c.collection, c.released, c.ok, c.problem])).toEqual([
      ['a', true, true, undefined],
      ['b', true, true, undefined],
    ]);
    expect(milvus.log.filter((l) => l === 'release a')).toHaveLength(3);
    expect(milvus.log.indexOf('load b')).toBeGreaterThan(milvus.log.lastIndexOf('release a'));
    expect([milvus.loaded('a'), milvus.loaded('b')]).toEqual([false, false]);
  });

  it('loads none of those the backup counted by get_stats in a first round that fails at once on a missing collection', async () => {
    const milvus = new LoadingMilvus({ a: 1, b: 1, other: 0 });

    const result = await checkValidation(milvus as unknown as MilvusClient, [...statsRowsOf('a', 'b'), ...rowsOf('other', 'gone')], { done: false, loading: [] }, options(fakeClock(NOW)));

    expect(result.progress.done).toBe(true);
    expect(validationFailure(result.checks!)?.message).toContain('default.gone: missing');
    expect(milvus.log.filter((l) => l.startsWith('load '))).toEqual([]);
  });

  it('starts no released load in a later round that fails at once on a missing collection', async () => {
    const milvus = new LoadingMilvus({ a: 1 });
    const progress = { done: false, loading: [], deadline: '2026-11-23T02:06:00.000Z', released: ['default.a'] };

    const result = await checkValidation(milvus as unknown as MilvusClient, [...statsRowsOf('a'), ...rowsOf('gone')], progress, options(fakeClock(NOW)));

    expect(result.progress.done).toBe(true);
    expect(milvus.log.filter((l) => l.startsWith('load '))).toEqual([]);
  });

  it('never takes for released a collection whose load state Milvus answered with an error at the look: it is loaded and kept', async () => {
    const milvus = new LoadingMilvus({ own: 1 });
    const state = milvus.loadState.bind(milvus);
    let errors = 1;
    milvus.loadState = async (db, name) => {
      if (errors-- > 0) throw new MilvusApiError('collections/get_load_state', 503, 'HTTP 503: service unavailable');
      return state(db, name);
    };

    const answers = await rounds(milvus, statsRowsOf('own'));

    expect(answers[0]!.progress).toEqual({ done: false, loading: ['default.own'], deadline: '2026-11-23T02:06:00.000Z', loadErrors: { 'default.own': 'Milvus collections/get_load_state failed with code 503: HTTP 503: service unavailable' }, again: true });
    expect(answers.at(-1)!.checks).toEqual([expect.objectContaining({ collection: 'own', ok: true })]);
    expect(answers.at(-1)!.checks![0]).not.toHaveProperty('released');
    expect(milvus.log).not.toContain('release own');
    expect(milvus.loaded('own')).toBe(true);
  });

  it('keeps the turn of a released collection Milvus says is loaded but cannot serve yet, and starts no other', async () => {
    const milvus = new LoadingMilvus({ a: 1, b: 1 });
    const count = milvus.countRows.bind(milvus);
    let refusals = 2;
    milvus.countRows = async (db, name) => {
      if (name === 'a' && refusals-- > 0) throw new MilvusApiError('entities/query', 106, 'collection on recovering');
      return count(db, name);
    };

    const answers = await rounds(milvus, statsRowsOf('a', 'b'));

    expect(answers.at(-1)!.checks!.map((c) => [c.collection, c.released, c.ok])).toEqual([
      ['a', true, true],
      ['b', true, true],
    ]);
    expect(milvus.log.indexOf('load b')).toBeGreaterThan(milvus.log.indexOf('release a'));
  });

  it('releases nothing for an execution of older code in flight (a deadline, no released list)', async () => {
    const milvus = new LoadingMilvus({ a: 1 });

    const answers = await rounds(milvus, statsRowsOf('a'), { done: false, loading: ['default.a'], deadline: '2026-11-23T02:06:00.000Z' });

    expect(answers.at(-1)!.checks).toEqual([expect.objectContaining({ collection: 'a', ok: true })]);
    expect(answers.at(-1)!.checks![0]).not.toHaveProperty('released');
    expect(milvus.log).not.toContain('release a');
  });

  it('reports missing a released collection checked in an earlier round that is gone since', async () => {
    const milvus = new LoadingMilvus({ b: 1 });
    const progress = { done: false, loading: [], deadline: '2026-11-23T02:06:00.000Z', released: ['default.b'], releasedChecked: { 'default.a': { restored: 10, searchHits: 3 } } };

    const result = await checkValidation(milvus as unknown as MilvusClient, statsRowsOf('a', 'b'), progress, options(fakeClock(NOW)));

    expect(result.progress.done).toBe(true);
    expect(result.checks).toEqual([expect.objectContaining({ collection: 'a', ok: false, problem: 'missing: database default has no collection a' })]);
  });

  it('names the released collections still waiting for their turn in a ValidationTimeout', async () => {
    const milvus = new LoadingMilvus({ a: Infinity, b: Infinity, c: Infinity });
    const progress = { done: false, loading: ['default.a'], deadline: new Date(NOW.getTime() - 1000).toISOString(), released: ['default.a', 'default.b', 'default.c'] };

    const late = checkValidation(milvus as unknown as MilvusClient, statsRowsOf('a', 'b', 'c'), progress, options(fakeClock(NOW)));

    await expect(late).rejects.toThrow(/default\.a, default\.b, default\.c were still loading at the validation deadline \S+ \(2 of them released at the source, waiting to be loaded 1 at a time\)/);
    expect(milvus.log.filter((l) => l.startsWith('load '))).toEqual(['load a']);
  });
});

describe('a restored simulated Milvus whose source had collections released', () => {
  // The seed records the default database's collections as loaded (querycoord's load info in
  // etcd) and leaves the others released, as a source whose analytics data loads on demand.
  const SPECS = [
    { database: 'default', name: 'served', dim: 4, rows: 30 },
    ...['r1', 'r2', 'r3'].map((name, i) => ({ database: 'analytics', name, dim: 4, rows: 20 + i })),
  ];
  let restored: TempVolumes;
  let rows: RowCount[];

  beforeAll(async () => {
    restored = await tempVolumes();
    await seedMilvusData(restored.volumes, { collections: SPECS });
    // What the backup recorded: count(*) of a loaded collection, get_stats of a released one.
    const state = await readMilvusState(restored.volumes);
    rows = state.collections.map((c) => (c.loadRecorded ? { database: c.database, collection: c.name, rows: c.persistedRows + c.growingRows, confirmedBy: 'count' } : { database: c.database, collection: c.name, rows: c.statsRows, confirmedBy: 'stats' }));
  });

  afterAll(async () => {
    await restored.cleanup();
  });

  it('checks every collection, loading the released ones one at a time, and leaves them released in etcd', async () => {
    const sim = new MilvusSimulator({ volumes: async () => restored.volumes, now: () => NOW });
    const transport = new CountingTransport(sim);
    const milvus = new MilvusClient(new KubeConfig(), { namespace: 'restored', service: 'm-milvus', restPort: 19530, managementPort: 9091 }, transport);
    let t = NOW.getTime();
    // The query nodes' reads are real file reads: a poll's pause lets them finish.
    const wait: LoadWait = { seconds: 20, now: () => new Date(t), sleep: async (ms) => void (await sim.loadsSettled(), (t += ms)) };

    let progress: ValidationProgress = { done: false, loading: [] };
    let checks: CollectionCheck[] | undefined;
    for (let round = 0; !progress.done && round < 10; round++) {
      const now = new Date(t);
      ({ progress, checks } = await checkValidation(milvus, rows, progress, { validateRowCounts: true, now, timeoutSeconds: 600, loadWait: { ...wait, now: () => new Date(t) } }));
    }

    expect(progress.done).toBe(true);
    expect(checks!.map((c) => [`${c.database}.${c.collection}`, c.ok, c.released ?? false])).toEqual([
      ['default.served', true, false],
      ['analytics.r1', true, true],
      ['analytics.r2', true, true],
      ['analytics.r3', true, true],
    ]);
    // Never two released collections loaded at once: each load comes after the release before it.
    const releasedCalls = transport.calls.filter((c) => / analytics\./.test(c) && /^collections\/(load|release) /.test(c));
    expect(releasedCalls).toEqual(['collections/load analytics.r1', 'collections/release analytics.r1', 'collections/load analytics.r2', 'collections/release analytics.r2', 'collections/load analytics.r3', 'collections/release analytics.r3']);
    expect(transport.calls).not.toContain('collections/load default.served');
    // Released in etcd too: a Milvus started again on these volumes has only the source's loaded one loaded.
    const after = await readMilvusState(restored.volumes);
    expect(after.collections.filter((c) => c.loadRecorded).map((c) => c.name)).toEqual(['served']);
    expect(after.collections.filter((c) => c.recordedLoad !== undefined).map((c) => c.name)).toEqual(['served']);
  });
});

describe('validation without the row-count check', () => {
  let empty: TempVolumes;
  beforeAll(async () => {
    empty = await tempVolumes();
    await seedMilvusData(empty.volumes, { collections: [{ database: 'default', name: 'vanished', dim: 4, rows: 0 }, { database: 'default', name: 'cleared', dim: 4, rows: 30 }] });
  });
  afterAll(async () => {
    await empty.cleanup();
  });

  const emptyMilvus = (): MilvusClient =>
    new MilvusClient(new KubeConfig(), { namespace: 'restored', service: 'm-milvus', restPort: 19530, managementPort: 9091 }, new CountingTransport(new MilvusSimulator({ volumes: async () => empty.volumes, now: () => NOW })));

  it('fails a collection restored empty that the backup recorded rows in: its search finds nothing', async () => {
    const recorded: RowCount[] = [{ database: 'default', collection: 'vanished', rows: 1000, confirmedBy: 'count' }];

    const result = await checkValidation(emptyMilvus(), recorded, { done: false, loading: [] }, { validateRowCounts: false, now: NOW, timeoutSeconds: 60 });

    expect(result.checks).toEqual([expect.objectContaining({ collection: 'vanished', restored: 0, ok: false, problem: 'the sample search returned no hits' })]);
  });

  it('passes a collection counted by get_stats (deleted rows included) whose every row was deleted', async () => {
    const sim = new MilvusSimulator({ volumes: async () => empty.volumes, now: () => NOW });
    expect((await rest(sim, '/v2/vectordb/entities/delete', { collectionName: 'cleared', filter: 'id >= 0' })).json.code).toBe(0);
    // Flushed, as a backup flushes first: the search sees the deletions.
    await persist(sim, 'cleared');
    const milvus = new MilvusClient(new KubeConfig(), { namespace: 'restored', service: 'm-milvus', restPort: 19530, managementPort: 9091 }, new CountingTransport(sim));
    expect([await countRows(sim, 'cleared'), await statsRows(sim, 'cleared')]).toEqual([0, 30]);
    const recorded: RowCount[] = [{ database: 'default', collection: 'cleared', rows: 30, confirmedBy: 'stats' }];

    // Counted by get_stats: released, so loaded in a later round of its own (see above).
    let result = await checkValidation(milvus, recorded, { done: false, loading: [] }, { validateRowCounts: false, now: NOW, timeoutSeconds: 60 });
    for (let round = 0; !result.progress.done && round < 5; round++) result = await checkValidation(milvus, recorded, result.progress, { validateRowCounts: false, now: NOW, timeoutSeconds: 60 });

    expect(result.checks).toEqual([expect.objectContaining({ collection: 'cleared', restored: 30, ok: true })]);
  });

  it('passes a collection the backup recorded empty', async () => {
    const recorded: RowCount[] = [{ database: 'default', collection: 'vanished', rows: 0, confirmedBy: 'count' }];

    const result = await checkValidation(emptyMilvus(), recorded, { done: false, loading: [] }, { validateRowCounts: false, now: NOW, timeoutSeconds: 60 });

    expect(result.checks).toEqual([expect.objectContaining({ collection: 'vanished', restored: 0, ok: true })]);
  });
});

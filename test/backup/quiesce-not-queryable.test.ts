import { describe, expect, test } from '@jest/globals';
import { checkFlush, startFlush } from '../../core/backup/quiesce.js';
import { MilvusApiError, type LoadState, type MilvusClient, type PersistTicket } from '../../core/milvus/client.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';

// The row count of a collection whose flush is confirmed while `count(*)` cannot be served yet:
// each code Milvus answers then (core/milvus/client.ts NOT_QUERYABLE_CODES) counts the collection
// by get_stats; any other refusal still fails the step.

const NOW = new Date('2026-03-01T10:00:00Z');
/** The id of `default.docs`: an int64 beyond JavaScript's safe integers, as Milvus's are. */
const ID = '449000000000000001';

/**
 * A Milvus with one flushed collection `default.docs` (120 rows by get_stats), loaded by its load
 * state (or as `loadState` answers), whose count(*) fails with `countError`; `asked` records the calls.
 */
function milvusRefusingCount(countError: Error, loadState: () => Promise<LoadState> = async () => 'LoadStateLoaded', asked: string[] = []): MilvusClient {
  const fake = {
    listDatabases: async () => ['default'],
    listCollections: async () => ['docs'],
    collectionId: async () => ID,
    persist: async (): Promise<PersistTicket> => ({ segmentIds: ['1'], flushTs: '2' }),
    flushed: async () => true,
    loadState: async () => (asked.push('loadState'), loadState()),
    countRows: async () => {
      asked.push('count');
      throw countError;
    },
    persistedRowCount: async () => (asked.push('stats'), 120),
  };
  return fake as unknown as MilvusClient;
}

async function rowCountsWith(countError: Error, loadState?: () => Promise<LoadState>, asked?: string[]) {
  const vault = new InMemoryVaultStore();
  const milvus = milvusRefusingCount(countError, loadState, asked);
  const started = await startFlush({ vault, timings: { flushTimeoutSeconds: 60 } }, milvus, 'b-1', NOW);
  return (await checkFlush({ vault }, milvus, started, NOW)).rowCounts;
}

describe('row counts of a collection whose count(*) cannot be served yet', () => {
  test.each([
    [101, 'collection not loaded'],
    [103, 'collection not fully loaded'],
    [106, 'collection on recovering: loaded collection do not found any channel in target, may be in recovery'],
    [503, 'channel not available: no available shard leaders'],
  ])('count(*) answering %i is counted by get_stats', async (code, message) => {
    const rowCounts = await rowCountsWith(new MilvusApiError('entities/query', code, message));

    expect(rowCounts).toEqual([{ database: 'default', collection: 'docs', collectionId: ID, rows: 120, confirmedBy: 'stats', rowsBeforeFlush: 120 }]);
  });

  test.each([
    ['still loading', async (): Promise<LoadState> => 'LoadStateLoading'],
    ['not loaded', async (): Promise<LoadState> => 'LoadStateNotLoad'],
    ['answered with the failure of a load querycoord gave up on', async (): Promise<LoadState> => Promise.reject(new MilvusApiError('collections/get_load_state', 65535, 'show collection failed: failed to load segment 7'))],
  ])('a collection %s is counted by get_stats without asking count(*), which a loading one would hold until the request deadline', async (_what, loadState) => {
    const asked: string[] = [];

    const rowCounts = await rowCountsWith(new Error('count(*) must not be asked'), loadState, asked);

    expect(rowCounts).toEqual([{ database: 'default', collection: 'docs', collectionId: ID, rows: 120, confirmedBy: 'stats', rowsBeforeFlush: 120 }]);
    // Counted the same way before the flush and once it is confirmed.
    expect(asked).toEqual(['loadState', 'stats', 'loadState', 'stats']);
  });

  test.each([
    ['gets no answer', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
    ['is answered by a proxy in the way (an HTTP status, not a Milvus code)', new MilvusApiError('collections/get_load_state', 502, 'HTTP 502: Bad Gateway', { httpStatus: true })],
  ])('a load state that %s fails the step, not counted by a guess', async (_what, failure) => {
    await expect(rowCountsWith(new Error('not asked'), async () => Promise.reject(failure))).rejects.toBe(failure);
  });

  test('any other refusal of count(*) fails the step', async () => {
    await expect(rowCountsWith(new MilvusApiError('entities/query', 1100, 'invalid parameter'))).rejects.toThrow(/code 1100/);
  });

  test('a count(*) answering collection not found (dropped since its flush was asked for) records no count instead of failing', async () => {
    expect(await rowCountsWith(new MilvusApiError('entities/query', 100, 'collection not found[database=default][collection=docs]'))).toEqual([]);
  });
});

import { describe, expect, test } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { checkFlush, recountRows, startFlush } from '../../core/backup/quiesce.js';
import { MilvusApiError, MilvusClient, MilvusManagementError, type LoadState, type PersistTicket } from '../../core/milvus/client.js';
import type { MilvusAnswer, MilvusCall, MilvusTransport } from '../../core/milvus/transport.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';

// Each collection is counted three times, the same way: before its flush is asked for, once the
// flush is confirmed, and once every snapshot is cut (RecountRows). Milvus takes writes during a
// backup, so the three may differ; a count taken another way (a collection loaded or released in
// between) is left out rather than compared.

const NOW = new Date('2026-03-01T10:00:00Z');
/** The id of `default.docs`: an int64 beyond JavaScript's safe integers, as Milvus's are. */
const ID = '449000000000000001';

/**
 * A Milvus with one collection `default.docs` whose load state and counts each call answers in
 * turn (the last answer repeats); `asked` records the calls.
 */
function milvusAnswering(answers: { loadStates: (LoadState | Error)[]; counts: number[]; stats?: (number | Error)[] }, asked: string[] = []): MilvusClient {
  const next = <T>(list: T[]): T => (list.length > 1 ? list.shift()! : list[0]!);
  const answer = <T>(value: T | Error): T => {
    if (value instanceof Error) throw value;
    return value;
  };
  const fake = {
    listDatabases: async () => ['default'],
    listCollections: async () => ['docs'],
    collectionId: async () => ID,
    persist: async (): Promise<PersistTicket> => (asked.push('persist'), { segmentIds: ['1'], flushTs: '2' }),
    flushed: async () => true,
    loadState: async () => (asked.push('loadState'), answer(next(answers.loadStates))),
    countRows: async () => (asked.push('count'), next(answers.counts)),
    persistedRowCount: async () => (asked.push('stats'), answer(next(answers.stats ?? [0]))),
  };
  return fake as unknown as MilvusClient;
}

/** Runs StartFlush, one CheckFlush and RecountRows against `milvus`. */
async function backUp(milvus: MilvusClient) {
  const vault = new InMemoryVaultStore();
  const started = await startFlush({ vault, timings: { flushTimeoutSeconds: 60 } }, milvus, 'b-1', NOW);
  const flushed = await checkFlush({ vault }, milvus, started, NOW);
  const recount = await recountRows({ vault }, milvus, 'b-1');
  return { flushed: flushed.rowCounts, ...recount };
}

/** StartFlush, CheckFlush and RecountRows, then RecountRows again as a retried Task: its result, and the calls it made (of `asked`). */
async function recountedTwice(milvus: MilvusClient, asked: string[]) {
  const vault = new InMemoryVaultStore();
  await checkFlush({ vault }, milvus, await startFlush({ vault, timings: { flushTimeoutSeconds: 60 } }, milvus, 'b-1', NOW), NOW);
  await recountRows({ vault }, milvus, 'b-1');
  const calls = asked.length;
  const again = await recountRows({ vault }, milvus, 'b-1');
  return { again, callsAgain: asked.length - calls };
}

describe('RecountRows', () => {
  test('records the count before the flush, at the flush and after the snapshots, and names the collection whose count moved', async () => {
    const asked: string[] = [];
    const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100, 110, 125] }, asked);

    const { flushed, rowCounts, summary } = await backUp(milvus);

    // Counted before the flush was asked for.
    expect(asked.slice(0, 3)).toEqual(['loadState', 'count', 'persist']);
    expect(flushed).toEqual([{ database: 'default', collection: 'docs', collectionId: ID, rows: 110, confirmedBy: 'count', rowsBeforeFlush: 100 }]);
    expect(rowCounts).toEqual([{ database: 'default', collection: 'docs', collectionId: ID, rows: 110, confirmedBy: 'count', rowsBeforeFlush: 100, rowsAfterSnapshots: 125 }]);
    expect(summary).toEqual({ collections: 1, counted: 1, moved: ['default.docs: 100 → 110 → 125'], movedCount: 1, uncounted: [], uncountedCount: 0, dropped: [], droppedCount: 0 });
  });

  test('a collection nobody wrote to has three equal counts and moved nowhere', async () => {
    const { rowCounts, summary } = await backUp(milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100] }));

    expect(rowCounts).toEqual([{ database: 'default', collection: 'docs', collectionId: ID, rows: 100, confirmedBy: 'count', rowsBeforeFlush: 100, rowsAfterSnapshots: 100 }]);
    expect(summary).toMatchObject({ counted: 1, moved: [], movedCount: 0 });
  });

  test('a collection released after the flush is not compared by get_stats with a count(*): that count is left out, and the summary says why', async () => {
    const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded', 'LoadStateLoaded', 'LoadStateNotLoad'], counts: [100], stats: [130] });

    const { rowCounts, summary } = await backUp(milvus);

    expect(rowCounts).toEqual([{ database: 'default', collection: 'docs', collectionId: ID, rows: 100, confirmedBy: 'count', rowsBeforeFlush: 100 }]);
    expect(summary).toMatchObject({ counted: 0, uncountedCount: 1, uncounted: ['default.docs: after the snapshots: counted by stats now and by count at the flush (loaded or released since)'] });
  });

  test('a collection loaded between the count before the flush and the flush keeps no count before it', async () => {
    const milvus = milvusAnswering({ loadStates: ['LoadStateNotLoad', 'LoadStateLoaded'], counts: [100], stats: [104] });

    const { rowCounts } = await backUp(milvus);

    expect(rowCounts).toEqual([{ database: 'default', collection: 'docs', collectionId: ID, rows: 100, confirmedBy: 'count', rowsAfterSnapshots: 100 }]);
  });

  test("Milvus's own error for a collection leaves its count out instead of failing the backup", async () => {
    const refused = new MilvusApiError('collections/get_stats', 65535, 'datacoord not healthy');
    // Its load state answers an error too, which is no load state: then get_stats is asked.
    const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded', 'LoadStateLoaded', refused], counts: [100], stats: [refused] });

    const { rowCounts, summary } = await backUp(milvus);

    expect(rowCounts[0]!.rowsAfterSnapshots).toBeUndefined();
    expect(rowCounts[0]!.droppedDuringBackup).toBeUndefined();
    expect(summary.uncounted).toEqual([`default.docs: after the snapshots: Milvus answered: ${refused.message}`]);
  });

  test('a collection Milvus no longer has after the snapshots (dropped since its flush) keeps its count, marked dropped during the backup', async () => {
    for (const gone of [
      new MilvusApiError('collections/get_stats', 100, 'collection not found[database=default][collection=docs]'),
      new MilvusApiError('collections/get_stats', 800, 'database not found[database=default]'),
    ]) {
      const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded', 'LoadStateLoaded', gone], counts: [100], stats: [gone] });

      const { rowCounts, summary } = await backUp(milvus);

      expect(rowCounts).toEqual([{ database: 'default', collection: 'docs', collectionId: ID, rows: 100, confirmedBy: 'count', rowsBeforeFlush: 100, droppedDuringBackup: true }]);
      expect(summary).toMatchObject({ counted: 0, uncounted: [], uncountedCount: 0, droppedCount: 1, dropped: ['default.docs (after its flush: a restore may or may not have it)'] });
    }
  });

  test('a collection dropped before its flush is confirmed is recorded dropped, with no count, and the backup goes on', async () => {
    const gone = new MilvusManagementError('flush state', 'collection not found[database=default][collection=docs]', 100);
    const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100] });
    (milvus as unknown as { flushed: () => Promise<boolean> }).flushed = async () => {
      throw gone;
    };

    const { flushed, rowCounts, summary } = await backUp(milvus);

    expect(flushed).toEqual([]);
    expect(rowCounts).toEqual([]);
    expect(summary).toMatchObject({ collections: 1, counted: 0, uncountedCount: 0, droppedCount: 1, dropped: ['default.docs (before its flush was confirmed: not in the backup)'] });
  });

  test('a collection dropped between its listing and its flush request is not flushed, counted or expected', async () => {
    const asked: string[] = [];
    const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100] }, asked);
    (milvus as unknown as { persist: () => Promise<PersistTicket> }).persist = async () => {
      throw new MilvusManagementError('flush', 'collection not found[database=default][collection=docs]', 100);
    };

    const { flushed, rowCounts, summary } = await backUp(milvus);

    expect(flushed).toEqual([]);
    expect(rowCounts).toEqual([]);
    expect(summary).toMatchObject({ droppedCount: 1, dropped: ['default.docs (before its flush was confirmed: not in the backup)'] });
    // Counted once, before the flush request; never again.
    expect(asked).toEqual(['loadState', 'count']);
  });

  test('a collection dropped and created again under its name after its flush is found dropped by its id, and its new count is not taken for it', async () => {
    const asked: string[] = [];
    const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100, 100, 7] }, asked);
    const ids = [ID, ID, '449000000000000777'];
    (milvus as unknown as { collectionId: () => Promise<string> }).collectionId = async () => (asked.push('id'), ids.length > 1 ? ids.shift()! : ids[0]!);

    const { rowCounts, summary } = await backUp(milvus);

    expect(rowCounts).toEqual([{ database: 'default', collection: 'docs', collectionId: ID, rows: 100, confirmedBy: 'count', rowsBeforeFlush: 100, droppedDuringBackup: true }]);
    expect(summary).toMatchObject({ counted: 0, droppedCount: 1, dropped: ['default.docs (after its flush, and created again under its name: a restore may or may not have it)'] });
    // Counted (the count comes before the id), but its count is not recorded for the old one.
    expect(asked.filter((a) => a === 'count')).toHaveLength(3);
  });

  test('a collection created again under its name before its flush is confirmed is left out of the backup', async () => {
    const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100] });
    const ids = [ID, '449000000000000777'];
    (milvus as unknown as { collectionId: () => Promise<string> }).collectionId = async () => (ids.length > 1 ? ids.shift()! : ids[0]!);

    const { flushed, summary } = await backUp(milvus);

    expect(flushed).toEqual([]);
    expect(summary.dropped).toEqual(['default.docs (before its flush was confirmed, and created again under its name: not in the backup)']);
  });

  test('a retried RecountRows does not look again at a collection it found dropped, even when its name is back', async () => {
    const asked: string[] = [];
    const gone = new MilvusApiError('collections/describe', 100, 'collection not found[database=default][collection=docs]');
    const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100] }, asked);
    const answers: (string | Error)[] = [ID, ID, gone, ID];
    (milvus as unknown as { collectionId: () => Promise<string> }).collectionId = async () => {
      asked.push('id');
      const a = answers.length > 1 ? answers.shift()! : answers[0]!;
      if (a instanceof Error) throw a;
      return a;
    };

    const { again, callsAgain } = await recountedTwice(milvus, asked);

    // Not one call: the name answers with the recorded id again, which a second look would take for the collection.
    expect(callsAgain).toBe(0);
    expect(again.rowCounts[0]).toMatchObject({ droppedDuringBackup: true });
    expect(again.rowCounts[0]!.rowsAfterSnapshots).toBeUndefined();
  });

  test('a describe Milvus refuses (403 of RBAC: DescribeCollection is a global privilege) or answers without an id leaves the id out; the backup goes on', async () => {
    for (const refusal of [
      new MilvusApiError('collections/describe', 403, 'HTTP 403: {"code":1401,"message":"permission deny"}', { httpStatus: true }),
      new MilvusApiError('collections/describe', 1401, 'PrivilegeDescribeCollection: permission deny'),
      undefined,
    ]) {
      const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100, 100, 105] });
      (milvus as unknown as { collectionId: () => Promise<string | undefined> }).collectionId = async () => {
        if (refusal) throw refusal;
        return undefined;
      };

      const { rowCounts, summary } = await backUp(milvus);

      expect(rowCounts).toEqual([{ database: 'default', collection: 'docs', rows: 100, confirmedBy: 'count', rowsBeforeFlush: 100, rowsAfterSnapshots: 105 }]);
      expect(summary).toMatchObject({ counted: 1, droppedCount: 0 });
    }
  });

  test('no answer to describe, or a proxy HTTP error, fails the step (to be retried) rather than losing the id check', async () => {
    for (const failure of [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), new MilvusApiError('collections/describe', 503, 'HTTP 503: upstream connect error', { httpStatus: true })]) {
      const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100] });
      (milvus as unknown as { collectionId: () => Promise<string> }).collectionId = async () => {
        throw failure;
      };

      await expect(backUp(milvus)).rejects.toBe(failure);
    }
  });

  test('a database dropped between its listing and the listing of its collections has none to back up', async () => {
    const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100] });
    Object.assign(milvus, {
      listDatabases: async () => ['default', 'archive'],
      listCollections: async (db: string) => {
        if (db === 'archive') throw new MilvusApiError('collections/list', 800, 'database not found[database=archive]');
        return ['docs'];
      },
    });

    const { rowCounts } = await backUp(milvus);

    expect(rowCounts.map((r) => `${r.database}.${r.collection}`)).toEqual(['default.docs']);
  });

  test('an id Milvus refuses for a reason of its own is left out: the collection is backed up without it', async () => {
    const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100] });
    (milvus as unknown as { collectionId: () => Promise<string> }).collectionId = async () => {
      throw new MilvusApiError('collections/describe', 65535, 'rootcoord not ready');
    };

    const { rowCounts } = await backUp(milvus);

    expect(rowCounts).toEqual([{ database: 'default', collection: 'docs', rows: 100, confirmedBy: 'count', rowsBeforeFlush: 100, rowsAfterSnapshots: 100 }]);
  });

  test('any other failure of the flush or its confirmation still fails the step', async () => {
    for (const [call, failure] of [
      ['persist', new MilvusManagementError('flush', 'rate limit exceeded', 8)],
      ['flushed', new MilvusManagementError('flush state', 'answered HTTP 503: upstream connect error')],
      ['flushed', new MilvusApiError('collections/get_load_state', 404, 'HTTP 404: page not found', { httpStatus: true })],
    ] as const) {
      const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100] });
      (milvus as unknown as Record<string, () => Promise<never>>)[call] = async () => {
        throw failure;
      };

      await expect(backUp(milvus)).rejects.toBe(failure);
    }
  });

  test('a count before the flush that Milvus refuses is left out: the flush is still asked for', async () => {
    const asked: string[] = [];
    const refused = new MilvusApiError('collections/get_stats', 65535, 'datacoord not healthy');
    const milvus = milvusAnswering({ loadStates: ['LoadStateNotLoad'], counts: [0], stats: [refused, 120] }, asked);

    const { flushed, rowCounts, summary } = await backUp(milvus);

    expect(summary.uncounted).toEqual([`default.docs: before the flush: Milvus answered: ${refused.message}`]);
    expect(asked.slice(0, 3)).toEqual(['loadState', 'stats', 'persist']);
    expect(flushed).toEqual([{ database: 'default', collection: 'docs', collectionId: ID, rows: 120, confirmedBy: 'stats' }]);
    expect(rowCounts[0]).toMatchObject({ rows: 120, rowsAfterSnapshots: 120 });
    expect(rowCounts[0]!.rowsBeforeFlush).toBeUndefined();
  });

  test('a retry that counts a collection the first call could not keeps no reason with the count', async () => {
    const refused = new MilvusApiError('collections/get_stats', 65535, 'datacoord not healthy');
    const milvus = milvusAnswering({ loadStates: ['LoadStateNotLoad'], counts: [0], stats: [120, 120, refused, 125] });
    const vault = new InMemoryVaultStore();
    await checkFlush({ vault }, milvus, await startFlush({ vault, timings: { flushTimeoutSeconds: 60 } }, milvus, 'b-1', NOW), NOW);
    const first = await recountRows({ vault }, milvus, 'b-1');

    const again = await recountRows({ vault }, milvus, 'b-1');

    expect(first.summary).toMatchObject({ counted: 0, uncountedCount: 1 });
    expect(again.summary).toMatchObject({ counted: 1, uncountedCount: 0, uncounted: [] });
    expect(again.rowCounts[0]!.rowsAfterSnapshots).toBe(125);
  });

  test('no answer from Milvus, or an HTTP status from a proxy in the way, fails the step', async () => {
    for (const failure of [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), new MilvusApiError('collections/get_load_state', 502, 'HTTP 502: Bad Gateway', { httpStatus: true })]) {
      const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded', 'LoadStateLoaded', failure], counts: [100] });

      await expect(backUp(milvus)).rejects.toBe(failure);
    }
  });

  test('a second call (a retried Task) counts no collection again', async () => {
    const asked: string[] = [];
    const milvus = milvusAnswering({ loadStates: ['LoadStateLoaded'], counts: [100, 110, 125, 999] }, asked);

    const { again, callsAgain } = await recountedTwice(milvus, asked);

    expect(callsAgain).toBe(0);
    expect(again.rowCounts[0]!.rowsAfterSnapshots).toBe(125);
  });
});

describe('the counts a backup takes with count(*)', () => {
  /** Records each call's body and answers count(*) = 7. */
  class RecordingTransport implements MilvusTransport {
    readonly bodies: Record<string, unknown>[] = [];
    async call(call: MilvusCall): Promise<MilvusAnswer> {
      this.bodies.push(JSON.parse(call.body ?? '{}') as Record<string, unknown>);
      return { status: 200, body: JSON.stringify({ code: 0, data: [{ 'count(*)': 7 }] }) };
    }
    async close(): Promise<void> {}
  }

  test("read a collection's id with every digit of the int64, and none from an answer without one", async () => {
    const answers = ['{"code":0,"data":{"collectionName":"docs","collectionID":449000000000000001}}', '{"code":0,"data":{"collectionName":"docs"}}'];
    const transport: MilvusTransport = { call: async () => ({ status: 200, body: answers.shift()! }), close: async () => {} };
    const milvus = new MilvusClient(new KubeConfig(), { namespace: 'ns', service: 'm-milvus', restPort: 19530, managementPort: 9091 }, transport);

    expect(await milvus.collectionId('default', 'docs')).toBe('449000000000000001');
    expect(await milvus.collectionId('default', 'docs')).toBeUndefined();
  });

  test('ask for consistency level Strong, so the last seconds of writes are counted; other counts keep the collection its own level', async () => {
    const transport = new RecordingTransport();
    const milvus = new MilvusClient(new KubeConfig(), { namespace: 'ns', service: 'm-milvus', restPort: 19530, managementPort: 9091 }, transport);

    expect(await milvus.countRows('default', 'docs', { strong: true })).toBe(7);
    expect(await milvus.countRows('default', 'docs')).toBe(7);

    expect(transport.bodies.map((b) => b.consistencyLevel)).toEqual(['Strong', undefined]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { CollectionCheck, RowCount } from '../../core/catalog/record.js';
import { MilvusApiError, type MilvusClient } from '../../core/milvus/client.js';
import { checkNote, checkValidation, validationFailure } from '../../core/restore/validate.js';
import type { ValidationProgress } from '../../core/workflow/restore-state.js';
import { MilvusSimulator, readMilvusState, seedMilvusData } from '../../local/milvus/index.js';
import { countRows, rest, statsRows, tempVolumes, type TempVolumes } from '../local-milvus/helpers.js';
import { simulatorBehindProxy, type SimulatorProxy } from '../local-milvus/proxy-server.js';

// A backup of a Milvus written to while it ran recorded three counts of a collection that differ
// (before its flush, at the flush, after the snapshots): a restore may bring back any count
// between the lowest and the highest (README, "Writes during a backup"). Where they agree, or
// where a record has only the count at the flush, it must bring back exactly that count. The
// product's MilvusClient, through a service proxy, against the simulated Milvus of a seeded,
// restored instance.

const NOW = new Date('2026-11-23T02:05:00.000Z');

let v: TempVolumes;
let sim: MilvusSimulator;
let proxy: SimulatorProxy;
let milvus: MilvusClient;
/** count(*) of `docs` (loaded) and get_stats of `events` (released) on the restored volumes. */
let docs: number;
let events: number;

/** What the backup recorded for `docs`, counted by count(*). */
const docsCount = (counts: Partial<RowCount>): RowCount => ({ database: 'default', collection: 'docs', rows: docs, confirmedBy: 'count', ...counts });

/** Validation rounds until done, each after the loads the one before asked for have settled. */
async function validate(expected: RowCount[]) {
  let progress: ValidationProgress = { done: false, loading: [] };
  for (let round = 0; round < 10; round++) {
    const result = await checkValidation(milvus, expected, progress, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });
    if (result.progress.done) return result.checks!;
    progress = result.progress;
    await sim.loadsSettled();
  }
  throw new Error('validation did not finish in 10 rounds');
}

beforeAll(async () => {
  v = await tempVolumes();
  await seedMilvusData(v.volumes, { collections: [{ database: 'default', name: 'docs', dim: 4, rows: 60 }, { database: 'default', name: 'events', dim: 4, rows: 50 }] });
  sim = new MilvusSimulator({ volumes: async () => v.volumes, now: () => NOW });
  proxy = await simulatorBehindProxy(() => sim);
  milvus = proxy.milvus;
  await rest(sim, '/v2/vectordb/collections/load', { collectionName: 'docs' });
  await sim.loadsSettled();
  docs = await countRows(sim, 'docs');
  events = await statsRows(sim, 'events');
  expect((await readMilvusState(v.volumes)).collections).toHaveLength(2);
});

afterAll(async () => {
  await proxy?.close();
  await v.cleanup();
});

describe('validation of a collection whose count moved during the backup', () => {
  it('passes a restored count between the lowest and the highest of the three, and keeps both ends in the check', async () => {
    const [check] = await validate([docsCount({ rows: docs + 5, rowsBeforeFlush: docs - 3, rowsAfterSnapshots: docs + 9 })]);

    expect(check).toMatchObject({ ok: true, expected: docs + 5, expectedMin: docs - 3, expectedMax: docs + 9, restored: docs });
  });

  it('passes a restored count equal to either end', async () => {
    const [atLowest] = await validate([docsCount({ rows: docs + 5, rowsBeforeFlush: docs, rowsAfterSnapshots: docs + 9 })]);
    const [atHighest] = await validate([docsCount({ rows: docs - 5, rowsBeforeFlush: docs - 9, rowsAfterSnapshots: docs })]);

    expect([atLowest!.ok, atHighest!.ok]).toEqual([true, true]);
  });

  it('fails a restored count one above the highest', async () => {
    const [check] = await validate([docsCount({ rows: docs - 5, rowsBeforeFlush: docs - 9, rowsAfterSnapshots: docs - 1 })]);

    expect(check).toMatchObject({ ok: false, expectedMax: docs - 1 });
  });

  it('fails a restored count outside them, naming the range and that the count moved', async () => {
    const checks = await validate([docsCount({ rows: docs + 5, rowsBeforeFlush: docs + 1, rowsAfterSnapshots: docs + 9 })]);

    expect(checks[0]).toMatchObject({ ok: false, expectedMin: docs + 1, expectedMax: docs + 9, restored: docs });
    expect(validationFailure(checks)!.message).toContain(`default.docs: expected ${docs + 5} (${docs + 1} to ${docs + 9}: written during the backup) rows, restored ${docs}`);
  });

  it('takes the count at the flush as an end too: the range is the lowest and the highest of all three', async () => {
    const [check] = await validate([docsCount({ rows: docs - 2, rowsBeforeFlush: docs + 1, rowsAfterSnapshots: docs + 4 })]);

    expect(check).toMatchObject({ ok: true, expectedMin: docs - 2, expectedMax: docs + 4 });
  });

  it('compares get_stats within the range for a collection the backup counted by get_stats, the live count no higher', async () => {
    const [check] = await validate([{ database: 'default', collection: 'events', rows: events + 2, confirmedBy: 'stats', rowsBeforeFlush: events - 1, rowsAfterSnapshots: events + 4 }]);

    expect(check).toMatchObject({ ok: true, countedBy: 'stats', restored: events, expectedMin: events - 1, expectedMax: events + 4 });
  });
});

describe('validation of a collection whose count did not move', () => {
  it('requires exactly the count when the three agree, and keeps no range in the check', async () => {
    const [passing] = await validate([docsCount({ rowsBeforeFlush: docs, rowsAfterSnapshots: docs })]);
    const [failing] = await validate([docsCount({ rows: docs + 1, rowsBeforeFlush: docs + 1, rowsAfterSnapshots: docs + 1 })]);

    expect(passing).toMatchObject({ ok: true, restored: docs });
    expect(passing!.expectedMin).toBeUndefined();
    expect(failing).toMatchObject({ ok: false, problem: `expected ${docs + 1} rows, restored ${docs}` });
  });

  it('requires exactly the count of a record from before the other counts were taken', async () => {
    const [failing] = await validate([docsCount({ rows: docs + 1 })]);

    expect(failing).toMatchObject({ ok: false, expected: docs + 1, restored: docs });
    expect(failing!.expectedMax).toBeUndefined();
  });
});

describe('validation of a collection dropped during the backup, after its flush', () => {
  it('accepts its absence, as a restore whose etcd was cut after the drop has it, and still checks the others', async () => {
    const checks = await validate([
      docsCount({}),
      { database: 'default', collection: 'old_docs', rows: 70, confirmedBy: 'count', droppedDuringBackup: true },
      { database: 'archive', collection: 'old_events', rows: 30, confirmedBy: 'stats', droppedDuringBackup: true },
    ]);

    expect(checks).toEqual([
      expect.objectContaining({ collection: 'docs', ok: true, restored: docs }),
      { database: 'default', collection: 'old_docs', expected: 70, loaded: false, ok: true, droppedDuringBackup: true },
      { database: 'archive', collection: 'old_events', expected: 30, loaded: false, ok: true, droppedDuringBackup: true },
    ]);
    expect(validationFailure(checks)).toBeUndefined();
  });

  it('checks it as any other when the restore has it (the drop came after the cut)', async () => {
    const [check] = await validate([docsCount({ rows: docs + 1, droppedDuringBackup: true })]);

    expect(check).toMatchObject({ ok: false, restored: docs, problem: `expected ${docs + 1} rows, restored ${docs}` });
    expect(check!.droppedDuringBackup).toBeUndefined();
  });

  it('still fails a missing collection the backup did not see dropped', async () => {
    const checks = await validate([docsCount({}), { database: 'default', collection: 'old_docs', rows: 70, confirmedBy: 'count' }]);

    expect(validationFailure(checks)!.message).toContain('missing: database default has no collection old_docs');
  });
});

describe('a collection dropped during the backup beside one the source had released', () => {
  it('does not stop validation from telling the released one and releasing it again', async () => {
    const eventsCount: RowCount = { database: 'default', collection: 'events', rows: events, confirmedBy: 'stats' };
    // Released, as the source had it (an earlier validation may have left it loaded).
    await rest(sim, '/v2/vectordb/collections/release', { collectionName: 'events' });
    const [alone] = await validate([eventsCount]);
    await rest(sim, '/v2/vectordb/collections/release', { collectionName: 'events' });
    const [beside] = await validate([eventsCount, { database: 'default', collection: 'old_docs', rows: 70, confirmedBy: 'count', droppedDuringBackup: true }]);

    expect(alone).toMatchObject({ ok: true, released: true });
    expect(beside).toEqual(alone);
  });
});

describe('validation of a collection dropped during the backup and created again under its name', () => {
  it('does not count a restored collection of that name with another id, saying why', async () => {
    const checks = await validate([docsCount({ rows: docs + 1, collectionId: '449000000000000777', droppedDuringBackup: true }), { database: 'default', collection: 'events', rows: events, confirmedBy: 'stats' }]);

    expect(checks[0]).toEqual({ database: 'default', collection: 'docs', expected: docs + 1, loaded: false, ok: true, droppedDuringBackup: true, recreatedDuringBackup: true });
    expect(checkNote(checks[0]!)).toBe('dropped and created again during the backup: not the collection backed up, not counted');
    expect(validationFailure(checks)).toBeUndefined();
  });

  it('counts it when it has the id the backup recorded (the drop came after the cut)', async () => {
    // Every digit of the int64, as etcd has it: a rounded id would be another collection's.
    const id = await milvus.collectionId('default', 'docs');
    expect(id).toBe((await readMilvusState(v.volumes, { segmentsOf: () => false })).collections.find((c) => c.name === 'docs')!.id);
    expect(BigInt(id!)).toBeGreaterThan(BigInt(Number.MAX_SAFE_INTEGER));

    const [check] = await validate([docsCount({ rows: docs + 1, collectionId: id, droppedDuringBackup: true })]);

    expect(check).toMatchObject({ ok: false, restored: docs });
  });

  it('does not count a restored namesake with another id the backup did not see dropped (its recount passed over)', async () => {
    const [check] = await validate([docsCount({ rows: docs + 1, collectionId: '449000000000000777' })]);

    expect(check).toMatchObject({ ok: true, droppedDuringBackup: true, recreatedDuringBackup: true });
    expect(check!.restored).toBeUndefined();
  });

  it('checks a collection as any other when the restored Milvus will not tell its id (describe refused under RBAC)', async () => {
    const refusing = Object.assign(Object.create(milvus) as MilvusClient, {
      collectionId: async () => {
        throw new MilvusApiError('collections/describe', 403, 'HTTP 403: permission deny', { httpStatus: true });
      },
    });
    const progress: ValidationProgress = { done: false, loading: [] };

    const { checks } = await checkValidation(refusing, [docsCount({ rows: docs + 1, collectionId: '449000000000000777' })], progress, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });

    expect(checks![0]).toMatchObject({ ok: false, restored: docs });
  });

  it('reads the ids once, in the first round, and carries what it found to the next rounds', async () => {
    let describes = 0;
    const counting = Object.assign(Object.create(milvus) as MilvusClient, {
      collectionId: async (db: string, c: string) => (describes++, milvus.collectionId(db, c)),
    });
    // docs: another id than recorded; events: its own, and released as at the source, so the first
    // round only looks and a second one follows.
    const eventsId = await milvus.collectionId('default', 'events');
    const expected: RowCount[] = [docsCount({ rows: docs + 1, collectionId: '449000000000000777' }), { database: 'default', collection: 'events', rows: events, confirmedBy: 'stats', collectionId: eventsId }];
    await rest(sim, '/v2/vectordb/collections/release', { collectionName: 'events' });

    const first = await checkValidation(counting, expected, { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });
    expect(first.progress).toMatchObject({ done: false, recreated: ['default.docs'], again: true });
    expect(describes).toBe(2);

    let progress = first.progress;
    let checks: CollectionCheck[] | undefined;
    for (let round = 0; round < 10 && !checks; round++) {
      await sim.loadsSettled();
      const next = await checkValidation(counting, expected, progress, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });
      progress = next.progress;
      checks = next.checks;
    }

    expect(describes).toBe(2);
    expect(checks?.[0]).toMatchObject({ collection: 'docs', recreatedDuringBackup: true });
    expect(checks?.[1]).toMatchObject({ collection: 'events', ok: true, restored: events });
  });

  it('reads an id again in the next round when Milvus refused it for a reason that may pass, and not when for privileges', async () => {
    const eventsId = await milvus.collectionId('default', 'events');
    /** A first round (events released as at the source: it only looks), with docs' id refused with `err`. */
    const firstRound = async (err: MilvusApiError) => {
      let describes = 0;
      const client = Object.assign(Object.create(milvus) as MilvusClient, {
        collectionId: async (db: string, c: string) => {
          describes++;
          if (c === 'docs') throw err;
          return milvus.collectionId(db, c);
        },
      });
      await rest(sim, '/v2/vectordb/collections/release', { collectionName: 'events' });
      const expected: RowCount[] = [docsCount({ collectionId: '449000000000000777' }), { database: 'default', collection: 'events', rows: events, confirmedBy: 'stats', collectionId: eventsId }];
      const { progress } = await checkValidation(client, expected, { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });
      await checkValidation(client, expected, progress, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });
      await sim.loadsSettled();
      return { progress, describes };
    };

    const notReady = await firstRound(new MilvusApiError('collections/describe', 65535, 'rootcoord not ready'));
    const denied = await firstRound(new MilvusApiError('collections/describe', 1401, 'PrivilegeDescribeCollection: permission deny'));

    expect(notReady.progress.recreated).toBeUndefined();
    expect(notReady.describes).toBe(4);
    expect(denied.progress.recreated).toEqual([]);
    expect(denied.describes).toBe(2);
  });

  it('reads no id in a round that already failed on a missing collection', async () => {
    let describes = 0;
    const counting = Object.assign(Object.create(milvus) as MilvusClient, { collectionId: async (db: string, c: string) => (describes++, milvus.collectionId(db, c)) });

    const { checks } = await checkValidation(counting, [docsCount({ collectionId: '1' }), { database: 'default', collection: 'gone', rows: 1, confirmedBy: 'count' }], { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });

    expect(validationFailure(checks!)!.message).toContain('missing: database default has no collection gone');
    expect(describes).toBe(0);
  });

  it('fails the round when describe gets no answer or a proxy HTTP error, rather than skipping the check', async () => {
    const failing = Object.assign(Object.create(milvus) as MilvusClient, {
      collectionId: async () => {
        throw new MilvusApiError('collections/describe', 502, 'HTTP 502: Bad Gateway', { httpStatus: true });
      },
    });

    await expect(checkValidation(failing, [docsCount({ collectionId: '449000000000000777' })], { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 })).rejects.toThrow(/HTTP 502/);
  });

  it('fails a restore in which nothing could be checked: every counted collection dropped during the backup', async () => {
    const checks = await validate([{ database: 'default', collection: 'old_docs', rows: 70, confirmedBy: 'count', droppedDuringBackup: true }]);

    expect(checks).toEqual([expect.objectContaining({ ok: true, droppedDuringBackup: true })]);
    expect(validationFailure(checks)).toMatchObject({ name: 'NothingToValidate', message: expect.stringContaining("all 1 of the backup's counted collection(s) were dropped") });
  });
});

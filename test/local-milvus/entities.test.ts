import { describe, expect, test } from '@jest/globals';
import { MilvusSimulator, readMilvusState } from '../../local/milvus/index.js';
import { clock, countRows, managementRequest, rest, seededCopyPerTest, statsRows, type TempVolumes } from './helpers.js';

// Data changed as a client changes it: entities/insert, entities/delete by filter and
// entities/query with filter, limit and outputFields, answered in REST v2's shapes.
const COLLECTIONS = [
  { database: 'default', name: 'docs', dim: 4, rows: 1000, segments: 1 },
  { database: 'analytics', name: 'events', dim: 4, rows: 300 },
];

let v: TempVolumes;
seededCopyPerTest(COLLECTIONS, (copy) => (v = copy));

const NOW = () => new Date('2026-03-01T10:00:00Z');
const simulator = (version = 'v2.5.14') => new MilvusSimulator({ volumes: async () => v.volumes, now: NOW, settings: () => ({ version }) });
const QUERY = '/v2/vectordb/entities/query';

/** Rows with ids 1..n (far below the seeded auto-ids) and a vector. */
const rowsWithIds = (ids: number[]) => ids.map((id) => ({ id, embedding: [id, 0.5, -0.5, 1] }));

async function insert(sim: MilvusSimulator, ids: number[], collectionName = 'docs') {
  return rest(sim, '/v2/vectordb/entities/insert', { collectionName, data: rowsWithIds(ids) });
}

async function query(sim: MilvusSimulator, body: Record<string, unknown>) {
  const res = await rest(sim, QUERY, { collectionName: 'docs', ...body });
  return res.json as { code: number; data?: Record<string, unknown>[]; message?: string };
}

async function flush(sim: MilvusSimulator, collection = 'docs', db = 'default') {
  const body = JSON.stringify({ db_name: db, collection_names: [collection] });
  await sim.handle({ ...managementRequest('/api/v1/persist'), method: 'POST', body: Buffer.from(body) });
  // A flush completes on the next request served (flushDelayMs 0).
  await sim.handle(managementRequest('/healthz'));
}

describe('entities/insert', () => {
  test('a flush seals the growing segment it was asked for: rows inserted and deleted after it are not part of it', async () => {
    const time = clock();
    const sim = new MilvusSimulator({ volumes: async () => v.volumes, now: time.now, flushDelayMs: 1000, settings: () => ({ version: 'v2.5.14' }) });
    await insert(sim, [1, 2, 3]);
    await sim.handle({ ...managementRequest('/api/v1/persist'), method: 'POST', body: Buffer.from(JSON.stringify({ db_name: 'default', collection_names: ['docs'] })) });
    await insert(sim, [4, 5]);
    expect((await rest(sim, '/v2/vectordb/entities/delete', { collectionName: 'docs', filter: 'id in [1]' })).json.code).toBe(0);

    time.advance(1);
    await sim.handle(managementRequest('/healthz'));

    // A Milvus started from the volumes: the flush wrote the rows inserted before it; the later
    // rows are in a growing segment of their own (their keys in the queue), the deletion not flushed.
    const docs = (await readMilvusState(v.volumes)).collections.find((c) => c.name === 'docs')!;
    expect(docs.segments.filter((s) => s.state === 'Growing').map((s) => s.recordedRows)).toEqual([0]);
    expect((await query(simulator(), { filter: 'id in [1, 2, 3, 4, 5]' })).data).toEqual([{ id: '1' }, { id: '2' }, { id: '3' }]);
    // The simulator that took the writes still serves them all, the deletion applied.
    expect((await query(sim, { filter: 'id in [1, 2, 3, 4, 5]' })).data).toEqual([{ id: '2' }, { id: '3' }, { id: '4' }, { id: '5' }]);
  });

  test('answers insertCount and the ids as strings, and count(*) counts the rows at once', async () => {
    const sim = simulator();
    const before = await countRows(sim, 'docs');

    const res = await insert(sim, [1, 2, 3]);

    expect(res.json).toEqual({ code: 0, cost: 0, data: { insertCount: 3, insertIds: ['1', '2', '3'] } });
    expect(await countRows(sim, 'docs')).toBe(before + 3);
  });

  test('appends to a growing segment that a flush persists with the real keys', async () => {
    const sim = simulator();
    const statsBefore = await statsRows(sim, 'docs');
    await insert(sim, [10, 20, 30]);
    const growing = (await readMilvusState(v.volumes)).collections.find((c) => c.name === 'docs')!.growingSegmentIds;
    // get_stats sums the row counts datacoord records (meta.GetNumRowsOfCollection); a growing
    // segment's rows are recorded when a sync writes them, here the flush.
    expect(await statsRows(sim, 'docs')).toBe(statsBefore);

    await flush(sim);

    const after = (await readMilvusState(v.volumes)).collections.find((c) => c.name === 'docs')!;
    expect(after.growingSegmentIds).toEqual([]);
    expect(growing.length).toBeGreaterThan(0);
    expect(await statsRows(sim, 'docs')).toBe(statsBefore + 3);
    // A new simulator has no memory of the insert: the keys come from the volumes.
    expect((await query(simulator(), { filter: 'id in [10, 20, 30]' })).data).toEqual([{ id: '10' }, { id: '20' }, { id: '30' }]);
  });

  test('a row without the vector field answers 1804', async () => {
    const res = await rest(simulator(), '/v2/vectordb/entities/insert', { collectionName: 'docs', data: [{ id: 1 }] });
    expect(res.json.code).toBe(1804);
    expect(res.json.message).toMatch(/^fail to deal the insert data, error: /);
  });

  test('a vector of the wrong dimension answers 1804', async () => {
    const res = await rest(simulator(), '/v2/vectordb/entities/insert', { collectionName: 'docs', data: [{ id: 1, embedding: [1, 2] }] });
    expect(res.json.code).toBe(1804);
  });
});

describe('entities/query', () => {
  test('returns the rows the filter matches with the requested output fields', async () => {
    const sim = simulator();
    await insert(sim, [1, 2, 3, 4, 5]);

    const data = (await query(sim, { filter: 'id >= 2 and id < 5', outputFields: ['id', 'embedding'] })).data;

    expect(data).toEqual([2, 3, 4].map((id) => ({ id: String(id), embedding: [id, 0.5, -0.5, 1] })));
  });

  test('honours limit and offset', async () => {
    const sim = simulator();
    await insert(sim, [1, 2, 3, 4, 5]);

    const data = (await query(sim, { filter: 'id <= 5', limit: 2, offset: 1 })).data;

    expect(data).toEqual([{ id: '2' }, { id: '3' }]);
  });

  test('supports in, not in, or, not and parentheses', async () => {
    const sim = simulator();
    await insert(sim, [1, 2, 3, 4, 5, 6]);
    const ids = async (filter: string) => ((await query(sim, { filter })).data ?? []).map((r) => r.id);

    expect(await ids('id in [1, 3, 5]')).toEqual(['1', '3', '5']);
    expect(await ids('id < 7 && id not in [1, 3, 5]')).toEqual(['2', '4', '6']);
    expect(await ids('id == 1 || (id > 4 and id < 100 and not (id == 6))')).toEqual(['1', '5']);
    expect(await ids('id != 2 and id <= 3')).toEqual(['1', '3']);
  });

  test('a limit without a filter returns flushed rows too, the lowest keys first', async () => {
    const data = (await query(simulator(), { limit: 3 })).data!;
    expect(data).toHaveLength(3);
    expect(data.map((r) => BigInt(r.id as string))).toEqual([...data.map((r) => BigInt(r.id as string))].sort((a, b) => (a < b ? -1 : 1)));
  });

  test('count(*) with a limit is refused: count entities with pagination is not allowed', async () => {
    expect(await query(simulator(), { outputFields: ['count(*)'], limit: 10 })).toEqual({ code: 1100, message: 'count entities with pagination is not allowed: invalid parameter' });
  });

  test('count(*) with a filter counts the matching rows', async () => {
    const sim = simulator();
    await insert(sim, [1, 2, 3, 4]);
    expect((await query(sim, { filter: 'id > 2 and id < 100', outputFields: ['count(*)'] })).data).toEqual([{ 'count(*)': 2 }]);
  });

  test('an expression outside the supported subset answers 1100 cannot parse expression', async () => {
    const res = await query(simulator(), { filter: 'id like "1%"' });
    expect(res.code).toBe(1100);
    expect(res.message).toMatch(/^failed to create query plan: cannot parse expression: id like "1%", error: .*: invalid parameter$/);
  });

  test('an unknown field in the filter answers 1100 naming the field', async () => {
    const res = await query(simulator(), { filter: 'price > 3' });
    expect(res.code).toBe(1100);
    expect(res.message).toMatch(/field price not exist/);
  });

  test('a string literal compared with the int64 key is refused', async () => {
    expect((await query(simulator(), { filter: 'id == "1"' })).code).toBe(1100);
  });

  test('an unknown output field answers 1100', async () => {
    expect(await query(simulator(), { filter: 'id > 0', outputFields: ['nope'] })).toEqual({ code: 1100, message: 'field nope not exist: invalid parameter' });
  });

  test('a limit beyond 16384 answers 1100', async () => {
    expect((await query(simulator(), { filter: 'id > 0', limit: 20_000 })).code).toBe(1100);
  });

  test('a collection that is not loaded answers 101', async () => {
    const res = await rest(simulator(), QUERY, { dbName: 'analytics', collectionName: 'events', filter: 'id > 0' });
    expect(res.json.code).toBe(101);
  });
});

describe('entities/delete', () => {
  test('deletes by filter: count(*) drops at once, get_stats does not, before or after the flush', async () => {
    const sim = simulator();
    await insert(sim, [1, 2, 3, 4]);
    await flush(sim);
    const count = await countRows(sim, 'docs');
    const stats = await statsRows(sim, 'docs');

    const res = await rest(sim, '/v2/vectordb/entities/delete', { collectionName: 'docs', filter: 'id in [2, 3]' });
    const countAfter = await countRows(sim, 'docs');
    await flush(sim);

    expect(res.json).toEqual({ code: 0, cost: 0, data: { deleteCount: 2 } });
    expect(countAfter).toBe(count - 2);
    expect(await countRows(sim, 'docs')).toBe(count - 2);
    expect(await statsRows(sim, 'docs')).toBe(stats);
    expect((await query(sim, { filter: 'id < 10' })).data).toEqual([{ id: '1' }, { id: '4' }]);
  });

  test('the deletions are persisted as an L0 segment at the flush', async () => {
    const sim = simulator();
    await insert(sim, [7, 8]);
    await rest(sim, '/v2/vectordb/entities/delete', { collectionName: 'docs', filter: 'id == 8' });
    const l0Before = (await readMilvusState(v.volumes)).collections.find((c) => c.name === 'docs')!.segments.filter((s) => s.level === 'L0').length;

    await flush(sim);

    const after = (await readMilvusState(v.volumes)).collections.find((c) => c.name === 'docs')!;
    expect(after.segments.filter((s) => s.level === 'L0')).toHaveLength(l0Before + 1);
    expect((await query(simulator(), { filter: 'id in [7, 8]' })).data).toEqual([{ id: '7' }]);
  });

  test('2.4 answers an empty data object', async () => {
    const sim = simulator('v2.4.23');
    await insert(sim, [1]);
    expect((await rest(sim, '/v2/vectordb/entities/delete', { collectionName: 'docs', filter: 'id == 1' })).json).toEqual({ code: 0, data: {} });
  });

  test('without a filter answers 1802', async () => {
    expect((await rest(simulator(), '/v2/vectordb/entities/delete', { collectionName: 'docs' })).json.code).toBe(1802);
  });

  test('an invalid filter answers 1100 and deletes nothing', async () => {
    const sim = simulator();
    const count = await countRows(sim, 'docs');
    const res = await rest(sim, '/v2/vectordb/entities/delete', { collectionName: 'docs', filter: 'id >' });
    expect(res.json.code).toBe(1100);
    expect(res.json.message).toMatch(/cannot parse expression: id >, error: /);
    expect(await countRows(sim, 'docs')).toBe(count);
  });
});

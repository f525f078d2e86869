import { describe, expect, test } from '@jest/globals';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MilvusSimulator, readMilvusState } from '../../local/milvus/index.js';
import { metricValue, nearest, rowVector } from '../../local/milvus/search.js';
import { copyOf, rest, seededCopyPerTest, statsRows, type TempVolumes } from './helpers.js';

// `docs` is large enough for a growing segment and deletions; `tiny` has neither.
const COLLECTIONS = [
  { database: 'default', name: 'docs', dim: 16, rows: 5000, segments: 3 },
  { database: 'default', name: 'tiny', dim: 4, rows: 150 },
  { database: 'analytics', name: 'events', dim: 8, rows: 2000 },
];
const NOW = () => new Date('2026-03-01T10:00:00Z');
const SEARCH = '/v2/vectordb/entities/search';

let v: TempVolumes;
seededCopyPerTest(COLLECTIONS, (copy) => (v = copy));

const simulator = (root = v) => new MilvusSimulator({ volumes: async () => root.volumes, now: NOW });
const vector = (dim: number, seed = 1) => Array.from({ length: dim }, (_, i) => Math.sin(seed * (i + 1)));

type Hit = { id: string; distance: number; embedding?: number[] };
async function search(sim: MilvusSimulator, body: Record<string, unknown>) {
  const res = await rest(sim, SEARCH, body);
  return { status: res.status, json: res.json as { code: number; cost?: number; data?: Hit[]; message?: string } };
}

/** Rows persisted in flushed segments minus deletions, as read from the volumes. */
async function persistedRows(name: string): Promise<number> {
  return (await readMilvusState(v.volumes)).collections.find((x) => x.name === name)!.persistedRows;
}

describe('entities/search', () => {
  test('answers limit hits with code 0, a cost and distinct primary keys', async () => {
    const res = await search(simulator(), { collectionName: 'docs', data: [vector(16)], limit: 10, outputFields: [] });

    expect(res.status).toBe(200);
    expect(res.json.code).toBe(0);
    expect(res.json.cost).toBe(0);
    expect(res.json.data).toHaveLength(10);
    expect(new Set(res.json.data!.map((h) => h.id)).size).toBe(10);
    expect(res.json.data!.every((h) => /^\d+$/.test(h.id) && typeof h.distance === 'number')).toBe(true);
  });

  test('ranks COSINE hits by descending similarity', async () => {
    const res = await search(simulator(), { collectionName: 'docs', data: [vector(16)], limit: 50 });

    const distances = res.json.data!.map((h) => h.distance);
    expect(distances.length).toBeGreaterThan(1);
    expect(distances).toEqual([...distances].sort((a, b) => b - a));
    expect(distances.every((d) => d >= -1 && d <= 1)).toBe(true);
  });

  test('returns 100 hits when no limit is given', async () => {
    const res = await search(simulator(), { collectionName: 'docs', data: [vector(16)] });

    expect(res.json.data).toHaveLength(100);
  });

  test('gives the same hits for the same vector and other hits for another', async () => {
    const sim = simulator();
    const first = await search(sim, { collectionName: 'docs', data: [vector(16, 1)], limit: 5 });
    const again = await search(simulator(), { collectionName: 'docs', data: [vector(16, 1)], limit: 5 });
    const other = await search(sim, { collectionName: 'docs', data: [vector(16, 2)], limit: 5 });

    expect(again.json.data).toEqual(first.json.data);
    expect(other.json.data!.map((h) => h.id)).not.toEqual(first.json.data!.map((h) => h.id));
  });

  test('finds every persisted row and no deleted one: a full search returns fewer hits than get_stats, which still counts the deleted rows', async () => {
    const sim = simulator();
    const count = await persistedRows('docs');

    const res = await search(sim, { collectionName: 'docs', data: [vector(16)], limit: 16_384 });

    expect(count).toBeLessThan(5000); // the seed deleted some rows and left some growing
    expect(res.json.data).toHaveLength(count);
    expect(await statsRows(sim, 'docs')).toBeGreaterThan(count);
  });

  test('answers min(limit, live rows) hits for a small collection', async () => {
    const res = await search(simulator(), { collectionName: 'tiny', data: [vector(4)], limit: 1000 });

    expect(res.json.data).toHaveLength(150);
  });

  test('outputs the vector field when asked, with the distance it implies', async () => {
    const query = vector(4);
    const res = await search(simulator(), { collectionName: 'tiny', data: [query], limit: 1, outputFields: ['embedding'] });

    const hit = res.json.data![0]!;
    expect(hit.embedding).toHaveLength(4);
    expect(hit.distance).toBeCloseTo(metricValue('COSINE', query, Float32Array.from(hit.embedding!)), 5);
  });

  test('gives the hits of several query vectors one after another', async () => {
    const res = await search(simulator(), { collectionName: 'docs', data: [vector(16, 1), vector(16, 2)], limit: 3 });

    expect(res.json.data).toHaveLength(6);
  });

  test('answers the same hits on a copy of the volumes (a faithful restore)', async () => {
    const copy = await copyOf(v);
    try {
      const original = await search(simulator(), { collectionName: 'docs', data: [vector(16)], limit: 20 });
      const restored = await search(simulator(copy), { collectionName: 'docs', data: [vector(16)], limit: 20 });

      expect(restored.json.data).toEqual(original.json.data);
    } finally {
      await copy.cleanup();
    }
  });

  test('returns no hits for a collection whose segment data is gone', async () => {
    const c = (await readMilvusState(v.volumes)).collections.find((x) => x.name === 'docs')!;
    for (const drive of v.volumes.minioDirs) await rm(join(drive, 'milvus-bucket', 'file', 'insert_log', c.id), { recursive: true, force: true });

    const res = await search(simulator(), { collectionName: 'docs', data: [vector(16)], limit: 10 });

    expect(res.json).toEqual({ code: 0, cost: 0, data: [] });
  });

  test('a collection that is not loaded answers code 101', async () => {
    const res = await search(simulator(), { dbName: 'analytics', collectionName: 'events', data: [vector(8)] });

    expect(res.json.code).toBe(101);
    expect(res.json.message).toContain('collection not loaded');
  });

  test('searches a collection once it is loaded', async () => {
    const sim = simulator();
    await rest(sim, '/v2/vectordb/collections/load', { dbName: 'analytics', collectionName: 'events' });
    // The load reads the segments in the background; once read, get_load_state says Loaded.
    await sim.loadsSettled();
    expect((await rest(sim, '/v2/vectordb/collections/get_load_state', { dbName: 'analytics', collectionName: 'events' })).json.data).toEqual({ loadState: 'LoadStateLoaded', loadProgress: 100 });

    const res = await search(sim, { dbName: 'analytics', collectionName: 'events', data: [vector(8)], limit: 5 });

    expect(res.json.code).toBe(0);
    expect(res.json.data).toHaveLength(5);
  });

  test('a vector of the wrong dimension answers code 1801 naming both dimensions', async () => {
    const res = await search(simulator(), { collectionName: 'docs', data: [[0.1, 0.2, 0.3]] });

    expect(res.json.code).toBe(1801);
    expect(res.json.message).toContain('dimension: 16, but length of []float: 3');
  });

  test('a body without data answers code 1802', async () => {
    const res = await search(simulator(), { collectionName: 'docs', limit: 3 });

    expect(res.json.code).toBe(1802);
  });

  test('an unknown annsField answers code 1801', async () => {
    const res = await search(simulator(), { collectionName: 'docs', data: [vector(16)], annsField: 'nope' });

    expect(res.json).toMatchObject({ code: 1801, message: expect.stringContaining('cannot find a vector field named: nope') });
  });

  test('a limit outside [1, 16384] answers code 1100', async () => {
    const res = await search(simulator(), { collectionName: 'docs', data: [vector(16)], limit: 0 });

    expect(res.json.code).toBe(1100);
  });

  test('an unknown collection answers code 100', async () => {
    const res = await search(simulator(), { collectionName: 'nope', data: [vector(16)] });

    expect(res.json.code).toBe(100);
  });
});

describe('ranking', () => {
  test('ranks L2 by ascending squared distance and IP by descending product', async () => {
    const keys = [1n, 2n, 3n, 4n, 5n, 6n];
    const query = [0.5, -0.25, 1];

    const l2 = (await nearest('7', keys, query, 6, 'L2')).map((h) => h.distance);
    const ip = (await nearest('7', keys, query, 6, 'IP')).map((h) => h.distance);

    expect(l2).toEqual([...l2].sort((a, b) => a - b));
    expect(ip).toEqual([...ip].sort((a, b) => b - a));
    const v1 = rowVector('7', 1n, 3);
    expect(metricValue('L2', query, v1)).toBeCloseTo(query.reduce((s, q, i) => s + (q - v1[i]!) ** 2, 0), 5);
  });

  test('keeps only the best rows while scanning, with the answer of ranking every row', async () => {
    const keys = Array.from({ length: 3000 }, (_, i) => BigInt(i * 7 + 1));
    const query = Array.from(rowVector('9', 123456789n, 16));
    for (const metric of ['COSINE', 'IP', 'L2'] as const) {
      const ranked = keys
        .map((pk) => ({ pk, distance: metricValue(metric, query, rowVector('9', pk, 16)) }))
        .sort((x, y) => (x.distance !== y.distance ? (metric === 'L2' ? x.distance - y.distance : y.distance - x.distance) : x.pk < y.pk ? -1 : 1));
      for (const limit of [1, 10, 3000, 5000]) {
        const hits = await nearest('9', keys, query, limit, metric);
        expect(hits.map((h) => [h.pk, h.distance])).toEqual(ranked.slice(0, limit).map((h) => [h.pk, h.distance]));
        expect(Array.from(hits[0]!.vector)).toEqual(Array.from(rowVector('9', hits[0]!.pk, 16)));
      }
    }
    expect(await nearest('9', keys, query, 0, 'L2')).toEqual([]);
  });

  test('lets other work run during a long scan, as Milvus answers other requests while it searches', async () => {
    const keys = Array.from({ length: 70_000 }, (_, i) => BigInt(i + 1));
    let ranMeanwhile = false;
    setImmediate(() => {
      ranMeanwhile = true;
    });
    let ranBeforeTheEnd = false;
    await nearest('9', keys, [1, 0, 0, 0], 3, 'IP').then(() => {
      ranBeforeTheEnd = ranMeanwhile;
    });
    expect(ranBeforeTheEnd).toBe(true);
  });
});

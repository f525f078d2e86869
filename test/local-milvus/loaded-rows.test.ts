import { describe, expect, test } from '@jest/globals';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MilvusSimulator, readMilvusState } from '../../local/milvus/index.js';
import { metricValue, nearest, rowVector, type LiveRows } from '../../local/milvus/search.js';
import { copyOf, managementRequest, rest, seededCopyPerTest, type TempVolumes } from './helpers.js';

// A loaded collection's searchable rows are read from the stats and delete logs once, as query
// nodes hold loaded segments, and read again whenever what is searchable changes.
const COLLECTIONS = [{ database: 'default', name: 'docs', dim: 4, rows: 1000, segments: 2 }];
const NOW = () => new Date('2026-03-01T10:00:00Z');
const SEARCH = '/v2/vectordb/entities/search';

let v: TempVolumes;
seededCopyPerTest(COLLECTIONS, (copy) => (v = copy));

/** Every searchable key of `docs`: a search whose limit exceeds its rows. */
async function searchableKeys(sim: MilvusSimulator): Promise<string[]> {
  const res = await rest(sim, SEARCH, { collectionName: 'docs', data: [[1, 0.5, -0.5, 0.25]], limit: 16_384 });
  expect(res.json.code).toBe(0);
  return (res.json.data as { id: string }[]).map((h) => h.id).sort();
}

async function flush(sim: MilvusSimulator): Promise<void> {
  await sim.handle({ ...managementRequest('/api/v1/persist'), method: 'POST', body: Buffer.from(JSON.stringify({ db_name: 'default', collection_names: ['docs'] })) });
  await sim.handle(managementRequest('/healthz')); // a flush completes on the next request served
}

async function removeStatsLogs(root: TempVolumes): Promise<void> {
  const c = (await readMilvusState(root.volumes)).collections.find((x) => x.name === 'docs')!;
  for (const drive of root.volumes.minioDirs) await rm(join(drive, 'milvus-bucket', 'file', 'stats_log', c.id), { recursive: true, force: true });
}

describe('the rows a loaded collection searches', () => {
  test('are read at the first search and held: stats logs removed afterwards change no answer while the segments are the same', async () => {
    const sim = new MilvusSimulator({ volumes: async () => v.volumes, now: NOW });
    const before = await searchableKeys(sim);

    await removeStatsLogs(v);

    expect(before.length).toBeGreaterThan(900);
    expect(await searchableKeys(sim)).toEqual(before);
    // A new Milvus (a restart) loads again and finds no keys without the stats logs.
    expect(await searchableKeys(new MilvusSimulator({ volumes: async () => v.volumes, now: NOW }))).toEqual([]);
  });

  test('include rows a flush persisted after an earlier search', async () => {
    const sim = new MilvusSimulator({ volumes: async () => v.volumes, now: NOW });
    const before = await searchableKeys(sim);
    await rest(sim, '/v2/vectordb/entities/insert', { collectionName: 'docs', data: [7, 8, 9].map((id) => ({ id, embedding: [id, 0, 0, 1] })) });
    expect(await searchableKeys(sim)).toEqual(before); // growing rows are not searchable

    await flush(sim);

    // The flush persists the seeded growing segment's rows as well.
    const after = await searchableKeys(sim);
    expect(after).toEqual(expect.arrayContaining([...before, '7', '8', '9']));
    expect(after.length).toBeGreaterThan(before.length + 3);
  });

  test('lose rows whose deletion a flush persisted after an earlier search', async () => {
    const sim = new MilvusSimulator({ volumes: async () => v.volumes, now: NOW });
    const before = await searchableKeys(sim);
    const gone = before.slice(0, 3);
    await rest(sim, '/v2/vectordb/entities/delete', { collectionName: 'docs', filter: `id in [${gone.join(', ')}]` });

    await flush(sim);

    const after = await searchableKeys(sim);
    expect(after).toEqual(expect.arrayContaining(before.filter((k) => !gone.includes(k))));
    expect(after.filter((k) => gone.includes(k))).toEqual([]);
  });

  test('are gone once the segment binlogs are removed after an earlier search', async () => {
    const sim = new MilvusSimulator({ volumes: async () => v.volumes, now: NOW });
    expect((await searchableKeys(sim)).length).toBeGreaterThan(900);
    const c = (await readMilvusState(v.volumes)).collections.find((x) => x.name === 'docs')!;

    for (const drive of v.volumes.minioDirs) await rm(join(drive, 'milvus-bucket', 'file', 'insert_log', c.id), { recursive: true, force: true });

    expect(await searchableKeys(sim)).toEqual([]);
  });

  test('are read again from other volumes (a new PVC) after an earlier search', async () => {
    const other = await copyOf(v);
    try {
      await removeStatsLogs(other);
      let volumes = v.volumes;
      const sim = new MilvusSimulator({ volumes: async () => volumes, now: NOW });
      expect((await searchableKeys(sim)).length).toBeGreaterThan(900);

      volumes = other.volumes;

      expect(await searchableKeys(sim)).toEqual([]);
    } finally {
      await other.cleanup();
    }
  });

  test('are read again after the instance was down', async () => {
    let up = true;
    const sim = new MilvusSimulator({ volumes: async () => (up ? v.volumes : undefined), now: NOW });
    expect((await searchableKeys(sim)).length).toBeGreaterThan(900);
    await removeStatsLogs(v);
    up = false;
    expect((await sim.handle(managementRequest('/healthz'))).status).toBe(503);

    up = true;

    expect(await searchableKeys(sim)).toEqual([]);
  });
});

describe('nearest over runs of consecutive keys', () => {
  /** Ranks every key by `metric`, ties by key, as the answer must. */
  function ranked(collectionId: string, keys: bigint[], query: number[], metric: 'COSINE' | 'IP' | 'L2'): [bigint, number][] {
    return keys
      .map((pk) => ({ pk, distance: metricValue(metric, query, rowVector(collectionId, pk, query.length)) }))
      .sort((x, y) => (x.distance !== y.distance ? (metric === 'L2' ? x.distance - y.distance : y.distance - x.distance) : x.pk < y.pk ? -1 : 1))
      .map((h) => [h.pk, h.distance]);
  }

  test('gives the answer of ranking every key, across digit carries, deleted rows and listed keys', async () => {
    // 99_999_990…100_000_009 carries into a ninth digit; the second run has deletions.
    const rows: LiveRows = {
      runs: [
        { first: 99_999_990n, count: 20, deletedOffsets: [] },
        { first: 456390711706932590n, count: 40, deletedOffsets: [0, 9, 10, 39] },
      ],
      listed: [5n, 42n, 1_000_000n],
      size: 20 + 36 + 3,
    };
    const keys = [
      ...Array.from({ length: 20 }, (_, i) => 99_999_990n + BigInt(i)),
      ...Array.from({ length: 40 }, (_, i) => i).filter((i) => ![0, 9, 10, 39].includes(i)).map((i) => 456390711706932590n + BigInt(i)),
      5n,
      42n,
      1_000_000n,
    ];
    const query = Array.from(rowVector('456390711705600600', 99_999_999n, 8));
    for (const metric of ['COSINE', 'IP', 'L2'] as const) {
      const all = ranked('456390711705600600', keys, query, metric);
      for (const limit of [1, 5, 59, 100]) {
        const hits = await nearest('456390711705600600', rows, query, limit, metric);
        expect(hits.map((h) => [h.pk, h.distance])).toEqual(all.slice(0, limit));
      }
    }
  });

  test('scores a key whose message is too long for one SHA-256 block as rowVector does', async () => {
    const collectionId = '9'.repeat(40);
    const keys = [1n, 2n, 3n, 456390711706932590n];
    const query = [0.5, -0.25, 1, 0];
    const hits = await nearest(collectionId, { runs: [{ first: 1n, count: 3, deletedOffsets: [] }], listed: [456390711706932590n], size: 4 }, query, 4, 'IP');
    expect(hits.map((h) => [h.pk, h.distance])).toEqual(ranked(collectionId, keys, query, 'IP'));
  });
});

import { describe, expect, test } from '@jest/globals';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MilvusSimulator, readMilvusState } from '../../local/milvus/index.js';
import { copyOf, managementRequest, persist, rest, seededCopyPerTest, type TempVolumes } from './helpers.js';

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

const flush = (sim: MilvusSimulator): Promise<void> => persist(sim, 'docs');

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
    // Rows of the growing segment are searchable before any flush, as a query node searches
    // growing segments from memory.
    expect(await searchableKeys(sim)).toEqual(expect.arrayContaining([...before, '7', '8', '9']));

    await flush(sim);

    // The flush persists the seeded growing segment's rows as well.
    const after = await searchableKeys(sim);
    expect(after).toEqual(expect.arrayContaining([...before, '7', '8', '9']));
    expect(after.length).toBeGreaterThan(before.length + 3);
  });

  test('lose rows deleted since the last flush at once, before any flush (a query node applies a delete as it consumes it)', async () => {
    const sim = new MilvusSimulator({ volumes: async () => v.volumes, now: NOW });
    const before = await searchableKeys(sim);
    const gone = before.slice(0, 3);

    await rest(sim, '/v2/vectordb/entities/delete', { collectionName: 'docs', filter: `id in [${gone.join(', ')}]` });

    const after = await searchableKeys(sim);
    expect(after.filter((k) => gone.includes(k))).toEqual([]);
    expect(after).toEqual(expect.arrayContaining(before.filter((k) => !gone.includes(k))));
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

import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { checkFlush, startFlush } from '../../core/backup/quiesce.js';
import { parseMilvusVersion, type DetectedVersion } from '../../core/milvus/version.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { DEFAULT_MILVUS_VERSION, MilvusSimulator } from '../../local/milvus/index.js';
import { rest, seededCopyPerTest, statsRows, type TempVolumes } from '../local-milvus/helpers.js';
import { simulatorBehindProxy, type SimulatorProxy } from '../local-milvus/proxy-server.js';

// A backup taken while a collection loads: count(*) answers 103 (not fully loaded) then, as it
// answers 101 for a collection not loaded, and the row count comes from get_stats in both cases.
// `events` is not loaded by the seed.
const COLLECTIONS = [
  { database: 'default', name: 'docs', dim: 8, rows: 500 },
  { database: 'analytics', name: 'events', dim: 4, rows: 300 },
];
const NOW = new Date('2026-03-01T10:00:00Z');
const EVENTS = { dbName: 'analytics', collectionName: 'events' };

let v: TempVolumes;
seededCopyPerTest(COLLECTIONS, (copy) => (v = copy));

let sim: MilvusSimulator;
let proxy: SimulatorProxy;
beforeAll(async () => {
  proxy = await simulatorBehindProxy(() => sim);
});
afterAll(async () => {
  await proxy.close();
});

async function backUpRowCounts(backupId: string) {
  const vault = new InMemoryVaultStore();
  const detected: DetectedVersion = { version: parseMilvusVersion(DEFAULT_MILVUS_VERSION), source: 'test' };
  const started = await startFlush({ vault, timings: { flushTimeoutSeconds: 60 } }, proxy.milvus, backupId, NOW, detected);
  return (await checkFlush({ vault }, proxy.milvus, started, NOW)).rowCounts;
}

describe('row counts of a backup taken while a collection loads', () => {
  test('a collection whose load cannot finish (its index files are missing) is counted by get_stats', async () => {
    sim = new MilvusSimulator({ volumes: async () => v.volumes, now: () => NOW, flushDelayMs: 0 });
    for (const drive of v.volumes.minioDirs) await rm(join(drive, 'milvus-bucket', 'file', 'index_files'), { recursive: true, force: true });
    await rest(sim, '/v2/vectordb/collections/load', EVENTS);
    await sim.loadsSettled();
    const query = await rest(sim, '/v2/vectordb/entities/query', { ...EVENTS, filter: '', outputFields: ['count(*)'] });
    expect(query.json.code).toBe(103);
    const before = await statsRows(sim, 'events', 'analytics');

    const rowCounts = await backUpRowCounts('b-loading');

    expect(rowCounts?.find((r) => r.collection === 'events')).toEqual({ database: 'analytics', collection: 'events', collectionId: expect.stringMatching(/^\d{15,}$/), rows: await statsRows(sim, 'events', 'analytics'), confirmedBy: 'stats', rowsBeforeFlush: before });
  });
});

import { describe, expect, test } from '@jest/globals';
import { MilvusSimulator, readMilvusState } from '../../local/milvus/index.js';
import { readEtcd } from '../../local/milvus/etcd-store.js';
import { etcdKeys } from '../../local/milvus/meta.js';
import { clock, managementRequest, rest, seededCopyPerTest, type TempVolumes } from './helpers.js';

// DropCollection as Milvus leaves it until garbage collection has removed its data
// (internal/rootcoord/drop_collection_task.go): the collection is marked dropping, so it is gone
// from list and describe, its load ends, its segments are Dropped for GC (files kept), and a
// Milvus started again from the same etcd does not have it. Dropping one that does not exist
// succeeds.
const COLLECTIONS = [
  { database: 'default', name: 'docs', dim: 4, rows: 400, segments: 1 },
  { database: 'default', name: 'old_docs', dim: 4, rows: 300, segments: 2 },
];
const OLD = { dbName: 'default', collectionName: 'old_docs' };

let v: TempVolumes;
seededCopyPerTest(COLLECTIONS, (copy) => (v = copy));

const simulator = () => new MilvusSimulator({ volumes: async () => v.volumes, now: clock().now, settings: () => ({ version: 'v2.6.10' }) });

/** The state etcd records for each segment of the collection `collectionId`. */
async function segmentStates(collectionId: string): Promise<string[]> {
  const { entries } = await readEtcd(v.volumes.etcdDirs);
  return [...entries].filter(([key]) => key.includes(`/datacoord-meta/s/${collectionId}/`)).map(([, value]) => (JSON.parse(value) as { state: string }).state);
}

describe('collections/drop on the simulated Milvus', () => {
  test('takes the collection out of list, describe and counts, and ends its load', async () => {
    const sim = simulator();
    expect((await rest(sim, '/v2/vectordb/collections/load', OLD)).json.code).toBe(0);

    expect((await rest(sim, '/v2/vectordb/collections/drop', OLD)).json).toEqual({ code: 0, data: {} });

    expect((await rest(sim, '/v2/vectordb/collections/list', { dbName: 'default' })).json.data).toEqual(['docs']);
    for (const path of ['describe', 'get_stats', 'get_load_state']) {
      expect((await rest(sim, `/v2/vectordb/collections/${path}`, OLD)).json.code).toBe(100);
    }
    expect((await rest(sim, '/v2/vectordb/collections/get_load_state', { dbName: 'default', collectionName: 'docs' })).json.code).toBe(0);
  });

  test('marks it dropping and its segments Dropped in one etcd write, and deletes its load info; the other collection is untouched', async () => {
    const sim = simulator();
    await rest(sim, '/v2/vectordb/collections/load', OLD);
    await sim.loadsSettled();
    const before = await readMilvusState(v.volumes);
    const docsBefore = before.collections.find((c) => c.name === 'docs')!;
    const oldId = before.collections.find((c) => c.name === 'old_docs')!.id;
    expect((await segmentStates(oldId)).length).toBeGreaterThan(0);
    expect((await readEtcd(v.volumes.etcdDirs)).entries.has(etcdKeys.loadInfo(oldId))).toBe(true);

    await rest(sim, '/v2/vectordb/collections/drop', OLD);

    const after = await readMilvusState(v.volumes);
    expect(after.revision).toBe(before.revision + 1);
    expect(after.collections.map((c) => c.name)).toEqual(['docs']);
    expect(after.collections[0]!.segments).toEqual(docsBefore.segments);
    expect(new Set(await segmentStates(oldId))).toEqual(new Set(['Dropped']));
    const { entries } = await readEtcd(v.volumes.etcdDirs);
    const info = [...entries].find(([key]) => key.includes('/root-coord/database/collection-info/') && key.endsWith(`/${oldId}`));
    expect(JSON.parse(info![1])).toMatchObject({ state: 'CollectionDropping' });
    expect(entries.has(etcdKeys.loadInfo(oldId))).toBe(false);
    expect((await segmentStates(docsBefore.id)).includes('Dropped')).toBe(false);
  });

  test('is gone for a Milvus started again from the same volumes', async () => {
    await rest(simulator(), '/v2/vectordb/collections/drop', OLD);

    expect((await rest(simulator(), '/v2/vectordb/collections/list', { dbName: 'default' })).json.data).toEqual(['docs']);
  });

  test('succeeds for a collection that does not exist, or is already dropping, changing nothing', async () => {
    const sim = simulator();
    await rest(sim, '/v2/vectordb/collections/drop', OLD);
    const before = await readMilvusState(v.volumes);

    expect((await rest(sim, '/v2/vectordb/collections/drop', { dbName: 'default', collectionName: 'never' })).json.code).toBe(0);
    expect((await rest(sim, '/v2/vectordb/collections/drop', OLD)).json.code).toBe(0);

    expect((await readMilvusState(v.volumes)).revision).toBe(before.revision);
  });

  test("answers a flush state request for a dropped collection's name with collection not found (merr 100)", async () => {
    const sim = simulator();
    const persist = await sim.handle({ ...managementRequest('/api/v1/persist'), method: 'POST', body: Buffer.from(JSON.stringify({ db_name: 'default', collection_names: ['old_docs'] })) });
    expect(persist.status).toBe(200);
    await rest(sim, '/v2/vectordb/collections/drop', OLD);

    const state = await sim.handle({ ...managementRequest('/api/v1/persist/state'), body: Buffer.from(JSON.stringify({ segmentIDs: [], flush_ts: 1, db_name: 'default', collection_name: 'old_docs' })) });

    expect(JSON.parse(state.body.toString('utf8'))).toMatchObject({ status: { code: 100 } });
  });
});

describe('persist/state without a collection name', () => {
  test('looks at the segments only, as the proxy does when it is given no name to resolve', async () => {
    const sim = simulator();
    const state = (body: Record<string, unknown>) => sim.handle({ ...managementRequest('/api/v1/persist/state'), body: Buffer.from(JSON.stringify(body)) });

    const answer = await state({ segmentIDs: [], flush_ts: 1 });

    expect(JSON.parse(answer.body.toString('utf8'))).toEqual({ status: {}, flushed: true });
  });
});

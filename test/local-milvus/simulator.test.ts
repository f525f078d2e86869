import { parse as parseLossless } from 'lossless-json';
import { describe, expect, test } from '@jest/globals';
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MilvusSimulator, readMilvusState, seedMilvusData, type MilvusCall } from '../../local/milvus/index.js';
import { clock, copyOf, countRows, managementRequest, rest, restRequest, seededCopyPerTest, statsRows, tempVolumes, type TempVolumes } from './helpers.js';

const COLLECTIONS = [
  { database: 'default', name: 'docs', dim: 16, rows: 5000, segments: 3 },
  { database: 'analytics', name: 'events', dim: 8, rows: 2000 },
];

// One pristine seeded copy; each test works on its own copy of it.
let v: TempVolumes;
seededCopyPerTest(COLLECTIONS, (copy) => (v = copy));

function simulator(options: Partial<ConstructorParameters<typeof MilvusSimulator>[0]> = {}): MilvusSimulator {
  return new MilvusSimulator({ volumes: async () => v.volumes, now: clock().now, ...options });
}

async function segmentDirOfPk(collection: string): Promise<string[]> {
  // The objects of one sealed segment: every key containing its collection/partition/segment ids.
  const state = await readMilvusState(v.volumes);
  const c = state.collections.find((x) => x.name === collection)!;
  const seg = c.segments.find((s) => s.level === 'L1' && s.state === 'Flushed')!;
  const dirs: string[] = [];
  for (const drive of v.volumes.minioDirs) {
    dirs.push(join(drive, 'milvus-bucket', 'file', 'insert_log', c.id, c.info.partitionIDs[0]!, seg.id));
  }
  return dirs;
}

describe('REST v2 catalogue', () => {
  test('lists databases and the collections of a database', async () => {
    const sim = simulator();
    expect((await rest(sim, '/v2/vectordb/databases/list', {})).json).toEqual({ code: 0, data: ['default', 'analytics'] });
    expect((await rest(sim, '/v2/vectordb/collections/list', { dbName: 'analytics' })).json).toEqual({
      code: 0,
      data: ['events'],
    });
    expect((await rest(sim, '/v2/vectordb/collections/list', {})).json.data).toEqual(['docs']);
  });

  test('describes a collection with its schema', async () => {
    const res = await rest(simulator(), '/v2/vectordb/collections/describe', { collectionName: 'docs' });
    const data = res.json.data as { collectionName: string; fields: { name: string; params: unknown }[]; load: string };
    expect(data.collectionName).toBe('docs');
    expect(data.fields.map((f) => f.name)).toEqual(['id', 'embedding']);
    expect(data.fields[1]!.params).toEqual([{ key: 'dim', value: '16' }]);
    expect(data.load).toBe('LoadStateLoaded');
  });

  test('an unknown collection answers code 100 with HTTP 200', async () => {
    const res = await rest(simulator(), '/v2/vectordb/collections/get_stats', { collectionName: 'nope' });
    expect(res.status).toBe(200);
    expect(res.json.code).toBe(100);
    expect(res.json.message).toMatch(/collection not found.*nope/);
  });

  test('an unknown database answers code 800', async () => {
    const res = await rest(simulator(), '/v2/vectordb/collections/list', { dbName: 'ghost' });
    expect(res.json).toEqual({ code: 800, message: 'database not found[database=ghost]' });
  });

  test('a body that is not JSON answers code 1801', async () => {
    const res = await rest(simulator(), '/v2/vectordb/collections/list', '{not json');
    expect(res.json.code).toBe(1801);
  });

  test('a query with neither a filter nor a limit is refused as Milvus refuses it', async () => {
    const res = await rest(simulator(), '/v2/vectordb/entities/query', { collectionName: 'docs', outputFields: ['id'] });
    expect(res.json).toEqual({ code: 1100, message: 'empty expression should be used with limit: invalid parameter' });
  });
});

describe('row counts come from the volumes', () => {
  test('count(*) equals inserted rows minus deletions, growing rows included', async () => {
    const sim = simulator();
    const state = await readMilvusState(v.volumes);
    const docs = state.collections.find((c) => c.name === 'docs')!;
    const deleted = docs.segments.filter((s) => s.level === 'L0').reduce((n, s) => n + s.rowsOnDisk, 0);
    expect(deleted).toBeGreaterThan(0);
    expect(await countRows(sim, 'docs')).toBe(5000 - deleted);
  });

  test('deleting a segment directory lowers the count and restoring it brings it back', async () => {
    // Prepare
    const sim = simulator();
    const before = await countRows(sim, 'docs');
    const dirs = await segmentDirOfPk('docs');
    const saved = join(v.root, 'saved');
    for (const [i, d] of dirs.entries()) await cp(d, join(saved, String(i)), { recursive: true }).catch(() => undefined);
    // Act
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    const afterLoss = await countRows(sim, 'docs');
    for (const [i, d] of dirs.entries()) await cp(join(saved, String(i)), d, { recursive: true }).catch(() => undefined);
    const afterRestore = await countRows(sim, 'docs');
    // Assess
    expect(afterLoss).toBeLessThan(before);
    expect(afterRestore).toBe(before);
  });

  test('two simulators over different volumes report their own data', async () => {
    const other = await tempVolumes();
    try {
      await seedMilvusData(other.volumes, { collections: [{ database: 'default', name: 'docs', dim: 4, rows: 300 }] });
      const a = simulator();
      const b = new MilvusSimulator({ volumes: async () => other.volumes });
      expect(await countRows(b, 'docs')).not.toBe(await countRows(a, 'docs'));
    } finally {
      await other.cleanup();
    }
  });

  test('an instance whose volumes are gone answers 503', async () => {
    const sim = new MilvusSimulator({ volumes: async () => undefined });
    const res = await sim.handle(managementRequest('/healthz'));
    expect(res.status).toBe(503);
  });

  test('an instance whose etcd members hold no data answers 503', async () => {
    for (const d of v.volumes.etcdDirs) await rm(d, { recursive: true, force: true });
    const res = await simulator().handle(managementRequest('/healthz'));
    expect(res.status).toBe(503);
    expect(String(res.body)).toMatch(/etcd/);
  });

  test('losing one etcd member changes nothing', async () => {
    const sim = simulator();
    const before = await countRows(sim, 'docs');
    await rm(v.volumes.etcdDirs[0]!, { recursive: true, force: true });
    expect(await countRows(sim, 'docs')).toBe(before);
  });
});

describe('flush', () => {
  test('returns before the growing rows are persisted', async () => {
    // Prepare
    const sim = simulator();
    const total = await countRows(sim, 'docs');
    // Act
    const res = await rest(sim, '/v2/vectordb/collections/flush', { collectionName: 'docs' });
    // Assess
    expect(res.json).toEqual({ code: 0, data: {} });
    const state = await readMilvusState(v.volumes);
    const docs = state.collections.find((c) => c.name === 'docs')!;
    expect(docs.growingRows).toBeGreaterThan(0);
    expect(docs.persistedRows).toBeLessThan(total);
  });

  test('on the management port answers the sealed segments and the flush timestamp, and reports it flushed once the datanodes synced, on their own time', async () => {
    const time = clock();
    const sim = simulator({ now: time.now, flushDelayMs: 2000 });
    const total = await countRows(sim, 'docs');
    const growing = (await readMilvusState(v.volumes)).collections.find((c) => c.name === 'docs')!.growingSegmentIds;
    expect(growing.length).toBeGreaterThan(0);

    const res = await sim.handle({ ...managementRequest('/api/v1/persist'), method: 'POST', body: Buffer.from(JSON.stringify({ db_name: 'default', collection_names: ['docs'] })) });
    // int64 numbers, as Go's encoding/json writes them: read without rounding.
    const answer = parseLossless(String(res.body), null, (n: string) => n) as { coll_segIDs: { docs: { data: string[] } }; coll_flush_ts: { docs: string } };
    expect(answer.coll_segIDs.docs.data).toEqual(growing);
    expect(BigInt(answer.coll_flush_ts.docs)).toBeGreaterThan(0n);
    const state = async () => String((await sim.handle({ ...managementRequest('/api/v1/persist/state'), body: Buffer.from(`{"segmentIDs":[${growing.join(',')}],"flush_ts":${answer.coll_flush_ts.docs},"db_name":"default","collection_name":"docs"}`) })).body);

    expect(await state()).toBe('{"status":{}}');
    time.advance(1);
    expect(await state()).toBe('{"status":{}}');
    time.advance(1);
    expect(await state()).toBe('{"status":{},"flushed":true}');
    expect(await countRows(sim, 'docs')).toBe(total);
    expect((await readMilvusState(v.volumes)).collections.find((c) => c.name === 'docs')!.growingRows).toBe(0);
  });

  test("get_stats counts deleted rows until compaction, as datacoord's statistics do; count(*) does not", async () => {
    const sim = simulator();
    await rest(sim, '/v2/vectordb/collections/flush', { collectionName: 'docs' });
    const live = await countRows(sim, 'docs');
    const docs = (await readMilvusState(v.volumes)).collections.find((c) => c.name === 'docs')!;
    expect(docs.growingRows).toBe(0);
    expect(docs.segments.some((s) => s.level === 'L0' && s.rowsOnDisk > 0)).toBe(true);

    expect(await statsRows(sim, 'docs')).toBeGreaterThan(live);
    expect(await statsRows(sim, 'docs')).toBe(docs.statsRows);
  });

  test('persists the flushed rows in the volumes, visible to a fresh simulator', async () => {
    const sim = simulator();
    const total = await countRows(sim, 'docs');
    await rest(sim, '/v2/vectordb/collections/flush', { collectionName: 'docs' });
    await statsRows(sim, 'docs');
    expect(await countRows(simulator(), 'docs')).toBe(total);
    expect((await readMilvusState(v.volumes)).collections.find((c) => c.name === 'docs')!.growingRows).toBe(0);
  });

  test('never completes under the flushNeverCompletes fault', async () => {
    const sim = simulator();
    sim.faults.flushNeverCompletes = true;
    await rest(sim, '/v2/vectordb/collections/flush', { collectionName: 'docs' });
    for (let i = 0; i < 5; i++) expect((await readMilvusState(v.volumes)).collections.find((c) => c.name === 'docs')!.growingRows).toBeGreaterThan(0);
    await statsRows(sim, 'docs');
    expect((await readMilvusState(v.volumes)).collections.find((c) => c.name === 'docs')!.growingRows).toBeGreaterThan(0);
  });

  test('the flush endpoint of blog posts, /api/v1/flush on 9091, does not exist (it is /api/v1/persist)', async () => {
    const sim = simulator();
    const res = await sim.handle({ ...managementRequest('/api/v1/flush'), method: 'POST' });
    expect(res.status).toBe(404);
  });

  test('REST paths are POST only', async () => {
    const sim = simulator();
    const res = await sim.handle({ ...managementRequest('/v2/vectordb/collections/list'), port: 19530 });
    expect(res.status).toBe(404);
  });
});

describe('load', () => {
  test('a query on a collection that is not loaded answers code 101', async () => {
    const res = await rest(simulator(), '/v2/vectordb/entities/query', {
      dbName: 'analytics',
      collectionName: 'events',
      outputFields: ['count(*)'],
    });
    expect(res.json.code).toBe(101);
  });

  test('load is asynchronous and confirmed by get_load_state once the segments are read', async () => {
    const sim = simulator();
    const body = { dbName: 'analytics', collectionName: 'events' };
    expect((await rest(sim, '/v2/vectordb/collections/get_load_state', body)).json.data).toEqual({ loadState: 'LoadStateNotLoad' });
    expect((await rest(sim, '/v2/vectordb/collections/load', body)).json).toEqual({ code: 0, data: {} });
    const loading = (await rest(sim, '/v2/vectordb/collections/get_load_state', body)).json.data as { loadState: string; loadProgress: number };

    await sim.loadsSettled();

    expect(loading.loadState).toBe('LoadStateLoading');
    expect(loading.loadProgress).toBeLessThan(100);
    expect((await rest(sim, '/v2/vectordb/collections/get_load_state', body)).json.data).toEqual({ loadState: 'LoadStateLoaded', loadProgress: 100 });
    expect(await countRows(sim, 'events', 'analytics')).toBeGreaterThan(1900);
  });

  test('searches use the rows the load read, without reading the segments again', async () => {
    const sim = simulator();
    const body = { dbName: 'analytics', collectionName: 'events' };
    await rest(sim, '/v2/vectordb/collections/load', body);
    await sim.loadsSettled();
    // Take the bucket away: a search that read the segments again would find no rows.
    const state = await readMilvusState(v.volumes);
    const events = state.collections.find((c) => c.name === 'events')!;
    for (const drive of v.volumes.minioDirs) await rm(join(drive, 'milvus-bucket', 'file', 'stats_log', events.id), { recursive: true, force: true });

    const res = await rest(sim, '/v2/vectordb/entities/search', { ...body, data: [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]], limit: 3 });

    expect(res.json.code).toBe(0);
    expect(res.json.data).toHaveLength(3);
  });

  test('a second load request while a load reads starts no second read', async () => {
    const sim = simulator();
    const body = { dbName: 'analytics', collectionName: 'events' };
    await rest(sim, '/v2/vectordb/collections/load', body);
    await rest(sim, '/v2/vectordb/collections/load', body);
    await sim.loadsSettled();
    await rest(sim, '/v2/vectordb/collections/load', body);

    const loads = sim.calls.filter((c) => c.path === '/v2/vectordb/collections/load').map((c) => c.detail?.load);
    expect(loads).toEqual(['started', 'already loading', 'already loaded']);
    expect((await rest(sim, '/v2/vectordb/collections/get_load_state', body)).json.data).toEqual({ loadState: 'LoadStateLoaded', loadProgress: 100 });
  });

  /** Loads `events` with its index files gone, and reads its load state until querycoord's timeout has passed. */
  async function cancelledLoad(version?: string) {
    const c = clock();
    const sim = simulator({ now: c.now, ...(version ? { settings: () => ({ version }) } : {}) });
    const body = { dbName: 'analytics', collectionName: 'events' };
    const state = await readMilvusState(v.volumes);
    const events = state.collections.find((x) => x.name === 'events')!;
    for (const drive of v.volumes.minioDirs) await rm(join(drive, 'milvus-bucket', 'file', 'index_files'), { recursive: true, force: true });
    expect(events.segments.length).toBeGreaterThan(0);
    const loadState = async () => {
      const answer = (await rest(sim, '/v2/vectordb/collections/get_load_state', body)).json;
      await sim.loadsSettled(); // querycoord's retry of the failed segments, which fails again
      return answer;
    };

    await rest(sim, '/v2/vectordb/collections/load', body);
    await sim.loadsSettled();
    const stuck = (await loadState()).data as { loadState: string; loadProgress: number };
    const search = await rest(sim, '/v2/vectordb/entities/search', { ...body, data: [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]], limit: 3 });
    c.advance(600);
    const atTimeout = (await loadState()).data as { loadState: string };
    c.advance(1);
    const cancelled = await loadState();
    await rest(sim, '/v2/vectordb/collections/load', body);
    const again = (await loadState()).data as { loadState: string };
    return { stuck, search, atTimeout, cancelled, again };
  }

  test('a load whose segment files are missing stays Loading, never Loaded, until querycoord cancels it', async () => {
    const { stuck, search, atTimeout } = await cancelledLoad();

    expect(stuck.loadState).toBe('LoadStateLoading');
    expect(stuck.loadProgress).toBeLessThan(100);
    expect(search.json.code).toBe(103);
    // querycoord cancels once the time is After UpdatedAt + loadTimeoutSeconds: strictly later.
    expect(atTimeout.loadState).toBe('LoadStateLoading');
  });

  test('on 2.6 a cancelled load answers get_load_state with its failure (show collection failed), and a load request starts over', async () => {
    const { cancelled, again } = await cancelledLoad('v2.6.10');

    expect(cancelled).toMatchObject({ code: 1000, message: expect.stringMatching(/^show collection failed: failed to load segment \d+: .*index_files.*does not exist/) });
    expect(again.loadState).toBe('LoadStateLoading');
  });

  test('on master a cancelled load says NotLoad', async () => {
    const { cancelled } = await cancelledLoad('master-20260301-0a1b2c3');

    expect(cancelled).toEqual({ code: 0, data: { loadState: 'LoadStateNotLoad' } });
  });

  test('querycoord retries a failed segment: the load completes once the missing file is back', async () => {
    const sim = simulator();
    const body = { dbName: 'analytics', collectionName: 'events' };
    const indexFiles = v.volumes.minioDirs.map((drive, i) => ({ at: join(drive, 'milvus-bucket', 'file', 'index_files'), saved: join(v.root, `saved-index-files-${i}`) }));
    for (const f of indexFiles) await cp(f.at, f.saved, { recursive: true, force: true }).catch(() => undefined);
    for (const f of indexFiles) await rm(f.at, { recursive: true, force: true });
    await rest(sim, '/v2/vectordb/collections/load', body);
    await sim.loadsSettled();
    const failed = (await rest(sim, '/v2/vectordb/collections/get_load_state', body)).json.data;
    await sim.loadsSettled();
    for (const f of indexFiles) await cp(f.saved, f.at, { recursive: true }).catch(() => undefined);

    await rest(sim, '/v2/vectordb/collections/get_load_state', body);
    await sim.loadsSettled();

    expect(failed).toMatchObject({ loadState: 'LoadStateLoading' });
    expect((await rest(sim, '/v2/vectordb/collections/get_load_state', body)).json.data).toEqual({ loadState: 'LoadStateLoaded', loadProgress: 100 });
  });
});

describe('load state and the instance', () => {
  const body = { dbName: 'analytics', collectionName: 'events' };

  test('a load in progress when the instance goes down is not completed by the read that ends meanwhile: it loads again once the instance is back', async () => {
    let up = true;
    const sim = simulator({ volumes: async () => (up ? v.volumes : undefined) });
    await rest(sim, '/v2/vectordb/collections/load', body);
    up = false;
    const down = await sim.handle(restRequest('/v2/vectordb/collections/get_load_state', body));
    await sim.loadsSettled();
    up = true;

    // querycoord finds the load info it saved as Loading in etcd and loads the collection again.
    const back = (await rest(sim, '/v2/vectordb/collections/get_load_state', body)).json.data;
    await sim.loadsSettled();

    expect(down.status).toBe(503);
    expect(back).toEqual({ loadState: 'LoadStateLoading', loadProgress: 0 });
    expect((await rest(sim, '/v2/vectordb/collections/get_load_state', body)).json.data).toEqual({ loadState: 'LoadStateLoaded', loadProgress: 100 });
  });

  test('a load that read other volumes than the current ones does not make the collection loaded', async () => {
    const other = await copyOf(v);
    try {
      let volumes = v.volumes;
      const sim = simulator({ volumes: async () => volumes });
      await rest(sim, '/v2/vectordb/collections/load', body);
      volumes = other.volumes;
      await sim.loadsSettled();

      expect((await rest(sim, '/v2/vectordb/collections/get_load_state', body)).json.data).toEqual({ loadState: 'LoadStateNotLoad' });
    } finally {
      await other.cleanup();
    }
  });

  test('a load finished on volumes that changed afterwards is not a load of the new ones', async () => {
    const other = await copyOf(v);
    try {
      let volumes = v.volumes;
      const sim = simulator({ volumes: async () => volumes });
      await rest(sim, '/v2/vectordb/collections/load', body);
      await sim.loadsSettled();
      volumes = other.volumes;

      expect((await rest(sim, '/v2/vectordb/collections/get_load_state', body)).json.data).toEqual({ loadState: 'LoadStateNotLoad' });
    } finally {
      await other.cleanup();
    }
  });
});

describe('garbage collection pause', () => {
  const pause = (seconds: number) =>
    managementRequest('/management/datacoord/garbage_collection/pause', `pause_seconds=${seconds}`);
  const resume = (ticket?: string) =>
    managementRequest('/management/datacoord/garbage_collection/resume', ticket === undefined ? '' : `ticket=${encodeURIComponent(ticket)}`);

  test('pause returns a ticket and pauses until pause_seconds have passed', async () => {
    const c = clock('2026-03-01T10:00:00Z');
    const sim = simulator({ now: c.now });
    const res = await sim.handle(pause(120));
    const body = JSON.parse(String(res.body)) as { msg: string; data: { ticket: string } };
    expect(res.status).toBe(200);
    expect(body.msg).toBe('OK');
    expect(body.data.ticket).toMatch(/^[A-Za-z0-9+/=]{20,}$/);
    expect(sim.gcState()).toEqual({ paused: true, until: '2026-03-01T10:02:00.000Z', tickets: [body.data.ticket] });
  });

  test('the pause expires on its own', async () => {
    const c = clock();
    const sim = simulator({ now: c.now });
    await sim.handle(pause(60));
    c.advance(59);
    expect(sim.gcState().paused).toBe(true);
    c.advance(1);
    expect(sim.gcState()).toEqual({ paused: false, tickets: [] });
  });

  test('resume with a wrong ticket answers OK and keeps GC paused', async () => {
    const sim = simulator();
    await sim.handle(pause(300));
    const res = await sim.handle(resume('bm90LWEtdGlja2V0'));
    expect(res.status).toBe(200);
    expect(JSON.parse(String(res.body))).toEqual({ msg: 'OK' });
    expect(sim.gcState().paused).toBe(true);
    expect(sim.calls.at(-1)!.detail).toMatchObject({ resumed: false, stillPaused: true });
  });

  test('resume without a ticket keeps GC paused', async () => {
    const sim = simulator();
    await sim.handle(pause(300));
    await sim.handle(resume());
    expect(sim.gcState().paused).toBe(true);
  });

  test('resume with the right ticket resumes GC', async () => {
    const sim = simulator();
    const ticket = (JSON.parse(String((await sim.handle(pause(300))).body)) as { data: { ticket: string } }).data.ticket;
    await sim.handle(resume(ticket));
    expect(sim.gcState().paused).toBe(false);
  });

  test('GC stays paused while another lease is held', async () => {
    const sim = simulator();
    const first = (JSON.parse(String((await sim.handle(pause(300))).body)) as { data: { ticket: string } }).data.ticket;
    await sim.handle(pause(300));
    await sim.handle(resume(first));
    expect(sim.gcState().paused).toBe(true);
  });

  test('older Milvus pauses without a ticket and any resume ends the pause', async () => {
    const sim = simulator();
    sim.faults.gcPauseWithoutTicket = true;
    const res = await sim.handle(pause(300));
    expect(JSON.parse(String(res.body))).toEqual({ msg: 'OK' });
    expect(sim.gcState().paused).toBe(true);
    await sim.handle(resume());
    expect(sim.gcState().paused).toBe(false);
  });

  test('an invalid pause_seconds is refused with 500', async () => {
    const res = await simulator().handle(managementRequest('/management/datacoord/garbage_collection/pause', 'pause_seconds=abc'));
    expect(res.status).toBe(500);
  });
});

describe('health, auth and recording', () => {
  test('healthz answers OK, and 500 under the unhealthy fault', async () => {
    const sim = simulator();
    const ok = await sim.handle(managementRequest('/healthz'));
    sim.faults.unhealthy = true;
    const bad = await sim.handle(managementRequest('/healthz'));
    expect([ok.status, ok.body, bad.status]).toEqual([200, 'OK', 500]);
  });

  test('with auth configured, calls without credentials answer 401 code 1800', async () => {
    const sim = simulator({ auth: { username: 'root', password: 'Milvus' } });
    const none = await rest(sim, '/v2/vectordb/databases/list', {});
    const wrong = await rest(sim, '/v2/vectordb/databases/list', {}, { authorization: 'Bearer root:wrong' });
    const right = await rest(sim, '/v2/vectordb/databases/list', {}, { authorization: 'Bearer root:Milvus' });
    expect([none.status, none.json.code]).toEqual([401, 1800]);
    expect([wrong.status, wrong.json.code]).toEqual([401, 1800]);
    expect([right.status, right.json.code]).toEqual([200, 0]);
  });

  test('records every call in order through calls and the record callback', async () => {
    // Prepare
    const seen: MilvusCall[] = [];
    const sim = simulator({ record: (c) => seen.push(c) });
    // Act
    await rest(sim, '/v2/vectordb/collections/flush', { collectionName: 'docs' });
    await rest(sim, '/v2/vectordb/collections/get_stats', { collectionName: 'docs' });
    const paused = await sim.handle(managementRequest('/management/datacoord/garbage_collection/pause', 'pause_seconds=60'));
    const ticket = (JSON.parse(String(paused.body)) as { data: { ticket: string } }).data.ticket;
    await sim.handle(managementRequest('/management/datacoord/garbage_collection/resume', `ticket=${encodeURIComponent(ticket)}`));
    // Assess
    expect(seen).toEqual(sim.calls);
    expect(sim.calls.map((c) => [c.seq, c.port, c.path])).toEqual([
      [1, 19530, '/v2/vectordb/collections/flush'],
      [2, 19530, '/v2/vectordb/collections/get_stats'],
      [3, 9091, '/management/datacoord/garbage_collection/pause'],
      [4, 9091, '/management/datacoord/garbage_collection/resume'],
    ]);
    expect(sim.calls[0]!.detail).toMatchObject({ collection: 'docs', database: 'default', flush: 'accepted' });
    // The flush completed on its own before that next request was served (flushDelayMs 0).
    expect(sim.calls[1]!.detail).toMatchObject({ collection: 'docs', flush: 'none pending', flushedSegments: [expect.any(String)] });
    expect(sim.calls[2]!.detail).toMatchObject({ ticket });
    expect(sim.calls[3]!.detail).toMatchObject({ ticket, resumed: true });
    expect(sim.calls[0]!.at).toBe('2026-03-01T10:00:00.000Z');
  });
});

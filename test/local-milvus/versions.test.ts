import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { checkFlush, describeGcPause, FlushNotConfirmedError, pauseGc, resumeGc, startFlush } from '../../core/backup/quiesce.js';
import { KubeConfig } from '@kubernetes/client-node';
import { MilvusApiError, MilvusClient, MilvusVersionUnsupportedError } from '../../core/milvus/client.js';
import { parseMilvusVersion, type DetectedVersion } from '../../core/milvus/version.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { milvusStateKey } from '../../core/vault/layout.js';
import { MilvusSimulator, readMilvusState } from '../../local/milvus/index.js';
import { countRows, managementRequest, rest, restRequest, seededCopyPerTest, statsRows, type TempVolumes } from './helpers.js';
import { simulatorBehindProxy, type SimulatorProxy } from './proxy-server.js';

// Each Milvus line's flush and GC pause, driven through the product's quiesce functions and
// MilvusClient against the simulated Milvus of that version. `docs` has a growing segment and
// deletions (so get_stats exceeds count(*)); `events` is in a database that is not loaded.
const COLLECTIONS = [
  { database: 'default', name: 'docs', dim: 8, rows: 3000, segments: 2 },
  { database: 'analytics', name: 'events', dim: 4, rows: 1000 },
];
const FLUSH_DELAY_MS = 5_000;
const LINES = [
  ['2.4', 'v2.4.23'],
  ['2.5', 'v2.5.14'],
  ['2.6', 'v2.6.8'],
  ['3.0/master', 'master-20260301-0a1b2c3'],
] as const;

let v: TempVolumes;
seededCopyPerTest(COLLECTIONS, (copy) => (v = copy));

/** A settable clock and a `sleep` that advances it instead of waiting. */
function clock() {
  let t = Date.parse('2026-03-01T10:00:00Z');
  return {
    now: () => new Date(t),
    advance: (ms: number) => (t += ms),
    sleep: async (ms: number) => {
      t += ms;
    },
  };
}

let sim: MilvusSimulator;
let proxy: SimulatorProxy;
beforeAll(async () => {
  proxy = await simulatorBehindProxy(() => sim);
});
afterAll(async () => {
  await proxy.close();
});

function simulatorOf(version: string, c = clock(), flushDelayMs = FLUSH_DELAY_MS): MilvusSimulator {
  sim = new MilvusSimulator({ volumes: async () => v.volumes, now: c.now, sleep: c.sleep, flushDelayMs, settings: () => ({ version }) });
  return sim;
}

const detected = (version: string): DetectedVersion => ({ version: parseMilvusVersion(version), source: 'test' });
const timings = { flushTimeoutSeconds: 60, gcPauseSeconds: 600 };

describe.each(LINES)('Milvus %s (%s)', (_line, version) => {
  test('quiesce confirms the flush through persist/state only once the datanodes finished it', async () => {
    // Prepare
    const c = clock();
    simulatorOf(version, c);
    const vault = new InMemoryVaultStore();
    const before = { docs: await countRows(sim, 'docs'), events: await statsRows(sim, 'events', 'analytics') };
    // Act
    const started = await startFlush({ vault, timings }, proxy.milvus, 'b-1', c.now(), detected(version));
    const early = await checkFlush({ vault }, proxy.milvus, started, c.now());
    c.advance(FLUSH_DELAY_MS);
    const done = await checkFlush({ vault }, proxy.milvus, early.progress, c.now());
    // Assess
    expect(early.progress).toMatchObject({ confirmed: false, pending: 2 });
    expect(done.progress).toMatchObject({ confirmed: true, pending: 0 });
    expect(done.rowCounts).toEqual([
      { database: 'default', collection: 'docs', collectionId: expect.stringMatching(/^\d{15,}$/), rows: await countRows(sim, 'docs'), confirmedBy: 'count', rowsBeforeFlush: before.docs },
      { database: 'analytics', collection: 'events', collectionId: expect.stringMatching(/^\d{15,}$/), rows: await statsRows(sim, 'events', 'analytics'), confirmedBy: 'stats', rowsBeforeFlush: before.events },
    ]);
    const recorded = JSON.parse((await vault.get(milvusStateKey('b-1'))).toString('utf8')) as { milvus: { version: string; flush: string } };
    expect(recorded.milvus).toMatchObject({ version, flush: 'persist' });
  });

  test('a collection with deletes backs up: its flush is confirmed although get_stats exceeds count(*)', async () => {
    const c = clock();
    simulatorOf(version, c, 0);
    const vault = new InMemoryVaultStore();

    const started = await startFlush({ vault, timings }, proxy.milvus, 'b-2', c.now(), detected(version));
    const done = await checkFlush({ vault }, proxy.milvus, started, c.now());

    const docs = done.rowCounts!.find((r) => r.collection === 'docs')!;
    expect(docs.rows).toBe(await countRows(sim, 'docs'));
    expect(await statsRows(sim, 'docs')).toBeGreaterThan(docs.rows);
  });

  test('rows inserted and deleted through REST back up: the flush is confirmed and count(*) records the live rows', async () => {
    const c = clock();
    simulatorOf(version, c, 0);
    const vault = new InMemoryVaultStore();
    const data = [1, 2, 3, 4].map((id) => ({ id, embedding: Array.from({ length: 8 }, (_, i) => i / 8) }));
    const before = await countRows(sim, 'docs');
    await rest(sim, '/v2/vectordb/entities/insert', { collectionName: 'docs', data });
    await rest(sim, '/v2/vectordb/entities/delete', { collectionName: 'docs', filter: 'id in [1, 2]' });
    const live = await countRows(sim, 'docs');
    expect(live).toBe(before + 4 - 2);

    const started = await startFlush({ vault, timings }, proxy.milvus, 'b-4', c.now(), detected(version));
    const done = await checkFlush({ vault }, proxy.milvus, started, c.now());

    expect(done.rowCounts!.find((r) => r.collection === 'docs')).toMatchObject({ rows: live, confirmedBy: 'count' });
    expect(await countRows(sim, 'docs')).toBe(live);
    expect(await statsRows(sim, 'docs')).toBeGreaterThan(live);
  });

  test('a flush that never completes fails with FlushNotConfirmed after the deadline', async () => {
    const c = clock();
    simulatorOf(version, c).faults.flushNeverCompletes = true;
    const vault = new InMemoryVaultStore();

    const started = await startFlush({ vault, timings: { flushTimeoutSeconds: 30 } }, proxy.milvus, 'b-3', c.now(), detected(version));
    c.advance(31_000);
    const failure = await checkFlush({ vault }, proxy.milvus, started, c.now()).catch((err: unknown) => err);

    expect(failure).toBeInstanceOf(FlushNotConfirmedError);
    expect((failure as Error).name).toBe('FlushNotConfirmed');
  });
});

describe('REST v2 databases/list, from 2.4.18', () => {
  test('2.4 before 2.4.18 has no such route (gin: 404 page not found); 2.4.18 lists the databases', async () => {
    const before = await simulatorOf('v2.4.17').handle(restRequest('/v2/vectordb/databases/list', {}));
    const from = await rest(simulatorOf('v2.4.18'), '/v2/vectordb/databases/list', {});

    expect([before.status, String(before.body)]).toEqual([404, '404 page not found']);
    expect(from.json).toEqual({ code: 0, data: ['default', 'analytics'] });
  });

  test('listing the databases of a Milvus before 2.4.18 whose version was not read says what is missing, not a bare 404', async () => {
    simulatorOf('v2.4.17');

    const refused = await proxy.milvus.listDatabases().catch((e: unknown) => e);

    expect(refused).toBeInstanceOf(MilvusVersionUnsupportedError);
    expect((refused as Error).name).toBe('MilvusVersionUnsupported');
    expect((refused as Error).message).toBe('Milvus answered 404 page not found for REST v2 databases/list, which Milvus serves from 2.4.18: upgrade Milvus to 2.4.18 or later');
  });

  test('through the relay (status and body as Milvus answered) the router 404 is named the same way; a 404 Milvus wrote is not', async () => {
    const answering = (status: number, body: string): MilvusClient =>
      new MilvusClient(new KubeConfig(), { namespace: 'vector-db', service: 'm', restPort: 19530, managementPort: 9091 }, { call: async () => ({ status, body }), close: async () => {} });

    await expect(answering(404, '404 page not found').listDatabases()).rejects.toBeInstanceOf(MilvusVersionUnsupportedError);
    const other = await answering(200, '{"code":404,"message":"not the router"}').listDatabases().catch((e: unknown) => e);
    expect(other).toBeInstanceOf(MilvusApiError);
    expect(other).not.toBeInstanceOf(MilvusVersionUnsupportedError);
  });

  test('a backup of a Milvus before 2.4.18 is refused before any call, naming the version, where it was read and what to do', async () => {
    simulatorOf('v2.4.17');
    const vault = new InMemoryVaultStore();

    const refused = await startFlush({ vault, timings }, proxy.milvus, 'b-old', clock().now(), { version: parseMilvusVersion('v2.4.17'), source: 'Milvus vector-db/production-milvus .status.currentVersion' }).catch((e: unknown) => e);

    expect(refused).toBeInstanceOf(MilvusVersionUnsupportedError);
    expect((refused as Error).name).toBe('MilvusVersionUnsupported');
    expect((refused as Error).message).toBe(
      'Milvus v2.4.17 cannot list its databases through REST v2 (databases/list exists from 2.4.18), and a backup must flush and count the collections of every database; upgrade Milvus to 2.4.18 or later (the version is from Milvus vector-db/production-milvus .status.currentVersion); nothing was flushed or paused',
    );
    expect(sim.calls).toEqual([]);
    expect([...vault.objects.keys()]).toEqual([]);
  });
});

describe('REST v2 collections/flush per line', () => {
  const growing = async () => (await readMilvusState(v.volumes)).collections.find((c) => c.name === 'docs')!.growingSegmentIds;

  test('2.4 has no such route: gin answers 404 page not found', async () => {
    const res = await simulatorOf('v2.4.23').handle(restRequest('/v2/vectordb/collections/flush', { collectionName: 'docs' }));
    expect([res.status, String(res.body)]).toEqual([404, '404 page not found']);
  });

  test('2.5 and 2.6 answer at once, before the segments are flushed', async () => {
    for (const version of ['v2.5.14', 'v2.6.8']) {
      const before = await growing();
      const res = await rest(simulatorOf(version), '/v2/vectordb/collections/flush', { collectionName: 'docs' });
      expect(res.json).toEqual({ code: 0, data: {} });
      expect(await growing()).toEqual(before);
      expect(before.length).toBeGreaterThan(0);
    }
  });

  test('3.0/master waits until the flush is complete', async () => {
    const c = clock();
    const res = await rest(simulatorOf('master-20260301-0a1b2c3', c), '/v2/vectordb/collections/flush', { collectionName: 'docs' });
    expect(res.json).toEqual({ code: 0, data: {} });
    expect(c.now().getTime() - Date.parse('2026-03-01T10:00:00Z')).toBeGreaterThanOrEqual(FLUSH_DELAY_MS);
    expect(await growing()).toEqual([]);
  });

  test('3.0/master answers 408 request timeout when the flush outlasts Request-Timeout', async () => {
    const c = clock();
    const s = simulatorOf('v3.0.0', c);
    s.faults.flushNeverCompletes = true;
    const res = await rest(s, '/v2/vectordb/collections/flush', { collectionName: 'docs' }, { 'Request-Timeout': '2' });
    expect([res.status, res.json]).toEqual([408, { code: 10001, message: 'request timeout' }]);
    expect(c.now().getTime() - Date.parse('2026-03-01T10:00:00Z')).toBe(2_000);
  });
});

describe('GC pause per line', () => {
  test('before 2.6.8 the pause has no ticket and the resume without one ends it', async () => {
    const c = clock();
    const s = simulatorOf('v2.6.7', c);

    const pause = await pauseGc({ timings }, proxy.milvus, c.now());
    const pausedBefore = s.gcState().paused;
    await resumeGc(proxy.milvus, pause);

    expect(pause).toEqual({ pausedUntil: '2026-03-01T10:10:00.000Z' });
    expect([pausedBefore, s.gcState().paused]).toEqual([true, false]);
    expect(describeGcPause(pause, detected('v2.6.7'))).toMatch(/no ticket.*v2\.6\.7.*before 2\.6\.8/);
  });

  test('from 2.6.8 the pause answers a ticket and only that ticket resumes it', async () => {
    const c = clock();
    const s = simulatorOf('v2.6.8', c);

    const pause = await pauseGc({ timings }, proxy.milvus, c.now());
    await resumeGc(proxy.milvus, { pausedUntil: pause.pausedUntil });
    const afterTicketless = s.gcState().paused;
    await resumeGc(proxy.milvus, pause);

    expect(pause.ticket).toEqual(expect.any(String));
    expect([afterTicketless, s.gcState().paused]).toEqual([true, false]);
  });

  test('from 2.6.8 collection_id pauses one collection only; before, it is ignored and the pause is global', async () => {
    const newer = simulatorOf('v2.6.8');
    await newer.handle(managementRequest('/management/datacoord/garbage_collection/pause', 'pause_seconds=60&collection_id=42'));
    const older = simulatorOf('v2.5.14');
    await older.handle(managementRequest('/management/datacoord/garbage_collection/pause', 'pause_seconds=60&collection_id=42'));

    expect(newer.gcState()).toMatchObject({ paused: false, collections: ['42'] });
    expect(older.gcState()).toMatchObject({ paused: true, tickets: [] });
  });

  test('a ticketless answer from a version that gives tickets is called out in the step detail', () => {
    expect(describeGcPause({ pausedUntil: '2026-03-01T10:10:00.000Z' }, detected('v2.6.10'))).toMatch(/answered no ticket although this version gives one/);
  });
});

import { describe, expect, test } from '@jest/globals';
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MilvusSimulator, readMilvusState, type MilvusVolumes } from '../../local/milvus/index.js';
import { readEtcd, withEtcdLock } from '../../local/milvus/etcd-store.js';
import { clock, rest, restRequest, seededCopyPerTest, type TempVolumes } from './helpers.js';

// querycoord's load info in etcd (`querycoord-collection-loadinfo/<collID>`): what a load, a
// release and a cancelled load leave there, and what a Milvus that starts again makes of it.
// `docs` is loaded by the seed (Loaded in etcd); the analytics collections are not.
const COLLECTIONS = [
  { database: 'default', name: 'docs', dim: 4, rows: 400, segments: 1 },
  { database: 'analytics', name: 'events', dim: 4, rows: 300, segments: 2 },
  { database: 'analytics', name: 'clicks', dim: 4, rows: 200, segments: 1 },
];
const EVENTS = { dbName: 'analytics', collectionName: 'events' };
const CLICKS = { dbName: 'analytics', collectionName: 'clicks' };
const LOAD = '/v2/vectordb/collections/load';
const RELEASE = '/v2/vectordb/collections/release';
const LOAD_STATE = '/v2/vectordb/collections/get_load_state';
const LOADED = { loadState: 'LoadStateLoaded', loadProgress: 100 };
const NOT_LOAD = { loadState: 'LoadStateNotLoad' };

let v: TempVolumes;
seededCopyPerTest(COLLECTIONS, (copy) => (v = copy));

function simulator(options: Partial<ConstructorParameters<typeof MilvusSimulator>[0]> = {}): MilvusSimulator {
  return new MilvusSimulator({ volumes: async () => v.volumes, now: clock().now, settings: () => ({ version: 'v2.6.10' }), ...options });
}

/** The load info etcd holds for a collection, as querycoord would read it at start. */
async function loadInfo(name: string) {
  return (await readMilvusState(v.volumes, { segmentsOf: () => false })).collections.find((c) => c.name === name)!.recordedLoad;
}

async function loadState(sim: MilvusSimulator, body: Record<string, string>) {
  return (await rest(sim, LOAD_STATE, body)).json.data;
}

/** Takes the index files away (every segment load then fails) and gives back a function that restores them. */
async function withoutIndexFiles(): Promise<() => Promise<void>> {
  const saved = v.volumes.minioDirs.map((drive, i) => ({ at: join(drive, 'milvus-bucket', 'file', 'index_files'), copy: join(v.root, `saved-index-files-${i}`) }));
  for (const f of saved) await cp(f.at, f.copy, { recursive: true }).catch(() => undefined);
  for (const f of saved) await rm(f.at, { recursive: true, force: true });
  return async () => {
    for (const f of saved) await cp(f.copy, f.at, { recursive: true }).catch(() => undefined);
  };
}

/** A simulator whose instance can be taken down and brought back (its pods gone, then running again). */
function restartable(options: Partial<ConstructorParameters<typeof MilvusSimulator>[0]> = {}) {
  let up = true;
  const sim = simulator({ volumes: async () => (up ? v.volumes : undefined), ...options });
  return {
    sim,
    restart: async () => {
      up = false;
      expect((await sim.handle(restRequest(LOAD_STATE, EVENTS))).status).toBe(503);
      await sim.loadsSettled();
      up = true;
    },
  };
}

describe('collections/load', () => {
  test('saves the load info as Loading before it answers, and as Loaded once the segments are read', async () => {
    // Hold the load's completion where it asks which volumes the instance runs on, to look at etcd in between.
    let hold = false;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const sim = simulator({
      volumes: async () => {
        if (hold) await held;
        return v.volumes;
      },
    });
    const before = await loadInfo('events');

    expect((await rest(sim, LOAD, EVENTS)).json).toEqual({ code: 0, data: {} });
    hold = true;
    const whileLoading = await loadInfo('events');
    release();
    await sim.loadsSettled();

    expect(before).toBeUndefined();
    expect(whileLoading).toMatchObject({ status: 'Loading', replica_number: 1 });
    expect(await loadInfo('events')).toEqual({ collectionID: whileLoading!.collectionID, status: 'Loaded', replica_number: 1, load_percentage: 100 });
  });

  test('two collections loaded at once, while rows are inserted, are both recorded: no write is lost', async () => {
    const sim = simulator();

    const insert = (id: number) => rest(sim, '/v2/vectordb/entities/insert', { collectionName: 'docs', data: [{ id, embedding: [1, 0, 0, 0] }] });
    const growingBefore = (await readMilvusState(v.volumes, { segmentsOf: () => false })).collections.find((c) => c.name === 'docs')!.growingSegmentIds.length;

    const answers = await Promise.all([rest(sim, LOAD, EVENTS), insert(1), rest(sim, LOAD, CLICKS), insert(2), insert(3)]);
    await sim.loadsSettled();

    expect(answers.map((a) => a.json.code)).toEqual([0, 0, 0, 0, 0]);
    expect((await loadInfo('events'))?.status).toBe('Loaded');
    expect((await loadInfo('clicks'))?.status).toBe('Loaded');
    const docs = (await readMilvusState(v.volumes, { segmentsOf: () => false })).collections.find((c) => c.name === 'docs')!;
    // The inserts opened one growing segment (datacoord records it; its rows are recorded at its sync).
    expect(docs.growingSegmentIds).toHaveLength(growingBefore + 1);
    expect((await rest(sim, '/v2/vectordb/entities/query', { collectionName: 'docs', filter: 'id in [1, 2, 3]', outputFields: ['id'] })).json.data).toHaveLength(3);
  });
});

describe('collections/release', () => {
  test('deletes the load info of a loaded collection, which is then not loaded', async () => {
    const sim = simulator();
    await rest(sim, LOAD, EVENTS);
    await sim.loadsSettled();

    const released = await rest(sim, RELEASE, EVENTS);

    expect(released.json).toEqual({ code: 0, data: {} });
    expect(sim.calls.at(-1)?.detail).toMatchObject({ release: 'released' });
    expect(await loadInfo('events')).toBeUndefined();
    expect(await loadState(sim, EVENTS)).toEqual(NOT_LOAD);
    expect((await rest(sim, '/v2/vectordb/entities/query', { ...EVENTS, outputFields: ['count(*)'] })).json.code).toBe(101);
  });

  test('releases a collection the seed loaded (Loaded in etcd from the start)', async () => {
    const sim = simulator();

    await rest(sim, RELEASE, { collectionName: 'docs' });

    expect(await loadInfo('docs')).toBeUndefined();
    expect(await loadState(sim, { collectionName: 'docs' })).toEqual(NOT_LOAD);
  });

  test('of a collection that is not loaded answers code 0 and writes nothing', async () => {
    const sim = simulator();
    const revision = (await readEtcd(v.volumes.etcdDirs)).revision;

    const released = await rest(sim, RELEASE, EVENTS);

    expect(released.json).toEqual({ code: 0, data: {} });
    expect(sim.calls.at(-1)?.detail).toMatchObject({ release: 'not loaded' });
    expect((await readEtcd(v.volumes.etcdDirs)).revision).toBe(revision);
  });

  test('of a collection that does not exist answers code 100, as the other collection routes do', async () => {
    const res = await rest(simulator(), RELEASE, { ...EVENTS, collectionName: 'nope' });

    expect(res.json).toEqual({ code: 100, message: 'collection not found[database=analytics][collection=nope]' });
  });

  test('ends a load in progress: its read, ending after, does not write Loaded back', async () => {
    // The load's read ends and asks which volumes the instance runs on; the release comes then,
    // before the load takes the etcd lock to record Loaded.
    let holdNext = false;
    let reached!: () => void;
    const atCompletion = new Promise<void>((r) => (reached = r));
    let resume!: () => void;
    const resumed = new Promise<void>((r) => (resume = r));
    const sim = simulator({
      volumes: async () => {
        if (holdNext) {
          holdNext = false;
          reached();
          await resumed;
        }
        return v.volumes;
      },
    });
    await rest(sim, LOAD, EVENTS);
    holdNext = true;
    await atCompletion;

    const released = await rest(sim, RELEASE, EVENTS);
    resume();
    await sim.loadsSettled();

    expect(released.json.code).toBe(0);
    expect(await loadInfo('events')).toBeUndefined();
    expect(await loadState(sim, EVENTS)).toEqual(NOT_LOAD);
  });
});

describe('the load info when Milvus starts again', () => {
  test('a collection whose load info says Loaded is loaded when the instance is back, without loading again', async () => {
    const { sim, restart } = restartable();
    await rest(sim, LOAD, EVENTS);
    await sim.loadsSettled();

    await restart();

    expect(await loadState(sim, EVENTS)).toEqual(LOADED);
    expect(sim.calls.at(-1)?.detail?.loadsResumed).toBeUndefined();
  });

  test('a collection whose load info says Loading is loaded again, and once loaded says Loaded', async () => {
    const restore = await withoutIndexFiles();
    const { sim, restart } = restartable();
    await rest(sim, LOAD, EVENTS);
    await sim.loadsSettled();
    const stuck = await loadState(sim, EVENTS);
    await sim.loadsSettled();
    await restore();

    await restart();
    const back = await loadState(sim, EVENTS);
    const resumed = await loadInfo('events');
    await sim.loadsSettled();

    expect(stuck).toMatchObject({ loadState: 'LoadStateLoading' });
    expect(back).toEqual({ loadState: 'LoadStateLoading', loadProgress: 0 });
    expect(sim.calls.at(-1)?.detail?.loadsResumed).toEqual(['analytics.events']);
    expect(resumed).toMatchObject({ status: 'Loading', recover_times: 1 });
    expect(await loadState(sim, EVENTS)).toEqual(LOADED);
    expect(await loadInfo('events')).toMatchObject({ status: 'Loaded' });
    expect((await loadInfo('events'))?.recover_times).toBeUndefined();
  });

  test('a new simulator on the same volumes (the pods recreated) resumes a Loading load too', async () => {
    const restore = await withoutIndexFiles();
    const first = simulator();
    await rest(first, LOAD, EVENTS);
    await first.loadsSettled();
    await restore();

    const second = simulator();
    const back = await loadState(second, EVENTS);
    await second.loadsSettled();

    expect(back).toMatchObject({ loadState: 'LoadStateLoading' });
    expect(await loadState(second, EVENTS)).toEqual(LOADED);
  });

  test('a load still Loading at the fourth start is released, as querycoord does past collectionRecoverTimes (3)', async () => {
    await withoutIndexFiles();
    const { sim, restart } = restartable();
    await rest(sim, LOAD, EVENTS);
    const states = [];
    for (let start = 1; start <= 4; start++) {
      await restart();
      states.push((await loadState(sim, EVENTS)) as { loadState: string });
      await sim.loadsSettled();
    }

    expect(states.map((s) => s.loadState)).toEqual(['LoadStateLoading', 'LoadStateLoading', 'LoadStateLoading', 'LoadStateNotLoad']);
    expect(sim.calls.at(-1)?.detail?.loadsReleasedAtStart).toEqual(['analytics.events']);
    expect(await loadInfo('events')).toBeUndefined();
  });

  test('a read of other volumes never makes a collection loaded, whatever etcd of the first ones says', async () => {
    const other: MilvusVolumes = { ...v.volumes, etcdDirs: v.volumes.etcdDirs.map((d) => `${d}-other`) };
    for (const [i, dir] of v.volumes.etcdDirs.entries()) await cp(dir, other.etcdDirs[i]!, { recursive: true });
    let volumes = v.volumes;
    const sim = simulator({ volumes: async () => volumes });
    await rest(sim, LOAD, EVENTS);
    await sim.loadsSettled();

    volumes = other;

    expect(await loadState(sim, EVENTS)).toEqual(NOT_LOAD);
    expect(await loadInfo('events')).toMatchObject({ status: 'Loaded' });
  });
});

describe('a load querycoord cancels at its timeout', () => {
  test('deletes the load info, so a Milvus that starts again does not load it', async () => {
    await withoutIndexFiles();
    const c = clock();
    const { sim, restart } = restartable({ now: c.now });
    await rest(sim, LOAD, EVENTS);
    await sim.loadsSettled();
    const before = await loadInfo('events');

    c.advance(601);
    await rest(sim, LOAD_STATE, EVENTS);
    await sim.loadsSettled();
    const after = await loadInfo('events');
    await restart();

    expect(before).toMatchObject({ status: 'Loading' });
    expect(after).toBeUndefined();
    expect(await loadState(sim, EVENTS)).toEqual(NOT_LOAD);
  });

  test('a load asked for again at once keeps the Loading record it saved', async () => {
    await withoutIndexFiles();
    const c = clock();
    const sim = simulator({ now: c.now });
    await rest(sim, LOAD, EVENTS);
    await sim.loadsSettled();

    c.advance(601);
    const again = await rest(sim, LOAD, EVENTS);
    await sim.loadsSettled();

    expect(again.json.code).toBe(0);
    expect(sim.calls.at(-1)?.detail?.load).toBe('started');
    expect(await loadInfo('events')).toMatchObject({ status: 'Loading' });
  });
});

describe('the etcd lock', () => {
  test('runs the writers of one keyspace one at a time, in the order they came, and lets other keyspaces through', async () => {
    const order: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));

    const first = withEtcdLock(['/etcd/a'], async () => {
      order.push('a1 starts');
      await gate;
      order.push('a1 ends');
    });
    const second = withEtcdLock(['/etcd/a'], async () => {
      order.push('a2');
    });
    await withEtcdLock(['/etcd/b'], async () => {
      order.push('b');
    });
    open();
    await Promise.all([first, second]);

    expect(order).toEqual(['a1 starts', 'b', 'a1 ends', 'a2']);
  });

  test('a writer that fails lets the next one in', async () => {
    let fail!: () => void;
    const failing = new Promise<void>((_, reject) => (fail = () => reject(new Error('disk full'))));
    const failed = withEtcdLock(['/etcd/c'], () => failing);
    const next = withEtcdLock(['/etcd/c'], async () => 'next');

    fail();

    await expect(failed).rejects.toThrow('disk full');
    await expect(next).resolves.toBe('next');
  });
});

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { firstSeenOf, InMemoryFirstSeen, LocalFirstSeen } from '../../core/catalog/first-seen.js';
import { LocalCatalog } from '../../core/catalog/local.js';
import { backup } from './helpers.js';

// The markers of the embedded default: files in the local catalog's directory, written once.

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function catalogDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-first-seen-'));
  dirs.push(dir);
  return join(dir, 'catalog');
}

const T1 = new Date('2026-11-23T12:00:00.000Z');
const T2 = new Date('2026-11-24T12:00:00.000Z');

describe('first-seen markers on the local file system', () => {
  it('keeps the first instant recorded for a plan and never overwrites it', async () => {
    const markers = new LocalFirstSeen(await catalogDir());

    expect(await markers.record('p', T1)).toBe(T1.toISOString());
    expect(await markers.record('p', T2)).toBe(T1.toISOString());

    expect(await markers.list()).toEqual(new Map([['p', T1.toISOString()]]));
  });

  it('lets one of two racing writers win, and both read its instant', async () => {
    const dir = await catalogDir();

    const results = await Promise.all([new LocalFirstSeen(dir).record('p', T1), new LocalFirstSeen(dir).record('p', T2)]);

    expect(new Set(results).size).toBe(1);
    expect([...(await new LocalFirstSeen(dir).list()).values()]).toEqual([results[0]]);
    // No temporary file is left behind.
    expect((await readdir(dir)).filter((n) => n.startsWith('.first-seen-'))).toEqual([]);
  });

  it('lives beside the local catalog\'s records without being one', async () => {
    const dir = await catalogDir();
    const catalog = new LocalCatalog(dir);
    await catalog.createBackup(backup('b-1'));

    await new LocalFirstSeen(dir).record('milvus-production-backup', T1);

    expect((await catalog.listBackups()).map((b) => b.backupId)).toEqual(['b-1']);
    expect((await readdir(dir)).filter((n) => n.endsWith('.json')).sort()).toEqual(['BACKUP%23b-1.json', 'FIRSTSEEN%23milvus-production-backup.json']);
  });

  it("keeps a drill's markers apart from plans', even from a plan named drill", async () => {
    const dir = await catalogDir();
    const plans = new LocalFirstSeen(dir);
    const drills = new LocalFirstSeen(dir, 'drill');

    await plans.record('drill', T1);
    await drills.record('weekly', T2);
    expect(await drills.record('drill', T2)).toBe(T2.toISOString());

    expect(await plans.list()).toEqual(new Map([['drill', T1.toISOString()]]));
    expect(await drills.list()).toEqual(new Map([['drill', T2.toISOString()], ['weekly', T2.toISOString()]]));
    expect((await readdir(dir)).sort()).toEqual(['FIRSTSEEN%23drill%23drill.json', 'FIRSTSEEN%23drill%23weekly.json', 'FIRSTSEEN%23drill.json']);
  });

  it('lists nothing for a catalog directory that does not exist yet', async () => {
    expect(await new LocalFirstSeen(join(await catalogDir(), 'missing')).list()).toEqual(new Map());
  });
});

describe('the first-seen instants of plans', () => {
  it('records a marker at now for each plan without one when asked to record', async () => {
    const markers = new InMemoryFirstSeen();
    await markers.record('a', T1);

    const seen = await firstSeenOf(markers, ['a', 'b'], T2, true);

    expect(seen).toEqual(new Map([['a', T1.toISOString()], ['b', T2.toISOString()]]));
  });

  it('only reads when not asked to record', async () => {
    const markers = new InMemoryFirstSeen();

    expect(await firstSeenOf(markers, ['a'], T2, false)).toEqual(new Map());
    expect(await markers.list()).toEqual(new Map());
  });
});

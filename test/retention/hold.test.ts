import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { backupVolume } from '../../core/datamover/backup.js';
import { UserError } from '../../core/errors.js';
import { holdBackup, releaseBackup } from '../../core/retention/hold.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { backupPrefix, packIdFromKey, PACKS_PREFIX, volumeSummaryKey } from '../../core/vault/layout.js';
import { ObjectLockedError } from '../../core/vault/store.js';
import { backupInput } from '../backup/catalog-helpers.js';
import { SMALL_CHUNKS, tempDir } from '../datamover/helpers.js';
import { packsOf } from './helpers.js';

// Legal hold over real data-mover backups in the in-memory vault: two backups share the packs
// of the files both have; the second has a file of its own.

const NOW = new Date('2026-11-23T02:00:00.000Z');
const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

let vault: InMemoryVaultStore;
let catalog: InMemoryCatalog;
const s = () => ({ vault, catalog, now: () => NOW });

async function backup(id: string, files: Record<string, Buffer>): Promise<void> {
  const dir = await tempDir('mg-hold-');
  dirs.push(dir);
  await mkdir(join(dir, 'data'));
  for (const [name, body] of Object.entries(files)) await writeFile(join(dir, 'data', name), body);
  await backupVolume({ source: dir, vault, volume: 'minio', backupId: id, now: NOW, chunker: SMALL_CHUNKS, packSize: 64 * 1024, workers: 1 });
  await catalog.createBackup({ ...backupInput(id, NOW.toISOString()), status: 'Available', components: [{ pvc: 'minio', role: 'object-storage', status: 'Exported' }] });
}

async function packs(): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of vault.list(PACKS_PREFIX)) if (packIdFromKey(o.key)) keys.push(o.key);
  return keys;
}

const held = async (key: string) => (await vault.head(key))?.legalHold === true;

const shared = randomBytes(200_000);
beforeEach(async () => {
  vault = new InMemoryVaultStore('memory://vault', { now: () => NOW });
  catalog = new InMemoryCatalog();
  await backup('a', { 'shared.bin': shared });
  await backup('b', { 'shared.bin': shared, 'own.bin': randomBytes(200_000) });
});

describe('legal hold', () => {
  it('holds every object a backup needs and records why; a held object cannot be deleted', async () => {
    const r = await holdBackup(s(), 'b', 'litigation 2026-114');

    for (const key of [...(await packs()), volumeSummaryKey('b', 'minio')]) expect(await held(key)).toBe(true);
    expect(r.objects).toBeGreaterThan((await packs()).length);
    expect(await catalog.getBackup('b')).toMatchObject({ hold: { reason: 'litigation 2026-114', at: NOW.toISOString() } });
    await expect(vault.delete(volumeSummaryKey('b', 'minio'))).rejects.toThrow(ObjectLockedError);
  });

  it('releasing one backup keeps the hold on the packs another held backup needs', async () => {
    await holdBackup(s(), 'a', 'audit');
    await holdBackup(s(), 'b', 'litigation');
    const ofA = new Set<string>();
    for (const key of await packs()) if (await held(key)) ofA.add(key);

    const r = await releaseBackup(s(), 'b');

    expect(r.packsKeptForOthers).toBeGreaterThan(0);
    const stillHeld = (await Promise.all((await packs()).map(async (k) => [k, await held(k)] as const))).filter(([, h]) => h).map(([k]) => k);
    expect(stillHeld.length).toBe(r.packsKeptForOthers);
    expect(await held(volumeSummaryKey('b', 'minio'))).toBe(false);
    expect(await held(volumeSummaryKey('a', 'minio'))).toBe(true);
    expect((await catalog.getBackup('b'))?.hold).toBeNull();
    // b's own pack is free again; a's are not.
    expect((await packs()).length).toBeGreaterThan(stillHeld.length);
  });

  it("keeps a shared pack held when another backup's hold is placed while the release clears", async () => {
    await holdBackup(s(), 'b', 'litigation');
    // a is held in full between the release's first list of held backups and its clears ending:
    // its hold lands on the shared packs, and the release clears some of them after it.
    const set = vault.setLegalHold.bind(vault);
    let holding: Promise<unknown> | undefined;
    vault.setLegalHold = async (key: string, on: boolean) => {
      if (!on) await (holding ??= holdBackup(s(), 'a', 'audit'));
      return set(key, on);
    };

    await releaseBackup(s(), 'b');
    vault.setLegalHold = set;

    const needed = await packsOf(vault, 'a');
    expect(needed.size).toBeGreaterThan(0);
    const notHeld = [];
    for (const key of needed) if (!(await held(key))) notHeld.push(key);
    expect(notHeld).toEqual([]);
    expect((await catalog.getBackup('a'))?.hold).toMatchObject({ reason: 'audit' });
    expect((await catalog.getBackup('b'))?.hold).toBeNull();
  });

  it('refuses a hold without a reason, on a backup that is not Available, and a release of a backup not held', async () => {
    await expect(holdBackup(s(), 'a', '  ')).rejects.toThrow(UserError);
    await catalog.updateBackup('a', { status: 'Failed', failure: { step: 'Export', error: 'E', cause: 'c' } });
    await expect(holdBackup(s(), 'a', 'why')).rejects.toThrow('backup a is Failed: only Available backups can be held or released');
    await expect(releaseBackup(s(), 'b')).rejects.toThrow('backup b is not under legal hold');
    await expect(holdBackup(s(), 'missing', 'why')).rejects.toThrow('there is no backup missing in the catalog');
    expect((await vault.head(`${backupPrefix('b')}volumes/minio/index.jsonl.gz`))?.legalHold).toBeFalsy();
  });
});

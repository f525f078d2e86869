import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { packIdFromKey } from '../../core/vault/layout.js';
import { Rng, SMALL_CHUNKS, tempDir } from './helpers.js';

const MARCH = new Date('2026-03-01T00:00:00Z');
const APRIL = new Date('2026-04-01T00:00:00Z');
const LOCK_1 = new Date('2027-03-01T00:00:00Z');
const LOCK_2 = new Date('2027-04-01T00:00:00Z');

async function volumeDir(): Promise<string> {
  const source = join(await tempDir('retention'), 'source');
  await mkdir(source);
  await writeFile(join(source, 'segment'), new Rng('segment').bytes(200_000));
  return source;
}

const packs = (vault: InMemoryVaultStore) => [...vault.objects].filter(([k]) => packIdFromKey(k));

describe('Object Lock retention of backup objects', () => {
  it('writes every pack, the index and the summary with the backup retain-until date', async () => {
    const vault = new InMemoryVaultStore();

    await backupVolume({ source: await volumeDir(), vault, volume: 'v', backupId: 'b1', now: MARCH, retainUntil: LOCK_1, chunker: SMALL_CHUNKS, packSize: 64 * 1024 });

    expect(vault.puts.length).toBeGreaterThan(3);
    expect(vault.puts.every((p) => p.retainUntil?.getTime() === LOCK_1.getTime())).toBe(true);
  });

  it('extends the lock of reused packs when the new backup outlives them', async () => {
    const vault = new InMemoryVaultStore();
    const source = await volumeDir();
    await backupVolume({ source, vault, volume: 'v', backupId: 'b1', now: MARCH, retainUntil: LOCK_1, chunker: SMALL_CHUNKS, packSize: 64 * 1024 });

    const second = await backupVolume({ source, vault, volume: 'v', backupId: 'b2', now: APRIL, retainUntil: LOCK_2, chunker: SMALL_CHUNKS, packSize: 64 * 1024 });

    expect(packs(vault).length).toBeGreaterThan(0);
    expect(second.packsRetentionExtended).toBe(packs(vault).length);
    expect(packs(vault).every(([, o]) => o.retainUntil?.getTime() === LOCK_2.getTime())).toBe(true);
  });

  it('leaves reused packs alone when the parent backup is locked longer than the new one', async () => {
    const vault = new InMemoryVaultStore();
    const source = await volumeDir();
    await backupVolume({ source, vault, volume: 'v', backupId: 'b1', now: MARCH, retainUntil: LOCK_2, chunker: SMALL_CHUNKS });

    const second = await backupVolume({ source, vault, volume: 'v', backupId: 'b2', now: APRIL, retainUntil: LOCK_1, chunker: SMALL_CHUNKS });

    expect(second.packsRetentionExtended).toBe(0);
    expect(packs(vault).length).toBeGreaterThan(0);
    expect(packs(vault).every(([, o]) => o.retainUntil?.getTime() === LOCK_2.getTime())).toBe(true);
  });

  it('uses the newest earlier backup of the same volume as the parent', async () => {
    const vault = new InMemoryVaultStore();
    const source = await volumeDir();
    await backupVolume({ source, vault, volume: 'v', backupId: 'b1', now: MARCH, chunker: SMALL_CHUNKS });
    await backupVolume({ source, vault, volume: 'other', backupId: 'b1b', now: APRIL, chunker: SMALL_CHUNKS });

    const second = await backupVolume({ source, vault, volume: 'v', backupId: 'b2', now: APRIL, chunker: SMALL_CHUNKS });

    expect(second.parentBackupId).toBe('b1');
  });
});

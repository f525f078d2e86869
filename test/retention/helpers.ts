/** What the retention tests read back from a vault: the packs a backup references, every pack, every key under a prefix. */
import { IndexReader } from '../../core/datamover/index-format.js';
import { packIdFromKey, packKey, PACKS_PREFIX, volumeIndexKey } from '../../core/vault/layout.js';
import type { VaultStore } from '../../core/vault/store.js';

/** The keys of the packs backup `id`'s index of `volume` references. */
export async function packsOf(vault: VaultStore, id: string, volume = 'minio'): Promise<Set<string>> {
  const reader = new IndexReader(await vault.openRead(volumeIndexKey(id, volume)), id);
  await reader.readHeader();
  const keys = new Set<string>();
  for await (const e of reader.entries()) for (const c of e.chunks ?? []) keys.add(packKey(c.pack));
  return keys;
}

/** Every pack key in the vault, sorted. */
export async function packKeys(vault: VaultStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of vault.list(PACKS_PREFIX)) if (packIdFromKey(o.key)) keys.push(o.key);
  return keys.sort();
}

/** Every key under `prefix`. */
export async function keysUnder(vault: VaultStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of vault.list(prefix)) keys.push(o.key);
  return keys;
}

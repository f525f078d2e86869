/**
 * What a vault holds, for the cost report: bytes and objects per storage class, the packs
 * (their count and bytes give the average pack size, which turns a backup's uploaded bytes into
 * PUT requests), and the objects each backup wrote of its own (record, manifests, indexes,
 * summaries, the pages of an object copy). One pass over `VaultStore.list('')`.
 */
import { PACKS_PREFIX, parseBackupObjectKey, parseVolumeSummaryKey } from '../vault/layout.js';
import type { VaultStore } from '../vault/store.js';

/** Bytes and objects in one storage class. */
export interface ClassUsage {
  /** S3's name (`STANDARD`, `GLACIER_IR`, ...); STANDARD when the listing names none. */
  readonly storageClass: string;
  readonly objects: number;
  readonly bytes: number;
}

/** One vault copy: the primary bucket or a DR replica. */
export interface VaultInventory {
  readonly role: 'primary' | 'replica';
  readonly region: string;
  /** Where it was listed (`s3://bucket`, `file:///dir`). */
  readonly url: string;
  /** Per class, largest first. */
  readonly classes: readonly ClassUsage[];
  readonly objects: number;
  readonly bytes: number;
  /** Pack objects (`data/packs/`). */
  readonly packs: { readonly objects: number; readonly bytes: number };
  /** Objects each backup owns (under `backups/<id>/` and its volume summaries), by backup id. */
  readonly backupObjects: Readonly<Record<string, number>>;
}

/**
 * Lists every object of `store` once and sums it up by storage class (see the module's TSDoc).
 * Resolves to the inventory of the copy in `region` with `role`.
 */
export async function inventoryVault(store: VaultStore, where: { role: 'primary' | 'replica'; region: string }): Promise<VaultInventory> {
  const classes = new Map<string, { objects: number; bytes: number }>();
  const backupObjects: Record<string, number> = {};
  let objects = 0;
  let bytes = 0;
  const packs = { objects: 0, bytes: 0 };
  for await (const o of store.list('')) {
    const storageClass = o.storageClass ?? 'STANDARD';
    const c = classes.get(storageClass) ?? { objects: 0, bytes: 0 };
    c.objects += 1;
    c.bytes += o.size;
    classes.set(storageClass, c);
    objects += 1;
    bytes += o.size;
    if (o.key.startsWith(PACKS_PREFIX)) {
      packs.objects += 1;
      packs.bytes += o.size;
      continue;
    }
    const owner = parseBackupObjectKey(o.key)?.backupId ?? parseVolumeSummaryKey(o.key)?.backupId;
    if (owner !== undefined) backupObjects[owner] = (backupObjects[owner] ?? 0) + 1;
  }
  return {
    ...where,
    url: store.url,
    classes: [...classes].map(([storageClass, c]) => ({ storageClass, ...c })).sort((a, b) => b.bytes - a.bytes || a.storageClass.localeCompare(b.storageClass)),
    objects,
    bytes,
    packs,
    backupObjects,
  };
}

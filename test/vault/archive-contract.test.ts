/**
 * The archive-class contract of the local vaults (file and in-memory): what S3 does to an object
 * a lifecycle rule moved into GLACIER or DEEP_ARCHIVE, simulated with `transition` and a clock
 * the tests move instead of sleeping. S3's side of the same rules is pinned down at the request
 * level in s3-store.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { ObjectArchivedError, ObjectNotFoundError, ThawTierUnavailableError, type VaultStore } from '../../core/vault/store.js';
import { tempDir } from '../datamover/helpers.js';

const T0 = new Date('2026-12-05T10:00:00Z');
const PACK = 'data/packs/ab/ab0123456789abcdef0123456789abcd.pack';
const BYTES = Buffer.from('pack bytes 0123456789');
const HOUR = 3600;

class Clock {
  constructor(public at: Date) {}
  readonly now = (): Date => this.at;
  advance(seconds: number): void {
    this.at = new Date(this.at.getTime() + seconds * 1000);
  }
}

/** A vault with a lifecycle `transition`: the two local implementations. */
type Archiving = VaultStore & { transition(key: string, storageClass: string): void | Promise<void> };

const implementations: { name: string; make: (clock: Clock, thawSeconds: number) => Promise<Archiving> }[] = [
  { name: 'file', make: async (clock, thawSeconds) => new FileVaultStore(await tempDir('archive-file'), { now: clock.now, thawSeconds }) },
  { name: 'memory', make: async (clock, thawSeconds) => new InMemoryVaultStore('memory://vault', { now: clock.now, thawSeconds }) },
];

async function archived(impl: (typeof implementations)[number], storageClass = 'GLACIER', thawSeconds = 4 * HOUR) {
  const clock = new Clock(T0);
  const store = await impl.make(clock, thawSeconds);
  await store.put(PACK, BYTES);
  await store.transition(PACK, storageClass);
  return { clock, store };
}

describe.each(implementations)('$name vault: archive classes', (impl) => {
  it('reports the storage class in head and listings, and nothing for STANDARD', async () => {
    const { store } = await archived(impl);
    await store.put('data/packs/cd/other.pack', BYTES);

    expect(await store.head(PACK)).toMatchObject({ storageClass: 'GLACIER' });
    expect(await store.head('data/packs/cd/other.pack')).not.toHaveProperty('storageClass');
    const listed = [];
    for await (const o of store.list('data/packs/')) listed.push(o);
    expect(listed.map((o) => [o.key, o.storageClass])).toEqual([
      [PACK, 'GLACIER'],
      ['data/packs/cd/other.pack', undefined],
    ]);
  });

  it('refuses every read of an archived object with ObjectArchivedError naming the key', async () => {
    const { store } = await archived(impl);

    await expect(store.get(PACK)).rejects.toThrow(ObjectArchivedError);
    await expect(store.getRange(PACK, 0, 4)).rejects.toThrow(/object data\/packs\/ab\/.* is in archive class GLACIER and must be thawed/);
    await expect(store.openRead(PACK)).rejects.toMatchObject({ name: 'ObjectArchived', key: PACK, storageClass: 'GLACIER' });
  });

  it('still reads an object in an instant-retrieval class', async () => {
    const clock = new Clock(T0);
    const store = await impl.make(clock, HOUR);
    await store.put(PACK, BYTES);
    await store.transition(PACK, 'GLACIER_IR');

    expect(await store.get(PACK)).toEqual(BYTES);
    expect(await store.thaw(PACK, { days: 3, tier: 'Standard' })).toBe('available');
  });

  it('thaws in thawSeconds on its clock: started, in progress, then readable', async () => {
    const { store, clock } = await archived(impl);

    expect(await store.thaw(PACK, { days: 3, tier: 'Standard' })).toBe('started');
    expect((await store.head(PACK))?.restore).toEqual({ ongoing: true });
    expect(await store.thaw(PACK, { days: 3, tier: 'Standard' })).toBe('in-progress');
    await expect(store.get(PACK)).rejects.toThrow(ObjectArchivedError);

    clock.advance(4 * HOUR);

    expect(await store.head(PACK)).toMatchObject({ storageClass: 'GLACIER', restore: { ongoing: false, expiresAt: new Date('2026-12-09T00:00:00Z') } });
    expect(await store.thaw(PACK, { days: 3, tier: 'Standard' })).toBe('available');
    expect(await store.get(PACK)).toEqual(BYTES);
    expect(await store.getRange(PACK, 5, 5)).toEqual(BYTES.subarray(5, 10));
  });

  it('makes the thawed copy expire after its days, at midnight UTC, and reads fail again', async () => {
    const { store, clock } = await archived(impl, 'GLACIER', 0);
    await store.thaw(PACK, { days: 1, tier: 'Bulk' });
    expect(await store.get(PACK)).toEqual(BYTES);

    clock.at = new Date('2026-12-07T00:00:00Z');

    await expect(store.get(PACK)).rejects.toThrow(ObjectArchivedError);
    expect((await store.head(PACK))?.restore).toBeUndefined();
    expect(await store.thaw(PACK, { days: 1, tier: 'Bulk' })).toBe('started');
  });

  it('completes at once with the default thawSeconds of 0', async () => {
    const clock = new Clock(T0);
    const store = await impl.make(clock, 0);
    await store.put(PACK, BYTES);
    await store.transition(PACK, 'DEEP_ARCHIVE');

    expect(await store.thaw(PACK, { days: 3, tier: 'Standard' })).toBe('started');
    expect(await store.get(PACK)).toEqual(BYTES);
  });

  it('refuses the Expedited tier for DEEP_ARCHIVE and asks for nothing', async () => {
    const { store } = await archived(impl, 'DEEP_ARCHIVE');

    await expect(store.thaw(PACK, { days: 3, tier: 'Expedited' })).rejects.toThrow(ThawTierUnavailableError);
    expect((await store.head(PACK))?.restore).toBeUndefined();
  });

  it('loses a thawed copy when the object moves class again, as a new transition does', async () => {
    const { store } = await archived(impl, 'GLACIER', 0);
    await store.thaw(PACK, { days: 3, tier: 'Standard' });
    await store.transition(PACK, 'DEEP_ARCHIVE');

    await expect(store.get(PACK)).rejects.toThrow(ObjectArchivedError);
  });

  it('writes a replacing put in STANDARD, untagged, readable at once', async () => {
    const { store } = await archived(impl);
    await store.markArchivable(PACK, true);
    await store.put(PACK, Buffer.from('new bytes'));

    expect(await store.head(PACK)).not.toHaveProperty('storageClass');
    expect(await store.isArchivable(PACK)).toBe(false);
    expect(await store.get(PACK)).toEqual(Buffer.from('new bytes'));
  });

  it('sets and removes the archivable tag', async () => {
    const { store } = await archived(impl);

    expect(await store.isArchivable(PACK)).toBe(false);
    await store.markArchivable(PACK, true);
    expect(await store.isArchivable(PACK)).toBe(true);
    await store.markArchivable(PACK, false);
    expect(await store.isArchivable(PACK)).toBe(false);
  });

  it('answers ObjectNotFoundError for tags and thaws of a missing object', async () => {
    const store = await impl.make(new Clock(T0), 0);

    await expect(store.markArchivable('nope', true)).rejects.toThrow(ObjectNotFoundError);
    await expect(store.isArchivable('nope')).rejects.toThrow(ObjectNotFoundError);
    await expect(store.thaw('nope', { days: 1, tier: 'Standard' })).rejects.toThrow(ObjectNotFoundError);
  });
});

describe('file vault: archive state shared through the journal', () => {
  it('is seen by another store on the same directory (a data-mover Job)', async () => {
    const dir = await tempDir('archive-shared');
    const clock = new Clock(T0);
    const steps = new FileVaultStore(dir, { now: clock.now });
    await steps.put(PACK, BYTES);
    await steps.transition(PACK, 'GLACIER');
    await steps.markArchivable(PACK, true);

    const job = new FileVaultStore(dir, { now: clock.now });
    await expect(job.get(PACK)).rejects.toThrow(ObjectArchivedError);
    expect(await job.isArchivable(PACK)).toBe(true);
  });

  it('lets a store on another clock read a thaw that a store saw complete', async () => {
    const dir = await tempDir('archive-clocks');
    const clock = new Clock(T0);
    const steps = new FileVaultStore(dir, { now: clock.now, thawSeconds: 4 * HOUR });
    await steps.put(PACK, BYTES);
    await steps.transition(PACK, 'GLACIER');
    await steps.thaw(PACK, { days: 3, tier: 'Standard' });
    clock.advance(4 * HOUR);
    expect((await steps.head(PACK))?.restore?.ongoing).toBe(false);

    // Its clock is still at T0, before the thaw's end on the steps' clock.
    const job = new FileVaultStore(dir, { now: () => T0 });

    expect(await job.get(PACK)).toEqual(BYTES);
  });

  it('keeps the journal out of listings', async () => {
    const dir = await tempDir('archive-list');
    const store = new FileVaultStore(dir, { now: () => T0 });
    await store.put(PACK, BYTES);
    await store.transition(PACK, 'GLACIER');

    const keys = [];
    for await (const o of store.list('')) keys.push(o.key);
    expect(keys).toEqual([PACK]);
  });
});

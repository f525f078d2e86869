/**
 * The Object Lock contract of the vault port, run against every implementation: the file vault,
 * the in-memory double and S3 over s3rver on 127.0.0.1. s3rver has no versioning and no Object
 * Lock (it answers ListObjectVersions with MethodNotAllowed and PutObjectLegalHold with
 * MethodNotAllowed too), so there it runs the delete rules that need no lock; the S3 lock requests
 * are covered by the request-level tests in s3-store.test.ts.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import S3rver from 's3rver';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { S3VaultStore } from '../../core/vault/s3-store.js';
import { ObjectExistsError, ObjectLockedError, ObjectNotFoundError, RetainUntilInPastError, type VaultStore } from '../../core/vault/store.js';
import { tempDir } from '../datamover/helpers.js';

const MARCH = new Date('2026-03-01T00:00:00Z');
const APRIL = new Date('2026-04-01T00:00:00Z');
const MAY = new Date('2026-05-01T00:00:00Z');
const PACK = 'data/packs/ab/ab0123456789abcdef0123456789abcd.pack';

/** A settable clock: tests move time forward instead of sleeping. */
class Clock {
  constructor(public at: Date) {}
  readonly now = (): Date => this.at;
}

interface Subject {
  readonly store: VaultStore;
  readonly clock: Clock;
}

let server: S3rver;
let endpoint: string;
let bucketSeq = 0;

beforeAll(async () => {
  server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: await tempDir('s3rver-lock'), configureBuckets: [{ name: 'lock-bucket', configs: [] }] });
  const { port } = await server.run();
  endpoint = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server.close();
});

const implementations: { name: string; locks: boolean; make: () => Promise<Subject> }[] = [
  {
    name: 'file',
    locks: true,
    make: async () => {
      const clock = new Clock(MARCH);
      return { clock, store: new FileVaultStore(await tempDir('lock-file'), { now: clock.now }) };
    },
  },
  {
    name: 'memory',
    locks: true,
    make: async () => {
      const clock = new Clock(MARCH);
      return { clock, store: new InMemoryVaultStore('memory://vault', { now: clock.now }) };
    },
  },
  {
    name: 's3 (s3rver)',
    locks: false,
    make: async () => {
      const clock = new Clock(MARCH);
      const store = new S3VaultStore({
        bucket: 'lock-bucket',
        prefix: `t${++bucketSeq}`,
        endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
        checksums: 'WHEN_REQUIRED',
        maxAttempts: 1,
        now: clock.now,
      });
      return { clock, store };
    },
  },
];

async function keys(store: VaultStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

describe.each(implementations)('$name vault: deletes', ({ make }) => {
  it('deletes an unlocked object so that it is gone from get, head and list', async () => {
    const { store } = await make();
    await store.put(PACK, Buffer.from('pack'));

    await store.delete(PACK);

    await expect(store.get(PACK)).rejects.toThrow(ObjectNotFoundError);
    expect(await store.head(PACK)).toBeUndefined();
    expect(await keys(store, 'data/')).toEqual([]);
  });

  it('treats deleting a key that holds nothing as done', async () => {
    const { store } = await make();

    await expect(store.delete('backups/none/backup.json')).resolves.toBeUndefined();
  });

  it('deletes a batch and reports every key as deleted', async () => {
    const { store } = await make();
    const batch = ['data/packs/aa/1.pack', 'data/packs/aa/2.pack', 'data/packs/bb/3.pack', 'backups/b1/backup.json'];
    for (const k of batch) await store.put(k, Buffer.from(k));
    await store.put('data/packs/aa/1.pack.keep', Buffer.from('a longer key with the same prefix'));

    const result = await store.deleteMany([...batch, 'data/packs/aa/missing.pack']);

    expect(result.failed).toEqual([]);
    expect([...result.deleted].sort()).toEqual([...batch, 'data/packs/aa/missing.pack'].sort());
    expect(await keys(store)).toEqual(['data/packs/aa/1.pack.keep']);
  });
});

// S3 answers 412 PreconditionFailed to a PutObject or CompleteMultipartUpload with If-None-Match: *
// when the key holds an object (s3rver has no conditional writes: the S3 store's side is tested
// at the request level, s3-store.test.ts, and through the faulty-S3 proxy).
describe.each(implementations.filter((i) => i.locks))('$name vault: writes that may only create', ({ make }) => {
  it('creates an absent key, and takes the same bytes again as a retry', async () => {
    const { store } = await make();

    await store.put(PACK, Buffer.from('pack'), { ifAbsent: true });
    await store.put(PACK, Buffer.from('pack'), { ifAbsent: true });

    expect((await store.get(PACK)).toString()).toBe('pack');
  });

  it.each([
    ['unlocked', undefined],
    ['locked', APRIL],
  ])('refuses other bytes over an %s object, ObjectExists, and keeps the object there', async (_how, retainUntil) => {
    const { store } = await make();
    await store.put(PACK, Buffer.from('pack'), retainUntil ? { retainUntil } : {});

    await expect(store.put(PACK, Buffer.from('forged'), { ifAbsent: true })).rejects.toThrow(ObjectExistsError);

    expect((await store.get(PACK)).toString()).toBe('pack');
  });

  it('refuses a file with other bytes over an object', async () => {
    const { store } = await make();
    await store.put(PACK, Buffer.from('pack'));
    const file = join(await tempDir('if-absent'), 'forged');
    await writeFile(file, 'forged');

    await expect(store.putFile(PACK, file, { ifAbsent: true })).rejects.toThrow(ObjectExistsError);

    expect((await store.get(PACK)).toString()).toBe('pack');
  });
});

describe.each(implementations.filter((i) => i.locks))('$name vault: Object Lock', ({ make }) => {
  it('refuses a retain-until date that is not in the future, as S3 does (400 InvalidArgument), and writes nothing', async () => {
    const { store, clock } = await make();
    clock.at = APRIL;

    await expect(store.put(PACK, Buffer.from('pack'), { retainUntil: MARCH })).rejects.toThrow(RetainUntilInPastError);
    await expect(store.put(PACK, Buffer.from('pack'), { retainUntil: APRIL })).rejects.toThrow('the retain-until date 2026-04-01T00:00:00.000Z is not after');
    expect(await store.head(PACK)).toBeUndefined();

    await store.put(PACK, Buffer.from('pack'), { retainUntil: MAY });
    clock.at = MAY;
    await expect(store.extendRetention(PACK, MAY)).resolves.toBe(false); // already that long: nothing asked of S3
    // Its lock passed: a later date that is still behind the clock is refused.
    clock.at = new Date(MAY.getTime() + 2 * 86_400_000);
    await expect(store.extendRetention(PACK, new Date(MAY.getTime() + 86_400_000))).rejects.toThrow(RetainUntilInPastError);
    expect((await store.head(PACK))?.retainUntil).toEqual(MAY);
  });

  it('refuses to delete an object until the clock passes its retain-until date', async () => {
    const { store, clock } = await make();
    await store.put(PACK, Buffer.from('pack'), { retainUntil: APRIL });

    await expect(store.delete(PACK)).rejects.toThrow(ObjectLockedError);
    await expect(store.delete(PACK)).rejects.toMatchObject({ key: PACK, retainUntil: APRIL, legalHold: false });
    expect((await store.get(PACK)).toString()).toBe('pack');

    clock.at = APRIL; // S3 lets a version go once its date has come
    await store.delete(PACK);
    expect(await store.head(PACK)).toBeUndefined();
  });

  it('reports the retain-until date and the legal hold in head', async () => {
    const { store } = await make();
    await store.put(PACK, Buffer.from('pack'), { retainUntil: APRIL });
    await store.setLegalHold(PACK, true);

    expect(await store.head(PACK)).toEqual({ key: PACK, size: 4, retainUntil: APRIL, legalHold: true });
  });

  it('extends retention to a later date and never shortens it', async () => {
    const { store } = await make();
    await store.put(PACK, Buffer.from('pack'), { retainUntil: APRIL });

    expect(await store.extendRetention(PACK, MAY)).toBe(true);
    expect(await store.extendRetention(PACK, APRIL)).toBe(false);
    expect(await store.extendRetention(PACK, MAY)).toBe(false);

    expect((await store.head(PACK))?.retainUntil).toEqual(MAY);
  });

  it('locks an object written without a date when its retention is extended', async () => {
    const { store, clock } = await make();
    await store.put(PACK, Buffer.from('pack'));

    expect(await store.extendRetention(PACK, APRIL)).toBe(true);

    await expect(store.delete(PACK)).rejects.toThrow(ObjectLockedError);
    clock.at = MAY;
    await store.delete(PACK);
  });

  it('refuses to extend the retention of an object that does not exist', async () => {
    const { store } = await make();

    await expect(store.extendRetention(PACK, APRIL)).rejects.toThrow(ObjectNotFoundError);
  });

  it('blocks deletes under a legal hold, past the retain-until date, until the hold is released', async () => {
    const { store, clock } = await make();
    await store.put(PACK, Buffer.from('pack'), { retainUntil: APRIL });
    await store.setLegalHold(PACK, true);
    clock.at = MAY;

    await expect(store.delete(PACK)).rejects.toMatchObject({ name: 'ObjectLockedError', legalHold: true });

    await store.setLegalHold(PACK, false);
    await store.delete(PACK);
    expect(await store.head(PACK)).toBeUndefined();
  });

  it('refuses a legal hold on an object that does not exist', async () => {
    const { store } = await make();

    await expect(store.setLegalHold(PACK, true)).rejects.toThrow(ObjectNotFoundError);
  });

  it('accepts an identical overwrite of a locked object and keeps the later date', async () => {
    const { store } = await make();
    await store.put(PACK, Buffer.from('pack'), { retainUntil: MAY });

    await store.put(PACK, Buffer.from('pack'), { retainUntil: APRIL });

    expect(await store.head(PACK)).toMatchObject({ size: 4, retainUntil: MAY });
  });

  it('extends the lock of a locked object to the date of an identical retry', async () => {
    const { store } = await make();
    await store.put(PACK, Buffer.from('pack'), { retainUntil: APRIL });

    await store.put(PACK, Buffer.from('pack'), { retainUntil: MAY });

    expect((await store.head(PACK))?.retainUntil).toEqual(MAY);
  });

  it('refuses an overwrite of a locked object with different bytes and keeps the old ones', async () => {
    const { store } = await make();
    await store.put(PACK, Buffer.from('pack'), { retainUntil: APRIL });

    await expect(store.put(PACK, Buffer.from('evil'))).rejects.toThrow(ObjectLockedError);

    expect((await store.get(PACK)).toString()).toBe('pack');
  });

  it('refuses an overwrite of a held object with different bytes', async () => {
    const { store } = await make();
    await store.put(PACK, Buffer.from('pack'));
    await store.setLegalHold(PACK, true);

    await expect(store.put(PACK, Buffer.from('evil'))).rejects.toThrow(ObjectLockedError);
  });

  it('replaces an object whose lock has expired, with the new lock', async () => {
    const { store, clock } = await make();
    await store.put(PACK, Buffer.from('old'), { retainUntil: APRIL });
    clock.at = MAY;

    await store.put(PACK, Buffer.from('new'));

    expect((await store.get(PACK)).toString()).toBe('new');
    expect(await store.head(PACK)).toEqual({ key: PACK, size: 3, legalHold: false });
  });

  it('deletes the unlocked keys of a batch and reports each locked one with its lock', async () => {
    const { store } = await make();
    await store.put('data/packs/aa/1.pack', Buffer.from('1'));
    await store.put('data/packs/aa/2.pack', Buffer.from('2'), { retainUntil: APRIL });
    await store.put('data/packs/aa/3.pack', Buffer.from('3'));
    await store.setLegalHold('data/packs/aa/3.pack', true);
    await store.put('data/packs/aa/4.pack', Buffer.from('4'));

    const result = await store.deleteMany(['data/packs/aa/1.pack', 'data/packs/aa/2.pack', 'data/packs/aa/3.pack', 'data/packs/aa/4.pack']);

    expect([...result.deleted].sort()).toEqual(['data/packs/aa/1.pack', 'data/packs/aa/4.pack']);
    expect(result.failed).toEqual([
      { key: 'data/packs/aa/2.pack', error: expect.objectContaining({ name: 'ObjectLockedError', retainUntil: APRIL }) },
      { key: 'data/packs/aa/3.pack', error: expect.objectContaining({ name: 'ObjectLockedError', legalHold: true }) },
    ]);
    expect(await keys(store, 'data/')).toEqual(['data/packs/aa/2.pack', 'data/packs/aa/3.pack']);
  });
});

describe('file vault lock journal', () => {
  it('keeps locks in a journal that list never shows, not in a file per object', async () => {
    const root = await tempDir('lock-journal');
    const store = new FileVaultStore(root, { now: () => MARCH });
    await store.put(PACK, Buffer.from('pack'), { retainUntil: APRIL });
    await store.put('backups/b1/backup.json', Buffer.from('{}'), { retainUntil: APRIL });
    await store.setLegalHold(PACK, true);
    await store.flush();

    expect(await keys(store)).toEqual(['backups/b1/backup.json', PACK]);
    expect(await readdir(join(root, '.object-lock'))).toEqual(['journal.jsonl']);
  });

  it('is read by another store on the same directory, as another process would', async () => {
    const root = await tempDir('lock-reopen');
    const writer = new FileVaultStore(root, { now: () => MARCH });
    const reader = new FileVaultStore(root, { now: () => MARCH });
    await writer.put(PACK, Buffer.from('pack'), { retainUntil: APRIL });
    expect(await reader.head(PACK)).toMatchObject({ retainUntil: APRIL });

    await writer.extendRetention(PACK, MAY);
    await writer.flush();

    await expect(reader.delete(PACK)).rejects.toMatchObject({ retainUntil: MAY });
    await expect(new FileVaultStore(root, { now: () => APRIL }).delete(PACK)).rejects.toThrow(ObjectLockedError);
  });

  it('reads an existing vault without a journal as unlocked', async () => {
    const root = await tempDir('lock-legacy');
    await mkdir(join(root, 'data', 'packs', 'ab'), { recursive: true });
    await writeFile(join(root, ...PACK.split('/')), 'written before locks');
    const store = new FileVaultStore(root, { now: () => MARCH });

    expect((await store.get(PACK)).toString()).toBe('written before locks');
    expect(await store.head(PACK)).toEqual({ key: PACK, size: 20, legalHold: false });
    expect(await keys(store)).toEqual([PACK]);
    await store.delete(PACK);
    expect(await keys(store)).toEqual([]);
  });

  it('skips a line torn by a crash and keeps the records around it', async () => {
    const root = await tempDir('lock-torn');
    const store = new FileVaultStore(root, { now: () => MARCH });
    await store.put('data/packs/aa/1.pack', Buffer.from('1'), { retainUntil: APRIL });
    await writeFile(join(root, '.object-lock', 'journal.jsonl'), '{"k":"data/packs/aa/2.pa', { flag: 'a' });
    await store.put('data/packs/aa/3.pack', Buffer.from('3'), { retainUntil: MAY });

    const reopened = new FileVaultStore(root, { now: () => MARCH });

    expect((await reopened.head('data/packs/aa/1.pack'))?.retainUntil).toEqual(APRIL);
    expect((await reopened.head('data/packs/aa/3.pack'))?.retainUntil).toEqual(MAY);
  });

  it('locks an object written from a file and refuses a different file over it', async () => {
    const root = await tempDir('lock-putfile');
    const src = join(await tempDir('lock-src'), 'index');
    await writeFile(src, 'index v1');
    const store = new FileVaultStore(root, { now: () => MARCH });
    await store.putFile('backups/b1/volumes/v/index.jsonl.gz', src, { retainUntil: APRIL });

    await store.putFile('backups/b1/volumes/v/index.jsonl.gz', src, { retainUntil: APRIL });
    await writeFile(src, 'index v2');

    await expect(store.putFile('backups/b1/volumes/v/index.jsonl.gz', src)).rejects.toThrow(ObjectLockedError);
    expect((await store.get('backups/b1/volumes/v/index.jsonl.gz')).toString()).toBe('index v1');
    expect(await readdir(join(root, 'backups', 'b1', 'volumes', 'v'))).toEqual(['index.jsonl.gz']);
  });

  it('refuses keys inside the lock journal directory', async () => {
    const store = new FileVaultStore(await tempDir('lock-reserved'));

    await expect(store.put('.object-lock/journal.jsonl', Buffer.from('x'))).rejects.toThrow(/lock journal/);
  });
});

describe('S3 vault over s3rver, on the wire', () => {
  it('says an object has no lock, and passes on that the server cannot place a legal hold', async () => {
    const store = new S3VaultStore({ bucket: 'lock-bucket', prefix: 'nohold', endpoint, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, checksums: 'WHEN_REQUIRED', maxAttempts: 1 });
    await store.put(PACK, Buffer.from('pack'), { retainUntil: APRIL });

    expect(await store.head(PACK)).toEqual({ key: PACK, size: 4, legalHold: false });
    await expect(store.setLegalHold(PACK, true)).rejects.toMatchObject({ name: 'MethodNotAllowed' });
  });

  it('sends no request that asks to bypass governance retention, deleting one key or a batch', async () => {
    const store = new S3VaultStore({ bucket: 'lock-bucket', prefix: 'wire', endpoint, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, checksums: 'WHEN_REQUIRED', maxAttempts: 1 });
    const sent: Record<string, string>[] = [];
    store.client.middlewareStack.add(
      (next) => async (args) => {
        sent.push({ ...(args.request as { headers: Record<string, string> }).headers });
        return next(args);
      },
      { step: 'finalizeRequest', name: 'recordHeaders' },
    );
    await store.put('data/packs/aa/1.pack', Buffer.from('1'));
    await store.put('data/packs/aa/2.pack', Buffer.from('2'));

    await store.delete('data/packs/aa/1.pack');
    await store.deleteMany(['data/packs/aa/2.pack']);

    expect(sent.length).toBeGreaterThan(3);
    expect(sent.filter((h) => Object.keys(h).some((name) => name.toLowerCase() === 'x-amz-bypass-governance-retention'))).toEqual([]);
    expect(await keys(store, 'data/')).toEqual([]);
  });
});

import { afterEach, describe, expect, test } from '@jest/globals';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeBinlogDescriptor } from '../../local/milvus/binlog.js';
import { decodeEtcdDb, ETCD_DB_PATH, readEtcd, writeEtcdDb } from '../../local/milvus/etcd-store.js';
import { completeFlush } from '../../local/milvus/state.js';
import { DEFAULT_COLLECTIONS, readMilvusState, seedMilvusData } from '../../local/milvus/index.js';
import { fingerprint, tempVolumes, type TempVolumes } from './helpers.js';

const small = [{ database: 'default', name: 'docs', dim: 8, rows: 1000, segments: 2 }];
const made: TempVolumes[] = [];
async function volumes(): Promise<TempVolumes> {
  const v = await tempVolumes();
  made.push(v);
  return v;
}
afterEach(async () => {
  await Promise.all(made.splice(0).map((v) => v.cleanup()));
});

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  await walk(dir);
  return out;
}

describe('seedMilvusData', () => {
  test('the same seed gives byte-identical files with identical mtimes', async () => {
    // Prepare
    const a = await volumes();
    const b = await volumes();
    // Act
    await seedMilvusData(a.volumes, { seed: 7 });
    await seedMilvusData(b.volumes, { seed: 7 });
    // Assess
    const fa = await fingerprint(a.root);
    expect(fa.size).toBeGreaterThan(50);
    expect(await fingerprint(b.root)).toEqual(fa);
  });

  test('a different seed gives different payload bytes', async () => {
    const a = await volumes();
    const b = await volumes();
    await seedMilvusData(a.volumes, { seed: 1, collections: small });
    await seedMilvusData(b.volumes, { seed: 2, collections: small });
    expect(await fingerprint(b.root)).not.toEqual(await fingerprint(a.root));
  });

  test('seeding volumes that are already seeded writes nothing', async () => {
    // Prepare
    const v = await volumes();
    await seedMilvusData(v.volumes, { collections: small });
    const marker = join(v.volumes.minioDirs[0]!, 'operator-note');
    await writeFile(marker, 'left alone');
    const before = await fingerprint(v.root);
    // Act
    await seedMilvusData(v.volumes, { seed: 99, collections: small });
    // Assess
    expect(await fingerprint(v.root)).toEqual(before);
  });

  test('every etcd member holds the same keyspace with Milvus key layout', async () => {
    const v = await volumes();
    await seedMilvusData(v.volumes);
    const files = await Promise.all(v.volumes.etcdDirs.map((d) => readFile(join(d, ETCD_DB_PATH))));
    expect(files[1]!.equals(files[0]!)).toBe(true);
    expect(files[2]!.equals(files[0]!)).toBe(true);
    expect(files[0]!.toString('ascii', 0, 8)).toBe('MGETCDB1');
    const keys = [...decodeEtcdDb(files[0]!).entries.keys()];
    expect(keys).toContain('by-dev/meta/root-coord/database/db-info/1');
    expect(keys.some((k) => /^by-dev\/meta\/root-coord\/database\/collection-info\/1\/\d+$/.test(k))).toBe(true);
    expect(keys.some((k) => /^by-dev\/meta\/datacoord-meta\/s\/\d+\/\d+\/\d+$/.test(k))).toBe(true);
    for (const d of v.volumes.etcdDirs) {
      expect(await readdir(join(d, 'member', 'wal'))).toEqual(['0000000000000000-0000000000000000.wal']);
    }
  });

  test('creates the default databases and collections', async () => {
    const v = await volumes();
    await seedMilvusData(v.volumes);
    const state = await readMilvusState(v.volumes);
    expect(state.databases.map((d) => d.name)).toEqual(['default', 'analytics']);
    expect(state.collections.map((c) => [c.database, c.name, c.dim])).toEqual(
      DEFAULT_COLLECTIONS.map((c) => [c.database, c.name, c.dim]),
    );
  });

  test('insert binlogs start with the Milvus magic and record their row counts', async () => {
    // Prepare
    const v = await volumes();
    await seedMilvusData(v.volumes, { collections: small });
    // Act
    const all = (await Promise.all(v.volumes.minioDirs.map(filesUnder))).flat();
    const pkLogs = all.filter((p) => /\/insert_log\/\d+\/\d+\/\d+\/100\/\d+\/xl\.meta$/.test(p));
    const headers = await Promise.all(
      pkLogs.map(async (p) => {
        const file = await readFile(p);
        const jsonLength = file.readUInt32LE(8);
        return decodeBinlogDescriptor(file.subarray(12 + jsonLength)); // inline data follows the metadata
      }),
    );
    // Assess
    expect(headers).toHaveLength(2);
    const state = await readMilvusState(v.volumes);
    const flushed = headers.reduce((sum, h) => sum + h.numRows, 0);
    const c = state.collections[0]!;
    expect(flushed + c.growingRows).toBe(1000);
    expect(headers.every((h) => h.fieldId === 100n && h.collectionId.toString() === c.id)).toBe(true);
  });

  test('objects are spread over all four MinIO drives, each with format.json', async () => {
    const v = await volumes();
    await seedMilvusData(v.volumes);
    expect(v.volumes.minioDirs).toHaveLength(4);
    for (const drive of v.volumes.minioDirs) {
      const format = JSON.parse(await readFile(join(drive, '.minio.sys', 'format.json'), 'utf8')) as { format: string };
      expect(format.format).toBe('xl');
      const objects = (await filesUnder(join(drive, 'milvus-bucket', 'file'))).filter((p) => p.endsWith('xl.meta'));
      expect(objects.length).toBeGreaterThan(5);
    }
  });

  test('large objects keep their data in a part file, vector payload is incompressible', async () => {
    const v = await volumes();
    await seedMilvusData(v.volumes);
    const all = (await Promise.all(v.volumes.minioDirs.map(filesUnder))).flat();
    const parts = all.filter((p) => p.endsWith('/part.1'));
    expect(parts.length).toBeGreaterThan(0);
    const { gzipSync } = await import('node:zlib');
    const data = await readFile(parts[0]!);
    expect(gzipSync(data).length).toBeGreaterThan(data.length * 0.95);
  });

  test('the default data set is a few MiB and scale multiplies rows', async () => {
    // Prepare
    const one = await volumes();
    const three = await volumes();
    // Act
    await seedMilvusData(one.volumes);
    await seedMilvusData(three.volumes, { scale: 3 });
    // Assess
    const bytes = async (root: string): Promise<number> => {
      let total = 0;
      for (const f of await filesUnder(root)) total += (await readFile(f)).length;
      return total;
    };
    const size = await bytes(one.root);
    expect(size).toBeGreaterThan(2 * 1024 * 1024);
    expect(size).toBeLessThan(8 * 1024 * 1024);
    const rows = async (t: TempVolumes): Promise<number> =>
      (await readMilvusState(t.volumes)).collections.reduce((s, c) => s + c.persistedRows + c.growingRows, 0);
    const r1 = await rows(one);
    const r3 = await rows(three);
    expect(r3 / r1).toBeGreaterThan(2.9);
    expect(r3 / r1).toBeLessThan(3.1);
    expect(await bytes(three.root)).toBeGreaterThan(size * 2);
  });

  describe('payloads', () => {
    // 8,192-row segments of 64-dim vectors: 2 MiB of vectors each, well over the 256 KiB cap.
    const wide = [{ database: 'default', name: 'docs', dim: 64, rows: 20_000 }];
    const vectorBinlogs = async (t: TempVolumes, segmentState: 'Flushed' | 'Growing' | 'any' = 'any') => {
      const { entries } = await readEtcd(t.volumes.etcdDirs);
      const keep = new Set(
        [...entries]
          .filter(([k]) => k.includes('/datacoord-meta/s/'))
          .map(([, value]) => JSON.parse(value) as { ID: string; state: string })
          .filter((seg) => segmentState === 'any' || seg.state === segmentState)
          .map((seg) => seg.ID),
      );
      return [...entries]
        .filter(([k]) => /\/datacoord-meta\/binlog\/\d+\/\d+\/\d+\/101$/.test(k) && keep.has(k.split('/').at(-2)!))
        .flatMap(([, value]) => (JSON.parse(value) as { binlogs: { log_size: number; memory_size: number; entries_num: number }[] }).binlogs);
    };
    const indexSizes = async (t: TempVolumes) =>
      [...(await readEtcd(t.volumes.etcdDirs)).entries]
        .filter(([k]) => k.includes('/segment-index/'))
        .map(([, value]) => JSON.parse(value) as { num_rows: number; serialize_size: number });

    test('full payloads write every vector binlog and index at the size its rows take; capped ones cut them short', async () => {
      // Prepare
      const full = await volumes();
      const capped = await volumes();
      // Act
      await seedMilvusData(full.volumes, { collections: wide, payloads: 'full' });
      await seedMilvusData(capped.volumes, { collections: wide });
      // Assess
      const fullLogs = await vectorBinlogs(full);
      expect(fullLogs.length).toBeGreaterThan(1);
      // The file is the payload (rows × dim × 4 bytes) plus the binlog's headers.
      for (const b of fullLogs) expect(b.log_size - b.memory_size).toBeGreaterThan(0);
      for (const b of fullLogs) expect(b.log_size - b.memory_size).toBeLessThan(512);
      for (const b of fullLogs) expect(b.memory_size).toBe(b.entries_num * 64 * 4);
      // An HNSW file (M = 16): the vector, 32 base-layer links and their count, the norm, the upper layers.
      for (const i of await indexSizes(full)) expect(i.serialize_size).toBe(i.num_rows * (64 * 4 + 33 * 4 + 8));
      for (const b of await vectorBinlogs(capped)) expect(b.log_size).toBeLessThan(b.memory_size);
      // The same rows either way: only the bytes differ.
      const rows = async (t: TempVolumes) => (await readMilvusState(t.volumes)).collections.map((c) => [c.persistedRows, c.growingRows]);
      expect(await rows(full)).toEqual(await rows(capped));
    });

    test('a flush writes its payloads the way the instance was seeded', async () => {
      // `small`'s sealed payloads are all under the cap: whole either way, so only the recorded
      // mode tells a flush how to write.
      for (const [payloads, collections] of [['full', wide], ['capped', wide], ['capped', small], ['full', small]] as const) {
        // Prepare: a growing segment whose vectors (1 MiB) exceed the 256 KiB cap.
        const dim = collections[0]!.dim;
        const rows = 1024 ** 2 / (dim * 4);
        const t = await volumes();
        await seedMilvusData(t.volumes, { collections: [...collections], payloads });
        const { revision, entries } = await readEtcd(t.volumes.etcdDirs);
        const [key, value] = [...entries].find(([k, val]) => k.includes('/datacoord-meta/s/') && (JSON.parse(val) as { state: string }).state === 'Growing')!;
        entries.set(key, JSON.stringify({ ...(JSON.parse(value) as object), num_of_rows: rows }));
        await writeEtcdDb(t.volumes.etcdDirs, { revision: revision + 1, entries });
        const collection = (await readMilvusState(t.volumes)).collections[0]!;
        // Act
        const flushed = await completeFlush(t.volumes, collection.id, new Date(Date.UTC(2025, 3, 1)));
        // Assess
        expect(flushed).toHaveLength(1);
        const [log] = (await vectorBinlogs(t, 'Flushed')).filter((b) => b.entries_num === rows);
        expect(log?.memory_size).toBe(1024 ** 2);
        if (payloads === 'full') expect(log!.log_size).toBeGreaterThan(log!.memory_size);
        else expect(log!.log_size).toBeLessThan(257 * 1024);
      }
    });

    test('rejects an unknown payload mode, naming the ones allowed', async () => {
      const v = await volumes();
      await expect(seedMilvusData(v.volumes, { collections: small, payloads: 'huge' as never })).rejects.toThrow('payloads must be one of capped, full, got "huge"');
    });
  });

  test('rejects an invalid collection spec with the reason', async () => {
    const v = await volumes();
    await expect(
      seedMilvusData(v.volumes, { collections: [{ database: 'default', name: 'bad-name', dim: 8, rows: 10 }] }),
    ).rejects.toThrow(/letters, digits and underscores/);
  });
});

import { afterEach, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../core/errors.js';
import { startLocalCluster } from '../../local/cluster.js';
import { readEtcd } from '../../local/milvus/etcd-store.js';
import { etcdKeys } from '../../local/milvus/meta.js';
import { SEED_BYTES_PER_SCALE, SEED_MILVUS, SEED_NAMESPACE } from '../../local/seed.js';

// `seedPayloads` (behind `local up --payloads`) reaches the seed of a fresh cluster, which records
// it for later flushes, and a full seed the disk cannot hold is refused before it starts.
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});
const stateDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'mg-payloads-'));
  dirs.push(d);
  return d;
};

describe('a fresh local cluster seeded with full payloads', () => {
  test('records the mode in its etcd, and its vector binlogs are whole', async () => {
    const cluster = await startLocalCluster({ stateDir: await stateDir(), port: 0, tickMs: 50, seedPayloads: 'full' });
    try {
      const volumes = cluster.milvus.volumesOf(SEED_NAMESPACE, SEED_MILVUS)!;
      const { entries } = await readEtcd(volumes.etcdDirs);
      expect(entries.get(etcdKeys.seedPayloads())).toBe('full');
      const vectorLogs = [...entries]
        .filter(([k]) => /\/datacoord-meta\/binlog\/\d+\/\d+\/\d+\/101$/.test(k))
        .flatMap(([, v]) => (JSON.parse(v) as { binlogs: { log_size: number; memory_size: number }[] }).binlogs);
      expect(vectorLogs.length).toBeGreaterThan(0);
      for (const b of vectorLogs) expect(b.log_size).toBeGreaterThan(b.memory_size);
    } finally {
      await cluster.stop();
    }
  }, 60_000);

  test('is refused before seeding when the disk cannot hold it, naming both sizes', async () => {
    const dir = await stateDir();
    const { bavail, bsize } = await statfs(dir);
    const scale = Math.ceil((bavail * bsize) / SEED_BYTES_PER_SCALE.full) + 10;

    const started = startLocalCluster({ stateDir: dir, port: 0, tickMs: 50, dataScale: scale, seedPayloads: 'full' });

    await expect(started).rejects.toThrow(UserError);
    await expect(started).rejects.toThrow(new RegExp(`^--data-scale ${scale} with full payloads needs about [\\d.]+ GiB, but only [\\d.]+ GiB are free in .+: lower --data-scale or free space$`));
  }, 60_000);
});

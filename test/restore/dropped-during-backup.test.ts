import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { BackupRecord, RestoreRecord } from '../../core/catalog/record.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { runLocalBackup, type LocalBackupResult } from '../../local/workflows/runner.js';
import { renderBackup } from '../../cli/commands/backup.js';
import { renderRestore } from '../../cli/commands/restore.js';
import { MILVUS, NAMESPACE, PLAN, startSeededCluster, type SeededCluster } from '../backup/helpers.js';
import { rest } from '../local-milvus/helpers.js';
import { restore, restoreServicesOf } from './helpers.js';

// Applications drop collections while a backup runs: one that swaps collections behind an alias
// drops the old one once the new one serves. The real workflow against the local cluster, two
// collections dropped through REST v2: one once its flush is asked for, before it is confirmed,
// and one once it is confirmed, before the snapshots are cut.

const FULL_RUN = 240_000;

let c: SeededCluster;
let config: Config;
let backupResult: LocalBackupResult;
let record: BackupRecord;

const sim = () => c.cluster.milvus.get(NAMESPACE, MILVUS)!;
const services = () => restoreServicesOf(c, config);

async function drop(dbName: string, collectionName: string): Promise<void> {
  const res = await rest(sim(), '/v2/vectordb/collections/drop', { dbName, collectionName });
  expect(res.json.code).toBe(0);
}

beforeAll(async () => {
  c = await startSeededCluster();
  config = await loadConfigFile('examples/production.yaml');
  const dropBefore: Record<string, () => Promise<void>> = {
    CheckFlush: () => drop('default', 'user_profiles'),
    Snapshot: () => drop('analytics', 'session_vectors'),
  };
  backupResult = await runLocalBackup({
    stateDir: c.stateDir,
    config,
    input: { plan: PLAN, backupName: 'dropped-during' },
    timings: { flushTimeoutSeconds: 30, snapshotTimeoutSeconds: 60, exportTimeoutSeconds: 120 },
    beforeTask: async (state) => {
      const d = dropBefore[state];
      delete dropBefore[state];
      await d?.();
    },
  });
  record = (await services().catalog.getBackup('dropped-during'))!;
}, FULL_RUN);

afterAll(async () => {
  await c?.dispose();
});

describe('a backup of a Milvus whose collections are dropped while it runs', () => {
  it('succeeds', () => {
    expect(backupResult.status).toBe('SUCCEEDED');
    expect(record.status).toBe('Available');
  });

  it('records no count for the collection dropped before its flush was confirmed, and names it', () => {
    expect(record.rowCounts.map((r) => `${r.database}.${r.collection}`).sort()).toEqual(['analytics.session_vectors', 'default.product_embeddings']);
    expect(record.droppedBeforeFlush).toEqual([{ database: 'default', collection: 'user_profiles' }]);
  });

  it('keeps the count of the one dropped after its flush, marked dropped during the backup', () => {
    const counts = record.rowCounts.find((r) => r.collection === 'session_vectors')!;
    expect(counts).toMatchObject({ rows: 25_000, droppedDuringBackup: true, collectionId: expect.stringMatching(/^\d{15,}$/) });
    expect(counts.rowsAfterSnapshots).toBeUndefined();
    expect(record.rowCounts.find((r) => r.collection === 'product_embeddings')!.droppedDuringBackup).toBeUndefined();
  });

  it("names both in the Recount step's line", () => {
    expect(record.steps.Recount).toMatchObject({ outcome: 'Succeeded' });
    expect(record.steps.Recount!.detail).toContain('2 dropped during the backup');
    expect(record.steps.Recount!.detail).toContain('default.user_profiles (before its flush was confirmed: not in the backup)');
    expect(record.steps.Recount!.detail).toContain('analytics.session_vectors (after its flush: a restore may or may not have it)');
  });

  it('lists both in backup describe', () => {
    const text = renderBackup(record);
    expect(text).toContain('Dropped during the backup:\n  before its flush was confirmed (not in the backup): default.user_profiles\n  after its flush (a restore may or may not have it): analytics.session_vectors\n');
  });
});

describe('its restore', () => {
  let restored: RestoreRecord;

  beforeAll(async () => {
    const result = await restore(c, config, { backupId: 'dropped-during', targetNamespace: 'vector-db-dropped', source: 'snapshot', restoreName: 'dropped-during-restore' });
    expect(result.error).toBeUndefined();
    restored = (await services().catalog.getRestore('dropped-during-restore'))!;
  }, FULL_RUN);

  it('passes validation without the collection dropped before the cut, saying so', () => {
    expect(restored.status).toBe('Completed');
    const check = restored.validation!.collections.find((v) => v.collection === 'session_vectors')!;
    expect(check).toMatchObject({ ok: true, droppedDuringBackup: true, loaded: false });
    expect(check.restored).toBeUndefined();
    const line = renderRestore(restored).split('\n').find((l) => l.includes('analytics.session_vectors'))!;
    expect(line).toContain('dropped during the backup: not restored');
  });

  it('still checks the collection nobody dropped', () => {
    const check = restored.validation!.collections.find((v) => v.collection === 'product_embeddings')!;
    expect(check).toMatchObject({ ok: true, restored: check.expected });
    expect(check.droppedDuringBackup).toBeUndefined();
  });
});

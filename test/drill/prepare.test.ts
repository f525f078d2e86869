import { beforeAll, describe, expect, it } from '@jest/globals';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { prepareDrillStep } from '../../core/drill/workflow.js';
import { backupInput } from '../backup/catalog-helpers.js';

// PrepareDrill builds the input of the drill's nested restore from the drill's settings: a
// drill into a cluster whose StorageClasses are named otherwise maps them as a restore does.

const DRILL = 'production-weekly-drill';
let config: Config;

beforeAll(async () => {
  const example = await loadConfigFile('examples/production.yaml');
  config = { ...example, drills: example.drills.map((d) => ({ ...d, storageClassMap: { gp3: 'gp3-drill', '': 'gp3-drill' } })) };
});

const request = { input: { drill: DRILL }, execution: { id: 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-drill:d1', startTime: '2026-11-29T04:00:00.000Z' } };

describe('PrepareDrill', () => {
  it("passes the drill's storageClassMap to its restore, and none when the drill names none", async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createBackup({ ...backupInput('nightly-1', '2026-11-28T02:00:00.000Z', { plan: 'milvus-production-backup' }), status: 'Available', completedAt: '2026-11-28T02:20:00.000Z' });
    const vault = { name: 'primary', bucket: 'vault-bucket' };

    const mapped = await prepareDrillStep({ config, catalog, region: 'us-east-1' }, vault, request);
    const plain = await prepareDrillStep({ config: { ...config, drills: config.drills.map(({ storageClassMap: _none, ...d }) => d) }, catalog, region: 'us-east-1' }, vault, request);

    expect(mapped.restore).toMatchObject({ backupId: 'nightly-1', storageClassMap: { gp3: 'gp3-drill', '': 'gp3-drill' } });
    expect(plain.restore).not.toHaveProperty('storageClassMap');
  });
});

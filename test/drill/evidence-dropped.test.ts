import { describe, expect, it } from '@jest/globals';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { DrillEvidence, recordEvidenceStep } from '../../core/drill/workflow.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { preparedDrill, restoreRecord } from '../cli/helpers.js';

// A drill's evidence keeps what validation said of a collection dropped during the backup (not
// restored, or created again under its name): the report must not read as if it was checked.

const NOW = () => new Date('2026-11-23T06:10:00.000Z');

const drill = preparedDrill();

describe('drill evidence of collections dropped during the backup', () => {
  it('keeps droppedDuringBackup and recreatedDuringBackup from the restore checks', async () => {
    const catalog = new InMemoryCatalog();
    const vault = new InMemoryVaultStore();
    await catalog.createRestore(
      restoreRecord({
        restoreId: drill.drillId,
        validation: {
          passed: true,
          collections: [
            { database: 'default', collection: 'docs', expected: 10, restored: 10, loaded: true, ok: true },
            { database: 'default', collection: 'old_docs', expected: 7, loaded: false, ok: true, droppedDuringBackup: true },
            { database: 'default', collection: 'swapped', expected: 5, loaded: false, ok: true, droppedDuringBackup: true, recreatedDuringBackup: true },
          ],
        },
      }),
    );

    const { evidenceKey, passed } = await recordEvidenceStep({ catalog, vault, events: { publish: async () => {} }, now: NOW }, drill, { cleanup: { namespaceDeleted: true } });

    const evidence = DrillEvidence.parse(JSON.parse((await vault.get(evidenceKey)).toString('utf8')));
    expect(passed).toBe(true);
    expect(evidence.collections).toEqual([
      { name: 'default.docs', expected: 10, restored: 10, ok: true },
      { name: 'default.old_docs', expected: 7, ok: true, droppedDuringBackup: true },
      { name: 'default.swapped', expected: 5, ok: true, droppedDuringBackup: true, recreatedDuringBackup: true },
    ]);
  });
});

describe('drill evidence of a restore recorded Completed whose execution failed after', () => {
  it('passes: the restore was validated; a Complete Task timeout after the update is not its failure', async () => {
    const catalog = new InMemoryCatalog();
    const vault = new InMemoryVaultStore();
    await catalog.createRestore(restoreRecord({ restoreId: drill.drillId }));

    const { evidenceKey, passed } = await recordEvidenceStep({ catalog, vault, events: { publish: async () => {} }, now: NOW }, drill, {
      restoreError: { Error: 'States.Timeout', Cause: 'Task timed out after 300 seconds' },
      cleanup: { namespaceDeleted: true },
    });

    const evidence = DrillEvidence.parse(JSON.parse((await vault.get(evidenceKey)).toString('utf8')));
    expect(passed).toBe(true);
    expect(evidence.restore).toMatchObject({ status: 'Completed' });
    expect(evidence.restore.error).toBeUndefined();
  });
});

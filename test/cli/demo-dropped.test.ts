import { describe, expect, it } from '@jest/globals';
import type { CollectionCheck } from '../../core/catalog/record.js';
import { collectionsChecked } from '../../core/restore/validate.js';
import { servedRows } from '../../cli/commands/demo.js';

// A collection dropped during the backup and not restored as backed up was not checked: the
// tallies (the Restore Completed event's `collections`, the demos' served rows) leave it out.

const checks: CollectionCheck[] = [
  { database: 'default', collection: 'docs', expected: 10, restored: 10, loaded: true, ok: true },
  { database: 'default', collection: 'old_docs', expected: 7, loaded: false, ok: true, droppedDuringBackup: true },
  { database: 'default', collection: 'swapped', expected: 5, loaded: false, ok: true, droppedDuringBackup: true, recreatedDuringBackup: true },
];

describe('tallies of a restore with collections dropped during the backup', () => {
  it('count only the collections checked', () => {
    expect(collectionsChecked(checks)).toBe(1);
  });

  it("asks the restored Milvus for the served rows of the checked ones only (a dropped one would answer collection not found)", async () => {
    const asked: string[] = [];
    const milvus = {
      countRows: async (_db: string, c: string) => (asked.push(c), 10),
      persistedRowCount: async (_db: string, c: string) => (asked.push(c), 10),
    };

    const served = await servedRows(milvus, checks);

    expect(asked).toEqual(['docs']);
    expect([...served]).toEqual([['default.docs', 10]]);
  });
});

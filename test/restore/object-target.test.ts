import { beforeAll, describe, expect, it } from '@jest/globals';
import type { BackupRecord } from '../../core/catalog/record.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan, type ResolvedPlan } from '../../core/config/resolve.js';
import { objectRestoreTarget } from '../../core/restore/prepare.js';

// Where a restore copies a backup's Milvus bucket objects: inside a declared restore target,
// never over the bucket prefix the backup was taken from.

let plan: ResolvedPlan['plan'];
const copy = { source: { bucket: 'acme-milvus', rootPath: 'files' }, key: 'backups/b/objects/commit.json', sha256: 'c'.repeat(64), size: 100, pages: 1, objects: 3, bytes: 30, copied: 3, bytesCopied: 30 };
const backup = { backupId: 'b', objectCopy: copy } as unknown as BackupRecord;

beforeAll(async () => {
  const config = await loadConfigFile('examples/production.yaml');
  const p = resolvePlan(config, config.plans[0]!.name).plan;
  plan = { ...p, milvus: { ...p.milvus, objectStorage: { bucket: 'acme-milvus', rootPath: 'files', restoreTargets: [{ bucket: 'acme-restores', prefix: 'milvus' }, { bucket: 'acme-milvus', prefix: '' }] } } };
});

describe('objectRestoreTarget', () => {
  it('defaults to the first restore target, below the restore name, with the commit the record holds', () => {
    expect(objectRestoreTarget(plan, backup, undefined, 'b-r1')).toEqual({ commit: { sha256: copy.sha256, objects: 3, bytes: 30 }, target: { bucket: 'acme-restores', prefix: 'milvus/b-r1' } });
  });

  it('takes a prefix below a declared target', () => {
    expect(objectRestoreTarget(plan, backup, { bucket: 'acme-restores', prefix: 'milvus/drill/1' }, 'b-r1')?.target).toEqual({ bucket: 'acme-restores', prefix: 'milvus/drill/1' });
  });

  it('refuses a prefix outside every target, naming them', () => {
    expect(() => objectRestoreTarget(plan, backup, { bucket: 'acme-restores', prefix: 'milvus-other' }, 'r')).toThrow(/objectStorage: s3:\/\/acme-restores\/milvus-other is not inside a restore target of plan milvus-production-backup \(s3:\/\/acme-restores\/milvus, s3:\/\/acme-milvus\/\)/);
  });

  it('refuses the root path the backup was taken from, a prefix inside it, and one that contains it', () => {
    for (const prefix of ['files', 'files/restored', '']) {
      expect(() => objectRestoreTarget(plan, backup, { bucket: 'acme-milvus', prefix }, 'r')).toThrow(/overlaps the root path the backup was taken from \(s3:\/\/acme-milvus\/files\)/);
    }
    expect(objectRestoreTarget(plan, backup, { bucket: 'acme-milvus', prefix: 'files-restored' }, 'r')?.target.prefix).toBe('files-restored');
  });

  it('asks for restore targets when the plan declares none, and refuses objectStorage for a backup without a bucket copy', () => {
    const bare = { ...plan, milvus: { ...plan.milvus, objectStorage: { ...plan.milvus.objectStorage!, restoreTargets: [] } } };
    expect(() => objectRestoreTarget(bare, backup, undefined, 'r')).toThrow(/declares nowhere to restore it \(milvus\.objectStorage\.restoreTargets\)/);
    expect(() => objectRestoreTarget(plan, { backupId: 'v' } as BackupRecord, { bucket: 'acme-restores', prefix: 'milvus' }, 'r')).toThrow(/holds no copy of a Milvus bucket/);
    expect(objectRestoreTarget(plan, { backupId: 'v' } as BackupRecord, undefined, 'r')).toBeUndefined();
  });
});

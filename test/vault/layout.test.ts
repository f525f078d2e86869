import { describe, expect, it } from '@jest/globals';
import {
  backupRecordKey,
  InvalidKeyPartError,
  manifestKey,
  packIdFromKey,
  packKey,
  parseVolumeSummaryKey,
  volumeIndexKey,
  volumeSummaryKey,
} from '../../core/vault/layout.js';
import { UserError } from '../../core/errors.js';

const PACK = '0123456789abcdef0123456789abcdef';

describe('vault key layout', () => {
  it('fans packs out by their first two hex digits and reads the id back', () => {
    expect(packKey(PACK)).toBe(`data/packs/01/${PACK}.pack`);
    expect(packIdFromKey(packKey(PACK))).toBe(PACK);
    expect(packIdFromKey('backups/b1/backup.json')).toBeUndefined();
  });

  it('keeps everything a backup owns under its own prefix', () => {
    expect(volumeIndexKey('2026-03-01t0200-daily', 'data-milvus-etcd-0')).toBe('backups/2026-03-01t0200-daily/volumes/data-milvus-etcd-0/index.jsonl.gz');
    expect(backupRecordKey('b1')).toBe('backups/b1/backup.json');
    expect(manifestKey('b1', { group: 'apps', kind: 'StatefulSet', namespace: 'milvus', name: 'milvus-etcd' })).toBe('backups/b1/manifests/apps/StatefulSet/milvus/milvus-etcd.yaml');
    expect(manifestKey('b1', { group: 'core', kind: 'Namespace', name: 'milvus' })).toBe('backups/b1/manifests/core/Namespace/_cluster/milvus.yaml');
  });

  it('parses volume summary keys back into volume and backup id', () => {
    expect(parseVolumeSummaryKey(volumeSummaryKey('b1', 'etcd'))).toEqual({ volume: 'etcd', backupId: 'b1' });
    expect(parseVolumeSummaryKey('volumes/etcd/backups/b1.json.tmp')).toBeUndefined();
  });

  it.each([['../escape'], ['a/b'], [''], ['.'], ['-x'], ['x'.repeat(254)]])('refuses %j as a backup id or volume name', (bad) => {
    expect(() => volumeIndexKey(bad, 'v')).toThrow(InvalidKeyPartError);
    expect(() => volumeIndexKey('b', bad)).toThrow(UserError);
  });

  it('refuses a pack id that is not 32 hex digits', () => {
    expect(() => packKey('../../etc/passwd')).toThrow(/expected 32 lowercase hex digits/);
  });
});

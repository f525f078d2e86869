import { beforeAll, describe, expect, it } from '@jest/globals';
import type { BackupRecord } from '../../core/catalog/record.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan, type ResolvedPlan } from '../../core/config/resolve.js';
import { pointConfigAtBucket } from '../../core/restore/manifests.js';
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
    expect(objectRestoreTarget(plan, backup, undefined, 'b-r1')).toEqual({ commit: { sha256: copy.sha256, objects: 3, bytes: 30 }, source: copy.source, target: { bucket: 'acme-restores', prefix: 'milvus/restores/b-r1' } });
    // Drills under a prefix of their own, so a lifecycle rule can expire their copies alone.
    expect(objectRestoreTarget(plan, backup, undefined, 'b-d1', { drill: true })?.target.prefix).toBe('milvus/drills/b-d1');
  });

  it("defaults to the first target in the restore's region, and says when there is none", () => {
    const regional = { ...plan, milvus: { ...plan.milvus, objectStorage: { ...plan.milvus.objectStorage!, restoreTargets: [{ bucket: 'acme-east', prefix: 'm', region: 'us-east-1' as const }, { bucket: 'acme-west', prefix: 'm', region: 'us-west-2' as const }] } } };

    expect(objectRestoreTarget(regional, backup, undefined, 'r', { region: 'us-west-2' })?.target).toEqual({ bucket: 'acme-west', prefix: 'm/restores/r' });
    expect(() => objectRestoreTarget(regional, backup, undefined, 'r', { region: 'eu-west-1' })).toThrow(/declares no restore target in eu-west-1/);
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

describe('pointConfigAtBucket', () => {
  const source = { bucket: 'acme-milvus', rootPath: 'files' };
  const target = { bucket: 'acme-restores', prefix: 'milvus/restores/r1' };
  const configMap = (data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'my-release-milvus' }, data });

  it("moves a Helm release's config off the bucket the backup was taken from, keeping the rest", () => {
    const moved = pointConfigAtBucket(configMap({ 'default.yaml': '# rendered by the chart\nminio:\n  address: s3.us-east-1.amazonaws.com\n  port: 443\n  bucketName: acme-milvus\n  rootPath: files\n', 'user.yaml': 'proxy:\n  maxTaskNum: 2048\n' }), source, target) as unknown as { data: Record<string, string> };

    expect(moved.data['default.yaml']).toBe('# rendered by the chart\nminio:\n  address: s3.us-east-1.amazonaws.com\n  port: 443\n  bucketName: acme-restores\n  rootPath: milvus/restores/r1\n');
    expect(moved.data['user.yaml']).toBe('proxy:\n  maxTaskNum: 2048\n');
  });

  it('leaves other ConfigMaps, and configs of other buckets or root paths, alone', () => {
    const other = configMap({ 'app.properties': 'x=1' });
    const elsewhere = configMap({ 'user.yaml': 'minio:\n  bucketName: acme-milvus\n  rootPath: other\n' });

    expect(pointConfigAtBucket(other, source, target)).toBe(other);
    expect(pointConfigAtBucket(elsewhere, source, target)).toBe(elsewhere);
  });
});

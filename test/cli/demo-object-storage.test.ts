import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DEMO_RESTORE_BUCKET, type DemoSummary } from '../../cli/commands/demo.js';
import { runDemoCommand, type DemoRun } from './demo-run.js';
import { SEED_S3_BUCKET, SEED_S3_ROOT_PATH } from '../../local/seed.js';

// `demo --object-storage s3`: the whole story against a Milvus that keeps its segments in an
// external S3 bucket (locally a directory). The disaster deletes the namespace and every object
// under the Milvus's root path; the restore can only come from the vault's copy.

let run: DemoRun;

beforeAll(async () => {
  run = await runDemoCommand(['--object-storage', 's3']);
}, 180_000);

afterAll(async () => {
  await rm(join(run.dir, '..'), { recursive: true, force: true });
});

describe('demo --object-storage s3', () => {
  it('passes: the bucket copied at backup, destroyed, and restored from the vault into the restore bucket', async () => {
    const summary = JSON.parse(run.stdout) as DemoSummary;
    expect({ code: run.code, passed: summary.passed, reason: summary.reason }).toEqual({ code: 0, passed: true, reason: undefined });
    expect(summary.collections.length).toBe(3);
    const log = run.stderr;
    expect(log).toMatch(new RegExp(`\\d+ objects of s3://${SEED_S3_BUCKET}/${SEED_S3_ROOT_PATH} .* copied into the vault`));
    expect(log).toContain('deleting every Milvus object in its S3 bucket');
    const buckets = join(run.dir, 'object-storage');
    expect(await readdir(join(buckets, SEED_S3_BUCKET))).toEqual([]);
    expect((await readdir(join(buckets, DEMO_RESTORE_BUCKET, 'milvus', 'restores'))).length).toBe(1);
  });
});

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { DEMO_RESTORE_BUCKET, registerDemoCommands, type DemoIO, type DemoSummary } from '../../cli/commands/demo.js';
import { SEED_S3_BUCKET, SEED_S3_ROOT_PATH } from '../../local/seed.js';

// `demo --object-storage s3`: the whole story against a Milvus that keeps its segments in an
// external S3 bucket (locally a directory). The disaster deletes the namespace and every object
// under the Milvus's root path; the restore can only come from the vault's copy.

let dir: string;
const stdout: string[] = [];
const stderr: string[] = [];
let code: number;

const io: DemoIO = {
  out: (t) => void stdout.push(t),
  err: (t) => void stderr.push(t),
  clock: () => performance.now(),
  onInterrupt: () => () => undefined,
};

beforeAll(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'mg-demo-s3-')), 'state');
  process.exitCode = undefined;
  const program = new Command('milvus-guard').exitOverride();
  registerDemoCommands(program, io);
  try {
    await program.parseAsync(['node', 'milvus-guard', 'demo', '--object-storage', 's3', '--json', '--keep', dir]);
    code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  } finally {
    process.exitCode = undefined;
  }
}, 180_000);

afterAll(async () => {
  await rm(join(dir, '..'), { recursive: true, force: true });
});

describe('demo --object-storage s3', () => {
  it('passes: the bucket copied at backup, destroyed, and restored from the vault into the restore bucket', async () => {
    const summary = JSON.parse(stdout.join('')) as DemoSummary;
    expect({ code, passed: summary.passed, reason: summary.reason }).toEqual({ code: 0, passed: true, reason: undefined });
    expect(summary.collections.length).toBe(3);
    const log = stderr.join('');
    expect(log).toMatch(new RegExp(`\\d+ objects of s3://${SEED_S3_BUCKET}/${SEED_S3_ROOT_PATH} .* copied into the vault`));
    expect(log).toContain('deleting every Milvus object in its S3 bucket');
    const buckets = join(dir, 'object-storage');
    expect(await readdir(join(buckets, SEED_S3_BUCKET))).toEqual([]);
    expect((await readdir(join(buckets, DEMO_RESTORE_BUCKET, 'restores'))).length).toBe(1);
  });
});

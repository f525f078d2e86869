import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DemoSummary } from '../../cli/commands/demo.js';
import { runDemoCommand, type DemoRun } from './demo-run.js';
import { SEED_AUTH_SECRET } from '../../local/seed.js';
import { typeKey, typeOf } from '../../local/server/resources.js';
import { filesContaining } from '../backup/helpers.js';

// `demo --milvus-auth`: the whole story against a Milvus with authorization enabled, every Milvus
// call of the workflows and of the demo itself made through a relay with the seeded Secret.

let run: DemoRun;

beforeAll(async () => {
  run = await runDemoCommand(['--milvus-auth']);
}, 180_000);

afterAll(async () => {
  await rm(join(run.dir, '..'), { recursive: true, force: true });
});

describe('demo --milvus-auth', () => {
  it('passes: backed up, restored and validated with credentials', () => {
    const summary = JSON.parse(run.stdout) as DemoSummary;
    expect({ code: run.code, passed: summary.passed, reason: summary.reason }).toEqual({ code: 0, passed: true, reason: undefined });
    expect(summary.collections.length).toBe(3);
    expect(run.stderr).toContain(`authorization enabled; the plan's credentials are in Secret ${SEED_AUTH_SECRET}`);
  });

  it('never shows or stores the password outside the Secret itself', async () => {
    // The Secret as the API server stores it (base64), in the restored namespace too.
    const secrets = JSON.parse(await readFile(join(run.dir, 'objects', `${typeKey(typeOf('Secret'))}.json`), 'utf8')) as {
      metadata: { name: string; namespace: string };
      data: { password: string };
    }[];
    const restored = secrets.find((s) => s.metadata.name === SEED_AUTH_SECRET && s.metadata.namespace === 'vector-db-dr');
    expect(restored).toBeDefined();
    const password = Buffer.from(restored!.data.password, 'base64').toString('utf8');
    expect(password.length).toBeGreaterThan(16);
    expect(run.stdout + run.stderr).not.toContain(password);
    // objects/ is the cluster's own store (etcd's part): the Secret, and the Milvus CR whose
    // config sets root's first password. Everything milvus-guard wrote is elsewhere: the catalog,
    // the vault (the CR's manifest included), the executions and the pod logs.
    const found = await filesContaining(run.dir, password);
    expect(found.filter((f) => !f.startsWith('objects/'))).toEqual([]);
    expect(found).toContain(`objects/${typeKey(typeOf('Milvus'))}.json`);
  });
});

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerDemoCommands, type DemoIO, type DemoSummary } from '../../cli/commands/demo.js';
import { SEED_AUTH_SECRET } from '../../local/seed.js';
import { typeKey, typeOf } from '../../local/server/resources.js';
import { filesContaining } from '../backup/helpers.js';

// `demo --milvus-auth`: the whole story against a Milvus with authorization enabled, every Milvus
// call of the workflows and of the demo itself made through a relay with the seeded Secret.

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
  dir = join(await mkdtemp(join(tmpdir(), 'mg-demo-auth-')), 'state');
  process.exitCode = undefined;
  const program = new Command('milvus-guard').exitOverride();
  registerDemoCommands(program, io);
  try {
    await program.parseAsync(['node', 'milvus-guard', 'demo', '--milvus-auth', '--json', '--keep', dir]);
    code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  } finally {
    process.exitCode = undefined;
  }
}, 180_000);

afterAll(async () => {
  await rm(join(dir, '..'), { recursive: true, force: true });
});

describe('demo --milvus-auth', () => {
  it('passes: backed up, restored and validated with credentials', () => {
    const summary = JSON.parse(stdout.join('')) as DemoSummary;
    expect({ code, passed: summary.passed, reason: summary.reason }).toEqual({ code: 0, passed: true, reason: undefined });
    expect(summary.collections.length).toBe(3);
    expect(stderr.join('')).toContain(`authorization enabled; the plan's credentials are in Secret ${SEED_AUTH_SECRET}`);
  });

  it('never shows or stores the password outside the Secret itself', async () => {
    // The Secret as the API server stores it (base64), in the restored namespace too.
    const secrets = JSON.parse(await readFile(join(dir, 'objects', `${typeKey(typeOf('Secret'))}.json`), 'utf8')) as {
      metadata: { name: string; namespace: string };
      data: { password: string };
    }[];
    const restored = secrets.find((s) => s.metadata.name === SEED_AUTH_SECRET && s.metadata.namespace === 'vector-db-dr');
    expect(restored).toBeDefined();
    const password = Buffer.from(restored!.data.password, 'base64').toString('utf8');
    expect(password.length).toBeGreaterThan(16);
    expect(stdout.join('') + stderr.join('')).not.toContain(password);
    // objects/ is the cluster's own store (etcd's part): the Secret, and the Milvus CR whose
    // config sets root's first password. Everything milvus-guard wrote is elsewhere: the catalog,
    // the vault (the CR's manifest included), the executions and the pod logs.
    const found = await filesContaining(dir, password);
    expect(found.filter((f) => !f.startsWith('objects/'))).toEqual([]);
    expect(found).toContain(`objects/${typeKey(typeOf('Milvus'))}.json`);
  });
});

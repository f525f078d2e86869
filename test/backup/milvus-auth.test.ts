import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../../core/config/schema.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { RELAY_PURPOSE } from '../../core/milvus/relay.js';
import { action, backup, configWithHooks, filesContaining, MILVUS, NAMESPACE, PLAN, servicesOf, startSeededCluster, type SeededCluster } from './helpers.js';

// A Milvus with authorization enabled (common.security.authorizationEnabled, root's password set
// by defaultRootPassword): every Milvus call of the backup goes through the relay pod, which gets
// the credentials from the plan's Secret; milvus-guard itself never reads them.

const PASSWORD = 'relay-test-Pa55word-7f3c';
const FULL_RUN = 120_000;

let c: SeededCluster;
let core: CoreV1Api;
let base: Config;

const withAuth = (secret: string): Config => ({
  ...base,
  plans: base.plans.map((p) => ({ ...p, milvus: { ...p.milvus, authSecret: { name: secret, usernameKey: 'username', passwordKey: 'password' } } })),
});

const relayPods = async () => (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `milvus-guard.io/purpose=${RELAY_PURPOSE}` })).items.map((p) => p.metadata!.name);


beforeAll(async () => {
  c = await startSeededCluster();
  const kc = new KubeConfig();
  kc.loadFromFile(c.cluster.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  base = await loadConfigFile('examples/production.yaml');
  const secret = async (name: string, password: string) =>
    core.createNamespacedSecret({
      namespace: NAMESPACE,
      body: { metadata: { name }, data: { username: Buffer.from('root').toString('base64'), password: Buffer.from(password).toString('base64') } },
    });
  await secret('milvus-auth', PASSWORD);
  await secret('milvus-wrong', 'not-the-password');
  // Authorization on, as production Milvus runs it.
  const custom = kc.makeApiClient(CustomObjectsApi);
  const crApi = { group: 'milvus.io', version: 'v1beta1', namespace: NAMESPACE, plural: 'milvuses', name: MILVUS };
  const cr = (await custom.getNamespacedCustomObject(crApi)) as { spec: { config?: Record<string, unknown> } };
  cr.spec.config = { ...cr.spec.config, common: { security: { authorizationEnabled: true, defaultRootPassword: PASSWORD } } };
  await custom.replaceNamespacedCustomObject({ ...crApi, body: cr });
  await c.cluster.settle();
}, 60_000);

afterAll(async () => {
  await c?.dispose();
});

describe('a backup of a Milvus reached through the relay', () => {
  let result: Awaited<ReturnType<typeof backup>>;

  beforeAll(async () => {
    c.cluster.timeline.clear();
    result = await backup(c, withAuth('milvus-auth'), { backupName: 'auth-1' });
  }, FULL_RUN);

  it('ends Available, with every Milvus call made in the relay pod', async () => {
    expect(result.status).toBe('SUCCEEDED');
    const record = await servicesOf(c, withAuth('milvus-auth')).catalog.getBackup('auth-1');
    expect(record?.status).toBe('Available');
    expect(record?.rowCounts.length).toBeGreaterThan(0);
    const sessions = c.cluster.timeline.events.filter((e) => e.type === 'PodExec' && JSON.stringify(e.detail).includes('milvus-relay'));
    // StartFlush, CheckFlush (at least once), PauseGc and Unquiesce each open one session.
    expect(sessions.length).toBeGreaterThanOrEqual(4);
  });

  it("captures the plan's Secret (sealed) although the selector does not match it, so a restore can reach the restored Milvus", async () => {
    const files = await readdir(c.stateDir, { recursive: true });
    expect(files.filter((f) => f.includes('backups/auth-1/') && /milvus-auth.*\.sealed\.json$/.test(f))).toHaveLength(1);
    const record = await servicesOf(c, withAuth('milvus-auth')).catalog.getBackup('auth-1');
    expect(record?.manifests?.warnings ?? []).toEqual([]);
  });

  it('removes the relay when the backup is done', async () => {
    expect(await relayPods()).toEqual([]);
  });

  it('never writes the password to the catalog, the vault, the timeline or the execution history', async () => {
    expect(JSON.stringify(c.cluster.timeline.events)).not.toContain(PASSWORD);
    expect(JSON.stringify(result)).not.toContain(PASSWORD);
    // The state directory holds the local catalog, the file:// vault and the executions; the
    // cluster's own objects (the Secret itself) are kept under objects/, as etcd keeps them.
    const leaks = (await filesContaining(c.stateDir, PASSWORD)).filter((f) => !f.startsWith('objects/'));
    expect(leaks).toEqual([]);
    // The Secret is base64 in the store, so make sure the search would have found a plain copy.
    expect((await filesContaining(c.stateDir, Buffer.from(PASSWORD).toString('base64'))).some((f) => f.startsWith('objects/'))).toBe(true);
  });
});

describe('a plan without credentials for a Milvus that wants them', () => {
  it('fails at StartFlush saying Milvus wants credentials and where to name them', async () => {
    const result = await backup(c, base, { backupName: 'auth-none' });
    expect(result.status).toBe('FAILED');
    const record = await servicesOf(c, base).catalog.getBackup('auth-none');
    expect(record?.failure?.error).toBe('MilvusCredentials');
    expect(record?.failure?.cause).toMatch(/wants credentials .*401, code 1800.*milvus\.authSecret/);
  }, FULL_RUN);
});

describe('a plan whose Secret holds the wrong password', () => {
  it('fails at StartFlush naming the Secret Milvus refused, and leaves nothing behind', async () => {
    const result = await backup(c, withAuth('milvus-wrong'), { backupName: 'auth-wrong' });
    expect(result.status).toBe('FAILED');
    const record = await servicesOf(c, withAuth('milvus-wrong')).catalog.getBackup('auth-wrong');
    expect(record?.failure?.error).toBe('MilvusCredentials');
    expect(record?.failure?.cause).toMatch(/^Milvus refused the credentials in Secret vector-db\/milvus-wrong \(plan milvus-production-backup, milvus\.authSecret\): user hasn't authenticated \(code 1800\)/);
    expect(await relayPods()).toEqual([]);
  }, FULL_RUN);
});

describe('a plan whose credentials Secret does not exist', () => {
  it('fails at StartFlush naming the Secret and the plan field, and leaves nothing behind', async () => {
    const result = await backup(c, withAuth('no-such-secret'), { backupName: 'auth-missing' });
    expect(result.status).toBe('FAILED');
    const record = await servicesOf(c, withAuth('no-such-secret')).catalog.getBackup('auth-missing');
    expect(record?.status).toBe('Failed');
    expect(record?.failure?.error).toBe('MilvusCredentials');
    expect(record?.failure?.cause).toMatch(/Secret vector-db\/no-such-secret \(plan milvus-production-backup, milvus\.authSecret\) cannot be used: the relay pod reports CreateContainerConfigError/);
    expect(await relayPods()).toEqual([]);
    expect(c.cluster.milvus.get(NAMESPACE, MILVUS)!.gcState().paused).toBe(false);
  }, FULL_RUN);
});

describe('a backup with credentials that dies after PauseGc', () => {
  it('is recovered by the next backup: GC resumed through a new relay, no relay left, the next backup Available', async () => {
    // The CLI as a user runs it, with a config naming the Secret; killed once GC is paused (and
    // its ticket recorded: PauseGc is done when Snapshot starts) and before Unquiesce resumes it.
    const configFile = join(c.stateDir, 'auth-config.yaml');
    const example = await readFile('examples/production.yaml', 'utf8');
    await writeFile(configFile, example.replace('      managementPort: 9091\n', '      managementPort: 9091\n      authSecret: { name: milvus-auth }\n'));
    const cli = fileURLToPath(new URL('../../bin/milvus-guard.js', import.meta.url));
    const child = spawn(process.execPath, [cli, 'backup', 'create', '--plan', PLAN, '--local', '--state', c.stateDir, '--config', configFile, '--wait'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await c.cluster.timeline.next((e) => e.type === 'VolumeSnapshotCreated');
    child.kill('SIGKILL');
    await exited;
    const catalog = servicesOf(c, withAuth('milvus-auth')).catalog;
    const dead = (await catalog.lockHolder(PLAN, new Date()))!.backupId;
    expect(c.cluster.milvus.get(NAMESPACE, MILVUS)!.gcState().paused).toBe(true);

    const next = await backup(c, withAuth('milvus-auth'), { backupName: 'after-the-kill' });

    expect(next.status).toBe('SUCCEEDED');
    const recovered = await catalog.getBackup(dead);
    expect(recovered?.status).toBe('Failed');
    expect(recovered?.failure?.error).toBe('ExecutionEnded');
    expect(recovered?.failure?.cause).toMatch(/resumed GC and released the plan lock$/);
    expect(c.cluster.milvus.get(NAMESPACE, MILVUS)!.gcState().paused).toBe(false);
    expect(await relayPods()).toEqual([]);
  }, FULL_RUN);
});

describe('a backup with credentials that fails after PauseGc', () => {
  it('resumes GC through the failure path, runs the post hook once, and leaves no relay', async () => {
    const hooked = await configWithHooks({ pre: action(['sh', '-c', 'echo pre']), post: action(['sh', '-c', 'echo post-hook-ran']) });
    const config: Config = { ...hooked, plans: hooked.plans.map((p) => ({ ...p, milvus: { ...p.milvus, authSecret: { name: 'milvus-auth', usernameKey: 'username', passwordKey: 'password' } } })) };
    c.cluster.faults.failSnapshots({ namespace: NAMESPACE, pvc: `data-${MILVUS}-etcd-0`, message: 'injected: the EBS snapshot failed' });
    c.cluster.timeline.clear();
    try {
      const result = await backup(c, config, { backupName: 'auth-fails-late' });
      expect(result.status).toBe('FAILED');
    } finally {
      c.cluster.faults.clear();
    }
    const record = await servicesOf(c, config).catalog.getBackup('auth-fails-late');
    expect(record?.failure?.error).toBe('SnapshotFailed');
    const postRuns = c.cluster.timeline.events.filter((e) => e.type === 'PodExec' && JSON.stringify(e.detail).includes('post-hook-ran'));
    const pods = await datanodePods();
    expect(pods).toBeGreaterThan(0);
    expect(postRuns).toHaveLength(pods);
    expect(c.cluster.milvus.get(NAMESPACE, MILVUS)!.gcState().paused).toBe(false);
    expect(await relayPods()).toEqual([]);
  }, FULL_RUN);
});

/** How many pods the test hook runs in (the datanodes): one post-hook run each. */
async function datanodePods(): Promise<number> {
  return (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `app.kubernetes.io/instance=${MILVUS},app.kubernetes.io/component=datanode` })).items.length;
}

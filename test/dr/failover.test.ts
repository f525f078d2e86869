import { randomBytes } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import type { FailoverReport } from '../../core/dr/failover.js';
import { kubeConfigFromFile, makeKubeClients } from '../../core/kube/connect.js';
import { MilvusClient } from '../../core/milvus/client.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { startLocalCluster, type LocalCluster } from '../../local/cluster.js';
import { LocalReplicator } from '../../local/replicator.js';
import { linkDrRegion, localCatalog, localPaths, runLocalBackup, runLocalDrill, runLocalFailover, runLocalReplicationCheck, runLocalRestore } from '../../local/workflows/runner.js';
import { listDrillEvidence } from '../../core/drill/workflow.js';
import { withReplication } from '../../core/dr/replication.js';
import { drStatus } from '../../core/dr/status.js';
import { NAMESPACE, PLAN, startSeededCluster, type SeededCluster } from '../backup/helpers.js';

// "us-east-1 is down, bring Milvus back in us-west-2" on the embedded default: the primary
// region is a seeded local cluster with its vault; the DR region a second, empty local cluster
// whose vault a LocalReplicator feeds from the primary's, sharing the catalog (the global
// table) and the sealing key (a multi-Region key). The failover runs the real failover ASL in
// the DR region's state directory; before it, the primary cluster is stopped and its vault
// directory moved away, so a failover that touched the primary region would fail.

const REGION = 'us-west-2';
// Ahead of the real clock: the data-mover Jobs run on it and refuse lock dates in the past.
const at = (hour: number, minute = 0) => new Date(Date.UTC(2031, 10, 3, hour, minute));

let primary: SeededCluster;
let dr: { cluster: LocalCluster; stateDir: string };
let config: Config;
let clock = at(2);
const now = () => clock;
let replicator: LocalReplicator;
const backups: string[] = [];

async function backup(when: Date): Promise<string> {
  clock = when;
  const result = await runLocalBackup({ stateDir: primary.stateDir, config, input: { plan: PLAN }, now, untilPoll: () => primary.cluster.settle() });
  expect(result.error).toBeUndefined();
  return (result.output as { backupId: string }).backupId;
}

const failover = (input: Record<string, unknown>) => runLocalFailover({ stateDir: dr.stateDir, config, input, now, untilPoll: () => dr.cluster.settle() });
const record = async (id: string) => (await localCatalog(primary.stateDir).getBackup(id))!;
/** What the DR region's check recorded for backup `id`. */
const replicated = async (id: string) => (await localCatalog(primary.stateDir).listReplication({ backupId: id, region: REGION }))[0];

beforeAll(async () => {
  const example = await loadConfigFile('examples/production.yaml');
  config = example.clusters.some((c) => c.region === REGION) ? example : { ...example, clusters: [...example.clusters, { name: 'dr', eksClusterName: 'dr-eks', region: REGION, endpointAccess: 'public' }] };
  primary = await startSeededCluster();
  // A Secret the plan's selector captures: sealed into the vault, unsealed by the DR region.
  await makeKubeClients(kubeConfigFromFile(localPaths(primary.stateDir).kubeconfig)).core.createNamespacedSecret({
    namespace: NAMESPACE,
    body: { metadata: { name: 'milvus-root', labels: { 'app.kubernetes.io/instance': 'production-milvus' } }, data: { password: Buffer.from('hunter2-root').toString('base64') } },
  });
  const stateDir = await mkdtemp(join(tmpdir(), 'mg-dr-'));
  dr = { cluster: await startLocalCluster({ stateDir, port: 0, tickMs: 50, seed: false }), stateDir };
  await linkDrRegion(dr.stateDir, primary.stateDir, REGION);
  replicator = new LocalReplicator(new FileVaultStore(localPaths(primary.stateDir).vault, { now }), new FileVaultStore(localPaths(dr.stateDir).vault, { now }), { now });
}, 120_000);

afterAll(async () => {
  await dr?.cluster.stop();
  await rm(dr?.stateDir ?? '', { recursive: true, force: true });
  await primary?.dispose();
});

const drCluster = () => config.clusters.find((c) => c.region === REGION)!.name;

describe('failover into the DR region on the embedded default', () => {
  it('refuses clearly when no backup of the plan is complete in the region', async () => {
    backups.push(await backup(at(2)));
    clock = at(2, 30);
    await runLocalReplicationCheck(dr.stateDir, config, { now });

    const result = await failover({ plan: PLAN, targetCluster: drCluster(), targetNamespace: NAMESPACE });

    expect(result.status).toBe('FAILED');
    expect(result.error?.name).toBe('NothingToFailOver');
    expect(result.error?.message).toMatch(new RegExp(`^plan ${PLAN} has no backup complete in ${REGION}'s vault to fail over to \\(1 Available, none complete here; the newest, ${backups[0]}, is Late: 0 of 1 objects there at .*, backups/${backups[0]}/backup.json missing\\); see milvus-guard dr status --region ${REGION}$`));
    expect(await localCatalog(primary.stateDir).listFailovers()).toEqual([]);
  });

  it('records a backup complete in the region once every object it needs has replicated, and only the packs it added are checked after its parent', async () => {
    expect((await replicator.sync()).copied).toBeGreaterThan(10);
    clock = at(2, 40);
    const first = await runLocalReplicationCheck(dr.stateDir, config, { now });

    expect(first).toMatchObject({ region: REGION, checked: 1, complete: 1, pending: 0, late: 0, errors: [] });
    const first_ = await replicated(backups[0]!);
    expect(first_).toMatchObject({ status: 'Complete', at: at(2, 40).toISOString(), checkedAt: at(2, 40).toISOString(), objects: first_!.confirmed });
    expect(first_!.secretsOpenHere).toBeUndefined();

    // A second backup of unchanged data adds no pack: its check looks at its own few objects only.
    backups.push(await backup(at(3)));
    await replicator.sync();
    clock = at(3, 10);
    await runLocalReplicationCheck(dr.stateDir, config, { now });
    const [a, b] = [await replicated(backups[0]!), await replicated(backups[1]!)];
    expect(b?.status).toBe('Complete');
    expect(b!.objects).toBeLessThan(a!.objects);
  });

  it('a backup not yet replicated is not chosen, nor restorable by id, in the DR region', async () => {
    // New data, so this backup adds a pack of its own (the next test holds it back).
    const kube = makeKubeClients(kubeConfigFromFile(localPaths(primary.stateDir).kubeconfig));
    const claim = (await kube.core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE })).items.find((p) => /minio/.test(p.metadata!.name!))!;
    await writeFile(join(primary.cluster.dirs.volume(claim.spec!.volumeName!), 'added-after-the-second-backup.bin'), randomBytes(300_000));
    backups.push(await backup(at(4)));
    clock = at(4, 5);
    await runLocalReplicationCheck(dr.stateDir, config, { now });
    expect(await replicated(backups[2]!)).toMatchObject({ status: 'Pending', confirmed: 0, objects: 1, firstMissing: `backups/${backups[2]}/backup.json` });

    const byId = await runLocalRestore({ stateDir: dr.stateDir, config, input: { backupId: backups[2], targetCluster: drCluster(), targetNamespace: 'vector-db-check' }, now, untilPoll: () => dr.cluster.settle() });
    expect(byId.error).toEqual({ name: 'BackupNotReplicated', message: expect.stringContaining(`backup ${backups[2]} is not complete in ${REGION}'s vault (Pending: 0 of 1 objects there at`) });
  });

  it('stays Pending while a pack only it added has not arrived, though its parent is complete; then completes where it stopped', async () => {
    // Everything but the packs arrives: the parent's shortcut must not hide the child's own pack.
    const held = new LocalReplicator(new FileVaultStore(localPaths(primary.stateDir).vault, { now }), new FileVaultStore(localPaths(dr.stateDir).vault, { now }), { now, holdBack: (k) => k.startsWith('data/packs/') });
    await held.sync();
    clock = at(4, 10);
    await runLocalReplicationCheck(dr.stateDir, config, { now });
    const pending = await replicated(backups[2]!);
    expect(pending).toMatchObject({ status: 'Pending', firstMissing: expect.stringMatching(/^data\/packs\//) });
    expect(pending!.confirmed).toBeGreaterThan(3);
    expect(pending!.confirmed).toBeLessThan(pending!.objects);
    // A failover now would restore the parent, the newest backup complete here.
    const status = drStatus(config, await withReplication(localCatalog(primary.stateDir), await localCatalog(primary.stateDir).listBackups(), REGION), at(4, 10));
    expect(status[0]!.newestComplete?.backupId).toBe(backups[1]);

    await replicator.sync();
    clock = at(4, 20);
    await runLocalReplicationCheck(dr.stateDir, config, { now });
    expect(await replicated(backups[2]!)).toMatchObject({ status: 'Complete', confirmed: pending!.objects });
  });

  it('with the primary region down, fails over from the DR vault into the DR cluster: validated, Secrets unsealed, RPO and RTO reported', async () => {
    const primaryKube = makeKubeClients(kubeConfigFromFile(localPaths(primary.stateDir).kubeconfig));
    const secret = await primaryKube.core.readNamespacedSecret({ name: 'milvus-root', namespace: NAMESPACE });
    expect((await record(backups[2]!)).manifests?.secrets).toBeGreaterThan(0);
    // The region goes down: its cluster stops, replication stops, its vault is out of reach.
    await replicator.stop();
    await primary.cluster.stop();
    await rename(localPaths(primary.stateDir).vault, `${localPaths(primary.stateDir).vault}.unreachable`);

    clock = at(5);
    const result = await failover({ plan: PLAN, targetCluster: drCluster(), targetNamespace: NAMESPACE });

    expect(result.error).toBeUndefined();
    const report = result.output as FailoverReport;
    expect(report).toMatchObject({ status: 'Completed', plan: PLAN, region: REGION, backupId: backups[2], targetCluster: drCluster(), targetNamespace: NAMESPACE });
    const taken = Date.parse((await record(backups[2]!)).steps.Snapshot!.startedAt);
    expect(report.rpoSeconds).toBe((at(5).getTime() - taken) / 1000);
    expect(report.rtoSeconds).toBeGreaterThanOrEqual(0);
    expect(result.states).toEqual(expect.arrayContaining(['PrepareFailover', 'RunRestore', 'RecordFailover', 'Done']));

    const [recorded] = await localCatalog(primary.stateDir).listFailovers({ plan: PLAN });
    expect(recorded).toMatchObject({ failoverId: report.failoverId, status: 'Completed', region: REGION, backupId: backups[2], restoreId: report.failoverId, rpoSeconds: report.rpoSeconds });
    const restore = await localCatalog(primary.stateDir).getRestore(report.failoverId);
    expect(restore).toMatchObject({ status: 'Completed', source: 'vault', validation: { passed: true } });

    // The DR Milvus answers with the rows recorded at backup, and the Secrets came back whole.
    const drKube = makeKubeClients(kubeConfigFromFile(localPaths(dr.stateDir).kubeconfig));
    const milvus = new MilvusClient(drKube.kc, { namespace: NAMESPACE, service: 'production-milvus-milvus', restPort: 19530, managementPort: 9091 });
    for (const r of (await record(backups[2]!)).rowCounts) {
      if (r.confirmedBy === 'stats') {
        // Not loaded at backup, so counted by get_stats (deleted rows included): released again
        // after validation, as at the source, with the same rows in its segments.
        expect([r.collection, await milvus.loadState(r.database, r.collection)]).toEqual([r.collection, 'LoadStateNotLoad']);
        expect([r.collection, await milvus.persistedRowCount(r.database, r.collection)]).toEqual([r.collection, r.rows]);
      } else {
        expect([r.collection, await milvus.countRows(r.database, r.collection)]).toEqual([r.collection, r.rows]);
      }
    }
    expect((await drKube.core.readNamespacedSecret({ name: 'milvus-root', namespace: NAMESPACE })).data).toEqual(secret.data);
  });

  it('a drill in the DR region proves the replica: it restores the newest backup complete there into a DR cluster, and its evidence names the region', async () => {
    clock = at(6);
    const result = await runLocalDrill({ stateDir: dr.stateDir, config, input: { plan: PLAN }, now, untilPoll: () => dr.cluster.settle() });

    expect(result.error).toBeUndefined();
    const evidence = await listDrillEvidence(new FileVaultStore(localPaths(dr.stateDir).vault, { now }), PLAN);
    expect(evidence).toHaveLength(1);
    expect(evidence[0]).toMatchObject({ passed: true, region: REGION, backup: { backupId: backups[2] }, restore: { status: 'Completed', source: 'vault', targetCluster: drCluster(), targetNamespace: `${NAMESPACE}-drill` } });
  });
});

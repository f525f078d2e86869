/**
 * `milvus-guard demo --scenario region-outage [--json]`: "us-east-1 is down, bring Milvus back in
 * us-west-2", on the embedded default, with nothing else running:
 *
 * 1. Regions: the primary region is a fresh local cluster seeded with a Milvus, with its vault;
 *    the DR region (the first of the plan's vault's `replicaRegions`) a second, empty local
 *    cluster with a vault of its own, linked to the primary's catalog (the global table) and
 *    sealing key (a multi-Region key). A replicator copies the primary vault into the DR vault
 *    with a lag, as S3 replication does.
 * 2. Backup: the backup workflow in the primary region.
 * 3. Replication: the DR region's replication check runs until the backup is complete there.
 * 4. Outage: replication stops, the primary cluster stops and its vault directory is moved out
 *    of reach; the demo shows the primary API no longer answers.
 * 5. Failover: the failover workflow runs in the DR region (its own state directory, its own
 *    vault) into the DR cluster, and validates.
 * 6. Witness and summary: the demo counts the rows the DR Milvus serves itself; the RPO and RTO
 *    achieved; exit 0 only when every collection is back with its rows.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackupRecord } from '../../core/catalog/record.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan } from '../../core/config/resolve.js';
import type { Config } from '../../core/config/schema.js';
import type { FailoverReport } from '../../core/dr/failover.js';
import { kubeConfigFromFile, makeKubeClients } from '../../core/kube/connect.js';
import { MilvusClient, type MilvusEndpoint } from '../../core/milvus/client.js';
import { runLocally } from '../execution.js';
import { expectedCell, withinExpected } from '../../core/restore/validate.js';
import { formatDuration, formatTable } from '../format.js';
import { DEMO_CONFIG, DEMO_PLAN, DEMO_POLL_MS, DEMO_RETRY_MS, DemoInterruptedError, listenForInterrupt, probeMilvus, servedRows, stateDirFor, statsNote, type DemoOptions } from './demo.js';

/** Seconds each object waits before the replicator copies it: small, and visible in the story. */
const REPLICATION_LAG_SECONDS = 1;
const REPLICATION_TIMEOUT_MS = 60_000;

/** One collection: rows recorded at backup, rows the failover's validation counted, rows the DR Milvus serves. */
export interface OutageCollection {
  readonly name: string;
  readonly expected: number;
  /** The counts a restore may bring back, when the count moved during the backup (README, "Writes during a backup"). */
  readonly expectedMin?: number;
  readonly expectedMax?: number;
  readonly restored?: number;
  readonly served?: number;
  /** `stats` when the backup found the collection not loaded and counted it by get_stats (deleted rows included). */
  readonly countedBy?: 'count' | 'stats';
  /** The source had it released: validation loaded it for its check and released it again; `served` is its get_stats count. */
  readonly released?: true;
  readonly ok: boolean;
}

/** What `demo --scenario region-outage --json` prints, exactly. */
export interface RegionOutageSummary {
  readonly scenario: 'region-outage';
  readonly backup: { readonly id: string | null; readonly status: string; readonly region: string };
  readonly replication: { readonly lagSeconds: number; readonly completeAfterSeconds: number | null };
  readonly outage: { readonly region: string; readonly clusterStopped: boolean; readonly vaultUnreachable: boolean; readonly probe: string };
  readonly failover: { readonly id: string | null; readonly status: string; readonly region: string; readonly backupId?: string; readonly failure?: { readonly error: string; readonly cause: string } };
  readonly collections: readonly OutageCollection[];
  readonly rpoSeconds: number | null;
  readonly rtoSeconds: number | null;
  readonly passed: boolean;
  readonly reason?: string;
  readonly elapsedSeconds: number;
  readonly stateDir?: string;
}

/** The demo config, with a cluster in the DR region if the file has none (the failover's target). */
function withDrCluster(config: Config, region: string): { config: Config; cluster: string } {
  const existing = config.clusters.find((c) => c.region === region);
  if (existing) return { config, cluster: existing.name };
  return { config: { ...config, clusters: [...config.clusters, { name: 'dr', eksClusterName: 'dr-eks', region: region as Config['clusters'][number]['region'], endpointAccess: 'public' }] }, cluster: 'dr' };
}

/** Runs the scenario (see the module documentation); both clusters are stopped however it ends. */
export async function runRegionOutageDemo(options: DemoOptions): Promise<RegionOutageSummary> {
  const { io } = options;
  const start = io.clock();
  const elapsed = () => (io.clock() - start) / 1000;
  const say = (phase: string, text: string) => io.err(`[${elapsed().toFixed(1).padStart(5)}s] ${phase.padEnd(11)} ${text}\n`);
  const loaded = await loadConfigFile(DEMO_CONFIG);
  const resolved = resolvePlan(loaded, DEMO_PLAN);
  const primaryRegion = resolved.vault.region;
  const drRegion = (resolved.vault.replicaRegions as readonly string[])[0];
  if (!drRegion) throw new Error(`vault ${resolved.vault.name} of ${DEMO_CONFIG} replicates nowhere: the scenario needs a replicaRegions entry`);
  const { config, cluster: drClusterName } = withDrCluster(loaded, drRegion);
  const { plan } = resolved;
  const endpoint: MilvusEndpoint = { namespace: plan.namespace, service: plan.milvus.service, restPort: plan.milvus.restPort, managementPort: plan.milvus.managementPort };

  const root = await stateDirFor(options.keep);
  const primaryDir = join(root, primaryRegion);
  const drDir = join(root, drRegion);
  await mkdir(primaryDir, { recursive: true });
  await mkdir(drDir, { recursive: true });

  const interrupted = listenForInterrupt(io, (signal) => say('stop', `${signal}: stopping both clusters`));

  const local = await import('../local-mode.js');
  const { linkDrRegion, localCatalog, localVaultDir, runLocalReplicationCheck } = await import('../local-mode.js');
  say('regions', `starting ${primaryRegion} (a local cluster with a seeded Milvus) and ${drRegion} (an empty local cluster) under ${root}`);
  const primaryStarting = local.startLocalCluster({ stateDir: primaryDir, port: 0 });
  const drStarting = local.startLocalCluster({ stateDir: drDir, port: 0, seed: false });
  let replicator: Awaited<ReturnType<typeof local.localReplicator>> | undefined;

  const outcome = (async (): Promise<Omit<RegionOutageSummary, 'elapsedSeconds'>> => {
    const [primary, dr] = await Promise.all([primaryStarting, drStarting]);
    await linkDrRegion(drDir, primaryDir, drRegion);
    replicator = await local.localReplicator(primaryDir, drDir, { lagSeconds: REPLICATION_LAG_SECONDS });
    replicator.start(200);
    say('regions', `${drRegion} is linked: its own cluster and vault, the catalog and sealing key shared; replication ${primaryRegion} → ${drRegion} with a ${REPLICATION_LAG_SECONDS}s lag`);
    const catalog = await localCatalog(primaryDir);
    const summary = (over: Partial<Omit<RegionOutageSummary, 'elapsedSeconds'>> & { reason: string } | Partial<Omit<RegionOutageSummary, 'elapsedSeconds'>>): Omit<RegionOutageSummary, 'elapsedSeconds'> => ({
      scenario: 'region-outage',
      backup: { id: null, status: 'NotStarted', region: primaryRegion },
      replication: { lagSeconds: REPLICATION_LAG_SECONDS, completeAfterSeconds: null },
      outage: { region: primaryRegion, clusterStopped: false, vaultUnreachable: false, probe: 'not staged' },
      failover: { id: null, status: 'NotStarted', region: drRegion },
      collections: [],
      rpoSeconds: null,
      rtoSeconds: null,
      passed: false,
      ...over,
    });

    // 2. Backup in the primary region.
    say('backup', `plan ${DEMO_PLAN} in ${primaryRegion}: quiesce, snapshot, export into the ${primaryRegion} vault`);
    const end = await runLocally({ workflow: 'backup', config, input: { plan: DEMO_PLAN }, stateDir: primaryDir, pollMs: DEMO_POLL_MS, retryMs: DEMO_RETRY_MS, show: (s) => say('backup', `  ${s}`) });
    const record: BackupRecord | undefined = (await catalog.listBackups({ plan: DEMO_PLAN })).find((b) => b.executionId === end.executionArn);
    const backup = { id: record?.backupId ?? null, status: record?.status ?? end.status, region: primaryRegion };
    if (record?.status !== 'Available') return summary({ backup, reason: `the backup did not complete: ${end.error ?? record?.status}: ${end.cause ?? ''}` });
    say('backup', `${record.backupId} Available: ${record.rowCounts.reduce((n, r) => n + r.rows, 0)} rows in ${record.rowCounts.length} collections`);

    // 3. Wait until the DR region's check finds the backup whole there.
    const replicatedFrom = io.clock();
    let completeAfterSeconds: number | null = null;
    while (io.clock() - replicatedFrom < REPLICATION_TIMEOUT_MS) {
      const check = await runLocalReplicationCheck(drDir, config);
      const entry = (await catalog.listReplication({ backupId: record.backupId, region: drRegion }))[0];
      if (entry?.status === 'Complete') {
        completeAfterSeconds = (io.clock() - replicatedFrom) / 1000;
        say('replicate', `${record.backupId} is complete in ${drRegion}: ${entry.objects} objects checked (${check.checked} backup(s) looked at)`);
        break;
      }
      say('replicate', `${record.backupId} in ${drRegion}: ${entry ? `${entry.status}, ${entry.confirmed} of ${entry.objects} objects there` : 'not checked yet'}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const replication = { lagSeconds: REPLICATION_LAG_SECONDS, completeAfterSeconds };
    if (completeAfterSeconds === null) return summary({ backup, replication, reason: `the backup did not replicate into ${drRegion} within ${REPLICATION_TIMEOUT_MS / 1000}s` });

    // 4. The primary region goes down.
    say('outage', `${primaryRegion} goes down: replication stops, its cluster stops, its vault is out of reach`);
    await replicator!.stop();
    await primary.stop();
    const vaultDir = await localVaultDir(primaryDir);
    await rename(vaultDir, `${vaultDir}.unreachable`);
    const probe = await probeMilvus(makeKubeClients(kubeConfigFromFile(join(primaryDir, 'kubeconfig')), { deadline: { timeoutMs: 2000 } }), endpoint);
    const outage = { region: primaryRegion, clusterStopped: true, vaultUnreachable: true, probe: probe.answers ? 'the primary Milvus still answers' : probe.why };
    if (probe.answers) return summary({ backup, replication, outage, reason: `${primaryRegion} was stopped but its Milvus still answers` });
    say('outage', `${primaryRegion} Milvus no longer answers (${outage.probe.slice(0, 80)})`);

    // 5. Fail over in the DR region.
    say('failover', `plan ${DEMO_PLAN} into ${drClusterName}/${plan.namespace} in ${drRegion}, from the ${drRegion} vault`);
    const failed = await runLocally({
      workflow: 'failover',
      config,
      input: { plan: DEMO_PLAN, targetCluster: drClusterName, targetNamespace: plan.namespace },
      stateDir: drDir,
      pollMs: DEMO_POLL_MS,
      retryMs: DEMO_RETRY_MS,
      show: (s) => say('failover', `  ${s}`),
    });
    const report = failed.status === 'SUCCEEDED' ? (failed.output as FailoverReport) : undefined;
    const recorded = report ? undefined : (await catalog.listFailovers({ plan: DEMO_PLAN })).find((f) => f.executionId === failed.executionArn);
    const failover = {
      id: report?.failoverId ?? recorded?.failoverId ?? null,
      status: report?.status ?? recorded?.status ?? failed.status,
      region: drRegion,
      ...(report || recorded ? { backupId: (report ?? recorded)!.backupId } : {}),
      ...(report?.failure ?? recorded?.failure ? { failure: (report?.failure ?? recorded?.failure)! } : !report && failed.error ? { failure: { error: failed.error, cause: failed.cause ?? '' } } : {}),
    };
    const restore = failover.id ? await catalog.getRestore(failover.id) : undefined;

    // 6. Witness: the DR Milvus's own count of each collection.
    const served = new Map<string, number>();
    if (restore?.status === 'Completed') {
      const milvus = new MilvusClient(makeKubeClients(kubeConfigFromFile(dr.kubeconfigPath)).kc, endpoint);
      for (const [name, rows] of await servedRows(milvus, restore.validation?.collections ?? [])) served.set(name, rows);
      say('validate', `the DR Milvus in ${drRegion} serves ${[...served].map(([n, r]) => `${n}=${r}`).join(', ')}`);
    }
    const collections: OutageCollection[] = record.rowCounts.map((r) => {
      const name = `${r.database}.${r.collection}`;
      const validated = restore?.validation?.collections.find((c) => c.database === r.database && c.collection === r.collection);
      const live = served.get(name);
      // Counted by get_stats at backup (not loaded): deleted rows included, so at most that many
      // serve. Otherwise what validation counted, a count the backup allows.
      const servedOk = live !== undefined && validated?.restored !== undefined && (validated.countedBy === 'stats' ? live <= validated.restored : live === validated.restored);
      return {
        name,
        expected: r.rows,
        ...(validated?.expectedMin !== undefined && validated.expectedMax !== undefined ? { expectedMin: validated.expectedMin, expectedMax: validated.expectedMax } : {}),
        ...(validated?.restored !== undefined ? { restored: validated.restored } : {}),
        ...(live !== undefined ? { served: live } : {}),
        ...(validated?.countedBy ? { countedBy: validated.countedBy } : {}),
        ...(validated?.released ? { released: true as const } : {}),
        // Dropped during the backup and not restored as backed up: validation's word is all there is.
        ok: validated?.droppedDuringBackup ? validated.ok : validated?.ok === true && validated.restored !== undefined && withinExpected(validated, validated.restored) && servedOk,
      };
    });
    const bad = collections.filter((c) => !c.ok);
    const reason =
      failover.status !== 'Completed'
        ? `the failover did not complete: ${failover.failure ? `${failover.failure.error}: ${failover.failure.cause}` : failover.status}`
        : !restore?.validation?.passed
          ? "the failover's restore completed but its validation did not pass"
          : collections.length === 0
            ? 'the backup recorded no collections to validate'
            : bad.length
              ? `row counts differ: ${bad.map((c) => `${c.name} expected ${c.expected}, restored ${c.restored ?? 'none'}, served ${c.served ?? 'none'}`).join('; ')}`
              : undefined;
    return summary({ backup, replication, outage, failover, collections, rpoSeconds: report?.rpoSeconds ?? recorded?.rpoSeconds ?? null, rtoSeconds: report?.rtoSeconds ?? null, passed: reason === undefined, ...(reason ? { reason } : {}) });
  })();
  outcome.catch(() => undefined);

  try {
    const result = await Promise.race([outcome, interrupted.interruption]);
    return { ...result, elapsedSeconds: elapsed(), ...(options.keep !== undefined ? { stateDir: root } : {}) };
  } catch (err) {
    if (interrupted.signal() === undefined) throw err;
    throw new DemoInterruptedError(interrupted.signal()!, options.keep === undefined ? `both clusters were stopped and ${root} removed` : `both clusters were stopped; their state is in ${root}`);
  } finally {
    interrupted.stop();
    await replicator?.stop();
    for (const starting of [primaryStarting, drStarting]) await (await starting.catch(() => undefined))?.stop().catch(() => undefined);
    if (interrupted.signal() !== undefined) await Promise.race([outcome.catch(() => undefined), new Promise((r) => setTimeout(r, 3000).unref())]);
    if (options.keep === undefined) {
      await rm(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }).catch((err: Error) => say('cleanup', `could not remove ${root}: ${err.message}; delete it by hand`));
    }
  }
}

/** The human summary of the scenario, printed on stdout at the end. */
export function renderRegionOutageSummary(s: RegionOutageSummary): string {
  const lines = [
    `milvus-guard demo --scenario region-outage: ${s.passed ? 'PASSED' : 'FAILED'}${s.reason ? ` (${s.reason})` : ''}`,
    '',
    `Backup:       ${s.backup.id ?? '(none)'} ${s.backup.status} in ${s.backup.region}`,
    `Replication:  ${s.replication.completeAfterSeconds === null ? 'not complete' : `complete in the DR region ${formatDuration(s.replication.completeAfterSeconds)} after the backup (lag ${s.replication.lagSeconds}s per object)`}`,
    `Outage:       ${s.outage.clusterStopped ? `${s.outage.region} down: cluster stopped, vault ${s.outage.vaultUnreachable ? 'unreachable' : 'still reachable'}` : 'not staged'}`,
    `Failover:     ${s.failover.id ?? '(none)'} ${s.failover.status} in ${s.failover.region}${s.failover.backupId ? ` from ${s.failover.backupId}` : ''}`,
    `RPO achieved: ${s.rpoSeconds === null ? '' : formatDuration(s.rpoSeconds)}`,
    `RTO achieved: ${s.rtoSeconds === null ? '' : formatDuration(s.rtoSeconds)}`,
    `Wall time:    ${formatDuration(s.elapsedSeconds)}`,
    '',
  ];
  const out = [lines.join('\n')];
  if (s.collections.length) out.push(formatTable(['collection', 'expected', 'restored', 'served', 'ok'], s.collections.map((c) => [c.name, expectedCell(c), c.restored ?? '', c.served ?? '', c.ok ? 'yes' : 'NO'])));
  const byStats = statsNote(s.collections);
  if (byStats) out.push(byStats);
  if (s.stateDir) out.push(`The state is kept in ${s.stateDir} (one directory per region).\n`);
  return out.join('\n');
}

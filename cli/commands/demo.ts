/**
 * `milvus-guard demo [--json] [--keep DIR]`: the whole story on the embedded default, with
 * nothing else running:
 *
 * 1. Cluster: a fresh local cluster in a temporary state directory, seeded with a Milvus that
 *    holds 3 collections in 2 databases in namespace `vector-db`.
 * 2. Backup: the backup workflow for plan `milvus-production-backup` of
 *    examples/production.yaml (the config the seed matches), into the local vault.
 * 3. Disaster: namespace `vector-db` is deleted through the Kubernetes API, and the demo shows
 *    that no Milvus answers there any more.
 * 4. Restore: the restore workflow restores the backup from the vault into `vector-db-dr`; its
 *    Validate step compares each collection's rows with those recorded at backup.
 * 5. Witness: the demo itself counts the rows the restored Milvus serves, so the summary does
 *    not rest on the workflow's word alone.
 * 6. Summary: per-collection expected vs restored, bytes uploaded, RTO; exit 0 only when every
 *    collection is back with its rows and the restore Completed.
 *
 * The workflows are the real ones (local/workflows/runner.ts runs the deployed ASL with the
 * Lambda handlers); the demo only shortens the Wait states' polling interval.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, Option } from 'commander';
import type { BackupCatalog } from '../../core/catalog/catalog.js';
import type { BackupRecord, CollectionCheck, RestoreRecord } from '../../core/catalog/record.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan } from '../../core/config/resolve.js';
import { UserError } from '../../core/errors.js';
import { statusOf } from '../../core/kube/errors.js';
import { backupUnsupportedReason, parseMilvusVersion } from '../../core/milvus/version.js';
import { kubeConfigFromFile, makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { MilvusClient, type MilvusEndpoint } from '../../core/milvus/client.js';
import { deleteRelays, RelayTransport, type MilvusAuthSecret } from '../../core/milvus/relay.js';
import { runLocally, type ExecutionEnd, type Workflow } from '../execution.js';
import { formatBytes, formatDuration, formatTable } from '../format.js';
import { failedAtText } from '../../core/workflow/timeline.js';
import { expectedCell, withinExpected } from '../../core/restore/validate.js';
import { DEFAULT_MILVUS_VERSION } from '../local-mode.js';
import { milvusVersionOption, objectStorageOption } from './local.js';

/** The config the seeded Milvus matches, shipped with the package (found from here, not the working directory). */
export const DEMO_CONFIG = fileURLToPath(new URL('../../examples/production.yaml', import.meta.url));
export const DEMO_PLAN = 'milvus-production-backup';
/** Where the disaster recovery restores to. */
export const DEMO_TARGET_NAMESPACE = 'vector-db-dr';
/** Polling interval of the workflows' Wait states: everything is local, so a short one is honest. */
export const DEMO_POLL_MS = 200;
export const DEMO_RETRY_MS = 100;
const NAMESPACE_GONE_TIMEOUT_MS = 30_000;

/** One collection in the summary: rows recorded at backup, rows the restore validated, rows the restored Milvus serves. */
export interface DemoCollection {
  readonly name: string;
  readonly expected: number;
  /** The counts a restore may bring back, when the count moved during the backup (README, "Writes during a backup"). */
  readonly expectedMin?: number;
  readonly expectedMax?: number;
  /** What the restore's validation counted; absent when the collection was not counted. */
  readonly restored?: number;
  /**
   * `count(*)` the demo ran itself on the restored Milvus after the restore; for a collection
   * released as at the source (`released`), its get_stats count, which needs no load.
   */
  readonly served?: number;
  readonly searchHits?: number;
  /** `stats` when the backup found the collection not loaded and counted it by get_stats (deleted rows included). */
  readonly countedBy?: 'count' | 'stats';
  /** The source had it released: validation loaded it for its check and released it again. */
  readonly released?: true;
  readonly ok: boolean;
}

/** The demo's result: what `--json` prints, exactly. */
export interface DemoSummary {
  readonly backup: { readonly id: string | null; readonly status: string; readonly sizeBytes?: number; readonly durationSeconds?: number };
  readonly disaster: { readonly namespace: string; readonly deleted: boolean; readonly milvusAnswers: boolean; readonly probe: string };
  readonly restore: { readonly id: string | null; readonly status: string; readonly namespace: string; readonly source?: string; readonly failure?: RestoreRecord['failure'] };
  readonly collections: readonly DemoCollection[];
  readonly bytesUploaded: number;
  readonly rtoSeconds: number | null;
  readonly passed: boolean;
  /** Why the demo did not pass. */
  readonly reason?: string;
  readonly elapsedSeconds: number;
  /** With `--keep`: the state directory left for inspection. */
  readonly stateDir?: string;
}

/** The demo was stopped with Ctrl-C (or SIGTERM); exit code 130 as shells expect. */
export class DemoInterruptedError extends UserError {
  constructor(signal: string, cleanedUp: string) {
    super(`demo interrupted by ${signal}: ${cleanedUp}`, { exitCode: 130 });
    this.name = 'DemoInterruptedError';
  }
}

/** What the demo talks to besides the local cluster: output, a clock for elapsed time, signals. */
export interface DemoIO {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Milliseconds on a monotonic clock. */
  readonly clock: () => number;
  /** Calls `handler` on Ctrl-C / SIGTERM until the returned function is called. */
  readonly onInterrupt: (handler: (signal: string) => void) => () => void;
}

export const processDemoIO: DemoIO = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  clock: () => performance.now(),
  onInterrupt: (handler) => {
    const on = (signal: NodeJS.Signals) => {
      off();
      // The demo cleans up and returns; should a workflow still be retrying against the stopped
      // cluster, it must not keep the process alive. A second Ctrl-C kills at once (no handler).
      setTimeout(() => process.exit(130), 10_000).unref();
      handler(signal);
    };
    const off = () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
    return off;
  },
};

/**
 * Ctrl-C / SIGTERM while a demo runs: `interruption` rejects on the first signal (after `say`
 * was told), `signal()` names it, `stop()` stops listening.
 */
export function listenForInterrupt(io: DemoIO, say: (signal: string) => void): { readonly interruption: Promise<never>; readonly signal: () => string | undefined; readonly stop: () => void } {
  let interruptedBy: string | undefined;
  let interrupt: (err: Error) => void = () => undefined;
  const interruption = new Promise<never>((_, reject) => (interrupt = reject));
  interruption.catch(() => undefined);
  const stop = io.onInterrupt((signal) => {
    interruptedBy = signal;
    say(signal);
    interrupt(new Error(signal));
  });
  return { interruption, signal: () => interruptedBy, stop };
}

export interface DemoOptions {
  /** Use this directory (new or empty) as the state directory and leave it behind. */
  readonly keep?: string;
  readonly io: DemoIO;
  /** The seeded Milvus CR's image tag (`--milvus-version`). Default: the local cluster's. */
  readonly milvusVersion?: string;
  /** Seed a Milvus with authorization enabled and back it up with credentials (`--milvus-auth`). */
  readonly milvusAuth?: boolean;
  /** Where the seeded Milvus keeps its objects (`--object-storage`): in-cluster MinIO, or an external S3 bucket. Default `minio`. */
  readonly objectStorage?: 'minio' | 's3';
}

/** With `--object-storage s3`: the bucket restores copy the Milvus objects into (locally a directory, as the seeded bucket is). */
export const DEMO_RESTORE_BUCKET = 'production-milvus-restores';

export async function stateDirFor(keep: string | undefined): Promise<string> {
  if (keep === undefined) return mkdtemp(join(tmpdir(), 'milvus-guard-demo-'));
  const dir = resolve(keep);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new UserError(`--keep ${keep}: ${dir} is not empty; the demo seeds a fresh cluster, so give a new or empty directory`);
  }
  return dir;
}

/** How the demo itself reaches a Milvus that wants credentials: a relay (core/milvus/relay.ts) with the plan's Secret. */
export interface DemoAuth {
  readonly authSecret: MilvusAuthSecret;
  /** The data-mover image the local cluster runs the relay from. */
  readonly image: string;
}

/**
 * Runs `use` with a client for `endpoint`: through the service proxy, or through a relay when
 * `auth` is given (its first call waits for the relay pod to run), removed afterwards.
 */
export async function withDemoMilvus<T>(kube: KubeClients, endpoint: MilvusEndpoint, auth: DemoAuth | undefined, use: (milvus: MilvusClient) => Promise<T>): Promise<T> {
  if (!auth) return use(new MilvusClient(kube.kc, endpoint));
  const run = { label: 'milvus-guard.io/demo', id: 'probe' };
  const relay = new RelayTransport(kube, { endpoint, authSecret: auth.authSecret, secretField: 'the demo plan, milvus.authSecret', image: auth.image, run, deadlineSeconds: 600, callTimeoutSeconds: 30 });
  const milvus = new MilvusClient(kube.kc, endpoint, relay);
  try {
    return await use(milvus);
  } finally {
    await milvus.close();
    await deleteRelays(kube, endpoint.namespace, run).catch(() => undefined);
  }
}

/** What a Milvus answers in `namespace`: its collections (`db.name`), or why nothing answered. */
export async function probeMilvus(kube: KubeClients, endpoint: MilvusEndpoint, auth?: DemoAuth): Promise<{ answers: true; collections: string[] } | { answers: false; why: string }> {
  try {
    return await withDemoMilvus(kube, endpoint, auth, async (milvus) => {
      const collections: string[] = [];
      for (const db of await milvus.listDatabases()) for (const c of await milvus.listCollections(db)) collections.push(`${db}.${c}`);
      return { answers: true as const, collections };
    });
  } catch (err) {
    return { answers: false, why: err instanceof Error ? err.message : String(err) };
  }
}

/** Deletes `namespace` through the Kubernetes API and waits until the API server no longer has it. */
async function deleteNamespaceAndWait(kube: KubeClients, namespace: string, deadline: number, clock: () => number): Promise<void> {
  await kube.core.deleteNamespace({ name: namespace });
  for (;;) {
    try {
      await kube.core.readNamespace({ name: namespace });
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw err;
    }
    if (clock() > deadline) throw new Error(`namespace ${namespace} was still there ${NAMESPACE_GONE_TIMEOUT_MS / 1000}s after its deletion`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What every phase of the demo uses. */
interface Demo {
  /** Runs a workflow on the demo's cluster with short polls, a progress line per state. */
  readonly run: (workflow: Workflow, input: unknown) => Promise<ExecutionEnd>;
  /** The seeded Milvus, which the disaster destroys. */
  readonly source: MilvusEndpoint;
  /** How the demo reaches a Milvus with authorization enabled (`--milvus-auth`). */
  readonly auth?: DemoAuth;
  /** With `--object-storage s3`: the directory of the Milvus's root path in its bucket, which the disaster destroys too. */
  readonly bucketRoot?: string;
  readonly kube: KubeClients;
  readonly catalog: BackupCatalog;
  /** The local vault's URL. */
  readonly vault: string;
  readonly clock: () => number;
  /** A progress line on stderr: `[  1.2s] phase    text`. */
  readonly say: (phase: string, text: string) => void;
}

/** A workflow's end and the catalog record it wrote, if it got that far. */
type Ran<R> = { readonly end: ExecutionEnd; readonly record?: R };

/** 1. The seeded Milvus answers before anything happens to it. */
async function checkSeed(demo: Demo, url: string): Promise<void> {
  const before = await probeMilvus(demo.kube, demo.source, demo.auth);
  if (!before.answers) throw new Error(`the seeded Milvus in ${demo.source.namespace} does not answer: ${before.why}`);
  demo.say('cluster', `ready at ${url}; Milvus in namespace ${demo.source.namespace} serves ${before.collections.join(', ')}${demo.auth ? ` (authorization enabled; the plan's credentials are in Secret ${demo.auth.authSecret.name})` : ''}`);
}

/** 2. The backup workflow for the demo plan. */
async function backUp(demo: Demo): Promise<Ran<BackupRecord>> {
  demo.say('backup', `plan ${DEMO_PLAN}: quiesce Milvus, snapshot its volumes, export them into the vault (${demo.vault})`);
  const end = await demo.run('backup', { plan: DEMO_PLAN });
  const record = (await demo.catalog.listBackups({ plan: DEMO_PLAN })).find((b) => b.executionId === end.executionArn);
  if (record?.status === 'Available') {
    const rows = record.rowCounts.reduce((n, r) => n + r.rows, 0);
    const copy = record.objectCopy;
    const bucket = copy ? `, ${copy.objects} objects of s3://${copy.source.bucket}/${copy.source.rootPath} (${formatBytes(copy.bytes)}) copied into the vault` : '';
    demo.say('backup', `${record.backupId} Available: ${rows} rows in ${record.rowCounts.length} collections, ${formatBytes(record.sizeBytes ?? 0)} of data${bucket}, ${formatBytes(record.bytesUploaded ?? 0)} uploaded`);
  }
  return { end, record };
}

/** 3. Deletes the seeded Milvus's namespace and asks whether a Milvus still answers there. */
async function destroy(demo: Demo): Promise<DemoSummary['disaster']> {
  const { namespace } = demo.source;
  demo.say('disaster', `deleting namespace ${namespace} with everything in it (Milvus, its pods, PVCs and snapshots)`);
  await deleteNamespaceAndWait(demo.kube, namespace, demo.clock() + NAMESPACE_GONE_TIMEOUT_MS, demo.clock);
  if (demo.bucketRoot) {
    // The bucket outlives the namespace; a disaster that takes the data takes its objects too.
    demo.say('disaster', `deleting every Milvus object in its S3 bucket (${demo.bucketRoot})`);
    await rm(demo.bucketRoot, { recursive: true, force: true });
  }
  const after = await probeMilvus(demo.kube, demo.source, demo.auth);
  if (!after.answers) demo.say('disaster', `namespace ${namespace} is gone; Milvus there no longer answers (${after.why})`);
  return { namespace, deleted: true, milvusAnswers: after.answers, probe: after.answers ? `Milvus still serves ${after.collections.join(', ')}` : after.why };
}

/** 4. The restore workflow: the backup from the vault into {@link DEMO_TARGET_NAMESPACE}; its Validate step compares row counts. */
async function restore(demo: Demo, backup: BackupRecord): Promise<Ran<RestoreRecord>> {
  demo.say('restore', `${backup.backupId} from the vault into namespace ${DEMO_TARGET_NAMESPACE}`);
  const end = await demo.run('restore', { backupId: backup.backupId, targetNamespace: DEMO_TARGET_NAMESPACE, source: 'vault' });
  const record = (await demo.catalog.listRestores({ backupId: backup.backupId })).find((r) => r.executionId === end.executionArn);
  demo.say('restore', `${record?.restoreId ?? '(no record)'} ${record?.status ?? end.status}${record?.rtoSeconds !== undefined ? `, RTO ${formatDuration(record.rtoSeconds)}` : ''}`);
  return { end, record };
}

/** 5. The rows the restored Milvus serves, counted by the demo itself: the summary does not rest on the workflow's word alone. */
async function witness(demo: Demo, restored: RestoreRecord | undefined): Promise<Map<string, number>> {
  const served = new Map<string, number>();
  if (restored?.status !== 'Completed') return served;
  await withDemoMilvus(demo.kube, { ...demo.source, namespace: DEMO_TARGET_NAMESPACE }, demo.auth, async (target) => {
    for (const [name, rows] of await servedRows(target, restored.validation?.collections ?? [])) served.set(name, rows);
  });
  demo.say('validate', `the restored Milvus in ${DEMO_TARGET_NAMESPACE} serves ${[...served].map(([n, r]) => `${n}=${r}`).join(', ')}`);
  return served;
}

/**
 * The rows a restored Milvus serves of each collection validation checked, by `db.collection`:
 * `count(*)`, or for a collection released as at the source, which cannot answer count(*)
 * without a load that would undo what the restore brought back, get_stats of its segments.
 */
export async function servedRows(milvus: Pick<MilvusClient, 'countRows' | 'persistedRowCount'>, checks: readonly CollectionCheck[]): Promise<Map<string, number>> {
  const served = new Map<string, number>();
  for (const c of checks) {
    // Dropped during the backup and not restored as backed up: nothing of it to serve.
    if (c.droppedDuringBackup) continue;
    served.set(`${c.database}.${c.collection}`, c.released ? await milvus.persistedRowCount(c.database, c.collection) : await milvus.countRows(c.database, c.collection));
  }
  return served;
}

/** 6. The summary of the phases that ran: passed only when every collection recorded at backup is back with its rows. */
function verdict(demo: Demo, backup: Ran<BackupRecord>, disaster?: DemoSummary['disaster'], restored?: Ran<RestoreRecord>, served = new Map<string, number>()): Omit<DemoSummary, 'elapsedSeconds'> {
  const b = backup.record;
  const r = restored?.record;
  const collections: DemoCollection[] = (r?.validation?.collections ?? []).map((c) => {
    const name = `${c.database}.${c.collection}`;
    const live = served.get(name);
    // A collection the backup found not loaded was counted by get_stats (deleted rows included):
    // the restored Milvus serves at most that many live rows. Otherwise it serves what validation
    // counted, a count the backup allows (the expected one, or one in its range).
    const servedOk = live !== undefined && (c.countedBy === 'stats' ? live <= (c.restored ?? c.expected) : live === c.restored && withinExpected(c, live));
    return {
      name,
      expected: c.expected,
      ...(c.expectedMin !== undefined && c.expectedMax !== undefined ? { expectedMin: c.expectedMin, expectedMax: c.expectedMax } : {}),
      restored: c.restored,
      served: live,
      searchHits: c.searchHits,
      ...(c.countedBy ? { countedBy: c.countedBy } : {}),
      ...(c.released ? { released: true as const } : {}),
      ok: c.droppedDuringBackup ? c.ok : c.ok && c.restored !== undefined && withinExpected(c, c.restored) && servedOk,
    };
  });
  const missing = (b?.rowCounts ?? []).map((x) => `${x.database}.${x.collection}`).filter((n) => !collections.some((c) => c.name === n));
  const bad = collections.filter((c) => !c.ok);
  const failed = (end: ExecutionEnd | undefined) => `${end?.error}: ${end?.cause}`;
  let reason: string | undefined;
  if (backup.end.status !== 'SUCCEEDED' || b?.status !== 'Available') reason = `the backup did not complete: ${backup.end.error ? failed(backup.end) : `status ${b?.status ?? 'unknown'}`}`;
  else if (disaster?.milvusAnswers) reason = `namespace ${disaster.namespace} was deleted but a Milvus still answers there`;
  else if (r?.status !== 'Completed') reason = `the restore did not complete: ${r?.failure ? `${failedAtText(r.failure)}: ${r.failure.error}: ${r.failure.cause}` : failed(restored?.end)}`;
  else if (!r.validation?.passed) reason = 'the restore completed but its validation did not pass';
  else if (missing.length) reason = `collections recorded at backup were not validated: ${missing.join(', ')}`;
  else if (bad.length) reason = `row counts differ: ${bad.map((c) => `${c.name} expected ${c.expected}, restored ${c.restored ?? 'none'}, served ${c.served ?? 'none'}`).join('; ')}`;
  else if (!collections.length) reason = 'the backup recorded no collections to validate';
  return {
    backup: { id: b?.backupId ?? null, status: b?.status ?? 'NotStarted', sizeBytes: b?.sizeBytes, durationSeconds: b?.durationSeconds },
    disaster: disaster ?? { namespace: demo.source.namespace, deleted: false, milvusAnswers: true, probe: 'not run' },
    restore: { id: r?.restoreId ?? null, status: r?.status ?? 'NotStarted', namespace: DEMO_TARGET_NAMESPACE, source: r?.source, failure: r?.failure },
    collections,
    bytesUploaded: b?.bytesUploaded ?? 0,
    rtoSeconds: r?.rtoSeconds ?? null,
    passed: reason === undefined,
    reason,
  };
}

/** Phases 2 to 6 on a started cluster; a failed phase ends the story with its reason. */
async function story(demo: Demo): Promise<Omit<DemoSummary, 'elapsedSeconds'>> {
  const backup = await backUp(demo);
  if (backup.end.status !== 'SUCCEEDED' || backup.record?.status !== 'Available') return verdict(demo, backup);
  const disaster = await destroy(demo);
  if (disaster.milvusAnswers) return verdict(demo, backup, disaster);
  const restored = await restore(demo, backup.record);
  return verdict(demo, backup, disaster, restored, await witness(demo, restored.record));
}

/**
 * Runs the demo (see the module documentation) and resolves to its summary; `passed` says
 * whether every collection came back. The cluster is stopped and, without `keep`, its state
 * directory removed, however the demo ends; an interrupt stops it early with
 * {@link DemoInterruptedError}.
 */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const { io } = options;
  const start = io.clock();
  const elapsed = () => (io.clock() - start) / 1000;
  const say = (phase: string, text: string) => io.err(`[${elapsed().toFixed(1).padStart(5)}s] ${phase.padEnd(8)} ${text}\n`);
  // Loaded here, not at the top: only the demo's own process needs the local cluster.
  const local = await import('../local-mode.js');
  const example = await loadConfigFile(DEMO_CONFIG);
  // With --milvus-auth the plan names the seeded Secret with root's credentials.
  const authSecret = options.milvusAuth ? { name: local.SEED_AUTH_SECRET, usernameKey: 'username', passwordKey: 'password' } : undefined;
  // With --object-storage s3 the plan declares the seeded bucket and where restores may write.
  const s3 = options.objectStorage === 's3';
  const objectStorage = s3 ? { bucket: local.SEED_S3_BUCKET, rootPath: local.SEED_S3_ROOT_PATH, restoreTargets: [{ bucket: DEMO_RESTORE_BUCKET, prefix: 'milvus' }] } : undefined;
  const config =
    authSecret || objectStorage
      ? { ...example, plans: example.plans.map((p) => (p.name === DEMO_PLAN ? { ...p, milvus: { ...p.milvus, ...(authSecret ? { authSecret } : {}), ...(objectStorage ? { objectStorage } : {}) } } : p)) }
      : example;
  const { plan } = resolvePlan(config, DEMO_PLAN);
  const source: MilvusEndpoint = { namespace: plan.namespace, service: plan.milvus.service, restPort: plan.milvus.restPort, managementPort: plan.milvus.managementPort };
  const stateDir = await stateDirFor(options.keep);

  const interrupted = listenForInterrupt(io, (signal) => say('stop', `${signal}: stopping the cluster`));

  say('cluster', `starting a local Kubernetes API with a seeded Milvus (state: ${stateDir})`);
  const starting = local.startLocalCluster({ stateDir, port: 0, ...(options.milvusVersion !== undefined ? { milvusVersion: options.milvusVersion } : {}), ...(options.milvusAuth ? { milvusAuth: true } : {}), ...(s3 ? { objectStorage: 's3' as const } : {}) });
  const outcome = (async () => {
    const cluster = await starting;
    // An S3 bucket must exist before a restore writes into it; locally it is a directory.
    if (s3) await mkdir(join(cluster.dirs.objectStorage(), DEMO_RESTORE_BUCKET), { recursive: true });
    const demo: Demo = {
      run: (workflow, input) => runLocally({ workflow, config, input, stateDir, pollMs: DEMO_POLL_MS, retryMs: DEMO_RETRY_MS, show: (state) => say(workflow, `  ${state}`) }),
      source,
      ...(authSecret ? { auth: { authSecret, image: local.LOCAL_DATAMOVER_IMAGE } } : {}),
      ...(s3 ? { bucketRoot: join(cluster.dirs.objectStorage(), local.SEED_S3_BUCKET, local.SEED_S3_ROOT_PATH) } : {}),
      kube: makeKubeClients(kubeConfigFromFile(cluster.kubeconfigPath)),
      catalog: await local.localCatalog(stateDir),
      vault: (await local.localVault(stateDir)).url,
      clock: io.clock,
      say,
    };
    await checkSeed(demo, cluster.url);
    return story(demo);
  })();
  outcome.catch(() => undefined);

  try {
    const summary = await Promise.race([outcome, interrupted.interruption]);
    return { ...summary, elapsedSeconds: elapsed(), ...(options.keep !== undefined ? { stateDir } : {}) };
  } catch (err) {
    if (interrupted.signal() === undefined) throw err;
    throw new DemoInterruptedError(interrupted.signal()!, options.keep === undefined ? `the cluster was stopped and ${stateDir} removed` : `the cluster was stopped; its state is in ${stateDir}`);
  } finally {
    interrupted.stop();
    const cluster = await starting.catch(() => undefined);
    await cluster?.stop();
    if (interrupted.signal() !== undefined) {
      // The workflow still running in this process fails fast against the stopped cluster; let
      // it end before the directory goes, or it would write its last records into a removed one.
      await Promise.race([outcome.catch(() => undefined), new Promise((r) => setTimeout(r, 3000).unref())]);
    }
    if (options.keep === undefined) {
      // Retried: data-mover processes the stop just signalled may still be closing files in it.
      await rm(stateDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }).catch((err: Error) => say('cleanup', `could not remove ${stateDir}: ${err.message}; delete it by hand`));
    }
  }
}

/**
 * Why a collection's served count may be lower than expected: it was not loaded at backup, so it
 * was counted (and restored, and checked) by get_stats, which includes deleted rows.
 */
export function statsNote(collections: readonly { name: string; countedBy?: 'count' | 'stats'; released?: boolean }[]): string | undefined {
  const stats = collections.filter((c) => c.countedBy === 'stats');
  if (stats.length === 0) return undefined;
  const released = stats.filter((c) => c.released).map((c) => c.name);
  const loaded = stats.filter((c) => !c.released).map((c) => c.name);
  const base = 'not loaded at backup, so counted by get_stats (deleted rows included) and checked the same way after the restore';
  return [
    ...(released.length > 0 ? [`${released.join(', ')}: ${base}, loaded for the check and released again, as at the source; SERVED is its get_stats count.\n`] : []),
    ...(loaded.length > 0 ? [`${loaded.join(', ')}: ${base}; SERVED is its live count(*).\n`] : []),
  ].join('');
}

/** How to look at a kept state directory afterwards. */
function inspectHint(s: DemoSummary, dir: string): string {
  return (
    `The state is kept in ${dir}. Inspect it:\n` +
    `  milvus-guard local up --state ${dir}              # serve the cluster again (another terminal)\n` +
    `  kubectl --kubeconfig ${join(dir, 'kubeconfig')} get milvus,pods,pvc -n ${s.restore.namespace}\n` +
    `  milvus-guard backup describe ${s.backup.id ?? 'ID'} --local --state ${dir}\n` +
    (s.restore.id ? `  milvus-guard restore describe ${s.restore.id} --local --state ${dir}\n` : '')
  );
}

/** The human summary printed on stdout at the end. */
export function renderDemoSummary(s: DemoSummary): string {
  const lines = [
    `milvus-guard demo: ${s.passed ? 'PASSED' : 'FAILED'}${s.reason ? ` (${s.reason})` : ''}`,
    '',
    `Backup:          ${s.backup.id ?? '(none)'} ${s.backup.status}${s.backup.sizeBytes !== undefined ? `, ${formatBytes(s.backup.sizeBytes)} of data` : ''}${s.backup.durationSeconds !== undefined ? ` in ${formatDuration(s.backup.durationSeconds)}` : ''}`,
    `Bytes uploaded:  ${formatBytes(s.bytesUploaded)} (${s.bytesUploaded} bytes)`,
    `Disaster:        ${s.disaster.deleted ? `namespace ${s.disaster.namespace} deleted; ${s.disaster.milvusAnswers ? 'Milvus STILL answers there' : 'no Milvus answers there'}` : 'not staged'}`,
    `Restore:         ${s.restore.id ?? '(none)'} ${s.restore.status} into ${s.restore.namespace}${s.restore.source ? ` from the ${s.restore.source}` : ''}`,
    `RTO:             ${s.rtoSeconds === null ? '' : formatDuration(s.rtoSeconds)}`,
  ];
  if (s.restore.failure) lines.push(`Restore failure: ${failedAtText(s.restore.failure)}: ${s.restore.failure.error}: ${s.restore.failure.cause}`, `Left behind:     ${s.restore.failure.leftBehind}`);
  lines.push(`Wall time:       ${formatDuration(s.elapsedSeconds)}`, '');
  const out = [lines.join('\n')];
  if (s.collections.length) {
    out.push(formatTable(['collection', 'expected', 'restored', 'served', 'search hits', 'ok'], s.collections.map((c) => [c.name, expectedCell(c), c.restored ?? '', c.served ?? '', c.searchHits ?? '', c.ok ? 'yes' : 'NO'])));
    const byStats = statsNote(s.collections);
    if (byStats) out.push(byStats);
  }
  if (s.stateDir) out.push(inspectHint(s, s.stateDir));
  return out.join('\n');
}

/** Registers `demo` on the root program. */
export function registerDemoCommands(program: Command, io: DemoIO = processDemoIO): void {
  program
    .command('demo')
    .description('the whole story on a throwaway local cluster: seed Milvus, back it up, delete its namespace, restore it into another, validate')
    .option('--json', 'print exactly one JSON object on stdout (progress stays on stderr)', false)
    .option('--keep <dir>', 'use this new or empty directory for the cluster state and keep it, to inspect afterwards')
    .addOption(
      new Option('--scenario <name>', 'restore: a namespace is lost and restored from the vault; region-outage: the primary region goes down and Milvus fails over into the DR region from the replicated vault')
        .choices(['restore', 'region-outage'])
        .default('restore'),
    )
    .addOption(milvusVersionOption())
    .option('--milvus-auth', 'run against a Milvus with authorization enabled: every Milvus call goes through a relay pod with the credentials of the plan\'s authSecret', false)
    .addOption(objectStorageOption())
    .action(async (opts: { json: boolean; keep?: string; scenario: 'restore' | 'region-outage'; milvusVersion: string; milvusAuth: boolean; objectStorage: 'minio' | 's3' }) => {
      if (opts.scenario === 'region-outage') {
        // The region-outage demo seeds its own clusters; the options apply to the restore demo.
        if (opts.milvusVersion !== DEFAULT_MILVUS_VERSION) throw new UserError('--milvus-version applies to --scenario restore only; run the region-outage demo without it');
        if (opts.milvusAuth) throw new UserError('--milvus-auth applies to --scenario restore only; run the region-outage demo without it');
        if (opts.objectStorage !== 'minio') throw new UserError('--object-storage applies to --scenario restore only; run the region-outage demo without it');
        const { runRegionOutageDemo, renderRegionOutageSummary } = await import('./demo-region-outage.js');
        const outage = await runRegionOutageDemo({ io, ...(opts.keep !== undefined ? { keep: opts.keep } : {}) });
        io.out(opts.json ? `${JSON.stringify(outage)}\n` : renderRegionOutageSummary(outage));
        if (!outage.passed) io.err(`demo FAILED: ${outage.reason}\n`);
        process.exitCode = outage.passed ? 0 : 1;
        return;
      }
      // The demo backs up what it seeds: a version a backup refuses would only fail later.
      const tooOld = backupUnsupportedReason(parseMilvusVersion(opts.milvusVersion));
      if (tooOld) throw new UserError(`--milvus-version ${opts.milvusVersion}: ${tooOld}; the demo backs it up (milvus-guard local up --milvus-version seeds it to try)`);
      const summary = await runDemo({ io, milvusVersion: opts.milvusVersion, milvusAuth: opts.milvusAuth, objectStorage: opts.objectStorage, ...(opts.keep !== undefined ? { keep: opts.keep } : {}) });
      io.out(opts.json ? `${JSON.stringify(summary)}\n` : renderDemoSummary(summary));
      // With --json stdout holds the JSON alone; the way to inspect the kept state goes to stderr.
      if (opts.json && summary.stateDir) io.err(inspectHint(summary, summary.stateDir));
      if (!summary.passed) io.err(`demo FAILED: ${summary.reason}\n`);
      process.exitCode = summary.passed ? 0 : 1;
    });
}

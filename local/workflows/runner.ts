/**
 * The local workflow runner: executes the files under statemachines/ — the ones CDK deploys —
 * with aws-local-stepfunctions, every Task mapped to the same handler its Lambda runs, built
 * with local collaborators: the local cluster's kubeconfig, a `file://` vault (or a vault the
 * caller passes, such as an S3-compatible server), the file-backed catalog, a key-file sealer
 * and a JSON-lines event log, all under the cluster's state directory. A drill's nested
 * restore (`states:startExecution.sync:2`) runs the restore file the same way. Wait states and
 * retry intervals can be shortened; nothing else differs from AWS.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
type JSONValue = Parameters<StateMachine['run']>[0];
import type { Context } from 'aws-lambda';
import { DEFAULT_TIMINGS, type BackupServices, type BackupTimings } from '../../core/backup/context.js';
import { FileEvents } from '../../core/backup/events.js';
import { LocalKeySealer } from '../../core/backup/sealer.js';
import { LocalCatalog } from '../../core/catalog/local.js';
import { replicatesInto, resolvePlan } from '../../core/config/resolve.js';
import type { Config } from '../../core/config/schema.js';
import { kubeConfigFromFile, makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { KubernetesExec } from '../../core/kube/exec.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import type { VaultStore } from '../../core/vault/store.js';
import { fillPlaceholders, loadDefinition, placeholdersOf, walkStates } from '../../core/workflow/asl.js';
import { stateOfPlaceholder } from '../../core/workflow/steps.js';
import { makeStepHandlers, type StepHandler } from '../../lambdas/backup/handlers.js';
import { makeRestoreStepHandlers } from '../../lambdas/restore/handlers.js';
import { makeRetentionStepHandlers } from '../../lambdas/retention/handlers.js';
import { DEFAULT_RETENTION_TIMINGS, type RetentionTimings } from '../../core/retention/workflow.js';
import { DEFAULT_RESTORE_TIMINGS, type RestoreServices, type RestoreTimings } from '../../core/restore/context.js';
import { makeHandler as makePrepareHandler } from '../../lambdas/prepare/handler.js';
import { LOCAL_DATAMOVER_IMAGE } from '../runtime.js';
import { OBJECT_STORAGE_DIR } from '../volumes.js';
import { DEFAULT_OBJECT_COPY_CALL_SECONDS } from '../../core/backup/objects.js';
import { directoryCopyBackend } from '../../core/objectstore/bucket-copy.js';
import { LocalMetrics } from './metrics.js';
import './promise-with-resolvers.js';
import { LocalExecutions } from './registry.js';
import { checkReplicationStep, type ReplicationCheckResult } from '../../core/dr/replication.js';
import { UserError } from '../../core/errors.js';
import { recoverRestore, type RestoreRecovery } from '../../core/restore/recover.js';

/** Where the runner keeps its side of the embedded default, inside the cluster's state directory. */
export function localPaths(stateDir: string) {
  const region = readRegionLink(stateDir);
  return {
    kubeconfig: join(stateDir, 'kubeconfig'),
    vault: join(stateDir, 'vault'),
    // The buckets of S3-backed Milvus instances: a directory per bucket (local/volumes.ts).
    objectStorage: join(stateDir, OBJECT_STORAGE_DIR),
    // A DR region's state directory uses the primary's catalog (the DynamoDB global table has a
    // replica in every region: one table) and its sealing key (a multi-Region key's replica
    // holds the same key material).
    catalog: region?.catalog ?? join(stateDir, 'catalog'),
    sealerKey: region?.sealerKey ?? join(stateDir, 'sealer.key'),
    events: join(stateDir, 'events.jsonl'),
    executions: join(stateDir, 'executions'),
    region: join(stateDir, REGION_FILE),
  };
}

/** The file that makes a state directory a DR region of another one (`linkDrRegion`). */
const REGION_FILE = 'region.json';

/** What `region.json` says: the region the state directory stands for, and the primary's shared parts. */
export interface RegionLink {
  readonly region: string;
  /** The primary state directory's catalog directory. */
  readonly catalog: string;
  /** The primary state directory's sealing key file. */
  readonly sealerKey: string;
}

/** The region link of a state directory, if it is a DR region's. */
export function readRegionLink(stateDir: string): RegionLink | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir, REGION_FILE), 'utf8')) as RegionLink;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Makes `drStateDir` (a second local cluster, with its own vault directory) the DR region
 * `region` of `primaryStateDir`: its workflows run in `region`, read its own vault — the
 * replica a {@link LocalReplicator} feeds — and share the primary's catalog and sealing key.
 */
export async function linkDrRegion(drStateDir: string, primaryStateDir: string, region: string): Promise<RegionLink> {
  const primary = localPaths(primaryStateDir);
  const link: RegionLink = { region, catalog: resolvePath(primary.catalog), sealerKey: resolvePath(primary.sealerKey) };
  await writeFile(join(drStateDir, REGION_FILE), `${JSON.stringify(link, null, 2)}\n`);
  return link;
}

/** The local catalog of a state directory (for `backup list --local`). */
export const localCatalog = (stateDir: string): LocalCatalog => new LocalCatalog(localPaths(stateDir).catalog);

/** How the data-mover Job runs on the local cluster: the project's own CLI (see local/runtime.ts). */
export const LOCAL_DATAMOVER = { image: LOCAL_DATAMOVER_IMAGE, serviceAccountName: 'milvus-guard-datamover' } as const;

/** The workflows under statemachines/. */
export type LocalWorkflow = 'backup' | 'restore' | 'drill' | 'retention' | 'failover';

export interface LocalBackupOptions {
  /** The local cluster's state directory (`local up --state DIR`). */
  readonly stateDir: string;
  readonly config: Config;
  /** The execution input, as the console would take it: `{"plan": NAME}`. */
  readonly input: unknown;
  /** Default: `local-<uuid>`. */
  readonly executionName?: string;
  readonly timings?: Partial<BackupTimings>;
  /** Deadlines of the restore's polling loops (restores and drills). */
  readonly restoreTimings?: Partial<RestoreTimings>;
  /** Lock lifetime, garbage-collection slices and snapshots kept of retention runs. */
  readonly retentionTimings?: Partial<RetentionTimings>;
  /** Milliseconds each Wait state waits. Default 500. */
  readonly pollMs?: number;
  /** Milliseconds before each retry. Default 200. */
  readonly retryMs?: number;
  /**
   * Awaited in place of each Wait state's time, before the Task that polls: a test passes its
   * cluster's `settle()`, so each poll runs once the cluster has done what it can (a Job's
   * process has exited, a snapshot is ready) rather than after a delay on the real clock. Wait
   * states and retries then take no time. A rejection (a cluster that does not settle) only ends
   * the waiting: the poll runs and its own deadline decides.
   */
  readonly untilPoll?: () => Promise<void>;
  /**
   * The clock of the steps and the execution's start time (`$$.Execution.StartTime`, which
   * names a backup and is a retention run's clock): `--now` makes a history of backups and
   * expires it without waiting real days. Default: the system clock.
   */
  readonly now?: () => Date;
  /** Called with each state's name as the execution enters it (a nested execution's as `Parent/Child`). */
  readonly onState?: (state: string) => void;
  /**
   * Called with a Task's state name just before each invocation of its handler (after a poll's
   * wait), so a fault can be switched on exactly when a step starts (bench/fault-matrix.ts):
   * `onState` is reported asynchronously and may come after the Task's first request. A promise
   * it returns is awaited before the handler runs (a test's write to Milvus just before a step).
   */
  readonly beforeTask?: (state: string) => void | Promise<void>;
  /** The vault the steps and the data-mover Jobs use. Default: the state directory's `file://` vault. */
  readonly vault?: LocalVault;
}

/**
 * A vault other than the state directory's: the store the steps write through, and how the
 * data-mover Jobs reach the same vault (their `--vault` URL and further flags, such as
 * `--endpoint` and `--region` of an S3-compatible server). Both must name one vault.
 */
export interface LocalVault {
  readonly store: VaultStore;
  readonly url: string;
  readonly args: readonly string[];
}

export interface LocalWorkflowOptions extends LocalBackupOptions {
  readonly workflow: LocalWorkflow;
}

export interface LocalBackupResult {
  readonly executionId: string;
  readonly status: 'SUCCEEDED' | 'FAILED';
  /** The execution's output when it succeeded. */
  readonly output?: unknown;
  /** The execution's error and cause when it failed. */
  readonly error?: { readonly name: string; readonly message: string };
  /** Every state entered, in order. */
  readonly states: readonly string[];
  /** The states that were retried after an error, once per retry, in order. */
  readonly retried: readonly string[];
}

const FUNCTION_ARN = (name: string) => `arn:aws:lambda:local:000000000000:function:milvus-guard-${name}`;

function lambdaContext(functionName: string): Context {
  return {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: FUNCTION_ARN(functionName),
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 300_000,
  } as unknown as Context;
}

/** The collaborators of the steps on the embedded default. */
export function localBackupServices(stateDir: string, config: Config, options: { timings?: Partial<BackupTimings>; now?: () => Date; vault?: LocalVault } = {}): BackupServices {
  const paths = localPaths(stateDir);
  let clients: KubeClients | undefined;
  return {
    config,
    now: options.now ?? (() => new Date()),
    // Every plan's cluster is the local cluster.
    kube: async () => (clients ??= makeKubeClients(kubeConfigFromFile(paths.kubeconfig), { deadline: { timeoutMs: (options.timings?.kubeRequestTimeoutSeconds ?? DEFAULT_TIMINGS.kubeRequestTimeoutSeconds) * 1000 } })),
    exec: (kube) => new KubernetesExec(kube.exec),
    // Object Lock dates are checked against the steps' clock, so a run at a fixed `now` sees the locks its history set.
    vault: options.vault?.store ?? new FileVaultStore(paths.vault, options.now ? { now: options.now } : {}),
    catalog: new LocalCatalog(paths.catalog),
    sealer: new LocalKeySealer(paths.sealerKey),
    events: new FileEvents(paths.events),
    dataMover: { ...LOCAL_DATAMOVER, vaultUrl: options.vault?.url ?? pathToFileURL(paths.vault).href, vaultArgs: options.vault ? [...options.vault.args] : [] },
    executions: new LocalExecutions(paths.executions),
    timings: { ...DEFAULT_TIMINGS, ...options.timings },
    objectCopy: {
      backend: () => {
        // The local cluster's external buckets are directories, copied into the directory vault.
        if (options.vault) throw new UserError('an S3-backed Milvus on the local cluster is backed up into its directory vault only; run without an S3 vault');
        return directoryCopyBackend({ bucketsDir: paths.objectStorage, vaultDir: paths.vault });
      },
      callSeconds: DEFAULT_OBJECT_COPY_CALL_SECONDS,
    },
  };
}

/**
 * The collaborators of the restore and drill steps on the embedded default. A step's waits
 * (`sleep`) take real time unless `untilPoll` is given: then, as for Wait states, each is one
 * `untilPoll` whatever the time asked for. Given the cluster's `settle()`, that waits for the
 * work in progress, the simulated Milvus's load reads included: Validate's next poll of a load
 * comes once the load's read is done (Loaded, or stuck on a missing file), not back to back.
 */
export function localRestoreServices(
  stateDir: string,
  config: Config,
  options: { timings?: Partial<BackupTimings>; restoreTimings?: Partial<RestoreTimings>; now?: () => Date; vault?: LocalVault; untilPoll?: () => Promise<void> } = {},
): RestoreServices {
  const { config: c, now, kube, vault, catalog, sealer, events, dataMover, objectCopy, executions } = localBackupServices(stateDir, config, options);
  const region = readRegionLink(stateDir)?.region;
  const untilPoll = options.untilPoll;
  // A rejection (a cluster that does not settle) only ends the wait, as for a Wait state.
  const sleep = untilPoll ? () => untilPoll().catch(() => undefined) : async (ms: number) => void (await delay(ms));
  return { config: c, now, sleep, kube, vault, catalog, sealer, events, dataMover, objectCopy, executions, restoreTimings: { ...DEFAULT_RESTORE_TIMINGS, ...options.restoreTimings }, ...(region ? { region } : {}) };
}

/** Runs the backup workflow; see {@link runLocalWorkflow}. */
export function runLocalBackup(options: LocalBackupOptions): Promise<LocalBackupResult> {
  return runLocalWorkflow({ ...options, workflow: 'backup' });
}

/** Runs the restore workflow; see {@link runLocalWorkflow}. */
export function runLocalRestore(options: LocalBackupOptions): Promise<LocalBackupResult> {
  return runLocalWorkflow({ ...options, workflow: 'restore' });
}

/** Runs the retention workflow; see {@link runLocalWorkflow}. */
export function runLocalRetention(options: LocalBackupOptions): Promise<LocalBackupResult> {
  return runLocalWorkflow({ ...options, workflow: 'retention' });
}

/** Runs the failover workflow (and its nested restore) in a DR region's state directory; see {@link runLocalWorkflow}. */
export function runLocalFailover(options: LocalBackupOptions): Promise<LocalBackupResult> {
  return runLocalWorkflow({ ...options, workflow: 'failover' });
}

/**
 * Runs the DR region's replication check once (in AWS a schedule in the DR stack invokes it):
 * records, for every Available backup of the vault that replicates here, whether it is whole in
 * this state directory's vault.
 */
export async function runLocalReplicationCheck(stateDir: string, config: Config, options: { now?: () => Date } = {}): Promise<ReplicationCheckResult> {
  const region = readRegionLink(stateDir)?.region;
  if (!region) throw new UserError(`${stateDir} is not a DR region's state directory (no ${REGION_FILE}); link one with milvus-guard local link-dr`);
  const vault = config.vaults.find((v) => replicatesInto(v, region));
  if (!vault) throw new UserError(`no vault of the config replicates into ${region} (vaults[].replicaRegions)`);
  return checkReplicationStep(localRestoreServices(stateDir, config, options), vault.name, region);
}

/** Runs the drill workflow (and its nested restore); see {@link runLocalWorkflow}. */
export function runLocalDrill(options: LocalBackupOptions): Promise<LocalBackupResult> {
  return runLocalWorkflow({ ...options, workflow: 'drill' });
}

const STATE_MACHINE_ARN = (workflow: LocalWorkflow) => `arn:aws:states:local:000000000000:stateMachine:milvus-guard-${workflow}`;
const NESTED_EXECUTION = 'arn:aws:states:::states:startExecution.sync:2';

/**
 * Runs a workflow on the local cluster of `stateDir` and resolves when the execution ends,
 * with its output or its error. The same ASL and handlers as in AWS; see the module
 * documentation for what is local.
 */
export async function runLocalWorkflow(options: LocalWorkflowOptions): Promise<LocalBackupResult> {
  // In AWS an EventBridge rule recovers after a restore whose execution ended without its
  // failure path; locally nothing hears a CLI process die, so the next run that restores does.
  if (options.workflow !== 'backup' && options.workflow !== 'retention') await recoverDeadRestores(options.stateDir, options.config, options);
  const services = localBackupServices(options.stateDir, options.config, options);
  const stepHandlers = makeStepHandlers({ services, serviceName: 'milvus-guard', metricsNamespace: 'MilvusGuard', logLevel: 'SILENT', metrics: new LocalMetrics() });
  const plan = typeof options.input === 'object' && options.input !== null ? (options.input as { plan?: unknown }).plan : undefined;
  const vaultName = typeof plan === 'string' ? safeVaultName(options.config, plan) : options.config.vaults[0]!.name;
  const restoreHandlers = makeRestoreStepHandlers({
    services: localRestoreServices(options.stateDir, options.config, options),
    vault: { name: vaultName, bucket: services.vault.url },
    serviceName: 'milvus-guard',
    metricsNamespace: 'MilvusGuard',
    logLevel: 'SILENT',
    metrics: new LocalMetrics(),
  });
  const prepare = makePrepareHandler({
    config: options.config,
    catalog: services.catalog,
    executions: services.executions,
    now: services.now,
    metrics: new LocalMetrics(),
    environment: {
      POWERTOOLS_SERVICE_NAME: 'milvus-guard',
      POWERTOOLS_METRICS_NAMESPACE: 'MilvusGuard',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      VAULT_NAME: vaultName,
      VAULT_BUCKET: services.vault.url,
      CATALOG_TABLE: localPaths(options.stateDir).catalog,
      LOCK_TTL_SECONDS: services.timings.lockTtlSeconds,
    },
  });
  const retentionHandlers = makeRetentionStepHandlers({
    services: { config: options.config, catalog: services.catalog, vault: services.vault, kube: services.kube, events: services.events, now: services.now, retention: { ...DEFAULT_RETENTION_TIMINGS, ...options.retentionTimings } },
    vault: { name: vaultName },
    serviceName: 'milvus-guard',
    metricsNamespace: 'MilvusGuard',
    logLevel: 'SILENT',
    metrics: new LocalMetrics(),
  });
  // Handlers by state name (core/workflow/steps.ts), exactly as CDK makes one function per state.
  const byState: Record<string, StepHandler> = { ...stepHandlers, ...restoreHandlers, ...retentionHandlers, Prepare: prepare };

  // `${DiscoverFunctionArn}` → the function of state Discover; `${RestoreStateMachineArn}` → the
  // local restore workflow.
  const text = loadDefinition(options.workflow);
  const values = Object.fromEntries(
    placeholdersOf(text).map((p) => {
      const nested = /^([A-Z][a-z]+)StateMachineArn$/.exec(p)?.[1];
      return [p, nested ? STATE_MACHINE_ARN(nested.toLowerCase() as LocalWorkflow) : FUNCTION_ARN(stateOfPlaceholder(p) ?? p)];
    }),
  );
  const definition = JSON.parse(fillPlaceholders(text, values)) as StateMachineDefinition;
  const taskHandlers: Record<string, (input: JSONValue) => Promise<JSONValue>> = {};
  // A Map iteration's Task may still run when the execution has ended (in AWS its Lambda runs to
  // the end too); the run resolves once every invocation has returned, so what it did is done.
  const inFlight = new Invocations();
  const waits: Record<string, number> = {};
  const retries: Record<string, number> = {};
  // The Tasks a Wait state leads to: the polls.
  const polls = new Set<string>();
  walkStates(definition as unknown as Parameters<typeof walkStates>[0], (_name, state) => {
    if (state.Type === 'Wait') polls.add((state as { Next?: string }).Next ?? '');
  });
  const untilPoll = options.untilPoll;
  // The library stamps $$.Execution.StartTime with the real time; with a clock of its own the
  // run's start is that clock's, as the first Task of each workflow reads it (`execution.startTime`).
  const startTime = options.now ? options.now().toISOString() : undefined;
  const withClock = (input: JSONValue): JSONValue => {
    const request = input as { execution?: { startTime?: unknown } } | null;
    if (!startTime || typeof request?.execution?.startTime !== 'string') return input;
    return { ...request, execution: { ...request.execution, startTime } } as unknown as JSONValue;
  };
  walkStates(definition as unknown as Parameters<typeof walkStates>[0], (name, state) => {
    if (state.Type === 'Wait') waits[name] = untilPoll ? 0 : (options.pollMs ?? 500);
    if (state.Retry) retries[name] = untilPoll ? 0 : (options.retryMs ?? 200);
    if (state.Type !== 'Task') return;
    if (state.Resource === NESTED_EXECUTION) {
      taskHandlers[name] = (input) => runNested(options, name, input as unknown as NestedStart);
      return;
    }
    const fn = String(state.Resource).split(':function:milvus-guard-')[1]!;
    const handler = byState[fn];
    if (!handler) throw new Error(`state ${name} invokes ${String(state.Resource)}, which has no local handler`);
    const poll = untilPoll && polls.has(name) ? untilPoll : undefined;
    taskHandlers[name] = (input) =>
      inFlight.track(
        (async () => {
          if (poll) await poll().catch(() => undefined);
          await options.beforeTask?.(name);
          return (await handler(withClock(input), lambdaContext(fn))) as JSONValue;
        })(),
      );
  });

  const executionName = options.executionName ?? `local-${randomUUID()}`;
  const executionId = `arn:aws:states:local:000000000000:execution:milvus-guard-${options.workflow}:${executionName}`;
  const registry = new LocalExecutions(localPaths(options.stateDir).executions);
  await registry.started(executionId);
  const execution = new StateMachine(definition, { validationOptions: { checkArn: false } }).run(options.input as never, {
    context: { Execution: { Id: executionId, Name: executionName } },
    overrides: { taskResourceLocalHandlers: taskHandlers, waitTimeOverrides: waits, retryIntervalOverrides: retries },
  });
  const states: string[] = [];
  const retried: string[] = [];
  const collecting = (async () => {
    for await (const event of execution.eventLogs) {
      if (event.type === 'StateEntered') {
        states.push(event.state.name);
        options.onState?.(event.state.name);
      } else if (event.type === 'StateRetried') {
        retried.push(event.state.name);
      }
    }
  })();
  try {
    const output = await execution.result;
    await collecting;
    await inFlight.drained();
    await registry.ended(executionId, 'SUCCEEDED');
    return { executionId, status: 'SUCCEEDED', output, states, retried };
  } catch (err) {
    await collecting.catch(() => undefined);
    await inFlight.drained();
    await registry.ended(executionId, 'FAILED');
    if (!(err instanceof ExecutionError)) throw err;
    const cause = err.cause as { name?: string; message?: string } | undefined;
    return { executionId, status: 'FAILED', error: { name: cause?.name ?? 'States.Runtime', message: cause?.message ?? err.message }, states, retried };
  }
}

/**
 * Recovers after every restore of the catalog that is InProgress while its execution, run on
 * this state directory, ended without its failure path (its process was killed: ABORTED, as
 * StopExecution ends one in AWS). What the restore RecoverExecution rule does in AWS.
 * Executions this state directory never ran (UNKNOWN) and running ones are left alone.
 */
export async function recoverDeadRestores(
  stateDir: string,
  config: Config,
  options: { timings?: Partial<BackupTimings>; restoreTimings?: Partial<RestoreTimings>; now?: () => Date; vault?: LocalVault } = {},
): Promise<RestoreRecovery[]> {
  const services = localRestoreServices(stateDir, config, options);
  const registry = new LocalExecutions(localPaths(stateDir).executions);
  const recovered: RestoreRecovery[] = [];
  for (const record of await services.catalog.listRestores()) {
    if (record.status !== 'InProgress') continue;
    const state = await registry.state(record.executionId);
    if (state === 'RUNNING' || state === 'UNKNOWN') continue;
    recovered.push(await recoverRestore(services, record, `ended ${state}`));
  }
  return recovered;
}

/**
 * Cancels restore `restoreId` of the local cluster in `stateDir`: stops the process that runs
 * its execution (SIGTERM, as StopExecution ends one in AWS; for a drill's nested restore that
 * is the drill's process) and recovers after it: its hydration Jobs and snapshot objects
 * removed, the record Failed, the target namespace left for inspection.
 */
export async function cancelLocalRestore(stateDir: string, config: Config, restoreId: string, say: (line: string) => void): Promise<RestoreRecovery> {
  const services = localRestoreServices(stateDir, config);
  const record = await services.catalog.getRestore(restoreId);
  if (!record) throw new UserError(`there is no restore ${restoreId} in the catalog; list them with milvus-guard restore list --local`);
  if (record.status !== 'InProgress') throw new UserError(`restore ${restoreId} is ${record.status}: there is nothing to cancel`);
  await new LocalExecutions(localPaths(stateDir).executions).stop(record.executionId, say);
  // Read again: the process may have reached its failure path before it stopped.
  return recoverRestore(services, (await services.catalog.getRestore(restoreId)) ?? record, 'was cancelled (milvus-guard restore cancel)');
}

/** The Task invocations still running. */
class Invocations {
  private readonly running = new Set<Promise<unknown>>();

  track<T>(invocation: Promise<T>): Promise<T> {
    const settled = invocation.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    void settled.finally(() => this.running.delete(settled));
    return invocation;
  }

  /** Resolves once no invocation runs, including those started while waiting. */
  async drained(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }
}

/** What a `states:startExecution.sync:2` Task passes. */
interface NestedStart {
  readonly StateMachineArn: string;
  readonly Name?: string;
  readonly Input?: unknown;
}

/** A nested execution failed; the parent Task fails with `States.TaskFailed`, as in AWS. */
class NestedExecutionFailed extends Error {
  constructor(cause: string) {
    super(cause);
    this.name = 'States.TaskFailed';
  }
}

/**
 * Runs a nested execution the way `startExecution.sync:2` does: waits for it and returns its
 * description with the output as JSON, or fails with `States.TaskFailed` whose cause is that
 * description, holding the child's `Error` and `Cause`.
 */
async function runNested(parent: LocalWorkflowOptions, state: string, start: NestedStart): Promise<JSONValue> {
  const workflow = start.StateMachineArn.split(':stateMachine:milvus-guard-')[1] as LocalWorkflow | undefined;
  if (workflow !== 'restore') throw new Error(`state ${state} starts ${start.StateMachineArn}, which is not a workflow a local workflow nests`);
  const result = await runLocalWorkflow({
    ...parent,
    workflow,
    input: start.Input ?? {},
    ...(start.Name ? { executionName: start.Name } : {}),
    onState: (child) => parent.onState?.(`${state}/${child}`),
  });
  const description = { ExecutionArn: result.executionId, StateMachineArn: start.StateMachineArn, Name: start.Name ?? '', Status: result.status };
  if (result.status === 'SUCCEEDED') return { ...description, Output: result.output } as JSONValue;
  throw new NestedExecutionFailed(JSON.stringify({ ...description, Error: result.error?.name ?? 'States.Runtime', Cause: result.error?.message ?? '' }));
}

function safeVaultName(config: Config, plan: string): string {
  try {
    return resolvePlan(config, plan).vault.name;
  } catch {
    // Prepare reports the unknown plan itself (InvalidInput), as it does in AWS.
    return config.vaults[0]!.name;
  }
}

/**
 * One name per step. Each workflow's Tasks are listed here once, by their ASL state name, and
 * every other name is derived from that row: the `${<State>FunctionArn}` placeholder in
 * statemachines/<workflow>.asl.yaml, the Lambda function CDK makes for it (and the `STEP`
 * variable that selects its handler), the handler the local runner calls, the log label, the
 * timeline entry in the catalog, and the step `describe` names when it fails. The console's
 * failed state and `describe` therefore name the same thing.
 *
 * A row's `timeline` groups Tasks into the steps a backup or restore record shows (StartFlush,
 * CheckFlush and PauseGc are all "Quiesce"); rows without one (the failure path) record none.
 */

/** One Task of a workflow. */
export interface StepRow {
  /** The Task state's name in the workflow file. */
  readonly state: string;
  /** The catalog timeline entry the Task records its work under. */
  readonly timeline?: string;
  /** What it does: the function's description. */
  readonly does: string;
  /**
   * The state whose function this Task invokes, when it repeats another Task's work
   * (UnquiesceAfterFailure runs Unquiesce). Default: its own.
   */
  readonly runs?: string;
}

/** The Lambda bundles under lambdas/; each Task's function is built from one of them. */
export type StepBundle = 'prepare' | 'backup' | 'restore' | 'retention';

/** A workflow: its file, and its Tasks in the order they run. */
export interface WorkflowSteps {
  /** `backup` for statemachines/backup.asl.yaml; also the CLI's and the state machine's name. */
  readonly workflow: string;
  /** The bundle each Task's function comes from (by state; default `bundle`). */
  readonly bundle: StepBundle;
  readonly bundleOf?: Readonly<Record<string, StepBundle>>;
  readonly steps: readonly StepRow[];
  /**
   * Handlers of the workflow's bundle that no Task invokes: an EventBridge rule about the
   * workflow's executions does (RecoverExecution). Each gets a function of its own too.
   */
  readonly events?: readonly { readonly name: string; readonly does: string }[];
}

export const BACKUP_WORKFLOW = {
  workflow: 'backup',
  bundle: 'backup',
  // Prepare has a bundle of its own: it needs the catalog and nothing of the cluster.
  bundleOf: { Prepare: 'prepare' },
  steps: [
    { state: 'Prepare', timeline: 'Prepare', does: 'validate the input, resolve the plan, name the backup, take the plan lock, record it InProgress' },
    { state: 'Discover', timeline: 'Discover', does: "list the resources the plan's selector matches and the volumes to protect" },
    { state: 'StartFlush', timeline: 'Quiesce', does: 'flush every collection of every database' },
    { state: 'CheckFlush', timeline: 'Quiesce', does: 'confirm the flushes and record the row counts' },
    { state: 'PauseGc', timeline: 'Quiesce', does: 'pause datacoord garbage collection and keep the ticket' },
    { state: 'PreHooks', timeline: 'Hooks', does: "run the plan's pre exec hooks" },
    { state: 'Capture', timeline: 'Capture', does: 'write sanitized manifests into the vault, Secrets sealed' },
    { state: 'Snapshot', timeline: 'Snapshot', does: 'create a VolumeSnapshot of every protected volume at the same moment' },
    { state: 'CheckSnapshots', timeline: 'Snapshot', does: 'wait for readyToUse; fail fast on a snapshot error' },
    { state: 'RecountRows', timeline: 'Recount', does: 'count every collection again once the snapshots are cut (Milvus takes writes during a backup)' },
    { state: 'CopyObjects', timeline: 'CopyObjects', does: "copy the pages of an S3-backed Milvus's bucket into the vault while GC stays paused" },
    { state: 'Unquiesce', timeline: 'Unquiesce', does: "resume GC with the ticket and run the plan's post hooks" },
    { state: 'StartExport', timeline: 'Export', does: 'clone a snapshot into a PVC and start its data-mover Job' },
    { state: 'CheckExport', timeline: 'Export', does: "poll an export's data-mover Job" },
    { state: 'FinishExport', timeline: 'Export', does: "remove a finished export's Job and clone, read its summary" },
    { state: 'Finalize', timeline: 'Finalize', does: "write the backup's index, record it Available, release the lock" },
    { state: 'CleanUp', does: "failure path: delete the backup's export Jobs, clone PVCs and snapshots" },
    { state: 'UnquiesceAfterFailure', timeline: 'Unquiesce', runs: 'Unquiesce', does: 'failure path: resume GC and run the post hooks' },
    { state: 'MarkFailed', does: 'failure path: record the backup Failed with its step and cause, release the lock' },
    { state: 'RecoverHolder', does: "recover after the lock's holder, whose execution ended without its failure path" },
  ],
  events: [{ name: 'RecoverExecution', does: 'recover after a backup whose execution ended ABORTED, TIMED_OUT or FAILED without its failure path' }],
} as const satisfies WorkflowSteps;

export const RESTORE_WORKFLOW = {
  workflow: 'restore',
  bundle: 'restore',
  steps: [
    { state: 'PrepareRestore', timeline: 'Prepare', does: 'validate the input, find the backup, check the target, record the restore InProgress' },
    { state: 'VerifyBackup', timeline: 'Verify', does: "check the backup's indexes and packs in the vault" },
    { state: 'StartThaw', timeline: 'Thaw', does: 'ask S3 to thaw the packs the backup needs that are in an archive class' },
    { state: 'CheckThaw', timeline: 'Thaw', does: 'poll the thawing packs; fail at the thaw deadline' },
    { state: 'CreateNamespace', timeline: 'Namespace', does: 'create the target namespace' },
    { state: 'RestoreVolumes', timeline: 'Volumes', does: 'create the PVCs, from snapshots or hydrated from the vault' },
    { state: 'CheckVolumes', timeline: 'Volumes', does: 'poll the PVCs and hydration Jobs' },
    { state: 'RestoreObjects', timeline: 'Objects', does: "copy an S3-backed Milvus's bucket objects from the vault into the restore's bucket prefix" },
    { state: 'ApplyManifests', timeline: 'Manifests', does: 'create the captured objects in restore order' },
    { state: 'CheckReadiness', timeline: 'Readiness', does: 'poll workloads, the Milvus CR and /healthz' },
    { state: 'Validate', timeline: 'Validate', does: 'check every collection: present, loaded, counted, searchable' },
    { state: 'Complete', timeline: 'Complete', does: 'record the restore Completed with its RTO' },
    { state: 'CleanUpRestore', does: "failure path: remove the restore's temporary objects" },
    { state: 'MarkRestoreFailed', does: 'failure path: record the restore Failed with its step and cause' },
  ],
  events: [{ name: 'RecoverExecution', does: 'recover after a restore whose execution ended ABORTED, TIMED_OUT or FAILED without its failure path' }],
} as const satisfies WorkflowSteps;

export const DRILL_WORKFLOW = {
  workflow: 'drill',
  bundle: 'restore',
  steps: [
    { state: 'PrepareDrill', does: "resolve the drill, pick the newest backup, build the restore's input" },
    { state: 'CleanUpDrill', does: 'delete the throwaway namespace' },
    { state: 'RecordEvidence', does: 'write the evidence report, the event and the metrics' },
  ],
} as const satisfies WorkflowSteps;

export const RETENTION_WORKFLOW = {
  workflow: 'retention',
  bundle: 'retention',
  steps: [
    { state: 'StartRetention', does: "validate the input and take the lock of every plan of the vault" },
    { state: 'ApplyPlan', does: "keep, lock and expire one plan's backups by its retention policy" },
    { state: 'CollectGarbage', does: 'delete the unreferenced, unlocked packs of one slice of pack prefixes' },
    { state: 'FinishRetention', does: "write the run's report and event, release the locks" },
    { state: 'AbortRetention', does: 'failure path: release the locks the run holds' },
  ],
} as const satisfies WorkflowSteps;

/**
 * The failover workflow, deployed in each DR region: it restores from that region's vault
 * (the replica) with the restore workflow nested, so it needs nothing of the primary region.
 * CheckReplication, on a schedule in the same region, records which backups are whole there.
 */
export const FAILOVER_WORKFLOW = {
  workflow: 'failover',
  bundle: 'restore',
  steps: [
    { state: 'PrepareFailover', does: 'pick the newest backup of the plan complete in this region, record the failover, build the restore input' },
    { state: 'RecordFailover', does: 'record the failover with its achieved RPO and RTO, the event and the metrics' },
  ],
  events: [
    { name: 'CheckReplication', does: "record, per Available backup, whether every object it needs is in this region's vault" },
    { name: 'RecoverFailover', does: "record the outcome of a failover whose execution ended ABORTED, TIMED_OUT or FAILED without recording it (its restore's)" },
  ],
} as const satisfies WorkflowSteps;

export const WORKFLOWS = [BACKUP_WORKFLOW, RESTORE_WORKFLOW, DRILL_WORKFLOW, RETENTION_WORKFLOW, FAILOVER_WORKFLOW] as const;

/** The state whose function a Task invokes. */
type HandlerStateOf<R> = R extends { readonly runs: infer S extends string } ? S : R extends { readonly state: infer S extends string } ? S : never;
/** The states that have a function of their own in workflow `W`. */
export type HandlerState<W extends { readonly steps: readonly StepRow[] }> = HandlerStateOf<W['steps'][number]>;
/** The timeline steps of workflow `W`. */
export type TimelineStep<W extends { readonly steps: readonly StepRow[] }> = Extract<W['steps'][number], { readonly timeline: string }>['timeline'];

/** The states of `w` that have a function, each once, in order. */
export function handlerStates(w: WorkflowSteps): string[] {
  return [...new Set(w.steps.map((row) => row.runs ?? row.state))];
}

/** The states of `workflows` whose functions are built from `bundle`, each once, in order. */
export function bundleStates(bundle: StepBundle, ...workflows: WorkflowSteps[]): [string, ...string[]] {
  const states = workflows.flatMap((w) => [...handlerStates(w).filter((state) => bundleOf(w, state) === bundle), ...(w.bundle === bundle ? (w.events ?? []).map((e) => e.name) : [])]);
  if (states.length === 0) throw new RangeError(`no state of ${workflows.map((w) => w.workflow).join(', ')} is built from lambdas/${bundle}`);
  return states as [string, ...string[]];
}

/** The bundle a state's function is built from. */
export function bundleOf(w: WorkflowSteps, state: string): StepBundle {
  return w.bundleOf?.[state] ?? w.bundle;
}

/** The placeholder of the function a state invokes: `CheckFlush` → `CheckFlushFunctionArn`. */
export function placeholderOf(state: string): string {
  return `${state}FunctionArn`;
}

/** The state a function placeholder names: `CheckFlushFunctionArn` → `CheckFlush`. */
export function stateOfPlaceholder(placeholder: string): string | undefined {
  return /^([A-Z][A-Za-z0-9]*)FunctionArn$/.exec(placeholder)?.[1];
}

/** The timeline steps of `w`, each once, in the order they run. */
export function timelineSteps<W extends WorkflowSteps>(w: W): [TimelineStep<W>, ...TimelineStep<W>[]] {
  return [...new Set(w.steps.flatMap((row) => (row.timeline ? [row.timeline] : [])))] as [TimelineStep<W>, ...TimelineStep<W>[]];
}

/** The row of `state` in `w`; throws naming the workflow when there is none. */
export function stepRow(w: WorkflowSteps, state: string): StepRow {
  const row = w.steps.find((r) => r.state === state);
  if (!row) throw new RangeError(`the ${w.workflow} workflow has no Task ${state}; its Tasks: ${w.steps.map((r) => r.state).join(', ')}`);
  return row;
}

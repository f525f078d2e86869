/**
 * Starting, following and printing a workflow execution: the one path `backup create`,
 * `restore create`, `drill run` and `demo` share. With `--local` the definition runs in this
 * process against the local cluster (through cli/local-mode.ts) and is always followed to its
 * end; in AWS it is StartExecution on the installation's state machine, followed with `--wait`
 * through the execution history. Either way progress names each state a user cares about once.
 */
import { DescribeExecutionCommand, paginateGetExecutionHistory, SFNClient, StartExecutionCommand, type HistoryEvent } from '@aws-sdk/client-sfn';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { Config } from '../core/config/schema.js';
import { replicatesInto, resolvePlan } from '../core/config/resolve.js';
import { drStateMachineName, stateMachineName } from '../core/naming.js';
import { loadDefinition, walkStates } from '../core/workflow/asl.js';
import type { WorkflowIO, WorkflowOptions } from './commands/common.js';
import cliProgress from 'cli-progress';
import { progressPercent, type VolumeProgress } from '../core/datamover/progress.js';
import { formatBytes, formatEta, formatProgress, formatRate } from './format.js';

export type Workflow = 'backup' | 'restore' | 'drill' | 'retention' | 'failover';
const WORKFLOWS: readonly Workflow[] = ['backup', 'restore', 'drill', 'retention', 'failover'];

/** How an execution ended, or that it is running when it was not followed. */
export interface ExecutionEnd {
  readonly executionArn: string;
  readonly status: string;
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
}

/** What to run, and who gets each state progress shows. */
type WorkflowRun = { readonly workflow: Workflow; readonly config: Config; readonly input: unknown; readonly show?: (state: string) => void };

/**
 * How `--wait` follows the data mover's progress (the objects core/datamover/progress.ts writes
 * to the vault) while an execution runs: `poll` reads the progress of every volume of the
 * backup or restore the execution runs (`executionArn` in AWS; undefined on the local cluster,
 * whose execution id is known only at its end).
 */
export interface ProgressFollow {
  readonly poll: (executionArn: string | undefined) => Promise<readonly VolumeProgress[]>;
  /** A progress bar per volume (stderr is a terminal), else plain lines. */
  readonly tty: boolean;
  /** For the plain lines' times and spacing. @default () => new Date() */
  readonly now?: () => Date;
  /** Seconds between two plain lines of one volume whose phase did not change. @default 30 */
  readonly lineEverySeconds?: number;
  /** Milliseconds between two reads of the progress on the local cluster. @default 2000 */
  readonly pollMs?: number;
  /** Where the bars are drawn. @default process.stderr */
  readonly stream?: NodeJS.WritableStream;
}

/** Shows the progress of the volumes as it is read; `stop` leaves the last state on screen. */
export interface ProgressView {
  show(progress: readonly VolumeProgress[]): void;
  stop(): void;
}

/**
 * The progress view of `--wait`: on a terminal a cli-progress bar per volume (percentage of the
 * bytes, bytes done of the total, rate and the data mover's ETA); otherwise a plain line per
 * volume when its phase changes, or when it moved and `lineEverySeconds` passed since its last
 * line — a log stays readable and a CI job still sees that something moves.
 */
export function progressView(follow: Pick<ProgressFollow, 'tty' | 'now' | 'lineEverySeconds' | 'stream'>, err: (text: string) => void): ProgressView {
  const name = (p: VolumeProgress): string => `${p.kind === 'export' ? 'export' : 'hydrate'} ${p.volume}`;
  if (follow.tty) {
    const bars = new cliProgress.MultiBar(
      {
        format: ' {volume} [{bar}] {percentage}% | {done} of {size} | {rate} | ETA {left}',
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        // The data mover measures the rate and the ETA ({left}: cli-progress's own {eta} times its updates, not the copy).
        etaBuffer: 1,
        ...(follow.stream ? { stream: follow.stream } : {}),
      },
      cliProgress.Presets.shades_classic,
    );
    const byVolume = new Map<string, cliProgress.SingleBar>();
    return {
      show(progress) {
        for (const p of progress) {
          const total = p.phase === 'done' ? Math.max(1, p.bytesDone) : Math.max(1, p.bytesTotal ?? 1);
          const value = p.phase === 'done' ? total : p.bytesTotal ? p.bytesDone : 0;
          const payload = {
            volume: name(p),
            done: formatBytes(p.bytesDone),
            size: p.bytesTotal === null ? '?' : formatBytes(p.bytesTotal),
            rate: p.phase === 'counting' ? 'counting files' : p.phase === 'failed' ? 'failed' : formatRate(p.bytesPerSecond) || '-',
            left: p.etaSeconds === null ? '-' : formatEta(p.etaSeconds),
          };
          const bar = byVolume.get(name(p));
          if (bar) {
            bar.setTotal(total);
            bar.update(value, payload);
          } else byVolume.set(name(p), bars.create(total, value, payload));
        }
      },
      stop() {
        bars.stop();
      },
    };
  }
  const now = follow.now ?? (() => new Date());
  const every = (follow.lineEverySeconds ?? 30) * 1000;
  const last = new Map<string, { phase: string; at: number; percent: number | null; bytesDone: number }>();
  return {
    show(progress) {
      const t = now();
      for (const p of progress) {
        const before = last.get(name(p));
        const percent = progressPercent(p);
        const moved = before !== undefined && (before.bytesDone !== p.bytesDone || before.percent !== percent);
        if (before && before.phase === p.phase && !(moved && t.getTime() - before.at >= every)) continue;
        last.set(name(p), { phase: p.phase, at: t.getTime(), percent, bytesDone: p.bytesDone });
        err(`  ${t.toISOString().slice(11, 19)}  ${name(p)}: ${formatProgress(p)}\n`);
      }
    },
    stop() {},
  };
}

/**
 * Reads the progress every `pollMs` and shows it until the returned `stop` is called (the local
 * run ended); a read that fails is skipped (progress is a bonus, the run is what matters).
 */
function followInBackground(follow: ProgressFollow, view: ProgressView, sleep: (ms: number) => Promise<void>): () => Promise<void> {
  let stopped = false;
  let wake: () => void = () => undefined;
  const stopping = new Promise<void>((resolve) => (wake = resolve));
  const loop = (async () => {
    while (!stopped) {
      view.show(await follow.poll(undefined).catch(() => []));
      await Promise.race([sleep(follow.pollMs ?? 2000), stopping]);
    }
  })();
  return async () => {
    stopped = true;
    wake();
    await loop;
    // The last state, once the run has ended (the final objects are written by then).
    view.show(await follow.poll(undefined).catch(() => []));
    view.stop();
  };
}

/** The states of these workflows that only wait, branch or pass data, Map iterations included. */
function quietStates(workflows: readonly Workflow[]): ReadonlySet<string> {
  const quiet = new Set<string>();
  for (const w of workflows) walkStates(JSON.parse(loadDefinition(w)), (name, state) => ['Wait', 'Choice', 'Pass'].includes(state.Type) && quiet.add(name));
  return quiet;
}

/**
 * Passes on to `show` each state `workflow` enters, once, leaving out Wait, Choice and Pass
 * states (read from the definitions, so a polling loop shows its check once and a renamed state
 * cannot make progress noisy). A nested execution's states arrive as `Parent/Child`.
 */
function progress(workflow: Workflow, show: (state: string) => void): (state: string) => void {
  const own = quietStates([workflow]);
  const nested = quietStates(WORKFLOWS);
  const seen = new Set<string>();
  return (state) => {
    const child = state.slice(state.lastIndexOf('/') + 1);
    if (seen.has(state) || (child === state ? own : nested).has(child)) return;
    seen.add(state);
    show(state);
  };
}

/** Runs a workflow on the local cluster of `stateDir` to its end; Wait states and retries can be shortened. */
export async function runLocally(
  run: WorkflowRun & { readonly stateDir: string; readonly pollMs?: number; readonly retryMs?: number; readonly kubeRequestTimeoutSeconds?: number; readonly now?: () => Date; readonly follow?: { readonly progress: ProgressFollow; readonly view: ProgressView; readonly sleep: (ms: number) => Promise<void> } },
): Promise<ExecutionEnd> {
  const { runLocalWorkflow } = await import('./local-mode.js');
  const { show, kubeRequestTimeoutSeconds, follow, ...options } = run;
  const timings = kubeRequestTimeoutSeconds === undefined ? {} : { timings: { kubeRequestTimeoutSeconds } };
  const stop = follow ? followInBackground(follow.progress, follow.view, follow.sleep) : undefined;
  let r: Awaited<ReturnType<typeof runLocalWorkflow>>;
  try {
    r = await runLocalWorkflow({ ...options, ...timings, onState: show && progress(run.workflow, show) });
  } finally {
    await stop?.();
  }
  return { executionArn: r.executionId, status: r.status, output: r.output, error: r.error?.name, cause: r.error?.message };
}

/**
 * The state machine that runs `workflow` for `plan` in `region`: the vault region's own, or in
 * one of its DR regions the DR stack's (`<name>-dr-restore`, `<name>-dr-drill`, `<name>-failover`),
 * which read the replica.
 */
export function stateMachineFor(config: Config, workflow: Workflow, plan: string, region: string): string {
  const vault = resolvePlan(config, plan).vault;
  const replica = region !== vault.region && replicatesInto(vault, region);
  return replica && (workflow === 'restore' || workflow === 'drill' || workflow === 'failover') ? drStateMachineName(config.name, workflow) : stateMachineName(config.name, workflow);
}

/** Starts a workflow's state machine in `region` and, with `wait`, follows it to its end. */
async function runOnAws(run: WorkflowRun & { readonly plan: string; readonly region: string; readonly wait: boolean; readonly sleep: (ms: number) => Promise<void>; readonly view?: ProgressView; readonly progress?: ProgressFollow }): Promise<ExecutionEnd> {
  const { Account } = await new STSClient({ region: run.region }).send(new GetCallerIdentityCommand({}));
  const stateMachineArn = `arn:aws:states:${run.region}:${Account}:stateMachine:${stateMachineFor(run.config, run.workflow, run.plan, run.region)}`;
  const sfn = new SFNClient({ region: run.region });
  const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify(run.input) }));
  if (!executionArn) throw new Error(`Step Functions started ${stateMachineArn} without returning an execution ARN`);
  if (!run.wait) return { executionArn, status: 'RUNNING' };
  const show = run.show ? progress(run.workflow, run.show) : () => undefined;
  for (;;) {
    await showHistory(sfn, executionArn, '', show);
    if (run.view && run.progress) run.view.show(await run.progress.poll(executionArn).catch(() => []));
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (d.status !== 'RUNNING' && d.status !== 'PENDING_REDRIVE') {
      run.view?.stop();
      return { executionArn, status: d.status ?? 'UNKNOWN', output: d.output ? (JSON.parse(d.output) as unknown) : undefined, error: d.error, cause: d.cause };
    }
    await run.sleep(5000);
  }
}

/**
 * Shows each state an execution has entered, and those of the executions it started
 * (`RunRestore/Validate`). Read whole each round: small for one execution, and simpler than
 * remembering where the last round stopped.
 */
async function showHistory(sfn: SFNClient, executionArn: string, prefix: string, show: (state: string) => void): Promise<void> {
  const events: HistoryEvent[] = [];
  for await (const page of paginateGetExecutionHistory({ client: sfn, pageSize: 200 }, { executionArn })) events.push(...(page.events ?? []));
  const byId = new Map(events.map((e) => [e.id, e]));
  // A Task's later events point back, event by event, to the one that entered its state.
  const stateOf = (id: number | undefined): string => {
    const e = byId.get(id);
    return e?.stateEnteredEventDetails?.name ?? (e ? stateOf(e.previousEventId) : '');
  };
  for (const e of events) {
    if (e.stateEnteredEventDetails?.name) show(prefix + e.stateEnteredEventDetails.name);
    const submitted = e.taskSubmittedEventDetails;
    const child = submitted?.resourceType === 'states' ? (JSON.parse(submitted.output ?? '{}') as { ExecutionArn?: string }).ExecutionArn : undefined;
    if (child) await showHistory(sfn, child, `${prefix}${stateOf(e.id)}/`, show);
  }
}

/**
 * Runs a workflow as a command's flags say: on the cluster of `--state` to its end (at `now`
 * when given), or started in `--region` or the plan's vault region and followed with `--wait`.
 * Progress goes to stderr, a timestamped line per state, in text output.
 */
export async function startWorkflow(
  opts: WorkflowOptions & { readonly wait?: boolean; readonly now?: Date },
  io: WorkflowIO,
  run: Omit<WorkflowRun, 'show'> & { readonly plan: string; readonly progress?: ProgressFollow },
): Promise<ExecutionEnd> {
  const show = opts.output === 'text' ? (state: string) => io.err(`  ${new Date().toISOString().slice(11, 19)}  ${state}\n`) : undefined;
  const { plan, progress: follow, ...what } = run;
  // The volumes' progress is shown with --wait in text output (JSON output stays one object).
  const view = follow && opts.wait === true && opts.output === 'text' ? progressView(follow, io.err) : undefined;
  const clock = opts.now ? { now: () => opts.now! } : {};
  if (opts.local) {
    return runLocally({
      ...what,
      ...clock,
      show,
      stateDir: opts.state,
      ...(opts.kubeRequestTimeout === undefined ? {} : { kubeRequestTimeoutSeconds: opts.kubeRequestTimeout }),
      ...(view && follow ? { follow: { progress: follow, view, sleep: io.sleep } } : {}),
    });
  }
  return runOnAws({ ...what, plan, show, region: opts.region ?? resolvePlan(run.config, plan).vault.region, wait: opts.wait === true, sleep: io.sleep, ...(view && follow ? { view, progress: follow } : {}) });
}

/** What a local execution wrote, read back by the command: JSON output holds it under `key`; its `text` replaces the status line. */
type Written = { readonly key: string; readonly value: unknown; readonly text?: string };

/**
 * Runs a workflow as a command's flags say and prints how it ended (or that it started);
 * resolves to the exit code, 0 when it succeeded or runs on. With `--local` it runs on the
 * cluster of `--state` to its end and `readBack` finds what it wrote (its catalog record, the
 * drill evidence) to show; in AWS it starts in `--region` or the plan's vault region and is
 * followed with `--wait`. Progress goes to stderr, a timestamped line per state, in text output.
 */
export async function executeWorkflow(
  opts: WorkflowOptions & { readonly wait?: boolean; readonly now?: Date },
  io: WorkflowIO,
  run: Omit<WorkflowRun, 'show'> & { readonly plan: string; readonly progress?: ProgressFollow },
  readBack: (end: ExecutionEnd) => Promise<Written>,
): Promise<number> {
  const end = await startWorkflow(opts, io, run);
  const written = opts.local ? await readBack(end) : undefined;
  if (opts.output === 'json') io.out(`${JSON.stringify(written ? { ...end, [written.key]: written.value ?? null } : end, null, 2)}\n`);
  else if (written?.text) io.out(written.text);
  else if (end.status === 'RUNNING') io.out(`started ${end.executionArn}\n`);
  else if (end.status === 'SUCCEEDED') io.out(`${run.workflow} succeeded: ${JSON.stringify(end.output)}\n`);
  else io.out(`${run.workflow} ${end.status}: ${end.error ?? ''}: ${end.cause ?? ''}\n`);
  return end.status === 'RUNNING' || end.status === 'SUCCEEDED' ? 0 : 1;
}

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
export async function runLocally(run: WorkflowRun & { readonly stateDir: string; readonly pollMs?: number; readonly retryMs?: number; readonly kubeRequestTimeoutSeconds?: number; readonly now?: () => Date }): Promise<ExecutionEnd> {
  const { runLocalWorkflow } = await import('./local-mode.js');
  const { show, kubeRequestTimeoutSeconds, ...options } = run;
  const timings = kubeRequestTimeoutSeconds === undefined ? {} : { timings: { kubeRequestTimeoutSeconds } };
  const r = await runLocalWorkflow({ ...options, ...timings, onState: show && progress(run.workflow, show) });
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
async function runOnAws(run: WorkflowRun & { readonly plan: string; readonly region: string; readonly wait: boolean; readonly sleep: (ms: number) => Promise<void> }): Promise<ExecutionEnd> {
  const { Account } = await new STSClient({ region: run.region }).send(new GetCallerIdentityCommand({}));
  const stateMachineArn = `arn:aws:states:${run.region}:${Account}:stateMachine:${stateMachineFor(run.config, run.workflow, run.plan, run.region)}`;
  const sfn = new SFNClient({ region: run.region });
  const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify(run.input) }));
  if (!executionArn) throw new Error(`Step Functions started ${stateMachineArn} without returning an execution ARN`);
  if (!run.wait) return { executionArn, status: 'RUNNING' };
  const show = run.show ? progress(run.workflow, run.show) : () => undefined;
  for (;;) {
    await showHistory(sfn, executionArn, '', show);
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (d.status !== 'RUNNING' && d.status !== 'PENDING_REDRIVE') {
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
export async function startWorkflow(opts: WorkflowOptions & { readonly wait?: boolean; readonly now?: Date }, io: WorkflowIO, run: Omit<WorkflowRun, 'show'> & { readonly plan: string }): Promise<ExecutionEnd> {
  const show = opts.output === 'text' ? (state: string) => io.err(`  ${new Date().toISOString().slice(11, 19)}  ${state}\n`) : undefined;
  const { plan, ...what } = run;
  const clock = opts.now ? { now: () => opts.now! } : {};
  if (opts.local) return runLocally({ ...what, ...clock, show, stateDir: opts.state, ...(opts.kubeRequestTimeout === undefined ? {} : { kubeRequestTimeoutSeconds: opts.kubeRequestTimeout }) });
  return runOnAws({ ...what, plan, show, region: opts.region ?? resolvePlan(run.config, plan).vault.region, wait: opts.wait === true, sleep: io.sleep });
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
  run: Omit<WorkflowRun, 'show'> & { readonly plan: string },
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

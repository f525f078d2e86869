/**
 * What the workflow commands (`backup`, `restore`, `drill`, `demo`) share: the common flags,
 * the config and catalog they use (`--local [--state DIR]` or AWS), progress lines per
 * workflow state, and starting and following an execution in AWS.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DescribeExecutionCommand, GetExecutionHistoryCommand, SFNClient, StartExecutionCommand, type HistoryEvent } from '@aws-sdk/client-sfn';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { type Command, Option } from 'commander';
import type { BackupCatalog } from '../../core/catalog/catalog.js';
import { DynamoCatalog } from '../../core/catalog/dynamo.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { UserError } from '../../core/errors.js';
import { loadDefinition } from '../../core/workflow/asl.js';
import { catalogTableName, stateMachineName } from '../../core/naming.js';
import { DEFAULT_CONFIG_FILE } from './config.js';


/** Where progress and results go; tests pass their own. */
export interface WorkflowIO {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly sleep: (ms: number) => Promise<void>;
}

export const processIO: WorkflowIO = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** Options every workflow command takes. */
export interface WorkflowOptions {
  config?: string;
  output: 'text' | 'json';
  local?: boolean;
  state: string;
  region?: string;
}

/** The config the local cluster's seeded Milvus matches. */
export const LOCAL_CONFIG_FILE = 'examples/production.yaml';

/** Adds `-c`, `-o`, `--local`, `--state` and `--region` to a command. */
export function addWorkflowOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', `the config file (default: ${DEFAULT_CONFIG_FILE}; with --local: ${LOCAL_CONFIG_FILE}, the plan the local cluster is seeded for)`)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--local', 'use the embedded default started by `milvus-guard local up` instead of AWS', false)
    .option('--state <dir>', 'with --local: the state directory given to `local up`', '.local-state')
    .option('--region <region>', "AWS region of the catalog and the workflow (default: the plan's vault region)");
}

export const configOf = (opts: WorkflowOptions): Promise<Config> => loadConfigFile(opts.config ?? (opts.local ? LOCAL_CONFIG_FILE : DEFAULT_CONFIG_FILE));

/** The state directory of `--local`, refused when no local cluster was ever started there. */
export function localStateDir(opts: Pick<WorkflowOptions, 'state'>): string {
  const dir = resolve(opts.state);
  if (!existsSync(join(dir, 'kubeconfig'))) {
    throw new UserError(`no local cluster state in ${dir}: start one with \`milvus-guard local up --state ${opts.state}\` (in another terminal) and pass the same --state`);
  }
  return dir;
}

/** The local catalog, or the DynamoDB global table (any region holds every record). */
export async function catalogFor(opts: WorkflowOptions, config: Config): Promise<BackupCatalog> {
  if (opts.local) {
    const { localCatalog } = await import('../../local/workflows/runner.js');
    return localCatalog(localStateDir(opts));
  }
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const { DynamoDBDocumentClient } = await import('@aws-sdk/lib-dynamodb');
  const region = opts.region ?? config.vaults[0]!.region;
  return new DynamoCatalog({ tableName: catalogTableName(config.name), client: DynamoDBDocumentClient.from(new DynamoDBClient({ region })) });
}

/** `75` → `1m15s`, `9000` → `2h30m`: durations as an operator reads them (RPO, RTO). */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined) return '';
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

/**
 * The states of a workflow that only wait, branch or pass data (Wait, Choice, Pass): progress
 * skips them, so a polling loop shows its check once instead of every round. Read from the ASL
 * file itself, so a renamed state cannot make progress noisy.
 */
export function quietStates(workflow: 'backup' | 'restore' | 'drill'): ReadonlySet<string> {
  const definition = JSON.parse(loadDefinition(workflow)) as { States: Record<string, { Type: string }> };
  return new Set(Object.entries(definition.States).filter(([, s]) => ['Wait', 'Choice', 'Pass'].includes(s.Type)).map(([name]) => name));
}

/**
 * A progress printer for `onState`: one line per state entered, each state once, skipping the
 * quiet ones. A nested execution's states arrive as `Parent/Child` and are judged by the child
 * workflow's definition.
 */
export function stateProgress(io: WorkflowIO, workflow: 'backup' | 'restore' | 'drill', line: (state: string) => string = (s) => `  ${new Date().toISOString().slice(11, 19)}  ${s}\n`): (state: string) => void {
  const quiet = quietStates(workflow);
  const nested = workflow === 'drill' ? quietStates('restore') : new Set<string>();
  const seen = new Set<string>();
  return (state) => {
    const child = state.includes('/') ? state.slice(state.lastIndexOf('/') + 1) : undefined;
    if ((child === undefined ? quiet.has(state) : nested.has(child)) || seen.has(state)) return;
    seen.add(state);
    io.err(line(state));
  };
}

/** How an AWS execution ended, for the caller to print. */
export interface ExecutionEnd {
  readonly executionArn: string;
  readonly status: string;
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
}

/**
 * Starts `workflow`'s state machine of the installation in `region` with `input` and, with
 * `wait`, polls the execution history (one progress line per state) until it ends. Resolves
 * to the start (`RUNNING`) without `wait`.
 */
export async function startExecutionOnAws(params: {
  readonly config: Config;
  readonly workflow: 'restore' | 'drill';
  readonly region: string;
  readonly input: unknown;
  readonly wait: boolean;
  readonly showProgress: boolean;
  readonly io: WorkflowIO;
}): Promise<ExecutionEnd> {
  const { region, io } = params;
  const { Account } = await new STSClient({ region }).send(new GetCallerIdentityCommand({}));
  const stateMachineArn = `arn:aws:states:${region}:${Account}:stateMachine:${stateMachineName(params.config.name, params.workflow)}`;
  const sfn = new SFNClient({ region });
  const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify(params.input) }));
  if (!executionArn) throw new Error(`Step Functions started ${stateMachineArn} without returning an execution ARN`);
  if (!params.wait) return { executionArn, status: 'RUNNING' };
  const show = params.showProgress ? stateProgress(io, params.workflow) : () => undefined;
  for (;;) {
    let nextToken: string | undefined;
    do {
      const page = await sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 200 }));
      for (const e of page.events ?? ([] as HistoryEvent[])) if (e.stateEnteredEventDetails?.name) show(e.stateEnteredEventDetails.name);
      nextToken = page.nextToken;
    } while (nextToken);
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (d.status !== 'RUNNING' && d.status !== 'PENDING_REDRIVE') {
      return { executionArn, status: d.status ?? 'UNKNOWN', ...(d.output ? { output: JSON.parse(d.output) as unknown } : {}), ...(d.error ? { error: d.error } : {}), ...(d.cause ? { cause: d.cause } : {}) };
    }
    // The whole history again each round: small for one execution, simpler than tracking event ids.
    await io.sleep(5000);
  }
}

/** Prints an AWS execution's end (or start) and returns the exit code. */
export function reportExecution(io: WorkflowIO, output: WorkflowOptions['output'], what: string, end: ExecutionEnd): number {
  if (output === 'json') io.out(`${JSON.stringify(end, null, 2)}\n`);
  else if (end.status === 'RUNNING') io.out(`started ${end.executionArn}\n`);
  else if (end.status === 'SUCCEEDED') io.out(`${what} succeeded: ${JSON.stringify(end.output)}\n`);
  else io.out(`${what} ${end.status}: ${end.error ?? ''}: ${end.cause ?? ''}\n`);
  return end.status === 'RUNNING' || end.status === 'SUCCEEDED' ? 0 : 1;
}

// ---- restore -------------------------------------------------------------------------------

/** The flags of `restore create`, as commander hands them over. */

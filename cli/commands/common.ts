/**
 * What the workflow commands (`backup`, `restore`, `drill`) share: their flags, and the config
 * and catalog they use (`--local [--state DIR]` or AWS). Starting and following a workflow is
 * cli/execution.ts's.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { BackupCatalog } from '../../core/catalog/catalog.js';
import { DynamoCatalog } from '../../core/catalog/dynamo.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { onAws, type AwsTarget } from '../../core/errors.js';
import { catalogTableName } from '../../core/naming.js';
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
  /** With `--local`: the deadline of each Kubernetes request of the workflow, in seconds. */
  kubeRequestTimeout?: number;
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
    .option('--region <region>', "AWS region of the catalog and the workflow (default: the plan's vault region)")
    .addOption(new Option('--kube-request-timeout <seconds>', 'with --local: abandon and retry a Kubernetes API request unanswered for this long (default: 30)').argParser(positiveSeconds));
}

function positiveSeconds(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new InvalidArgumentError(`"${value}" is not a positive number of seconds`);
  return seconds;
}

export const configOf = (opts: WorkflowOptions): Promise<Config> => loadConfigFile(opts.config ?? (opts.local ? LOCAL_CONFIG_FILE : DEFAULT_CONFIG_FILE));

/** The catalog table of `config` in the region `opts` names (`--region`, else the first vault's), as a failure names it. */
export function catalogTarget(opts: Pick<WorkflowOptions, 'region'>, config: Config): AwsTarget & { readonly tableName: string; readonly region: string } {
  const tableName = catalogTableName(config.name);
  const region = opts.region ?? config.vaults[0]!.region;
  return { service: 'DynamoDB', resource: `table ${tableName}`, region, tableName, actions: ['dynamodb:Query', 'dynamodb:GetItem'] };
}

/**
 * `obj` with every method whose promise rejects for a reason of the environment (no or expired
 * credentials, access denied, the table or bucket not there, the endpoint out of reach:
 * core/errors.ts `asAwsEnvironmentError`) rejecting with one line about `target` instead; other
 * rejections, and methods that return no promise, pass unchanged. At the method rather than in
 * the SDK client's middleware, so that a test's aws-sdk-client-mock (which replaces `send`) sees
 * the same path.
 */
export function explainAwsErrors<T extends object>(target: AwsTarget, obj: T): T {
  return new Proxy(obj, {
    get(o, key) {
      // Read and called on the object itself, so its private fields and getters work.
      const value: unknown = Reflect.get(o, key);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(o, args);
        return result instanceof Promise ? onAws(target, result) : result;
      };
    },
  });
}

/** The local catalog, or the DynamoDB global table (any region holds every record). */
export async function catalogFor(opts: WorkflowOptions, config: Config): Promise<BackupCatalog> {
  if (opts.local) return (await import('../local-mode.js')).localCatalog(opts.state);
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const { DynamoDBDocumentClient } = await import('@aws-sdk/lib-dynamodb');
  const target = catalogTarget(opts, config);
  return explainAwsErrors(target, new DynamoCatalog({ tableName: target.tableName, client: DynamoDBDocumentClient.from(new DynamoDBClient({ region: target.region })) }));
}

/**
 * `milvus-guard config ...`: check a config file, and bootstrap one from Trilio for Kubernetes
 * manifests. Both print machine-readable output on stdout and everything meant for a human
 * (errors, warnings) on stderr, so `import-trilio ... > milvus-guard.yaml` just works.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { UserError } from '../../core/errors.js';
import { ConfigError, formatIssue, type ConfigIssue } from '../../core/config/issues.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { formatImportWarning, importTrilio, type TrilioSource } from '../../core/trilio/import.js';

/** Where the commands write; tests pass their own sinks instead of the process streams. */
export interface CommandOutput {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const processOutput: CommandOutput = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

/** The file `config validate` reads when none is given. */
export const DEFAULT_CONFIG_FILE = 'milvus-guard.yaml';

export function registerConfigCommands(program: Command, output: CommandOutput = processOutput): void {
  const config = program.command('config').description('check a config file, or create one from Trilio manifests');

  config
    .command('validate')
    .description('check a config file and report every problem with its path and line')
    .argument('[file]', `the config file (default: ${DEFAULT_CONFIG_FILE} in the current directory)`)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (file: string | undefined, options: { output: 'text' | 'json' }) => {
      process.exitCode = await validate(file ?? DEFAULT_CONFIG_FILE, options.output, output);
    });

  config
    .command('import-trilio')
    .description(
      'convert Trilio for Kubernetes Target, Policy, Hook and BackupPlan manifests into a milvus-guard config ' +
        '(written to stdout; warnings about anything not carried over go to stderr)',
    )
    .argument('<files...>', 'YAML files with Trilio objects (multi-document files and kind: List are fine)')
    .option('-o, --output <file>', 'write the config to this file instead of stdout')
    .option('--force', 'overwrite the --output file when it exists', false)
    .action(async (files: string[], options: { output?: string; force: boolean }) => {
      process.exitCode = await importCommand(files, options, output);
    });
}

async function validate(file: string, format: 'text' | 'json', output: CommandOutput): Promise<number> {
  let config: Config | undefined;
  let issues: readonly ConfigIssue[] = [];
  try {
    config = await loadConfigFile(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    issues = err.issues;
  }

  if (format === 'json') {
    const errors = issues.map((i) => ({ path: i.path, line: i.line ?? null, ...(i.column === undefined ? {} : { column: i.column }), message: i.message }));
    output.stdout(`${JSON.stringify({ valid: config !== undefined, file, errors }, null, 2)}\n`);
  } else if (config) {
    output.stdout(`${file}: valid (${summarize(config)})\n`);
  } else {
    for (const issue of issues) output.stderr(`${file}: ${formatIssue(issue)}\n`);
    output.stderr(`${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}; fix ${issues.length === 1 ? 'it' : 'them'} and run config validate again\n`);
  }
  return config ? 0 : 1;
}

/** `1 cluster, 1 vault, 2 schedule policies, ...`: what the file defines, zero counts left out. */
function summarize(config: Config): string {
  const counts: [number, string, string][] = [
    [config.clusters.length, 'cluster', 'clusters'],
    [config.vaults.length, 'vault', 'vaults'],
    [config.schedulePolicies.length, 'schedule policy', 'schedule policies'],
    [config.retentionPolicies.length, 'retention policy', 'retention policies'],
    [config.hooks.length, 'hook', 'hooks'],
    [config.plans.length, 'plan', 'plans'],
    [config.drills.length, 'drill', 'drills'],
    [config.notifications.subscriptions.length, 'subscription', 'subscriptions'],
  ];
  return counts
    .filter(([n]) => n > 0)
    .map(([n, one, many]) => `${n} ${n === 1 ? one : many}`)
    .join(', ');
}

async function importCommand(files: string[], options: { output?: string; force: boolean }, output: CommandOutput): Promise<number> {
  const sources: TrilioSource[] = [];
  for (const file of files) {
    try {
      sources.push({ file, text: await readFile(file, 'utf8') });
    } catch (err) {
      throw new UserError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  const result = importTrilio(sources);
  for (const warning of result.warnings) output.stderr(`${formatImportWarning(warning)}\n`);

  if (options.output) {
    try {
      await writeFile(options.output, result.yaml, { encoding: 'utf8', flag: options.force ? 'w' : 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new UserError(`${options.output} already exists; choose another --output or pass --force to overwrite it`);
      }
      throw new UserError(`cannot write ${options.output}: ${(err as Error).message}`, { cause: err });
    }
    output.stderr(`wrote ${options.output}; edit the CHANGE-ME placeholders, then run: milvus-guard config validate ${options.output}\n`);
  } else {
    output.stdout(result.yaml);
  }

  if (result.problems.length > 0) {
    for (const problem of result.problems) output.stderr(`error: generated config: ${problem}\n`);
    output.stderr('error: the generated config does not validate yet; fix the problems above in the output\n');
    return 1;
  }
  return 0;
}

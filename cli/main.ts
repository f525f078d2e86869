/**
 * The `milvus-guard` command line. Each verb lives in its own module under `cli/commands/`
 * and registers itself on the root program; this file only wires them and turns errors into
 * exit codes: a `UserError`, a file-system error the user can fix (core/fs-errors.ts) or an AWS
 * request the environment failed (no or expired credentials, access denied, a table or bucket
 * that does not exist, an endpoint out of reach: core/errors.ts) prints one line, anything else
 * is a bug and prints the stack.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { asAwsEnvironmentError, UserError } from '../core/errors.js';
import { asFileSystemError } from '../core/fs-errors.js';
import { isReadInterrupted } from '../core/vault/store.js';
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

type Register = (program: Command) => void;

/**
 * Each verb's module, loaded on demand: a data-mover Job runs `milvus-guard datamover` once
 * per volume, and loading every other verb (the local cluster, the AWS SDK clients) cost it
 * seconds of CPU before its first byte.
 */
const VERBS: Record<string, () => Promise<Register>> = {
  backup: async () => (await import('./commands/backup.js')).registerBackupCommands,
  config: async () => (await import('./commands/config.js')).registerConfigCommands,
  cost: async () => (await import('./commands/cost.js')).registerCostCommand,
  datamover: async () => (await import('./commands/datamover.js')).registerDatamoverCommands,
  demo: async () => (await import('./commands/demo.js')).registerDemoCommands,
  dr: async () => (await import('./commands/dr.js')).registerDrCommands,
  drill: async () => (await import('./commands/drill.js')).registerDrillCommands,
  eks: async () => (await import('./commands/eks.js')).registerEksCommands,
  local: async () => (await import('./commands/local.js')).registerLocalCommands,
  plan: async () => (await import('./commands/plan.js')).registerPlanCommands,
  restore: async () => (await import('./commands/restore.js')).registerRestoreCommands,
  retention: async () => (await import('./commands/retention.js')).registerRetentionCommands,
  status: async () => (await import('./commands/status.js')).registerStatusCommand,
};

/**
 * The program with the verb `argv` names, or with every verb (for help and unknown verbs,
 * so commander lists them all).
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('milvus-guard')
    .description('Backup, restore and disaster recovery for Milvus on Amazon EKS')
    .version(version)
    .exitOverride();
  const verb = argv[2];
  const wanted = verb !== undefined && verb in VERBS ? [verb] : Object.keys(VERBS);
  for (const register of await Promise.all(wanted.map((name) => VERBS[name]!()))) register(program);
  oneLineUsageErrors(program);
  return program;
}

/** `milvus-guard restore create`: the command's name with its parents'. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Makes every command print a usage error as one line that names the command and where its
 * help is (`milvus-guard restore create: unknown option '--foo' (see milvus-guard restore
 * create --help)`): the full help after the error pushed the error itself off the screen.
 */
function oneLineUsageErrors(cmd: Command): void {
  const path = commandPath(cmd);
  cmd.showHelpAfterError(false).configureOutput({
    outputError: (text, write) => {
      // Commander's suggestion comes on a line of its own: "(Did you mean --force?)".
      const message = text.trim().replace(/^error: /, '').replace(/\s*\n\(Did you mean (.+)\?\)/, '; did you mean $1?').replace(/\s*\n\s*/g, ' ');
      write(`${path}: ${message} (see ${path} --help)\n`);
    },
  });
  for (const sub of cmd.commands) oneLineUsageErrors(sub);
}

/** Runs the CLI with `argv` (as in `process.argv`) and resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportFailure(err, (text) => void process.stderr.write(text));
  }
}

/**
 * What the vault did, not a bug of ours, as a UserError: a download cut short every time it was
 * tried (its message says to try again), or an object the integrity checks found damaged (its
 * message names it and what to do). Any command that reads the vault can meet them.
 */
function asVaultFailure(err: unknown): UserError | undefined {
  if (!(err instanceof Error)) return undefined;
  if (isReadInterrupted(err) || VAULT_DAMAGE.has(err.name)) return new UserError(err.message, { cause: err });
  return undefined;
}

/**
 * The names of the errors that report a damaged vault object (an index, a summary, a pack's
 * bytes), or one a write found in its place (a backup that left what it cannot use and may not
 * replace).
 */
const VAULT_DAMAGE = new Set(['IndexCorruptError', 'SummaryCorrupt', 'ObjectChecksumMismatch', 'EarlierAttemptUnusable', 'ForeignExportObject', 'ObjectExists']);

/**
 * Prints what ended the CLI with `err` and returns the exit code: nothing for a usage error
 * (commander printed it), one line for the user's mistakes and the environment's (exit 1: a
 * full disk, no AWS credentials, a catalog table not deployed in that region, a vault download
 * cut short or a damaged vault object), the stack and a
 * request to report it for anything else, which is a bug of ours (exit 2).
 */
export function reportFailure(err: unknown, write: (text: string) => void): number {
  if (err instanceof CommanderError) {
    // Commander already printed the usage error (or the help/version text).
    return err.exitCode;
  }
  // A full disk, a read-only directory, a file in the way, no AWS credentials, a table not
  // deployed: the user's to fix, so one line. Commands name the AWS resource where they call it;
  // one that reached here unannotated still gets a line naming the request.
  const userError = err instanceof UserError ? err : (asFileSystemError(err) ?? asAwsEnvironmentError(err) ?? asVaultFailure(err));
  if (userError) {
    write(`error: ${userError.message}\n`);
    return userError.exitCode;
  }
  write(
    `internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n` +
      'This is a bug in milvus-guard: please report it with the lines above.\n',
  );
  return 2;
}

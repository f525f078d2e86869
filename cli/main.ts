/**
 * The `milvus-guard` command line. Each verb lives in its own module under `cli/commands/`
 * and registers itself on the root program; this file only wires them and turns errors into
 * exit codes: a `UserError` prints its message, anything else is a bug and prints the stack.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { UserError } from '../core/errors.js';
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
  datamover: async () => (await import('./commands/datamover.js')).registerDatamoverCommands,
  demo: async () => (await import('./commands/demo.js')).registerDemoCommands,
  drill: async () => (await import('./commands/drill.js')).registerDrillCommands,
  eks: async () => (await import('./commands/eks.js')).registerEksCommands,
  local: async () => (await import('./commands/local.js')).registerLocalCommands,
  plan: async () => (await import('./commands/plan.js')).registerPlanCommands,
  restore: async () => (await import('./commands/restore.js')).registerRestoreCommands,
};

/**
 * The program with the verb `argv` names, or with every verb (for help and unknown verbs,
 * so commander lists them all).
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('milvus-guard')
    .description('Backup, restore and disaster recovery for Milvus on Amazon EKS')
    .version(version)
    .showHelpAfterError()
    .exitOverride();
  const verb = argv[2];
  const wanted = verb !== undefined && verb in VERBS ? [verb] : Object.keys(VERBS);
  for (const register of await Promise.all(wanted.map((name) => VERBS[name]!()))) register(program);
  return program;
}

/** Runs the CLI with `argv` (as in `process.argv`) and resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed the usage error (or the help/version text).
      return err.exitCode;
    }
    if (err instanceof UserError) {
      process.stderr.write(`error: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 2;
  }
}

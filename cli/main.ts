/**
 * The `milvus-guard` command line. Each verb lives in its own module under `cli/commands/`
 * and registers itself on the root program; this file only wires them and turns errors into
 * exit codes: a `UserError` prints its message, anything else is a bug and prints the stack.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { UserError } from '../core/errors.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerConfigCommands } from './commands/config.js';
import { registerDatamoverCommands } from './commands/datamover.js';
import { registerEksCommands } from './commands/eks.js';
import { registerLocalCommands } from './commands/local.js';
import { registerPlanCommands } from './commands/plan.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('milvus-guard')
    .description('Backup, restore and disaster recovery for Milvus on Amazon EKS')
    .version(version)
    .showHelpAfterError()
    .exitOverride();
  registerBackupCommands(program);
  registerConfigCommands(program);
  registerDatamoverCommands(program);
  registerEksCommands(program);
  registerLocalCommands(program);
  registerPlanCommands(program);
  return program;
}

/** Runs the CLI with `argv` (as in `process.argv`) and resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
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

/**
 * The `milvus-guard datamover` command line on its own, for the benchmark: the same command
 * module the real CLI registers, without the rest of the program. Exits like the real CLI.
 */
import { Command, CommanderError } from 'commander';
import { registerDatamoverCommands } from '../cli/commands/datamover.js';
import { UserError } from '../core/errors.js';

const program = new Command('milvus-guard').exitOverride();
registerDatamoverCommands(program);
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exitCode = err.exitCode;
  else if (err instanceof UserError) {
    process.stderr.write(`error: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else throw err;
}

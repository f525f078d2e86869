/**
 * Entry point of the data-mover Job image: the `milvus-guard datamover` commands, exactly as
 * the full CLI registers them, without the rest of the program. `bundle.ts` turns it into one
 * self-contained ES module so the image needs neither node_modules nor a TypeScript loader,
 * and a Job starts in a fraction of a second.
 */
import { Command, CommanderError } from 'commander';
import { registerDatamoverCommands } from '../../cli/commands/datamover.js';
import { UserError } from '../../core/errors.js';

const program = new Command('milvus-guard').exitOverride();
registerDatamoverCommands(program);
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode; // commander already printed the usage error or help
  } else if (err instanceof UserError) {
    process.stderr.write(`error: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  }
}

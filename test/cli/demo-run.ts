/**
 * Runs `milvus-guard demo` in this process with the given flags, `--json` and a kept state
 * directory, capturing what it writes: the demo tests then read its summary and its state.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerDemoCommands, type DemoIO } from '../../cli/commands/demo.js';

export interface DemoRun {
  /** The kept state directory (inside a temporary directory: remove `join(dir, '..')`). */
  readonly dir: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export async function runDemoCommand(flags: readonly string[]): Promise<DemoRun> {
  const dir = join(await mkdtemp(join(tmpdir(), 'mg-demo-')), 'state');
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: DemoIO = { out: (t) => void stdout.push(t), err: (t) => void stderr.push(t), clock: () => performance.now(), onInterrupt: () => () => undefined };
  process.exitCode = undefined;
  const program = new Command('milvus-guard').exitOverride();
  registerDemoCommands(program, io);
  try {
    await program.parseAsync(['node', 'milvus-guard', 'demo', ...flags, '--json', '--keep', dir]);
    return { dir, stdout: stdout.join(''), stderr: stderr.join(''), code: typeof process.exitCode === 'number' ? process.exitCode : 0 };
  } finally {
    process.exitCode = undefined;
  }
}

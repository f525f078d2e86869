/**
 * The embedded default's record of its executions, `executions/<name>.json` in the state
 * directory: which process runs each one and how it ended. Step Functions knows this in AWS
 * (DescribeExecution); locally an execution runs inside a CLI process, so an execution whose
 * process is gone while its record says RUNNING was killed: it ended ABORTED, as a stopped
 * execution does in AWS.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { ExecutionState, ExecutionStatus } from '../../core/workflow/executions.js';

interface Entry {
  readonly executionArn: string;
  readonly pid: number;
  readonly status: ExecutionState;
}

/** Whether process `pid` exists (EPERM: it does, as another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class LocalExecutions implements ExecutionStatus {
  constructor(private readonly dir: string) {}

  /** Records that this process runs `executionArn`. */
  async started(executionArn: string, pid = process.pid): Promise<void> {
    await this.write({ executionArn, pid, status: 'RUNNING' });
  }

  /** Records how `executionArn` ended. */
  async ended(executionArn: string, status: ExecutionState): Promise<void> {
    await this.write({ executionArn, pid: process.pid, status });
  }

  async state(executionArn: string): Promise<ExecutionState> {
    let entry: Entry;
    try {
      entry = JSON.parse(await readFile(this.file(executionArn), 'utf8')) as Entry;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'UNKNOWN';
      throw err;
    }
    return entry.status === 'RUNNING' && !alive(entry.pid) ? 'ABORTED' : entry.status;
  }

  /** The process that runs `executionArn`, while it runs. */
  async processOf(executionArn: string): Promise<number | undefined> {
    try {
      const entry = JSON.parse(await readFile(this.file(executionArn), 'utf8')) as Entry;
      return entry.status === 'RUNNING' && alive(entry.pid) ? entry.pid : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Stops the process that runs `executionArn` (SIGTERM, as StopExecution ends one in AWS) and
   * waits up to 10 s for it to end, when it runs and is not this process (which cannot stop
   * itself: an execution it runs sees its record closing and creates nothing more).
   */
  async stop(executionArn: string, say: (line: string) => void): Promise<void> {
    const pid = await this.processOf(executionArn);
    if (pid === undefined || pid === process.pid) return;
    say(`stopping process ${pid}, which runs ${executionArn}`);
    process.kill(pid, 'SIGTERM');
    // A stopped process ends within moments; its entry then reads ABORTED.
    for (let i = 0; i < 100 && (await this.processOf(executionArn)) !== undefined; i++) await new Promise((r) => setTimeout(r, 100));
  }

  private async write(entry: Entry): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.file(entry.executionArn), JSON.stringify(entry));
  }

  /** `.../execution:milvus-guard-backup:NAME` → `backup-NAME.json`. */
  private file(executionArn: string): string {
    const [, workflow = 'unknown', name = 'unknown'] = /:execution:milvus-guard-([a-z]+):(.+)$/.exec(executionArn) ?? [];
    return join(this.dir, `${workflow}-${name.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
  }
}

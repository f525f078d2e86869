/**
 * Whether a workflow execution still runs. A plan lock names the execution that holds it; when
 * that execution has ended without releasing it (stopped, timed out, a Lambda or the local CLI
 * that died), the next backup recovers after it instead of waiting out the lock
 * (core/backup/recover.ts). `SfnExecutions` asks Step Functions; the embedded default keeps a
 * registry of its executions (local/workflows/registry.ts).
 */
import { DescribeExecutionCommand, ExecutionDoesNotExist, SFNClient } from '@aws-sdk/client-sfn';

/** `RUNNING`, or how the execution ended; `UNKNOWN` when nothing knows it (it cannot be running). */
export type ExecutionState = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'UNKNOWN';

/** The port. */
export interface ExecutionStatus {
  state(executionArn: string): Promise<ExecutionState>;
}

const STATES: readonly string[] = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'];

/** Step Functions' own answer (DescribeExecution); a redrivable failed execution counts as ended. */
export class SfnExecutions implements ExecutionStatus {
  constructor(private readonly client: SFNClient = new SFNClient({})) {}

  async state(executionArn: string): Promise<ExecutionState> {
    try {
      const { status } = await this.client.send(new DescribeExecutionCommand({ executionArn }));
      return STATES.includes(status ?? '') ? (status as ExecutionState) : status === 'PENDING_REDRIVE' ? 'RUNNING' : 'UNKNOWN';
    } catch (err) {
      if (err instanceof ExecutionDoesNotExist) return 'UNKNOWN';
      throw err;
    }
  }
}

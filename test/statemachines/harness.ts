/**
 * The harness of the state-machine tests: a workflow's real definition (as `loadDefinition`
 * expands it) run by aws-local-stepfunctions, every Task answered by the script entry of its
 * state name, Wait states and retry intervals at zero, and every Task call recorded in order.
 *
 * Tasks are matched by state name only, never by the placeholder their `Resource` names, so a
 * test reads like the console's execution graph. Placeholders get stand-in values; a test that
 * asserts on one names it by the state and the Parameters field it fills
 * (`{ RunRestore: { StateMachineArn: ... } }`).
 *
 * A script must answer every Task of the definition and nothing else: a Task without an answer
 * would call AWS, and an answer for a state the definition lacks would silently never run.
 */
import { ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { fillPlaceholders, loadDefinition, placeholdersOf, walkStates, type AslState } from '../../core/workflow/asl.js';

/** The answer of each Task, by state name: a value, a Promise, or a rejection for an error. */
export type Script = Record<string, (input: any) => unknown>;

/** One Task call: its state and the input the state handed it. */
export interface TaskCall {
  readonly state: string;
  readonly input: any;
}

/** How an execution ended, and every Task call on the way. */
export interface ScriptedRun {
  /** The execution's output when it succeeded. */
  readonly output: unknown;
  /** The error the execution failed with (`States.*` or the one a Task threw). */
  readonly error: { name: string; message: string } | undefined;
  readonly calls: readonly TaskCall[];
  /** The state of each call, in order. */
  readonly states: readonly string[];
  /** Every state the execution entered (Tasks, Choices, Waits, ...), in order. */
  readonly entered: readonly string[];
}

/** An error a scripted Task rejects with, matched by `ErrorEquals` on its name. */
export const named = (name: string, message = name): Error => Object.assign(new Error(message), { name });

/** The input of the first call of `state`. */
export const inputOf = (calls: readonly TaskCall[], state: string): any => {
  const call = calls.find((c) => c.state === state);
  if (!call) throw new Error(`no call of ${state}; the states called were ${calls.map((c) => c.state).join(', ')}`);
  return call.input;
};

const ACCOUNT = 'arn:aws:states:us-east-1:123456789012';

/** A workflow whose Tasks a test scripts. */
export interface ScriptedWorkflow {
  /** The execution id every run passes as `$$.Execution.Id`. */
  readonly executionId: string;
  /** Runs the workflow with `script` answering its Tasks. */
  run(input: unknown, script: Script): Promise<ScriptedRun>;
}

/**
 * Loads the workflow `name` and returns its runner. `parameters` gives, by state name and
 * Parameters field, the value of the placeholder there; every other placeholder gets a
 * well-formed Lambda ARN that nothing calls.
 */
export function scriptedWorkflow(name: string, options: { parameters?: Record<string, Record<string, string>> } = {}): ScriptedWorkflow {
  const text = loadDefinition(name);
  const unfilled = JSON.parse(text) as { States: Record<string, AslState> };
  const states = new Map<string, AslState>();
  walkStates(unfilled, (state, body) => states.set(state, body));

  const values = Object.fromEntries(placeholdersOf(text).map((p) => [p, `arn:aws:lambda:us-east-1:123456789012:function:${p.replace(/[^\w-]/g, '')}`]));
  for (const [state, fields] of Object.entries(options.parameters ?? {})) {
    for (const [field, value] of Object.entries(fields)) {
      const placeholder = placeholdersOf(JSON.stringify(states.get(state)?.Parameters?.[field] ?? ''));
      if (placeholder.length !== 1) throw new Error(`${name}: state ${state} has no placeholder in Parameters.${field}`);
      values[placeholder[0]!] = value;
    }
  }
  const definition = JSON.parse(fillPlaceholders(text, values)) as StateMachineDefinition;

  const tasks = [...states].filter(([, s]) => s.Type === 'Task').map(([state]) => state);
  const waits = Object.fromEntries([...states].filter(([, s]) => s.Type === 'Wait').map(([state]) => [state, 0]));
  const retries = Object.fromEntries([...states].filter(([, s]) => s.Retry).map(([state]) => [state, 0]));
  const executionId = `${ACCOUNT}:execution:milvus-guard-${name}:test-1`;

  return {
    executionId,
    async run(input, script) {
      const unanswered = tasks.filter((t) => !Object.hasOwn(script, t));
      const unknown = Object.keys(script).filter((s) => !tasks.includes(s));
      if (unanswered.length || unknown.length) {
        throw new Error(`the script of ${name} must answer exactly its Tasks: unanswered ${unanswered.join(', ') || 'none'}; not a Task ${unknown.join(', ') || 'none'}`);
      }
      const calls: TaskCall[] = [];
      const handlers: Record<string, (event: any) => Promise<any>> = {};
      for (const [state, answer] of Object.entries(script)) {
        handlers[state] = async (event) => {
          calls.push({ state, input: event });
          return answer(event);
        };
      }
      const execution = new StateMachine(definition).run(input as never, {
        context: { Execution: { Id: executionId, Name: 'test-1' } },
        overrides: { taskResourceLocalHandlers: handlers, waitTimeOverrides: waits, retryIntervalOverrides: retries },
      });
      const entered: string[] = [];
      const logged = (async () => {
        for await (const event of execution.eventLogs) if (event.type === 'StateEntered') entered.push(event.state.name);
      })();
      const outcome = await execution.result.then(
        (output) => ({ output, error: undefined }),
        (err: unknown) => {
          if (!(err instanceof ExecutionError)) throw err;
          return { output: undefined, error: err.cause as { name: string; message: string } };
        },
      );
      await logged;
      return { ...outcome, calls, states: calls.map((c) => c.state), entered };
    },
  };
}

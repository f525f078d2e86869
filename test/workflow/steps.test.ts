import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { TransientError, TRANSIENT_ERROR_NAMES } from '../../core/errors.js';
import { DefinitionError, expandDefinition, loadDefinition, walkStates, type AslState } from '../../core/workflow/asl.js';
import { RETRY_POLICIES } from '../../core/workflow/policies.js';
import { BACKUP_WORKFLOW, handlerStates, placeholderOf, stateOfPlaceholder, timelineSteps, WORKFLOWS } from '../../core/workflow/steps.js';

const tasksOf = (workflow: string) => {
  const tasks: [string, AslState][] = [];
  walkStates(JSON.parse(loadDefinition(workflow)) as { States: Record<string, AslState> }, (name, state) => {
    if (state.Type === 'Task') tasks.push([name, state]);
  });
  return tasks;
};
const lambdaTasks = (workflow: string) => tasksOf(workflow).filter(([, t]) => /FunctionArn\}$/.test(t.Resource ?? ''));

describe('the step tables', () => {
  it.each(WORKFLOWS.map((w) => [w.workflow, w] as const))('%s: lists exactly the Lambda Tasks of its file, in the order they appear', (workflow, w) => {
    const tasks = lambdaTasks(workflow).map(([name]) => name);

    expect(tasks.length).toBeGreaterThan(1);
    expect(w.steps.map((row) => row.state)).toEqual(tasks);
  });

  it.each(WORKFLOWS.map((w) => [w.workflow, w] as const))("%s: every Task invokes the function of its row's state (or of the state it repeats)", (workflow, w) => {
    const tasks = lambdaTasks(workflow);

    expect(tasks).toHaveLength(w.steps.length);
    for (const [name, task] of tasks) {
      const row = w.steps.find((r) => r.state === name)!;
      expect(task.Resource).toBe(`\${${placeholderOf('runs' in row && row.runs ? row.runs : row.state)}}`);
    }
  });

  it('derives the placeholder from the state and back', () => {
    expect(placeholderOf('CheckFlush')).toBe('CheckFlushFunctionArn');
    expect(stateOfPlaceholder('CheckFlushFunctionArn')).toBe('CheckFlush');
    expect(stateOfPlaceholder('RestoreStateMachineArn')).toBeUndefined();
  });

  it('gives a state that repeats another no function of its own', () => {
    expect(handlerStates(BACKUP_WORKFLOW)).toContain('Unquiesce');
    expect(handlerStates(BACKUP_WORKFLOW)).not.toContain('UnquiesceAfterFailure');
  });

  it("derives the backup record's timeline steps, in the order they run", () => {
    expect(timelineSteps(BACKUP_WORKFLOW)).toEqual(['Prepare', 'Discover', 'Quiesce', 'Hooks', 'Capture', 'Snapshot', 'Recount', 'CopyObjects', 'Unquiesce', 'Export', 'Finalize']);
  });
});

describe('retry policies', () => {
  it.each(WORKFLOWS.map((w) => w.workflow))('%s: every Task retries by a named policy, expanded in full', (workflow) => {
    const tasks = tasksOf(workflow);

    expect(tasks.length).toBeGreaterThan(2);
    for (const [, task] of tasks) expect(Object.values(RETRY_POLICIES)).toContainEqual(task.Retry);
  });

  it('retries every transient error class of core by name on every Lambda Task', async () => {
    const coreDir = fileURLToPath(new URL('../../core/', import.meta.url));
    const files = readdirSync(coreDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const transient: string[] = [];
    for (const file of files) {
      const module = (await import(new URL(`../../core/${file}`, import.meta.url).href)) as Record<string, unknown>;
      for (const value of Object.values(module)) {
        if (typeof value !== 'function' || !(value.prototype instanceof TransientError)) continue;
        // Every constructor takes a message or a subject first; some take the failure that caused it.
        transient.push((new (value as new (message: string, cause: Error) => Error)('probe', new Error('probe'))).name);
      }
    }
    const retried = RETRY_POLICIES.transient.flatMap((r) => r.ErrorEquals);

    expect(transient).toContain('KubernetesTransientError');
    for (const name of transient) expect(retried).toContain(name);
    for (const name of TRANSIENT_ERROR_NAMES) expect(retried).toContain(name);
  });

  it('refuses a Retry that names no policy, naming the state and the policies', () => {
    const yaml = 'StartAt: A\nStates:\n  A:\n    Type: Task\n    Resource: x\n    Retry: transiant\n    End: true\n';

    expect(() => expandDefinition(yaml, 'statemachines/x.asl.yaml')).toThrow(
      new DefinitionError('statemachines/x.asl.yaml: state A has Retry: transiant, which is no retry policy; use one of transient, prepare-backup, resumable-copy, nested-execution'),
    );
  });

  it('takes no inherited property for a policy name', () => {
    const yaml = 'StartAt: A\nStates:\n  A:\n    Type: Task\n    Resource: x\n    Retry: toString\n    End: true\n';

    expect(() => expandDefinition(yaml, 'x')).toThrow(/Retry: toString, which is no retry policy/);
  });

  it('resolves a Catch declared once as an anchor in every state that references it', () => {
    const yaml = 'StartAt: A\nStates:\n  A:\n    Type: Task\n    Resource: x\n    Catch: &failurePath\n      - ErrorEquals: [States.ALL]\n        Next: F\n    Next: B\n  B:\n    Type: Task\n    Resource: y\n    Catch: *failurePath\n    End: true\n  F:\n    Type: Fail\n';
    const { States } = expandDefinition(yaml, 'x');

    expect(States['B']!.Catch).toEqual([{ ErrorEquals: ['States.ALL'], Next: 'F' }]);
    expect(States['B']!.Catch).toEqual(States['A']!.Catch);
  });
});

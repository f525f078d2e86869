/**
 * The plan's exec hooks (backup steps 3 and 6): each hook's `pre` or `post` action runs in the
 * pods its `podSelector` chooses, in the container the hook or the plan's `containerRegex`
 * names, over an injected `ExecPort`. `Sequential` runs one command at a time in the plan's
 * order and stops the pre hooks at the first failure that is not ignored; `Parallel` runs them
 * all at once. Each command gets `timeoutSeconds` per attempt and `maxRetryCount` retries; a
 * failure with `ignoreFailure` is recorded and does not fail the backup. Post hooks always run
 * to the end: they undo what pre hooks did.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ResolvedHook, ResolvedPlan } from '../config/resolve.js';
import type { ExecAction } from '../config/schema.js';
import type { HookRun } from '../catalog/record.js';
import { kubeCall } from '../kube/call.js';
import type { KubeClients } from '../kube/connect.js';
import { ExecTimeoutError, type ExecPort } from '../kube/exec.js';
import { formatLabelSelector } from '../kube/selector.js';
import type { HookSummary } from '../workflow/backup-state.js';

export type HookPhase = 'pre' | 'post';

/** A hook failed and its `ignoreFailure` is false. Not retried by the workflow. */
export class HookFailedError extends Error {
  constructor(readonly runs: readonly HookRun[]) {
    const first = runs[0]!;
    super(
      `${runs.length} ${first.phase} hook run(s) failed: hook ${first.hook} in pod ${first.pod} (${first.container}) ${first.outcome === 'TimedOut' ? 'timed out' : `exited ${first.exitCode ?? '?'}`}` +
        `${first.stderr ? `: ${first.stderr.trim().slice(0, 300)}` : first.error ? `: ${first.error}` : ''}. Fix the command or set ignoreFailure: true on the hook`,
    );
    this.name = 'HookFailed';
  }
}

interface Target {
  readonly item: ResolvedHook;
  readonly action: ExecAction;
  readonly pod: string;
  readonly container: string;
}

const isRunning = (pod: V1Pod) => pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp;

async function targetsOf(kube: KubeClients, namespace: string, item: ResolvedHook, action: ExecAction): Promise<Target[] | HookRun> {
  const selector = formatLabelSelector(item.podSelector);
  const list = await kubeCall(`list pods ${selector} in ${namespace}`, () => kube.core.listNamespacedPod({ namespace, labelSelector: selector }));
  const pods = list.items.filter(isRunning).sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const targets: Target[] = [];
  for (const pod of pods) {
    const containers = (pod.spec?.containers ?? []).map((c) => c.name);
    const chosen = item.containerRegex
      ? containers.filter((c) => new RegExp(item.containerRegex!).test(c))
      : action.container
        ? containers.filter((c) => c === action.container)
        : containers.slice(0, 1);
    for (const container of chosen) targets.push({ item, action, pod: pod.metadata!.name!, container });
  }
  if (targets.length > 0) return targets;
  return {
    phase: 'pre',
    hook: item.hook.name,
    pod: '-',
    container: item.containerRegex ?? action.container ?? '-',
    command: action.command,
    attempts: 1,
    outcome: action.ignoreFailure ? 'FailedIgnored' : 'Failed',
    stdout: '',
    stderr: '',
    error: `no running pod in ${namespace} matches ${selector}${item.containerRegex || action.container ? ` with container ${item.containerRegex ?? action.container}` : ''}`,
  };
}

async function runOne(exec: ExecPort, namespace: string, phase: HookPhase, t: Target): Promise<HookRun> {
  const { action } = t;
  const base = { phase, hook: t.item.hook.name, pod: t.pod, container: t.container, command: action.command };
  let last: HookRun | undefined;
  for (let attempt = 1; attempt <= action.maxRetryCount + 1; attempt++) {
    try {
      const result = await exec.exec({ namespace, pod: t.pod, container: t.container, command: action.command, timeoutSeconds: action.timeoutSeconds });
      const ok = result.exitCode === 0;
      last = {
        ...base,
        attempts: attempt,
        outcome: ok ? 'Succeeded' : action.ignoreFailure ? 'FailedIgnored' : 'Failed',
        exitCode: result.exitCode,
        stdout: result.stdout,
        stderr: result.stderr,
        ...(result.message && !ok ? { error: result.message } : {}),
      };
      if (ok) return last;
    } catch (err) {
      if (!(err instanceof ExecTimeoutError)) throw err;
      last = { ...base, attempts: attempt, outcome: action.ignoreFailure ? 'TimedOutIgnored' : 'TimedOut', stdout: '', stderr: '', error: err.message };
    }
  }
  return last!;
}

/** Whether a run fails the backup. */
export const failsBackup = (run: HookRun): boolean => run.outcome === 'Failed' || run.outcome === 'TimedOut';

/**
 * Runs the `phase` actions of the plan's hooks (see the module documentation) and returns
 * every run with its output. It does not throw for a failed command: the caller records the
 * runs first, then fails with {@link HookFailedError} when {@link failsBackup} says so.
 */
export async function runHooks(ctx: { readonly exec: ExecPort }, kube: KubeClients, resolved: ResolvedPlan, phase: HookPhase): Promise<HookRun[]> {
  const namespace = resolved.plan.namespace;
  const items = resolved.hooks.items.filter((i) => i.hook[phase] !== undefined);
  const runs: HookRun[] = [];
  if (resolved.hooks.mode === 'Parallel') {
    const perItem = await Promise.all(
      items.map(async (item) => {
        const targets = await targetsOf(kube, namespace, item, item.hook[phase]!);
        if (!Array.isArray(targets)) return [{ ...targets, phase }];
        return Promise.all(targets.map((t) => runOne(ctx.exec, namespace, phase, t)));
      }),
    );
    return perItem.flat();
  }
  for (const item of items) {
    const targets = await targetsOf(kube, namespace, item, item.hook[phase]!);
    if (!Array.isArray(targets)) {
      runs.push({ ...targets, phase });
    } else {
      for (const t of targets) {
        const run = await runOne(ctx.exec, namespace, phase, t);
        runs.push(run);
        if (phase === 'pre' && failsBackup(run)) return runs;
      }
    }
    if (phase === 'pre' && runs.some(failsBackup)) return runs;
  }
  return runs;
}

/** Counts of runs, failures and ignored failures. */
export function summarize(runs: readonly HookRun[]): HookSummary {
  return {
    runs: runs.length,
    failed: runs.filter(failsBackup).length,
    ignored: runs.filter((r) => r.outcome === 'FailedIgnored' || r.outcome === 'TimedOutIgnored').length,
  };
}

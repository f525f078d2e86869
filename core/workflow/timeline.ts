/**
 * A workflow record's timeline: each Task records its work under its row's timeline step
 * (./steps.ts) — when the step started, which Task last worked on it, when it ended and how —
 * so `describe` shows where a backup or restore is, and where a failed one failed. The backup
 * and restore workflows both go through `asStep`; `failedStepOf` reads a timeline back.
 */
import type { StepEntry } from '../catalog/record.js';
import { duration, reportingSlowCalls, type SlowCallListener } from '../kube/deadline.js';
import { stepRow, type WorkflowSteps } from './steps.js';
import { WorkflowClosingError } from './closing.js';

/** Where one record's timeline is written. */
export interface Timeline {
  readonly workflow: WorkflowSteps;
  readonly now: () => Date;
  /** Merges `entry` into the record's entry for `step`, keeping a start already there. */
  readonly record: (step: string, entry: Partial<StepEntry>) => Promise<void>;
}

/** How much of an error a timeline keeps. */
const DETAIL_LIMIT = 1000;

/** `Name: message`, short enough for a catalog record. */
function errorDetail(name: string, message: string): string {
  return `${name}: ${message}`.slice(0, DETAIL_LIMIT);
}

/**
 * Runs `work` as Task `state`: records the start of its timeline step (and that `state` is the
 * Task at work), and the step's end when `ends` says the step is done, or as Failed with the
 * error when `work` throws. A Task with no timeline step just runs.
 *
 * `passedOver` is for a Task whose failure the workflow goes on after (a Catch that continues):
 * its failure is recorded Skipped, the error after that text, not Failed, so that a later failure
 * of the workflow is not put on it (failedStepOf takes the newest Failed step). A retry that
 * succeeds records Succeeded as usual.
 */
export async function asStep<T>(
  t: Timeline,
  state: string,
  options: { ends: boolean | ((result: T) => boolean); detail?: (result: T) => string; passedOver?: string },
  work: () => Promise<T>,
): Promise<T> {
  const step = stepRow(t.workflow, state).timeline;
  if (!step) return work();
  await t.record(step, { startedAt: t.now().toISOString(), state });
  let result: T;
  const notes = slowCallNotes(t, step);
  try {
    result = await reportingSlowCalls(notes, work);
  } catch (err) {
    await notes.written();
    // A refusal by the failure path's barrier is not how the step failed: the error that
    // started the failure path is (another Map iteration's, or an earlier Task's).
    if (err instanceof WorkflowClosingError) throw err;
    // `failedState` is the Task that failed; a later Task's start (another Map iteration)
    // moves `state` on but leaves it, so the record names the Task the console shows failed.
    const detail = errorDetail((err as Error).name, (err as Error).message);
    if (options.passedOver !== undefined) await t.record(step, { endedAt: t.now().toISOString(), outcome: 'Skipped', state, detail: `${options.passedOver}${detail}`.slice(0, DETAIL_LIMIT) });
    else await t.record(step, { endedAt: t.now().toISOString(), outcome: 'Failed', state, failedState: state, detail });
    throw err;
  }
  await notes.written();
  const ends = typeof options.ends === 'function' ? options.ends(result) : options.ends;
  if (ends) await t.record(step, { endedAt: t.now().toISOString(), outcome: 'Succeeded', ...(options.detail ? { detail: options.detail(result) } : {}) });
  return result;
}

/** How a step's detail says that a Kubernetes call of its Task has had no answer yet. */
const WAITING = 'waiting on ';

/**
 * Notes a Task's slow Kubernetes calls in its step's detail (`waiting on create Job ns/x (no
 * answer after 5 s)`, then `… answered after 12 s`), so a Task that times out before the call's
 * deadline leaves a record naming the object (see {@link timeoutCause}). Only slow calls write,
 * in order; `written` waits for them before the step's end is recorded.
 */
function slowCallNotes(t: Timeline, step: string): SlowCallListener & { written(): Promise<void> } {
  let chain = Promise.resolve();
  const note = (detail: string) => {
    // A note is best effort: failing to write it must not fail the Task.
    chain = chain.then(() => t.record(step, { detail })).catch(() => undefined);
  };
  return {
    waiting: (what, afterMs) => note(`${WAITING}${what} (no answer after ${duration(afterMs)})`),
    answered: (what, afterMs) => note(`${what} answered after ${duration(afterMs)}`),
    written: () => chain,
  };
}

/**
 * The cause to record for a workflow that failed in `at` with `error`. A Task that timed out
 * (`States.Timeout`, whose cause says nothing more) is named, with what its step last noted:
 * the Kubernetes call it was waiting on, when it was waiting on one. Any other cause is kept.
 */
export function timeoutCause(steps: Readonly<Record<string, StepEntry | undefined>> | undefined, at: FailedAt, error: string, cause: string): string {
  if (error !== 'States.Timeout') return cause;
  const task = at.state ?? at.step;
  const detail = steps?.[at.step]?.detail;
  const given = cause && cause !== error ? ` (${cause})` : '';
  if (detail?.startsWith(WAITING)) return `${task} timed out ${detail}${given}`;
  if (detail) return `${task} timed out; its step last noted: ${detail}${given}`;
  return `${task} did not finish within its state's TimeoutSeconds${given}`;
}

/** Where a failed workflow failed: the timeline step and the Task (the console's failed state). */
export interface FailedAt {
  readonly step: string;
  /** Absent when the record names no Task (older records, or a step recorded whole). */
  readonly state?: string;
}

/**
 * The step a failed workflow failed in: the last one that ended Failed, else the last one that
 * started and never ended (its Task timed out or its Lambda died), else `Unknown`.
 */
export function failedStepOf(steps: Readonly<Record<string, StepEntry | undefined>> | undefined): FailedAt {
  const entries = Object.entries(steps ?? {}).filter((e): e is [string, StepEntry] => e[1] !== undefined);
  const failed = entries.filter(([, e]) => e.outcome === 'Failed').sort(([, a], [, b]) => (b.endedAt ?? '').localeCompare(a.endedAt ?? ''));
  const open = entries.filter(([, e]) => !e.endedAt).sort(([, a], [, b]) => b.startedAt.localeCompare(a.startedAt));
  const [step, entry] = failed[0] ?? open[0] ?? ['Unknown', undefined];
  const state = entry?.outcome === 'Failed' ? (entry.failedState ?? entry.state) : entry?.state;
  return { step, ...(state ? { state } : {}) };
}

/**
 * Closes the failed step in the timeline with the error the workflow failed with: ends it when
 * nothing did (a Task that timed out), and gives it that error as its detail, so the step and
 * the record's failure tell one story (in a Map, another iteration may have failed first).
 */
export async function closeFailedStep(t: Timeline, steps: Readonly<Record<string, StepEntry | undefined>> | undefined, at: FailedAt, error: { Error: string; cause: string }): Promise<void> {
  const entry = steps?.[at.step];
  if (entry) await t.record(at.step, { endedAt: entry.endedAt ?? t.now().toISOString(), outcome: 'Failed', detail: errorDetail(error.Error, error.cause) });
}

/**
 * Ends `step` Succeeded when its Task recorded the workflow's outcome (`recorded`: Available,
 * Completed) and was then killed (timed out) before ending it: the failure path found the outcome
 * recorded and keeps it, and `error` is what the Task ended with.
 */
export async function closeRecordedStep(t: Timeline, steps: Readonly<Record<string, StepEntry | undefined>> | undefined, step: string, recorded: string, error: string): Promise<void> {
  const entry = steps?.[step];
  if (entry?.startedAt && !entry.endedAt) await t.record(step, { endedAt: t.now().toISOString(), outcome: 'Succeeded', detail: `recorded ${recorded}; the Task then ended with ${error}` });
}

/**
 * Ends as Skipped every step still open but `running` (the Task at work) when a workflow completes
 * without them: a Task it passed over after it timed out never ended its step (RecountRows).
 * Returns the steps it closed.
 */
export async function closePassedOverSteps(t: Timeline, steps: Readonly<Record<string, StepEntry | undefined>> | undefined, running: string): Promise<string[]> {
  const open = Object.entries(steps ?? {}).filter(([step, e]) => e && !e.endedAt && step !== running);
  for (const [step, entry] of open) {
    await t.record(step, { endedAt: t.now().toISOString(), outcome: 'Skipped', detail: `${entry!.state ?? step} ended without a result (its Task timed out) and the workflow went on without it` });
  }
  return open.map(([step]) => step);
}

/**
 * Where a workflow failed, as `describe` prints it: the Task the Step Functions console shows as
 * failed, and the timeline step it belongs to (`CheckFlush (Quiesce)`).
 */
export function failedAtText(at: FailedAt): string {
  return at.state && at.state !== at.step ? `${at.state} (${at.step})` : at.step;
}

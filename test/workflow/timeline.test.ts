import { describe, expect, it } from '@jest/globals';
import type { StepEntry } from '../../core/catalog/record.js';
import { BACKUP_WORKFLOW } from '../../core/workflow/steps.js';
import { closePassedOverSteps, failedStepOf, type Timeline } from '../../core/workflow/timeline.js';

// A workflow that completes after passing over a Task (RecountRows, whose Catch goes on) leaves
// no step open and none Failed: describe shows no step running, and a later failure is never put
// on the step it passed over.

const AT = '2026-03-01T02:10:00.000Z';

/** A timeline over `steps`, merging each entry recorded into them as the catalog does. */
function timelineOver(steps: Record<string, StepEntry | undefined>): Timeline {
  return {
    workflow: BACKUP_WORKFLOW,
    now: () => new Date(AT),
    record: async (step, entry) => {
      steps[step] = { ...steps[step], ...entry } as StepEntry;
    },
  };
}

describe('closePassedOverSteps', () => {
  it('ends a step left open by a timed-out Task as Skipped, leaving the running one and the ended ones as they are', async () => {
    const steps: Record<string, StepEntry | undefined> = {
      Snapshot: { startedAt: '2026-03-01T02:01:00.000Z', endedAt: '2026-03-01T02:02:00.000Z', outcome: 'Succeeded' },
      Recount: { startedAt: '2026-03-01T02:02:00.000Z', state: 'RecountRows' },
      Finalize: { startedAt: '2026-03-01T02:09:00.000Z', state: 'Finalize' },
    };

    const closed = await closePassedOverSteps(timelineOver(steps), steps, 'Finalize');

    expect(closed).toEqual(['Recount']);
    expect(steps.Recount).toMatchObject({ endedAt: AT, outcome: 'Skipped', detail: 'RecountRows ended without a result (its Task timed out) and the workflow went on without it' });
    expect(steps.Finalize!.endedAt).toBeUndefined();
    expect(steps.Snapshot).toMatchObject({ outcome: 'Succeeded', endedAt: '2026-03-01T02:02:00.000Z' });
  });

  it('leaves a later failure to be found where it happened, not on the step passed over', async () => {
    const steps: Record<string, StepEntry | undefined> = {
      Recount: { startedAt: '2026-03-01T02:02:00.000Z', endedAt: '2026-03-01T02:03:00.000Z', outcome: 'Skipped', state: 'RecountRows' },
      Export: { startedAt: '2026-03-01T02:04:00.000Z', state: 'CheckExport' },
    };

    expect(failedStepOf(steps)).toEqual({ step: 'Export', state: 'CheckExport' });
  });
});

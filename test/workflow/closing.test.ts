import { describe, expect, it } from '@jest/globals';
import { createWhileOpen, WorkflowClosingError, type ClosingState } from '../../core/workflow/closing.js';

const open: ClosingState = { status: 'InProgress' };
const closing: ClosingState = { status: 'InProgress', closingAt: '2026-12-05T02:00:00.000Z' };

/** A record read that answers from `states` in turn, and a log of what was made and undone. */
function world(...states: ClosingState[]) {
  const log: string[] = [];
  return {
    log,
    read: async () => states.shift(),
    create: async () => {
      log.push('create');
      return 'job-1';
    },
    undo: async (made: string) => log.push(`undo ${made}`),
  };
}

describe('createWhileOpen: the failure path is a barrier', () => {
  it('creates while the record is open and keeps what it made', async () => {
    const w = world(open, open);

    await expect(createWhileOpen('backup b', w.read, w.create, w.undo)).resolves.toBe('job-1');
    expect(w.log).toEqual(['create']);
  });

  it('creates nothing once the cleanup has begun', async () => {
    const w = world(closing);

    await expect(createWhileOpen('backup b', w.read, w.create, w.undo)).rejects.toThrow(WorkflowClosingError);
    expect(w.log).toEqual([]);
  });

  it('removes what it made when the cleanup began while it was making it', async () => {
    const w = world(open, closing);

    await expect(createWhileOpen('backup b', w.read, w.create, w.undo)).rejects.toMatchObject({ name: 'WorkflowClosing', message: expect.stringContaining('backup b') });
    expect(w.log).toEqual(['create', 'undo job-1']);
  });

  it('treats a record that is no longer in progress, or gone, as closed', async () => {
    for (const state of [{ status: 'Failed' }, undefined]) {
      const w = world(...(state ? [state] : []));

      await expect(createWhileOpen('backup b', w.read, w.create, w.undo)).rejects.toThrow(WorkflowClosingError);
      expect(w.log).toEqual([]);
    }
  });
});

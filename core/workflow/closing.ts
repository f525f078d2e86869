/**
 * The failure path is a barrier. When a backup or restore fails, its cleanup first marks the
 * record closing (`closingAt`), then sweeps what the workflow made, by label. A step still in
 * flight (a Map iteration, a Lambda that outlived its timed-out Task) creates through
 * `createWhileOpen`, which refuses once the record is closing, and checks again after creating:
 * if the cleanup began meanwhile, the step removes what it just made itself. Each object is then
 * either made before the sweep lists it (Kubernetes lists are consistent with earlier writes),
 * or removed by its maker; none is left behind.
 */

/** What the barrier reads of a record. */
export interface ClosingState {
  readonly status: string;
  readonly closingAt?: string | undefined;
}

/** A step was asked to create something after the failure path of its workflow began. */
export class WorkflowClosingError extends Error {
  constructor(readonly id: string) {
    super(`${id} is being cleaned up after a failure: nothing more is created for it`);
    this.name = 'WorkflowClosing';
  }
}

const closed = (record: ClosingState | undefined): boolean => !record || record.closingAt !== undefined || record.status !== 'InProgress';

/**
 * Runs `create` unless the record of `id` is closing (or no longer in progress), and undoes it
 * when the record began closing while it ran. Throws `WorkflowClosingError` in both cases.
 */
export async function createWhileOpen<T>(id: string, read: () => Promise<ClosingState | undefined>, create: () => Promise<T>, undo: (made: T) => Promise<unknown>): Promise<T> {
  if (closed(await read())) throw new WorkflowClosingError(id);
  const made = await create();
  if (closed(await read())) {
    await undo(made);
    throw new WorkflowClosingError(id);
  }
  return made;
}

/**
 * One ordered record of what happened in the local cluster: the simulated Milvus's calls and
 * the API server's own events (snapshot created/ready/failed, Job started/finished, exec), so
 * a test can assert the order of a backup: flush → GC pause → snapshot → GC resume.
 */

/** One entry of the timeline. */
export interface TimelineEvent {
  /** Position in the timeline, from 1. */
  seq: number;
  /** ISO-8601 time from the cluster's clock. */
  at: string;
  /** `milvus` for a call the simulated Milvus served, `api` for an API server event. */
  source: 'api' | 'milvus';
  /**
   * For `api`: VolumeSnapshotCreated, VolumeSnapshotReady, VolumeSnapshotFailed, JobStarted,
   * JobSucceeded, JobFailed, PodExec, PodExecFinished, RequestHung (a `hang` fault held a
   * request), HungRequestClosed (its connection closed). For `milvus`: `METHOD /path`.
   */
  type: string;
  namespace?: string;
  /** The object (or, for Milvus calls, the Milvus CR) the event is about. */
  name?: string;
  detail?: Record<string, unknown>;
}

/** Append-only event list with a clock. */
export class Timeline {
  private readonly entries: TimelineEvent[] = [];
  private readonly waiting = new Set<(event: TimelineEvent) => void>();

  constructor(private readonly now: () => Date) {}

  /** Appends an event and returns it. */
  record(event: Omit<TimelineEvent, 'seq' | 'at'> & { at?: string }): TimelineEvent {
    const entry: TimelineEvent = { seq: this.entries.length + 1, ...event, at: event.at ?? this.now().toISOString() };
    this.entries.push(entry);
    for (const notify of [...this.waiting]) notify(entry);
    return entry;
  }

  /**
   * The next event recorded from now on that matches `test`: what a test awaits instead of
   * polling `events` until an effect (a Job finishing, an exec ending) shows up.
   */
  next(test: (event: TimelineEvent) => boolean): Promise<TimelineEvent> {
    return new Promise((resolve) => {
      const notify = (event: TimelineEvent) => {
        if (!test(event)) return;
        this.waiting.delete(notify);
        resolve(event);
      };
      this.waiting.add(notify);
    });
  }

  /** All events in order (a copy). */
  get events(): readonly TimelineEvent[] {
    return [...this.entries];
  }

  /** Forgets every event (between test cases). */
  clear(): void {
    this.entries.length = 0;
  }
}

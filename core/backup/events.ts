/**
 * Backup events: "Backup Available" and "Backup Failed" on EventBridge (source
 * `milvus-guard`), so alerting, ticketing or a downstream job can react; the local default
 * appends them to a JSON-lines file.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';

export const EVENT_SOURCE = 'milvus-guard';

/** Every event milvus-guard publishes (the EventBridge detail-type). */
export type EventDetailType = 'Backup Available' | 'Backup Failed' | 'Restore Completed' | 'Restore Failed' | 'Drill Passed' | 'Drill Failed' | 'Retention Completed' | 'Failover Completed' | 'Failover Failed';

export interface BackupEvent {
  readonly detailType: EventDetailType;
  readonly time: Date;
  readonly detail: Record<string, unknown>;
}

export interface BackupEvents {
  publish(event: BackupEvent): Promise<void>;
}

/** An event EventBridge did not accept. */
export class EventPublishError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventPublishError';
  }
}

/** Tries of one event whose entry EventBridge refuses inside a 200 answer. */
export const PUBLISH_ATTEMPTS = 3;

/**
 * Publishes to an EventBridge bus (the account's default bus unless named). The SDK retries a
 * request that fails (throttling included); an entry refused inside a 200 answer
 * (`FailedEntryCount`: ThrottlingException, InternalFailure) it does not, and the PutEvents
 * reference says to send such entries again: up to {@link PUBLISH_ATTEMPTS} tries, 0.2 s and 0.8 s apart.
 */
export class EventBridgeEvents implements BackupEvents {
  private readonly client: EventBridgeClient;

  constructor(
    private readonly busName = 'default',
    client?: EventBridgeClient,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  ) {
    this.client = client ?? new EventBridgeClient({});
  }

  async publish(event: BackupEvent): Promise<void> {
    const entry = { Source: EVENT_SOURCE, DetailType: event.detailType, Time: event.time, Detail: JSON.stringify(event.detail), EventBusName: this.busName };
    for (let attempt = 1; ; attempt++) {
      const out = await this.client.send(new PutEventsCommand({ Entries: [entry] }));
      if ((out.FailedEntryCount ?? 0) === 0) return;
      if (attempt >= PUBLISH_ATTEMPTS) {
        const failed = out.Entries?.find((e) => e.ErrorCode);
        throw new EventPublishError(`EventBridge refused the ${event.detailType} event ${attempt} times: ${failed?.ErrorCode ?? 'unknown'} ${failed?.ErrorMessage ?? ''}`.trim());
      }
      await this.sleep(200 * 4 ** (attempt - 1));
    }
  }
}

/**
 * Publishes an event that tells of an outcome already recorded (a backup Available or Failed, a
 * restore Completed, a drill's evidence written, a retention run's report): the catalog record
 * holds the outcome, the event only tells others. So a failure to publish is reported, not
 * thrown: thrown, it sent a finished workflow down its failure path, which marked an Available
 * backup Failed, or deleted the namespace of a validated restore, and left the plan's lock held.
 */
export async function publishRecorded(events: BackupEvents, event: BackupEvent, report: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Promise<void> {
  try {
    await events.publish(event);
  } catch (err) {
    report(JSON.stringify({ level: 'ERROR', message: `the ${event.detailType} event was not published; the catalog record holds the outcome`, error: err instanceof Error ? err.message : String(err) }));
  }
}

/** Appends events as JSON lines to a file (the embedded default). */
export class FileEvents implements BackupEvents {
  constructor(readonly file: string) {}

  async publish(event: BackupEvent): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    await appendFile(this.file, `${JSON.stringify({ source: EVENT_SOURCE, 'detail-type': event.detailType, time: event.time.toISOString(), detail: event.detail })}\n`);
  }
}

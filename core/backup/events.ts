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

/** Publishes to an EventBridge bus (the account's default bus unless named). */
export class EventBridgeEvents implements BackupEvents {
  private readonly client: EventBridgeClient;

  constructor(
    private readonly busName = 'default',
    client?: EventBridgeClient,
  ) {
    this.client = client ?? new EventBridgeClient({});
  }

  async publish(event: BackupEvent): Promise<void> {
    const out = await this.client.send(
      new PutEventsCommand({
        Entries: [{ Source: EVENT_SOURCE, DetailType: event.detailType, Time: event.time, Detail: JSON.stringify(event.detail), EventBusName: this.busName }],
      }),
    );
    // PutEvents reports per-entry failures in a 200 answer.
    if ((out.FailedEntryCount ?? 0) > 0) {
      const entry = out.Entries?.find((e) => e.ErrorCode);
      throw new EventPublishError(`EventBridge refused the ${event.detailType} event: ${entry?.ErrorCode ?? 'unknown'} ${entry?.ErrorMessage ?? ''}`.trim());
    }
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

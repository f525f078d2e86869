import { beforeEach, describe, expect, it } from '@jest/globals';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { EventBridgeEvents, EventPublishError, PUBLISH_ATTEMPTS } from '../../core/backup/events.js';

const eb = mockClient(EventBridgeClient);
const EVENT = { detailType: 'Backup Available' as const, time: new Date('2026-11-23T02:10:00.000Z'), detail: { backupId: 'b-1', plan: 'p', sizeBytes: 10 } };

beforeEach(() => {
  eb.reset();
});

describe('EventBridgeEvents', () => {
  it('puts one milvus-guard event with the detail as JSON on the bus', async () => {
    eb.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });

    await new EventBridgeEvents('default', new EventBridgeClient({})).publish(EVENT);

    expect(eb.commandCalls(PutEventsCommand)[0]!.args[0].input).toEqual({
      Entries: [{ Source: 'milvus-guard', DetailType: 'Backup Available', Time: EVENT.time, Detail: '{"backupId":"b-1","plan":"p","sizeBytes":10}', EventBusName: 'default' }],
    });
  });

  it('sends an entry EventBridge refused inside a 200 answer again, after a pause', async () => {
    eb.on(PutEventsCommand)
      .resolvesOnce({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }] })
      .resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    const pauses: number[] = [];

    await new EventBridgeEvents('default', new EventBridgeClient({}), async (ms) => void pauses.push(ms)).publish(EVENT);

    expect(eb.commandCalls(PutEventsCommand)).toHaveLength(2);
    expect(pauses).toEqual([200]);
  });

  it(`fails when EventBridge refuses the entry ${PUBLISH_ATTEMPTS} times`, async () => {
    eb.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }] });
    const pauses: number[] = [];

    await expect(new EventBridgeEvents('default', new EventBridgeClient({}), async (ms) => void pauses.push(ms)).publish(EVENT)).rejects.toThrow(
      new EventPublishError('EventBridge refused the Backup Available event 3 times: ThrottlingException Rate exceeded'),
    );
    expect(eb.commandCalls(PutEventsCommand)).toHaveLength(3);
    expect(pauses).toEqual([200, 800]);
  });
});

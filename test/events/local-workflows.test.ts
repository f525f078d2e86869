/**
 * The events the workflows really publish, end to end on the embedded default: a backup, a
 * restore of it, a drill and a retention run with their real ASL and handlers, whose events
 * land in the state directory's events.jsonl (FileEvents) exactly as they go to EventBridge.
 * Each must match its documented schema (docs/events.md). The failure events are checked
 * step by step in events.test.ts.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { EVENT_SOURCE, parseEventDetail } from '../../core/events/schemas.js';
import { localPaths, runLocalRetention } from '../../local/workflows/runner.js';
import { backup, PLAN, startSeededCluster, type SeededCluster } from '../backup/helpers.js';
import { drill, restore } from '../restore/helpers.js';

let c: SeededCluster;
let config: Config;

beforeAll(async () => {
  c = await startSeededCluster();
  config = await loadConfigFile('examples/production.yaml');
}, 120_000);

afterAll(async () => {
  await c.dispose();
});

interface Line {
  source: string;
  'detail-type': string;
  time: string;
  detail: unknown;
}

const published = async (): Promise<Line[]> =>
  (await readFile(localPaths(c.stateDir).events, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Line);

describe('the events the workflows publish on the embedded default', () => {
  it('are Backup Available, Restore Completed, Drill Passed and Retention Completed, each matching its documented schema', async () => {
    const b = await backup(c, config, { backupName: 'events-1' });
    expect(b.error).toBeUndefined();
    expect(await restore(c, config, { backupId: 'events-1', targetNamespace: 'vector-db-events', source: 'vault', restoreName: 'events-restore' })).toMatchObject({ status: 'SUCCEEDED' });
    expect(await drill(c, config, { plan: PLAN })).toMatchObject({ status: 'SUCCEEDED' });
    expect(await runLocalRetention({ stateDir: c.stateDir, config, input: { plan: PLAN }, untilPoll: () => c.cluster.settle() })).toMatchObject({ status: 'SUCCEEDED' });

    const lines = await published();
    expect(lines.map((l) => l['detail-type'])).toEqual(['Backup Available', 'Restore Completed', 'Restore Completed', 'Drill Passed', 'Retention Completed']);
    for (const l of lines) {
      expect(l.source).toBe(EVENT_SOURCE);
      expect(() => parseEventDetail(l['detail-type'], l.detail)).not.toThrow();
    }
  }, 600_000);
});

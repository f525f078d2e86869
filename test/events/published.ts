/**
 * The events a local run published (the state directory's events.jsonl, written by FileEvents
 * exactly as they go to EventBridge), each checked strictly against its documented schema
 * (core/events/schemas.ts, docs/events.md): every field documented, no field undocumented. The end-to-end workflow tests call this once their
 * workflows have run, so the real events are checked without running the workflows again.
 */
import { readFile } from 'node:fs/promises';
import { expect } from '@jest/globals';
import { EVENT_SOURCE, parseEventDetail } from '../../core/events/schemas.js';
import { localPaths } from '../../local/workflows/runner.js';

/** Every published event's detail type, in order, after checking each against its schema. */
export async function publishedEventTypes(stateDir: string): Promise<string[]> {
  const lines = (await readFile(localPaths(stateDir).events, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { source: string; 'detail-type': string; detail: unknown });
  for (const l of lines) {
    expect(l.source).toBe(EVENT_SOURCE);
    expect(() => parseEventDetail(l['detail-type'], l.detail, { strict: true })).not.toThrow();
  }
  return lines.map((l) => l['detail-type']);
}

/**
 * The events contract (docs/events.md, core/events/schemas.ts) against the code: every
 * detail-type the emitters can publish is documented with a schema, each section's field table
 * lists exactly its schema's fields, every documented example parses, and the events the
 * emitting steps really publish — run here with in-memory collaborators and a recording
 * `BackupEvents` — match their schemas. Examples and emitted events are checked strictly (no
 * field the schema does not declare, at any depth), so an undocumented field fails here; the
 * schemas themselves stay lenient for consumers (see core/events/schemas.ts). The workflows' own
 * events on the embedded default are checked, as strictly, by test/events/published.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import type { BackupEvent } from '../../core/backup/events.js';
import { recordBackupFailed } from '../../core/backup/workflow.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { prepareFailoverStep, recordFailoverStep } from '../../core/dr/failover.js';
import { recordEvidenceStep } from '../../core/drill/workflow.js';
import { z } from 'zod';
import { EVENT_CONTRACTS, EVENT_DETAIL_TYPES, EVENT_SCHEMA_VERSION, EVENT_SOURCE, EventSchemaError, parseEventDetail } from '../../core/events/schemas.js';
import { markRestoreFailedStep } from '../../core/restore/workflow.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { backupRecord, preparedDrill, restoreRecord } from '../cli/helpers.js';

const DOC = readFileSync('docs/events.md', 'utf8');

/** Every `.ts` file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

/** The detail-types the code publishes: the string literals of every `detailType:` expression in core/ and lambdas/. */
function emittedDetailTypes(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of [...sources('core'), ...sources('lambdas')]) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/detailType:\s*([^,\n}]+)/g)) {
      for (const lit of m[1]!.matchAll(/'([^']+)'/g)) found.set(lit[1]!, [...(found.get(lit[1]!) ?? []), file]);
    }
  }
  return found;
}

/** The JSON blocks of docs/events.md that are whole events (they have a detail-type). */
function documentedEvents(): { 'detail-type': string; source: string; detail: unknown }[] {
  return [...DOC.matchAll(/```json\n([^]*?)```/g)].map((m) => JSON.parse(m[1]!) as Record<string, unknown>).filter((e): e is { 'detail-type': string; source: string; detail: unknown } => typeof e['detail-type'] === 'string');
}

const recorder = () => {
  const events: BackupEvent[] = [];
  return { events, publish: { publish: async (e: BackupEvent) => void events.push(e) } };
};

/** Each event's detail holds exactly its documented fields (the producer's, strict reading). */
const expectDocumented = (events: readonly BackupEvent[]) => {
  expect(events.length).toBeGreaterThan(0);
  for (const e of events) expect(() => parseEventDetail(e.detailType, e.detail, { strict: true })).not.toThrow();
};

/** The field table of each `### <detail-type>` section of docs/events.md: field name and whether it is required. */
function documentedFields(): Map<string, [string, boolean][]> {
  const out = new Map<string, [string, boolean][]>();
  for (const section of DOC.split(/^### /m).slice(1)) {
    const title = section.slice(0, section.indexOf('\n'));
    const rows = [...section.matchAll(/^\| `([^`]+)` \| [^|]*(?:\\\|[^|]*)* \| (yes|no) \|$/gm)].map((m): [string, boolean] => [m[1]!, m[2] === 'yes']);
    out.set(title, rows);
  }
  return out;
}

/** A schema's top-level fields and whether each is required. */
function schemaFields(schema: z.ZodType): [string, boolean][] {
  const shape = (schema as z.ZodObject).shape as Record<string, z.ZodType>;
  return Object.entries(shape).map(([k, v]) => [k, !(v instanceof z.ZodOptional)]);
}

describe('the documented events', () => {
  it('document every detail-type the code publishes, and publish every documented one', () => {
    const emitted = emittedDetailTypes();
    expect([...emitted.keys()].sort()).toEqual([...EVENT_DETAIL_TYPES].sort());
  });

  it('give each detail-type a section of docs/events.md, in the order of the schemas', () => {
    const sections = [...DOC.matchAll(/^### (.+)$/gm)].map((m) => m[1]!).filter((h) => h !== 'Changelog');
    expect(sections).toEqual(EVENT_DETAIL_TYPES);
    for (const t of EVENT_DETAIL_TYPES) expect(DOC).toContain(`| \`${t}\` |`);
  });

  it("list in each section's table exactly the fields of its schema, required as the schema says", () => {
    const documented = documentedFields();
    for (const t of EVENT_DETAIL_TYPES) expect([t, documented.get(t)]).toEqual([t, schemaFields(EVENT_CONTRACTS[t].schema)]);
  });

  it("show each detail-type's schema example as a whole event from source milvus-guard, with only documented fields", () => {
    const documented = documentedEvents();
    expect(documented.map((e) => e['detail-type'])).toEqual(EVENT_DETAIL_TYPES);
    for (const e of documented) {
      expect(e.source).toBe(EVENT_SOURCE);
      expect(e.detail).toEqual(EVENT_CONTRACTS[e['detail-type'] as keyof typeof EVENT_CONTRACTS].example);
      expect(parseEventDetail(e['detail-type'], e.detail, { strict: true })).toEqual(e.detail);
    }
  });

  it('state the schema version the page documents', () => {
    expect(DOC).toContain(`schema version | **${EVENT_SCHEMA_VERSION}**`);
    expect(DOC).toContain(`are **version ${EVENT_SCHEMA_VERSION}**`);
  });

  it('refuse a detail without a required field, naming the field', () => {
    const { sizeBytes: _gone, ...detail } = EVENT_CONTRACTS['Backup Available'].example;
    expect(() => parseEventDetail('Backup Available', detail)).toThrow(EventSchemaError);
    expect(() => parseEventDetail('Backup Available', detail)).toThrow(/"Backup Available" event does not match its documented schema \(docs\/events\.md, version 1\): sizeBytes:/);
  });

  it('refuse a detail-type that is not documented', () => {
    expect(() => parseEventDetail('Backup Exploded', {})).toThrow(/no such detail-type; documented: Backup Available, Backup Failed/);
  });

  it('accept fields they do not know when read as a consumer (additive changes within a version)', () => {
    expect(() => parseEventDetail('Retention Completed', { ...EVENT_CONTRACTS['Retention Completed'].example, newField: 1 })).not.toThrow();
  });

  it('refuse, read strictly as the producer, a field the schema does not document, naming it', () => {
    expect(() => parseEventDetail('Backup Available', { ...EVENT_CONTRACTS['Backup Available'].example, region: 'us-east-1' }, { strict: true })).toThrow(/"Backup Available" event does not match[^]*\(detail\): Unrecognized key: "region"/);
  });

  it('refuse, read strictly, an undocumented field inside a nested object or an array element', () => {
    const failover = EVENT_CONTRACTS['Failover Failed'].example as { failure: Record<string, unknown> };
    expect(() => parseEventDetail('Failover Failed', { ...failover, failure: { ...failover.failure, stack: 'at x' } }, { strict: true })).toThrow(/failure: Unrecognized key: "stack"/);
    expect(() => parseEventDetail('Retention Completed', { ...EVENT_CONTRACTS['Retention Completed'].example, skipped: [{ plan: 'p', reason: 'r', lockedBy: 'e' }] }, { strict: true })).toThrow(/skipped\.0: Unrecognized key: "lockedBy"/);
  });
});

describe('what the emitting steps publish', () => {
  const NOW = () => new Date('2026-11-23T02:30:00.000Z');

  it('"Backup Failed" from recordBackupFailed', async () => {
    const { events, publish } = recorder();
    const catalog = new InMemoryCatalog();
    await catalog.createBackup(backupRecord({ status: 'InProgress', completedAt: undefined }));
    await recordBackupFailed(
      { catalog, vault: new InMemoryVaultStore(), events: publish, now: NOW },
      { backupId: 'nightly-1', plan: 'milvus-production-backup', cluster: 'prod', namespace: 'vector-db', startedAt: '2026-11-23T02:00:00.000Z', executionId: backupRecord().executionId },
      undefined,
      { step: 'Snapshot', state: 'WaitForSnapshots' },
      'SnapshotTimeout',
      'VolumeSnapshot data-production-milvus-etcd-0 was not readyToUse within 600 s',
    );
    expect(events.map((e) => e.detailType)).toEqual(['Backup Failed']);
    expectDocumented(events);
  });

  it('"Restore Failed" from markRestoreFailedStep', async () => {
    const { events, publish } = recorder();
    const config = await loadConfigFile('examples/production.yaml');
    const catalog = new InMemoryCatalog();
    const r = restoreRecord({ status: 'InProgress', completedAt: undefined, rtoSeconds: undefined });
    await catalog.createRestore(r);
    await markRestoreFailedStep(
      { catalog, events: publish, now: NOW },
      { restoreId: r.restoreId, backupId: r.backupId, plan: r.plan, cleanupOnFailure: false, to: { cluster: config.clusters[0]!, namespace: 'vector-db-dr' } },
      { Error: 'ValidationFailed', Cause: 'default.product_embeddings: 19000 rows restored, 19726 expected' },
      {},
    );
    expect(events.map((e) => e.detailType)).toEqual(['Restore Failed']);
    expectDocumented(events);
  });

  it('"Drill Failed" from recordEvidenceStep when the restore never ran', async () => {
    const { events, publish } = recorder();
    await recordEvidenceStep(
      { catalog: new InMemoryCatalog(), vault: new InMemoryVaultStore(), events: publish, now: NOW },
      preparedDrill(),
      { restoreError: { Error: 'States.TaskFailed', Cause: JSON.stringify({ Error: 'BackupNotFound', Cause: 'backup nightly-1 is not in the catalog' }) } },
    );
    expect(events.map((e) => e.detailType)).toEqual(['Drill Failed']);
    expectDocumented(events);
  });

  it('"Failover Completed" and "Failover Failed" from recordFailoverStep', async () => {
    const config = await loadConfigFile('examples/production.yaml');
    const run = async (restored: boolean) => {
      const { events, publish } = recorder();
      const catalog = new InMemoryCatalog();
      await catalog.createBackup(backupRecord());
      await catalog.recordReplication({ backupId: 'nightly-1', region: 'us-west-2', plan: 'milvus-production-backup', executionId: 'CheckReplication', status: 'Complete', at: '2026-11-23T02:10:00.000Z', checkedAt: '2026-11-23T02:10:00.000Z', objects: 40, confirmed: 40 });
      const { failover } = await prepareFailoverStep(
        { config, catalog, region: 'us-west-2' },
        { input: { plan: 'milvus-production-backup', targetCluster: 'dr', targetNamespace: 'vector-db' }, execution: { id: 'arn:aws:states:us-west-2:123456789012:execution:milvus-guard-failover:f1', startTime: '2026-11-23T12:00:00.000Z' } },
      );
      if (restored) await catalog.createRestore(restoreRecord({ restoreId: failover.failoverId, targetCluster: 'dr', targetNamespace: 'vector-db' }));
      await recordFailoverStep({ catalog, events: publish, now: () => new Date('2026-11-23T12:10:00.000Z') }, failover, restored ? undefined : { Error: 'States.TaskFailed', Cause: JSON.stringify({ Error: 'TargetNamespaceNotEmpty', Cause: 'namespace vector-db holds 3 objects' }) });
      return events;
    };
    const completed = await run(true);
    const failed = await run(false);
    expect([...completed, ...failed].map((e) => e.detailType)).toEqual(['Failover Completed', 'Failover Failed']);
    expectDocumented([...completed, ...failed]);
  });
});

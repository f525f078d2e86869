import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import type { RowCount } from '../../core/catalog/record.js';
import { MilvusClient } from '../../core/milvus/client.js';
import type { MilvusAnswer, MilvusCall, MilvusTransport } from '../../core/milvus/transport.js';
import { checkValidation, VALIDATION_CONCURRENCY, validationFailure } from '../../core/restore/validate.js';
import { MilvusSimulator, readMilvusState, seedMilvusData } from '../../local/milvus/index.js';
import { tempVolumes, type TempVolumes } from '../local-milvus/helpers.js';

// Validation of a restored Milvus with many collections: the product's MilvusClient against the
// simulated Milvus, through a transport that counts the calls in flight.

const NOW = new Date('2026-11-23T02:05:00.000Z');
const COLLECTIONS = Array.from({ length: 9 }, (_, i) => ({ database: 'default', name: `c${i}`, dim: 4, rows: 40 + i }));

/** Hands each call to the simulator a turn of the event loop later, so calls made at once overlap. */
class CountingTransport implements MilvusTransport {
  inFlight = 0;
  mostInFlight = 0;
  constructor(private readonly sim: MilvusSimulator) {}
  async call(call: MilvusCall): Promise<MilvusAnswer> {
    this.inFlight++;
    this.mostInFlight = Math.max(this.mostInFlight, this.inFlight);
    try {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const res = await this.sim.handle({
        port: call.port === 'rest' ? 19530 : 9091,
        method: call.method,
        path: call.path,
        query: new URLSearchParams(Object.entries(call.query ?? {}).map(([k, v]): [string, string] => [k, String(v)])),
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(call.body ?? ''),
      });
      return { status: res.status, body: String(res.body) };
    } finally {
      this.inFlight--;
    }
  }
  async close(): Promise<void> {}
}

let v: TempVolumes;
let expected: RowCount[];

beforeAll(async () => {
  v = await tempVolumes();
  await seedMilvusData(v.volumes, { collections: COLLECTIONS });
  // What a backup of a flushed instance records: count(*) of every collection.
  const state = await readMilvusState(v.volumes);
  expected = state.collections.map((c) => ({ database: c.database, collection: c.name, rows: c.persistedRows + c.growingRows, confirmedBy: 'count' }));
});

afterAll(async () => {
  await v.cleanup();
});

function client(): { milvus: MilvusClient; transport: CountingTransport } {
  const transport = new CountingTransport(new MilvusSimulator({ volumes: async () => v.volumes, now: () => NOW }));
  return { milvus: new MilvusClient(new KubeConfig(), { namespace: 'restored', service: 'm-milvus', restPort: 19530, managementPort: 9091 }, transport), transport };
}

describe('validation of many collections', () => {
  it('checks several collections at once, never more than VALIDATION_CONCURRENCY', async () => {
    const { milvus, transport } = client();

    const result = await checkValidation(milvus, expected, { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });

    expect(result.progress.done).toBe(true);
    expect(validationFailure(result.checks!)).toBeUndefined();
    expect(transport.mostInFlight).toBeGreaterThan(1);
    expect(transport.mostInFlight).toBeLessThanOrEqual(VALIDATION_CONCURRENCY);
  });

  it('reports the checks in the order of the recorded row counts, each with its own counts', async () => {
    const { milvus } = client();
    const wrong = expected.map((e) => (e.collection === 'c5' ? { ...e, rows: e.rows + 1 } : e));

    const result = await checkValidation(milvus, wrong, { done: false, loading: [] }, { validateRowCounts: true, now: NOW, timeoutSeconds: 60 });

    expect(result.checks!.map((c) => c.collection)).toEqual(expected.map((e) => e.collection));
    expect(result.checks!.map((c) => c.restored)).toEqual(expected.map((e) => e.rows));
    expect(result.checks!.filter((c) => !c.ok).map((c) => c.collection)).toEqual(['c5']);
    expect(result.checks!.every((c) => (c.searchHits ?? 0) > 0)).toBe(true);
  });
});

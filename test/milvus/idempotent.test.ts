/**
 * Which Milvus calls may be sent twice when a kept-alive connection closes under them
 * (core/kube/request.ts): the reads and the calls whose repetition finds the state the first
 * made, never a call that adds something. The product's MilvusClient against the simulated
 * Milvus, through a transport that records what each call says of itself.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { IDEMPOTENT_METHODS } from '../../core/kube/request.js';
import { MilvusClient } from '../../core/milvus/client.js';
import type { MilvusAnswer, MilvusCall, MilvusTransport } from '../../core/milvus/transport.js';
import { MilvusSimulator, seedMilvusData } from '../../local/milvus/index.js';
import { simulatorAnswer, tempVolumes, type TempVolumes } from '../local-milvus/helpers.js';

const NOW = new Date('2026-11-23T02:05:00.000Z');

class RecordingTransport implements MilvusTransport {
  /** `<path> <idempotent>` of each call, in the order made. */
  readonly calls: string[] = [];
  constructor(private readonly sim: MilvusSimulator) {}
  async call(call: MilvusCall): Promise<MilvusAnswer> {
    // The transport's view: what the call says, else what its method says (kubeRequest's default).
    this.calls.push(`${call.path} ${call.idempotent ?? IDEMPOTENT_METHODS.has(call.method)}`);
    return await simulatorAnswer(this.sim, call);
  }
  async close(): Promise<void> {}
}

let v: TempVolumes;

beforeAll(async () => {
  v = await tempVolumes();
  await seedMilvusData(v.volumes, { collections: [{ database: 'default', name: 'docs', dim: 4, rows: 10 }] });
});

afterAll(async () => {
  await v.cleanup();
});

it('sends the reads, flush, persist, load and release again; a GC pause (another ticket each time) never', async () => {
  const transport = new RecordingTransport(new MilvusSimulator({ volumes: async () => v.volumes, now: () => NOW }));
  const milvus = new MilvusClient(new KubeConfig(), { namespace: 'm', service: 'm-milvus', restPort: 19530, managementPort: 9091 }, transport);

  await milvus.listDatabases();
  await milvus.listCollections('default');
  await milvus.describeVectorField('default', 'docs');
  await milvus.persistedRowCount('default', 'docs');
  await milvus.flush('default', 'docs');
  await milvus.load('default', 'docs');
  await milvus.loadState('default', 'docs');
  await milvus.countRows('default', 'docs');
  await milvus.search('default', 'docs', { vector: [0.1, 0.2, 0.3, 0.4], limit: 1 });
  await milvus.release('default', 'docs');
  const ticket = await milvus.persist('default', 'docs');
  await milvus.flushed('default', 'docs', ticket);
  const paused = await milvus.pauseGc(60);
  await milvus.resumeGc(paused.ticket);

  expect(transport.calls).toEqual([
    '/v2/vectordb/databases/list true',
    '/v2/vectordb/collections/list true',
    '/v2/vectordb/collections/describe true',
    '/v2/vectordb/collections/get_stats true',
    '/v2/vectordb/collections/flush true',
    '/v2/vectordb/collections/load true',
    '/v2/vectordb/collections/get_load_state true',
    '/v2/vectordb/entities/query true',
    '/v2/vectordb/entities/search true',
    '/v2/vectordb/collections/release true',
    '/api/v1/persist true',
    '/api/v1/persist/state true',
    '/management/datacoord/garbage_collection/pause false',
    '/management/datacoord/garbage_collection/resume true',
  ]);
});

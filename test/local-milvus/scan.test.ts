import { describe, expect, test } from '@jest/globals';
import { hash } from 'node:crypto';
import { makeScanner, scanRows, type ScanShare } from '../../local/milvus/scan.js';
import { metricValue, rowVector } from '../../local/milvus/search.js';

const scanner = makeScanner();

/** What `rowVector` seeds from: the first four little-endian words of SHA-256. */
function expected(message: string): number[] {
  const digest = hash('sha256', message, 'buffer');
  return [0, 4, 8, 12].map((at) => digest.readUInt32LE(at));
}

function words(message: string): number[] {
  const encoded = Buffer.from(message, 'utf8');
  const bytes = new Uint8Array(scanner.paddedLength(encoded.length));
  bytes.set(encoded);
  const out = new Uint32Array(4);
  scanner.seedWords(bytes, encoded.length, out);
  return Array.from(out);
}

/** Every key ranked by `metric`, ties by key, as a scan must answer. */
function ranked(collectionId: string, keys: bigint[], query: number[], metric: 'COSINE' | 'IP' | 'L2'): [bigint, number][] {
  return keys
    .map((pk) => ({ pk, distance: metricValue(metric, query, rowVector(collectionId, pk, query.length)) }))
    .sort((x, y) => (x.distance !== y.distance ? (metric === 'L2' ? x.distance - y.distance : y.distance - x.distance) : x.pk < y.pk ? -1 : 1))
    .map((h) => [h.pk, h.distance]);
}

describe('the seed of a row vector', () => {
  test('is the first words of crypto SHA-256 for messages of one, two and three blocks', () => {
    for (let length = 0; length <= 150; length++) {
      const message = Array.from({ length }, (_, i) => String.fromCharCode(33 + ((i * 7 + length) % 90))).join('');
      expect(words(message)).toEqual(expected(message));
    }
  });

  test('is the first words of crypto SHA-256 for collection id and key messages', () => {
    for (let pk = 456390711706932600n; pk < 456390711706932700n; pk++) {
      const message = `456390711705600600/${pk}`;
      expect(words(message)).toEqual(expected(message));
    }
  });
});

describe('scanRows', () => {
  // 99_999_990…100_000_009 carries into a ninth digit; the second run has deletions; -3…2 crosses zero.
  const collectionId = '456390711705600600';
  const share = (limit: number, metric: 'COSINE' | 'IP' | 'L2', query: number[]): ScanShare => ({
    collectionId,
    query,
    limit,
    metric,
    runs: [
      { first: 99_999_990n, from: 0, to: 20, deletedOffsets: [] },
      { first: 456390711706932590n, from: 0, to: 40, deletedOffsets: [0, 9, 10, 39] },
      { first: -3n, from: 0, to: 6, deletedOffsets: [] },
    ],
    listed: [5n, 42n, 1_000_000n],
  });
  const keys = [
    ...Array.from({ length: 20 }, (_, i) => 99_999_990n + BigInt(i)),
    ...Array.from({ length: 40 }, (_, i) => i).filter((i) => ![0, 9, 10, 39].includes(i)).map((i) => 456390711706932590n + BigInt(i)),
    ...Array.from({ length: 6 }, (_, i) => BigInt(i - 3)),
    5n,
    42n,
    1_000_000n,
  ];
  const query = Array.from(rowVector(collectionId, 99_999_999n, 8));

  test('answers as ranking every key, across digit carries, deleted rows, negative and listed keys, in parts of any size', async () => {
    for (const metric of ['COSINE', 'IP', 'L2'] as const) {
      const all = ranked(collectionId, keys, query, metric);
      for (const limit of [1, 5, 65, 100]) {
        for (const rowsPerTurn of [1, 7, 1000]) {
          const hits = await scanRows(share(limit, metric, query), { rowsPerTurn, workerThreshold: Number.POSITIVE_INFINITY });
          expect(hits.map((h) => [h.pk, h.distance])).toEqual(all.slice(0, limit));
        }
      }
    }
  });

  test('answers the same on worker threads, the rows split between them', async () => {
    for (const metric of ['COSINE', 'L2'] as const) {
      const here = await scanRows(share(10, metric, query), { rowsPerTurn: 1000, workerThreshold: Number.POSITIVE_INFINITY });
      const onWorkers = await scanRows(share(10, metric, query), { rowsPerTurn: 1000, workerThreshold: 0, workers: 2 });
      expect(onWorkers).toEqual(here);
    }
  });

  test('scores a key whose message needs a second SHA-256 block as rowVector does', async () => {
    const longId = '9'.repeat(60);
    const q = [0.5, -0.25, 1, 0];
    const hits = await scanRows({ collectionId: longId, query: q, limit: 4, metric: 'IP', runs: [{ first: 1n, from: 0, to: 3, deletedOffsets: [] }], listed: [456390711706932590n] }, { rowsPerTurn: 2 });
    expect(hits.map((h) => [h.pk, h.distance])).toEqual(ranked(longId, [1n, 2n, 3n, 456390711706932590n], q, 'IP'));
  });
});

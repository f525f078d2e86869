import { describe, expect, test } from '@jest/globals';
import { hash } from 'node:crypto';
import { MAX_ONE_BLOCK_MESSAGE, sha256SeedWords } from '../../local/milvus/row-seed.js';

/** What `rowVector` seeds from: the first four little-endian words of SHA-256. */
function expected(message: string): number[] {
  const digest = hash('sha256', message, 'buffer');
  return [0, 4, 8, 12].map((at) => digest.readUInt32LE(at));
}

function words(message: string): number[] {
  const bytes = new Uint8Array(64);
  const encoded = Buffer.from(message, 'utf8');
  bytes.set(encoded);
  const out = new Uint32Array(4);
  sha256SeedWords(bytes, encoded.length, out);
  return Array.from(out);
}

describe('sha256SeedWords', () => {
  test('gives the words of crypto SHA-256 for every message length that fits one block', () => {
    for (let length = 0; length <= MAX_ONE_BLOCK_MESSAGE; length++) {
      const message = Array.from({ length }, (_, i) => String.fromCharCode(33 + ((i * 7 + length) % 90))).join('');
      expect(words(message)).toEqual(expected(message));
    }
  });

  test('gives the words of crypto SHA-256 for collection id and key messages, as a scan writes them', () => {
    for (let pk = 456390711706932600n; pk < 456390711706932700n; pk++) {
      const message = `456390711705600600/${pk}`;
      expect(words(message)).toEqual(expected(message));
    }
  });

  test('refuses a message longer than one block holds', () => {
    expect(() => sha256SeedWords(new Uint8Array(64), MAX_ONE_BLOCK_MESSAGE + 1, new Uint32Array(4))).toThrow(RangeError);
  });
});

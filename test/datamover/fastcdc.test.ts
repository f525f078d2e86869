import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { chunkLengths, chunkMasks, DEFAULT_CHUNKER, fastcdcCut, GEAR, warmFastcdc } from '../../core/datamover/fastcdc.js';
import { Rng, SMALL_CHUNKS } from './helpers.js';

const digests = (data: Buffer, lengths: number[]): string[] => {
  let pos = 0;
  return lengths.map((n) => createHash('sha256').update(data.subarray(pos, (pos += n))).digest('hex'));
};

describe('FastCDC chunking', () => {
  it('cuts the same data at the same places every time', () => {
    const data = new Rng('det').bytes(300_000);

    expect(chunkLengths(data, SMALL_CHUNKS)).toEqual(chunkLengths(Buffer.from(data), SMALL_CHUNKS));
  });

  it('keeps every chunk between the minimum and maximum size, except a short tail', () => {
    const data = new Rng('sizes').bytes(2_000_000);

    const lengths = chunkLengths(data, SMALL_CHUNKS);

    expect(lengths.reduce((a, b) => a + b, 0)).toBe(data.length);
    lengths.slice(0, -1).forEach((n) => {
      expect(n).toBeGreaterThanOrEqual(SMALL_CHUNKS.minSize);
      expect(n).toBeLessThanOrEqual(SMALL_CHUNKS.maxSize);
    });
  });

  it('averages close to the configured average on random data', () => {
    const data = new Rng('avg').bytes(4_000_000);

    const lengths = chunkLengths(data, SMALL_CHUNKS);

    const mean = data.length / lengths.length;
    expect(mean).toBeGreaterThan(SMALL_CHUNKS.avgSize * 0.7);
    expect(mean).toBeLessThan(SMALL_CHUNKS.avgSize * 1.6);
  });

  it('finds the same chunks after bytes are inserted at the front (shift resilience)', () => {
    const data = new Rng('shift').bytes(1_000_000);
    const shifted = Buffer.concat([Buffer.from('seventeen bytes!!'), data]);

    const before = new Set(digests(data, chunkLengths(data, SMALL_CHUNKS)));
    const after = digests(shifted, chunkLengths(shifted, SMALL_CHUNKS));

    const shared = after.filter((d) => before.has(d)).length;
    expect(shared).toBeGreaterThan(after.length - 3);
  });

  it('cuts a buffer shorter than the minimum as one chunk, and an empty one as none', () => {
    expect(chunkLengths(Buffer.alloc(100), DEFAULT_CHUNKER)).toEqual([100]);
    expect(chunkLengths(Buffer.alloc(0), DEFAULT_CHUNKER)).toEqual([]);
  });

  it('cuts data without content-defined boundaries (zeros) at the maximum size', () => {
    expect(chunkLengths(Buffer.alloc(40_000), SMALL_CHUNKS)).toEqual([16384, 16384, 7232]);
  });

  it('never moves its boundaries: gear table and cut points are a storage format', () => {
    // If this fails, new backups would stop deduplicating against every existing backup.
    expect([GEAR[0], GEAR[1], GEAR[255]]).toEqual([2158572191, expect.any(Number), 3046010040]);
    expect(chunkLengths(new Rng('pin').bytes(60_000), SMALL_CHUNKS)).toEqual([4801, 4819, 5110, 6550, 4476, 8165, 3808, 6138, 4404, 1773, 4201, 5755]);
  });

  it('cuts exactly where the plain byte-by-byte loop does, at every offset and length (the loop is unrolled)', () => {
    // The definition of the cut, one byte per step: what the unrolled loop must reproduce.
    const reference = (buf: Uint8Array, start: number, end: number, p: typeof SMALL_CHUNKS): number => {
      const { maskS, maskL } = chunkMasks(p.avgSize);
      let n = end - start;
      if (n <= p.minSize) return n;
      if (n > p.maxSize) n = p.maxSize;
      let h = 0;
      for (let i = start + p.minSize; i < start + n; i++) {
        h = ((h << 1) + GEAR[buf[i]!]!) | 0;
        if ((h & (i - start < p.avgSize ? maskS : maskL)) === 0) return i - start + 1;
      }
      return n;
    };
    const { maskS, maskL } = chunkMasks(SMALL_CHUNKS.avgSize);
    const rng = new Rng('unrolled');
    const data = rng.bytes(200_000);
    const cuts = new Set<number>();
    for (let k = 0; k < 400; k++) {
      const start = rng.int(100_000);
      const end = start + 1 + rng.int(40_000);
      const expected = reference(data, start, end, SMALL_CHUNKS);
      expect(fastcdcCut(data, start, end, GEAR, SMALL_CHUNKS.minSize, SMALL_CHUNKS.avgSize, SMALL_CHUNKS.maxSize, maskS, maskL)).toBe(expected);
      cuts.add(expected % 8);
    }
    // Cuts landed at every position within the unrolled groups of eight.
    expect(cuts.size).toBe(8);
  });

  it('uses normalized masks with two more and two fewer bits than the average', () => {
    const { maskS, maskL } = chunkMasks(1 << 20);

    expect((maskS >>> 0).toString(2).replace(/0/g, '').length).toBe(22);
    expect((maskL >>> 0).toString(2).replace(/0/g, '').length).toBe(18);
  });

  it('warms up by cutting at every exit of the unrolled loops, with the masks of a 64-byte average', () => {
    // Where each call of the warm-up cut (min 5, avg 64, max 256), named after the loop and
    // the unrolled step that found it, or 'no-cut' when it found none and returned the length;
    // fastcdcCut's code has one exit for each.
    const { data, calls } = warmFastcdc(fastcdcCut, GEAR);
    const { maskS, maskL } = chunkMasks(64);
    const site = ([start, end, len]: [number, number, number]): string => {
      const n = Math.min(end - start, 256);
      if (end - start <= 5) return 'short';
      const normal = start + Math.min(n, 64);
      const stop = start + n;
      const at = start + len - 1; // the byte whose hash matched the mask, if one did
      const first = start + 5;
      let h = 0;
      for (let i = first; i <= at; i++) h = ((h << 1) + GEAR[data[i]!]!) | 0;
      if ((h & (at < normal ? maskS : maskL)) !== 0) return 'no-cut';
      const unrolled1 = first + 8 * Math.floor((normal - first) / 8);
      if (at < unrolled1) return `before-average-${(at - first) % 8}`;
      if (at < normal) return 'before-average-tail';
      const unrolled2 = normal + 8 * Math.floor((stop - normal) / 8);
      return at < unrolled2 ? `after-average-${(at - normal) % 8}` : 'after-average-tail';
    };

    expect(chunkMasks(64)).toEqual({ maskS: ~(2 ** 24 - 1) | 0, maskL: ~(2 ** 28 - 1) | 0 });
    const sites = new Set(calls.map(site));
    const expected = ['short', 'no-cut', 'before-average-tail', 'after-average-tail'];
    for (let k = 0; k < 8; k++) expected.push(`before-average-${k}`, `after-average-${k}`);
    expect([...sites].sort()).toEqual(expected.sort());
  });

  it('rejects an average size that is not a power of two', () => {
    expect(() => chunkMasks(3000)).toThrow(/power of two/);
  });
});

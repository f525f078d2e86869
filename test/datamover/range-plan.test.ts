/**
 * The restore's read plan (restore.ts planRanges): a backup packs the chunks of files it chunks
 * at once as they come, so neighbouring files sit in a pack out of index order. The plan reads
 * touching chunks together whatever their index order, as long as every file still gets its
 * chunks in order; otherwise it falls back to merging only chunks consecutive in the index.
 */
import { describe, expect, it } from '@jest/globals';
import { planRanges, type FileState, type RangePlan } from '../../core/datamover/restore.js';

/** A file of the batch with chunks at [pack, offset, length] (only what the planner reads). */
function file(id: number, ...chunks: [string, number, number][]): FileState {
  const entry = { chunks: chunks.map(([pack, offset, length], i) => ({ pack, offset, length, hash: `${id}-${i}` })) };
  return { id, file: { entry } } as unknown as FileState;
}

/** Each range as pack@offset+length: file-id/first-chunk×count (last marked !). */
const show = (ranges: RangePlan[]): string[] =>
  ranges.map((r) => `${r.pack}@${r.offset}+${r.length}: ${r.pieces.map((p) => `${p.file.id}/${p.first}x${p.count}${p.last ? '!' : ''}@${p.offset}>${p.position}`).join(' ')}`);

describe('the restore read plan', () => {
  it('reads files packed out of index order in one range', () => {
    // Index order a, b, c; in pack P they sit b, c, a.
    const plan = planRanges([file(1, ['P', 200, 100]), file(2, ['P', 0, 150]), file(3, ['P', 150, 50])]);
    expect(show(plan)).toEqual(['P@0+300: 2/0x1!@0>0 3/0x1!@150>0 1/0x1!@200>0']);
  });

  it('keeps a file of several chunks in order, across ranges, by the first chunk each range holds', () => {
    // File 1: chunk 0 in Q, chunk 1 in P after file 2's chunk; file 2 alone in P before it.
    const plan = planRanges([file(1, ['Q', 0, 10], ['P', 40, 20]), file(2, ['P', 0, 40])]);
    expect(show(plan)).toEqual(['Q@0+10: 1/0x1@0>0', 'P@0+60: 2/0x1!@0>0 1/1x1!@40>10']);
  });

  it('falls back to index order when no order of the merged ranges gives each file its chunks in order', () => {
    // File 1: chunk 0 in Q, chunk 1 in P; file 2: chunk 0 in P, chunk 1 in Q. Merged by pack,
    // file 1 needs Q before P and file 2 P before Q.
    const files = [file(1, ['Q', 0, 10], ['P', 0, 10]), file(2, ['P', 10, 10], ['Q', 10, 10])];
    expect(show(planRanges(files))).toEqual(['Q@0+10: 1/0x1@0>0', 'P@0+20: 1/1x1!@0>10 2/0x1@10>0', 'Q@10+10: 2/1x1!@0>10']);
  });

  it('never reads more than 8 MiB at once', () => {
    const MiB = 1024 * 1024;
    const files = Array.from({ length: 6 }, (_, i) => file(i + 1, ['P', (5 - i) * 3 * MiB, 3 * MiB]));
    const plan = planRanges(files);
    expect(plan.every((r) => r.length <= 8 * MiB)).toBe(true);
    expect(plan).toHaveLength(3);
  });
});

/**
 * Reads chunks back from the vault and checks each one's SHA-256 before anyone uses it.
 * Neighbouring chunks of one pack (a file written in one go lands contiguously in a pack)
 * are fetched with a single ranged read, and a few reads run ahead of the consumer.
 */
import { createHash } from 'node:crypto';
import { packKey } from '../vault/layout.js';
import { ObjectNotFoundError, ShortReadError, type VaultStore } from '../vault/store.js';
import type { ChunkRef } from './index-format.js';

/** A chunk that is missing or whose bytes do not hash to its id. */
export class ChunkError extends Error {
  readonly ref: ChunkRef;
  readonly kind: 'missing' | 'mismatch';
  constructor(ref: ChunkRef, kind: 'missing' | 'mismatch', detail: string) {
    super(kind === 'missing' ? `chunk ${ref.hash} is missing: ${detail}` : `chunk ${ref.hash} in ${packKey(ref.pack)} at ${ref.offset} does not match its hash (${detail})`);
    this.name = 'ChunkError';
    this.ref = ref;
    this.kind = kind;
  }
}

// Bounds memory: a reader holds at most readAhead ranges of this size.
const MAX_RANGE = 8 * 1024 * 1024;

/** Consecutive references that one ranged read serves. */
function groupRefs(refs: readonly ChunkRef[]): ChunkRef[][] {
  const groups: ChunkRef[][] = [];
  let group: ChunkRef[] = [];
  let end = -1;
  let size = 0;
  for (const ref of refs) {
    const prev = group[group.length - 1];
    if (prev && prev.pack === ref.pack && ref.offset === end && size + ref.length <= MAX_RANGE) {
      group.push(ref);
    } else {
      if (group.length > 0) groups.push(group);
      group = [ref];
      size = 0;
    }
    end = ref.offset + ref.length;
    size += ref.length;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** Hashes chunks laid back to back, possibly on other threads (`ChunkerPool.hashChunks`). */
export type ChunkHasher = (data: Buffer, lengths: readonly number[]) => Promise<{ data: Buffer; hashes: string[] }>;

/** Hashing on the calling thread. */
export const hashHere: ChunkHasher = async (data, lengths) => {
  let pos = 0;
  return { data, hashes: lengths.map((n) => createHash('sha256').update(data.subarray(pos, (pos += n))).digest('hex')) };
};

async function fetchGroup(vault: VaultStore, group: ChunkRef[], hasher: ChunkHasher): Promise<Buffer[]> {
  const first = group[0]!;
  const last = group[group.length - 1]!;
  let data: Buffer;
  try {
    data = await vault.getRange(packKey(first.pack), first.offset, last.offset + last.length - first.offset);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new ChunkError(first, 'missing', `pack ${packKey(first.pack)} does not exist`);
    if (err instanceof ShortReadError) throw new ChunkError(first, 'missing', err.message);
    throw err;
  }
  const hashed = await hasher(data, group.map((r) => r.length));
  return group.map((ref, i) => {
    const actual = hashed.hashes[i]!;
    if (actual !== ref.hash) throw new ChunkError(ref, 'mismatch', `got ${actual}`);
    return hashed.data.subarray(ref.offset - first.offset, ref.offset - first.offset + ref.length);
  });
}

/**
 * Yields the verified bytes of each reference in order, keeping up to `readAhead` ranged
 * reads in flight and hashing with `hasher`. Throws `ChunkError` at the first missing or damaged chunk.
 */
export async function* readChunks(vault: VaultStore, refs: readonly ChunkRef[], hasher: ChunkHasher = hashHere, readAhead = 2): AsyncIterable<Buffer> {
  for await (const run of readChunkRuns(vault, refs, hasher, readAhead)) yield* run;
}

/**
 * Like `readChunks`, but yields the verified chunks of one ranged read together, so a writer
 * can write them with one call.
 */
export async function* readChunkRuns(vault: VaultStore, refs: readonly ChunkRef[], hasher: ChunkHasher = hashHere, readAhead = 2): AsyncIterable<Buffer[]> {
  const groups = groupRefs(refs);
  const inflight: Promise<Buffer[]>[] = [];
  let next = 0;
  const fill = (): void => {
    while (inflight.length < readAhead && next < groups.length) {
      const p = fetchGroup(vault, groups[next++]!, hasher);
      p.catch(() => {}); // awaited in order below
      inflight.push(p);
    }
  };
  try {
    fill();
    while (inflight.length > 0) {
      const buffers = await inflight.shift()!;
      fill();
      yield buffers;
    }
  } finally {
    await Promise.allSettled(inflight);
  }
}

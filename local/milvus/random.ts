/**
 * Deterministic pseudo-random bytes for seeding. The generator is AES-256-CTR over zeros,
 * keyed by SHA-256 of the seed and a label: node:crypto does the work (fast, well kept), the
 * output is incompressible like real embeddings, and every label gets its own independent
 * stream, so adding a collection or an object never shifts the bytes of another one.
 */
import { createCipheriv, createHash } from 'node:crypto';

const ZERO_IV = Buffer.alloc(16);

/** A reproducible stream of bytes and small integers for one `(seed, label)` pair. */
export class DeterministicRandom {
  private readonly cipher;

  constructor(seed: number | string, label: string) {
    const key = createHash('sha256').update(`milvus-sim/${seed}/${label}`).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, ZERO_IV);
  }

  /** The next `length` bytes of the stream. */
  bytes(length: number): Buffer {
    return this.cipher.update(Buffer.alloc(length));
  }

  /** A uniform integer in `[0, bound)`; `bound` must be at most 2^32. */
  int(bound: number): number {
    return Math.floor((this.bytes(4).readUInt32BE(0) / 0x1_0000_0000) * bound);
  }

  /** An integer in `[min, max]`. */
  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** A random-looking but reproducible RFC 4122 version-4 UUID. */
  uuid(): string {
    const b = this.bytes(16);
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    const h = b.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
}

/** `length` incompressible bytes that depend only on `(seed, label)`. */
export function deterministicBytes(seed: number | string, label: string, length: number): Buffer {
  return new DeterministicRandom(seed, label).bytes(length);
}

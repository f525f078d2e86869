/**
 * The seed of a row's regenerated embedding (search.ts `rowVector`): the first 16 bytes of
 * SHA-256 of `<collection id>/<primary key>`, as four little-endian 32-bit words. A search scans
 * every row of a collection, so this is SHA-256's compression of the one 64-byte block such a
 * short message fills (FIPS 180-4, §5.1.1 padding and §6.2.2), in plain 32-bit arithmetic: the
 * same words as `crypto.hash('sha256', …)` gives (the tests compare them), without a native
 * call, a string and a Buffer per row. Longer messages do not fit one block; callers use
 * `crypto.hash` for them ({@link MAX_ONE_BLOCK_MESSAGE}).
 */

/** A message of at most this many bytes is padded into one block (8 bytes of length, 1 of 0x80). */
export const MAX_ONE_BLOCK_MESSAGE = 55;

const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74,
  0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d,
  0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e,
  0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
  0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const H0 = 0x6a09e667 | 0;
const H1 = 0xbb67ae85 | 0;
const H2 = 0x3c6ef372 | 0;
const H3 = 0xa54ff53a | 0;
const H4 = 0x510e527f | 0;
const H5 = 0x9b05688c | 0;
const H6 = 0x1f83d9ab | 0;
const H7 = 0x5be0cd19 | 0;

const W = new Int32Array(64);

const bswap = (x: number): number => ((x >>> 24) | ((x >>> 8) & 0xff00) | ((x << 8) & 0xff0000) | (x << 24)) >>> 0;

/**
 * Writes into `out[0..3]` the words `digest.readUInt32LE(0, 4, 8, 12)` of SHA-256 of
 * `message[0..length)`, for `length` ≤ {@link MAX_ONE_BLOCK_MESSAGE}. `message` must hold 64
 * bytes; the bytes from `length` on are overwritten with the padding.
 */
export function sha256SeedWords(message: Uint8Array, length: number, out: Uint32Array): void {
  if (length > MAX_ONE_BLOCK_MESSAGE) throw new RangeError(`a one-block SHA-256 message has at most ${MAX_ONE_BLOCK_MESSAGE} bytes, got ${length}`);
  message[length] = 0x80;
  message.fill(0, length + 1, 60);
  const bits = length * 8;
  message[60] = bits >>> 24;
  message[61] = (bits >>> 16) & 0xff;
  message[62] = (bits >>> 8) & 0xff;
  message[63] = bits & 0xff;
  for (let t = 0; t < 16; t++) {
    const i = t * 4;
    W[t] = (message[i]! << 24) | (message[i + 1]! << 16) | (message[i + 2]! << 8) | message[i + 3]!;
  }
  for (let t = 16; t < 64; t++) {
    const x = W[t - 15]!;
    const y = W[t - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[t] = (W[t - 16]! + s0 + W[t - 7]! + s1) | 0;
  }
  let a = H0;
  let b = H1;
  let c = H2;
  let d = H3;
  let e = H4;
  let f = H5;
  let g = H6;
  let h = H7;
  for (let t = 0; t < 64; t++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[t]! + W[t]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  out[0] = bswap((H0 + a) | 0);
  out[1] = bswap((H1 + b) | 0);
  out[2] = bswap((H2 + c) | 0);
  out[3] = bswap((H3 + d) | 0);
}

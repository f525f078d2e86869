import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { comparePaths, displayPath, IndexCorruptError, IndexReader, IndexReadError, IndexWriter, type IndexEntry } from '../../core/datamover/index-format.js';
import { TRANSIENT_ERROR_NAMES } from '../../core/errors.js';
import { tempDir } from './helpers.js';

const entry = (path: string | Buffer, extra: Partial<IndexEntry> = {}): IndexEntry => ({
  path: Buffer.isBuffer(path) ? path : Buffer.from(path),
  type: 'file',
  mode: 0o644,
  uid: 1000,
  gid: 1000,
  mtimeNs: 1_700_000_000_123_456_789n,
  size: 0,
  ...extra,
});

const readerOf = (lines: string[]): IndexReader => new IndexReader(Readable.from([gzipSync(`${lines.join('\n')}\n`)]), 'test index');
const HEADER = JSON.stringify({ format: 'milvus-guard/volume-index', version: 1, volume: 'v', backupId: 'b', chunker: 'x' });

describe('volume index format', () => {
  it('orders paths the way a depth-first walk visits them', () => {
    const paths = ['a-c', 'a/b', 'a', '', 'a/b/c', 'ab'].map((p) => Buffer.from(p));

    const sorted = [...paths].sort(comparePaths).map(String);

    expect(sorted).toEqual(['', 'a', 'a/b', 'a/b/c', 'a-c', 'ab']);
  });

  it('round-trips paths and symlink targets with newlines and bytes that are not UTF-8', async () => {
    const dir = await tempDir('index');
    const file = join(dir, 'index.jsonl.gz');
    const entries = [
      entry(''),
      entry(Buffer.from([0x0a, 0xff, 0x00 + 0x41])),
      entry('dir\nwith newline', { type: 'dir' }),
      entry('link', { type: 'symlink', target: Buffer.from([0xc3, 0x28, 0x0a]), size: 3 }),
      entry('z', { size: 10, chunks: [{ hash: 'ab'.repeat(32), pack: 'cd'.repeat(16), offset: 5, length: 10 }] }),
    ];
    const writer = new IndexWriter(file, { volume: 'v', backupId: 'b', chunker: 'x' });
    for (const e of entries) await writer.write(e);
    await writer.close();

    const reader = new IndexReader(Readable.from([await readFile(file)]), 'test');
    const back: IndexEntry[] = [];
    for await (const e of reader.entries()) back.push(e);

    expect(back).toEqual(entries);
  });

  it('writes an index of many entries, batched, whose commitment matches the file written', async () => {
    const file = join(await tempDir('batched'), 'index.jsonl.gz');
    // Far more than one batch of lines (each line is ~200 characters): the last, partial batch must reach the file too.
    const entries = Array.from({ length: 3000 }, (_, i) => entry(`f${String(i).padStart(5, '0')}`, { size: i, chunks: [{ hash: 'ab'.repeat(32), pack: 'cd'.repeat(16), offset: i, length: i }] }));
    const writer = new IndexWriter(file, { volume: 'v', backupId: 'b', chunker: 'x' });
    for (const e of entries) await writer.write(e);
    await writer.close();

    const bytes = await readFile(file);
    const reader = new IndexReader(Readable.from([bytes]), 'test');
    const back: IndexEntry[] = [];
    for await (const e of reader.entries()) back.push(e);
    expect(back).toEqual(entries);
    expect(writer.commitment()).toEqual({ sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, entries: 3000, files: 3000, bytes: (2999 * 3000) / 2 });
  });

  it('refuses to write entries out of order', async () => {
    const writer = new IndexWriter(join(await tempDir('order'), 'i.gz'), { volume: 'v', backupId: 'b', chunker: 'x' });
    await writer.write(entry('b'));

    await expect(writer.write(entry('a'))).rejects.toThrow(/out of order/);
    await writer.close();
  });

  it('rejects an index whose entries are out of order', async () => {
    const reader = readerOf([HEADER, JSON.stringify({ p: 'Yg==', t: 'f', m: 420, mt: '1', s: 0 }), JSON.stringify({ p: 'YQ==', t: 'f', m: 420, mt: '1', s: 0 })]);

    await expect(reader.next()).resolves.toBeDefined();
    await expect(reader.next()).rejects.toThrow(IndexCorruptError);
  });

  it('closes its source when the object turns out damaged, and when closed early', async () => {
    // A damaged object: gzip of a header and entries whose CRC (in the trailer) is wrong, so
    // every line decodes and gunzip fails at the end.
    const gz = gzipSync(`${[HEADER, ...Array.from({ length: 2000 }, (_, i) => JSON.stringify({ p: Buffer.from(`f${String(i).padStart(5, '0')}`).toString('base64'), t: 'f', m: 420, mt: '1', s: 0 }))].join('\n')}\n`);
    gz[gz.length - 8]! ^= 0x01;
    // A source that has not ended (a large object still downloading) when gunzip fails.
    const damagedSource = new Readable({ read() {} });
    damagedSource.push(gz);
    const damaged = new IndexReader(damagedSource, 'test index');
    await expect((async () => {
      while ((await damaged.next()) !== undefined);
    })()).rejects.toThrow(/cannot read it \(incorrect data check\)/);
    expect(damagedSource.destroyed).toBe(true);
    // Closing the source after gunzip failed is not taken for a read cut short.
    await expect(damaged.digest()).rejects.toThrow(IndexCorruptError);

    const source = new Readable({ read() {} });
    source.push(gzipSync(`${HEADER}\n`));
    const early = new IndexReader(source, 'test index');
    await early.readHeader();
    await early.close();
    expect(source.destroyed).toBe(true);
  });

  it('lets go of a truncated index it stopped reading early without an error nobody handles', async () => {
    // What the robustness run (seed 13, S3 vault) crashed on: a reader closed after a few lines
    // of a short object that had already arrived whole; gunzip then reached its end, failed
    // ("unexpected end of file"), and readline re-emitted that on its interface, where the
    // closed iterator no longer listened: an uncaught exception that killed the process.
    const whole = gzipSync(`${[HEADER, ...Array.from({ length: 20000 }, (_, i) => JSON.stringify({ p: Buffer.from(`f${String(i).padStart(6, '0')}`).toString('base64'), t: 'f', m: 420, mt: '1', s: 0 }))].join('\n')}\n`);
    const source = Readable.from([whole.subarray(0, whole.length - 100)]);
    let gunzip: NodeJS.EventEmitter | undefined;
    const pipe = source.pipe.bind(source);
    source.pipe = ((destination: NodeJS.WritableStream) => {
      gunzip = destination;
      return pipe(destination);
    }) as typeof source.pipe;
    const reader = new IndexReader(source, 'test index');
    await reader.next();
    await reader.close();

    // Closing stops the decompression too, so nothing is left to fail; and whatever gunzip does
    // after, it closes without an error reaching the process (events.once would reject on an
    // 'error': only the close is awaited).
    expect((gunzip as unknown as { destroyed: boolean }).destroyed).toBe(true);
    await new Promise((resolve) => gunzip!.on('close', resolve));
  });

  it('fails, instead of waiting for ever, when its stream closes before its end without an error', async () => {
    const source = new Readable({ read() {} });
    source.push(gzipSync(`${HEADER}\n${JSON.stringify({ p: '', t: 'd', m: 493, mt: '1', s: 0 })}\n`).subarray(0, 30));
    const reader = new IndexReader(source, 'test index');
    const next = reader.readHeader();
    source.destroy();

    // Not damage: the index may be whole, and the workflows retry the read by the error's name.
    const error = await next.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IndexReadError);
    expect(error).toMatchObject({ name: 'VaultReadInterrupted', message: expect.stringMatching(/^test index: reading it failed \(its stream closed before its end\); that is a failure of the read, not known damage/) });
    await expect(reader.digest()).rejects.toThrow(IndexReadError);
  });

  it('tells a stream that fails midway (a reset connection) from a damaged index', async () => {
    const whole = gzipSync(`${[HEADER, ...Array.from({ length: 2000 }, (_, i) => JSON.stringify({ p: Buffer.from(`f${String(i).padStart(5, '0')}`).toString('base64'), t: 'f', m: 420, mt: '1', s: 0 }))].join('\n')}\n`);
    const source = new Readable({ read() {} });
    source.push(whole.subarray(0, whole.length / 2));
    const reader = new IndexReader(source, 'test index');
    await reader.next();
    source.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));

    const error = await (async () => {
      while ((await reader.next()) !== undefined);
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IndexReadError);
    expect((error as Error).message).toBe('test index: reading it failed (read ECONNRESET); that is a failure of the read, not known damage to the index: try again');
    expect(TRANSIENT_ERROR_NAMES).toContain((error as Error).name);
    await expect(reader.digest()).rejects.toThrow(IndexReadError);
  });

  it('calls an object that ends cleanly but short, or whose bytes fail the store checksum, damaged', async () => {
    const whole = gzipSync(`${[HEADER, ...Array.from({ length: 2000 }, (_, i) => JSON.stringify({ p: Buffer.from(`f${String(i).padStart(5, '0')}`).toString('base64'), t: 'f', m: 420, mt: '1', s: 0 }))].join('\n')}\n`);
    const readAll = async (reader: IndexReader): Promise<unknown> =>
      (async () => {
        while ((await reader.next()) !== undefined);
      })().catch((e: unknown) => e);
    // Truncated where it is stored: the stream ends, gunzip finds the end missing.
    const truncated = new IndexReader(Readable.from([whole.subarray(0, whole.length / 2)]), 'test index');
    // The SDK's ChecksumStream fails the body at its end when it does not match S3's checksum.
    const source = new Readable({ read() {} });
    source.push(whole.subarray(0, whole.length / 2));
    const mismatched = new IndexReader(source, 'test index');
    await mismatched.next();
    source.destroy(new Error('Checksum mismatch: expected "abc=" but received "xyz=" in response header "x-amz-checksum-crc32".'));

    expect(await readAll(truncated)).toBeInstanceOf(IndexCorruptError);
    const error = await readAll(mismatched);
    expect(error).toBeInstanceOf(IndexCorruptError);
    expect((error as Error).message).toMatch(/^test index: cannot read it \(Checksum mismatch: /);
    await expect(mismatched.digest()).rejects.toThrow(IndexCorruptError);
  });

  it('passes a failure of its stream that is neither a cut nor an I/O error on as it is: not ours to name', async () => {
    const source = new Readable({ read() {} });
    const reader = new IndexReader(source, 'test index');
    const bug = new TypeError('cannot read properties of undefined');
    const next = reader.readHeader().catch((e: unknown) => e);
    source.destroy(bug);

    expect(await next).toBe(bug);
    // An I/O error of the store (an errno code) is a failure of the read; Node's own ERR_ codes are not.
    const ioSource = new Readable({ read() {} });
    const io = new IndexReader(ioSource, 'test index').readHeader().catch((e: unknown) => e);
    ioSource.destroy(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
    const internalSource = new Readable({ read() {} });
    const internalError = Object.assign(new Error('invalid argument'), { code: 'ERR_INVALID_ARG_TYPE' });
    const internal = new IndexReader(internalSource, 'test index').readHeader().catch((e: unknown) => e);
    internalSource.destroy(internalError);
    expect(await io).toBeInstanceOf(IndexReadError);
    expect(await internal).toBe(internalError);
  });

  it('lets go of its object and settles digest() when a line does not decode', async () => {
    // The source has not ended (a large object still downloading) when a line fails to decode.
    const source = new Readable({ read() {} });
    source.push(gzipSync(`${HEADER}\n{"p":"YQ==","t":"q"}\n`));
    const reader = new IndexReader(source, 'test index');

    await expect(reader.next()).rejects.toThrow(/malformed entry/);
    expect(source.destroyed).toBe(true);
    await expect(reader.digest()).rejects.toThrow(IndexCorruptError);
  });

  it('rejects a file that is not a volume index', async () => {
    await expect(readerOf([JSON.stringify({ format: 'something-else' })]).readHeader()).rejects.toThrow(/not a volume index/);
  });

  it('rejects a malformed entry', async () => {
    await expect(readerOf([HEADER, '{"p":"YQ==","t":"q"}']).next()).rejects.toThrow(/malformed entry/);
  });

  it('rejects a chunk reference whose offset or length could not be a chunk, and a negative or fractional size', async () => {
    const file = (s: number, chunk: string) => `{"p":"YQ==","t":"f","m":420,"mt":"1","s":${s},"c":[["${'a'.repeat(64)}","p1",${chunk}]]}`;
    const bad = ['0,1e999', '0,-5', '0,1.5', `0,${64 * 1024 * 1024 + 1}`, '-1,10', '0.5,10'];

    for (const chunk of bad) await expect(readerOf([HEADER, file(10, chunk)]).next()).rejects.toThrow(/malformed chunk reference/);
    await expect(readerOf([HEADER, file(-10, '0,10')]).next()).rejects.toThrow(/malformed entry/);
    await expect(readerOf([HEADER, file(10.5, '0,10')]).next()).rejects.toThrow(/malformed entry/);
    await expect(readerOf([HEADER, file(10, `0,${64 * 1024 * 1024}`)]).next()).resolves.toMatchObject({ size: 10 });
  });

  it('shows paths to people without raw control characters or invalid bytes', () => {
    expect(displayPath(Buffer.from('a/ü b'))).toBe('a/ü b');
    expect(displayPath(Buffer.from('new\nline'))).toBe('new\\nline');
    expect(displayPath(Buffer.from([0x66, 0xff]))).toBe('f\\xff');
    expect(displayPath(Buffer.alloc(0))).toBe('.');
  });
});

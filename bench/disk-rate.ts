/**
 * This machine's disk copy rate, the yardstick of `npm run bench:datamover`: a restore copies
 * bytes from one file (a pack) to another (the restored file), so the fastest it could go is
 * the rate at which the disk reads and writes at once.
 *
 * How: a file of `sizeMiB` is written and fsynced, then copied with `O_DIRECT` on both sides
 * (no page cache, so neither a warm cache nor writeback flatters the number) in 4 MiB blocks,
 * with reads and writes overlapping (up to 4 blocks in flight between them, on libuv's thread
 * pool), and the copy fsynced before the clock stops. The best of `runs` copies is the rate: on
 * a shared machine the best run is the closest to what the disk can do. Where `O_DIRECT` is
 * refused (tmpfs), the copy goes through the page cache and is fsynced, and `direct` says so.
 */
import { constants as fsConstants } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { keystream, writeRandomFile } from './datamover-dataset.js';

const MiB = 1024 * 1024;
const BLOCK = 4 * MiB;
const DEPTH = 4;

// Page-aligned memory for O_DIRECT: a WebAssembly memory's backing store is page-aligned.
const { WebAssembly } = globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } } };
const alignedBlock = (): Buffer => Buffer.from(new WebAssembly.Memory({ initial: BLOCK / 65536, maximum: BLOCK / 65536 }).buffer);

export interface DiskRate {
  /** MiB copied per second (best run). */
  readonly mibPerSecond: number;
  readonly sizeMiB: number;
  readonly runs: readonly number[];
  readonly direct: boolean;
}

async function openBoth(src: string, dst: string, direct: boolean): Promise<[FileHandle, FileHandle]> {
  const { O_DIRECT = 0, O_RDONLY, O_WRONLY, O_CREAT, O_TRUNC } = fsConstants;
  const extra = direct ? O_DIRECT : 0;
  const a = await open(src, O_RDONLY | extra);
  try {
    return [a, await open(dst, O_WRONLY | O_CREAT | O_TRUNC | extra, 0o600)];
  } catch (err) {
    await a.close();
    throw err;
  }
}

/** Copies src to dst with overlapping reads and writes; seconds taken, fsync included. */
async function copyOnce(src: string, dst: string, size: number, direct: boolean): Promise<number> {
  const [from, to] = await openBoth(src, dst, direct);
  try {
    const free = Array.from({ length: DEPTH }, alignedBlock);
    const filled: { buf: Buffer; n: number; at: number }[] = [];
    let wakeWriter: (() => void) | undefined;
    let wakeReader: (() => void) | undefined;
    let readDone = false;
    const started = performance.now();
    const reader = (async () => {
      for (let at = 0; at < size; at += BLOCK) {
        while (free.length === 0) await new Promise<void>((r) => (wakeReader = r));
        const buf = free.pop()!;
        const { bytesRead } = await from.read(buf, 0, BLOCK, at);
        filled.push({ buf, n: bytesRead, at });
        wakeWriter?.();
      }
      readDone = true;
      wakeWriter?.();
    })();
    const writer = (async () => {
      for (;;) {
        while (filled.length === 0 && !readDone) await new Promise<void>((r) => (wakeWriter = r));
        const block = filled.shift();
        if (!block) return;
        await to.write(block.buf, 0, block.n, block.at);
        free.push(block.buf);
        wakeReader?.();
      }
    })();
    await Promise.all([reader, writer]);
    await to.sync();
    return (performance.now() - started) / 1000;
  } finally {
    await Promise.all([from.close(), to.close()]);
  }
}

/**
 * A source file written once and copied on demand, to measure the disk copy rate at a given
 * moment: the disk of a virtual machine is not steady (here 1,325 MiB/s at the start of a bench
 * and 640-930 MiB/s minutes later), so an operation is compared with the rate right after it too.
 */
export class DiskProbe {
  private direct = fsConstants.O_DIRECT !== undefined;

  private constructor(
    private readonly src: string,
    private readonly dst: string,
    readonly sizeMiB: number,
  ) {}

  /** Writes (and fsyncs) the source file in `dir`, which must be on the disk the benchmark uses. */
  static async create(dir: string, sizeMiB: number): Promise<DiskProbe> {
    const src = join(dir, 'disk-rate-source');
    writeRandomFile(src, sizeMiB * MiB, keystream('disk-rate', 'source'));
    const written = await open(src, 'r+');
    await written.sync().finally(() => written.close());
    return new DiskProbe(src, join(dir, 'disk-rate-copy'), sizeMiB);
  }

  /** Whether the copies bypass the page cache (false where O_DIRECT is refused, as on tmpfs). */
  get isDirect(): boolean {
    return this.direct;
  }

  /** Copies the source once: MiB per second, fsync included. */
  async copyRate(): Promise<number> {
    try {
      return this.sizeMiB / (await copyOnce(this.src, this.dst, this.sizeMiB * MiB, this.direct));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL' || !this.direct) throw err;
      this.direct = false;
      return this.sizeMiB / (await copyOnce(this.src, this.dst, this.sizeMiB * MiB, false));
    } finally {
      await rm(this.dst, { force: true });
    }
  }

  async remove(): Promise<void> {
    await rm(this.src, { force: true });
  }
}

/** Measures the disk copy rate in `dir` (which must be on the disk the benchmark uses). */
export async function measureDiskCopyRate(dir: string, sizeMiB = 1024, runs = 3): Promise<DiskRate> {
  const probe = await DiskProbe.create(dir, sizeMiB);
  const rates: number[] = [];
  try {
    for (let i = 0; i < runs; i++) rates.push(await probe.copyRate());
  } finally {
    await probe.remove();
  }
  return { mibPerSecond: Math.max(...rates), sizeMiB, runs: rates, direct: probe.isDirect };
}

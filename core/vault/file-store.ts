/**
 * `FileVaultStore`: a vault in a local directory (`file:///path`), one file per object.
 * Writes go to a temporary name and are renamed, so no reader ever sees a half-written object
 * under its real key. Every file is fsynced in the background after it is written, and
 * `flush` waits for those and fsyncs the directories; the data mover calls it before it
 * writes a summary, so a summary never points at data a crash could lose. A
 * file system has no Object Lock: retention dates are accepted and ignored, which is why
 * production vaults are on S3.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Readable } from 'node:stream';
import { Semaphore } from './semaphore.js';
import { ObjectNotFoundError, ShortReadError, type ObjectInfo, type PutOptions, type VaultStore } from './store.js';

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export class FileVaultStore implements VaultStore {
  readonly url: string;
  private readonly root: string;
  /** Background fsyncs of files written since the last flush, and their directories. */
  private readonly syncing = new Set<Promise<void>>();
  private readonly dirs = new Set<string>();
  private readonly syncSlots = new Semaphore(2);
  private syncFailure: unknown;

  constructor(root: string) {
    this.root = root;
    this.url = pathToFileURL(root).href;
  }

  private path(key: string): string {
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, body: Uint8Array, _options?: PutOptions): Promise<void> {
    await this.atomically(key, async (tmp) => {
      const fh = await open(tmp, 'wx');
      try {
        await fh.writeFile(body);
      } finally {
        await fh.close();
      }
    });
  }

  async putFile(key: string, path: string, _options?: PutOptions): Promise<void> {
    await this.atomically(key, async (tmp) => {
      await copyFile(path, tmp);
    });
  }

  private async atomically(key: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await write(tmp);
      await rename(tmp, target);
      this.syncSoon(target);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async get(key: string): Promise<Buffer> {
    const fh = await this.openFile(key);
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const fh = await this.openFile(key);
    try {
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) throw new ShortReadError(this.url, key, `${length} bytes at ${offset}`, done);
        done += bytesRead;
      }
      return buf;
    } finally {
      await fh.close();
    }
  }

  async openRead(key: string): Promise<Readable> {
    const fh = await this.openFile(key);
    return fh.createReadStream({ autoClose: true, highWaterMark: 1 << 20 });
  }

  private async openFile(key: string) {
    try {
      return await open(this.path(key), 'r');
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.url, key, { cause: err });
      throw err;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? { key, size: s.size } : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the directory the prefix points into, each directory in sorted order.
    const lastSlash = prefix.lastIndexOf('/');
    const dirKey = lastSlash < 0 ? '' : prefix.slice(0, lastSlash + 1);
    yield* this.walk(dirKey, prefix);
  }

  private async *walk(dirKey: string, prefix: string): AsyncIterable<ObjectInfo> {
    let names: string[];
    try {
      names = await readdir(dirKey === '' ? this.root : this.path(dirKey.slice(0, -1)));
    } catch (err) {
      if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw err;
    }
    names.sort();
    for (const name of names) {
      if (name.includes('.tmp-')) continue; // an interrupted write, never a real object
      const key = dirKey + name;
      const s = await stat(this.path(key)).catch(() => undefined);
      if (!s) continue;
      if (s.isDirectory()) {
        const sub = `${key}/`;
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) yield* this.walk(sub, prefix);
      } else if (s.isFile() && key.startsWith(prefix)) {
        yield { key, size: s.size };
      }
    }
  }

  /**
   * Starts an fsync of a file that was just written, without making the writer wait: the disk
   * flushes while the next pack is being chunked (restic fsyncs inline; an end-of-backup
   * flush would leave the disk idle until the end). At most two run at once, so they never
   * take over libuv's thread pool.
   */
  private syncSoon(path: string): void {
    this.dirs.add(dirname(path));
    const task = (async () => {
      await this.syncSlots.acquire();
      try {
        await fsyncPath(path);
      } catch (err) {
        this.syncFailure ??= err;
      } finally {
        this.syncSlots.release();
      }
    })();
    this.syncing.add(task);
    void task.finally(() => this.syncing.delete(task));
  }

  async flush(): Promise<void> {
    // File contents and the directory entries naming them, all at once: the order does not
    // matter as long as both are on disk before the caller writes what points at them.
    const dirs = [...this.dirs];
    this.dirs.clear();
    await Promise.all([...this.syncing, ...dirs.map(fsyncPath)]);
    const failure = this.syncFailure;
    this.syncFailure = undefined;
    if (failure !== undefined) throw failure;
  }

  async extendRetention(_key: string, _until: Date): Promise<boolean> {
    return false;
  }
}


/**
 * `LocalCatalog`: the catalog of the embedded default, one JSON file per item in a directory
 * (the local state directory's `catalog/`). Writes are atomic (write, then rename) and every
 * read-modify-write holds a lock directory, so a `backup create --local` in one terminal and a
 * second one in another cannot both take a plan's lock.
 */
import { mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DocumentCatalog } from './document-catalog.js';

/** A lock directory older than this was left by a process that died while holding it. */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

export class LocalCatalog extends DocumentCatalog {
  private queue: Promise<unknown> = Promise.resolve();

  /** `dir` is created on first write. */
  constructor(readonly dir: string) {
    super();
  }

  private file(key: string): string {
    return join(this.dir, `${encodeURIComponent(key)}.json`);
  }

  protected async load(key: string): Promise<unknown> {
    try {
      return JSON.parse(await readFile(this.file(key), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  protected async save(key: string, value: unknown): Promise<void> {
    if (value === undefined) {
      await rm(this.file(key), { force: true });
      return;
    }
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.file(key)}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
    await rename(tmp, this.file(key));
  }

  protected async keys(prefix: string): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names
      .filter((n) => n.endsWith('.json'))
      .map((n) => decodeURIComponent(n.slice(0, -'.json'.length)))
      .filter((k) => k.startsWith(prefix))
      .sort();
  }

  protected exclusive<T>(fn: () => Promise<T>): Promise<T> {
    // In-process callers queue; other processes are kept out by the lock directory.
    const run = this.queue.then(() => this.withLockDirectory(fn), () => this.withLockDirectory(fn));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async withLockDirectory<T>(fn: () => Promise<T>): Promise<T> {
    await mkdir(this.dir, { recursive: true });
    const lock = join(this.dir, '.lock');
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        await mkdir(lock);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
        if (age > STALE_LOCK_MS) await rmdir(lock).catch(() => undefined);
        else if (Date.now() > deadline) throw new Error(`the local catalog ${this.dir} stayed locked for ${LOCK_WAIT_MS / 1000} s; remove ${lock} if no milvus-guard process is running`);
        else await new Promise((r) => setTimeout(r, 20));
      }
    }
    try {
      return await fn();
    } finally {
      await rmdir(lock).catch(() => undefined);
    }
  }
}

/**
 * `LocalCatalog`: the catalog of the embedded default, one JSON file per item in a directory
 * (the local state directory's `catalog/`). Writes are atomic (`write-file-atomic`) and every
 * read-modify-write holds a lock directory (`proper-lockfile`), so a `backup create --local` in
 * one terminal and a second one in another cannot both take a plan's lock.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { lock } from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
import { DocumentCatalog } from './document-catalog.js';

/**
 * A lock its holder stopped refreshing this long ago (the holder refreshes it every half of
 * this) was left by a process that died, such as a CLI killed mid-backup; it is taken over.
 */
const STALE_LOCK_MS = 10_000;
/** How long to wait for the lock: longer than a dead holder's lock takes to go stale. */
const LOCK_WAIT_MS = 20_000;
const LOCK_POLL_MS = 20;

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
    await writeFileAtomic(this.file(key), `${JSON.stringify(value, null, 2)}\n`);
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
    const lockfilePath = join(this.dir, '.lock');
    const retries = { retries: LOCK_WAIT_MS / LOCK_POLL_MS, factor: 1, minTimeout: LOCK_POLL_MS, maxTimeout: LOCK_POLL_MS };
    // A holder that stalls past the stale time loses the lock to another process; say so rather
    // than let proper-lockfile throw from its timer.
    let compromised: Error | undefined;
    const onCompromised = (err: Error) => void (compromised = err);
    const release = await lock(this.dir, { lockfilePath, stale: STALE_LOCK_MS, retries, onCompromised }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ELOCKED') throw err;
      throw new Error(`the local catalog ${this.dir} stayed locked for ${LOCK_WAIT_MS / 1000} s; remove ${lockfilePath} if no milvus-guard process is running`);
    });
    try {
      const result = await fn();
      if (compromised) throw new Error(`the local catalog ${this.dir} lock was taken over while this process held it (it stalled for more than ${STALE_LOCK_MS / 1000} s); run the command again`, { cause: compromised });
      return result;
    } finally {
      await release().catch(() => undefined);
    }
  }
}

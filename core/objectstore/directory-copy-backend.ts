/**
 * `directoryCopyBackend`: the object copy's storage (core/objectstore/copy-backend.ts) on the
 * local embedded cluster, where the Milvus "bucket" is a directory and the vault a
 * `FileVaultStore`, so the workflow runs the same copy engine there as in AWS.
 *
 * The layout is a contract with the local simulated Milvus (local/milvus), which writes it:
 * bucket `b` is the directory `<bucketsDir>/b/`, the object with key `k` the plain file
 * `<bucketsDir>/b/k` (`/` in keys are directory separators), with no metadata files. Writers
 * write to `<bucketsDir>/.staging/` and rename into place, so a listing never sees a partial
 * file; bucket names never start with `.`. This backend writes restored objects the same way, and
 * stages its own copies there too (the one directory beside the buckets no listing walks).
 *
 * It answers as S3 does, because the engine's guarantees rest on S3's behaviour:
 * - Listings come in S3's order (UTF-8 binary order of the full key) with ListObjectsV2's prefix,
 *   start-after, max-keys and truncation, so a cursor's `startAfter` means the same here. A walk
 *   of sorted directories gives that order when a directory sorts as its name plus `/`.
 * - The ETag is S3's for a single-part upload: the quoted hex MD5 of the content. A directory
 *   stores no ETag, so a listing reads each listed file to hash it; that is what lets a rewritten
 *   object get a new vault key (layout.ts `milvusObjectKey`) rather than be mistaken for the one
 *   the vault holds. Files are read as streams, a few at once, so memory stays bounded; a page
 *   the byte budget cuts short has its untaken files hashed again by the next listing, which is
 *   cheaper than a cache of digests that could go stale.
 * - Copies are conditional as S3's `x-amz-copy-source-if-match` is: the bytes are hashed while
 *   they are copied to a staging file, and only a copy that still hashes to the expected ETag is
 *   moved into place (else `SourceObjectChangedError`, nothing stored). Into the vault that guards
 *   against Milvus rewriting an object during the backup; out of it, against a vault file that was
 *   altered since the backup (the `FileVaultStore` has no ETags of its own to compare).
 * - The vault's Object Lock is `FileVaultStore`'s emulation (its lock journal): new objects get
 *   the backup's date, and reused ones are extended with `FileVaultStore.extendRetention`, so the
 *   local vault holds the same locks an S3 vault would. The Milvus directories have no lock.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { UserError } from '../errors.js';
import { fsyncPath, withPath } from '../fs-errors.js';
import { FileVaultStore } from '../vault/file-store.js';
import { ObjectNotFoundError } from '../vault/store.js';
import { mapBounded } from './bounded.js';
import type { CopyBackend, ListedObject } from './copy-backend.js';
import { bareEtag } from './layout.js';
import { sourceChanged, sourceDeleted } from './server-copy.js';

/** Where the local Milvus's buckets and the vault are. */
export interface DirectoryCopyOptions {
  /** The directory of the buckets: bucket `b` is `<bucketsDir>/b/`. */
  readonly bucketsDir: string;
  /** The `FileVaultStore` directory of the vault. */
  readonly vaultDir: string;
  /** The clock of the vault's lock checks (FileVaultStore `now`). @default the real time */
  readonly now?: () => Date;
}

/** Where this backend stages its copies: the writers' staging directory of the contract. */
const STAGING = '.staging';
/** Files hashed at once by a listing: enough to keep a disk busy, few enough not to fill libuv's pool. */
const HASH_CONCURRENCY = 8;

const isNotFound = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

/** UTF-8 binary order, S3's key order (JavaScript's own comparison is by UTF-16 code units, which differs above U+FFFF). */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A bucket name that names one directory below `bucketsDir`, or a UserError naming it. */
function checkBucket(bucket: string): string {
  if (bucket === '' || bucket.startsWith('.') || bucket.includes('/') || bucket.includes('\\') || bucket.includes('\0')) {
    throw new UserError(`bucket name '${bucket}' cannot name a bucket directory (it must be one path segment that does not start with '.'); use the bucket name Milvus is configured with`);
  }
  return bucket;
}

/** The path segments of a key, refusing keys that would leave the bucket's directory. */
function keySegments(bucket: string, key: string): string[] {
  const parts = key.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0'))) {
    throw new UserError(`key '${key}' of bucket ${bucket} cannot be a file of a bucket directory (an empty, '.' or '..' segment); check the restore target's root path`);
  }
  return parts;
}

/** A pass-through stream that hashes (MD5) and counts what goes through it. */
function md5Meter(): Transform & { digest: () => { md5: string; size: number } } {
  const hash = createHash('md5');
  let size = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  return Object.assign(t, { digest: () => ({ md5: hash.digest('hex'), size }) });
}

/** The MD5 of a file, streamed; undefined when the file is gone. */
async function md5Of(path: string): Promise<string | undefined> {
  const hash = createHash('md5');
  try {
    await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), hash);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw withPath(err, path);
  }
  return hash.digest('hex');
}

/**
 * The object copy between bucket directories under `bucketsDir` and a `FileVaultStore` in
 * `vaultDir` (see the module documentation).
 */
export function directoryCopyBackend(options: DirectoryCopyOptions): CopyBackend {
  const { bucketsDir } = options;
  const vault = new FileVaultStore(options.vaultDir, options.now ? { now: options.now } : {});
  const bucketDir = (bucket: string): string => join(bucketsDir, checkBucket(bucket));
  const url = (bucket: string, key: string): string => `${pathToFileURL(bucketDir(bucket)).href}/${key}`;
  const filePath = (bucket: string, key: string): string => join(bucketDir(bucket), ...keySegments(bucket, key));

  /** A bucket directory that must exist, or a UserError naming it. */
  async function existingBucket(bucket: string, role: string): Promise<string> {
    const dir = bucketDir(bucket);
    const s = await stat(dir).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw withPath(err, dir);
    });
    if (!s?.isDirectory()) throw new UserError(`the ${role} bucket ${bucket} does not exist: ${dir} is not a directory; create it, or check the bucket Milvus is configured with`);
    return dir;
  }

  /**
   * Streams what `read` opens into a staging file, hashing it; when the bytes are the `expect`ed
   * ones, hands the staged file to `place` (which moves or copies it), else throws what
   * `mismatch` builds. The staging file is gone when this returns.
   */
  async function viaStaging(read: () => Promise<Readable>, expect: { md5: string; size: number }, place: (staged: string) => Promise<void>, mismatch: (found: string) => Error): Promise<void> {
    const stagingDir = join(bucketsDir, STAGING);
    await mkdir(stagingDir, { recursive: true }).catch((err: unknown) => {
      throw withPath(err, stagingDir);
    });
    const from = await read();
    const staged = join(stagingDir, `milvus-guard-copy-${randomBytes(8).toString('hex')}`);
    try {
      const meter = md5Meter();
      await pipeline(from, meter, createWriteStream(staged, { flags: 'wx' }));
      const got = meter.digest();
      if (got.md5 !== expect.md5 || got.size !== expect.size) throw mismatch(got.md5);
      await place(staged);
    } finally {
      from.destroy();
      await rm(staged, { force: true });
    }
  }

  /** Keys (with their files) of a bucket that start with `prefix` and sort after `startAfter`, in S3's order. */
  async function* walk(root: string, dirKey: string, prefix: string, startAfter: string): AsyncGenerator<{ key: string; path: string }> {
    const dir = dirKey === '' ? root : join(root, ...dirKey.slice(0, -1).split('/'));
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      // A directory Milvus's GC removed while we walked holds nothing any more.
      if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw withPath(err, dir);
    }
    const named = entries
      .filter((e) => e.isFile() || e.isDirectory())
      .map((e) => ({ key: dirKey + e.name + (e.isDirectory() ? '/' : ''), dir: e.isDirectory() }))
      .sort((a, b) => compareUtf8(a.key, b.key));
    for (const e of named) {
      if (e.dir) {
        // Descend only where keys can both start with the prefix and sort after startAfter: a
        // directory before startAfter that startAfter does not lie in holds only earlier keys.
        const matches = e.key.startsWith(prefix) || prefix.startsWith(e.key);
        const after = startAfter.startsWith(e.key) || compareUtf8(e.key, startAfter) > 0;
        if (matches && after) yield* walk(root, e.key, prefix, startAfter);
      } else if (e.key.startsWith(prefix) && compareUtf8(e.key, startAfter) > 0) {
        yield { key: e.key, path: join(root, ...e.key.split('/')) };
      }
    }
  }

  return {
    vault,
    url,

    async listSource(bucket, page, counts) {
      counts.list++;
      const root = await existingBucket(bucket, 'Milvus');
      const candidates = walk(root, '', page.prefix, page.startAfter ?? '');
      const objects: ListedObject[] = [];
      // Files are hashed a batch at once. A file Milvus's GC deletes between the walk and its hash
      // is left out, as a listing made a moment later would not show it, and the walk goes on.
      for (;;) {
        const batch: { key: string; path: string }[] = [];
        while (batch.length < page.maxKeys - objects.length) {
          const next = await candidates.next();
          if (next.done) break;
          batch.push(next.value);
        }
        if (batch.length === 0) break;
        const listed = await mapBounded(batch, HASH_CONCURRENCY, async (c): Promise<ListedObject | undefined> => {
          const s = await stat(c.path).catch((err: unknown) => {
            if (isNotFound(err)) return undefined;
            throw withPath(err, c.path);
          });
          const md5 = s ? await md5Of(c.path) : undefined;
          return s && md5 !== undefined ? { key: c.key, size: s.size, etag: `"${md5}"` } : undefined;
        });
        objects.push(...listed.filter((o): o is ListedObject => o !== undefined));
        if (objects.length >= page.maxKeys) break;
      }
      const truncated = objects.length >= page.maxKeys && !(await candidates.next()).done;
      await candidates.return(undefined);
      return { objects, truncated };
    },

    /**
     * The vault's file stores no ETag: the key names the listed ETag, and `copyToVault` stored
     * only bytes that hash to it, so a file of the expected size answers with the expected ETag.
     * Restores hash every object against it again, so a file altered since is still refused.
     */
    async headVault(vaultKey, expected, counts) {
      counts.head++;
      const info = await vault.head(vaultKey);
      if (!info) return undefined;
      return { size: info.size, etag: info.size === expected.size ? expected.etag : '', ...(info.retainUntil ? { retainUntil: info.retainUntil } : {}) };
    },

    async copyToVault(from, vaultKey, { retainUntil }, counts, roles) {
      counts.copy++;
      const path = filePath(from.bucket, from.key);
      const where = url(from.bucket, from.key);
      const etag = `"${bareEtag(from.etag)}"`;
      await viaStaging(
        async () => {
          // Opened before the copy starts, so a file deleted since the listing is named as such.
          try {
            return (await open(path, 'r')).createReadStream({ highWaterMark: 1 << 20 });
          } catch (err) {
            if (isNotFound(err)) throw sourceDeleted(where, from.key, roles, { cause: err });
            throw withPath(err, path);
          }
        },
        { md5: bareEtag(from.etag), size: from.size },
        (staged) => vault.putFile(vaultKey, staged, retainUntil ? { retainUntil } : undefined),
        (found) => sourceChanged(where, from.key, etag, roles, { found: `"${found}"` }),
      );
      return etag;
    },

    async extendRetention(vaultKey, _current, until, counts) {
      counts.retention++;
      return vault.extendRetention(vaultKey, until);
    },

    async copyFromVault(from, to, counts, roles) {
      counts.copy++;
      const dir = await existingBucket(to.bucket, 'restore target');
      const target = join(dir, ...keySegments(to.bucket, to.key));
      const where = `${vault.url}/${from.vaultKey}`;
      await viaStaging(
        async () => {
          try {
            return await vault.openRead(from.vaultKey);
          } catch (err) {
            if (err instanceof ObjectNotFoundError) throw sourceDeleted(where, from.vaultKey, roles, { cause: err });
            throw err;
          }
        },
        { md5: bareEtag(from.etag), size: from.size },
        async (staged) => {
          // Durable before it is visible under its name, and its name durable before the restore
          // cursor moves past it: a crash must not leave a restored Milvus missing a file.
          await fsyncPath(staged);
          await mkdir(dirname(target), { recursive: true });
          await rename(staged, target).catch((err: unknown) => {
            throw withPath(err, target);
          });
          await fsyncPath(dirname(target));
        },
        (found) => sourceChanged(where, from.vaultKey, `"${bareEtag(from.etag)}"`, roles, { found: `"${found}"` }),
      );
    },
  };
}

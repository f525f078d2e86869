/**
 * `s3CopyBackend`: the object copy's storage (core/objectstore/copy-backend.ts) on S3, where the
 * Milvus bucket and the vault are buckets reached by one client and objects are copied inside S3
 * without their bytes passing through us (core/objectstore/server-copy.ts).
 *
 * Requests per object: one HeadObject on the vault, plus one CopyObject when the vault lacks it
 * (UploadPartCopy parts above the multipart threshold), plus GetObjectRetention and
 * PutObjectRetention when a reused object's lock must be extended; per page, one ListObjectsV2.
 * The vault's own writes (manifest pages, commit) go through an `S3VaultStore` built from the same
 * vault options, so copies and pages carry the same KMS key and lock mode.
 */
import { GetObjectRetentionCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectRetentionCommand, S3Client, type ObjectLockMode } from '@aws-sdk/client-s3';
import { UserError } from '../errors.js';
import { S3VaultStore, type S3VaultOptions } from '../vault/s3-store.js';
import type { CopyBackend, ListedObject, ObjectSource, VaultObject } from './copy-backend.js';
import { MAX_PART, MAX_SINGLE_COPY, MIN_PART, ObjectCopyAccessDeniedError, serverSideCopy, type MultipartSettings, type WriteProtection } from './server-copy.js';

/** The vault bucket, described with the options that build its S3VaultStore (so both write alike). */
export type VaultBucket = Pick<S3VaultOptions, 'bucket' | 'prefix' | 'kmsKeyId' | 'objectLockMode'>;

const s3Name = (err: unknown): string | undefined => (err as { name?: string } | undefined)?.name;
const s3Status = (err: unknown): number | undefined => (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;

/**
 * A client for copying between `source` and the vault. CopyObject is sent to the vault's
 * endpoint, which reads the source itself: on AWS both are S3 (any regions, any accounts whose
 * bucket policies grant this role read and write); an S3-compatible server copies only between
 * buckets it holds, so a source on another endpoint is refused here, naming both.
 */
export function createCopyClient(source: ObjectSource, vault: Pick<S3VaultOptions, 'region' | 'endpoint' | 'credentials' | 'maxAttempts'>): S3Client {
  if ((source.endpoint ?? '') !== (vault.endpoint ?? '')) {
    throw new UserError(
      `the Milvus bucket s3://${source.bucket} is on ${source.endpoint ?? 'AWS S3'} and the vault on ${vault.endpoint ?? 'AWS S3'}: a server-side copy needs one endpoint that holds both buckets (put the vault on the same S3 service, or copy with a tool that streams between them)`,
    );
  }
  return new S3Client({
    ...(vault.region ? { region: vault.region } : source.region ? { region: source.region } : {}),
    ...(vault.endpoint ? { endpoint: vault.endpoint, forcePathStyle: true } : {}),
    ...(vault.credentials ? { credentials: vault.credentials } : {}),
    // The Milvus bucket or a restore target may be in another region than the vault: S3 answers
    // such a request with a redirect naming the bucket's region, which the SDK then follows.
    followRegionRedirects: true,
    retryMode: 'adaptive',
    maxAttempts: vault.maxAttempts ?? 10,
  });
}

/** The multipart settings with their defaults, checked against S3's limits. */
function multipartSettings(given: Partial<MultipartSettings> | undefined): MultipartSettings {
  const m = { threshold: MAX_SINGLE_COPY, partSize: 512 * 1024 ** 2, partConcurrency: 4, ...given };
  if (!(m.threshold >= 0 && m.threshold <= MAX_SINGLE_COPY)) throw new RangeError(`multipart threshold ${m.threshold} must be between 0 and 5 GiB (S3 copies at most 5 GiB in one CopyObject)`);
  if (!(m.partSize >= MIN_PART && m.partSize <= MAX_PART)) throw new RangeError(`multipart part size ${m.partSize} must be between 5 MiB and 5 GiB (S3's limits for a part)`);
  return m;
}

/**
 * The object copy on S3. `client` must reach the source (or restore target) and the vault
 * (createCopyClient). Objects above `multipart.threshold` bytes are copied in parts of
 * `multipart.partSize` (default 5 GiB, 512 MiB, 4 parts at once); bad settings throw here,
 * before anything is copied.
 */
export function s3CopyBackend(options: { client: S3Client; vault: VaultBucket; multipart?: Partial<MultipartSettings> }): CopyBackend {
  const { client } = options;
  const vaultBucket = options.vault.bucket;
  const vPrefix = options.vault.prefix ? `${options.vault.prefix.replace(/\/+$/, '')}/` : '';
  const multipart = multipartSettings(options.multipart);
  const vault = new S3VaultStore({ ...options.vault, client });
  const url = (bucket: string, key: string): string => `s3://${bucket}/${key}`;

  return {
    vault,
    url,

    async listSource(bucket, page, counts) {
      const sourceUrl = url(bucket, page.prefix);
      counts.list++;
      let listed;
      try {
        listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: page.prefix, MaxKeys: page.maxKeys, ...(page.startAfter !== undefined ? { StartAfter: page.startAfter } : {}) }));
      } catch (err) {
        if (s3Name(err) === 'AccessDenied' || s3Status(err) === 403) {
          throw new ObjectCopyAccessDeniedError(
            `listing ${sourceUrl} was refused (AccessDenied): grant the role s3:ListBucket on bucket ${bucket} for the prefix ${page.prefix || '(all)'} and s3:GetObject on ${sourceUrl}*`,
            page.prefix,
            { cause: err },
          );
        }
        if (s3Name(err) === 'NoSuchBucket') throw new UserError(`the Milvus bucket ${bucket} does not exist (${sourceUrl}); check the bucket Milvus is configured with`, { cause: err });
        throw err;
      }
      const objects: ListedObject[] = (listed.Contents ?? []).filter((o) => o.Key !== undefined && o.Key.startsWith(page.prefix)).map((o) => ({ key: o.Key!, size: o.Size ?? 0, etag: o.ETag ?? '' }));
      return { objects, truncated: listed.IsTruncated === true };
    },

    async headVault(vaultKey, _expected, counts) {
      const key = vPrefix + vaultKey;
      counts.head++;
      try {
        const out = await client.send(new HeadObjectCommand({ Bucket: vaultBucket, Key: key }));
        return { size: out.ContentLength ?? 0, etag: out.ETag ?? '', ...(out.ObjectLockRetainUntilDate ? { retainUntil: out.ObjectLockRetainUntilDate } : {}), ...(out.ObjectLockMode ? { mode: out.ObjectLockMode } : {}) };
      } catch (err) {
        if (s3Name(err) === 'NotFound' || s3Name(err) === 'NoSuchKey' || s3Status(err) === 404) return undefined;
        if (s3Name(err) === 'AccessDenied' || s3Status(err) === 403) {
          // Without s3:ListBucket, S3 answers 403 rather than 404 for a key that does not exist.
          throw new ObjectCopyAccessDeniedError(`checking s3://${vaultBucket}/${key} was refused (AccessDenied): grant the role s3:GetObject and s3:ListBucket on the vault ${vault.url}`, key, { cause: err });
        }
        throw err;
      }
    },

    async copyToVault(from, vaultKey, { retainUntil }, counts, roles) {
      const write: WriteProtection = {
        ...(options.vault.kmsKeyId ? { kmsKeyId: options.vault.kmsKeyId } : {}),
        ...(options.vault.objectLockMode ? { objectLockMode: options.vault.objectLockMode } : {}),
        ...(retainUntil ? { retainUntil } : {}),
      };
      return serverSideCopy(client, { fromBucket: from.bucket, fromKey: from.key, etag: from.etag, size: from.size, toBucket: vaultBucket, toKey: vPrefix + vaultKey }, write, multipart, counts, roles);
    },

    /**
     * Keeps the object's mode (as S3VaultStore.extendRetention does). HeadObject reports the date
     * only with s3:GetObjectRetention; without it in the answer, GetObjectRetention asks.
     */
    async extendRetention(vaultKey, head: VaultObject, until, counts) {
      const key = vPrefix + vaultKey;
      let current: { until?: Date; mode?: string } = { ...(head.retainUntil ? { until: head.retainUntil } : {}), ...(head.mode ? { mode: head.mode } : {}) };
      if (!current.until) {
        counts.retention++;
        try {
          const r = (await client.send(new GetObjectRetentionCommand({ Bucket: vaultBucket, Key: key }))).Retention;
          current = { ...(r?.RetainUntilDate ? { until: r.RetainUntilDate } : {}), ...(r?.Mode ? { mode: r.Mode } : {}) };
        } catch (err) {
          if (s3Name(err) !== 'NoSuchObjectLockConfiguration') throw err;
        }
      }
      if (current.until && current.until.getTime() >= until.getTime()) return false;
      counts.retention++;
      const mode = (current.mode ?? options.vault.objectLockMode ?? 'GOVERNANCE') as ObjectLockMode;
      await client.send(new PutObjectRetentionCommand({ Bucket: vaultBucket, Key: key, Retention: { Mode: mode, RetainUntilDate: until } }));
      return true;
    },

    async copyFromVault(from, to, counts, roles) {
      await serverSideCopy(client, { fromBucket: vaultBucket, fromKey: vPrefix + from.vaultKey, etag: from.etag, size: from.size, toBucket: to.bucket, toKey: to.key }, {}, multipart, counts, roles);
    },
  };
}

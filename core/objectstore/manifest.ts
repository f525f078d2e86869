/**
 * The object manifest of a backup of an S3-backed Milvus: what the backup holds, page by page,
 * and the commit that closes it.
 *
 * A page is gzip-compressed JSON lines: a header line (`format`, `backupId`, `page`), then one
 * line per object in listing order: its key below the Milvus root path, size and ETag as the
 * source listed them, and the vault key and vault ETag of its copy. A restore copies each
 * `vaultKey` back to `<target prefix><key>` on the condition that the vault object still has
 * `vaultEtag`.
 *
 * The commit (`commit.json`, written last) is a link of the integrity chain, as the volume
 * summary of core/datamover/summary.ts is: it commits to every page by SHA-256, size, object
 * count and bytes, and `finishCopy` returns the SHA-256 of the commit's own bytes for the
 * backup's record to keep. While pages are written, the copy cursor carries a running digest
 * over the pages' digests (`chainDigest`), so the commit can prove it lists the very pages the
 * copy wrote, in order, without the cursor growing with the number of pages.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { sha256Hex } from '../datamover/summary.js';

export const MANIFEST_FORMAT = 'milvus-guard/object-manifest';
export const COMMIT_FORMAT = 'milvus-guard/object-copy';

/** One object of the backup. */
export interface ManifestEntry {
  /** Key below the Milvus root path (`insert_log/…`), the same in the source and a restore target. */
  readonly key: string;
  readonly size: number;
  /** The ETag the source listed, quoted as S3 returns it. */
  readonly etag: string;
  /** Where the copy lives in the vault (relative to the vault prefix). */
  readonly vaultKey: string;
  /** The ETag of the vault's copy (a multipart copy has its own), the condition of a restore's copy. */
  readonly vaultEtag: string;
}

/** What the commit says of one page. */
export interface PageCommitment {
  readonly page: number;
  readonly key: string;
  /** Hex SHA-256 of the page object's bytes (the gzip file as stored). */
  readonly sha256: string;
  readonly size: number;
  readonly objects: number;
  readonly bytes: number;
}

/** Requests sent, by type (SDK retries of one request are not counted again). */
export interface RequestCounts {
  list: number;
  head: number;
  /** CopyObject. */
  copy: number;
  /** UploadPartCopy: the parts of multipart copies. */
  copyPart: number;
  /** CreateMultipartUpload, CompleteMultipartUpload and AbortMultipartUpload. */
  multipart: number;
  /** PutObject: manifest pages and the commit. */
  put: number;
  /** GetObject: manifest pages and the commit (finish and restore). */
  get: number;
  /** GetObjectRetention and PutObjectRetention of reused objects. */
  retention: number;
}

export const noRequests = (): RequestCounts => ({ list: 0, head: 0, copy: 0, copyPart: 0, multipart: 0, put: 0, get: 0, retention: 0 });

export function addRequests(a: RequestCounts, b: RequestCounts): RequestCounts {
  const out = noRequests();
  for (const k of Object.keys(out) as (keyof RequestCounts)[]) out[k] = a[k] + b[k];
  return out;
}

/** Counters a copy's cursor carries, and its commit keeps. */
export interface CopyTotals {
  /** Objects in the manifest so far, and their bytes. */
  readonly objects: number;
  readonly bytes: number;
  readonly copied: number;
  readonly reused: number;
  readonly bytesCopied: number;
  readonly bytesReused: number;
  /** Reused objects whose Object Lock date was extended to cover this backup. */
  readonly retentionExtended: number;
  /** Requests of the calls that returned (a crashed call's are not counted). */
  readonly requests: RequestCounts;
}

/** The commit object (see the module documentation). */
export interface ObjectCopyCommit extends CopyTotals {
  readonly format: typeof COMMIT_FORMAT;
  readonly backupId: string;
  /** Where the objects came from: bucket and Milvus root path (with its trailing slash). */
  readonly source: { readonly bucket: string; readonly prefix: string };
  /** Running digest over the pages' SHA-256s, as the cursor carried it. */
  readonly chainDigest: string;
  readonly pages: readonly PageCommitment[];
}

/** A manifest page or commit that is not what it should be: the vault is damaged there. */
export class ObjectManifestCorruptError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ObjectManifestCorrupt';
  }
}

/** The chain digest after one more page: SHA-256 over the previous digest and the page's. */
export function chainNext(previous: string, pageSha256: string): string {
  return sha256Hex(Buffer.from(`${previous}:${pageSha256}`));
}

/** The chain digest of no pages. */
export const CHAIN_START = sha256Hex(Buffer.alloc(0));

/** Encodes one manifest page. gzip without a file name or time, so the same page gives the same bytes. */
export function encodeManifestPage(backupId: string, page: number, entries: readonly ManifestEntry[]): Buffer {
  const lines = [JSON.stringify({ format: MANIFEST_FORMAT, backupId, page }), ...entries.map((e) => JSON.stringify({ key: e.key, size: e.size, etag: e.etag, vaultKey: e.vaultKey, vaultEtag: e.vaultEtag }))];
  return gzipSync(Buffer.from(`${lines.join('\n')}\n`, 'utf8'));
}

/** Decodes one manifest page, checking its header and every entry's fields; `where` names it in errors. */
export function decodeManifestPage(body: Uint8Array, where: string, expect: { backupId: string; page: number }): ManifestEntry[] {
  let text: string;
  try {
    text = gunzipSync(body).toString('utf8');
  } catch (err) {
    throw new ObjectManifestCorruptError(`${where} is not a gzip file: ${(err as Error).message}`, { cause: err });
  }
  const lines = text.split('\n').filter((l) => l !== '');
  const parse = (line: string, n: number): Record<string, unknown> => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new ObjectManifestCorruptError(`${where} line ${n} is not JSON`);
    }
  };
  const header = lines.length > 0 ? parse(lines[0]!, 1) : undefined;
  if (header?.format !== MANIFEST_FORMAT || header.backupId !== expect.backupId || header.page !== expect.page) {
    throw new ObjectManifestCorruptError(`${where} is not page ${expect.page} of the object manifest of backup ${expect.backupId}`);
  }
  return lines.slice(1).map((line, i) => {
    const e = parse(line, i + 2);
    if (typeof e.key !== 'string' || !Number.isSafeInteger(e.size) || (e.size as number) < 0 || typeof e.etag !== 'string' || typeof e.vaultKey !== 'string' || typeof e.vaultEtag !== 'string') {
      throw new ObjectManifestCorruptError(`${where} line ${i + 2} is not a manifest entry (key, size, etag, vaultKey, vaultEtag)`);
    }
    return e as unknown as ManifestEntry;
  });
}

/**
 * Reading a backup's copy of its Milvus bucket (core/objectstore/bucket-copy.ts) from a plain
 * `VaultStore`: the commit `backups/<id>/objects/commit.json`, checked against the SHA-256 the
 * backup's record (or `backup.json`) holds, and its manifest pages, each checked against the
 * commit. Retention (the live set of `milvus-objects/`, lock extensions), verify and the DR
 * replication check have a vault, not a copy backend, so they read through here.
 *
 * The commit is read by the engine's own `readObjectCopyCommit` (one place decides what a valid
 * commit is), over a backend that holds only the vault. The engine reads pages only from the
 * first one on; a page is read here by the same rules (the engine's decoder, then the page's
 * SHA-256 and object count against the commit), so a caller can skip whole pages by the commit's
 * counts (a lock extension going on from an offset) or read several at once (garbage collection).
 */
import { sha256Hex } from '../datamover/summary.js';
import { mapBounded } from './bounded.js';
import { readObjectCopyCommit, type CopyBackend, type CopyEngineContext } from './bucket-copy.js';
import { objectManifestPageKey } from './layout.js';
import { decodeManifestPage, ObjectManifestCorruptError, type ManifestEntry, type ObjectCopyCommit, type PageCommitment } from './manifest.js';
import { ObjectNotFoundError, type VaultStore } from '../vault/store.js';

/** What a backup's record (or its `backup.json`) commits to: the commit's digest. */
export interface CommittedCopy {
  readonly backupId: string;
  /** Hex SHA-256 of the commit object's bytes. */
  readonly sha256: string;
}

/**
 * A copy backend that holds only `vault`: what the engine's readers use of a backend. Its storage
 * operations are refused: reaching one is a bug in the caller, not a state of the vault.
 */
function vaultOnly(vault: VaultStore): CopyBackend {
  const refuse = (operation: string) => (): Promise<never> => Promise.reject(new Error(`${operation} is not available when only the vault ${vault.url} is read (a bug in milvus-guard: report it)`));
  return {
    vault,
    url: (bucket, key) => `s3://${bucket}/${key}`,
    listSource: refuse('listSource'),
    headVault: refuse('headVault'),
    copyToVault: refuse('copyToVault'),
    extendRetention: refuse('extendRetention'),
    copyFromVault: refuse('copyFromVault'),
  };
}

/** The engine's context for reading the commits and pages of `vault`. */
export function vaultReader(vault: VaultStore): CopyEngineContext {
  return { backend: vaultOnly(vault) };
}

/**
 * The commit of a backup's copy, checked against `copy.sha256` by the engine. Throws a
 * `UserError` (its cause an `ObjectNotFoundError`) when the commit is missing,
 * `ObjectManifestCorruptError` when it does not match or is not a commit of this backup.
 */
export async function readCommit(vault: VaultStore, copy: CommittedCopy): Promise<ObjectCopyCommit> {
  return readObjectCopyCommit(vaultReader(vault), copy);
}

/**
 * One page of a committed manifest, checked against what the commit says of it (SHA-256 of its
 * bytes, its object count): its entries. Throws `ObjectManifestCorruptError` when the page is
 * missing (its cause an `ObjectNotFoundError`), altered or not the page it should be.
 */
export async function readCommittedPage(vault: VaultStore, backupId: string, committed: PageCommitment): Promise<ManifestEntry[]> {
  const key = objectManifestPageKey(backupId, committed.page);
  let body: Buffer;
  try {
    body = await vault.get(key);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new ObjectManifestCorruptError(`page ${committed.page} of the object manifest of backup ${backupId} (${key} in ${vault.url}) is missing`, { cause: err });
    throw err;
  }
  const sha256 = sha256Hex(body);
  if (sha256 !== committed.sha256) {
    throw new ObjectManifestCorruptError(`${key} in ${vault.url} is not the page the commit names (SHA-256 ${sha256} where the commit says ${committed.sha256}): the object manifest was altered or damaged`);
  }
  const entries = decodeManifestPage(body, `${key} in ${vault.url}`, { backupId, page: committed.page });
  if (entries.length !== committed.objects) {
    throw new ObjectManifestCorruptError(`${key} in ${vault.url} lists ${entries.length} objects where the commit says ${committed.objects}`);
  }
  return entries;
}

/**
 * Adds to `into` every vault key (`milvus-objects/...`) the committed copy references that `keep`
 * accepts, reading `concurrency` pages at once. Throws as {@link readCommit} and
 * {@link readCommittedPage} do, so a caller building a live set learns of a damaged manifest
 * instead of getting a partial set.
 */
export async function addCommittedKeys(vault: VaultStore, copy: CommittedCopy, into: Set<string>, keep: (vaultKey: string) => boolean = () => true, concurrency = 8): Promise<void> {
  const commit = await readCommit(vault, copy);
  await mapBounded(commit.pages, concurrency, async (page) => {
    for (const e of await readCommittedPage(vault, copy.backupId, page)) if (keep(e.vaultKey)) into.add(e.vaultKey);
  });
}

/**
 * True when `err` says the vault has no such object (a commit or page not there), as opposed to
 * one that is there and wrong: the DR check waits for the first, and reports the second.
 */
export function isMissingObject(err: unknown): boolean {
  return err instanceof ObjectNotFoundError || (err instanceof Error && err.cause instanceof ObjectNotFoundError);
}

/** True when `err` is damage to a backup's copy in the vault (missing or altered commit or page), not a failure of the vault. */
export function isCopyDamage(err: unknown): boolean {
  return err instanceof ObjectManifestCorruptError || isMissingObject(err);
}

/**
 * Turns a vault URL into a store: `file:///absolute/path` or `s3://bucket[/prefix]`.
 */
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { FileVaultStore } from './file-store.js';
import type { S3VaultOptions } from './s3-store.js';
import type { VaultStore } from './store.js';

/** S3 settings that do not fit in the URL. */
export type VaultConnectOptions = Omit<S3VaultOptions, 'bucket' | 'prefix'>;

/**
 * Opens the vault a URL names. `file:` URLs must be absolute (`file:///var/backups`); `s3:`
 * URLs name a bucket and an optional prefix, and take the endpoint, KMS key and Object Lock
 * mode from `options`. Anything else is a `UserError` that says which forms are accepted.
 */
export async function openVault(url: string, options: VaultConnectOptions = {}): Promise<VaultStore> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError(`vault URL ${JSON.stringify(url)} is not a URL; use file:///absolute/path or s3://bucket/prefix`);
  }
  if (parsed.protocol === 'file:') {
    if (parsed.host !== '' || parsed.search || parsed.hash) {
      throw new UserError(`vault URL ${JSON.stringify(url)} must be file:///absolute/path (three slashes, no host)`);
    }
    return new FileVaultStore(fileURLToPath(parsed));
  }
  if (parsed.protocol === 's3:') {
    const bucket = parsed.hostname;
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || parsed.search || parsed.hash) {
      throw new UserError(`vault URL ${JSON.stringify(url)} must be s3://bucket/prefix with a valid bucket name`);
    }
    const prefix = decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, '');
    // Loaded on demand: the AWS SDK is a large import that file:// vaults never need.
    const { S3VaultStore } = await import('./s3-store.js');
    return new S3VaultStore({ ...options, bucket, prefix });
  }
  throw new UserError(`vault URL ${JSON.stringify(url)} has unsupported scheme ${parsed.protocol}; use file:///absolute/path or s3://bucket/prefix`);
}

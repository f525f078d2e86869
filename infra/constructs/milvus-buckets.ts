/**
 * The workflow role's access to the buckets of S3-backed Milvus instances (core/backup/objects.ts,
 * core/restore/objects.ts): exactly the prefixes the config declares, nothing wider.
 *
 * - Backups (primary region): list and read each plan's `milvus.objectStorage` root path. The
 *   copy is a CopyObject sent to the vault, which S3 authorises with s3:GetObject on the source
 *   object and s3:PutObject on the vault key (the vault's own grants).
 * - Restores (primary and DR regions): list, write and abort uploads below each
 *   `restoreTargets` entry; the listing is for the emptiness check before a restore writes. No
 *   read, no delete: a restore target is written, never read or emptied, by the workflow.
 *
 * The listing grants carry an `s3:prefix` condition, so the role cannot list the rest of a
 * Milvus's bucket either. S3 ARNs carry no region, so a DR region's restore target is named the
 * same way. A bucket encrypted with a customer managed KMS key must also allow the role to use
 * that key (kms:Decrypt to read, kms:GenerateDataKey to write) in the key's policy.
 */
import * as iam from 'aws-cdk-lib/aws-iam';
import type { ResolvedPlan } from '../../core/config/resolve.js';

const bucketArn = (bucket: string): string => `arn:aws:s3:::${bucket}`;
/** Keys below `prefix` ('' is the whole bucket). */
const below = (prefix: string): string => (prefix === '' ? '*' : `${prefix}/*`);

function grantList(role: iam.IGrantable, bucket: string, prefixes: readonly string[]): void {
  const whole = prefixes.includes('');
  iam.Grant.addToPrincipal({
    grantee: role,
    actions: ['s3:ListBucket'],
    resourceArns: [bucketArn(bucket)],
    ...(whole ? {} : { conditions: { StringLike: { 's3:prefix': prefixes.map((p) => `${p}/*`) } } }),
  });
}

/** Read on each plan's Milvus root path (the source of CopyObjects). */
export function grantMilvusBucketRead(role: iam.IGrantable, plans: readonly ResolvedPlan[]): void {
  const byBucket = groupPrefixes(plans.flatMap((p) => (p.plan.milvus.objectStorage ? [{ bucket: p.plan.milvus.objectStorage.bucket, prefix: p.plan.milvus.objectStorage.rootPath }] : [])));
  for (const [bucket, prefixes] of byBucket) {
    grantList(role, bucket, prefixes);
    iam.Grant.addToPrincipal({ grantee: role, actions: ['s3:GetObject'], resourceArns: prefixes.map((p) => `${bucketArn(bucket)}/${below(p)}`) });
  }
}

/** Write (and list, for the emptiness check) below each plan's restore targets (RestoreObjects). */
export function grantMilvusRestoreTargets(role: iam.IGrantable, plans: readonly ResolvedPlan[]): void {
  const byBucket = groupPrefixes(plans.flatMap((p) => p.plan.milvus.objectStorage?.restoreTargets ?? []));
  for (const [bucket, prefixes] of byBucket) {
    grantList(role, bucket, prefixes);
    iam.Grant.addToPrincipal({ grantee: role, actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resourceArns: prefixes.map((p) => `${bucketArn(bucket)}/${below(p)}`) });
  }
}

function groupPrefixes(entries: readonly { readonly bucket: string; readonly prefix: string }[]): Map<string, string[]> {
  const byBucket = new Map<string, string[]>();
  for (const { bucket, prefix } of entries) {
    const list = byBucket.get(bucket) ?? [];
    if (!list.includes(prefix)) list.push(prefix);
    byBucket.set(bucket, list.sort());
  }
  return byBucket;
}

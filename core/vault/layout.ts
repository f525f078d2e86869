/**
 * The one module that knows where things live in a vault. Every other module asks it for keys
 * and never concatenates them itself, so the layout can be read (and changed) in one place.
 *
 * ```
 * <prefix>/
 *   data/packs/<aa>/<packId>.pack                      chunk data (content-defined chunks, packed)
 *   backups/<backupId>/backup.json                     the backup's index (written last by the workflow)
 *   backups/<backupId>/inventory.json                  what Discover found (resources, volumes)
 *   backups/<backupId>/milvus.json                     collections, flush confirmation, row counts
 *   backups/<backupId>/hooks/<pre|post>.json           exec hook runs with their output
 *   backups/<backupId>/manifests/<group>/<kind>/<namespace>/<name>.yaml
 *   backups/<backupId>/manifests/core/Secret/<namespace>/<name>.sealed.json   a Secret, envelope-encrypted
 *   backups/<backupId>/volumes/<volume>/index.jsonl.gz the volume's file index (data mover)
 *   progress/backups/<backupId>/<volume>.json          the export's progress (data mover, every few seconds)
 *   progress/restores/<restoreId>/<volume>.json        a hydration's progress (data mover, every few seconds)
 *   volumes/<volume>/backups/<backupId>.json           the volume backup's summary, written last:
 *                                                      its presence means the export is complete
 *   drills/<plan>/<drillId>.json                       a DR drill's evidence report (for auditors)
 *   retention/<runId>.json                             a retention run's report (kept, expired, freed)
 *   milvus-objects/<aa>/<sha256>                       a copied object of an S3-backed Milvus's bucket
 *   backups/<backupId>/objects/manifest-<page>.jsonl.gz, backups/<backupId>/objects/commit.json
 *                                                      the backup's manifest of those objects
 * ```
 *
 * Packs are shared by every backup of every volume (deduplication) and are only deleted by the
 * retention workflow by reference, never by age; so are the copied Milvus objects, whose keys
 * core/objectstore/layout.ts builds (on top of `backupPrefix`). Everything one backup owns sits
 * under `backups/<backupId>/`, so expiring a backup is one prefix plus its volume summaries.
 * Progress reports are the exception, on purpose: they are rewritten every few seconds, each
 * write a new locked version on S3, so they live under their own top-level `progress/`, where
 * they carry a short lock of their own and the vault's lifecycle expires them by age (and,
 * since a report is only read while its run goes on, nothing needs them once it has ended).
 */
import { UserError } from '../errors.js';

/** A backup id, volume name or pack id that cannot be used in an object key. */
export class InvalidKeyPartError extends UserError {
  constructor(what: string, value: string, allowed: string) {
    super(`${what} ${JSON.stringify(value)} cannot be used in a vault key: ${allowed}`);
    this.name = 'InvalidKeyPartError';
  }
}

// Names that become one path segment: no slashes, no "." or "..", nothing a shell or an S3
// console would mangle. Kubernetes names (DNS-1123) and our backup ids fit comfortably.
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const SEGMENT_RULE = 'use 1-253 letters, digits, ".", "_" or "-", starting with a letter or digit';
const PACK_ID = /^[0-9a-f]{32}$/;
const KUBE_SEGMENT = /^[A-Za-z0-9._-]{1,253}$/;

function segment(what: string, value: string): string {
  if (!SEGMENT.test(value)) throw new InvalidKeyPartError(what, value, SEGMENT_RULE);
  return value;
}

/** Checks a backup id for use in keys and returns it (throws `InvalidKeyPartError`). */
export function checkBackupId(backupId: string): string {
  return segment('backup id', backupId);
}

/** Checks a volume name for use in keys and returns it (throws `InvalidKeyPartError`). */
export function checkVolumeName(volume: string): string {
  return segment('volume name', volume);
}

/** Key of a pack object: the first two hex digits fan the packs out over 256 prefixes. */
export function packKey(packId: string): string {
  if (!PACK_ID.test(packId)) throw new InvalidKeyPartError('pack id', packId, 'expected 32 lowercase hex digits');
  return `data/packs/${packId.slice(0, 2)}/${packId}.pack`;
}

/** Prefix under which every pack lives (for listing by the retention workflow). */
export const PACKS_PREFIX = 'data/packs/';

/** The pack id in a pack key, or undefined when the key is not a pack. */
export function packIdFromKey(key: string): string | undefined {
  const m = /^data\/packs\/[0-9a-f]{2}\/([0-9a-f]{32})\.pack$/.exec(key);
  return m?.[1];
}

/** Prefix of everything one backup owns. */
export function backupPrefix(backupId: string): string {
  return `backups/${checkBackupId(backupId)}/`;
}

/**
 * Written when a backup fails (its failure path, or the recovery after a dead execution): what
 * it left in the vault is an unfinished backup, not a damaged one, and `verify` says so.
 */
export function failedMarkerKey(backupId: string): string {
  return `${backupPrefix(backupId)}failed.json`;
}

/** The backup's own record (written by the backup workflow's finalize step). */
export function backupRecordKey(backupId: string): string {
  return `${backupPrefix(backupId)}backup.json`;
}

/** A captured Kubernetes object. Group is `core` for the core API group. */
export function manifestKey(backupId: string, ref: { group: string; kind: string; namespace?: string; name: string }): string {
  const part = (what: string, v: string): string => {
    if (!KUBE_SEGMENT.test(v) || v === '.' || v === '..') throw new InvalidKeyPartError(what, v, 'expected a Kubernetes name');
    return v;
  };
  const ns = ref.namespace === undefined ? '_cluster' : part('namespace', ref.namespace);
  return `${backupPrefix(backupId)}manifests/${part('group', ref.group)}/${part('kind', ref.kind)}/${ns}/${part('name', ref.name)}.yaml`;
}

/** Prefix of every captured object of a backup (listing it is how a restore finds them). */
export function manifestsPrefix(backupId: string): string {
  return `${backupPrefix(backupId)}manifests/`;
}

/** A manifest key (plain or sealed) parsed back into its parts, or undefined for any other key. */
export function parseManifestKey(key: string): { backupId: string; group: string; kind: string; namespace?: string; name: string; sealed: boolean } | undefined {
  const m = /^backups\/([^/]+)\/manifests\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+?)(\.sealed\.json|\.yaml)$/.exec(key);
  if (!m) return undefined;
  return { backupId: m[1]!, group: m[2]!, kind: m[3]!, ...(m[4] === '_cluster' ? {} : { namespace: m[4]! }), name: m[5]!, sealed: m[6] === '.sealed.json' };
}

/** A captured Secret, sealed (never stored in the clear, even in an encrypted bucket). */
export function sealedManifestKey(backupId: string, ref: { group: string; kind: string; namespace?: string; name: string }): string {
  return manifestKey(backupId, ref).replace(/\.yaml$/, '.sealed.json');
}

/** What the backup workflow's Discover step found: every matched resource and the protected volumes. */
export function inventoryKey(backupId: string): string {
  return `${backupPrefix(backupId)}inventory.json`;
}

/** The Milvus side of a backup: collections, how each flush was confirmed, row counts. */
export function milvusStateKey(backupId: string): string {
  return `${backupPrefix(backupId)}milvus.json`;
}

/** The runs of a plan's exec hooks of one phase, with their output. */
export function hookRunsKey(backupId: string, phase: 'pre' | 'post'): string {
  return `${backupPrefix(backupId)}hooks/${phase}.json`;
}

/** The file index of one volume in one backup (gzip-compressed JSON lines). */
export function volumeIndexKey(backupId: string, volume: string): string {
  return `${backupPrefix(backupId)}volumes/${checkVolumeName(volume)}/index.jsonl.gz`;
}

/**
 * Prefix of every progress report (core/datamover/progress.ts): rewritten every few seconds
 * while a data mover runs, read only while it runs. Its own top-level prefix so the vault's
 * lifecycle can expire reports by age (infra/constructs/vault.ts), which it must never do to
 * anything else in the vault, and so a role that may only report progress is granted these
 * keys alone.
 */
export const PROGRESS_PREFIX = 'progress/';

/** Prefix of the progress reports of hydrations: what a restore's data-mover role may write. */
export const RESTORE_PROGRESS_PREFIX = `${PROGRESS_PREFIX}restores/`;

/** Prefix of the progress reports of exports. */
export const BACKUP_PROGRESS_PREFIX = `${PROGRESS_PREFIX}backups/`;

/** The progress of one volume's export (see {@link PROGRESS_PREFIX}). */
export function backupProgressKey(backupId: string, volume: string): string {
  return `${backupProgressPrefix(backupId)}${checkVolumeName(volume)}.json`;
}

/** Prefix of the progress objects of every volume of a backup (listing it is how `describe` finds them). */
export function backupProgressPrefix(backupId: string): string {
  return `${BACKUP_PROGRESS_PREFIX}${checkBackupId(backupId)}/`;
}

/** Checks a restore id for use in keys and returns it (throws `InvalidKeyPartError`). */
export function checkRestoreId(restoreId: string): string {
  return segment('restore id', restoreId);
}

/** The progress of one volume's hydration by restore `restoreId` (see {@link PROGRESS_PREFIX}). */
export function restoreProgressKey(restoreId: string, volume: string): string {
  return `${restoreProgressPrefix(restoreId)}${checkVolumeName(volume)}.json`;
}

/** Prefix of the progress objects of every volume a restore hydrates. */
export function restoreProgressPrefix(restoreId: string): string {
  return `${RESTORE_PROGRESS_PREFIX}${checkRestoreId(restoreId)}/`;
}

/** Prefix of everything every backup owns (for a whole-vault verify). */
export const BACKUPS_PREFIX = 'backups/';

/**
 * What a key under `backups/` is, for a whole-vault verify: the backup's record, its inventory,
 * a volume's file index, or something else of the backup. Undefined for keys outside `backups/`.
 */
export function parseBackupObjectKey(key: string): { backupId: string; kind: 'record' | 'inventory' | 'failed' | 'index' | 'other'; volume?: string } | undefined {
  const m = /^backups\/([^/]+)\/(.+)$/.exec(key);
  if (!m || !SEGMENT.test(m[1]!)) return undefined;
  const backupId = m[1]!;
  const rest = m[2]!;
  if (rest === 'backup.json') return { backupId, kind: 'record' };
  if (rest === 'inventory.json') return { backupId, kind: 'inventory' };
  if (rest === 'failed.json') return { backupId, kind: 'failed' };
  const v = /^volumes\/([^/]+)\/index\.jsonl\.gz$/.exec(rest);
  if (v && SEGMENT.test(v[1]!)) return { backupId, kind: 'index', volume: v[1]! };
  return { backupId, kind: 'other' };
}

/** Prefix of every committed backup summary of one volume. */
export function volumeSummariesPrefix(volume: string): string {
  return `volumes/${checkVolumeName(volume)}/backups/`;
}

/** Prefix of every committed volume summary in the vault. */
export const VOLUMES_PREFIX = 'volumes/';

/**
 * What an export writes once and never again, as key patterns whose `*` spans slashes (IAM's
 * wildcard): packs, volume summaries and file indexes. The data mover creates them with
 * `ifAbsent` (S3's If-None-Match), and the vault's bucket policy refuses its role any other
 * write there (infra/constructs/vault.ts). A file index's pattern ends in its file name: one
 * ending at the volume's directory would also match a manifest of a namespace named "volumes".
 */
export const EXPORT_CREATE_ONLY_PATTERNS: readonly string[] = [`${PACKS_PREFIX}*`, `${VOLUMES_PREFIX}*`, `${BACKUPS_PREFIX}*/volumes/*/index.jsonl.gz`];

/** The summary of one volume in one backup; written last, so it marks a complete export. */
export function volumeSummaryKey(backupId: string, volume: string): string {
  return `${volumeSummariesPrefix(volume)}${checkBackupId(backupId)}.json`;
}

/** Parses a volume summary key back into its parts, or undefined for any other key. */
export function parseVolumeSummaryKey(key: string): { volume: string; backupId: string } | undefined {
  const m = /^volumes\/([^/]+)\/backups\/([^/]+)\.json$/.exec(key);
  if (!m || !SEGMENT.test(m[1]!) || !SEGMENT.test(m[2]!)) return undefined;
  return { volume: m[1]!, backupId: m[2]! };
}

/** Prefix of every drill's evidence report. */
export const DRILLS_PREFIX = 'drills/';

/** Prefix of the evidence reports of one plan's drills. */
export function drillEvidencePrefix(plan: string): string {
  return `${DRILLS_PREFIX}${segment('plan name', plan)}/`;
}

/** The evidence report of one drill (JSON an auditor can read). */
export function drillEvidenceKey(plan: string, drillId: string): string {
  return `${drillEvidencePrefix(plan)}${segment('drill id', drillId)}.json`;
}

/** Prefix of every retention run's report. */
export const RETENTION_PREFIX = 'retention/';

/** The report of one retention run. */
export function retentionReportKey(runId: string): string {
  return `${RETENTION_PREFIX}${segment('retention run id', runId)}.json`;
}

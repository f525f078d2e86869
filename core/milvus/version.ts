/**
 * Milvus versions: parsing and comparing them, what each line does that a backup depends on
 * (one table, {@link milvusBehaviour}), how milvus-guard quiesces each one
 * ({@link quiesceMethod}), and finding the version of a plan's Milvus at run time
 * ({@link detectMilvusVersion}).
 *
 * The facts, from the Milvus sources (milvus-io/milvus):
 * - REST v2 `collections/flush`: none before 2.5.4 (the v2 router has no such route; gin
 *   answers `404 page not found`); 2.5.4+ and 2.6 answer as soon as the segments are sealed,
 *   without their ids or the flush timestamp; 3.0/master wait for the flush (`waitForFlush`,
 *   bounded by the `Request-Timeout` header, 30 s by default). No line has a REST flush-state
 *   route.
 * - `POST :9091/api/v1/persist` and `GET :9091/api/v1/persist/state` (the proxy's Flush and
 *   GetFlushState as JSON; internal/distributed/proxy/httpserver/handler.go `RegisterRoutesTo`,
 *   2.4 through master) are served on every line.
 * - From 2.5.27 and 2.6.10 (and on 3.0/master) the `/api/v1` handlers on 9091 require
 *   credentials when `common.security.authorizationEnabled` is true: HTTP 401 with
 *   `{"code":1800,"message":"user hasn't authenticated"}` otherwise (handler_authz_test.go,
 *   master, builds that middleware "the way the metrics port serves it").
 * - The datacoord GC pause (`/management/datacoord/garbage_collection/pause`) returns a ticket
 *   and takes an optional `collection_id` from 2.6.8; resume then needs that ticket. Before
 *   2.6.8 there is one global pause, no ticket, and any resume ends it.
 * - `common.security.defaultRootPassword` exists from 2.4.7 (pkg/util/paramtable/component_param.go,
 *   `Version: "2.4.7"`, default `Milvus`).
 */
import type { KubeClients } from '../kube/connect.js';
import { statusOf } from '../kube/errors.js';
import { KINDS } from '../kube/kinds.js';

/** A parsed Milvus version: a release (`v2.5.14`, `2.6.0-rc1`), a master build, or unknown. */
export type MilvusVersion =
  | { readonly kind: 'release'; readonly major: number; readonly minor: number; readonly patch: number; readonly prerelease?: string; readonly text: string }
  | { readonly kind: 'master'; readonly text: string }
  | { readonly kind: 'unknown'; readonly text?: string };

const RELEASE = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?$/;

/**
 * Parses a Milvus version or image tag: `v2.5.14`, `2.6.8`, `v2.6.0-rc1`, `master-20250301-1a2b3c4`
 * (a master build, newer than every release), anything else (`latest`, a digest, empty) unknown.
 * A suffix such as `-gpu` is a build variant, not a pre-release, and is ignored; `-rc1`,
 * `-beta` and `-alpha…` are pre-releases and sort before the release.
 */
export function parseMilvusVersion(text: string | undefined): MilvusVersion {
  const t = (text ?? '').trim();
  if (t === '') return { kind: 'unknown' };
  if (/^master(-|$)/i.test(t)) return { kind: 'master', text: t };
  const m = RELEASE.exec(t);
  if (!m) return { kind: 'unknown', text: t };
  const suffix = m[4];
  const prerelease = suffix && /^(rc|alpha|beta)/i.test(suffix) ? suffix : undefined;
  return { kind: 'release', major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0), ...(prerelease ? { prerelease } : {}), text: t };
}

/** The tag of an image reference (`milvusdb/milvus:v2.5.14` → `v2.5.14`); undefined for a digest-only or untagged one. */
export function imageTag(image: string | undefined): string | undefined {
  if (!image) return undefined;
  const noDigest = image.split('@')[0]!;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(colon + 1) : undefined;
}

/**
 * Orders two versions: negative when `a` is older. Master builds are newer than any release;
 * a pre-release is older than its release. Unknown versions cannot be ordered (throws).
 */
export function compareMilvusVersions(a: MilvusVersion, b: MilvusVersion): number {
  if (a.kind === 'unknown' || b.kind === 'unknown') throw new RangeError('an unknown Milvus version cannot be compared');
  if (a.kind === 'master' || b.kind === 'master') return (a.kind === 'master' ? 1 : 0) - (b.kind === 'master' ? 1 : 0);
  for (const k of ['major', 'minor', 'patch'] as const) if (a[k] !== b[k]) return a[k] - b[k];
  if (a.prerelease === b.prerelease) return 0;
  if (a.prerelease === undefined) return 1;
  if (b.prerelease === undefined) return -1;
  return a.prerelease < b.prerelease ? -1 : 1;
}

/** Whether `v` is at least `min` (`"2.6.8"`); false for an unknown version. */
export function atLeast(v: MilvusVersion, min: string): boolean {
  return v.kind !== 'unknown' && compareMilvusVersions(v, parseMilvusVersion(min)) >= 0;
}

/** The release lines milvus-guard supports; master builds count as 3.0. */
export const SUPPORTED_LINES = ['2.4', '2.5', '2.6', '3.0'] as const;
export type MilvusLine = (typeof SUPPORTED_LINES)[number];

/** The supported line of a version, or undefined (unknown, or a line milvus-guard does not support). */
export function milvusLine(v: MilvusVersion): MilvusLine | undefined {
  if (v.kind === 'master') return '3.0';
  if (v.kind !== 'release') return undefined;
  const line = `${v.major}.${v.minor}`;
  return (SUPPORTED_LINES as readonly string[]).includes(line) ? (line as MilvusLine) : undefined;
}

/** What a Milvus version does that backing it up depends on (see the module documentation for the sources). */
export interface MilvusBehaviour {
  /** REST v2 `collections/flush`: no such route, answers once sealed (not flushed), or waits for the flush. */
  readonly restFlush: 'absent' | 'returns-at-once' | 'waits';
  /** `:9091/api/v1/persist` + `/persist/state` (Flush and GetFlushState as JSON). */
  readonly persistApi: true;
  /** GC pause: one global pause without a ticket, or tickets (with an optional `collection_id`). */
  readonly gcPause: 'global-without-ticket' | 'ticket';
  /** Whether `:9091/api/v1/*` needs credentials when authorization is enabled. */
  readonly managementApiAuth: boolean;
  /** Whether `common.security.defaultRootPassword` sets root's first password. */
  readonly defaultRootPasswordSetting: boolean;
  /**
   * REST v2 `databases/list` (and the other `databases/*` routes): from 2.4.18 (milvus-io/milvus
   * #38188, "Support database requests in RESTful API" in the 2.4.18 release notes); before, the
   * router answers `404 page not found`.
   */
  readonly restDatabases: boolean;
}

/**
 * The behaviour of a version. The one table of version thresholds; the simulated Milvus reads
 * it too. An unknown version gets the newest behaviour, except that nothing version-gated is
 * assumed absent: callers that depend on it (the GC ticket) look at the answer.
 */
export function milvusBehaviour(v: MilvusVersion): MilvusBehaviour {
  if (v.kind === 'unknown') return { restFlush: 'waits', persistApi: true, gcPause: 'ticket', managementApiAuth: true, defaultRootPasswordSetting: true, restDatabases: true };
  return {
    restFlush: !atLeast(v, '2.5.4') ? 'absent' : atLeast(v, '3.0.0-alpha') ? 'waits' : 'returns-at-once',
    persistApi: true,
    gcPause: atLeast(v, '2.6.8') ? 'ticket' : 'global-without-ticket',
    // 2.5.27 on the 2.5 line, 2.6.10 on 2.6, every 3.0/master build.
    managementApiAuth: milvusLine(v) === '2.5' ? atLeast(v, '2.5.27') : atLeast(v, '2.6.10'),
    defaultRootPasswordSetting: atLeast(v, '2.4.7'),
    restDatabases: atLeast(v, '2.4.18'),
  };
}

/** The oldest Milvus a backup can run against: see {@link backupUnsupportedReason}. */
export const MINIMUM_BACKUP_VERSION = '2.4.18';

/**
 * Why a backup cannot run against Milvus `v`, or undefined when it can (a version that could not
 * be read is tried: nothing says it cannot). A backup flushes and counts every collection of every
 * database, and lists the databases through REST v2 `databases/list`, which Milvus serves from
 * 2.4.18 ({@link MilvusBehaviour.restDatabases}); a backup that could not list them would miss the
 * rows of every database but `default` still in the message queue. Releases before 2.4.6 also
 * answered REST v2 successes with code 200 and refused `count(*)` without a filter
 * (milvus-io/milvus#33099, #34369), and lines before 2.4 have no REST v2 at all. Newer lines are
 * tried, as is a tag without a patch number.
 */
export function backupUnsupportedReason(v: MilvusVersion): string | undefined {
  // A tag without a patch number (a branch build, `2.4-20250110-<sha>`) says too little to refuse.
  if (v.kind !== 'release' || !/^v?\d+\.\d+\.\d+/.test(v.text)) return undefined;
  const name = `v${v.major}.${v.minor}.${v.patch}${v.prerelease ? `-${v.prerelease}` : ''}`;
  if (!atLeast(v, '2.4.0')) {
    return `Milvus ${name} is older than the lines milvus-guard supports (${MINIMUM_BACKUP_VERSION} or later on 2.4, then 2.5, 2.6, 3.0 and master builds)`;
  }
  if (!milvusBehaviour(v).restDatabases) {
    return `Milvus ${name} cannot list its databases through REST v2 (databases/list exists from ${MINIMUM_BACKUP_VERSION}), and a backup must flush and count the collections of every database; upgrade Milvus to ${MINIMUM_BACKUP_VERSION} or later`;
  }
  return undefined;
}

/** How milvus-guard quiesces a Milvus of some version, and why. */
export interface QuiesceMethod {
  /** Always `persist`: see {@link quiesceMethod}. */
  readonly flush: 'persist';
  /** `global-with-ticket` (2.6.8+), `global-without-ticket` (older), or `as-answered` (unknown version). */
  readonly gcPause: 'global-with-ticket' | 'global-without-ticket' | 'as-answered';
  /** One line for the step detail and the record. */
  readonly summary: string;
}

/**
 * The quiesce method for a version.
 *
 * Flush: `:9091/api/v1/persist`, then `/persist/state` until flushed, on every line. It is the
 * only way 2.4–2.6 can confirm a flush (REST v2 has no flush on 2.4 and cannot confirm one on
 * 2.5/2.6), and it is still served on 3.0/master. There REST v2 flush would wait for the flush,
 * but inside one Lambda call for up to 30 s per collection; polling persist/state from the
 * workflow's Wait loop keeps every Lambda short and one code path for every version.
 *
 * GC: one global pause, with the ticket when Milvus gives one (2.6.8+). A collection-level pause
 * (`collection_id`, 2.6.8+) is not used: the snapshot covers the volumes of every collection
 * at once, including collections created or dropped while the backup runs, so every
 * collection's files must be kept; one ticket also fits the one the workflow carries to
 * Unquiesce. Before 2.6.8 the pause has no ticket and any resume (anyone's) ends it.
 */
export function quiesceMethod(v: MilvusVersion): QuiesceMethod {
  if (v.kind === 'unknown') {
    return { flush: 'persist', gcPause: 'as-answered', summary: 'Milvus version unknown: flush confirmed through :9091/api/v1/persist/state; GC paused globally, with a ticket if Milvus answers one' };
  }
  const name = v.kind === 'master' ? v.text : `v${v.major}.${v.minor}.${v.patch}${v.prerelease ? `-${v.prerelease}` : ''}`;
  return milvusBehaviour(v).gcPause === 'ticket'
    ? { flush: 'persist', gcPause: 'global-with-ticket', summary: `Milvus ${name}: flush confirmed through :9091/api/v1/persist/state; GC paused globally with a ticket` }
    : { flush: 'persist', gcPause: 'global-without-ticket', summary: `Milvus ${name}: flush confirmed through :9091/api/v1/persist/state; GC paused globally, no ticket (before 2.6.8: any resume ends the pause)` };
}

/** A detected version and where it was read. */
export interface DetectedVersion {
  readonly version: MilvusVersion;
  /** `Milvus <ns>/<name> .status.currentVersion`, `Deployment <ns>/<name> image`, or why it is unknown. */
  readonly source: string;
}

interface MilvusCr {
  spec?: { components?: { version?: string; image?: string } };
  status?: { currentVersion?: string; currentImage?: string };
}

interface Workload {
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: { template?: { spec?: { containers?: { name?: string; image?: string }[] } } };
}

/**
 * Finds the version of the Milvus `instance` in `namespace` from the cluster, in this order: the
 * Milvus CR's `.status.currentVersion`, `.status.currentImage` tag, `.spec.components.version`,
 * `.spec.components.image` tag (Milvus Operator); then the milvus container's image tag of the
 * instance's proxy or standalone Deployment/StatefulSet (Helm: label
 * `app.kubernetes.io/instance`, component in `component` or `app.kubernetes.io/component`).
 * Unknown when none says; an API error other than 404/403 is thrown.
 */
export async function detectMilvusVersion(kube: Pick<KubeClients, 'custom' | 'apps'>, namespace: string, instance: string): Promise<DetectedVersion> {
  const tried: string[] = [];
  try {
    const cr = (await kube.custom.getNamespacedCustomObject({ group: KINDS.Milvus.group, version: KINDS.Milvus.version, plural: KINDS.Milvus.plural, namespace, name: instance })) as MilvusCr;
    const candidates: [string, string | undefined][] = [
      ['.status.currentVersion', cr.status?.currentVersion],
      ['.status.currentImage', imageTag(cr.status?.currentImage)],
      ['.spec.components.version', cr.spec?.components?.version],
      ['.spec.components.image', imageTag(cr.spec?.components?.image)],
    ];
    for (const [field, value] of candidates) {
      const version = parseMilvusVersion(value);
      if (version.kind !== 'unknown') return { version, source: `Milvus ${namespace}/${instance} ${field}` };
    }
    tried.push(`Milvus ${namespace}/${instance} names no version`);
  } catch (err) {
    const status = statusOf(err);
    if (status !== 404 && status !== 403) throw err;
    tried.push(status === 404 ? `no Milvus ${namespace}/${instance}` : `Milvus ${namespace}/${instance} not readable (403)`);
  }
  const selector = `app.kubernetes.io/instance=${instance}`;
  const lists: [string, () => Promise<{ items: Workload[] }>][] = [
    ['Deployment', () => kube.apps.listNamespacedDeployment({ namespace, labelSelector: selector }) as Promise<{ items: Workload[] }>],
    ['StatefulSet', () => kube.apps.listNamespacedStatefulSet({ namespace, labelSelector: selector }) as Promise<{ items: Workload[] }>],
  ];
  for (const [kind, list] of lists) {
    let items: Workload[];
    try {
      items = (await list()).items ?? [];
    } catch (err) {
      const status = statusOf(err);
      if (status !== 404 && status !== 403) throw err;
      tried.push(`${kind}s not readable (${status})`);
      continue;
    }
    for (const w of items) {
      const labels = w.metadata?.labels ?? {};
      const component = labels['app.kubernetes.io/component'] ?? labels.component;
      if (component !== 'proxy' && component !== 'standalone') continue;
      const containers = w.spec?.template?.spec?.containers ?? [];
      const container = containers.find((c) => c.name === 'milvus' || c.name === component) ?? containers.find((c) => /milvus/.test(c.image ?? ''));
      const version = parseMilvusVersion(imageTag(container?.image));
      if (version.kind !== 'unknown') return { version, source: `${kind} ${namespace}/${w.metadata?.name} image ${container!.image}` };
    }
  }
  tried.push(`no proxy or standalone workload with a versioned milvus image (${selector})`);
  return { version: { kind: 'unknown' }, source: tried.join('; ') };
}

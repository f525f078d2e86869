/**
 * Which PersistentVolumeClaims hold a Milvus instance's state, recognised by the names the
 * Milvus Helm chart (zilliztech/milvus-helm, chart `milvus`), its subcharts and the Milvus
 * Operator (zilliztech/milvus-operator) give them. All of them must be snapshotted together:
 * etcd holds the metadata that points into the bucket and the channel checkpoints, and an
 * in-cluster message queue holds what was written after the last flush.
 *
 * Where the names come from (paths in those repositories):
 * - Helm's fullname rule, shared by every chart below: the release name alone when it already
 *   contains the chart's name, else `<release>-<chart>` (charts/milvus/templates/_helpers.tpl
 *   `milvus.fullname`; the same rule in each subchart's `fullname` helper).
 * - Subcharts and their aliases: charts/milvus/requirements.yaml — `pulsarv2` aliased `pulsar`
 *   (Pulsar 2.x, chart name `pulsar`), the Apache `pulsar` 3.3.0 chart aliased `pulsarv3` with
 *   `nameOverride: pulsarv3` (charts/milvus/values.yaml), bitnami `kafka` 15.5.1 with its
 *   `zookeeper` subchart, bitnami `etcd` 8.12.0, `minio` 8.0.17.
 * - The Operator installs the same charts as separate Helm releases named `<cr>-etcd`,
 *   `<cr>-minio`, `<cr>-pulsar` (also for Pulsar v3: it resets `nameOverride` so the fullname is
 *   `<cr>-pulsar`) and `<cr>-kafka` (pkg/helm/helm.go `GetChartRequest`, pkg/helm/values/values.go,
 *   Makefile's chart downloads), so Kafka's ZooKeeper is `<cr>-kafka-zookeeper`.
 */

/** What a volume holds for Milvus. */
export type VolumeRole = 'etcd' | 'object-storage' | 'message-queue' | 'milvus-local' | 'other';

/** The message queue (write-ahead log) a Milvus instance writes to. */
export type QueueKind = 'pulsar' | 'kafka' | 'woodpecker' | 'rocksmq' | 'natsmq' | 'unknown';

/** A volume name the charts give, and what it holds. */
export interface VolumeClass {
  readonly role: VolumeRole;
  /** The chart component that owns it, e.g. `pulsar-bookie-journal`. */
  readonly component: string;
  /** For message-queue volumes (and a standalone Milvus's own volume), the queue they hold. */
  readonly queue?: QueueKind;
}

/** A volume the charts give that holds no Milvus state, and why it is left out. */
export interface NotStateClass {
  readonly skip: string;
  readonly component: string;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Helm's `<chart>.fullname`: the release alone when it contains the chart's name, cut to 63. */
export function helmFullname(release: string, chart: string): string {
  const name = release.includes(chart) ? release : `${release}-${chart}`;
  return name.slice(0, 63).replace(/-$/, '');
}

const alt = (...names: string[]) => `(?:${[...new Set(names)].map(escape).join('|')})`;

interface Rule {
  readonly pattern: RegExp;
  readonly result: VolumeClass | NotStateClass;
}

/** The naming rules for instance (Helm release or Milvus CR name) `i`, most specific first. */
function rulesFor(i: string): Rule[] {
  const etcd = alt(helmFullname(i, 'etcd'), `${i}-etcd`);
  const minio = alt(helmFullname(i, 'minio'), `${i}-minio`);
  // Helm: `<release>-pulsar` (Pulsar 2 chart) or `<release>-pulsarv3`; Operator: `<cr>-pulsar`.
  const pulsar = alt(helmFullname(i, 'pulsarv3'), helmFullname(i, 'pulsar'), `${i}-pulsarv3`, `${i}-pulsar`);
  const kafka = alt(helmFullname(i, 'kafka'), `${i}-kafka`);
  // Helm: the kafka subchart's ZooKeeper `<release>-zookeeper`; Operator: `<cr>-kafka-zookeeper`.
  const zookeeper = alt(helmFullname(i, 'zookeeper'), `${i}-zookeeper`, `${i}-kafka-zookeeper`);
  // `<release>-milvus` is also accepted when the release contains "milvus" (the chart then names
  // it `<release>`): earlier versions of this module recognised only that form.
  const milvus = alt(helmFullname(i, 'milvus'), `${i}-milvus`);
  const n = '\\d+';
  const rule = (pattern: string, result: VolumeClass | NotStateClass): Rule => ({ pattern: new RegExp(`^${pattern}$`), result });
  return [
    // bitnami etcd: StatefulSet `<fullname>`, volumeClaimTemplate `data` (etcd templates/statefulset.yaml).
    rule(`data-${etcd}-${n}`, { role: 'etcd', component: 'etcd' }),
    // minio chart: distributed StatefulSet with volumeClaimTemplate `export` (`export-<disk>` with
    // drivesPerNode > 1, templates/statefulset.yaml); standalone mode one PVC `<fullname>` (pvc.yaml).
    rule(`export(?:-\\d+)?-${minio}-${n}`, { role: 'object-storage', component: 'minio' }),
    rule(minio, { role: 'object-storage', component: 'minio' }),
    // Pulsar 2.7 and 3.3 charts: volumeClaimTemplates `<fullname>-<component>-<volume>` on the
    // StatefulSet `<fullname>-<component>` (bookkeeper-statefulset.yaml, zookeeper-statefulset.yaml):
    // bookie journal/ledgers (or one `common` volume, or journal0.. / ledgers0.. with
    // useMultiVolumes), zookeeper data. Autorecovery (`recovery`), broker and proxy have no volume.
    rule(`(${pulsar})-bookie-(journal|ledgers|common)\\w*-\\1-bookie-${n}`, { role: 'message-queue', component: 'pulsar-bookie', queue: 'pulsar' }),
    rule(`(${pulsar})-zookeeper-data-\\1-zookeeper-${n}`, { role: 'message-queue', component: 'pulsar-zookeeper', queue: 'pulsar' }),
    // bitnami kafka 15.5.1: StatefulSet `<fullname>`, volumeClaimTemplates `data` and (logPersistence) `logs`.
    rule(`(?:data|logs)-${kafka}-${n}`, { role: 'message-queue', component: 'kafka', queue: 'kafka' }),
    // bitnami zookeeper 8.1.2 (kafka's subchart): volumeClaimTemplates `data` and (dataLogDir) `data-log`.
    rule(`(?:data|data-log)-${zookeeper}-${n}`, { role: 'message-queue', component: 'kafka-zookeeper', queue: 'kafka' }),
    // Woodpecker as a service (streaming.woodpecker.embedded=false, woodpecker.enabled): StatefulSet
    // `<milvus fullname>-woodpecker`, volumeClaimTemplate `woodpecker-storage` (templates/woodpecker-statefulset.yaml).
    rule(`woodpecker-storage-${milvus}-woodpecker-${n}`, { role: 'message-queue', component: 'woodpecker', queue: 'woodpecker' }),
    // Milvus's log files (log.persistence, `<fullname>-logs`, templates/pvc.yaml): not state, and
    // ReadWriteMany (often EFS, which cannot be snapshotted), so it is left out on purpose.
    rule(`${milvus}-logs`, { skip: 'Milvus log files (log.persistence), not state', component: 'milvus-logs' }),
    // Standalone Milvus's own volume: Helm `<fullname>` (templates/pvc.yaml, /var/lib/milvus:
    // RocksMQ, NATS or a local Woodpecker WAL, local data); the Operator's built-in queue volume
    // `<cr>-data` (pkg/controllers/pvc.go `getPVCNameByInstName`).
    rule(milvus, { role: 'milvus-local', component: 'milvus-standalone' }),
    rule(`${escape(i)}-data`, { role: 'milvus-local', component: 'milvus-data' }),
    // Anything else under the Pulsar release (pulsar-manager data, a Pulsar 2 prometheus PVC) is
    // snapshotted with the queue: cheap, and a new chart volume is not silently left behind. Last,
    // so a release whose own name contains "pulsar" keeps its Milvus volumes' roles.
    rule(`${pulsar}-.+`, { role: 'message-queue', component: 'pulsar', queue: 'pulsar' }),
  ];
}

/**
 * What PVC `pvcName` is for Milvus instance `instance` (a Helm release or a Milvus CR name):
 * a volume to protect ({@link VolumeClass}), a known volume that holds no state
 * ({@link NotStateClass}), or `undefined` when no chart gives that name for this instance.
 */
export function classifyVolume(pvcName: string, instance: string): VolumeClass | NotStateClass | undefined {
  return rulesFor(instance).find((r) => r.pattern.test(pvcName))?.result;
}

/** Whether a classification is a volume to protect. */
export const isState = (c: VolumeClass | NotStateClass | undefined): c is VolumeClass => c !== undefined && 'role' in c;

/**
 * The role of PVC `pvcName` in Milvus instance `instance`, or `undefined` when the name is not
 * one the charts give for state (see {@link classifyVolume} for the names).
 */
export function volumeRole(pvcName: string, instance: string): VolumeRole | undefined {
  const c = classifyVolume(pvcName, instance);
  return isState(c) ? c.role : undefined;
}

/**
 * Whether `pvcName` carries the instance name as whole dash-separated words and so probably
 * belongs to it, while no chart name matches. A name that is a known volume of a longer
 * instance name (`data-milvus-2-etcd-0` for instance `milvus`) belongs to that one instead.
 */
export function looksLikeInstanceVolume(pvcName: string, instance: string): boolean {
  const words = pvcName.split('-');
  const own = instance.split('-');
  for (let start = 0; start + own.length <= words.length; start++) {
    if (words.slice(start, start + own.length).join('-') !== instance) continue;
    for (let from = 0; from <= start; from++) {
      for (let to = start + own.length; to <= words.length; to++) {
        // The whole name as an instance would match the rules where a release is its own name
        // (a Helm standalone volume, standalone MinIO) for any PVC at all: not evidence.
        if (from === 0 && to === words.length) continue;
        const other = words.slice(from, to).join('-');
        if (other !== instance && classifyVolume(pvcName, other) !== undefined) return false;
      }
    }
    return true;
  }
  return false;
}

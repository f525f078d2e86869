/**
 * Import from Trilio for Kubernetes: turns `triliovault.trilio.io/v1` Target, Policy, Hook and
 * BackupPlan objects (as `kubectl get -o yaml` prints them, or as written by hand) into a
 * milvus-guard config.
 *
 * Nothing is dropped silently, by construction: every source object is a `TrackedObject`
 * (tracked.ts) that reports each field the mapper neither carried over nor ruled out.
 *
 * Values Trilio does not know (the EKS cluster name, the Milvus service, Object Lock settings)
 * become placeholders marked `CHANGE-ME` in the output, each with a warning.
 */
import { Document, isScalar, LineCounter, parseAllDocuments } from 'yaml';
import { InvalidInputError, UserError } from '../errors.js';
import { ConfigError, formatPath } from '../config/issues.js';
import { parseConfig } from '../config/parse.js';
import { parseQuantity } from '../config/quantity.js';
import { AWS_REGIONS } from '../config/regions.js';
import type { ConfigInput } from '../config/schema.js';
import { DNS_LABEL } from '../kube/names.js';
import { SERVER_METADATA, TrackedObject, valueAt, type ImportWarning, type Loose, type Path } from './tracked.js';

/** The API group and version of the objects this importer understands. */
export const TRILIO_API_VERSION = 'triliovault.trilio.io/v1';
const IMPORTED_KINDS = ['Target', 'Policy', 'Hook', 'BackupPlan'] as const;

/** The word that marks every value the user must edit. */
export const PLACEHOLDER = 'CHANGE-ME';
const PLACEHOLDER_NAME = 'change-me';
/** The word that marks a value derived or defaulted by the importer, worth a second look. */
export const REVIEW = 'REVIEW';
/** Region used when a Trilio target names none (or one that is not an AWS Region). */
const FALLBACK_REGION = 'us-east-1';

/** One input file. */
export interface TrilioSource {
  readonly file: string;
  readonly text: string;
}

/** The result of an import. */
export interface TrilioImport {
  /** The generated config, as written (before defaults). */
  readonly config: ConfigInput;
  /** The same config as commented YAML, placeholders marked `CHANGE-ME`. */
  readonly yaml: string;
  /** Everything not carried over, every placeholder, every suspicious hook. */
  readonly warnings: readonly ImportWarning[];
  /** Problems `parseConfig` finds in the generated config; empty when it validates. */
  readonly problems: readonly string[];
}

/** Input files that are not valid YAML. */
export class TrilioImportError extends InvalidInputError {
  constructor(problems: readonly string[]) {
    super('Trilio input', problems);
    this.name = 'TrilioImportError';
  }
}

/** `warning: FILE: BackupPlan/name spec.x.y: message`, the line printed on stderr. */
export function formatImportWarning(w: ImportWarning): string {
  const where = w.object && w.path ? `${w.object} ${w.path}` : (w.object ?? w.path);
  const subject = [w.file, where].filter((part) => part !== undefined && part !== '').join(': ');
  return `warning: ${subject ? `${subject}: ` : ''}${w.message}`;
}

// ---------------------------------------------------------------------------------------------
// Milvus endpoints in hook commands
// ---------------------------------------------------------------------------------------------

/**
 * HTTP paths Milvus serves. Management (9091): health, metrics, the datacoord management API;
 * proxy (19530): REST v2, and the deprecated REST v1 under `/v1/vector/`.
 */
const MILVUS_PATHS: Record<string, readonly RegExp[]> = {
  '9091': [/^\/healthz\/?$/, /^\/api\/v1\/health\/?$/, /^\/metrics\/?$/, /^\/management\//, /^\/webui\//],
  '19530': [/^\/v2\/vectordb\//, /^\/v1\/vector\//],
};
const MILVUS_URL = /(?:https?:\/\/)?[\w.-]*:(9091|19530)(\/[^\s'"`;|&)<>]*)?/g;

/**
 * Looks for calls to Milvus HTTP endpoints that do not exist in a hook's command, such as the
 * `curl -X POST localhost:9091/api/v1/flush` that circulates in blog posts. Returns a message
 * for the first one, or `undefined` when the command calls none.
 */
export function milvusEndpointProblem(command: unknown): string | undefined {
  const text = Array.isArray(command) ? command.map(String).join(' ') : typeof command === 'string' ? command : '';
  for (const match of text.matchAll(MILVUS_URL)) {
    const [url, port, path] = match as unknown as [string, string, string | undefined];
    if (path === undefined || path === '/' || MILVUS_PATHS[port]!.some((known) => known.test(path))) continue;
    return (
      `calls ${url}, an endpoint Milvus does not have (port 9091 serves /healthz, /metrics and /management/...; ` +
      'REST v2 on 19530 lives under /v2/vectordb/), so the hook quiesces nothing. milvus-guard quiesces Milvus itself ' +
      'before every snapshot (REST v2 /v2/vectordb/collections/flush for each collection, confirmed, plus a datacoord ' +
      'GC pause that is resumed afterwards); drop this hook from the plan'
    );
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Reading the input
// ---------------------------------------------------------------------------------------------

function isMapping(value: unknown): value is Loose {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Parses every document of every file; a `kind: List` contributes its items. */
function readObjects(sources: readonly TrilioSource[], warnings: ImportWarning[]): TrackedObject[] {
  const syntax: string[] = [];
  const objects: TrackedObject[] = [];
  for (const source of sources) {
    const lineCounter = new LineCounter();
    const docs = parseAllDocuments(source.text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    const list = Array.isArray(docs) ? docs : [];
    list.forEach((doc, d) => {
      for (const e of [...doc.errors, ...doc.warnings]) {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        syntax.push(`${source.file} (line ${line}, column ${col}): ${e.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '')}`);
      }
      if (doc.errors.length > 0) return;
      let value: unknown;
      try {
        value = doc.toJS({ maxAliasCount: 1000 });
      } catch (err) {
        syntax.push(`${source.file} (document ${d + 1}): ${(err as Error).message}`);
        return;
      }
      if (value === null || value === undefined) return;
      const position = `document ${d + 1}`;
      if (!isMapping(value)) {
        warnings.push({ file: source.file, path: position, message: 'not carried over: not a Kubernetes object (expected a mapping with apiVersion and kind)' });
        return;
      }
      if (value['kind'] === 'List' && Array.isArray(value['items'])) {
        value['items'].forEach((item, i) => {
          if (isMapping(item)) objects.push(new TrackedObject(source.file, item, `${position}, item ${i + 1}`));
          else warnings.push({ file: source.file, path: `${position}, item ${i + 1}`, message: 'not carried over: not a Kubernetes object' });
        });
        return;
      }
      objects.push(new TrackedObject(source.file, value, position));
    });
  }
  if (syntax.length > 0) throw new TrilioImportError(syntax);
  return objects;
}

// ---------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------

/** Kubernetes object names may hold dots and run to 253 characters; ours are DNS labels. */
function toName(name: string): string {
  if (DNS_LABEL.test(name) && name.length <= 63) return name;
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .slice(0, 63)
    .replace(/^-+|-+$/g, '');
  return cleaned === '' ? 'imported' : cleaned;
}

interface Reference {
  readonly name?: unknown;
  readonly namespace?: unknown;
}

type Output = {
  name: string;
  clusters: Loose[];
  vaults: Loose[];
  schedulePolicies: Loose[];
  retentionPolicies: Loose[];
  hooks: Loose[];
  plans: Loose[];
};

/** The mapper: one instance per import, so the bookkeeping stays in one place. */
class Importer {
  readonly warnings: ImportWarning[] = [];
  /** Output paths of placeholder values and the comment each gets in the YAML. */
  readonly placeholders: { path: Path; comment: string }[] = [];
  readonly out: Output = { name: 'milvus-guard', clusters: [], vaults: [], schedulePolicies: [], retentionPolicies: [], hooks: [], plans: [] };
  private readonly names = new Map<TrackedObject, string>();
  private readonly vaultOfTarget = new Map<TrackedObject, string>();
  private readonly usedNames = new Map<string, Set<string>>();

  constructor(private readonly objects: readonly TrackedObject[]) {}

  run(): void {
    for (const object of this.objects) this.common(object);
    const of = (kind: string) => this.objects.filter((o) => o.kind === kind && o.apiVersion === TRILIO_API_VERSION);
    of('Target').forEach((t) => this.target(t));
    of('Policy').forEach((p) => this.policy(p));
    of('Hook').forEach((h) => this.hook(h));
    const plans = of('BackupPlan');
    if (plans.length === 0) {
      const files = [...new Set(this.objects.map((o) => o.file))].join(', ');
      throw new UserError(`no Trilio BackupPlan (${TRILIO_API_VERSION}) found in ${files || 'the input'}; a milvus-guard config needs at least one plan`);
    }
    this.cluster(plans);
    plans.forEach((bp) => this.plan(bp));
    for (const object of this.objects) this.warnings.push(...object.leftovers());
  }

  /** apiVersion, kind and metadata: the same for every object. */
  private common(o: TrackedObject): void {
    const imported = o.apiVersion === TRILIO_API_VERSION && (IMPORTED_KINDS as readonly string[]).includes(o.kind);
    if (!imported) {
      const what = o.kind ? `${o.kind} (${o.apiVersion || 'no apiVersion'})` : 'an object without a kind';
      const why =
        o.kind === 'Secret'
          ? 'Secrets are not imported; milvus-guard reaches S3 with IAM roles and keeps no access keys'
          : `${what} is not a Trilio object milvus-guard imports (${IMPORTED_KINDS.join(', ')} of ${TRILIO_API_VERSION})`;
      o.drop([], why);
      return;
    }
    o.take('apiVersion');
    o.take('kind');
    o.take('metadata', 'name');
    o.take('metadata', 'namespace');
    for (const key of SERVER_METADATA) o.ignore('metadata', key);
    o.ignore('metadata', 'annotations', 'kubectl.kubernetes.io/last-applied-configuration');
    o.ignore('status');
  }

  /** A name for `o` in the output, unique within `section`, with a warning when it changed. */
  private nameFor(o: TrackedObject, section: string): string {
    const existing = this.names.get(o);
    if (existing) return existing;
    const used = this.usedNames.get(section) ?? new Set<string>();
    this.usedNames.set(section, used);
    let name = toName(o.name);
    for (let n = 2; used.has(name); n++) name = `${toName(o.name).slice(0, 60)}-${n}`;
    used.add(name);
    this.names.set(o, name);
    if (name !== o.name) this.warnings.push(o.warning(['metadata', 'name'], `renamed to "${name}": milvus-guard names are DNS labels (lowercase letters, digits and "-", at most 63) and unique per section`));
    return name;
  }

  /** The object of `kind` a reference names: same namespace first, else the only one by that name. */
  private resolve(kind: string, ref: unknown, from: TrackedObject): TrackedObject | undefined {
    if (!isMapping(ref) || typeof (ref as Reference).name !== 'string') return undefined;
    const { name, namespace } = ref as Reference;
    const candidates = this.objects.filter((o) => o.kind === kind && o.apiVersion === TRILIO_API_VERSION && o.name === name);
    const ns = typeof namespace === 'string' ? namespace : from.namespace;
    return candidates.find((o) => o.namespace === ns) ?? (candidates.length === 1 ? candidates[0] : undefined);
  }

  private placeholder(path: Path, comment: string, message: string): void {
    this.placeholders.push({ path, comment });
    this.warnings.push({ path: formatPath(path), message });
  }

  // -- Target → vault -------------------------------------------------------------------------

  private target(t: TrackedObject): void {
    const type = t.take('spec', 'type');
    if (type !== 'ObjectStore') {
      t.drop(['spec'], `a ${typeof type === 'string' ? type : 'untyped'} target cannot become a vault; vaults are Amazon S3 buckets with Object Lock (Trilio type ObjectStore)`);
      return;
    }
    const vendor = t.take('spec', 'vendor');
    if (typeof vendor === 'string' && vendor !== 'AWS') {
      this.warnings.push(t.warning(['spec', 'vendor'], `the target is a "${vendor}" object store; the vault is created in Amazon S3 instead, in the region below`));
    }
    const region = t.take('spec', 'objectStoreCredentials', 'region');
    const bucket = t.peek('spec', 'objectStoreCredentials', 'bucketName');
    t.drop(['spec', 'objectStoreCredentials', 'bucketName'], `milvus-guard creates and owns its vault bucket (versioning, Object Lock, KMS); backups already in bucket ${JSON.stringify(bucket)} are not migrated`);
    t.drop(['spec', 'objectStoreCredentials', 'url'], 'the vault is reached through the regional Amazon S3 endpoint');
    t.drop(['spec', 'objectStoreCredentials', 'credentialSecret'], 'milvus-guard reaches S3 with IAM roles, not access keys in a Secret');
    t.drop(['spec', 'enableBrowsing'], 'there is no target browser; list backups with the milvus-guard CLI');

    const knownRegion = typeof region === 'string' && (AWS_REGIONS as readonly string[]).includes(region);
    const vaultRegion = knownRegion ? region : FALLBACK_REGION;
    const existing = this.out.vaults.findIndex((v) => v['region'] === vaultRegion);
    if (existing >= 0) {
      // One vault per region: a second target in the same region shares the first one's vault.
      const shared = this.out.vaults[existing]!['name'] as string;
      this.vaultOfTarget.set(t, shared);
      this.warnings.push(t.warning(['spec', 'objectStoreCredentials', 'region'], `shares region ${vaultRegion} with another target; both map to vault "${shared}" (one vault per region)`));
      t.take('spec', 'thresholdCapacity');
      return;
    }

    const name = this.nameFor(t, 'vaults');
    this.vaultOfTarget.set(t, name);
    const index = this.out.vaults.length;
    const vault: Loose = { name, region: vaultRegion, objectLock: { mode: 'GOVERNANCE', defaultRetentionDays: 7 } };
    const threshold = t.take('spec', 'thresholdCapacity');
    if (typeof threshold === 'string' && parseQuantity(threshold) !== undefined) vault['thresholdCapacity'] = threshold;
    else if (threshold !== undefined) this.warnings.push(t.warning(['spec', 'thresholdCapacity'], `not carried over: ${JSON.stringify(threshold)} is not a size such as 1000Gi`));
    this.out.vaults.push(vault);

    if (!knownRegion) {
      const why = region === undefined ? 'the target names no region' : `${JSON.stringify(region)} is not an AWS Region`;
      this.placeholder(['vaults', index, 'region'], `${PLACEHOLDER}: ${why}`, `placeholder region ${FALLBACK_REGION}: ${why} (target ${t.name}); set the vault's region`);
    }
    this.placeholder(
      ['vaults', index, 'objectLock', 'mode'],
      `${REVIEW}: Trilio has no Object Lock; choose GOVERNANCE or COMPLIANCE`,
      'default Object Lock GOVERNANCE with a 7-day floor: Trilio targets have no Object Lock; choose the mode and floor for your vault',
    );
  }

  // -- Policy → schedule or retention policy ----------------------------------------------------

  private policy(p: TrackedObject): void {
    const type = p.take('spec', 'type');
    p.take('spec', 'default');
    if (type === 'Schedule') {
      const cron = p.take('spec', 'scheduleConfig', 'schedule');
      const index = this.out.schedulePolicies.length;
      this.out.schedulePolicies.push({ name: this.nameFor(p, 'schedulePolicies'), cron, timeZone: 'UTC' });
      this.placeholder(
        ['schedulePolicies', index, 'timeZone'],
        `${REVIEW}: Trilio keeps the time zone in its TrilioVaultManager`,
        `time zone UTC assumed: Trilio evaluates schedules in the TrilioVaultManager's schedulePolicyTimezone, which is not in these files; set timeZone if it was not UTC`,
      );
    } else if (type === 'Retention') {
      const policy: Loose = { name: this.nameFor(p, 'retentionPolicies') };
      for (const key of ['latest', 'weekly', 'dayOfWeek', 'monthly', 'dateOfMonth', 'yearly', 'monthOfYear']) {
        const value = p.take('spec', 'retentionConfig', key);
        if (value !== undefined) policy[key] = value;
      }
      const days = p.take('spec', 'cleanupConfig', 'backupDays');
      if (days !== undefined) policy['maxAgeDays'] = days;
      this.out.retentionPolicies.push(policy);
    } else {
      p.drop(['spec'], `a ${typeof type === 'string' ? type : 'untyped'} policy has no milvus-guard equivalent (Schedule and Retention policies are imported)`);
    }
  }

  // -- Hook → hook --------------------------------------------------------------------------------

  private hook(h: TrackedObject): void {
    const hook: Loose = { name: this.nameFor(h, 'hooks') };
    for (const phase of ['pre', 'post'] as const) {
      if (h.peek('spec', phase) === undefined) continue;
      const action: Loose = {};
      const container = h.take('spec', phase, 'execAction', 'container');
      if (container !== undefined) action['container'] = container;
      const command = h.take('spec', phase, 'execAction', 'command');
      action['command'] = command;
      for (const key of ['timeoutSeconds', 'maxRetryCount', 'ignoreFailure']) {
        const value = h.take('spec', phase, key);
        if (value !== undefined) action[key] = value;
      }
      hook[phase] = action;
      const problem = milvusEndpointProblem(command);
      if (problem) this.warnings.push(h.warning(['spec', phase, 'execAction', 'command'], problem));
    }
    this.out.hooks.push(hook);
  }

  // -- the cluster --------------------------------------------------------------------------------

  /** Trilio runs inside one cluster and never names it: one placeholder cluster for all plans. */
  private cluster(plans: readonly TrackedObject[]): void {
    const firstTarget = plans.map((bp) => this.resolve('Target', bp.peek('spec', 'backupConfig', 'target'), bp)).find((t) => t && this.vaultOfTarget.has(t));
    const vault = firstTarget ? this.out.vaults.find((v) => v['name'] === this.vaultOfTarget.get(firstTarget)) : this.out.vaults[0];
    const region = (vault?.['region'] as string | undefined) ?? FALLBACK_REGION;
    this.out.clusters.push({ name: 'eks', eksClusterName: PLACEHOLDER, region });
    this.placeholder(
      ['clusters', 0, 'eksClusterName'],
      `${PLACEHOLDER}: the EKS cluster name (aws eks list-clusters)`,
      `placeholder "${PLACEHOLDER}": Trilio runs inside the cluster and never names it; set the EKS cluster name (aws eks list-clusters)`,
    );
    this.warnings.push({ path: 'clusters[0].region', message: `${region} taken from the backup target's region; the cluster and its vault must be in the same region` });
  }

  // -- BackupPlan → plan --------------------------------------------------------------------------

  private plan(bp: TrackedObject): void {
    const index = this.out.plans.length;
    const at = (...path: Path): Path => ['plans', index, ...path];
    const plan: Loose = { name: this.nameFor(bp, 'plans'), cluster: 'eks' };

    // Namespace.
    if (bp.namespace !== undefined && DNS_LABEL.test(bp.namespace)) {
      plan['namespace'] = bp.namespace;
    } else {
      plan['namespace'] = PLACEHOLDER_NAME;
      this.placeholder(at('namespace'), `${PLACEHOLDER}: the namespace Milvus runs in`, 'placeholder namespace: the BackupPlan has no metadata.namespace; set the namespace Milvus runs in');
    }

    // What to back up: a label selector, or the labels a Helm release puts on its objects.
    const components = ['spec', 'backupPlanComponents'] as const;
    const selectors = [
      ...this.selectorList(bp, [...components, 'custom']),
      ...this.selectorList(bp, [...components, 'customSelector', 'selectResources', 'labelSelector']),
    ];
    const releases = bp.peek(...components, 'helmReleases');
    let release: string | undefined;
    if (Array.isArray(releases) && typeof releases[0] === 'string') {
      release = bp.take(...components, 'helmReleases', 0) as string;
      releases.slice(1).forEach((_, i) => bp.drop([...components, 'helmReleases', i + 1], 'a plan protects one Milvus instance; import each release into its own plan'));
    }
    bp.drop([...components, 'operators'], 'operator-based selection is not supported; milvus-guard finds the Milvus CR and its workloads by label');
    if (selectors.length > 0) {
      const [first, ...rest] = selectors;
      plan['selector'] = bp.take(...first!);
      for (const path of rest) bp.drop(path, 'a plan has one label selector (Trilio ORs several); only the first is carried over');
    } else if (release) {
      plan['selector'] = { matchLabels: { 'app.kubernetes.io/instance': release } };
    } else {
      plan['selector'] = { matchLabels: { 'app.kubernetes.io/instance': PLACEHOLDER_NAME } };
      this.placeholder(
        at('selector', 'matchLabels', 'app.kubernetes.io/instance'),
        `${PLACEHOLDER}: the Milvus instance label`,
        'placeholder selector: the BackupPlan selects no labels or Helm release (a whole-namespace plan); set the labels of the Milvus instance',
      );
    }

    // Vault.
    const targetRef = bp.take('spec', 'backupConfig', 'target');
    const target = this.resolve('Target', targetRef, bp);
    const vault = target ? this.vaultOfTarget.get(target) : undefined;
    if (vault) {
      plan['vault'] = vault;
    } else {
      plan['vault'] = this.out.vaults[0]?.['name'] ?? this.placeholderVault();
      const refName = isMapping(targetRef) ? JSON.stringify(targetRef['name']) : 'none';
      this.warnings.push(bp.warning(['spec', 'backupConfig', 'target'], `target ${refName} is not an S3 target in the imported files; the plan uses vault "${String(plan['vault'])}"`));
    }

    // Schedule.
    const schedule = this.schedule(bp);
    if (schedule !== undefined) plan['schedule'] = schedule;

    // Retention.
    plan['retention'] = this.retention(bp, at('retention'));

    // Hooks.
    const hooks = this.hooks(bp);
    if (hooks) plan['hooks'] = hooks;

    // Milvus itself: Trilio has no notion of it.
    const instanceLabel = valueAt(plan['selector'], ['matchLabels', 'app.kubernetes.io/instance']);
    const instance = release ?? (typeof instanceLabel === 'string' && instanceLabel !== PLACEHOLDER_NAME ? instanceLabel : undefined);
    if (instance) {
      plan['milvus'] = { instance, service: `${instance}-milvus` };
      this.placeholder(
        at('milvus', 'service'),
        `${REVIEW}: check with kubectl get svc -n ${String(plan['namespace'])}`,
        `Milvus service "${instance}-milvus" assumed (the Helm chart's and Operator's naming); check it with kubectl get svc -n ${String(plan['namespace'])}`,
      );
    } else {
      plan['milvus'] = { instance: PLACEHOLDER_NAME, service: PLACEHOLDER_NAME };
      this.placeholder(at('milvus', 'instance'), `${PLACEHOLDER}: the Milvus CR or Helm release`, 'placeholder Milvus instance: the BackupPlan does not say which Milvus it protects; set the Milvus CR or Helm release name');
      this.placeholder(at('milvus', 'service'), `${PLACEHOLDER}: the Milvus Service`, 'placeholder Milvus service: set the Service that exposes Milvus (the Operator names it <instance>-milvus)');
    }

    this.out.plans.push(plan);
  }

  /** Paths of the label selectors in a list at `path` (an absent list yields none). */
  private selectorList(bp: TrackedObject, path: Path): Path[] {
    const list = bp.peek(...path);
    return Array.isArray(list) ? list.map((_, i) => [...path, i]) : [];
  }

  private placeholderVault(): string {
    this.out.vaults.push({ name: 'vault', region: FALLBACK_REGION, objectLock: { mode: 'GOVERNANCE', defaultRetentionDays: 7 } });
    this.placeholder(['vaults', 0, 'region'], `${PLACEHOLDER}: no S3 target was imported`, `placeholder vault in ${FALLBACK_REGION}: no S3 target was imported; set the vault's region`);
    return 'vault';
  }

  /** `fullBackupPolicy`/`incrementalBackupPolicy` references, or the older inline crons. */
  private schedule(bp: TrackedObject): string | Loose | undefined {
    const base = ['spec', 'backupConfig', 'schedulePolicy'] as const;
    const names: string[] = [];
    const crons: string[] = [];
    for (const key of ['fullBackupPolicy', 'incrementalBackupPolicy']) {
      const ref = bp.take(...base, key);
      if (ref === undefined) continue;
      const policy = this.resolve('Policy', ref, bp);
      const name = policy ? this.names.get(policy) : undefined;
      if (policy && name && this.out.schedulePolicies.some((s) => s['name'] === name)) {
        names.push(name);
        const cron = valueAt(this.out.schedulePolicies.find((s) => s['name'] === name), ['cron']);
        if (Array.isArray(cron)) crons.push(...cron.filter((c): c is string => typeof c === 'string'));
      } else {
        this.warnings.push(bp.warning([...base, key], `not carried over: schedule policy ${JSON.stringify(isMapping(ref) ? ref['name'] : ref)} is not a Schedule policy in the imported files`));
      }
    }
    // Trilio before 2.x wrote the crons inline in the BackupPlan.
    let inline = 0;
    for (const key of ['fullBackupCron', 'incrementalCron']) {
      const cron = bp.take(...base, key, 'schedule');
      if (typeof cron === 'string' && cron.trim() !== '') {
        crons.push(cron);
        inline++;
      }
    }
    if (names.length === 1 && inline === 0) return names[0];
    const unique = [...new Set(crons)];
    if (unique.length === 0) return undefined;
    this.warnings.push(
      bp.warning([...base], 'full and incremental schedules merged into one inline schedule: every milvus-guard backup is incremental-forever (only changed chunks are uploaded), so there is no separate full backup'),
    );
    return { cron: unique, timeZone: 'UTC' };
  }

  private retention(bp: TrackedObject, outPath: Path): string | Loose {
    const ref = bp.take('spec', 'backupConfig', 'retentionPolicy');
    const named = (p: TrackedObject | undefined) => (p ? this.names.get(p) : undefined);
    const isRetention = (name: string | undefined) => name !== undefined && this.out.retentionPolicies.some((r) => r['name'] === name);
    if (ref !== undefined) {
      const name = named(this.resolve('Policy', ref, bp));
      if (isRetention(name)) return name!;
      this.warnings.push(bp.warning(['spec', 'backupConfig', 'retentionPolicy'], `retention policy ${JSON.stringify(isMapping(ref) ? ref['name'] : ref)} is not a Retention policy in the imported files`));
    }
    const defaults = this.objects.filter((o) => o.kind === 'Policy' && o.peek('spec', 'type') === 'Retention' && o.peek('spec', 'default') === true);
    const fallback = named(defaults[0]);
    if (isRetention(fallback)) {
      this.warnings.push(bp.warning(['spec', 'backupConfig'], `no retention policy; the default Trilio retention policy "${fallback}" is used`));
      return fallback!;
    }
    this.placeholder([...outPath, 'latest'], `${PLACEHOLDER}: the BackupPlan had no retention policy`, 'placeholder retention (keep the latest 30): the BackupPlan has no retention policy; set how long backups are kept');
    return { latest: 30 };
  }

  private hooks(bp: TrackedObject): Loose | undefined {
    const base = ['spec', 'hookConfig'] as const;
    const list = bp.peek(...base, 'hooks');
    if (!Array.isArray(list) || list.length === 0) return undefined;
    bp.drop([...base, 'podReadyWaitSeconds'], 'milvus-guard runs hooks on pods that are Ready when the backup starts');
    const items: Loose[] = [];
    list.forEach((_, i) => {
      const at = [...base, 'hooks', i] as const;
      const ref = bp.take(...at, 'hook');
      const hook = this.resolve('Hook', ref, bp);
      const hookName = hook ? this.names.get(hook) : undefined;
      if (!hookName) {
        bp.drop([...at], `hook ${JSON.stringify(isMapping(ref) ? ref['name'] : ref)} is not in the imported files`);
        return;
      }
      const regex = bp.peek(...at, 'podSelector', 'regex');
      if (regex !== undefined) bp.drop([...at, 'podSelector', 'regex'], `milvus-guard chooses hook pods by label only, not by a pod-name pattern such as ${JSON.stringify(regex)}`);
      const selectors = [...this.selectorList(bp, [...at, 'podSelector', 'labels']), ...this.selectorList(bp, [...at, 'podSelector', 'labelSelector'])];
      if (selectors.length === 0) {
        bp.drop([...at], `the hook item selects pods by name pattern only; add a podSelector with the pods' labels to run hook ${hookName}`);
        return;
      }
      const [first, ...rest] = selectors;
      for (const path of rest) bp.drop(path, 'a hook item has one pod selector; only the first is carried over');
      const item: Loose = { hook: hookName, podSelector: bp.take(...first!) };
      const containerRegex = bp.take(...at, 'containerRegex');
      if (containerRegex !== undefined) item['containerRegex'] = containerRegex;
      items.push(item);
    });
    const mode = bp.take(...base, 'mode');
    return items.length ? { ...(mode === undefined ? {} : { mode }), items } : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

/**
 * Converts Trilio for Kubernetes manifests into a milvus-guard config. Returns the config, its
 * YAML (with `CHANGE-ME` comments on placeholders), every warning (fields not carried over,
 * placeholders, hooks that call Milvus endpoints that do not exist) and the problems
 * `parseConfig` still finds in the result. Throws `TrilioImportError` when an input is not
 * valid YAML, and `UserError` when the input holds no BackupPlan.
 */
export function importTrilio(sources: readonly TrilioSource[]): TrilioImport {
  const warnings: ImportWarning[] = [];
  const objects = readObjects(sources, warnings);
  const importer = new Importer(objects);
  importer.run();
  // Warnings about the source files first (in file order), then notes on the generated config.
  warnings.push(...importer.warnings.filter((w) => w.file !== undefined), ...importer.warnings.filter((w) => w.file === undefined));

  const config = importer.out as unknown as ConfigInput;
  const doc = new Document(config);
  doc.commentBefore =
    ` milvus-guard config imported from Trilio for Kubernetes (${sources.map((s) => s.file).join(', ')}).\n` +
    ` Edit every value marked ${PLACEHOLDER}, check the ones marked ${REVIEW}, then run: milvus-guard config validate FILE`;
  for (const { path, comment } of importer.placeholders) {
    const node = doc.getIn(path, true);
    if (isScalar(node)) node.comment = ` ${comment}`;
  }
  const yaml = doc.toString({ lineWidth: 0 });

  let problems: string[] = [];
  try {
    parseConfig(yaml, 'generated config');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems = [...err.problems];
  }
  return { config, yaml, warnings, problems };
}

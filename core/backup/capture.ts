/**
 * Capture (backup step 4): the inventory's objects and what they reference (related items:
 * the Secrets, ConfigMaps, ServiceAccounts, claims and Roles they need to start, see
 * core/kube/references.ts), sanitized — nothing the API server assigns (status, uid,
 * resourceVersion, managedFields, creationTimestamp, generation, ownerReferences, a Service's
 * clusterIP(s)), nor what the cluster issued into a ServiceAccount token Secret — written to
 * the vault as YAML. Secrets, and ConfigMaps that can carry
 * credentials, are sealed (envelope encryption, see sealer.ts and the rule in sealing.ts) and
 * never written in the clear.
 */
import { stringify } from 'yaml';
import type { KubeClients } from '../kube/connect.js';
import type { VaultStore } from '../vault/store.js';
import type { CaptureSummary } from '../workflow/backup-state.js';
import { KubernetesRequestError } from '../kube/errors.js';
import { KINDS } from '../kube/kinds.js';
import { referencesOf, type Reference } from '../kube/references.js';
import { kubeRequest } from '../kube/request.js';
import { CAPTURED_KINDS, collectionPath, listKind, readInventory, type CapturedKind, type Inventory, type RawObject } from './discover.js';
import type { SecretSealer } from './sealer.js';
import { milvusConfigMapsOf, sealingReason } from './sealing.js';
import { manifestKey, sealedManifestKey } from '../vault/layout.js';
import { stripIssuedToken } from '../kube/service-account-tokens.js';

const SERVER_METADATA = ['uid', 'resourceVersion', 'managedFields', 'creationTimestamp', 'generation', 'ownerReferences', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds'];
// Holds the whole object as last applied: for a Secret, its data in the clear.
const DROPPED_ANNOTATIONS = ['kubectl.kubernetes.io/last-applied-configuration'];

/**
 * A copy of `object` without what the API server assigns (see the module documentation), so
 * it can be created again in any cluster or namespace.
 */
export function sanitizeManifest(object: RawObject): RawObject {
  const copy = structuredClone(object) as RawObject & { status?: unknown; spec?: Record<string, unknown> };
  delete copy.status;
  const metadata = copy.metadata as Record<string, unknown>;
  for (const field of SERVER_METADATA) delete metadata[field];
  const annotations = metadata.annotations as Record<string, string> | undefined;
  if (annotations) {
    for (const a of DROPPED_ANNOTATIONS) delete annotations[a];
    if (Object.keys(annotations).length === 0) delete metadata.annotations;
  }
  // An assigned cluster IP cannot be created again elsewhere; `None` (a headless Service, which
  // StatefulSet pod DNS needs) is not assigned but chosen, and must survive.
  if (copy.kind === 'Service' && copy.spec && copy.spec.clusterIP !== 'None') {
    delete copy.spec.clusterIP;
    delete copy.spec.clusterIPs;
  }
  // A ServiceAccount token Secret's token is a working credential of this cluster, and no
  // restore uses it (core/kube/service-account-tokens.ts): not kept, not even sealed.
  stripIssuedToken(copy);
  return copy;
}

const groupSegment = (group: string) => (group === '' ? 'core' : group);

/** Warnings kept in the summary (it travels in the workflow's state, which must stay small). */
const MAX_WARNINGS = 20;

/** One object to capture and where the API serves its kind. */
interface Captured {
  readonly kind: CapturedKind;
  readonly object: RawObject;
}

const idOf = (kind: { group: string; kind: string }, name: string) => `${kind.group}/${kind.kind}/${name}`;

/** An object of `kind` by name, as served (with its apiVersion and kind), or undefined when it does not exist. */
export async function getOptional(kube: KubeClients, kind: CapturedKind, namespace: string, name: string): Promise<RawObject | undefined> {
  try {
    const res = await kubeRequest(kube.kc, { method: 'GET', path: `${collectionPath(kind, namespace)}/${encodeURIComponent(name)}` });
    const object = JSON.parse(res.body) as RawObject;
    return { ...object, apiVersion: object.apiVersion ?? (kind.group === '' ? kind.version : `${kind.group}/${kind.version}`), kind: object.kind ?? kind.kind };
  } catch (err) {
    if (err instanceof KubernetesRequestError && err.status === 404) return undefined;
    throw err;
  }
}

/**
 * An object the plan itself names, captured with the backup whatever the selector matches: the
 * Secret of `milvus.authSecret`, which a restore's validation (through the relay) needs in the
 * restored namespace as much as Milvus's own Secrets.
 */
export interface PlanReference {
  readonly kind: 'Secret';
  readonly name: string;
  /** Who names it, for the warning when it is missing. */
  readonly via: string;
}

/** What the plan names for capture (see {@link PlanReference}). */
export function planReferences(plan: { readonly name: string; readonly milvus: { readonly authSecret?: { readonly name: string } | undefined } }): PlanReference[] {
  const secret = plan.milvus.authSecret;
  return secret ? [{ kind: 'Secret', name: secret.name, via: `plan ${plan.name} (milvus.authSecret)` }] : [];
}

/**
 * The objects a backup captures: those of the inventory (what the selector matched, as they are
 * now; objects deleted since Discover are skipped), those the plan names (`planRefs`), then,
 * transitively, every object they name
 * from the namespace (see core/kube/references.ts) that is not already among them. A missing
 * reference the referrer marks optional is skipped; any other missing one becomes a warning
 * (the backup goes on: the source works without it, or is already broken without it).
 */
export async function collectObjects(
  kube: KubeClients,
  inventory: Pick<Inventory, 'namespace' | 'resources'>,
  planRefs: readonly PlanReference[] = [],
): Promise<{ objects: Captured[]; related: number; warnings: string[] }> {
  const namespace = inventory.namespace;
  const captured = new Map<string, Captured>();
  for (const kind of CAPTURED_KINDS) {
    const wanted = new Set(inventory.resources.filter((r) => r.kind === kind.kind && r.group === kind.group).map((r) => r.name));
    if (wanted.size === 0) continue;
    for (const object of await listKind(kube, kind, namespace)) {
      if (wanted.has(object.metadata.name)) captured.set(idOf(kind, object.metadata.name), { kind, object });
    }
  }
  const warnings: string[] = [];
  const missing = new Set<string>();
  let related = 0;
  const queue = [...captured.values()];
  /** Captures the object `ref` names unless it is already in, and queues it to follow its own references. */
  const take = async (ref: Pick<Reference, 'kind' | 'name' | 'via' | 'optional'>): Promise<void> => {
    const kind = KINDS[ref.kind];
    const id = idOf(kind, ref.name);
    if (captured.has(id)) return;
    const object = missing.has(id) ? undefined : await getOptional(kube, kind, namespace, ref.name);
    if (!object) {
      missing.add(id);
      if (!ref.optional) warnings.push(`${ref.kind} ${namespace}/${ref.name}, which ${ref.via} needs, does not exist; the backup does not have it, and a restore will not start what needs it until it is created`);
      return;
    }
    const item = { kind, object };
    captured.set(id, item);
    queue.push(item);
    related += 1;
  };
  for (const ref of planRefs) await take({ ...ref, optional: false });
  for (let next = queue.shift(); next; next = queue.shift()) {
    for (const ref of referencesOf(next.object)) await take(ref);
  }
  return { objects: [...captured.values()], related, warnings: [...new Set(warnings)] };
}

/**
 * Writes every object the backup captures (see {@link collectObjects}), sanitized, to the
 * vault. What sealing.ts says to seal is sealed with `sealer`: a Secret under the context
 * {backup, namespace, name}, anything else under {backup, namespace, name, kind}, so a sealed
 * ConfigMap cannot be passed off as the Secret of the same name. Returns the counts and the
 * warnings of missing references.
 */
export async function captureManifests(
  ctx: { readonly vault: VaultStore; readonly sealer: SecretSealer },
  kube: KubeClients,
  backupId: string,
  inventoryKey: string,
  planRefs: readonly PlanReference[] = [],
): Promise<CaptureSummary> {
  const inventory = await readInventory(ctx.vault, inventoryKey);
  const namespace = inventory.namespace;
  const collected = await collectObjects(kube, inventory, planRefs);
  const milvusConfigMaps = new Set(collected.objects.filter((c) => c.kind.kind === 'Milvus').flatMap((c) => milvusConfigMapsOf(c.object)));
  let secrets = 0;
  let sealedCount = 0;
  for (const { kind, object } of collected.objects) {
    const ref = { group: groupSegment(kind.group), kind: kind.kind, namespace, name: object.metadata.name };
    const text = stringify(sanitizeManifest(object));
    if (sealingReason(object, { milvusConfigMaps })) {
      const context = { backup: backupId, namespace, name: object.metadata.name, ...(kind.kind === 'Secret' && kind.group === '' ? {} : { kind: kind.kind }) };
      const sealed = await ctx.sealer.seal(Buffer.from(text), context);
      await ctx.vault.put(sealedManifestKey(backupId, ref), Buffer.from(JSON.stringify(sealed)));
      if (kind.kind === 'Secret') secrets += 1;
      sealedCount += 1;
    } else {
      await ctx.vault.put(manifestKey(backupId, ref), Buffer.from(text));
    }
  }
  const { warnings } = collected;
  return {
    objects: collected.objects.length,
    secrets,
    sealed: sealedCount,
    related: collected.related,
    ...(warnings.length > 0 ? { warnings: warnings.length > MAX_WARNINGS ? [...warnings.slice(0, MAX_WARNINGS - 1), `and ${warnings.length - MAX_WARNINGS + 1} more missing references`] : warnings } : {}),
  };
}

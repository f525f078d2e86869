/**
 * Capture (backup step 4): the inventory's objects, sanitized — nothing the API server assigns
 * (status, uid, resourceVersion, managedFields, creationTimestamp, generation, ownerReferences,
 * a Service's clusterIP(s)) — written to the vault as YAML. Secrets are sealed (envelope
 * encryption, see sealer.ts) and never written in the clear.
 */
import { stringify } from 'yaml';
import type { KubeClients } from '../kube/connect.js';
import type { VaultStore } from '../vault/store.js';
import type { CaptureSummary } from '../workflow/backup-state.js';
import { CAPTURED_KINDS, listKind, readInventory, type RawObject } from './discover.js';
import type { SecretSealer } from './sealer.js';
import { manifestKey, sealedManifestKey } from '../vault/layout.js';

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
  return copy;
}

const groupSegment = (group: string) => (group === '' ? 'core' : group);

/**
 * Writes every object the inventory lists, sanitized, to the vault; Secrets sealed with
 * `sealer` under the context {backup, namespace, name}. Objects deleted since Discover are
 * skipped (the inventory records what existed). Returns the counts.
 */
export async function captureManifests(
  ctx: { readonly vault: VaultStore; readonly sealer: SecretSealer },
  kube: KubeClients,
  backupId: string,
  inventoryKey: string,
): Promise<CaptureSummary> {
  const inventory = await readInventory(ctx.vault, inventoryKey);
  let objects = 0;
  let secrets = 0;
  for (const kind of CAPTURED_KINDS) {
    const wanted = new Set(inventory.resources.filter((r) => r.kind === kind.kind && r.group === kind.group).map((r) => r.name));
    if (wanted.size === 0) continue;
    for (const object of await listKind(kube, kind, inventory.namespace)) {
      if (!wanted.has(object.metadata.name)) continue;
      const ref = { group: groupSegment(kind.group), kind: kind.kind, namespace: inventory.namespace, name: object.metadata.name };
      const text = stringify(sanitizeManifest(object));
      if (kind.kind === 'Secret') {
        const sealed = await ctx.sealer.seal(Buffer.from(text), { backup: backupId, namespace: inventory.namespace, name: object.metadata.name });
        await ctx.vault.put(sealedManifestKey(backupId, ref), Buffer.from(JSON.stringify(sealed)));
        secrets += 1;
      } else {
        await ctx.vault.put(manifestKey(backupId, ref), Buffer.from(text));
      }
      objects += 1;
    }
  }
  return { objects, secrets };
}

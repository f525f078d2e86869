/**
 * The object store of the local API server: every object of every kind in memory, written
 * through to one JSON file per kind (atomically: temp file + rename) so a restart with the same
 * state directory keeps everything. It owns the metadata rules the real API server enforces:
 * uid, monotonic resourceVersion (409 Conflict on a stale update), creationTimestamp,
 * generation (for kinds that track it), generateName, namespace existence, and garbage
 * collection by ownerReferences.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import writeFileAtomic from 'write-file-atomic';
import { DNS_SUBDOMAIN } from '../../core/kube/names.js';
import { apiVersionOf, RESOURCE_TYPES, typeKey, typeOf, type FieldCause, type ResourceType } from './resources.js';
import { alreadyExists, conflict, invalid, notFound } from './status.js';

/** A stored object: any kind, with the metadata the store maintains. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta & { name: string };
  spec?: any;
  status?: any;
  [key: string]: any;
}

/** What a store change listener receives (the shape of a watch event). */
export interface StoreEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: ResourceType;
  object: KubeObject;
}

// generateName suffixes use the same alphabet as the real server (no vowels, no confusables).
const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** A random suffix like the API server's `generateName` (5 characters). */
export function randomSuffix(length = 5): string {
  return [...randomBytes(length)].map((b) => SUFFIX_ALPHABET[b % SUFFIX_ALPHABET.length]).join('');
}

const keyOf = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;
const withoutMetaAndStatus = (o: KubeObject) => {
  const { metadata: _m, status: _s, ...rest } = o;
  return JSON.stringify(rest);
};

/** Options of `ObjectStore`. */
export interface ObjectStoreOptions {
  /** Directory for the JSON files; omitted = memory only. */
  dir?: string;
  /** Clock for creationTimestamp and deletion times. */
  now: () => Date;
}

/** Objects by kind, with persistence and change notification. */
export class ObjectStore {
  private readonly objects = new Map<ResourceType, Map<string, KubeObject>>();
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private revision = 0;

  constructor(private readonly options: ObjectStoreOptions) {
    for (const type of RESOURCE_TYPES) this.objects.set(type, new Map());
    if (options.dir) this.load(options.dir);
  }

  /** The current resourceVersion (the one a list reports). */
  get resourceVersion(): string {
    return String(this.revision);
  }

  /** Registers a listener for every change; returns the function that removes it. */
  onChange(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One object, or undefined. Returns a copy: callers never mutate the store. */
  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const object = this.bucket(type).get(keyOf(type.namespaced ? namespace : undefined, name));
    return object && structuredClone(object);
  }

  /** One object, or a 404 Status error. */
  require(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const object = this.get(type, namespace, name);
    if (!object) throw notFound(type, name);
    return object;
  }

  /**
   * Objects of a kind, in one namespace or all, sorted by namespace and name like the real server.
   * `where` picks objects before they are copied: a controller that wants a workload's pods
   * copies those, not every pod of the namespace on every pass (the copies were a third of the
   * local cluster's main-thread time during a restore). It sees the stored object: read only.
   */
  list(type: ResourceType, namespace?: string, where?: (object: Readonly<KubeObject>) => boolean): KubeObject[] {
    return [...this.bucket(type).values()]
      .filter((o) => (namespace === undefined || !type.namespaced || o.metadata.namespace === namespace) && (where === undefined || where(o)))
      .sort((a, b) => keyOf(a.metadata.namespace, a.metadata.name).localeCompare(keyOf(b.metadata.namespace, b.metadata.name)))
      .map((o) => structuredClone(o));
  }

  /** Creates an object; fills uid, resourceVersion, creationTimestamp, generation and generateName. */
  create(type: ResourceType, input: KubeObject): KubeObject {
    const object = structuredClone(input);
    object.apiVersion = apiVersionOf(type);
    object.kind = type.kind;
    object.metadata ??= {} as KubeObject['metadata'];
    const meta = object.metadata;
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomSuffix()}`;
    if (type.namespaced) {
      if (!meta.namespace) meta.namespace = 'default';
      if (!this.get(typeOf('Namespace'), undefined, meta.namespace)) throw notFound(typeOf('Namespace'), meta.namespace);
    } else {
      delete meta.namespace;
    }
    type.decode?.(object);
    // The uid exists before defaulting, which may use it (a Job's selector does).
    meta.uid = randomUUID();
    type.defaults?.(object);
    type.admit?.(object, (t) => this.list(t));
    this.validate(type, object);
    if (this.bucket(type).has(keyOf(meta.namespace, meta.name))) throw alreadyExists(type, meta.name);
    meta.creationTimestamp = this.options.now().toISOString() as unknown as Date;
    if (type.tracksGeneration) meta.generation = 1;
    else delete meta.generation;
    delete meta.deletionTimestamp;
    delete meta.managedFields;
    return this.put(type, object, 'ADDED');
  }

  /**
   * Replaces an object (PUT). A given `metadata.resourceVersion` must be the current one
   * (optimistic concurrency); identity fields cannot change. With `subresource: 'status'` only
   * `.status` is taken from the input; without it, kinds that have a status subresource keep
   * their stored status, as on the real server.
   */
  replace(type: ResourceType, input: KubeObject, options: { subresource?: 'status' } = {}): KubeObject {
    const current = this.require(type, input.metadata?.namespace, input.metadata?.name);
    const given = input.metadata?.resourceVersion;
    if (given && given !== current.metadata.resourceVersion) throw conflict(type, current.metadata.name);
    let next: KubeObject;
    if (options.subresource === 'status') {
      next = { ...current, status: structuredClone(input.status) };
    } else {
      next = structuredClone(input);
      type.decode?.(next);
      next.apiVersion = apiVersionOf(type);
      next.kind = type.kind;
      next.metadata = {
        ...next.metadata,
        name: current.metadata.name,
        namespace: current.metadata.namespace,
        uid: current.metadata.uid,
        creationTimestamp: current.metadata.creationTimestamp,
        generation: current.metadata.generation,
      };
      if (!type.namespaced) delete next.metadata.namespace;
      delete next.metadata.managedFields;
      if (type.hasStatus) next.status = current.status;
      this.validate(type, next, current);
      if (!type.tracksGeneration) delete next.metadata.generation;
      else if (withoutMetaAndStatus(next) !== withoutMetaAndStatus(current)) next.metadata.generation = (current.metadata.generation ?? 1) + 1;
    }
    if (JSON.stringify({ ...next, metadata: { ...next.metadata, resourceVersion: '' } }) === JSON.stringify({ ...current, metadata: { ...current.metadata, resourceVersion: '' } })) {
      return current; // a no-op update does not bump resourceVersion (as on the real server)
    }
    return this.put(type, next, 'MODIFIED');
  }

  /**
   * Deletes an object and, unless `propagation` is `Orphan`, every object that names it in
   * `ownerReferences` (recursively); orphaned dependents lose that owner reference. Deleting
   * a namespace deletes everything in it.
   */
  delete(type: ResourceType, namespace: string | undefined, name: string, propagation?: 'Orphan' | 'Background' | 'Foreground'): KubeObject {
    const object = this.require(type, namespace, name);
    this.bucket(type).delete(keyOf(type.namespaced ? namespace : undefined, name));
    this.revision++;
    object.metadata.resourceVersion = String(this.revision);
    object.metadata.deletionTimestamp = this.options.now().toISOString() as unknown as Date;
    this.persist(type);
    this.emit({ type: 'DELETED', resource: type, object });
    const policy = propagation ?? type.defaultPropagation ?? 'Background';
    for (const dependentType of RESOURCE_TYPES) {
      for (const dependent of this.list(dependentType)) {
        const inNamespace = type.kind === 'Namespace' && dependentType.namespaced && dependent.metadata.namespace === name;
        const owned = (dependent.metadata.ownerReferences ?? []).some((r) => r.uid === object.metadata.uid);
        if (inNamespace || (owned && policy !== 'Orphan')) {
          if (this.get(dependentType, dependent.metadata.namespace, dependent.metadata.name)) {
            this.delete(dependentType, dependent.metadata.namespace, dependent.metadata.name, inNamespace ? 'Background' : policy);
          }
        } else if (owned) {
          dependent.metadata.ownerReferences = dependent.metadata.ownerReferences!.filter((r) => r.uid !== object.metadata.uid);
          this.put(dependentType, dependent, 'MODIFIED');
        }
      }
    }
    return object;
  }

  /** Metadata, then (on an update) the kind's update rules, then the kind's rules: a 422 listing every problem. */
  private validate(type: ResourceType, object: KubeObject, current?: KubeObject): void {
    const name = object.metadata.name ?? '';
    const causes: FieldCause[] = [];
    if (!name) causes.push({ reason: 'FieldValueRequired', message: 'name or generateName is required', field: 'metadata.name' });
    else if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
      causes.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
        field: 'metadata.name',
      });
    }
    if (name && current) causes.push(...(type.validateUpdate?.(object, current) ?? []));
    if (name) causes.push(...(type.validate?.(object) ?? []));
    if (causes.length > 0) throw invalid(type, name, causes);
  }

  private put(type: ResourceType, object: KubeObject, event: StoreEvent['type']): KubeObject {
    this.revision++;
    object.metadata.resourceVersion = String(this.revision);
    this.bucket(type).set(keyOf(object.metadata.namespace, object.metadata.name), structuredClone(object));
    this.persist(type);
    this.emit({ type: event, resource: type, object: structuredClone(object) });
    return object;
  }

  private emit(event: StoreEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private bucket(type: ResourceType): Map<string, KubeObject> {
    return this.objects.get(type)!;
  }

  private persist(type: ResourceType): void {
    const dir = this.options.dir;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    // Every change persists: a crash of this process leaves old or new content either way, and an
    // fsync per change would slow the cluster for nothing a simulator needs.
    writeFileAtomic.sync(join(dir, `${typeKey(type)}.json`), JSON.stringify([...this.bucket(type).values()], null, 1), { fsync: false });
    writeFileAtomic.sync(join(dir, 'meta.json'), JSON.stringify({ resourceVersion: this.revision }), { fsync: false });
  }

  private load(dir: string): void {
    if (!existsSync(dir)) return;
    for (const type of RESOURCE_TYPES) {
      const file = join(dir, `${typeKey(type)}.json`);
      if (!existsSync(file)) continue;
      for (const object of JSON.parse(readFileSync(file, 'utf8')) as KubeObject[]) {
        this.bucket(type).set(keyOf(object.metadata.namespace, object.metadata.name), object);
      }
    }
    const meta = join(dir, 'meta.json');
    if (existsSync(meta)) this.revision = (JSON.parse(readFileSync(meta, 'utf8')) as { resourceVersion: number }).resourceVersion;
  }
}

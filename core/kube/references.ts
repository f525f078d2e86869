/**
 * What a Kubernetes object needs by name from its namespace ("related items", as Velero calls
 * them): the Secrets, ConfigMaps, ServiceAccounts, claims and Roles a pod template, a Milvus CR,
 * a ServiceAccount or a RoleBinding names. A backup follows these from what the plan's selector
 * matched, so a restore brings back what the instance needs to start even when it carries no
 * label of the instance (the Milvus Operator's MinIO credentials, a Secret made by hand).
 */

/** A kind an object can name from its own namespace. */
export type ReferencedKind = 'Secret' | 'ConfigMap' | 'ServiceAccount' | 'PersistentVolumeClaim' | 'Role';

/** One object named by another. */
export interface Reference {
  readonly kind: ReferencedKind;
  readonly name: string;
  /** The referring object says it can do without it (`optional: true`). */
  readonly optional: boolean;
  /** Where the name was found, for messages: `Deployment/x env PASSWORD`. */
  readonly via: string;
}

type Json = Record<string, unknown>;
type Ref = { name?: string; optional?: boolean } | undefined;

const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const list = (v: unknown): Json[] => (Array.isArray(v) ? v.map(obj).filter((x): x is Json => x !== undefined) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The references of one container (or a Milvus component, whose `env` has the same shape). */
function containerReferences(container: Json, via: string): Reference[] {
  const out: Reference[] = [];
  const name = str(container.name);
  const where = name ? `${via} container ${name}` : via;
  for (const from of list(container.envFrom)) {
    const secret = obj(from.secretRef) as Ref;
    const configMap = obj(from.configMapRef) as Ref;
    if (str(secret?.name)) out.push({ kind: 'Secret', name: secret!.name!, optional: secret!.optional === true, via: `${where} envFrom` });
    if (str(configMap?.name)) out.push({ kind: 'ConfigMap', name: configMap!.name!, optional: configMap!.optional === true, via: `${where} envFrom` });
  }
  for (const env of list(container.env)) {
    const from = obj(env.valueFrom);
    const secret = obj(from?.secretKeyRef) as Ref;
    const configMap = obj(from?.configMapKeyRef) as Ref;
    if (str(secret?.name)) out.push({ kind: 'Secret', name: secret!.name!, optional: secret!.optional === true, via: `${where} env ${String(env.name)}` });
    if (str(configMap?.name)) out.push({ kind: 'ConfigMap', name: configMap!.name!, optional: configMap!.optional === true, via: `${where} env ${String(env.name)}` });
  }
  return out;
}

/** The references of the volumes of a pod spec (or of a Milvus component). */
function volumeReferences(volumes: unknown, via: string): Reference[] {
  const out: Reference[] = [];
  for (const volume of list(volumes)) {
    const where = `${via} volume ${String(volume.name)}`;
    const secret = obj(volume.secret) as { secretName?: string; optional?: boolean } | undefined;
    if (str(secret?.secretName)) out.push({ kind: 'Secret', name: secret!.secretName!, optional: secret!.optional === true, via: where });
    const configMap = obj(volume.configMap) as Ref;
    if (str(configMap?.name)) out.push({ kind: 'ConfigMap', name: configMap!.name!, optional: configMap!.optional === true, via: where });
    for (const source of list(obj(volume.projected)?.sources)) {
      const s = obj(source.secret) as Ref;
      const c = obj(source.configMap) as Ref;
      if (str(s?.name)) out.push({ kind: 'Secret', name: s!.name!, optional: s!.optional === true, via: where });
      if (str(c?.name)) out.push({ kind: 'ConfigMap', name: c!.name!, optional: c!.optional === true, via: where });
    }
    const claim = str(obj(volume.persistentVolumeClaim)?.claimName);
    if (claim) out.push({ kind: 'PersistentVolumeClaim', name: claim, optional: false, via: where });
    // CSI inline volumes and the in-tree drivers name a Secret for their credentials.
    for (const driver of ['csi', 'cephfs', 'rbd', 'iscsi', 'flexVolume', 'azureFile', 'scaleIO', 'storageos']) {
      const spec = obj(volume[driver]);
      const ref = obj(spec?.nodePublishSecretRef) ?? obj(spec?.secretRef);
      const name = str(ref?.name) ?? str(spec?.secretName);
      if (name) out.push({ kind: 'Secret', name, optional: false, via: where });
    }
  }
  return out;
}

/**
 * The references of a pod spec: env `secretKeyRef`/`configMapKeyRef` and `envFrom` of every
 * container, init container and ephemeral container; `secret`, `configMap` and `projected`
 * volumes (and a CSI volume's secret); claims; `imagePullSecrets`; the ServiceAccount (the
 * namespace's `default` one exists everywhere and is not a reference). Image pull Secrets are
 * not optional here although a kubelet starts without them: a private registry refuses the pull.
 */
export function podSpecReferences(spec: unknown, via: string): Reference[] {
  const s = obj(spec);
  if (!s) return [];
  const out: Reference[] = [];
  for (const field of ['initContainers', 'containers', 'ephemeralContainers']) {
    for (const container of list(s[field])) out.push(...containerReferences(container, via));
  }
  out.push(...volumeReferences(s.volumes, via));
  for (const pull of list(s.imagePullSecrets)) if (str(pull.name)) out.push({ kind: 'Secret', name: pull.name as string, optional: false, via: `${via} imagePullSecrets` });
  const account = str(s.serviceAccountName) ?? str(s.serviceAccount);
  if (account && account !== 'default') out.push({ kind: 'ServiceAccount', name: account, optional: false, via: `${via} serviceAccountName` });
  return out;
}

/** The pod template's spec of a workload kind (or a Pod's own spec); undefined for other kinds. */
export function podSpecOf(object: { kind?: string; spec?: unknown }): unknown {
  const spec = obj(object.spec);
  switch (object.kind) {
    case 'Pod':
      return spec;
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'ReplicationController':
    case 'Job':
      return obj(spec?.template)?.spec;
    case 'CronJob':
      return obj(obj(obj(spec?.jobTemplate)?.spec)?.template)?.spec;
    default:
      return undefined;
  }
}

/**
 * The references of a Milvus CR (milvus.io/v1beta1), from the Milvus Operator's API types
 * (zilliztech/milvus-operator, apis/milvus.io/v1beta1):
 * - `spec.dependencies.storage.secretRef`: the object store's credentials (`accesskey`,
 *   `secretkey`), dependencies_types.go `MilvusStorage.SecretRef`;
 * - with in-cluster storage (`storage.external` false), the MinIO Secret `<name>-minio` the
 *   bundled MinIO chart creates: the operator's defaulting webhook sets `secretRef` to it
 *   (milvus_webhook.go `defaultStorage`: `r.Spec.Dep.Storage.SecretRef = r.Name + "-minio"`),
 *   and a CR created without the webhook does not show it;
 * - `spec.components.activeConfigMap`: the ConfigMap new rollouts use (components_types.go);
 * - in `spec.components` and in each component under it (`proxy`, `dataNode`, ...): the
 *   `ComponentSpec` fields `imagePullSecrets`, `env`, `volumes`, `serviceAccountName`, and the
 *   containers of `sidecars` and `initContainers` (components_types.go `ComponentSpec`,
 *   `Component`).
 */
export function milvusReferences(cr: { metadata: { name: string }; spec?: unknown }): Reference[] {
  const spec = obj(cr.spec) ?? {};
  const via = `Milvus/${cr.metadata.name}`;
  const out: Reference[] = [];
  const storage = obj(obj(spec.dependencies)?.storage) ?? {};
  const secretRef = str(storage.secretRef);
  if (secretRef) out.push({ kind: 'Secret', name: secretRef, optional: false, via: `${via} spec.dependencies.storage.secretRef` });
  if (storage.external !== true) {
    out.push({ kind: 'Secret', name: `${cr.metadata.name}-minio`, optional: false, via: `${via} in-cluster MinIO credentials` });
  }
  const components = obj(spec.components) ?? {};
  const active = str(components.activeConfigMap);
  if (active) out.push({ kind: 'ConfigMap', name: active, optional: false, via: `${via} spec.components.activeConfigMap` });
  const specs: [string, Json][] = [['spec.components', components], ...Object.entries(components).flatMap(([key, v]) => (obj(v) ? [[`spec.components.${key}`, obj(v)!] as [string, Json]] : []))];
  for (const [path, component] of specs) {
    const where = `${via} ${path}`;
    out.push(...containerReferences({ env: component.env }, where));
    out.push(...volumeReferences(component.volumes, where));
    for (const container of [...list(component.sidecars), ...list(component.initContainers)]) out.push(...containerReferences(container, where));
    for (const pull of list(component.imagePullSecrets)) if (str(pull.name)) out.push({ kind: 'Secret', name: pull.name as string, optional: false, via: `${where}.imagePullSecrets` });
    const account = str(component.serviceAccountName);
    if (account && account !== 'default') out.push({ kind: 'ServiceAccount', name: account, optional: false, via: `${where}.serviceAccountName` });
  }
  return out;
}

/**
 * What `object` names from its namespace: a workload's pod template (see
 * {@link podSpecReferences}), a Milvus CR ({@link milvusReferences}), a ServiceAccount's image
 * pull Secrets, a RoleBinding's Role, a ServiceAccount token Secret's account (Kubernetes' tokens
 * controller deletes a token Secret whose account does not exist: restored without it, the
 * Secret would be gone at once). Other kinds name nothing.
 */
export function referencesOf(object: { kind?: string; apiVersion?: string; metadata: { name: string }; spec?: unknown; [k: string]: unknown }): Reference[] {
  const via = `${object.kind}/${object.metadata.name}`;
  if (object.kind === 'Milvus' && (object.apiVersion ?? '').startsWith('milvus.io/')) return milvusReferences(object);
  if (object.kind === 'ServiceAccount') {
    return list(object.imagePullSecrets).flatMap((p) => (str(p.name) ? [{ kind: 'Secret' as const, name: p.name as string, optional: false, via: `${via} imagePullSecrets` }] : []));
  }
  if (object.kind === 'Secret' && object.type === 'kubernetes.io/service-account-token') {
    const account = str(obj((object.metadata as { annotations?: unknown }).annotations)?.['kubernetes.io/service-account.name']);
    return account && account !== 'default' ? [{ kind: 'ServiceAccount', name: account, optional: false, via: `${via} kubernetes.io/service-account.name` }] : [];
  }
  if (object.kind === 'RoleBinding') {
    const role = obj(object.roleRef);
    return role?.kind === 'Role' && str(role.name) ? [{ kind: 'Role', name: role.name as string, optional: false, via: `${via} roleRef` }] : [];
  }
  return podSpecReferences(podSpecOf(object), via);
}

/**
 * Which captured objects are sealed (envelope-encrypted, see sealer.ts) rather than written to
 * the vault as YAML: the one rule, so capture, the README and the tests agree.
 *
 * 1. Every Secret.
 * 2. A ConfigMap the Milvus CR uses as its configuration: the operator's `<cr name>` ConfigMap
 *    (it renders `spec.config`, where an S3-backed Milvus keeps `minio.accessKeyID` and
 *    `minio.secretAccessKey`) and `spec.components.activeConfigMap`.
 * 3. Any other ConfigMap, and a Milvus CR, when a key or a value of its data (for the CR: its
 *    `spec.config` and `spec.components`) looks like a credential: a name such as `accessKeyID`,
 *    `secretAccessKey`, `secret_key`, `password`, `token`, `apiKey`, `credentials`,
 *    `privateKey` or `sasl...password` — as a key, or as a `key:`/`key=` inside embedded YAML,
 *    JSON or properties (the Milvus Helm chart renders `milvus.yaml` with the MinIO keys in it).
 *
 * The pattern errs towards sealing: a false match costs a KMS call, a miss stores a credential
 * in the clear.
 */

/** Names that hold credentials, as a key of their own or inside embedded configuration. */
const CREDENTIAL_NAME = /(access[_-]?key(?:[_-]?id)?|secret[_-]?(?:access[_-]?)?key|pass(?:word|wd)|token|api[_-]?key|credentials?|private[_-]?key|sasl[_-]?password)/i;

/** A credential name used as a key inside text: `password: x`, `"token": "x"`, `SECRET_KEY=x`. */
const CREDENTIAL_ASSIGNMENT = new RegExp(`${CREDENTIAL_NAME.source}["']?\\s*[:=]`, 'i');

function carriesCredential(value: unknown, key?: string): boolean {
  // `secretKeyRef` and friends name where a credential is, not the credential.
  if (key !== undefined && !/Ref$/.test(key) && CREDENTIAL_NAME.test(key) && value !== '' && value !== null && value !== undefined) return true;
  if (typeof value === 'string') return CREDENTIAL_ASSIGNMENT.test(value);
  if (Array.isArray(value)) return value.some((v) => carriesCredential(v));
  if (value !== null && typeof value === 'object') return Object.entries(value).some(([k, v]) => carriesCredential(v, k));
  return false;
}

/** What {@link sealingReason} needs to know besides the object. */
export interface SealingContext {
  /** ConfigMaps a Milvus CR of the backup uses as its configuration (rule 2). */
  readonly milvusConfigMaps: ReadonlySet<string>;
}

/**
 * Why `object` is sealed (see the module documentation), or undefined when it is stored as
 * YAML. The reason is for messages and tests, never stored next to the value.
 */
export function sealingReason(object: { kind?: string; metadata: { name: string }; [k: string]: unknown }, context: SealingContext): string | undefined {
  if (object.kind === 'Secret') return 'a Secret';
  if (object.kind === 'ConfigMap') {
    if (context.milvusConfigMaps.has(object.metadata.name)) return 'the configuration of the Milvus CR';
    const binaryKeys = Object.keys((object.binaryData ?? {}) as object);
    if (carriesCredential(object.data) || binaryKeys.some((k) => CREDENTIAL_NAME.test(k))) return 'data that looks like a credential';
    return undefined;
  }
  if (object.kind === 'Milvus') {
    const spec = (object.spec ?? {}) as { config?: unknown; components?: unknown };
    if (carriesCredential(spec.config) || carriesCredential(spec.components)) return 'configuration that looks like a credential';
  }
  return undefined;
}

/** The ConfigMaps a Milvus CR uses as its configuration (rule 2). */
export function milvusConfigMapsOf(cr: { metadata: { name: string }; spec?: unknown }): string[] {
  const active = ((cr.spec as { components?: { activeConfigMap?: unknown } } | undefined)?.components?.activeConfigMap);
  return [cr.metadata.name, ...(typeof active === 'string' && active !== '' ? [active] : [])];
}

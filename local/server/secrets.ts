/**
 * What the real API server does to a Secret it is asked to write, so the local cluster refuses
 * what EKS refuses: a restore or a test that creates a Secret the real server answers with 422
 * must fail here too, not pass and break later on EKS.
 *
 * Sources (kubernetes/kubernetes at 000f26050b9be6fb3d79fae95e06b47fc96128cd):
 * - decoding, before validation: `Convert_v1_Secret_To_core_Secret` (pkg/apis/core/v1/conversion.go)
 *   writes each `stringData` entry over `data` (the internal type has no `stringData`, so it is
 *   never stored or returned), and `SetDefaults_Secret` (pkg/apis/core/v1/defaults.go) sets an
 *   empty `type` to `Opaque`. Both run on every write, create and update alike.
 * - `ValidateSecret` (pkg/apis/core/validation/validation.go): every `data` key passes
 *   `IsConfigMapKey`; the values total at most `core.MaxSecretSize` (1 MiB) bytes; then, by type:
 *   `kubernetes.io/service-account-token` needs a non-empty
 *   `metadata.annotations[kubernetes.io/service-account.name]` ("Only require
 *   Annotations[kubernetes.io/service-account.name]": the uid and token come later from the tokens
 *   controller); `kubernetes.io/dockercfg` and `kubernetes.io/dockerconfigjson` need
 *   `data[.dockercfg]` / `data[.dockerconfigjson]` holding a JSON object; `kubernetes.io/basic-auth`
 *   needs `username` or `password` (either may be empty); `kubernetes.io/ssh-auth` a non-empty
 *   `ssh-privatekey`; `kubernetes.io/tls` both `tls.crt` and `tls.key` (present, possibly empty).
 *   `Opaque` and any other type are not checked beyond keys and size.
 * - `ValidateSecretUpdate` (same file): `type` is immutable (`ValidateImmutableField`:
 *   `Invalid value: "<new type>": field is immutable`); once `immutable: true` is stored, the flag
 *   cannot be unset and `data` cannot change ("field is immutable when `immutable` is set"); then
 *   `ValidateSecret` of the new object.
 * - the messages are `field.Error.ErrorBody()` (staging/src/k8s.io/apimachinery/pkg/util/
 *   validation/field/errors.go): `Required value`, `Invalid value: "<v>": <detail>`,
 *   `Too long: must have at most N bytes`, `Forbidden: <detail>`; a cause's `field` is the path,
 *   map keys in brackets (`data[tls.key]`).
 */
import type { FieldCause } from './resources.js';
import type { KubeObject } from './store.js';

/** `core.MaxSecretSize` (pkg/apis/core/types.go): 1 MiB of values, decoded. */
export const MAX_SECRET_SIZE = 1024 * 1024;

/** `IsConfigMapKey` (staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go). */
const CONFIG_MAP_KEY = /^[-._a-zA-Z0-9]+$/;
const CONFIG_MAP_KEY_MESSAGE =
  "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const DNS1123_SUBDOMAIN_MAX_LENGTH = 253;

const SERVICE_ACCOUNT_NAME_KEY = 'kubernetes.io/service-account.name';
const IMMUTABLE_WHEN_SET = 'Forbidden: field is immutable when `immutable` is set';

type SecretLike = KubeObject & { type?: string; data?: Record<string, unknown>; stringData?: Record<string, unknown>; immutable?: boolean };

/** Go's `%q` of a string; JSON's quoting is the same for the printable text keys and types hold. */
const quote = (value: string): string => JSON.stringify(value);

const dataOf = (secret: SecretLike): Record<string, unknown> => secret.data ?? {};
/** The bytes of one `data` value: JSON carries them base64-encoded, Go counts them decoded. */
const bytesOf = (value: unknown): Buffer => Buffer.from(typeof value === 'string' ? value : '', 'base64');
const has = (data: Record<string, unknown>, key: string): boolean => Object.prototype.hasOwnProperty.call(data, key);

const required = (field: string): FieldCause => ({ reason: 'FieldValueRequired', message: 'Required value', field });

/** The messages `IsConfigMapKey` gives for one key, in its order. */
function configKeyProblems(key: string): string[] {
  const problems: string[] = [];
  if (Buffer.byteLength(key, 'utf8') > DNS1123_SUBDOMAIN_MAX_LENGTH) problems.push(`must be no more than ${DNS1123_SUBDOMAIN_MAX_LENGTH} characters`);
  if (!CONFIG_MAP_KEY.test(key)) problems.push(CONFIG_MAP_KEY_MESSAGE);
  if (key === '.') problems.push("must not be '.'");
  else if (key === '..') problems.push("must not be '..'");
  else if (key.startsWith('..')) problems.push("must not start with '..'");
  return problems;
}

/**
 * Why `json.Unmarshal(bytes, &map[string]interface{}{})` would fail, or undefined. The wording of
 * a syntax error is JavaScript's, not Go's encoding/json (which says e.g. "invalid character 'x'
 * looking for beginning of value"); the field, reason and redacted value are the real server's.
 */
function dockerConfigProblem(bytes: Buffer): string | undefined {
  const text = bytes.toString('utf8');
  if (text.trim() === '') return 'unexpected end of JSON input';
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  if (parsed === null || (typeof parsed === 'object' && !Array.isArray(parsed))) return undefined;
  const goKind = Array.isArray(parsed) ? 'array' : typeof parsed === 'boolean' ? 'bool' : typeof parsed;
  return `json: cannot unmarshal ${goKind} into Go value of type map[string]interface {}`;
}

function dockerConfig(data: Record<string, unknown>, key: string): FieldCause[] {
  const field = `data[${key}]`;
  if (!has(data, key)) return [required(field)];
  const problem = dockerConfigProblem(bytesOf(data[key]));
  return problem === undefined ? [] : [{ reason: 'FieldValueInvalid', message: `Invalid value: "<secret contents redacted>": ${problem}`, field }];
}

/** What the real server's decoding does to a Secret body: `stringData` into `data`, `type` defaulted. */
export function decodeSecret(object: KubeObject): void {
  const secret = object as SecretLike;
  if (secret.stringData && Object.keys(secret.stringData).length > 0) {
    const data = { ...dataOf(secret) };
    for (const [key, value] of Object.entries(secret.stringData)) data[key] = Buffer.from(String(value), 'utf8').toString('base64');
    secret.data = data;
  }
  delete secret.stringData;
  // A null map decodes to no map (Go's nil): the real server omits it in what it stores and answers.
  if ((secret as { data?: unknown }).data === null) delete secret.data;
  if (!secret.type) secret.type = 'Opaque';
}

/** `ValidateSecret` beyond the metadata the store checks for every kind. */
export function validateSecret(object: KubeObject): FieldCause[] {
  const secret = object as SecretLike;
  const data = dataOf(secret);
  const causes: FieldCause[] = [];
  let total = 0;
  // Go ranges over the map in random order; sorted keys make the answer stable.
  for (const key of Object.keys(data).sort()) {
    for (const problem of configKeyProblems(key)) causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${quote(key)}: ${problem}`, field: `data[${key}]` });
    total += bytesOf(data[key]).length;
  }
  if (total > MAX_SECRET_SIZE) causes.push({ reason: 'FieldValueTooLong', message: `Too long: must have at most ${MAX_SECRET_SIZE} bytes`, field: 'data' });

  switch (secret.type) {
    case 'kubernetes.io/service-account-token':
      if (!secret.metadata.annotations?.[SERVICE_ACCOUNT_NAME_KEY]) causes.push(required(`metadata.annotations[${SERVICE_ACCOUNT_NAME_KEY}]`));
      break;
    case 'kubernetes.io/dockercfg':
      causes.push(...dockerConfig(data, '.dockercfg'));
      break;
    case 'kubernetes.io/dockerconfigjson':
      causes.push(...dockerConfig(data, '.dockerconfigjson'));
      break;
    case 'kubernetes.io/basic-auth':
      if (!has(data, 'username') && !has(data, 'password')) causes.push(required('data[username]'), required('data[password]'));
      break;
    case 'kubernetes.io/ssh-auth':
      if (bytesOf(data['ssh-privatekey']).length === 0) causes.push(required('data[ssh-privatekey]'));
      break;
    case 'kubernetes.io/tls':
      if (!has(data, 'tls.crt')) causes.push(required('data[tls.crt]'));
      if (!has(data, 'tls.key')) causes.push(required('data[tls.key]'));
      break;
    default:
      break; // Opaque and types of the user's own: keys and size only
  }
  return causes;
}

/** Whether two `data` maps hold the same values (a missing map and an empty one are the same). */
const sameData = (a: Record<string, unknown>, b: Record<string, unknown>): boolean => {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => has(b, k) && bytesOf(a[k]).equals(bytesOf(b[k])));
};

/** `ValidateSecretUpdate` beyond metadata, before `ValidateSecret` of the new object. */
export function validateSecretUpdate(next: KubeObject, current: KubeObject): FieldCause[] {
  const after = next as SecretLike;
  const before = current as SecretLike;
  const causes: FieldCause[] = [];
  // A Secret stored by an older local cluster may lack the type the real server always stores.
  if ((after.type ?? '') !== (before.type || 'Opaque')) {
    causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${quote(after.type ?? '')}: field is immutable`, field: 'type' });
  }
  if (before.immutable === true) {
    if (after.immutable !== true) causes.push({ reason: 'FieldValueForbidden', message: IMMUTABLE_WHEN_SET, field: 'immutable' });
    if (!sameData(dataOf(after), dataOf(before))) causes.push({ reason: 'FieldValueForbidden', message: IMMUTABLE_WHEN_SET, field: 'data' });
  }
  return causes;
}

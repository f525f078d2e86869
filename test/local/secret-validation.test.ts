import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PatchStrategy, setHeaderOptions, type V1Secret } from '@kubernetes/client-node';
import { createNamespace, startTestCluster, statusBodyOf, statusCodeOf, type TestCluster } from './helpers.js';

// The local API server decodes and validates Secrets as Kubernetes' ValidateSecret and
// ValidateSecretUpdate do (local/server/secrets.ts cites the source), and answers a refused one
// with the real 422 Invalid Status.

let t: TestCluster;
const NS = 'secret-rules';
const SA_NAME = 'kubernetes.io/service-account.name';
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

const secret = (name: string, type: string | undefined, data?: Record<string, string>, extra: Partial<V1Secret> = {}): V1Secret => ({
  metadata: { name },
  ...(type === undefined ? {} : { type }),
  ...(data ? { data } : {}),
  ...extra,
});

const create = (body: V1Secret) => t.core.createNamespacedSecret({ namespace: NS, body });
const refusal = async (attempt: Promise<unknown>) => {
  const err = await attempt.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) throw new Error('expected the API server to refuse the Secret');
  return { code: statusCodeOf(err), body: statusBodyOf(err) };
};
const fieldsOf = (body: any): { reason: string; field: string; message: string }[] => body.details.causes;

beforeAll(async () => {
  t = await startTestCluster();
  await createNamespace(t.core, NS);
  await t.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'milvus' } } });
});

afterAll(async () => {
  await t?.dispose();
});

describe('a ServiceAccount token Secret', () => {
  it('is refused without the service-account.name annotation, with the Status the real server writes', async () => {
    const { code, body } = await refusal(create(secret('no-account', 'kubernetes.io/service-account-token')));

    expect(code).toBe(422);
    expect(body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Secret "no-account" is invalid: metadata.annotations[kubernetes.io/service-account.name]: Required value',
      reason: 'Invalid',
      details: {
        name: 'no-account',
        kind: 'Secret',
        causes: [{ reason: 'FieldValueRequired', message: 'Required value', field: 'metadata.annotations[kubernetes.io/service-account.name]' }],
      },
      code: 422,
    });
  });

  it('is refused when the annotation is empty', async () => {
    const { code, body } = await refusal(create(secret('empty-account', 'kubernetes.io/service-account-token', undefined, { metadata: { name: 'empty-account', annotations: { [SA_NAME]: '' } } })));

    expect(code).toBe(422);
    expect(fieldsOf(body).map((c) => c.field)).toEqual([`metadata.annotations[${SA_NAME}]`]);
  });

  it('is accepted with the annotation, and an update that removes it is refused', async () => {
    await create(secret('milvus-token', 'kubernetes.io/service-account-token', undefined, { metadata: { name: 'milvus-token', annotations: { [SA_NAME]: 'milvus' } } }));

    const { code, body } = await refusal(
      t.core.patchNamespacedSecret(
        { namespace: NS, name: 'milvus-token', body: { metadata: { annotations: { [SA_NAME]: null } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );

    expect(code).toBe(422);
    expect(fieldsOf(body)).toEqual([{ reason: 'FieldValueRequired', message: 'Required value', field: `metadata.annotations[${SA_NAME}]` }]);
    expect((await t.core.readNamespacedSecret({ namespace: NS, name: 'milvus-token' })).metadata!.annotations![SA_NAME]).toBe('milvus');
  });
});

describe('the keys each built-in Secret type requires', () => {
  const redacted = (detail: string) => `Invalid value: "<secret contents redacted>": ${detail}`;
  const cases: { name: string; type: string; data: Record<string, string>; causes: { reason: string; field: string; message: string }[] }[] = [
    { name: 'tls-empty', type: 'kubernetes.io/tls', data: {},
      causes: [{ reason: 'FieldValueRequired', field: 'data[tls.crt]', message: 'Required value' }, { reason: 'FieldValueRequired', field: 'data[tls.key]', message: 'Required value' }] },
    { name: 'tls-no-key', type: 'kubernetes.io/tls', data: { 'tls.crt': b64('cert') },
      causes: [{ reason: 'FieldValueRequired', field: 'data[tls.key]', message: 'Required value' }] },
    { name: 'dockerconfigjson-missing', type: 'kubernetes.io/dockerconfigjson', data: { '.dockercfg': b64('{}') },
      causes: [{ reason: 'FieldValueRequired', field: 'data[.dockerconfigjson]', message: 'Required value' }] },
    { name: 'dockerconfigjson-array', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('[]') },
      causes: [{ reason: 'FieldValueInvalid', field: 'data[.dockerconfigjson]', message: redacted('json: cannot unmarshal array into Go value of type map[string]interface {}') }] },
    { name: 'dockerconfigjson-empty', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': '' },
      causes: [{ reason: 'FieldValueInvalid', field: 'data[.dockerconfigjson]', message: redacted('unexpected end of JSON input') }] },
    { name: 'dockercfg-missing', type: 'kubernetes.io/dockercfg', data: {},
      causes: [{ reason: 'FieldValueRequired', field: 'data[.dockercfg]', message: 'Required value' }] },
    { name: 'basic-auth-neither', type: 'kubernetes.io/basic-auth', data: { user: b64('root') },
      causes: [{ reason: 'FieldValueRequired', field: 'data[username]', message: 'Required value' }, { reason: 'FieldValueRequired', field: 'data[password]', message: 'Required value' }] },
    { name: 'ssh-auth-empty', type: 'kubernetes.io/ssh-auth', data: { 'ssh-privatekey': '' },
      causes: [{ reason: 'FieldValueRequired', field: 'data[ssh-privatekey]', message: 'Required value' }] },
  ];

  it.each(cases)('refuses $name with the causes ValidateSecret gives', async ({ name, type, data, causes }) => {
    const { code, body } = await refusal(create(secret(name, type, data)));

    expect(code).toBe(422);
    expect(body.reason).toBe('Invalid');
    expect(fieldsOf(body)).toEqual(causes);
  });

  it('brackets two or more causes in the message, as the real aggregate does', async () => {
    const { body } = await refusal(create(secret('tls-bare', 'kubernetes.io/tls', {})));

    expect(body.message).toBe('Secret "tls-bare" is invalid: [data[tls.crt]: Required value, data[tls.key]: Required value]');
  });

  it.each<{ name: string; type: string; data: Record<string, string> }>([
    { name: 'tls-ok', type: 'kubernetes.io/tls', data: { 'tls.crt': '', 'tls.key': '' } },
    { name: 'dockerconfigjson-ok', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{"auths":{}}') } },
    { name: 'basic-auth-username-only', type: 'kubernetes.io/basic-auth', data: { username: '' } },
    { name: 'ssh-auth-ok', type: 'kubernetes.io/ssh-auth', data: { 'ssh-privatekey': b64('key') } },
    { name: 'own-type', type: 'example.com/anything', data: {} },
  ])('accepts $name', async ({ name, type, data }) => {
    const created = await create(secret(name, type, data));

    expect(created.type).toBe(type);
  });

  it('takes stringData into data before validating, and never stores stringData', async () => {
    const created = await create(secret('tls-from-strings', 'kubernetes.io/tls', { 'tls.crt': b64('old') }, { stringData: { 'tls.crt': 'cert', 'tls.key': 'key' } }));

    expect(created.data).toEqual({ 'tls.crt': b64('cert'), 'tls.key': b64('key') });
    expect(created.stringData).toBeUndefined();
    expect((await t.core.readNamespacedSecret({ namespace: NS, name: 'tls-from-strings' })).stringData).toBeUndefined();
  });
});

describe('data keys and size', () => {
  it('refuses a key that is not a valid config key', async () => {
    const { code, body } = await refusal(create(secret('bad-key', 'Opaque', { 'dir/file': b64('x'), '..hidden': b64('y') })));

    expect(code).toBe(422);
    expect(fieldsOf(body)).toEqual([
      { reason: 'FieldValueInvalid', field: 'data[..hidden]', message: `Invalid value: "..hidden": must not start with '..'` },
      {
        reason: 'FieldValueInvalid',
        field: 'data[dir/file]',
        message: `Invalid value: "dir/file": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
      },
    ]);
  });

  it('refuses values that total more than 1 MiB decoded, and accepts exactly 1 MiB', async () => {
    const half = Buffer.alloc(512 * 1024, 7).toString('base64');

    const { code, body } = await refusal(create(secret('too-big', 'Opaque', { a: half, b: half, c: b64('!') })));
    const created = await create(secret('just-fits', 'Opaque', { a: half, b: half }));

    expect(code).toBe(422);
    expect(fieldsOf(body)).toEqual([{ reason: 'FieldValueTooLong', field: 'data', message: 'Too long: must have at most 1048576 bytes' }]);
    expect(created.metadata!.name).toBe('just-fits');
  });
});

describe('updates', () => {
  it('default the type to Opaque on create and refuse a change of type', async () => {
    const created = await create(secret('typed', undefined, { 'tls.crt': b64('c'), 'tls.key': b64('k') }));

    const { code, body } = await refusal(t.core.replaceNamespacedSecret({ namespace: NS, name: 'typed', body: { ...created, type: 'kubernetes.io/tls' } }));
    const untouched = await t.core.replaceNamespacedSecret({ namespace: NS, name: 'typed', body: { ...created, type: undefined, metadata: { ...created.metadata, labels: { a: 'b' } } } });

    expect(created.type).toBe('Opaque');
    expect(code).toBe(422);
    expect(fieldsOf(body)).toEqual([{ reason: 'FieldValueInvalid', field: 'type', message: 'Invalid value: "kubernetes.io/tls": field is immutable' }]);
    expect(untouched.type).toBe('Opaque');
  });

  it('of an immutable Secret may change metadata but not data nor the flag', async () => {
    const created = await create(secret('frozen', 'Opaque', { v: b64('1') }, { immutable: true }));

    const labelled = await t.core.replaceNamespacedSecret({ namespace: NS, name: 'frozen', body: { ...created, metadata: { ...created.metadata, labels: { kept: 'yes' } } } });
    const { code, body } = await refusal(t.core.replaceNamespacedSecret({ namespace: NS, name: 'frozen', body: { ...labelled, immutable: false, data: { v: b64('2') } } }));

    expect(labelled.metadata!.labels).toEqual({ kept: 'yes' });
    expect(code).toBe(422);
    expect(fieldsOf(body)).toEqual([
      { reason: 'FieldValueForbidden', field: 'immutable', message: 'Forbidden: field is immutable when `immutable` is set' },
      { reason: 'FieldValueForbidden', field: 'data', message: 'Forbidden: field is immutable when `immutable` is set' },
    ]);
    expect((await t.core.readNamespacedSecret({ namespace: NS, name: 'frozen' })).data).toEqual({ v: b64('1') });
  });
});

describe('a Secret with data: null', () => {
  it('is stored and answered without data, as the real server omits a nil map', async () => {
    await create({ ...secret('null-data', 'Opaque'), data: null as unknown as Record<string, string> });

    const stored = await t.core.readNamespacedSecret({ namespace: NS, name: 'null-data' });

    expect(stored).not.toHaveProperty('data');
    expect(stored.type).toBe('Opaque');
  });
});

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request } from 'node:https';
import { PatchStrategy, setHeaderOptions, Watch } from '@kubernetes/client-node';
import { createNamespace, startTestCluster, statusBodyOf, statusCodeOf, type TestCluster } from './helpers.js';

let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster();
  await createNamespace(t.core, 'crud');
});

afterAll(async () => {
  await t?.dispose();
});

/** A raw HTTPS request to the cluster (for what client-node hides: headers, 401). */
function raw(method: string, path: string, headers: Record<string, string> = {}, body?: string, timeoutMs?: number): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${t.cluster.url}${path}`, { method, ca: t.cluster.ca, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.end(body);
  });
}

const auth = () => ({ Authorization: `Bearer ${t.cluster.token}` });

describe('objects over the Kubernetes API', () => {
  it('creates an object and fills uid, resourceVersion and creationTimestamp', async () => {
    const created = await t.core.createNamespacedConfigMap({ namespace: 'crud', body: { metadata: { name: 'settings' }, data: { a: '1' } } });

    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(created.metadata?.resourceVersion)).toBeGreaterThan(0);
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(created.metadata?.namespace).toBe('crud');
  });

  it('names an object from generateName', async () => {
    const created = await t.core.createNamespacedConfigMap({ namespace: 'crud', body: { metadata: { generateName: 'gen-' } } });

    expect(created.metadata?.name).toMatch(/^gen-[a-z0-9]{5}$/);
  });

  it('answers 404 NotFound with a Status body for a missing object', async () => {
    const err = await t.core.readNamespacedConfigMap({ namespace: 'crud', name: 'nope' }).catch((e: unknown) => e);

    expect(statusCodeOf(err)).toBe(404);
    expect(statusBodyOf(err)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'configmaps "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', kind: 'configmaps' },
      code: 404,
    });
  });

  it('answers 409 AlreadyExists when the name is taken', async () => {
    await t.core.createNamespacedSecret({ namespace: 'crud', body: { metadata: { name: 'dup' } } });

    const err = await t.core.createNamespacedSecret({ namespace: 'crud', body: { metadata: { name: 'dup' } } }).catch((e: unknown) => e);

    expect(statusCodeOf(err)).toBe(409);
    expect(statusBodyOf(err).reason).toBe('AlreadyExists');
  });

  it('answers 409 Conflict to a replace with a stale resourceVersion', async () => {
    const first = await t.core.createNamespacedConfigMap({ namespace: 'crud', body: { metadata: { name: 'optimistic' }, data: { v: '1' } } });
    await t.core.replaceNamespacedConfigMap({ namespace: 'crud', name: 'optimistic', body: { ...first, data: { v: '2' } } });

    const err = await t.core.replaceNamespacedConfigMap({ namespace: 'crud', name: 'optimistic', body: { ...first, data: { v: '3' } } }).catch((e: unknown) => e);

    expect(statusCodeOf(err)).toBe(409);
    expect(statusBodyOf(err).reason).toBe('Conflict');
    expect((await t.core.readNamespacedConfigMap({ namespace: 'crud', name: 'optimistic' })).data).toEqual({ v: '2' });
  });

  it('answers 422 Invalid with causes for a bad name', async () => {
    const err = await t.core.createNamespacedConfigMap({ namespace: 'crud', body: { metadata: { name: 'Not_Valid' } } }).catch((e: unknown) => e);

    expect(statusCodeOf(err)).toBe(422);
    expect(statusBodyOf(err).reason).toBe('Invalid');
    expect(statusBodyOf(err).details.causes).toEqual([expect.objectContaining({ reason: 'FieldValueInvalid', field: 'metadata.name' })]);
  });

  it('answers 422 Invalid for a PVC without a storage request', async () => {
    const err = await t.core
      .createNamespacedPersistentVolumeClaim({ namespace: 'crud', body: { metadata: { name: 'no-size' }, spec: { accessModes: ['ReadWriteOnce'] } } })
      .catch((e: unknown) => e);

    expect(statusCodeOf(err)).toBe(422);
    expect(statusBodyOf(err).details.causes).toEqual([expect.objectContaining({ field: 'spec.resources.requests.storage', reason: 'FieldValueRequired' })]);
  });

  it('answers 404 for a create in a namespace that does not exist', async () => {
    const err = await t.core.createNamespacedConfigMap({ namespace: 'missing-ns', body: { metadata: { name: 'x' } } }).catch((e: unknown) => e);

    expect(statusCodeOf(err)).toBe(404);
    expect(statusBodyOf(err).message).toBe('namespaces "missing-ns" not found');
  });

  it('applies a merge patch', async () => {
    await t.core.createNamespacedConfigMap({ namespace: 'crud', body: { metadata: { name: 'patched', labels: { keep: 'yes', drop: 'yes' } } } });

    const patched = await t.core.patchNamespacedConfigMap(
      { namespace: 'crud', name: 'patched', body: { metadata: { labels: { drop: null, added: 'yes' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );

    expect(patched.metadata?.labels).toEqual({ keep: 'yes', added: 'yes' });
  });

  it('applies a JSON patch', async () => {
    await t.core.createNamespacedConfigMap({ namespace: 'crud', body: { metadata: { name: 'json-patched' }, data: { a: '1' } } });

    const patched = await t.core.patchNamespacedConfigMap(
      { namespace: 'crud', name: 'json-patched', body: [{ op: 'replace', path: '/data/a', value: '2' }, { op: 'add', path: '/data/b', value: '3' }] },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );

    expect(patched.data).toEqual({ a: '2', b: '3' });
  });

  it('deletes an object', async () => {
    await t.core.createNamespacedConfigMap({ namespace: 'crud', body: { metadata: { name: 'doomed' } } });

    await t.core.deleteNamespacedConfigMap({ namespace: 'crud', name: 'doomed' });

    expect(statusCodeOf(await t.core.readNamespacedConfigMap({ namespace: 'crud', name: 'doomed' }).catch((e: unknown) => e))).toBe(404);
  });

  it('creates with server-side apply, then merges a later apply', async () => {
    const apply = (data: Record<string, string>) =>
      t.core.patchNamespacedConfigMap(
        { namespace: 'crud', name: 'ssa', fieldManager: 'milvus-guard', body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ssa' }, data } },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      );

    await apply({ a: '1' });
    const merged = await apply({ b: '2' });

    expect(merged.data).toEqual({ a: '1', b: '2' });
  });

  it('streams changes to a watch', async () => {
    const events: string[] = [];
    let seenDeleted!: () => void;
    const deleted = new Promise<void>((resolve) => (seenDeleted = resolve));
    const watch = await new Watch(t.kc).watch(
      '/api/v1/namespaces/crud/configmaps',
      { labelSelector: 'watched=yes' },
      (phase: string, object: { metadata: { name: string } }) => {
        events.push(`${phase} ${object.metadata.name}`);
        if (phase === 'DELETED') seenDeleted();
      },
      () => undefined,
    );

    await t.core.createNamespacedConfigMap({ namespace: 'crud', body: { metadata: { name: 'seen', labels: { watched: 'yes' } } } });
    await t.core.createNamespacedConfigMap({ namespace: 'crud', body: { metadata: { name: 'unseen' } } });
    await t.core.deleteNamespacedConfigMap({ namespace: 'crud', name: 'seen' });
    await deleted;
    watch.abort();

    expect(events).toEqual(['ADDED seen', 'DELETED seen']);
  });

  it('counts spec changes, not status or label changes, in generation', async () => {
    const MILVUSES = { group: 'milvus.io', version: 'v1beta1', namespace: 'crud', plural: 'milvuses' };
    const created = await t.custom.createNamespacedCustomObject({ ...MILVUSES, body: { apiVersion: 'milvus.io/v1beta1', kind: 'Milvus', metadata: { name: 'gen' }, spec: { mode: 'standalone' } } });
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

    await t.custom.patchNamespacedCustomObject({ ...MILVUSES, name: 'gen', body: { metadata: { labels: { x: 'y' } } } }, merge);
    await t.custom.patchNamespacedCustomObjectStatus({ ...MILVUSES, name: 'gen', body: { status: { status: 'Pending' } } }, merge);
    const changed = await t.custom.patchNamespacedCustomObject({ ...MILVUSES, name: 'gen', body: { spec: { mode: 'cluster' } } }, merge);

    expect(created.metadata.generation).toBe(1);
    expect(changed.metadata.generation).toBe(2);
  });

  it('replaces only the status through the status subresource', async () => {
    await t.custom.createNamespacedCustomObject({
      group: 'milvus.io', version: 'v1beta1', namespace: 'crud', plural: 'milvuses',
      body: { apiVersion: 'milvus.io/v1beta1', kind: 'Milvus', metadata: { name: 'tiny' }, spec: { mode: 'standalone' } },
    });
    // The local operator reconciles the new CR and may write its status between our read and our
    // write (409 Conflict on the stale resourceVersion): read again and retry, as a client must.
    const replaceStatus = async (attempts: number): Promise<{ spec: { mode: string }; status: { status: string } }> => {
      const current = await t.custom.getNamespacedCustomObject({ group: 'milvus.io', version: 'v1beta1', namespace: 'crud', plural: 'milvuses', name: 'tiny' });
      try {
        return await t.custom.replaceNamespacedCustomObjectStatus({
          group: 'milvus.io', version: 'v1beta1', namespace: 'crud', plural: 'milvuses', name: 'tiny',
          body: { ...current, spec: { mode: 'cluster' }, status: { status: 'Healthy' } },
        });
      } catch (err) {
        if ((err as { code?: number }).code !== 409 || attempts <= 1) throw err;
        return replaceStatus(attempts - 1);
      }
    };

    const updated = await replaceStatus(5);

    expect(updated.status.status).toBe('Healthy');
    expect(updated.spec.mode).toBe('standalone');
  });
});

describe('selectors', () => {
  beforeAll(async () => {
    await createNamespace(t.core, 'labels');
    const cm = (name: string, labels: Record<string, string>) => t.core.createNamespacedConfigMap({ namespace: 'labels', body: { metadata: { name, labels } } });
    await cm('a', { app: 'milvus', tier: 'db', env: 'prod' });
    await cm('b', { app: 'milvus', tier: 'cache', env: 'dev' });
    await cm('c', { app: 'other', env: 'prod' });
  });

  const names = async (labelSelector?: string, fieldSelector?: string) =>
    (await t.core.listNamespacedConfigMap({ namespace: 'labels', labelSelector, fieldSelector })).items.map((i) => i.metadata!.name).filter((n) => n !== 'kube-root-ca.crt');

  it('selects by equality and inequality', async () => {
    expect(await names('app=milvus,env!=dev')).toEqual(['a']);
  });

  it('selects by set membership, exclusion and existence', async () => {
    expect(await names('env in (prod,staging),app notin (other)')).toEqual(['a']);
    expect(await names('tier')).toEqual(['a', 'b']);
    expect(await names('!tier')).toEqual(['c']);
  });

  it('selects by field', async () => {
    expect(await names(undefined, 'metadata.name=b')).toEqual(['b']);
    expect(await names(undefined, 'metadata.name!=b,metadata.namespace=labels')).toEqual(['a', 'c']);
  });

  it('lists across all namespaces', async () => {
    const all = await t.core.listConfigMapForAllNamespaces({ labelSelector: 'app=milvus' });

    expect(all.items.map((i) => `${i.metadata!.namespace}/${i.metadata!.name}`)).toEqual(['labels/a', 'labels/b']);
  });

  it('answers 400 BadRequest for a selector it cannot parse', async () => {
    const err = await t.core.listNamespacedConfigMap({ namespace: 'labels', labelSelector: 'app in milvus' }).catch((e: unknown) => e);

    expect(statusCodeOf(err)).toBe(400);
    expect(statusBodyOf(err).reason).toBe('BadRequest');
  });
});

describe('security and faults', () => {
  it('answers 401 to a request without the bearer token', async () => {
    const response = await raw('GET', '/api/v1/namespaces');

    expect(response.status).toBe(401);
    expect(response.json).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
  });

  it('answers 401 to a request with a wrong token', async () => {
    const response = await raw('GET', '/api/v1/namespaces', { Authorization: 'Bearer not-the-token' });

    expect(response.status).toBe(401);
  });

  it('fails matching requests with 429 the given number of times, then serves them', async () => {
    t.cluster.faults.failRequests({ path: '/namespaces/crud/configmaps/settings$', method: 'GET', status: 429, times: 2 });
    const attempt = () => t.core.readNamespacedConfigMap({ namespace: 'crud', name: 'settings' }).then(() => 200, (e: unknown) => statusCodeOf(e));

    const codes = [await attempt(), await attempt(), await attempt()];

    expect(codes).toEqual([429, 429, 200]);
  });

  it('sends Retry-After with an injected 429', async () => {
    t.cluster.faults.failRequests({ path: '^/api/v1/namespaces$', status: 429 });

    const response = await raw('GET', '/api/v1/namespaces', auth());

    expect(response.status).toBe(429);
    expect(response.json).toMatchObject({ reason: 'TooManyRequests', details: { retryAfterSeconds: 1 } });
  });

  it('accepts faults over the admin path', async () => {
    const posted = await raw('POST', '/_local/faults', { ...auth(), 'Content-Type': 'application/json' }, JSON.stringify({ request: { path: '/configmaps/settings$', status: 500 } }));

    const err = await t.core.readNamespacedConfigMap({ namespace: 'crud', name: 'settings' }).catch((e: unknown) => e);

    expect(posted.status).toBe(201);
    expect(statusCodeOf(err)).toBe(500);
    expect(statusBodyOf(err).reason).toBe('InternalError');
  });

  it('holds a request open when told to hang, until the client gives up', async () => {
    t.cluster.faults.failRequests({ path: '/configmaps/settings$', hang: true });

    const outcome = await raw('GET', '/api/v1/namespaces/crud/configmaps/settings', auth(), undefined, 300).catch((e: Error) => e.message);

    expect(outcome).toBe('client timeout');
  });

  it('answers normally after an injected delay', async () => {
    t.cluster.faults.failRequests({ path: '/configmaps/settings$', delayMs: 50 });

    const response = await raw('GET', '/api/v1/namespaces/crud/configmaps/settings', auth());

    expect(response.status).toBe(200);
  });

  it('drops a request it is delaying when it closes: no timer of it keeps the process alive', async () => {
    const own = await startTestCluster();
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    own.cluster.faults.failRequests({ path: '/configmaps/late$', delayMs: 600_000 });
    const hits = () => own.cluster.faults.toJSON().requests[0]?.hits ?? 0;

    const request = own.core.readNamespacedConfigMap({ namespace: 'default', name: 'late' }).catch((e: unknown) => e);
    // The fault counts the request in the same call that starts its delay's timer.
    const until = Date.now() + 10_000;
    while (hits() === 0 && Date.now() < until) await new Promise((r) => setImmediate(r));
    expect(hits()).toBe(1);
    const during = timers();
    await own.dispose();

    expect(timers()).toBe(during - 1);
    expect(await request).toBeInstanceOf(Error);
  });

  it('serves the timeline on the admin path', async () => {
    t.cluster.timeline.record({ source: 'api', type: 'Marker', name: 'here' });

    const response = await raw('GET', '/_local/timeline', auth());

    expect(response.json.events.at(-1)).toMatchObject({ source: 'api', type: 'Marker', name: 'here' });
  });

  it('serves discovery for the groups it knows', async () => {
    const groups = await raw('GET', '/apis', auth());

    expect(groups.json.groups.map((g: { name: string }) => g.name)).toEqual(['apps', 'rbac.authorization.k8s.io', 'networking.k8s.io', 'policy', 'autoscaling', 'batch', 'snapshot.storage.k8s.io', 'storage.k8s.io', 'milvus.io']);
  });
});

describe('persistence', () => {
  it('refuses a second cluster on a state directory that is in use', async () => {
    const second = startTestCluster({ stateDir: t.stateDir });

    await expect(second).rejects.toMatchObject({ name: 'UserError', message: expect.stringContaining('is in use by another local cluster') });
  });

  it('keeps objects, the token and a growing resourceVersion across a restart', async () => {
    const other = await startTestCluster();
    await createNamespace(other.core, 'kept');
    const created = await other.core.createNamespacedConfigMap({ namespace: 'kept', body: { metadata: { name: 'survivor' }, data: { k: 'v' } } });
    const token = other.cluster.token;
    await other.cluster.stop();

    const again = await startTestCluster({ stateDir: other.stateDir });
    try {
      const read = await again.core.readNamespacedConfigMap({ namespace: 'kept', name: 'survivor' });
      const next = await again.core.createNamespacedConfigMap({ namespace: 'kept', body: { metadata: { name: 'later' } } });

      expect(read.data).toEqual({ k: 'v' });
      expect(read.metadata?.uid).toBe(created.metadata?.uid);
      expect(again.cluster.token).toBe(token);
      expect(Number(next.metadata?.resourceVersion)).toBeGreaterThan(Number(created.metadata?.resourceVersion));
    } finally {
      await again.dispose();
    }
  });
});

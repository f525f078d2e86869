import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Secret } from '@kubernetes/client-node';
import { sanitizeManifest } from '../../core/backup/capture.js';
import type { RawObject } from '../../core/backup/discover.js';
import { rewriteForTarget } from '../../core/restore/manifests.js';
import { restoreLabels } from '../../core/restore/names.js';
import { createNamespace, startTestCluster, statusCodeOf, type TestCluster } from './helpers.js';

// The local cluster's tokens controller does what kube-controller-manager's does to legacy
// ServiceAccount token Secrets (local/controllers/tokens.ts), and a restored token Secret, as
// the restore rewrites it, comes out with the target's own token.

let t: TestCluster;
const SOURCE = 'tokens-source';
const TARGET = 'tokens-target';
const TOKEN = 'kubernetes.io/service-account-token';
const decode = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');

const tokenSecret = (namespace: string, name: string, annotations: Record<string, string>, data?: Record<string, string>): V1Secret => ({
  metadata: { name, namespace, annotations },
  type: TOKEN,
  ...(data ? { data } : {}),
});

const read = (namespace: string, name: string): Promise<V1Secret> => t.core.readNamespacedSecret({ namespace, name });

beforeAll(async () => {
  t = await startTestCluster();
  for (const ns of [SOURCE, TARGET]) {
    await createNamespace(t.core, ns);
    await t.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'milvus' } } });
  }
  await t.core.createNamespacedSecret({ namespace: SOURCE, body: tokenSecret(SOURCE, 'milvus-token', { 'kubernetes.io/service-account.name': 'milvus' }) });
  await t.cluster.settle();
});

afterAll(async () => {
  await t?.dispose();
});

describe('legacy ServiceAccount token Secrets', () => {
  it('are filled in by the cluster with a token, its CA and namespace, and the account uid', async () => {
    const account = await t.core.readNamespacedServiceAccount({ namespace: SOURCE, name: 'milvus' });
    const secret = await read(SOURCE, 'milvus-token');

    expect(secret.metadata!.annotations).toEqual({ 'kubernetes.io/service-account.name': 'milvus', 'kubernetes.io/service-account.uid': account.metadata!.uid });
    expect(decode(secret.data!['token'])).toContain(`${SOURCE}/milvus/${account.metadata!.uid}/milvus-token`);
    expect(decode(secret.data!['namespace'])).toBe(SOURCE);
    expect(decode(secret.data!['ca.crt'])).toContain('BEGIN CERTIFICATE');
  });

  it('are deleted when their uid annotation names another account than the one of that name, as the source copy would be', async () => {
    const source = await read(SOURCE, 'milvus-token');
    await t.core.createNamespacedSecret({ namespace: TARGET, body: tokenSecret(TARGET, 'as-captured', source.metadata!.annotations!, source.data) });
    await t.cluster.settle();

    expect(statusCodeOf(await read(TARGET, 'as-captured').catch((e: unknown) => e))).toBe(404);
  });

  it('are left as they are when immutable (the update is refused), and the others are still filled in', async () => {
    await t.core.createNamespacedSecret({ namespace: TARGET, body: { ...tokenSecret(TARGET, 'a-immutable', { 'kubernetes.io/service-account.name': 'milvus' }), immutable: true } });
    await t.core.createNamespacedSecret({ namespace: TARGET, body: tokenSecret(TARGET, 'b-mutable', { 'kubernetes.io/service-account.name': 'milvus' }) });
    await t.cluster.settle();

    expect((await read(TARGET, 'a-immutable')).data?.['token']).toBeUndefined();
    expect(decode((await read(TARGET, 'b-mutable')).data!['token'])).toContain(`${TARGET}/milvus/`);
  });

  it('keep a token that is there, so a copy without the uid annotation would keep the source credential', async () => {
    const source = await read(SOURCE, 'milvus-token');
    await t.core.createNamespacedSecret({ namespace: TARGET, body: tokenSecret(TARGET, 'token-kept', { 'kubernetes.io/service-account.name': 'milvus' }, source.data) });
    await t.cluster.settle();

    const kept = await read(TARGET, 'token-kept');
    expect(kept.data!['token']).toBe(source.data!['token']);
    expect(decode(kept.data!['namespace'])).toBe(SOURCE);
  });

  it.each([
    ['today, which keeps nothing the cluster issued', 'now'],
    ['before that, which kept the source token (sealed)', 'before'],
  ])('come back with the target account own token from a backup taken %s', async (_when, when) => {
    const source = { ...(await read(SOURCE, 'milvus-token')), apiVersion: 'v1', kind: 'Secret' } as unknown as RawObject;
    // What capture kept before it dropped the issued token: only the server's metadata went.
    const captured = when === 'now' ? sanitizeManifest(source) : { ...source, metadata: { name: source.metadata.name, namespace: SOURCE, annotations: source.metadata.annotations } };
    const name = `milvus-token-${when}`;
    const restored = rewriteForTarget({ ...captured, metadata: { ...captured.metadata, name } }, { fromNamespace: SOURCE, toNamespace: TARGET, storageClassMap: {}, labels: restoreLabels('r1') });
    await t.core.createNamespacedSecret({ namespace: TARGET, body: restored as unknown as V1Secret });
    await t.cluster.settle();

    const account = await t.core.readNamespacedServiceAccount({ namespace: TARGET, name: 'milvus' });
    const secret = await read(TARGET, name);
    expect(secret.metadata!.annotations).toEqual({ 'kubernetes.io/service-account.name': 'milvus', 'kubernetes.io/service-account.uid': account.metadata!.uid });
    expect(decode(secret.data!['token'])).toContain(`${TARGET}/milvus/${account.metadata!.uid}/${name}`);
    expect(decode(secret.data!['namespace'])).toBe(TARGET);
  });
});

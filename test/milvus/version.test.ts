import { describe, expect, test } from '@jest/globals';
import {
  backupUnsupportedReason,
  compareMilvusVersions,
  detectMilvusVersion,
  imageTag,
  milvusBehaviour,
  milvusLine,
  parseMilvusVersion,
  quiesceMethod,
} from '../../core/milvus/version.js';
import { assertSupportedMilvusVersion } from '../../local/seed.js';

const v = parseMilvusVersion;
const order = (a: string, b: string) => Math.sign(compareMilvusVersions(v(a), v(b)));

describe('parsing and comparing versions', () => {
  test('reads releases with or without v, pre-releases and master builds', () => {
    expect(v('v2.5.14')).toMatchObject({ kind: 'release', major: 2, minor: 5, patch: 14 });
    expect(v('2.6.8')).toMatchObject({ kind: 'release', major: 2, minor: 6, patch: 8 });
    expect(v('v2.6.0-rc1')).toMatchObject({ kind: 'release', minor: 6, patch: 0, prerelease: 'rc1' });
    expect(v('master-20250301-1a2b3c4')).toMatchObject({ kind: 'master' });
    expect(v('latest')).toMatchObject({ kind: 'unknown' });
    expect(v(undefined)).toEqual({ kind: 'unknown' });
  });

  test('a build variant such as -gpu is not a pre-release', () => {
    expect(v('v2.4.5-gpu')).not.toHaveProperty('prerelease');
  });

  test('orders patch numerically, pre-releases before their release, master after every release', () => {
    expect(order('v2.5.9', 'v2.5.14')).toBe(-1);
    expect(order('v2.6.0-rc1', 'v2.6.0')).toBe(-1);
    expect(order('master-x', 'v3.9.9')).toBe(1);
    expect(order('2.6.8', 'v2.6.8')).toBe(0);
  });

  test('takes the tag of an image reference, with a registry port or a digest', () => {
    expect(imageTag('milvusdb/milvus:v2.5.14')).toBe('v2.5.14');
    expect(imageTag('registry:5000/milvusdb/milvus:v2.6.8@sha256:abc')).toBe('v2.6.8');
    expect(imageTag('registry:5000/milvusdb/milvus')).toBeUndefined();
  });

  test('names the supported line, master counting as 3.0', () => {
    expect([milvusLine(v('v2.4.23')), milvusLine(v('master-1')), milvusLine(v('v2.3.9')), milvusLine(v('x'))]).toEqual(['2.4', '3.0', undefined, undefined]);
  });
});

describe('what each version does', () => {
  test.each([
    ['v2.4.23', 'absent', 'global-without-ticket', false],
    ['v2.5.3', 'absent', 'global-without-ticket', false],
    ['v2.5.4', 'returns-at-once', 'global-without-ticket', false],
    ['v2.5.27', 'returns-at-once', 'global-without-ticket', true],
    ['v2.6.7', 'returns-at-once', 'global-without-ticket', false],
    ['v2.6.8', 'returns-at-once', 'ticket', false],
    ['v2.6.10', 'returns-at-once', 'ticket', true],
    ['v3.0.0', 'waits', 'ticket', true],
    ['master-20260301-0a1b2c3', 'waits', 'ticket', true],
  ])('%s: REST flush %s, GC pause %s, /api/v1 authenticated %s', (version, restFlush, gcPause, managementApiAuth) => {
    expect(milvusBehaviour(v(version))).toMatchObject({ restFlush, gcPause, managementApiAuth, persistApi: true });
  });

  test('REST v2 lists databases from 2.4.18, and a backup refuses an older Milvus with the reason; an unread version is tried', () => {
    expect(['v2.4.17', 'v2.4.18', 'v2.5.0', 'master-1', 'x'].map((x) => milvusBehaviour(v(x)).restDatabases)).toEqual([false, true, true, true, true]);
    expect(backupUnsupportedReason(v('v2.4.17'))).toBe(
      'Milvus v2.4.17 cannot list its databases through REST v2 (databases/list exists from 2.4.18), and a backup must flush and count the collections of every database; upgrade Milvus to 2.4.18 or later',
    );
    expect(backupUnsupportedReason(v('v2.3.21'))).toBe('Milvus v2.3.21 is older than the lines milvus-guard supports (2.4.18 or later on 2.4, then 2.5, 2.6, 3.0 and master builds)');
    // Newer lines, branch builds without a patch number, master builds and unread versions are tried.
    const tried = ['v2.4.18', 'v2.4.23', 'v2.5.0', 'v2.6.10', 'v2.7.0', 'v3.0.0', 'v3.1.2', '2.4-20250110-a1b2c3d-amd64', 'master-20260301-0a1b2c3', 'not-a-version'];
    expect(tried.map((x) => backupUnsupportedReason(v(x)))).toEqual(Array(tried.length).fill(undefined));
  });

  test('every version flushes through persist; the GC pause is global, with a ticket from 2.6.8', () => {
    expect(['v2.4.23', 'v2.5.14', 'v2.6.8', 'master-1', 'x'].map((x) => quiesceMethod(v(x)).flush)).toEqual(['persist', 'persist', 'persist', 'persist', 'persist']);
    expect(['v2.6.7', 'v2.6.8', 'x'].map((x) => quiesceMethod(v(x)).gcPause)).toEqual(['global-without-ticket', 'global-with-ticket', 'as-answered']);
  });
});

/** A KubeClients stand-in answering the CR and workload reads from fixed objects (404 when absent). */
function kubeWith(objects: { cr?: unknown; deployments?: unknown[]; statefulSets?: unknown[]; crStatus?: number }) {
  const notFound = (code: number) => Object.assign(new Error('not found'), { code });
  return {
    custom: {
      getNamespacedCustomObject: async () => {
        if (objects.cr === undefined) throw notFound(objects.crStatus ?? 404);
        return objects.cr;
      },
    },
    apps: {
      listNamespacedDeployment: async () => ({ items: objects.deployments ?? [] }),
      listNamespacedStatefulSet: async () => ({ items: objects.statefulSets ?? [] }),
    },
  } as unknown as Parameters<typeof detectMilvusVersion>[0];
}

const workload = (name: string, component: string, image: string, labelKey = 'app.kubernetes.io/component') => ({
  metadata: { name, labels: { 'app.kubernetes.io/instance': 'm', [labelKey]: component } },
  spec: { template: { spec: { containers: [{ name: 'milvus', image }] } } },
});

describe('detecting the version of a plan’s Milvus', () => {
  test('the CR status wins over its spec', async () => {
    const kube = kubeWith({ cr: { status: { currentVersion: 'v2.6.8' }, spec: { components: { image: 'milvusdb/milvus:v2.5.14' } } } });
    expect(await detectMilvusVersion(kube, 'ns', 'm')).toMatchObject({ version: { text: 'v2.6.8' }, source: 'Milvus ns/m .status.currentVersion' });
  });

  test('the CR spec image tag when the status says nothing', async () => {
    const kube = kubeWith({ cr: { spec: { components: { image: 'milvusdb/milvus:v2.5.14' } } } });
    expect(await detectMilvusVersion(kube, 'ns', 'm')).toMatchObject({ version: { text: 'v2.5.14' }, source: 'Milvus ns/m .spec.components.image' });
  });

  test('without a CR, the image of the proxy Deployment (Helm labels)', async () => {
    const kube = kubeWith({ deployments: [workload('m-datanode', 'datanode', 'milvusdb/milvus:v9.9.9', 'component'), workload('m-proxy', 'proxy', 'milvusdb/milvus:v2.4.23', 'component')] });
    expect(await detectMilvusVersion(kube, 'ns', 'm')).toMatchObject({ version: { text: 'v2.4.23' }, source: 'Deployment ns/m-proxy image milvusdb/milvus:v2.4.23' });
  });

  test('a standalone StatefulSet counts too', async () => {
    const kube = kubeWith({ statefulSets: [workload('m-standalone', 'standalone', 'milvusdb/milvus:master-20260301-0a1b2c3')] });
    expect((await detectMilvusVersion(kube, 'ns', 'm')).version.kind).toBe('master');
  });

  test('unknown, saying what was tried, when neither says', async () => {
    const kube = kubeWith({ crStatus: 403, deployments: [workload('m-proxy', 'proxy', 'milvusdb/milvus@sha256:abc')] });
    const found = await detectMilvusVersion(kube, 'ns', 'm');
    expect(found.version).toEqual({ kind: 'unknown' });
    expect(found.source).toMatch(/not readable \(403\).*no proxy or standalone workload/);
  });
});

describe('the seeded CR version (--milvus-version)', () => {
  test('accepts a release of a supported line or a master build', () => {
    expect(['v2.4.23', '2.5.14', 'v2.6.0-rc1', 'v3.0.0', 'master-20260301-0a1b2c3'].map(assertSupportedMilvusVersion)).toHaveLength(5);
  });

  test('refuses other lines and junk with one line naming the supported ones', () => {
    for (const bad of ['v2.3.9', 'latest', 'v2.5.14 ; rm', '']) {
      expect(() => assertSupportedMilvusVersion(bad)).toThrow(/is not supported: give a release of 2\.4\.x, 2\.5\.x, 2\.6\.x, 3\.0\.x/);
    }
  });
});

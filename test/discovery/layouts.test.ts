import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { classifyInstance, type LayoutInput, type LooseObject } from '../../core/discovery/layout.js';
import { classifyVolume, helmFullname, looksLikeInstanceVolume, volumeRole } from '../../core/discovery/volumes.js';

// Each fixture is one way Milvus is deployed, with the PVC names the charts give (its `sources`
// name the chart files they come from) and what discovery must find.
interface LayoutFixture {
  layout: string;
  sources: string[];
  instance: string;
  pvcs: string[];
  helmConfig?: Record<string, string>;
  milvusCr?: LooseObject;
  expect: { queue: { kind: string; placement: string; volumes: string[] }; roles: Record<string, string>; skipped: string[]; warnings: number };
}

const DIR = 'test/fixtures/layouts';
const fixtures = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(`${DIR}/${f}`, 'utf8')) as LayoutFixture] as const);

const inputOf = (f: LayoutFixture): LayoutInput => ({
  instance: f.instance,
  pvcs: f.pvcs.map((name) => ({ name })),
  ...(f.milvusCr ? { milvusCr: f.milvusCr } : {}),
  ...(f.helmConfig ? { helmConfig: { metadata: { name: helmFullname(f.instance, 'milvus') }, data: f.helmConfig } } : {}),
});

describe('discovery of the charts’ layouts', () => {
  it('has a fixture for every layout the README table lists', () => {
    expect(fixtures.map(([name]) => name)).toEqual(
      expect.arrayContaining(['helm-pulsarv3', 'helm-pulsar-legacy', 'helm-kafka', 'operator-pulsar', 'operator-kafka', 'helm-2.6-woodpecker', 'helm-2.6-woodpecker-service', 'operator-2.6-woodpecker', 'helm-standalone-rocksmq', 'operator-standalone-rocksmq', 'external-msk', 'external-pulsar-helm']),
    );
  });

  describe.each(fixtures)('%s', (_name, f) => {
    const layout = classifyInstance(inputOf(f));

    it('snapshots every volume of the instance’s state, each with its role', () => {
      expect(Object.fromEntries(layout.volumes.map((v) => [v.pvc, v.role]))).toEqual(f.expect.roles);
    });

    it('reports the queue, where its data lives and the volumes that hold it', () => {
      expect({ kind: layout.queue.kind, placement: layout.queue.placement, volumes: [...layout.queue.volumes] }).toEqual(f.expect.queue);
    });

    it('leaves out only what it says why', () => {
      expect(layout.skipped.map((s) => s.pvc)).toEqual(f.expect.skipped);
      expect(layout.warnings).toHaveLength(f.expect.warnings);
    });
  });
});

describe('a PVC no chart name matches', () => {
  const base = (extra: LayoutInput['pvcs'], workloads: LooseObject[] = []): LayoutInput => ({
    instance: 'my-release',
    pvcs: [{ name: 'data-my-release-etcd-0' }, { name: 'my-release-minio' }, ...extra],
    workloads,
  });

  it('is snapshotted as "other", with a warning, when the plan’s selector matches it', () => {
    const layout = classifyInstance(base([{ name: 'my-release-attu-data', selected: true }]));
    expect(layout.volumes.find((v) => v.pvc === 'my-release-attu-data')).toMatchObject({ role: 'other' });
    expect(layout.warnings).toEqual([expect.stringContaining('PVC my-release-attu-data belongs to Milvus instance my-release')]);
  });

  it('is snapshotted as "other" when a workload of the instance mounts it', () => {
    const standalone: LooseObject = {
      metadata: { name: 'my-release-milvus-standalone' },
      spec: { template: { spec: { volumes: [{ name: 'milvus-data-disk', persistentVolumeClaim: { claimName: 'milvus-data-custom' } }] } } },
    };
    const layout = classifyInstance(base([{ name: 'milvus-data-custom' }], [standalone]));
    expect(layout.volumes.map((v) => [v.pvc, v.role])).toContainEqual(['milvus-data-custom', 'other']);
    expect(layout.warnings[0]).toContain("my-release-milvus-standalone, which the plan's selector matches, mounts it");
  });

  it('is snapshotted when a StatefulSet of the instance claims it by template', () => {
    const sts: LooseObject = { metadata: { name: 'my-release-cache' }, spec: { volumeClaimTemplates: [{ metadata: { name: 'scratch' } }] } };
    const layout = classifyInstance(base([{ name: 'scratch-my-release-cache-0' }, { name: 'scratch-my-release-cache-x' }], [sts]));
    expect(layout.volumes.map((v) => v.pvc)).toContain('scratch-my-release-cache-0');
    expect(layout.volumes.map((v) => v.pvc)).not.toContain('scratch-my-release-cache-x');
  });

  it('is named in a warning, and not snapshotted, when only its name carries the instance name', () => {
    const layout = classifyInstance(base([{ name: 'my-release-newqueue-data-0' }]));
    expect(layout.volumes.map((v) => v.pvc)).not.toContain('my-release-newqueue-data-0');
    expect(layout.warnings).toEqual([expect.stringContaining('PVC my-release-newqueue-data-0 carries the name of Milvus instance my-release')]);
    expect(layout.warnings[0]).toContain('NOT in this backup');
  });

  it('is ignored without a word when it belongs to another instance or to nothing Milvus', () => {
    const layout = classifyInstance(base([{ name: 'data-my-release-2-etcd-0' }, { name: 'my-release-2-pulsarv3-bookie-journal-my-release-2-pulsarv3-bookie-0' }, { name: 'postgres-data-0' }]));
    expect(layout.volumes.map((v) => v.pvc)).toEqual(['data-my-release-etcd-0', 'my-release-minio']);
    expect(layout.warnings).toEqual([]);
  });

  it('is never one of milvus-guard’s own export clones', () => {
    const clone = { name: 'export-0123456789abcdef', selected: true, labels: { 'app.kubernetes.io/managed-by': 'milvus-guard', 'milvus-guard.io/backup': 'b1' } };
    const layout = classifyInstance(base([clone]));
    expect(layout.volumes.map((v) => v.pvc)).not.toContain(clone.name);
  });
});

describe('known volumes that hold no state', () => {
  it('leaves the Milvus log volume out and says why', () => {
    const layout = classifyInstance({ instance: 'my-release', pvcs: [{ name: 'data-my-release-etcd-0' }, { name: 'my-release-minio' }, { name: 'my-release-milvus-logs', selected: true }] });
    expect(layout.volumes.map((v) => v.pvc)).not.toContain('my-release-milvus-logs');
    expect(layout.skipped).toEqual([{ pvc: 'my-release-milvus-logs', component: 'milvus-logs', reason: expect.stringContaining('log files') }]);
  });
});

describe('queue warnings', () => {
  it('says when an in-cluster queue of the CR has no volume', () => {
    const layout = classifyInstance({
      instance: 'm',
      pvcs: [{ name: 'data-m-etcd-0' }, { name: 'export-m-minio-0' }],
      milvusCr: { metadata: { name: 'm' }, spec: { dependencies: { msgStreamType: 'pulsar' } } },
    });
    expect(layout.queue).toMatchObject({ kind: 'pulsar', placement: 'ephemeral' });
    expect(layout.warnings).toEqual([expect.stringContaining('no pulsar PVC was found')]);
  });

  it('snapshots the volumes of a queue Milvus no longer uses, and says so', () => {
    const layout = classifyInstance({
      instance: 'm',
      pvcs: [{ name: 'data-m-etcd-0' }, { name: 'export-m-minio-0' }, { name: 'm-pulsarv3-bookie-journal-m-pulsarv3-bookie-0' }],
      helmConfig: { metadata: { name: 'm-milvus' }, data: { 'default.yaml': 'mq:\n  type: woodpecker\n' } },
    });
    expect(layout.volumes.map((v) => v.role)).toContain('message-queue');
    expect(layout.queue).toMatchObject({ kind: 'woodpecker', placement: 'object-storage' });
    expect(layout.warnings).toEqual([expect.stringContaining('no longer reads them')]);
  });

  it('lets user.yaml override the chart’s default.yaml', () => {
    const layout = classifyInstance({
      instance: 'm',
      pvcs: [{ name: 'data-m-etcd-0' }, { name: 'm-minio' }, { name: 'm-milvus' }],
      helmConfig: { metadata: { name: 'm-milvus' }, data: { 'default.yaml': 'mq:\n  type: woodpecker\n', 'user.yaml': 'woodpecker:\n  storage:\n    type: local\n' } },
    });
    expect(layout.queue).toMatchObject({ kind: 'woodpecker', placement: 'volumes', volumes: ['m-milvus'] });
  });

  it("takes the claim a Milvus CR names for its built-in queue as the instance's own volume", () => {
    const layout = classifyInstance({
      instance: 'm',
      pvcs: [{ name: 'data-m-etcd-0' }, { name: 'm-minio' }, { name: 'rocksmq-disk' }],
      milvusCr: { metadata: { name: 'm' }, spec: { mode: 'standalone', dependencies: { msgStreamType: 'rocksmq', rocksmq: { persistence: { enabled: true, persistentVolumeClaim: { existingClaim: 'rocksmq-disk' } } } } } },
    });
    expect(layout.queue).toMatchObject({ kind: 'rocksmq', placement: 'volumes', volumes: ['rocksmq-disk'] });
    expect(layout.warnings).toEqual([]);
  });

  it('infers the queue from its volumes when nothing declares it', () => {
    const layout = classifyInstance({ instance: 'm', pvcs: [{ name: 'data-m-etcd-0' }, { name: 'm-minio' }, { name: 'data-m-kafka-0' }] });
    expect(layout.queue).toEqual({ kind: 'kafka', placement: 'volumes', declaredBy: 'volumes', volumes: ['data-m-kafka-0'] });
  });
});

describe('names', () => {
  it.each([
    // Helm's fullname rule: a release that contains the chart's name is used alone.
    ['milvus', 'milvus', 'milvus'],
    ['my-release', 'milvus', 'my-release-milvus'],
    ['vector-milvus-prod', 'milvus', 'vector-milvus-prod'],
    ['my-release', 'pulsarv3', 'my-release-pulsarv3'],
  ])('helmFullname(%s, %s) is %s', (release, chart, name) => {
    expect(helmFullname(release, chart)).toBe(name);
  });

  it.each([
    ['milvus', 'data-milvus-etcd-0', 'etcd'],
    ['milvus', 'milvus', 'milvus-local'],
    ['my-release', 'export-0-my-release-minio-2', 'object-storage'],
    ['my-release', 'my-release-pulsarv3-bookie-journal0-my-release-pulsarv3-bookie-1', 'message-queue'],
    ['my-release', 'my-release-pulsarv3-bookie-common-my-release-pulsarv3-bookie-0', 'message-queue'],
    ['my-release', 'my-release-pulsar-pulsar-manager-data-my-release-pulsar-pulsar-manager-0', 'message-queue'],
    ['my-release', 'logs-my-release-kafka-0', 'message-queue'],
    ['my-release', 'data-log-my-release-zookeeper-0', 'message-queue'],
  ])('for instance %s, %s is %s', (instance, pvc, role) => {
    expect(volumeRole(pvc, instance)).toBe(role);
  });

  it('snapshots with the queue a volume a later Pulsar chart adds under its release', () => {
    expect(classifyVolume('my-release-pulsarv3-recovery-data-my-release-pulsarv3-recovery-0', 'my-release')).toEqual({ role: 'message-queue', component: 'pulsar', queue: 'pulsar' });
  });

  it('does not take a longer instance’s volume for its own', () => {
    expect(looksLikeInstanceVolume('data-my-release-2-etcd-0', 'my-release')).toBe(false);
    expect(looksLikeInstanceVolume('my-release-newthing-0', 'my-release')).toBe(true);
    expect(looksLikeInstanceVolume('release-data', 'my-release')).toBe(false);
    // Read as a whole, any name containing "milvus" is some release's standalone volume: not evidence.
    expect(looksLikeInstanceVolume('production-milvus-mystery-0', 'production-milvus')).toBe(true);
  });
});

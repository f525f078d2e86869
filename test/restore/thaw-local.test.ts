import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { RestoreRecord } from '../../core/catalog/record.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { kubeConfigFromFile, makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { packsOfBackup } from '../../core/restore/thaw.js';
import { readBackupVolumes } from '../../core/restore/volumes.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { packKey } from '../../core/vault/layout.js';
import { decodeEtcdDb, ETCD_DB_PATH } from '../../local/milvus/etcd-store.js';
import { localPaths, runLocalRestore, type LocalBackupResult } from '../../local/workflows/runner.js';
import { backup, NAMESPACE, startSeededCluster, type SeededCluster } from '../backup/helpers.js';
import { restoreServicesOf, snapshotDir as snapshotDirOf, tree, volumeDir as volumeDirOf } from './helpers.js';

// The real restore workflow (statemachines/restore.asl.yaml, every Task its real handler) on the
// local cluster, restoring a backup some of whose packs the "lifecycle" moved into GLACIER in the
// file:// vault. Thaws take four hours on the steps' clock, which moves by the WaitForThaw's 900
// seconds before each CheckThaw (the runner's beforeTask), so nothing waits on the real clock; the
// other polls await the cluster's settle(). The data-mover Jobs read the same vault on the real
// clock: they see the thaw complete because the steps' store noted it in the vault's journal.

const FULL_RUN = 240_000;
const BACKUP_ID = 'thaw-1';
const ARCHIVED = 3;
/** The steps' clock starts here (after the real time: the Jobs' clock must be inside the thawed copies' days). */
const START = new Date('2030-01-07T02:00:00.000Z');
const WAIT_FOR_THAW = 900;
const FAST_RESTORE = { volumeTimeoutSeconds: 120, readyTimeoutSeconds: 60, validateTimeoutSeconds: 60 };

let c: SeededCluster;
let config: Config;
let kube: KubeClients;
let archivedKeys: string[];

class Clock {
  constructor(public at: Date) {}
  readonly now = (): Date => this.at;
}

/** Runs the restore workflow with a vault whose thaws take `thawSeconds` on a clock that each CheckThaw moves on. */
async function restoreThawing(input: Record<string, unknown>, thawSeconds: number, restoreTimings: Record<string, number> = {}): Promise<{ result: LocalBackupResult; checks: number; record: RestoreRecord }> {
  const clock = new Clock(START);
  const vaultDir = localPaths(c.stateDir).vault;
  const store = new FileVaultStore(vaultDir, { now: clock.now, thawSeconds });
  let checks = 0;
  const result = await runLocalRestore({
    stateDir: c.stateDir,
    config,
    input,
    now: clock.now,
    vault: { store, url: pathToFileURL(vaultDir).href, args: [] },
    untilPoll: () => c.cluster.settle(),
    timings: { flushTimeoutSeconds: 30, snapshotTimeoutSeconds: 60, exportTimeoutSeconds: 120 },
    restoreTimings: { ...FAST_RESTORE, ...restoreTimings },
    beforeTask: (state) => {
      // WaitForThaw's time passes on the steps' clock, not on the real one.
      if (state === 'CheckThaw') {
        checks++;
        clock.at = new Date(clock.at.getTime() + WAIT_FOR_THAW * 1000);
      }
    },
  });
  const record = (await restoreServicesOf(c, config).catalog.getRestore(input['restoreName'] as string))!;
  return { result, checks, record };
}

/** Moves the archived packs (back) into `storageClass`, as a lifecycle transition would; any thawed copy goes. */
async function archive(storageClass: string): Promise<void> {
  const store = new FileVaultStore(localPaths(c.stateDir).vault);
  for (const key of archivedKeys) await store.transition(key, storageClass);
}

const volumeDir = (namespace: string, pvc: string) => volumeDirOf(c, kube, namespace, pvc);
/** The frozen files of the cloud snapshot behind one of the backup's VolumeSnapshots. */
const snapshotDir = (snapshot: string) => snapshotDirOf(c, kube, NAMESPACE, snapshot);

beforeAll(async () => {
  c = await startSeededCluster();
  config = await loadConfigFile('examples/production.yaml');
  kube = makeKubeClients(kubeConfigFromFile(c.cluster.kubeconfigPath));
  const made = await backup(c, config, { backupName: BACKUP_ID });
  if (made.status !== 'SUCCEEDED') throw new Error(`the backup failed: ${JSON.stringify(made.error)}`);
  const vault = new FileVaultStore(localPaths(c.stateDir).vault);
  // Packs of the etcd volumes: every hydration Job of those volumes must get past them.
  archivedKeys = (await packsOfBackup(vault, BACKUP_ID)).slice(0, ARCHIVED).map(packKey);
}, FULL_RUN);

afterAll(async () => {
  await c?.dispose();
});

describe('a restore of a backup whose packs are in GLACIER', () => {
  const TARGET = 'vector-db-thawed';
  let run: Awaited<ReturnType<typeof restoreThawing>>;

  beforeAll(async () => {
    await archive('GLACIER');
    run = await restoreThawing({ backupId: BACKUP_ID, targetNamespace: TARGET, source: 'vault', restoreName: 'thawed' }, 4 * 3600);
  }, FULL_RUN);

  it('thaws them, then restores and validates', () => {
    expect(run.result.error).toBeUndefined();
    expect(run.result.status).toBe('SUCCEEDED');
    expect(run.record.status).toBe('Completed');
  });

  it('waits in the WaitForThaw/CheckThaw loop until the four-hour thaw is done, before creating the namespace', () => {
    const states = run.result.states;
    expect(states.slice(0, 4)).toEqual(['PrepareRestore', 'VerifyBackup', 'StartThaw', 'Thawed']);
    expect(run.checks).toBe((4 * 3600) / WAIT_FOR_THAW);
    expect(states.indexOf('CreateNamespace')).toBeGreaterThan(states.lastIndexOf('CheckThaw'));
  });

  it('records the thaw in the timeline', () => {
    expect(run.record.steps.Verify?.detail).toContain(`(${ARCHIVED} in an archive class, to thaw)`);
    expect(run.record.steps.Thaw).toMatchObject({ outcome: 'Succeeded', detail: `${ARCHIVED} pack(s) thawed from an archive class` });
  });

  it('restores every file of every volume byte for byte as the backup snapshot held it', async () => {
    const volumes = await readBackupVolumes(new FileVaultStore(localPaths(c.stateDir).vault), BACKUP_ID);
    expect(volumes).toHaveLength(7);
    for (const v of volumes) {
      const dir = await volumeDir(TARGET, v.pvc);
      const snapshot = await snapshotDir(v.snapshot);
      const restored = await tree(dir);
      const held = await tree(snapshot);
      expect(Object.keys(restored).length).toBeGreaterThan(0);
      if (held[ETCD_DB_PATH] !== undefined && restored[ETCD_DB_PATH] !== held[ETCD_DB_PATH]) {
        // The restored Milvus has written its etcd since: validation loaded the collections the
        // source had released and released them again (querycoord's load info saved Loading,
        // Loaded, then removed), as a real querycoord does. The keys and values are the backup's;
        // the revision moved on, as real etcd's would.
        const entries = async (root: string) => decodeEtcdDb(await readFile(join(root, ETCD_DB_PATH))).entries;
        expect(await entries(dir)).toEqual(await entries(snapshot));
        delete restored[ETCD_DB_PATH];
        delete held[ETCD_DB_PATH];
      }
      expect(restored).toEqual(held);
    }
  });
});

describe('a restore whose packs do not thaw before the deadline', () => {
  const TARGET = 'vector-db-frozen';
  let run: Awaited<ReturnType<typeof restoreThawing>>;

  beforeAll(async () => {
    await archive('DEEP_ARCHIVE');
    run = await restoreThawing({ backupId: BACKUP_ID, targetNamespace: TARGET, source: 'vault', restoreName: 'frozen' }, 12 * 3600, { thawTimeoutSeconds: 3600 });
  }, FULL_RUN);

  it('fails with ThawTimeout naming how many packs are still frozen', () => {
    expect(run.result.status).toBe('FAILED');
    expect(run.result.error).toEqual({ name: 'ThawTimeout', message: expect.stringContaining(`${ARCHIVED} pack(s) of backup ${BACKUP_ID} were still frozen in an archive class at the thaw deadline 2030-01-07T03:00:00.000Z`) });
    expect(run.checks).toBe(3600 / WAIT_FOR_THAW);
  });

  it('records the failure in the Thaw step and creates nothing in the cluster', async () => {
    expect(run.record.status).toBe('Failed');
    expect(run.record.failure).toMatchObject({ step: 'Thaw', state: 'CheckThaw', error: 'ThawTimeout', leftBehind: expect.stringContaining('nothing') });
    expect(run.result.states).not.toContain('CreateNamespace');
    expect((await kube.core.listNamespace()).items.map((n) => n.metadata?.name)).not.toContain(TARGET);
  });
});

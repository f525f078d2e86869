/**
 * Helpers for the backup workflow tests on the local cluster: one seeded cluster per test file,
 * the example config with test hooks, and a runner call whose polls await the cluster and short deadlines.
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackupTimings } from '../../core/backup/context.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config, ExecAction } from '../../core/config/schema.js';
import { startLocalCluster, type LocalCluster } from '../../local/cluster.js';
import { localBackupServices, runLocalBackup, type LocalBackupResult } from '../../local/workflows/runner.js';

export const PLAN = 'milvus-production-backup';
export const NAMESPACE = 'vector-db';
export const MILVUS = 'production-milvus';

export interface SeededCluster {
  cluster: LocalCluster;
  stateDir: string;
  dispose(): Promise<void>;
}

/** A seeded local cluster in a temporary state directory. */
export async function startSeededCluster(): Promise<SeededCluster> {
  const stateDir = await mkdtemp(join(tmpdir(), 'mg-backup-'));
  const cluster = await startLocalCluster({ stateDir, port: 0, tickMs: 50 });
  return {
    cluster,
    stateDir,
    dispose: async () => {
      await cluster.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** An exec action with the schema's defaults. */
export const action = (command: string[], extra: Partial<ExecAction> = {}): ExecAction => ({ command, timeoutSeconds: 10, maxRetryCount: 0, ignoreFailure: false, ...extra });

/**
 * The example config whose plan runs `pre` and `post` on the datanode pods (the pods the plan's
 * own hook uses), replacing the example's hooks.
 */
export async function configWithHooks(hooks: { pre?: ExecAction; post?: ExecAction }): Promise<Config> {
  const config = await loadConfigFile('examples/production.yaml');
  return {
    ...config,
    hooks: [{ name: 'test-hook', ...(hooks.pre ? { pre: { container: 'datanode', ...hooks.pre } } : {}), ...(hooks.post ? { post: { container: 'datanode', ...hooks.post } } : {}) }],
    plans: config.plans.map((p) => ({ ...p, hooks: { mode: 'Sequential' as const, items: [{ hook: 'test-hook', podSelector: { matchLabels: { 'app.kubernetes.io/instance': MILVUS, 'app.kubernetes.io/component': 'datanode' } } }] } })),
  };
}

/** Runs the backup workflow on the cluster, each poll once the cluster has settled; `timings` shortens deadlines. */
export function backup(c: SeededCluster, config: Config, input: Record<string, unknown>, timings: Partial<BackupTimings> = {}, onState?: (s: string) => void): Promise<LocalBackupResult> {
  return runLocalBackup({
    stateDir: c.stateDir,
    config,
    input: { plan: PLAN, ...input },
    untilPoll: () => c.cluster.settle(),
    timings: { flushTimeoutSeconds: 30, snapshotTimeoutSeconds: 60, exportTimeoutSeconds: 120, ...timings },
    ...(onState ? { onState } : {}),
  });
}

/** The local catalog and vault of the cluster (what the runner wrote). */
export function servicesOf(c: SeededCluster, config: Config) {
  return localBackupServices(c.stateDir, config);
}

/** Every file under `root` whose bytes contain `needle`, relative to it (to prove a secret is nowhere). */
export async function filesContaining(root: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(root, { recursive: true })) {
    const path = join(root, entry);
    if ((await stat(path)).isFile() && (await readFile(path)).includes(needle)) found.push(entry);
  }
  return found;
}

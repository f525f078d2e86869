/**
 * `milvus-guard plan inspect`: what a plan would back up, read live from its cluster — the pods
 * its selector matches, the volumes that hold Milvus's state, and Milvus's collections with
 * their row counts. It writes nothing, so it is safe to run against production before the first
 * scheduled backup.
 */
import { type Command, Option } from 'commander';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan } from '../../core/config/resolve.js';
import { inspectPlan, type PlanInspection } from '../../core/inspect/plan.js';
import { kubeConfigForEks, kubeConfigFromFile, makeKubeClients } from '../../core/kube/connect.js';
import { formatTable } from '../format.js';
import { DEFAULT_CONFIG_FILE } from './config.js';

export interface InspectOptions {
  config: string;
  plan: string;
  kubeconfig?: string;
  output: 'text' | 'json';
}

export function registerPlanCommands(program: Command): void {
  const plan = program.command('plan').description('look at what a backup plan protects');
  plan
    .command('inspect')
    .description("show the pods, volumes and Milvus collections a plan would back up (read-only)")
    .requiredOption('--plan <name>', 'the plan to inspect')
    .option('-c, --config <file>', 'the config file', DEFAULT_CONFIG_FILE)
    .option('--kubeconfig <path>', "use this kubeconfig instead of the plan's EKS cluster (e.g. the local cluster's)")
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (options: InspectOptions) => {
      const inspection = await runInspection(options);
      process.stdout.write(options.output === 'json' ? `${JSON.stringify(inspection, null, 2)}\n` : renderInspection(inspection));
      process.exitCode = inspection.problems.length === 0 ? 0 : 1;
    });
}

/** Loads the plan and inspects it on its EKS cluster, or on the cluster of `kubeconfig`. */
export async function runInspection(options: Omit<InspectOptions, 'output'>): Promise<PlanInspection> {
  const resolved = resolvePlan(await loadConfigFile(options.config), options.plan);
  const kc = options.kubeconfig
    ? kubeConfigFromFile(options.kubeconfig)
    : await kubeConfigForEks({ clusterName: resolved.cluster.eksClusterName, region: resolved.cluster.region });
  return inspectPlan(makeKubeClients(kc), resolved);
}

/** The inspection as kubectl-style tables followed by the problems found. */
export function renderInspection(i: PlanInspection): string {
  const parts = [
    `Plan ${i.plan} in namespace ${i.namespace}\n`,
    formatTable(
      ['pod', 'component', 'status', 'ready'],
      i.pods.map((p) => [p.name, p.component ?? '', p.phase, p.ready ? 'yes' : 'no']),
    ),
    formatTable(
      ['volume', 'role', 'status', 'capacity', 'storageclass'],
      i.volumes.map((v) => [v.name, v.role, v.phase, v.capacity ?? '', v.storageClass ?? '']),
    ),
    ...(i.objectStorage ? [`Objects: external bucket s3://${i.objectStorage.bucket}/${i.objectStorage.rootPath} (copied into the vault at backup)\n`] : []),
    `Milvus: ${i.milvus.healthy ? 'healthy' : 'NOT healthy'}\n`,
    formatTable(
      ['database', 'collection', 'rows'],
      i.milvus.collections.map((c) => [c.database, c.name, c.persistedRows]),
    ),
    i.problems.length === 0 ? 'No problems found.\n' : `Problems:\n${i.problems.map((p) => `  - ${p}\n`).join('')}`,
  ];
  return parts.join('\n');
}

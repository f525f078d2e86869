/**
 * Where a DR region's hydration Jobs have credentials to read the DR vault: the DR stack gives
 * its restore role an EKS Pod Identity association (service account
 * `milvus-guard-datamover-dr`) in exactly these namespaces, and PrepareFailover refuses any
 * other before it starts, rather than let the restore fail partway when its first Job gets no
 * credentials. One rule, read by both (infra/stacks/dr-stack.ts and core/dr/failover.ts).
 */
import { resolveDrill } from '../config/resolve.js';
import { drillNamespaceOf, type Cluster, type Config } from '../config/schema.js';

/** One (cluster, namespace) a DR region may restore into. */
export interface DrRestoreTarget {
  readonly cluster: Cluster;
  readonly namespace: string;
}

/**
 * On every cluster of `region`: each plan's namespace (a failover brings a plan back under its
 * name) and its drill namespace, for the plans of vault `vaultName`; and the target of every
 * drill of those plans that runs in `region`.
 */
export function drRestoreTargets(config: Config, vaultName: string, region: string): DrRestoreTarget[] {
  const clusters = config.clusters.filter((c) => c.region === region);
  const plans = config.plans.filter((p) => p.vault === vaultName);
  const targets: DrRestoreTarget[] = clusters.flatMap((cluster) => plans.flatMap((p) => [p.namespace, drillNamespaceOf(p.namespace)].map((namespace) => ({ cluster, namespace }))));
  for (const d of config.drills.filter((x) => plans.some((p) => p.name === x.plan))) {
    const drill = resolveDrill(config, d.name);
    if (drill.targetCluster.region === region) targets.push({ cluster: drill.targetCluster, namespace: drill.targetNamespace });
  }
  const seen = new Set<string>();
  return targets.filter((t) => {
    const key = `${t.cluster.name}/${t.namespace}`;
    return !seen.has(key) && seen.add(key) !== undefined;
  });
}

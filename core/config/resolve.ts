/**
 * A plan's or a drill's references (cluster, vault, policies, hooks) resolved against the
 * config, so the workflows never look names up themselves.
 */
import { InvalidInputError, UserError } from '../errors.js';
import { drillNamespaceOf, type Cluster, type Config, type Drill, type Hook, type LabelSelector, type Plan, type RetentionBody, type ScheduleBody, type Vault } from './schema.js';

/** A plan, drill or other name that the config does not define. */
export class UnknownNameError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownNameError';
  }
}

/** A hook as a plan uses it: the hook's definition and where it runs. */
export interface ResolvedHook {
  readonly hook: Hook;
  readonly podSelector: LabelSelector;
  readonly containerRegex?: string;
}

/** A plan with every reference resolved. */
export interface ResolvedPlan {
  readonly plan: Plan;
  readonly cluster: Cluster;
  readonly vault: Vault;
  /** Absent for a plan that only runs on demand. */
  readonly schedule?: ScheduleBody;
  readonly retention: RetentionBody;
  /** The plan's exec hooks in order; `items` is empty when the plan has none. */
  readonly hooks: { readonly mode: 'Sequential' | 'Parallel'; readonly items: readonly ResolvedHook[] };
}

/** A drill with its plan resolved and its defaults applied. */
export interface ResolvedDrill {
  readonly drill: Drill;
  readonly plan: ResolvedPlan;
  readonly schedule: ScheduleBody;
  /** The drill's `targetCluster`, else the plan's cluster. */
  readonly targetCluster: Cluster;
  /** The drill's `targetNamespace`, else `drillNamespaceOf(<plan namespace>)`. */
  readonly targetNamespace: string;
}

/** Finds `name` in `list` or throws an `UnknownNameError` that lists the names defined. */
function find<T extends { name: string }>(list: readonly T[], name: string, what: string, where: string): T {
  const found = list.find((item) => item.name === name);
  if (found) return found;
  const known = list.map((item) => item.name);
  throw new UnknownNameError(
    `${what} "${name}" is not defined in the config${where}; ${known.length ? `defined: ${known.join(', ')}` : 'none is defined'}`,
  );
}

function scheduleOf(config: Config, schedule: string | ScheduleBody, where: string): ScheduleBody {
  if (typeof schedule !== 'string') return schedule;
  const { name: _name, ...body } = find(config.schedulePolicies, schedule, 'schedule policy', where);
  return body;
}

/** Whether `vault` replicates into `region` (one of its `replicaRegions`). */
export function replicatesInto(vault: Pick<Vault, 'replicaRegions'>, region: string): boolean {
  return (vault.replicaRegions as readonly string[]).includes(region);
}

/**
 * {@link resolvePlan} for a workflow's input: an unknown plan is the caller's to fix, as
 * `InvalidInput` naming the `plan` field of `what`.
 */
export function resolvePlanInput(config: Config, planName: string, what: string): ResolvedPlan {
  try {
    return resolvePlan(config, planName);
  } catch (err) {
    if (err instanceof UnknownNameError) throw new InvalidInputError(what, [`plan: ${err.message}`]);
    throw err;
  }
}

/**
 * Resolves the plan named `planName`: its cluster, vault, schedule and retention (named
 * policies or inline bodies alike) and its hooks. Throws `UnknownNameError` (a `UserError`)
 * naming the plan when it does not exist, or naming the reference when the config was not
 * validated by `parseConfig` and a reference dangles.
 */
export function resolvePlan(config: Config, planName: string): ResolvedPlan {
  const plan = find(config.plans, planName, 'plan', '');
  const where = ` (referenced by plan ${plan.name})`;
  const retention =
    typeof plan.retention === 'string'
      ? (({ name: _name, ...body }) => body)(find(config.retentionPolicies, plan.retention, 'retention policy', where))
      : plan.retention;
  return {
    plan,
    cluster: find(config.clusters, plan.cluster, 'cluster', where),
    vault: find(config.vaults, plan.vault, 'vault', where),
    ...(plan.schedule === undefined ? {} : { schedule: scheduleOf(config, plan.schedule, where) }),
    retention,
    hooks: {
      mode: plan.hooks?.mode ?? 'Sequential',
      items: (plan.hooks?.items ?? []).map((item) => ({
        hook: find(config.hooks, item.hook, 'hook', where),
        podSelector: item.podSelector,
        ...(item.containerRegex === undefined ? {} : { containerRegex: item.containerRegex }),
      })),
    },
  };
}

/**
 * Resolves the drill named `drillName`: its plan (see `resolvePlan`), its schedule, and the
 * cluster and namespace it restores into, with the defaults applied (the plan's cluster,
 * `drillNamespaceOf`). Throws `UnknownNameError` naming the drill when it does not exist.
 */
export function resolveDrill(config: Config, drillName: string): ResolvedDrill {
  const drill = find(config.drills, drillName, 'drill', '');
  const where = ` (referenced by drill ${drill.name})`;
  const plan = resolvePlan(config, find(config.plans, drill.plan, 'plan', where).name);
  return {
    drill,
    plan,
    schedule: scheduleOf(config, drill.schedule, where),
    targetCluster: drill.targetCluster === undefined ? plan.cluster : find(config.clusters, drill.targetCluster, 'cluster', where),
    targetNamespace: drill.targetNamespace ?? drillNamespaceOf(plan.plan.namespace),
  };
}

/**
 * The whole installation as CDK stacks, from a parsed config: per vault region a primary stack,
 * per DR region a DR stack. Kept apart from infra/app.ts (which reads the config file and the
 * environment) so tests build exactly what `cdk synth` builds.
 */
import { type App, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Config } from '../core/config/schema.js';
import { drStackName, primaryStackName } from '../core/naming.js';
import { DrStack } from './stacks/dr-stack.js';
import { PrimaryStack } from './stacks/primary-stack.js';

export interface InstallationOptions {
  /**
   * The account to deploy into.
   * @default - resolved at deploy time (`AWS::AccountId`), so synth needs no credentials
   */
  readonly account?: string;
  /**
   * Check the stacks with cdk-nag's AWS Solutions rules; a finding that is not acknowledged
   * fails synthesis.
   * @default true
   */
  readonly nag?: boolean;
}

export interface Installation {
  /** Primary stacks by region. */
  readonly primaryStacks: ReadonlyMap<string, PrimaryStack>;
  /** DR stacks by region. */
  readonly drStacks: ReadonlyMap<string, DrStack>;
}

/**
 * Adds the installation's stacks to `app`. The catalog's global table lives in the first
 * vault's region (its "home"), with a replica in every other vault region and every DR region.
 * A primary stack deploys after the DR stacks it replicates into (S3 refuses a replication rule
 * whose destination bucket does not exist yet) and after the catalog's home stack.
 */
export function buildInstallation(app: App, config: Config, options: InstallationOptions = {}): Installation {
  const env = (region: string) => ({ account: options.account, region });
  const drRegions = [...new Set(config.vaults.flatMap((v) => v.replicaRegions))];
  const vaultRegions = config.vaults.map((v) => v.region);
  const home = vaultRegions[0]!;
  const catalogReplicaRegions = [...new Set([...vaultRegions, ...drRegions])].filter((r) => r !== home);

  const drStacks = new Map<string, DrStack>();
  for (const region of drRegions) {
    // A DR region may also hold a primary vault; its DR stack is separate all the same.
    drStacks.set(region, new DrStack(app, drStackName(config.name, region), { env: env(region), config, description: `milvus-guard ${config.name}: DR vaults in ${region}` }));
  }

  const primaryStacks = new Map<string, PrimaryStack>();
  for (const vault of config.vaults) {
    const stack = new PrimaryStack(app, primaryStackName(config.name, vault.region), {
      env: env(vault.region),
      description: `milvus-guard ${config.name}: vault ${vault.name}, catalog, backup workflow in ${vault.region}`,
      config,
      vaultName: vault.name,
      catalogHome: vault.region === home,
      catalogReplicaRegions,
    });
    for (const region of vault.replicaRegions) stack.addStackDependency(drStacks.get(region)!, 'replication needs the DR vault');
    primaryStacks.set(vault.region, stack);
  }
  for (const [region, stack] of primaryStacks) {
    if (region !== home) stack.addStackDependency(primaryStacks.get(home)!, 'the catalog replica comes with the global table');
  }

  Tags.of(app).add('milvus-guard:installation', config.name);
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { primaryStacks, drStacks };
}

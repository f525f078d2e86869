/**
 * The whole installation as CDK stacks, from a parsed config: per vault region a keys stack and
 * a primary stack, per DR region a DR stack. Kept apart from infra/app.ts (which reads the config
 * file and the environment) so tests build exactly what `cdk synth` builds.
 */
import { type App, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Config } from '../core/config/schema.js';
import { drStackName, keysStackName, primaryStackName } from '../core/naming.js';
import { DrStack } from './stacks/dr-stack.js';
import { KeysStack } from './stacks/keys-stack.js';
import { PrimaryStack, catalogHomeRegion } from './stacks/primary-stack.js';

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
  /** Keys stacks (the multi-Region sealing key) by vault region. */
  readonly keysStacks: ReadonlyMap<string, KeysStack>;
  /** Primary stacks by region. */
  readonly primaryStacks: ReadonlyMap<string, PrimaryStack>;
  /** DR stacks by region. */
  readonly drStacks: ReadonlyMap<string, DrStack>;
}

/**
 * Adds the installation's stacks to `app`. The catalog's global table lives in the first
 * vault's region (its "home"), with a replica in every other vault region and every DR region.
 * The order of deployment:
 * 1. a vault region's keys stack: the multi-Region sealing key, which its DR stacks replicate;
 * 2. the DR stacks it replicates into (after the keys: a replica key needs its primary);
 * 3. the vault's primary stack (after its DR stacks: S3 refuses a replication rule whose
 *    destination bucket does not exist yet; after its keys stack; after the catalog's home stack).
 */
export function buildInstallation(app: App, config: Config, options: InstallationOptions = {}): Installation {
  const env = (region: string) => ({ account: options.account, region });
  const drRegions = [...new Set(config.vaults.flatMap((v) => v.replicaRegions))];
  const vaultRegions = config.vaults.map((v) => v.region);
  const home = catalogHomeRegion(config);
  const catalogReplicaRegions = [...new Set([...vaultRegions, ...drRegions])].filter((r) => r !== home);

  const keysStacks = new Map<string, KeysStack>();
  for (const vault of config.vaults) {
    keysStacks.set(
      vault.region,
      new KeysStack(app, keysStackName(config.name, vault.region), {
        env: env(vault.region),
        description: `milvus-guard ${config.name}: the multi-Region key that seals vault ${vault.name}'s captured Secrets, in ${vault.region}`,
        config,
        vaultName: vault.name,
      }),
    );
  }

  const drStacks = new Map<string, DrStack>();
  for (const region of drRegions) {
    const stack = new DrStack(app, drStackName(config.name, region), {
      env: env(region),
      config,
      description: `milvus-guard ${config.name}: DR vault, restore, drill and failover workflows in ${region}`,
    });
    stack.addStackDependency(keysStacks.get(stack.sourceVault.region)!, 'the sealing key replica needs its multi-Region primary');
    drStacks.set(region, stack);
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
    stack.addStackDependency(keysStacks.get(vault.region)!, 'the workflows seal Secrets with the sealing key');
    for (const region of vault.replicaRegions) stack.addStackDependency(drStacks.get(region)!, 'replication needs the DR vault');
    primaryStacks.set(vault.region, stack);
  }
  for (const [region, stack] of primaryStacks) {
    if (region !== home) stack.addStackDependency(primaryStacks.get(home)!, 'the catalog replica comes with the global table');
  }

  Tags.of(app).add('milvus-guard:installation', config.name);
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { keysStacks, primaryStacks, drStacks };
}

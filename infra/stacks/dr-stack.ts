/**
 * The stack of a DR region: one DR vault per primary vault that replicates here, each with the
 * same Object Lock, encryption, public-access and TLS rules as its source but its own KMS key,
 * so a compromised or deleted primary key cannot take the replica with it. The catalog's
 * replica in this region belongs to the global table (created by the home region's stack).
 */
import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { Config } from '../../core/config/schema.js';
import { Vault } from '../constructs/vault.js';
import { acknowledge } from '../nag.js';
import { replicaBucketName, replicaKeyAlias } from '../../core/naming.js';
import { vaultTransitions } from './primary-stack.js';

export interface DrStackProps extends StackProps {
  readonly config: Config;
}

export class DrStack extends Stack {
  /** The DR vaults, by the config name of the vault they replicate. */
  readonly vaults: ReadonlyMap<string, Vault>;

  constructor(scope: Construct, id: string, props: DrStackProps) {
    super(scope, id, props);
    const { config } = props;
    const vaults = new Map<string, Vault>();
    for (const source of config.vaults.filter((v) => (v.replicaRegions as readonly string[]).includes(this.region))) {
      const names = { installation: config.name, vault: source.name, account: this.account };
      const vault = new Vault(this, `Vault-${source.name}`, {
        bucketName: replicaBucketName({ ...names, region: this.region }),
        objectLockMode: source.objectLock.mode,
        objectLockDefaultRetention: Duration.days(source.objectLock.defaultRetentionDays),
        keyAlias: replicaKeyAlias(names),
        transitions: vaultTransitions(source),
      });
      acknowledge(vault.accessLogsBucket, 'AwsSolutions-S1', "This bucket receives the DR vault's server access logs; logging it into itself would loop.");
      vaults.set(source.name, vault);
    }
    this.vaults = vaults;
  }
}

/**
 * The keys of a vault region that other stacks need before they deploy: the multi-Region key
 * that seals captured Secrets (infra/constructs/sealing-key.ts).
 *
 * Why a stack of its own: a DR stack replicates the key (AWS::KMS::ReplicaKey needs its primary
 * to exist), and the primary stack deploys after its DR stacks (S3 refuses a replication rule
 * whose destination bucket does not exist yet). The key can be in neither without a cycle, so it
 * deploys first: keys, then the DR stacks, then the primary stack (infra/installation.ts).
 */
import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { Config } from '../../core/config/schema.js';
import { UserError } from '../../core/errors.js';
import { sealingKeyAlias, sealingKeyParameterName } from '../../core/naming.js';
import { SealingKey } from '../constructs/sealing-key.js';

export interface KeysStackProps extends StackProps {
  readonly config: Config;
  /** The config name of the vault whose region this stack deploys into. */
  readonly vaultName: string;
}

export class KeysStack extends Stack {
  readonly sealingKey: SealingKey;

  constructor(scope: Construct, id: string, props: KeysStackProps) {
    super(scope, id, props);
    const vault = props.config.vaults.find((v) => v.name === props.vaultName);
    if (!vault) throw new UserError(`vault "${props.vaultName}" is not defined in the config; defined: ${props.config.vaults.map((v) => v.name).join(', ')}`);
    const names = { installation: props.config.name, vault: vault.name };
    this.sealingKey = new SealingKey(this, 'SealingKey', {
      alias: sealingKeyAlias(names),
      parameterName: sealingKeyParameterName(names),
      replicaRegions: vault.replicaRegions,
    });
  }
}

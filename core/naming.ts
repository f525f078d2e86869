/**
 * Physical names the stacks agree on without cross-stack references. A vault's bucket and its
 * DR replica's bucket and key alias are named from the installation name, the vault name, the
 * account and the region, so the primary stack can point its replication rule at the DR
 * bucket and key in another region by name alone.
 *
 * Why not `crossRegionReferences`: it works by writing SSM parameters from a custom-resource
 * Lambda in each stack and blocks updates of any exported value while it is imported — more
 * moving parts, and a coupling that would make replacing a DR key a two-step deployment. Names
 * that are a pure function of the config need neither.
 */
import { UserError } from './errors.js';

/** Where a name is used: the installation, the vault and the account/region it lives in. */
export interface VaultNameParts {
  readonly installation: string;
  readonly vault: string;
  /** The account id; may be the `AWS::AccountId` token when the CDK app runs without one. */
  readonly account: string;
  readonly region: string;
}

const BUCKET_NAME_MAX = 63;
const ACCOUNT_ID_LENGTH = 12;

function bucketName(parts: VaultNameParts, role: string): string {
  const name = `${parts.installation}-${parts.vault}${role}-${parts.account}-${parts.region}`;
  // The account counts as the 12 digits of an account id: a CDK token for it renders longer.
  const length = name.length - parts.account.length + ACCOUNT_ID_LENGTH;
  if (length > BUCKET_NAME_MAX) {
    throw new UserError(
      `the S3 bucket name for vault ${parts.vault} in ${parts.region} would be ${length} characters (${parts.installation}-${parts.vault}${role}-<account>-${parts.region}); S3 allows ${BUCKET_NAME_MAX}: shorten the config's name or the vault's name`,
    );
  }
  return name;
}

/** The primary vault's bucket: `<installation>-<vault>-<account>-<region>`. */
export function vaultBucketName(parts: VaultNameParts): string {
  return bucketName(parts, '');
}

/** The DR replica's bucket of a vault: `<installation>-<vault>-dr-<account>-<dr region>`. */
export function replicaBucketName(parts: VaultNameParts): string {
  return bucketName(parts, '-dr');
}

/** The KMS alias of a vault's key (without the `alias/` prefix). */
export function vaultKeyAlias(parts: Pick<VaultNameParts, 'installation' | 'vault'>): string {
  return `${parts.installation}-${parts.vault}-vault`;
}

/** The KMS alias of a vault's DR replica key (without the `alias/` prefix). */
export function replicaKeyAlias(parts: Pick<VaultNameParts, 'installation' | 'vault'>): string {
  return `${parts.installation}-${parts.vault}-dr-vault`;
}

/** The catalog's DynamoDB table (one global table, the same name in every region). */
export function catalogTableName(installation: string): string {
  return `${installation}-catalog`;
}

/** The state machine of workflow `workflow` (`backup`, ...), as operators see it in the console. */
export function stateMachineName(installation: string, workflow: string): string {
  return `${installation}-${workflow}`;
}

/**
 * The state machines of a DR stack: `<installation>-dr-restore`, `<installation>-dr-drill` and
 * `<installation>-failover`. Their own names, so a region may hold a vault (with its
 * `<installation>-restore` and `-drill`) and be another vault's DR region at once — the region a
 * failover brings Milvus into can then protect it, and the two regions can replicate into each
 * other for the way back.
 */
export function drStateMachineName(installation: string, workflow: 'restore' | 'drill' | 'failover'): string {
  return workflow === 'failover' ? stateMachineName(installation, workflow) : stateMachineName(installation, `dr-${workflow}`);
}

/**
 * The service account of a DR stack's hydration Jobs: not the vault region's, so a namespace a
 * plan backs up in that region and a failover restores into can have both Pod Identity
 * associations (EKS allows one per service account in a namespace).
 */
export const DR_DATAMOVER_SERVICE_ACCOUNT = 'milvus-guard-datamover-dr';

/** The stack of a primary (vault) region and of a DR region. */
export function primaryStackName(installation: string, region: string): string {
  return `${installation}-${region}`;
}

export function drStackName(installation: string, region: string): string {
  return `${installation}-dr-${region}`;
}

/** The stack of a vault region's keys, deployed before that vault's DR stacks and its primary stack. */
export function keysStackName(installation: string, region: string): string {
  return `${installation}-keys-${region}`;
}

/** The KMS alias (without `alias/`) of the multi-Region key that seals a vault's captured Secrets, and of its replicas. */
export function sealingKeyAlias(parts: Pick<VaultNameParts, 'installation' | 'vault'>): string {
  return `${parts.installation}-${parts.vault}-sealing`;
}

/**
 * The SSM parameter holding the ARN of a vault's multi-Region sealing key, in the key's region
 * and in each of the vault's DR regions. A KMS key id is chosen by KMS (`mrk-` and 32 random hex
 * digits), so unlike a bucket the key cannot be named from the config: the keys stack publishes
 * its ARN under this name, and each region's stack reads it from its own region.
 */
export function sealingKeyParameterName(parts: Pick<VaultNameParts, 'installation' | 'vault'>): string {
  return `/${parts.installation}/${parts.vault}/sealing-key-arn`;
}


/**
 * The stack outputs naming each workflow's RecoverExecution function (infra/constructs/recover-ended.ts):
 * `milvus-guard backup|restore cancel` invokes it for an execution that ended with its record still InProgress.
 */
export const RECOVERY_OUTPUTS = { backup: 'RecoverEndedBackupsFunction', restore: 'RecoverEndedRestoresFunction' } as const;

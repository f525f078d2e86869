/**
 * The key that seals captured Kubernetes Secrets (envelope encryption): a KMS multi-Region key,
 * used for nothing else. Its primary lives in the vault's region; each DR region holds a replica
 * (the same `mrk-` key id and key material), so a DR region opens what the primary region sealed
 * without calling it — also when that region is gone.
 *
 * KMS chooses a key's id, so the DR stacks cannot name the primary by config alone (as they do
 * the buckets, core/naming.ts): `SealingKey` publishes its ARN as an SSM parameter
 * (`sealingKeyParameterName`) in its own region and in every DR region, and `SealingKeyReplica`
 * reads it from its own region at deploy time. Nothing in a DR stack's template then refers to
 * the primary region, and deploying a DR stack reads only its own region's Parameter Store.
 */
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { acknowledge } from '../nag.js';
import { SEALING_CONTEXT_KEYS } from '../../core/backup/sealer.js';

/**
 * What the account's administrators may do with the key (through their IAM policies): manage it,
 * its aliases, tags and replicas, never turn rotation off. The deployment (CloudFormation with
 * the deployer's credentials) needs exactly these; KMS also requires that whoever sets the
 * policy can set it again.
 */
const ADMINISTRATION = [
  'kms:DescribeKey',
  'kms:GetKeyPolicy',
  'kms:PutKeyPolicy',
  'kms:GetKeyRotationStatus',
  'kms:EnableKeyRotation',
  'kms:ListResourceTags',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:UpdateKeyDescription',
  'kms:CreateAlias',
  'kms:UpdateAlias',
  'kms:DeleteAlias',
  'kms:EnableKey',
  'kms:DisableKey',
  'kms:ReplicateKey',
  'kms:UpdatePrimaryRegion',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
];

/**
 * The key policy of the sealing key and of each replica. Least privilege: the account may
 * administer the key, and use it only to seal (GenerateDataKey, the primary key only: nothing
 * is sealed in a DR region) and unseal (Decrypt) — no Encrypt, ReEncrypt, grants or data keys
 * without plaintext — and only principals whose IAM policies allow that (the workflow roles)
 * can, and only with the encryption context every sealed object carries (its backup, namespace
 * and name, and its kind unless it is a Secret). The roles are not named here: a key policy may name only principals that exist,
 * and the keys deploy before the stacks that make the roles.
 */
export function sealingKeyPolicy(use: 'seal-and-unseal' | 'unseal' = 'seal-and-unseal'): iam.PolicyDocument {
  const account = new iam.AccountRootPrincipal();
  return new iam.PolicyDocument({
    statements: [
      new iam.PolicyStatement({ sid: 'Administration', principals: [account], actions: ADMINISTRATION, resources: ['*'] }),
      new iam.PolicyStatement({
        sid: use === 'unseal' ? 'UnsealThroughIamPolicies' : 'SealAndUnsealThroughIamPolicies',
        principals: [account],
        actions: use === 'unseal' ? ['kms:Decrypt'] : ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: ['*'],
        // `kind` is in the context of a sealed object other than a Secret (a ConfigMap that can
        // carry credentials, see core/backup/sealing.ts); a Secret's context has the other three.
        conditions: { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': [...SEALING_CONTEXT_KEYS] }, Null: { 'kms:EncryptionContextKeys': 'false' } },
      }),
    ],
  });
}

export interface SealingKeyProps {
  /** The key's alias (without `alias/`); each replica gets the same alias in its region. */
  readonly alias: string;
  /** The SSM parameter the key's ARN is published under (in this region and `replicaRegions`). */
  readonly parameterName: string;
  /**
   * Regions whose stacks replicate the key (`SealingKeyReplica`): the ARN is published there too.
   * @default - none
   */
  readonly replicaRegions?: readonly string[];
}

/** The multi-Region primary key, in the vault's region. */
export class SealingKey extends Construct {
  readonly key: kms.CfnKey;
  /** The key's ARN (`arn:aws:kms:<region>:<account>:key/mrk-…`). */
  readonly keyArn: string;

  constructor(scope: Construct, id: string, props: SealingKeyProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.key = new kms.CfnKey(this, 'Key', {
      description: `Seals the Kubernetes Secrets milvus-guard captures (multi-Region: its replicas unseal them in the DR regions); alias/${props.alias}`,
      multiRegion: true,
      enableKeyRotation: true,
      keySpec: 'SYMMETRIC_DEFAULT',
      keyUsage: 'ENCRYPT_DECRYPT',
      keyPolicy: sealingKeyPolicy(),
    });
    // Deleting it would make every sealed Secret in every vault unreadable.
    this.key.applyRemovalPolicy(RemovalPolicy.RETAIN);
    this.keyArn = this.key.attrArn;
    new kms.CfnAlias(this, 'Alias', { aliasName: `alias/${props.alias}`, targetKeyId: this.key.ref });

    new ssm.StringParameter(this, 'ArnParameter', {
      parameterName: props.parameterName,
      stringValue: this.keyArn,
      description: `The ARN of the milvus-guard sealing key alias/${props.alias}`,
    });
    // CloudFormation writes only in its own region: an SDK call writes the parameter into each
    // DR region (at this stack's deployment, never at a DR stack's).
    for (const region of props.replicaRegions ?? []) {
      const parameterArn = stack.formatArn({ service: 'ssm', region, resource: 'parameter', resourceName: props.parameterName.replace(/^\//, '') });
      const put: cr.AwsSdkCall = {
        service: 'SSM',
        action: 'putParameter',
        region,
        parameters: { Name: props.parameterName, Value: this.keyArn, Type: 'String', Overwrite: true, Description: `The ARN of the milvus-guard sealing key alias/${props.alias} (its primary, in ${stack.region})` },
        physicalResourceId: cr.PhysicalResourceId.of(`${region}:${props.parameterName}`),
      };
      new cr.AwsCustomResource(this, `Publish-${region}`, {
        onCreate: put,
        onUpdate: put,
        onDelete: { service: 'SSM', action: 'deleteParameter', region, parameters: { Name: props.parameterName } },
        policy: cr.AwsCustomResourcePolicy.fromStatements([new iam.PolicyStatement({ actions: ['ssm:PutParameter', 'ssm:DeleteParameter'], resources: [parameterArn] })]),
        // The SDK of the Lambda runtime makes these two calls; no download at deploy time.
        installLatestAwsSdk: false,
      });
    }
    // The Lambda behind those calls is CDK's own, one per stack (a singleton at the stack's root).
    const provider = stack.node.tryFindChild(`AWS${cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`);
    if (provider) {
      acknowledge(
        provider,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        "CDK's AwsCustomResource Lambda logs with AWSLambdaBasicExecutionRole; it runs only while the stack deploys, to write the sealing key's ARN into the DR regions' Parameter Store.",
      );
    }
  }
}

/**
 * The ARN of the sealing key (or its replica: the same `mrk-` id) as this stack's region knows it:
 * the SSM parameter `SealingKey` publishes, read when the stack deploys.
 */
export function sealingKeyArnFromParameter(scope: Construct, parameterName: string): string {
  return ssm.StringParameter.valueForStringParameter(scope, parameterName);
}

export interface SealingKeyReplicaProps {
  /** The replica's alias (without `alias/`): the primary's. */
  readonly alias: string;
  /** The SSM parameter in this region holding the primary key's ARN (`SealingKey` writes it). */
  readonly parameterName: string;
}

/**
 * A replica of the sealing key, in a DR region. Creating it asks KMS in the primary's region to
 * replicate the key (once, at the DR stack's first deployment); later deployments of the DR
 * stack, and everything its functions do, stay in the DR region. With the primary region gone
 * for good, `aws kms update-primary-region` makes the replica the primary (the key policy allows
 * the account that).
 */
export class SealingKeyReplica extends Construct {
  readonly replica: kms.CfnReplicaKey;
  /** The replica's ARN: the primary's `mrk-` id in this region. */
  readonly keyArn: string;

  constructor(scope: Construct, id: string, props: SealingKeyReplicaProps) {
    super(scope, id);
    this.replica = new kms.CfnReplicaKey(this, 'Key', {
      // Read from this region's Parameter Store when the stack deploys (a CloudFormation
      // parameter of type AWS::SSM::Parameter::Value<String>).
      primaryKeyArn: sealingKeyArnFromParameter(this, props.parameterName),
      description: `Unseals in this region the Kubernetes Secrets milvus-guard captured (replica of a multi-Region key); alias/${props.alias}`,
      keyPolicy: sealingKeyPolicy('unseal'),
    });
    this.replica.applyRemovalPolicy(RemovalPolicy.RETAIN);
    this.keyArn = this.replica.attrArn;
    new kms.CfnAlias(this, 'Alias', { aliasName: `alias/${props.alias}`, targetKeyId: this.replica.attrKeyId });
  }

  /** Lets `grantee` unseal (Decrypt) with the replica; nothing is sealed in a DR region. */
  grantUnseal(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['kms:Decrypt'], resourceArns: [this.keyArn] });
  }
}

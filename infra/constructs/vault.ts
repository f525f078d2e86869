/**
 * The vault: the S3 bucket backups are written to, and the rules that keep that data safe
 * (README, "The vault"). Object Lock with a default retention, SSE-KMS with a customer key,
 * versioning, TLS only, no public access, server access logs into a separate bucket, lifecycle
 * rules that only tier and tidy (and expire progress reports, which nothing references), replication to DR vaults in other regions (with an alarm when S3
 * fails to replicate objects) and alarms when the vault nears (80%) or outgrows its planned capacity.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { acknowledgeWildcardResources } from '../nag.js';
import { BACKUP_PROGRESS_PREFIX, EXPORT_CREATE_ONLY_PATTERNS, PACKS_PREFIX, PROGRESS_PREFIX } from '../../core/vault/layout.js';
import { ARCHIVABLE_TAG } from '../../core/vault/store.js';

/** Object Lock modes: GOVERNANCE can be lifted by a privileged principal, COMPLIANCE by no one. */
export type ObjectLockMode = 'GOVERNANCE' | 'COMPLIANCE';

/** Move objects to `storageClass` once they are `transitionAfter` old. */
export interface VaultTransition {
  readonly storageClass: s3.StorageClass;
  readonly transitionAfter: Duration;
}

/** A DR vault in another region that this vault replicates into, known by name only. */
export interface VaultReplica {
  /** The DR region. */
  readonly region: string;
  /** The name of the DR vault's bucket in that region. */
  readonly bucketName: string;
  /** The alias (without `alias/`) of the DR vault's KMS key in that region. */
  readonly keyAlias: string;
}

export interface VaultProps {
  /** The bucket's name (see core/naming.ts: deterministic, so replication can name it). */
  readonly bucketName: string;
  /** The Object Lock mode of the default retention. */
  readonly objectLockMode: ObjectLockMode;
  /** How long every object is locked at least; backups set longer dates themselves. */
  readonly objectLockDefaultRetention: Duration;
  /**
   * The customer managed key the vault encrypts with.
   * @default - a new key with automatic rotation, retained when the stack is deleted
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * The alias of the key the vault creates (without `alias/`). Ignored with `encryptionKey`.
   * @default - no alias
   */
  readonly keyAlias?: string;
  /**
   * Storage-class transitions by age, in age order. Applied to current versions, and to
   * noncurrent versions that live long enough to reach them.
   * @default - no transitions; everything stays in S3 Standard
   */
  readonly transitions?: readonly VaultTransition[];
  /**
   * How long a deleted or overwritten object stays recoverable (as a noncurrent version) after
   * its default lock would have let it go. Noncurrent versions expire after the default
   * retention plus this.
   * @default Duration.days(7)
   */
  readonly noncurrentVersionGracePeriod?: Duration;
  /**
   * How long a progress report (`progress/`, rewritten every few seconds while a data mover
   * runs, read only while it runs) stays after its last write before the lifecycle expires it.
   * Longer than the longest export or hydration, so a running report is never expired: should
   * one be, the run's next write puts it back.
   * @default Duration.days(7)
   */
  readonly progressExpiration?: Duration;
  /**
   * How long server access logs are kept.
   * @default Duration.days(365)
   */
  readonly accessLogsRetention?: Duration;
  /**
   * DR vaults to replicate into (S3 Replication Time Control, 15 minutes).
   * @default - no replication
   */
  readonly replicas?: readonly VaultReplica[];
  /**
   * Alarm when the vault holds more than this many bytes (all storage classes together).
   * @default - no capacity alarm
   */
  readonly capacityAlarmThresholdBytes?: number;
  /**
   * Where the vault's alarms notify.
   * @default - alarms have no action
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Names the capacity alarms `<prefix>-vault-<vault>-capacity` and `...-capacity-warning`
   * (the installation's name), so an operator finds them by installation and vault.
   * @default - CloudFormation generates the names
   */
  readonly alarmNamePrefix?: string;
  /**
   * The vault's name in the config, for the capacity alarms' names and descriptions.
   * @default - the bucket's name
   */
  readonly vaultName?: string;
}

/** The share of `capacityAlarmThresholdBytes` at which the capacity warning fires. */
export const CAPACITY_WARNING_RATIO = 0.8;

/**
 * Which `BucketSizeBytes` storage types hold each class's data. Overhead types are left out so
 * the alarm's expression stays within CloudWatch's 10-metric limit; they are a rounding error
 * next to a vault's chunks.
 */
const STORAGE_TYPES: ReadonlyMap<string, readonly string[]> = new Map([
  ['STANDARD', ['StandardStorage']],
  [s3.StorageClass.INFREQUENT_ACCESS.value, ['StandardIAStorage']],
  [s3.StorageClass.ONE_ZONE_INFREQUENT_ACCESS.value, ['OneZoneIAStorage']],
  [s3.StorageClass.INTELLIGENT_TIERING.value, ['IntelligentTieringFAStorage', 'IntelligentTieringIAStorage', 'IntelligentTieringAIAStorage']],
  [s3.StorageClass.GLACIER_INSTANT_RETRIEVAL.value, ['GlacierInstantRetrievalStorage']],
  [s3.StorageClass.GLACIER.value, ['GlacierStorage']],
  [s3.StorageClass.DEEP_ARCHIVE.value, ['DeepArchiveStorage']],
]);

export class Vault extends Construct {
  readonly bucket: s3.Bucket;
  readonly encryptionKey: kms.IKey;
  /** Receives the vault's server access logs. */
  readonly accessLogsBucket: s3.Bucket;
  /** The role S3 replicates with; absent without replicas. */
  readonly replicationRole?: iam.Role;
  /** Present when `capacityAlarmThresholdBytes` is set. */
  readonly capacityAlarm?: cloudwatch.Alarm;
  /** At {@link CAPACITY_WARNING_RATIO} of the capacity; present when `capacityAlarmThresholdBytes` is set. */
  readonly capacityWarningAlarm?: cloudwatch.Alarm;
  /** An alarm per DR region, when S3 fails to replicate objects there; by DR region. */
  readonly replicationFailureAlarms: ReadonlyMap<string, cloudwatch.Alarm>;

  constructor(scope: Construct, id: string, props: VaultProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const lockDays = props.objectLockDefaultRetention.toDays();
    const grace = props.noncurrentVersionGracePeriod ?? Duration.days(7);
    const transitions = props.transitions ?? [];
    const replicas = props.replicas ?? [];

    this.encryptionKey =
      props.encryptionKey ??
      new kms.Key(this, 'Key', {
        description: `Encrypts the milvus-guard vault ${props.bucketName}`,
        enableKeyRotation: true,
        ...(props.keyAlias === undefined ? {} : { alias: props.keyAlias }),
        removalPolicy: RemovalPolicy.RETAIN,
      });

    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogs', {
      // S3 delivers server access logs only into buckets encrypted with SSE-S3, not SSE-KMS.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      // Logs are evidence, not backups: they may expire.
      lifecycleRules: [{ id: 'expire-access-logs', expiration: props.accessLogsRetention ?? Duration.days(365), abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    if (replicas.length > 0) {
      this.replicationRole = new iam.Role(this, 'ReplicationRole', {
        assumedBy: new iam.ServicePrincipal('s3.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
        description: `S3 replication of ${props.bucketName} into its DR vaults`,
      });
    }

    this.bucket = new s3.Bucket(this, 'Bucket', {
      bucketName: props.bucketName,
      versioned: true,
      objectLockEnabled: true,
      objectLockDefaultRetention:
        props.objectLockMode === 'COMPLIANCE'
          ? s3.ObjectLockRetention.compliance(props.objectLockDefaultRetention)
          : s3.ObjectLockRetention.governance(props.objectLockDefaultRetention),
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.encryptionKey,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: `${props.bucketName}/`,
      lifecycleRules: lifecycleRules(transitions, Duration.days(lockDays + grace.toDays()), props.progressExpiration ?? Duration.days(7)),
      ...(this.replicationRole === undefined
        ? {}
        : {
            replicationRole: this.replicationRole,
            replicationRules: replicas.map((replica, i) => ({
              id: replicationRuleId(replica.region),
              priority: replicas.length - i,
              destination: s3.Bucket.fromBucketName(this, `Replica-${replica.region}`, replica.bucketName),
              // Each DR vault has its own key; S3 accepts the alias ARN as ReplicaKmsKeyID.
              kmsKey: kms.Key.fromKeyArn(this, `ReplicaKey-${replica.region}`, aliasArn(stack, replica.region, replica.keyAlias)),
              sseKmsEncryptedObjects: true,
              replicationTimeControl: s3.ReplicationTimeValue.FIFTEEN_MINUTES,
              metrics: s3.ReplicationTimeValue.FIFTEEN_MINUTES,
              // A delete in the primary (by the retention workflow) must not reach the replica:
              // the DR copy is what survives a compromised primary.
              deleteMarkerReplication: false,
            })),
          }),
      removalPolicy: RemovalPolicy.RETAIN,
    });

    if (this.replicationRole) this.grantReplication(this.replicationRole, replicas);

    if (props.capacityAlarmThresholdBytes !== undefined) {
      const capacity = { thresholdBytes: props.capacityAlarmThresholdBytes, transitions, vaultName: props.vaultName ?? props.bucketName, ...(props.alarmNamePrefix ? { namePrefix: props.alarmNamePrefix } : {}) };
      this.capacityAlarm = this.addCapacityAlarm(capacity, 'CapacityAlarm', 1);
      this.capacityWarningAlarm = this.addCapacityAlarm(capacity, 'CapacityWarningAlarm', CAPACITY_WARNING_RATIO);
      if (props.alarmTopic) {
        const action = new cloudwatchActions.SnsAction(props.alarmTopic);
        this.capacityAlarm.addAlarmAction(action);
        this.capacityWarningAlarm.addAlarmAction(action);
      }
    }
    this.replicationFailureAlarms = new Map(replicas.map((replica) => [replica.region, this.addReplicationFailureAlarm(replica, props.alarmTopic)]));
  }

  /**
   * S3 gives up on an object it cannot replicate (a key policy, a bucket policy or Object Lock
   * settings that refuse it) and never retries it: the object is missing from the DR vault until
   * it is written again. The rule's replication metrics (enabled with Replication Time Control)
   * count those failures, in this region.
   */
  private addReplicationFailureAlarm(replica: VaultReplica, topic: sns.ITopic | undefined): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, `ReplicationFailureAlarm-${replica.region}`, {
      alarmDescription:
        `S3 failed to replicate objects of ${this.bucket.bucketName} into the DR vault ${replica.bucketName} in ${replica.region}, and will not retry them: ` +
        `the DR region cannot restore backups that need them. Find the objects (S3 Batch Replication with a failed-replication manifest, or the replication status in S3 Inventory), ` +
        `fix the cause (the DR key's policy, the replication role) and replicate them again with S3 Batch Replication.`,
      metric: new cloudwatch.Metric({
        namespace: 'AWS/S3',
        metricName: 'OperationsFailedReplication',
        dimensionsMap: { SourceBucket: this.bucket.bucketName, DestinationBucket: replica.bucketName, RuleId: replicationRuleId(replica.region) },
        statistic: cloudwatch.Stats.SUM,
        period: Duration.minutes(5),
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // S3 reports the metric only when there is replication traffic: no data is no failure.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (topic) alarm.addAlarmAction(new cloudwatchActions.SnsAction(topic));
    return alarm;
  }

  /**
   * Lets `grantee` write and read chunks, indexes and manifests, and set and read their Object
   * Lock retention (a reused chunk's lock is extended to cover the newest backup using it).
   * Includes the KMS permissions SSE-KMS needs. No delete: only the retention workflow deletes.
   */
  grantReadWriteChunks(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject', 's3:PutObject', 's3:GetObjectRetention', 's3:PutObjectRetention', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
      resourceArns: [this.bucket.arnForObjects('*')],
    })
      .combine(iam.Grant.addToPrincipal({ grantee, actions: ['s3:ListBucket', 's3:ListBucketMultipartUploads'], resourceArns: [this.bucket.bucketArn] }))
      .combine(this.encryptionKey.grant(grantee, 'kms:Decrypt', 'kms:GenerateDataKey'));
  }

  /**
   * The objects an export data mover writes (see `grantWriteExports`). A file index's key ends
   * in index.jsonl.gz (core/vault/layout.ts volumeIndexKey): an ARN's wildcard also spans
   * slashes, so a pattern ending at the volume's directory would match a manifest of a namespace
   * named "volumes", whose key ends in .yaml or .sealed.json.
   */
  exportObjectArns(): string[] {
    return [...this.exportCreateOnlyArns(), ...this.objectArns([BACKUP_PROGRESS_PREFIX])];
  }

  /** The objects an export creates once and never writes again (core/vault/layout.ts EXPORT_CREATE_ONLY_PATTERNS). */
  private exportCreateOnlyArns(): string[] {
    return EXPORT_CREATE_ONLY_PATTERNS.map((p) => this.bucket.arnForObjects(p));
  }

  /**
   * Lets `writer` (the export data mover's role) only create packs, summaries and file indexes,
   * never write over one. On a versioned bucket every write adds a version, and Object Lock
   * protects each version, not the key: a pod with that role could otherwise add a version over
   * an earlier backup's pack, and retention, which extends the current version's lock, would
   * then keep the forged one while the genuine one lapses, noncurrent, to the lifecycle. S3
   * conditional writes refuse a PutObject or CompleteMultipartUpload with `If-None-Match: *`
   * when the key holds an object; this denies such a write without the header
   * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html).
   * `s3:ObjectCreationOperation` is true for the requests that create the object and false for
   * CreateMultipartUpload and UploadPart, which take no conditional header. In the bucket policy,
   * where the role's own policies cannot lift it; its progress reports, rewritten in place, stay
   * out of it.
   */
  private denyExportOverwrites(writer: iam.IRole): void {
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'ExportsOnlyCreateObjects',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: this.exportCreateOnlyArns(),
        conditions: {
          ArnEquals: { 'aws:PrincipalArn': [writer.roleArn] },
          Null: { 's3:if-none-match': 'true' },
          Bool: { 's3:ObjectCreationOperation': 'true' },
        },
      }),
    );
  }

  /**
   * What an export data mover writes, and nothing else: packs, volume file indexes
   * (`backups/<id>/volumes/...`), volume summaries and its progress reports, with their Object
   * Lock dates (a reused pack's lock is extended). It reads the whole vault (a parent's index,
   * its summaries). Not `backup.json`, the manifests or the inventory: a pod in a plan's namespace
   * may use this role, and on a versioned bucket a write adds a version over a locked one, so the
   * documents a restore creates cluster objects from stay out of its reach (each summary it could
   * replace is committed to by `backup.json`, which the catalog record anchors). No delete. And
   * packs, indexes and summaries it may only create (see `denyExportOverwrites`): the grant
   * never comes without that limit.
   */
  grantWriteExports(grantee: iam.IRole): iam.Grant {
    this.denyExportOverwrites(grantee);
    return iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject', 's3:GetObjectRetention'], resourceArns: [this.bucket.arnForObjects('*')] })
      .combine(iam.Grant.addToPrincipal({ grantee, actions: ['s3:PutObject', 's3:PutObjectRetention', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'], resourceArns: this.exportObjectArns() }))
      .combine(iam.Grant.addToPrincipal({ grantee, actions: ['s3:ListBucket', 's3:ListBucketMultipartUploads'], resourceArns: [this.bucket.bucketArn] }))
      .combine(this.encryptionKey.grant(grantee, 'kms:Decrypt', 'kms:GenerateDataKey'));
  }

  /**
   * Lets `grantee` list the vault's keys, and with `versionsUnder` the versions and delete
   * markers of the keys under those prefixes only.
   *
   * Keys are listed without a prefix condition: S3 answers a GET or HEAD of a missing key with
   * 404 only to a caller that may list the bucket, and otherwise with 403, which the vault
   * cannot tell from a real refusal (`head` of an absent volume summary must say "absent").
   * S3 checks that permission without the request's prefix, so `s3:prefix` would take the 404
   * away. A listing shows keys and sizes, never data.
   */
  grantList(grantee: iam.IGrantable, options: { readonly versionsUnder?: readonly string[] } = {}): iam.Grant {
    const keys = iam.Grant.addToPrincipal({ grantee, actions: ['s3:ListBucket'], resourceArns: [this.bucket.bucketArn] });
    if (!options.versionsUnder?.length) return keys;
    return keys.combine(
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['s3:ListBucketVersions'],
        resourceArns: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': options.versionsUnder.map((p) => `${p}*`) } },
      }),
    );
  }

  /** Lets `grantee` read (GET and HEAD) the objects under `prefixes`, with KMS decrypt. */
  grantReadObjects(grantee: iam.IGrantable, prefixes: readonly string[]): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject'], resourceArns: this.objectArns(prefixes) }).combine(this.encryptionKey.grant(grantee, 'kms:Decrypt'));
  }

  /**
   * Lets `grantee` write single-request objects under `prefixes` (a report), with the KMS data
   * key SSE-KMS needs. No multipart upload, so no `kms:Decrypt`.
   */
  grantPutObjects(grantee: iam.IGrantable, prefixes: readonly string[]): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['s3:PutObject'], resourceArns: this.objectArns(prefixes) }).combine(this.encryptionKey.grant(grantee, 'kms:GenerateDataKey'));
  }

  /**
   * Lets `grantee` write progress reports under `prefixes` (within {@link PROGRESS_PREFIX}): a
   * PUT that carries its own short retain-until date, which S3 allows only with
   * `s3:PutObjectRetention` besides `s3:PutObject` (core/datamover/progress.ts), with the KMS
   * data key SSE-KMS needs. Nothing else: no read, no delete, no other key.
   */
  grantWriteProgress(grantee: iam.IGrantable, prefixes: readonly string[]): iam.Grant {
    const outside = prefixes.filter((p) => !p.startsWith(PROGRESS_PREFIX));
    if (outside.length) throw new Error(`grantWriteProgress: ${outside.join(', ')} is not under ${PROGRESS_PREFIX}; progress reports live there only (core/vault/layout.ts)`);
    return iam.Grant.addToPrincipal({ grantee, actions: ['s3:PutObject', 's3:PutObjectRetention'], resourceArns: this.objectArns(prefixes) }).combine(
      this.encryptionKey.grant(grantee, 'kms:GenerateDataKey'),
    );
  }

  /**
   * Lets `grantee` read and set the Object Lock retain-until date of objects under `prefixes`.
   * Without `s3:BypassGovernanceRetention` (denied to the product's roles, see
   * `denyGovernanceBypass`) S3 lets a date only move later: extending, never shortening.
   */
  grantExtendRetention(grantee: iam.IGrantable, prefixes: readonly string[]): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObjectRetention', 's3:PutObjectRetention'], resourceArns: this.objectArns(prefixes) });
  }

  /**
   * Lets `grantee` really delete objects under `prefixes`: list their versions and delete
   * markers, delete each by version id (a DELETE without one only adds a marker on this
   * versioned bucket), and read the retention and legal hold that decide whether S3 allows it.
   * Object Lock still refuses a locked version: nothing here can bypass it.
   */
  grantDeleteVersions(grantee: iam.IGrantable, prefixes: readonly string[]): iam.Grant {
    return this.grantList(grantee, { versionsUnder: prefixes }).combine(
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:GetObjectRetention', 's3:GetObjectLegalHold'],
        resourceArns: this.objectArns(prefixes),
      }),
    );
  }

  /**
   * Lets `grantee` tag objects under `prefixes` archivable (`s3:PutObjectTagging`): the
   * retention workflow's mark that only old backups use a pack (tiering by reference).
   */
  grantMarkArchivable(grantee: iam.IGrantable, prefixes: readonly string[]): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['s3:PutObjectTagging'], resourceArns: this.objectArns(prefixes) });
  }

  /**
   * Lets `grantee` thaw archived objects under `prefixes` (`s3:RestoreObject`) and see the thaw
   * (HEAD shows it with `s3:GetObject`): a restore that needs a pack the lifecycle archived.
   */
  grantThaw(grantee: iam.IGrantable, prefixes: readonly string[]): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['s3:RestoreObject'], resourceArns: this.objectArns(prefixes) });
  }

  /**
   * Denies `s3:BypassGovernanceRetention` on the vault to `principals` in the bucket policy, so
   * no identity policy attached to them later (an admin policy, a wildcard) can shorten a lock
   * or delete a locked version.
   *
   * Why the product's roles, not every principal: GOVERNANCE mode exists so that a privileged
   * person can, deliberately and visibly in CloudTrail, lift a lock (a legal erasure order, a
   * lock set by mistake). A deny for everyone would take that break-glass path away and turn
   * GOVERNANCE into a COMPLIANCE that cannot be undone either way; whoever wants that should
   * choose COMPLIANCE. The product itself never needs the bypass, so its roles are denied it
   * in the one place their own policies cannot override. The condition names them by ARN
   * (`aws:PrincipalArn` is the role's ARN for its sessions), so the policy does not depend on
   * the roles existing when S3 validates it.
   */
  denyGovernanceBypass(principals: readonly iam.IRole[]): void {
    if (principals.length === 0) return;
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyGovernanceBypassToMilvusGuard',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:BypassGovernanceRetention'],
        resources: [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
        conditions: { ArnEquals: { 'aws:PrincipalArn': principals.map((p) => p.roleArn) } },
      }),
    );
  }

  private objectArns(prefixes: readonly string[]): string[] {
    return prefixes.map((p) => this.bucket.arnForObjects(`${p}*`));
  }

  /** Lets `grantee` list and read the vault (restores, drills, verification), with KMS decrypt. */
  grantRead(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject', 's3:GetObjectRetention'], resourceArns: [this.bucket.arnForObjects('*')] })
      .combine(iam.Grant.addToPrincipal({ grantee, actions: ['s3:ListBucket'], resourceArns: [this.bucket.bucketArn] }))
      .combine(this.encryptionKey.grant(grantee, 'kms:Decrypt'));
  }

  /**
   * The replication role's permissions, written out rather than taken from
   * `grantReplicationPermission`: Object Lock replication also needs the source objects'
   * retention and legal hold, delete markers are not replicated (no `s3:ReplicateDelete`), and
   * the DR keys are granted by alias because this stack only knows them by name.
   */
  private grantReplication(role: iam.Role, replicas: readonly VaultReplica[]): void {
    const stack = Stack.of(this);
    const { bucketArn } = this.bucket;
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'], resources: [bucketArn] }));
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObjectVersionForReplication', 's3:GetObjectVersionAcl', 's3:GetObjectVersionTagging', 's3:GetObjectRetention', 's3:GetObjectLegalHold'],
        resources: [this.bucket.arnForObjects('*')],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [this.encryptionKey.keyArn],
        conditions: {
          StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` },
          // With an S3 Bucket Key the context is the bucket ARN, without it the object ARN.
          StringLike: { 'kms:EncryptionContext:aws:s3:arn': [bucketArn, `${bucketArn}/*`] },
        },
      }),
    );
    acknowledgeWildcardResources(role, [this.bucket.arnForObjects('*')], 'Replication reads every object version of the vault; S3 has no narrower resource for that.');
    for (const replica of replicas) {
      const replicaArn = stack.formatArn({ service: 's3', region: '', account: '', resource: replica.bucketName });
      const replicaKeys = stack.formatArn({ service: 'kms', region: replica.region, resource: 'key', resourceName: '*' });
      acknowledgeWildcardResources(role, [`${replicaArn}/*`], `Replication writes any object into the DR vault ${replica.bucketName}.`);
      acknowledgeWildcardResources(
        role,
        [replicaKeys],
        `The DR key lives in another stack and is known only by its alias; kms:ResourceAliases limits the grant to alias/${replica.keyAlias}, used by S3 in ${replica.region} for that bucket.`,
      );
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:ReplicateObject', 's3:ReplicateTags'], resources: [`${replicaArn}/*`] }));
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
          resources: [replicaKeys],
          conditions: {
            'ForAnyValue:StringEquals': { 'kms:ResourceAliases': `alias/${replica.keyAlias}` },
            StringEquals: { 'kms:ViaService': `s3.${replica.region}.amazonaws.com` },
            StringLike: { 'kms:EncryptionContext:aws:s3:arn': [replicaArn, `${replicaArn}/*`] },
          },
        }),
      );
    }
  }

  /**
   * `BucketSizeBytes` is reported per storage type, once a day; the alarm sums the types of
   * every class the vault uses. A type with no data yet counts as 0 rather than hiding the sum.
   * `ratio` 1 is the capacity alarm itself, below 1 its early warning.
   */
  private addCapacityAlarm(
    capacity: { readonly thresholdBytes: number; readonly transitions: readonly VaultTransition[]; readonly vaultName: string; readonly namePrefix?: string },
    id: string,
    ratio: number,
  ): cloudwatch.Alarm {
    const classes = ['STANDARD', ...capacity.transitions.map((t) => t.storageClass.value)];
    const storageTypes = [...new Set(classes.flatMap((c) => STORAGE_TYPES.get(c) ?? []))];
    const usingMetrics = Object.fromEntries(
      storageTypes.map((storageType, i) => [
        `m${i}`,
        new cloudwatch.Metric({
          namespace: 'AWS/S3',
          metricName: 'BucketSizeBytes',
          dimensionsMap: { BucketName: this.bucket.bucketName, StorageType: storageType },
          statistic: cloudwatch.Stats.AVERAGE,
          period: Duration.days(1),
        }),
      ]),
    );
    const warning = ratio < 1;
    const threshold = Math.round(capacity.thresholdBytes * ratio);
    const what = warning ? `${Math.round(ratio * 100)}% of its planned capacity (${threshold} of ${capacity.thresholdBytes} bytes)` : `its planned capacity (${capacity.thresholdBytes} bytes, thresholdCapacity)`;
    return new cloudwatch.Alarm(this, id, {
      ...(capacity.namePrefix ? { alarmName: `${capacity.namePrefix}-vault-${capacity.vaultName}-capacity${warning ? '-warning' : ''}` } : {}),
      alarmDescription:
        `The vault ${capacity.vaultName} (${this.bucket.bucketName}) holds more than ${what}. ` +
        `S3 reports BucketSizeBytes once a day, so this alarm lags the vault by up to a day (and a day more after a first transition into a class). ` +
        `See what the vault keeps with: milvus-guard retention preview --plan PLAN and milvus-guard backup list --plan PLAN (sizes); then tighten the plans' retention, run milvus-guard retention run --all, or raise thresholdCapacity.`,
      metric: new cloudwatch.MathExpression({
        expression: Object.keys(usingMetrics).map((mid) => `FILL(${mid}, 0)`).join(' + '),
        usingMetrics,
        label: 'Vault size (bytes)',
        period: Duration.days(1),
      }),
      threshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // A day without a size report (a new vault, S3's daily job late) says nothing about
      // capacity: keep the last state rather than alarm or clear.
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
    });
  }
}

/** Classes whose objects must be thawed (RestoreObject) before they can be read. */
const ARCHIVE_CLASSES: readonly s3.StorageClass[] = [s3.StorageClass.GLACIER, s3.StorageClass.DEEP_ARCHIVE];
const isArchive = (t: VaultTransition): boolean => ARCHIVE_CLASSES.some((c) => c.value === t.storageClass.value);

/**
 * The vault's lifecycle: tier by age, clean up noncurrent versions, delete markers and failed
 * uploads — and NEVER expire current objects. Chunks are deduplicated: a chunk written a year
 * ago may belong to last night's backup, so an age-based expiry would silently destroy
 * retained backups. Only the retention workflow deletes, by reference (README, "The vault").
 *
 * Tiering by reference: by age, objects move only into classes whose reads stay instant
 * (STANDARD_IA, GLACIER_IR, ...). Archive classes (GLACIER, DEEP_ARCHIVE) apply only to packs
 * the retention workflow tagged `milvus-guard-archivable=true` — packs no backup a disaster
 * restore would use references — so tonight's restore never waits hours for a pack written a
 * year ago that it still shares.
 *
 * The one exception to "never expire": progress reports under `progress/`, which nothing
 * references and which are read only while their run goes on. Each write is a new version with
 * a one-day lock of its own (core/datamover/progress.ts), so their rule removes a replaced
 * report a day after it was replaced (once its lock has lapsed: a lifecycle rule never removes
 * a locked version) and expires the current one `progressExpiration` after its last write. This
 * rule overlaps the bucket-wide ones; where two rules' actions overlap S3 takes the earlier
 * expiration (Amazon S3 developer guide, lifecycle-configuration-examples.md, "Overlapping
 * filters, conflicting lifecycle actions"), so the bucket-wide rules change nothing here but
 * the delete-marker cleanup, which removes the marker an expired report leaves.
 */
function lifecycleRules(transitions: readonly VaultTransition[], noncurrentExpiration: Duration, progressExpiration: Duration): s3.LifecycleRule[] {
  const rules: s3.LifecycleRule[] = [];
  const instant = transitions.filter((t) => !isArchive(t));
  const archive = transitions.filter(isArchive);
  if (instant.length > 0) {
    rules.push({ id: 'tier-current-versions', transitions: instant.map((t) => ({ storageClass: t.storageClass, transitionAfter: t.transitionAfter })) });
  }
  if (archive.length > 0) {
    rules.push({
      id: 'archive-packs-only-old-backups-use',
      prefix: PACKS_PREFIX,
      tagFilters: { [ARCHIVABLE_TAG]: 'true' },
      transitions: archive.map((t) => ({ storageClass: t.storageClass, transitionAfter: t.transitionAfter })),
    });
  }
  // Tiering a noncurrent version that expires before (or when) it would move is pointless,
  // and S3 rejects a rule whose transition comes after its expiration. Noncurrent versions are
  // never read by a restore, so they may go to an instant class only.
  const noncurrentTransitions = instant
    .filter((t) => t.transitionAfter.toDays() < noncurrentExpiration.toDays())
    .map((t) => ({ storageClass: t.storageClass, transitionAfter: t.transitionAfter }));
  rules.push({
    id: 'clean-noncurrent-versions',
    ...(noncurrentTransitions.length ? { noncurrentVersionTransitions: noncurrentTransitions } : {}),
    // Object Lock keeps a locked version however old; this only removes what the lock and
    // the grace period no longer protect.
    noncurrentVersionExpiration: noncurrentExpiration,
    expiredObjectDeleteMarker: true,
  });
  rules.push({
    id: 'expire-progress-reports',
    prefix: PROGRESS_PREFIX,
    expiration: progressExpiration,
    noncurrentVersionExpiration: Duration.days(1),
  });
  rules.push({ id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) });
  return rules;
}

/** The id of the replication rule into `region` (a dimension of its replication metrics). */
export function replicationRuleId(region: string): string {
  return `replicate-to-${region}`;
}

function aliasArn(stack: Stack, region: string, alias: string): string {
  return stack.formatArn({ service: 'kms', region, resource: 'alias', resourceName: alias });
}

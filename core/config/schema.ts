/**
 * The installation config: one YAML file that describes clusters, vaults, policies, hooks,
 * plans, drills and notifications. This schema is the single source of truth: the TypeScript
 * types are inferred from it, `config validate` reports its issues, CDK synthesizes from the
 * parsed result, and the Lambdas read the same parsed result at run time.
 *
 * Every object is strict (unknown keys are errors, because a misspelt optional key would
 * otherwise be silently ignored), and every error message says what is allowed.
 */
import { z } from 'zod';
import { DNS_LABEL, DNS_LABEL_RULE, DNS_SUBDOMAIN_PATTERN } from '../kube/names.js';
import { CRON_HINT, cronProblem, isTimeZone } from '../schedule/cron.js';
import { AWS_REGIONS } from './regions.js';
import { parseQuantity, QUANTITY_HINT } from './quantity.js';

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

/** Names of things in this file (plans, vaults, policies): DNS-1123 labels, like Kubernetes. */
export const Name = z
  .string({ error: 'must be a name (lowercase letters, digits and "-", at most 63 characters)' })
  .max(63, 'must be at most 63 characters')
  .regex(DNS_LABEL, DNS_LABEL_RULE);

/** A Kubernetes namespace name. */
export const Namespace = Name;

export const Region = z.enum(AWS_REGIONS, {
  error: (issue) => `"${String(issue.input)}" is not an AWS Region; expected one like us-east-1, eu-west-1`,
});

const Port = z
  .int({ error: 'must be a port from 1 to 65535' })
  .min(1, 'must be a port from 1 to 65535')
  .max(65535, 'must be a port from 1 to 65535');

const PositiveInt = (what: string) =>
  z.int({ error: `must be a whole number (${what})` }).min(1, `must be at least 1 (${what})`);
const NonNegativeInt = (what: string) =>
  z.int({ error: `must be a whole number (${what})` }).min(0, `must not be negative (${what})`);

/** A capacity such as `1000Gi`; kept as written, with the byte count checked. */
export const Quantity = z.string({ error: `must be a size; expected ${QUANTITY_HINT}` }).refine((v) => parseQuantity(v) !== undefined, {
  error: (issue) => `"${String(issue.input)}" is not a size; expected ${QUANTITY_HINT}`,
});

/** A duration such as `30s`, `15m`, `24h` or `7d`. */
export const Duration = z
  .string({ error: 'must be a duration such as 30s, 15m, 24h or 7d' })
  .regex(/^[1-9]\d*(s|m|h|d)$/, 'must be a duration such as 30s, 15m, 24h or 7d');

export const Cron = z.string({ error: `must be a cron expression in quotes; expected ${CRON_HINT}` }).superRefine((value, ctx) => {
  const problem = cronProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: `"${value}" ${problem}` });
});

export const TimeZone = z.string({ error: 'must be an IANA time zone such as UTC or Europe/Berlin' }).refine(isTimeZone, {
  error: (issue) => `"${String(issue.input)}" is not an IANA time zone; expected one like UTC or Europe/Berlin`,
});

const LABEL_KEY = new RegExp(`^(${DNS_SUBDOMAIN_PATTERN}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`);
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

export const LabelKey = z.string({ error: 'must be a Kubernetes label key such as app.kubernetes.io/instance' }).regex(LABEL_KEY, 'must be a Kubernetes label key such as app.kubernetes.io/instance');
export const LabelValue = z
  .string({ error: 'must be a string (quote numbers and booleans in YAML)' })
  .regex(LABEL_VALUE, 'must be a Kubernetes label value (at most 63 letters, digits, "-", "_" or ".")');

/** A Kubernetes label selector, equality- and set-based. */
export const LabelSelector = z
  .strictObject({
    matchLabels: z.record(LabelKey, LabelValue).optional(),
    matchExpressions: z
      .array(
        z
          .strictObject({
            key: LabelKey,
            operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist'], {
              error: 'must be one of In, NotIn, Exists, DoesNotExist',
            }),
            values: z.array(LabelValue).optional(),
          })
          .superRefine((expr, ctx) => {
            const needsValues = expr.operator === 'In' || expr.operator === 'NotIn';
            if (needsValues && !expr.values?.length) {
              ctx.addIssue({ code: 'custom', path: ['values'], message: `must list at least one value for operator ${expr.operator}` });
            }
            if (!needsValues && expr.values?.length) {
              ctx.addIssue({ code: 'custom', path: ['values'], message: `must be empty for operator ${expr.operator}` });
            }
          }),
      )
      .optional(),
  })
  .refine((s) => Object.keys(s.matchLabels ?? {}).length + (s.matchExpressions?.length ?? 0) > 0, {
    message: 'must have at least one of matchLabels or matchExpressions (an empty selector would match everything)',
  });
export type LabelSelector = z.infer<typeof LabelSelector>;

// ---------------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------------

export const Cluster = z.strictObject({
  name: Name,
  /** The EKS cluster name as shown by `aws eks list-clusters`. */
  eksClusterName: z.string().regex(/^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$/, 'must be an EKS cluster name (letters, digits, "-", "_", at most 100)'),
  region: Region,
  /**
   * How the control plane reaches the Kubernetes API: `public` (the default) over the public
   * endpoint; `private` from Lambdas placed in the cluster's VPC (then `vpc` is required).
   */
  endpointAccess: z.enum(['public', 'private'], { error: 'must be public or private' }).default('public'),
  vpc: z
    .strictObject({
      vpcId: z.string().regex(/^vpc-[0-9a-f]{8,17}$/, 'must be a VPC id such as vpc-0abc1234'),
      subnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'must be a subnet id such as subnet-0abc1234')).min(1, 'must list at least one subnet'),
      securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'must be a security group id such as sg-0abc1234')).optional(),
    })
    .optional(),
});
export type Cluster = z.infer<typeof Cluster>;

// ---------------------------------------------------------------------------------------------
// Vaults
// ---------------------------------------------------------------------------------------------

/**
 * Storage classes a transition may name. Instant-retrieval classes come first: restores from
 * GLACIER (Flexible Retrieval) and DEEP_ARCHIVE need a thaw of hours before data can be read.
 */
export const StorageClass = z.enum(['STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'], {
  error: 'must be one of STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE',
});
export type StorageClass = z.infer<typeof StorageClass>;

/** S3 Glacier retrieval tiers a restore may thaw archived packs with (RestoreObject's `Tier`). */
export const ThawTier = z.enum(['Standard', 'Bulk', 'Expedited'], {
  error: 'must be Standard (hours), Bulk (slowest, cheapest) or Expedited (minutes, GLACIER only; DEEP_ARCHIVE packs then use Standard)',
});

/** How restores thaw packs in an archive class when `archiveRestore` is not given. */
export const DEFAULT_ARCHIVE_RESTORE = { tier: 'Standard', days: 3 } as const;

/**
 * How a restore or drill thaws the packs it needs that the lifecycle moved into GLACIER or
 * DEEP_ARCHIVE: the retrieval tier, and how many days the thawed copies stay readable (they must
 * outlast the wait for the thaw and the hydration that reads them).
 */
export const ArchiveRestore = z.strictObject({
  tier: ThawTier.default(DEFAULT_ARCHIVE_RESTORE.tier),
  days: PositiveInt('days a thawed copy stays readable').default(DEFAULT_ARCHIVE_RESTORE.days),
});
export type ArchiveRestore = z.infer<typeof ArchiveRestore>;

export const Vault = z
  .strictObject({
    name: Name,
    region: Region,
    objectLock: z.strictObject({
      /** GOVERNANCE can be lifted by a privileged principal; COMPLIANCE cannot, by anyone. */
      mode: z.enum(['GOVERNANCE', 'COMPLIANCE'], { error: 'must be GOVERNANCE or COMPLIANCE' }),
      /** Default retain-until for objects written without an explicit date. */
      defaultRetentionDays: PositiveInt('days').max(36500, 'must be at most 36500 days'),
    }),
    /** An existing customer managed key; when absent the stack creates one with rotation on. */
    kmsKeyArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/.+$/, 'must be a KMS key or alias ARN')
      .optional(),
    /** Alarm when the vault holds more than this (the Trilio target's thresholdCapacity). */
    thresholdCapacity: Quantity.optional(),
    /** Regions that receive a replica of this vault (S3 replication into a DR vault). */
    replicaRegions: z.array(Region).default([]),
    /** Storage-class transitions by object age. Never an expiry: see README, "The vault". */
    transitions: z
      .array(z.strictObject({ storageClass: StorageClass, afterDays: PositiveInt('days') }))
      .default([]),
    /** Thawing archived packs for a restore; default {@link DEFAULT_ARCHIVE_RESTORE}. */
    archiveRestore: ArchiveRestore.optional(),
  })
  .superRefine((vault, ctx) => {
    vault.replicaRegions.forEach((region, i) => {
      if (region === vault.region) {
        ctx.addIssue({ code: 'custom', path: ['replicaRegions', i], message: `must differ from the vault's own region ${vault.region}` });
      }
    });
    let previous = 0;
    vault.transitions.forEach((t, i) => {
      if (t.afterDays <= previous) {
        ctx.addIssue({ code: 'custom', path: ['transitions', i, 'afterDays'], message: `must be greater than the previous transition's ${previous} days (transitions are listed in age order)` });
      }
      // S3 refuses IA transitions earlier than 30 days after creation.
      if ((t.storageClass === 'STANDARD_IA' || t.storageClass === 'ONEZONE_IA') && t.afterDays < 30) {
        ctx.addIssue({ code: 'custom', path: ['transitions', i, 'afterDays'], message: `must be at least 30 for ${t.storageClass} (an S3 rule)` });
      }
      previous = t.afterDays;
    });
  });
export type Vault = z.infer<typeof Vault>;

// ---------------------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------------------

export const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;
export const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'] as const;

export const Weekday = z.enum(WEEKDAYS, { error: (i) => `"${String(i.input)}" is not a weekday; expected one of ${WEEKDAYS.join(', ')}` });
export const Month = z.enum(MONTHS, { error: (i) => `"${String(i.input)}" is not a month; expected one of ${MONTHS.join(', ')}` });

/** When backups run: one or more cron expressions in a time zone. */
export const ScheduleBody = z.strictObject({
  cron: z.array(Cron).min(1, 'must list at least one cron expression'),
  timeZone: TimeZone.default('UTC'),
});
export type ScheduleBody = z.infer<typeof ScheduleBody>;
export const SchedulePolicy = ScheduleBody.extend({ name: Name });
export type SchedulePolicy = z.infer<typeof SchedulePolicy>;

/**
 * Grandfather-father-son retention. A backup is kept while any rule keeps it: one of the
 * `latest` newest, the newest of each of the last `weekly` weeks taken on `dayOfWeek`, and so
 * on; and never longer than `maxAgeDays`.
 */
const RetentionFields = z.strictObject({
  latest: NonNegativeInt('backups').optional(),
  weekly: NonNegativeInt('weeks').optional(),
  dayOfWeek: Weekday.optional(),
  monthly: NonNegativeInt('months').optional(),
  dateOfMonth: z
    .int({ error: 'must be a day of the month from 1 to 31' })
    .min(1, 'must be a day of the month from 1 to 31')
    .max(31, 'must be a day of the month from 1 to 31')
    .optional(),
  yearly: NonNegativeInt('years').optional(),
  monthOfYear: Month.optional(),
  /** Hard ceiling: no backup is kept longer than this, whatever the rules above say. */
  maxAgeDays: PositiveInt('days').optional(),
  /**
   * The newest Available backups whose VolumeSnapshots stay in the cluster for fast restores;
   * retention deletes the others' (a backup's snapshots never outlive it). Default 1.
   */
  keepSnapshots: NonNegativeInt('snapshots').max(100, 'must be at most 100 snapshots per volume').optional(),
});

function checkRetention(r: z.infer<typeof RetentionFields>, ctx: z.RefinementCtx): void {
  const pairs = [
    ['weekly', 'dayOfWeek'],
    ['monthly', 'dateOfMonth'],
    ['yearly', 'monthOfYear'],
  ] as const;
  for (const [count, anchor] of pairs) {
    if ((r[count] ?? 0) > 0 && r[anchor] === undefined) {
      ctx.addIssue({ code: 'custom', path: [anchor], message: `is required when ${count} is set` });
    }
  }
  if ((r.latest ?? 0) + (r.weekly ?? 0) + (r.monthly ?? 0) + (r.yearly ?? 0) === 0) {
    ctx.addIssue({ code: 'custom', message: 'must keep something: set at least one of latest, weekly, monthly, yearly above 0' });
  }
}

export const RetentionBody = RetentionFields.superRefine(checkRetention);
export const RetentionPolicy = RetentionFields.extend({ name: Name }).superRefine(checkRetention);
export type RetentionPolicy = z.infer<typeof RetentionPolicy>;
export type RetentionBody = z.infer<typeof RetentionBody>;

// ---------------------------------------------------------------------------------------------
// Hooks
// ---------------------------------------------------------------------------------------------

export const ExecAction = z.strictObject({
  /** Container to exec in; defaults to the pod's first container. */
  container: z.string({ error: 'must be a container name' }).min(1, 'must be a container name').optional(),
  command: z.array(z.string({ error: 'must be a string (quote numbers in YAML)' }), { error: 'must be a list such as ["sh", "-c", "sync"]' }).min(1, 'must be a non-empty list such as ["sh", "-c", "sync"]'),
  timeoutSeconds: PositiveInt('seconds').max(3600, 'must be at most 3600 seconds').default(30),
  maxRetryCount: NonNegativeInt('retries').max(10, 'must be at most 10').default(0),
  /** When true a failure is recorded but does not fail the backup. */
  ignoreFailure: z.boolean({ error: 'must be true or false' }).default(false),
});
export type ExecAction = z.infer<typeof ExecAction>;

export const Hook = z
  .strictObject({ name: Name, pre: ExecAction.optional(), post: ExecAction.optional() })
  .refine((h) => h.pre !== undefined || h.post !== undefined, { message: 'must define pre, post or both' });
export type Hook = z.infer<typeof Hook>;

// ---------------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------------

/** What a `schedule:` or `retention:` may be, for the message when it is neither. */
const SCHEDULE_FORMS =
  'must be the name of a schedule policy (see schedulePolicies) or an inline schedule such as {cron: ["0 2 * * *"], timeZone: UTC}';
const RETENTION_FORMS =
  'must be the name of a retention policy (see retentionPolicies) or an inline policy such as {latest: 7, weekly: 4, dayOfWeek: Sunday}';

function isRegex(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

/** An S3 bucket name (the rules of S3's general purpose buckets). */
const BucketName = z
  .string({ error: 'must be an S3 bucket name' })
  .regex(/^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name: 3-63 lowercase letters, digits, "." and "-", starting and ending with a letter or digit');

/** A key prefix inside a bucket, without slashes at either end ('' is the whole bucket). */
const KeyPrefix = z
  .string({ error: 'must be a key prefix such as files or milvus/prod' })
  .max(512, 'must be at most 512 characters')
  .regex(/^(?:[A-Za-z0-9!_.*'()-]+(?:\/[A-Za-z0-9!_.*'()-]+)*)?$/, 'must be a key prefix such as files or milvus/prod: letters, digits, and !_.*\'()- between single slashes, no slash at either end')
  .refine((p) => !p.split('/').some((s) => s === '.' || s === '..'), 'must not have "." or ".." segments');

/** A place restores may copy a backup's bucket objects into: a bucket and a key prefix. */
export const ObjectStorageTarget = z.strictObject({
  bucket: BucketName,
  prefix: KeyPrefix.default(''),
  /** The bucket's region: a restore or drill that names no target uses the first one in its own region. @default any region */
  region: Region.optional(),
});
export type ObjectStorageTarget = z.infer<typeof ObjectStorageTarget>;

export const ObjectStorage = z.strictObject({
  /** The bucket Milvus writes to (`spec.config.minio.bucketName`, Helm `externalS3.bucketName`). */
  bucket: BucketName,
  /** Milvus's root path in it (`minio.rootPath`); '' for the whole bucket. */
  rootPath: KeyPrefix,
  /**
   * Where restores may write the objects back (IAM grants write there and nowhere else). A
   * restore names one of them, or a prefix below one; a restore or drill that names none uses the
   * first, below `<prefix>/<restore name>`.
   */
  restoreTargets: z.array(ObjectStorageTarget).max(10, 'must list at most 10 targets').default([]),
});
export type ObjectStorage = z.infer<typeof ObjectStorage>;

export const Plan = z.strictObject({
  name: Name,
  cluster: Name,
  namespace: Namespace,
  /** Which resources belong to this Milvus instance. */
  selector: LabelSelector,
  vault: Name,
  /** A schedule policy by name, or an inline schedule. Absent: on demand only. */
  schedule: z.union([Name, ScheduleBody], { error: SCHEDULE_FORMS }).optional(),
  /** A retention policy by name, or an inline policy. */
  retention: z.union([Name, RetentionBody], { error: RETENTION_FORMS }),
  hooks: z
    .strictObject({
      mode: z.enum(['Sequential', 'Parallel'], { error: 'must be Sequential or Parallel' }).default('Sequential'),
      items: z
        .array(
          z.strictObject({
            hook: Name,
            podSelector: LabelSelector,
            /** Only containers whose name matches run the hook; defaults to the hook's container. */
            containerRegex: z
              .string({ error: 'must be a regular expression such as ^datanode$' })
              .refine(isRegex, { error: (i) => `${JSON.stringify(i.input)} is not a valid regular expression` })
              .optional(),
          }),
        )
        .min(1, 'must list at least one hook'),
    })
    .optional(),
  milvus: z.strictObject({
    /** Name of the Milvus custom resource (Operator) or Helm release. */
    instance: Name,
    /** The Service that exposes Milvus; the Operator names it `<instance>-milvus`. */
    service: Name,
    restPort: Port.default(19530),
    managementPort: Port.default(9091),
    /** Secret (in the plan's namespace) holding `username` and `password` when auth is on. */
    authSecret: z.strictObject({ name: Name, usernameKey: z.string().default('username'), passwordKey: z.string().default('password') }).optional(),
    /**
     * For a Milvus that keeps its data in an S3 bucket rather than an in-cluster MinIO (the EKS
     * deployment of the Milvus documentation): the bucket and root path its CR or Helm values
     * name. Declared here so the deployment grants read on exactly that prefix; a backup checks it
     * against what the cluster says.
     */
    objectStorage: ObjectStorage.optional(),
  }),
  /** Recovery point objective: alarm when the newest Available backup is older than this. */
  rpo: Duration.optional(),
});
export type Plan = z.infer<typeof Plan>;

// ---------------------------------------------------------------------------------------------
// Drills and notifications
// ---------------------------------------------------------------------------------------------

// A StorageClass is named like most Kubernetes objects (a DNS-1123 subdomain); a bad name
// would otherwise fail only when the restored PVC is created, after the restore began.
const notStorageClass = (iss: { input?: unknown }) =>
  `${JSON.stringify(iss.input)} is not a StorageClass name: lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters`;
const StorageClassName = z.string().max(253, { error: notStorageClass }).regex(new RegExp(`^${DNS_SUBDOMAIN_PATTERN}$`), { error: notStorageClass });
/** A key of a storage class map: a StorageClass name, or "" for the volumes a backup has without one. */
const MappedStorageClass = z.union([z.literal(''), StorageClassName], { error: notStorageClass });

/**
 * StorageClasses a restore uses instead of the backup's (`{"gp2": "gp3"}`); the key "" maps the
 * volumes the backup has without a class, which otherwise take the target's default class.
 */
export const StorageClassMap = z.record(MappedStorageClass, StorageClassName, { error: (iss) => (iss.code === 'invalid_key' ? iss.issues[0]?.message : undefined) });

export const Drill = z.strictObject({
  name: Name,
  plan: Name,
  schedule: z.union([Name, ScheduleBody], { error: SCHEDULE_FORMS }),
  /** Cluster to restore into; defaults to the plan's cluster. */
  targetCluster: Name.optional(),
  /** Throwaway namespace for the restore; defaults to `drillNamespaceOf(<plan namespace>)`. */
  targetNamespace: Namespace.optional(),
  /** Fail the drill when restored row counts differ from those recorded at backup. */
  validateRowCounts: z.boolean({ error: 'must be true or false' }).default(true),
  /** Give up when Milvus is not healthy this long after the restore. */
  readyTimeout: Duration.default('30m'),
  /** Delete the namespace afterwards (keep it to investigate a failed drill). */
  cleanup: z.boolean({ error: 'must be true or false' }).default(true),
  /** StorageClasses of the target cluster to use instead of the backup's (a cluster whose classes are named otherwise). */
  storageClassMap: StorageClassMap.optional(),
});
export type Drill = z.infer<typeof Drill>;

/** The settings of a drill that states none — also of a drill started for a plan (`{"plan": NAME}`). */
export const DRILL_DEFAULTS = Drill.pick({ validateRowCounts: true, readyTimeout: true, cleanup: true }).parse({});

/** Where a drill of a plan in `planNamespace` restores unless it names a namespace. */
export const drillNamespaceOf = (planNamespace: string): string => `${planNamespace}-drill`;

export const Subscription = z.discriminatedUnion(
  'protocol',
  [
    z.strictObject({ protocol: z.literal('email'), endpoint: z.email('must be an email address') }),
    z.strictObject({ protocol: z.literal('https'), endpoint: z.url({ protocol: /^https$/, error: 'must be an https:// URL' }) }),
  ],
  { error: 'must be email or https' },
);

export const Notifications = z.strictObject({
  subscriptions: z.array(Subscription).default([]),
});

// ---------------------------------------------------------------------------------------------
// The whole file
// ---------------------------------------------------------------------------------------------

/** The sections and their shapes, without the cross-section checks (see `crossReferenceIssues`). */
export const ConfigShape = z.strictObject({
  /** Prefix of stack and resource names; one installation per account and region. */
  name: Name.default('milvus-guard'),
  clusters: z.array(Cluster).min(1, 'must list at least one cluster'),
  vaults: z.array(Vault).min(1, 'must list at least one vault'),
  schedulePolicies: z.array(SchedulePolicy).default([]),
  retentionPolicies: z.array(RetentionPolicy).default([]),
  hooks: z.array(Hook).default([]),
  plans: z.array(Plan).min(1, 'must list at least one plan'),
  drills: z.array(Drill).default([]),
  notifications: Notifications.default({ subscriptions: [] }),
});

/**
 * What the cross-section checks read: every field `unknown`, so the same checks run on a parsed
 * config and on a raw document whose shape has errors. zod skips refinements when the shape
 * already failed, yet "plan names vault X that does not exist" is worth reporting alongside a
 * mistyped weekday, so `parseConfig` runs these checks on the raw document itself.
 */
export interface ReferenceView {
  readonly clusters?: unknown;
  readonly vaults?: unknown;
  readonly schedulePolicies?: unknown;
  readonly retentionPolicies?: unknown;
  readonly hooks?: unknown;
  readonly plans?: unknown;
  readonly drills?: unknown;
}

/** A problem found by `crossReferenceIssues`, with its path in the file. */
export interface ReferenceIssue {
  readonly path: (string | number)[];
  readonly message: string;
}

type Loose = Readonly<Record<string, unknown>>;

/** The items of a section that is a list; anything that is not a mapping reads as `{}`. */
function items(section: unknown): Loose[] {
  if (!Array.isArray(section)) return [];
  return section.map((item) => (item !== null && typeof item === 'object' && !Array.isArray(item) ? (item as Loose) : {}));
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Checks that hold across sections: unique names, references that resolve, a plan's vault in
 * its cluster's region, drills that never restore over production. Values of the wrong type are
 * skipped here (the shape checks report them), so these checks never add noise to a broken file.
 */
export function crossReferenceIssues(c: ReferenceView): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  const clusters = items(c.clusters);
  const vaults = items(c.vaults);
  const schedules = items(c.schedulePolicies);
  const retentions = items(c.retentionPolicies);
  const hooks = items(c.hooks);
  const plans = items(c.plans);
  const drills = items(c.drills);

  /** Adds an issue for every name listed twice in `list` (at `key[i].name`). */
  const checkUnique = (list: Loose[], key: string): void => {
    const seen = new Map<string, number>();
    list.forEach((item, i) => {
      const name = str(item['name']);
      if (name === undefined) return;
      const first = seen.get(name);
      if (first === undefined) seen.set(name, i);
      else issues.push({ path: [key, i, 'name'], message: `"${name}" is already used by ${key}[${first}]; names must be unique` });
    });
  };

  /** Adds an issue when `value` names nothing in `list`, listing the names that exist. */
  const checkRef = (value: unknown, list: Loose[], what: string, section: string, path: (string | number)[]): void => {
    const name = str(value);
    if (name === undefined) return;
    const known = list.map((i) => str(i['name'])).filter((n): n is string => n !== undefined);
    if (known.includes(name)) return;
    const hint = known.length ? `defined: ${known.join(', ')}` : `none is defined under ${section}`;
    issues.push({ path, message: `names ${what} "${name}" that is not defined; ${hint}` });
  };

  const byName = (list: Loose[], name: unknown): Loose | undefined =>
    str(name) === undefined ? undefined : list.find((i) => i['name'] === name);

  checkUnique(clusters, 'clusters');
  checkUnique(vaults, 'vaults');
  checkUnique(schedules, 'schedulePolicies');
  checkUnique(retentions, 'retentionPolicies');
  checkUnique(hooks, 'hooks');
  checkUnique(plans, 'plans');
  checkUnique(drills, 'drills');

  const vaultRegions = new Map<string, number>();
  vaults.forEach((v, i) => {
    const region = str(v['region']);
    if (region === undefined) return;
    const first = vaultRegions.get(region);
    if (first === undefined) vaultRegions.set(region, i);
    else issues.push({ path: ['vaults', i, 'region'], message: `${region} already has vault ${String(vaults[first]!['name'])}; one vault per region` });
  });
  // A DR region's stack runs the restore, drill and failover workflows of one source vault (their
  // environment names one vault and its replica bucket).
  const replicatedInto = new Map<string, number>();
  vaults.forEach((v, i) => {
    const regions = v['replicaRegions'];
    if (!Array.isArray(regions)) return;
    regions.forEach((r: unknown, j) => {
      const region = str(r);
      if (region === undefined) return;
      const first = replicatedInto.get(region);
      if (first === undefined) replicatedInto.set(region, i);
      else if (first !== i) {
        issues.push({
          path: ['vaults', i, 'replicaRegions', j],
          message: `vault ${String(vaults[first]!['name'])} already replicates into ${region}; a DR region serves one vault (its restore, drill and failover workflows read that vault's replica): choose another DR region for vault ${String(v['name'])}`,
        });
      }
    });
  });
  clusters.forEach((cl, i) => {
    if (cl['endpointAccess'] === 'private' && cl['vpc'] === undefined) {
      issues.push({ path: ['clusters', i, 'vpc'], message: 'is required when endpointAccess is private (the Lambdas must run in the cluster VPC)' });
    }
  });

  plans.forEach((plan, i) => {
    checkRef(plan['cluster'], clusters, 'cluster', 'clusters', ['plans', i, 'cluster']);
    checkRef(plan['vault'], vaults, 'vault', 'vaults', ['plans', i, 'vault']);
    checkRef(plan['schedule'], schedules, 'schedule policy', 'schedulePolicies', ['plans', i, 'schedule']);
    checkRef(plan['retention'], retentions, 'retention policy', 'retentionPolicies', ['plans', i, 'retention']);
    const hookConfig = plan['hooks'];
    if (hookConfig !== null && typeof hookConfig === 'object' && !Array.isArray(hookConfig)) {
      items((hookConfig as Loose)['items']).forEach((item, j) =>
        checkRef(item['hook'], hooks, 'hook', 'hooks', ['plans', i, 'hooks', 'items', j, 'hook']),
      );
    }
    const cluster = byName(clusters, plan['cluster']);
    const vault = byName(vaults, plan['vault']);
    const clusterRegion = str(cluster?.['region']);
    const vaultRegion = str(vault?.['region']);
    // An unknown region is reported where it is written; comparing it here would add a second,
    // misleading error to the same mistake.
    const known = (r: string | undefined): r is string => r !== undefined && (AWS_REGIONS as readonly string[]).includes(r);
    if (known(clusterRegion) && known(vaultRegion) && clusterRegion !== vaultRegion) {
      issues.push({
        path: ['plans', i, 'vault'],
        message: `vault ${String(vault!['name'])} is in ${vaultRegion} but cluster ${String(cluster!['name'])} is in ${clusterRegion}; back up into a vault in the cluster's region (replicate it for DR)`,
      });
    }
  });

  drills.forEach((drill, i) => {
    checkRef(drill['plan'], plans, 'plan', 'plans', ['drills', i, 'plan']);
    checkRef(drill['schedule'], schedules, 'schedule policy', 'schedulePolicies', ['drills', i, 'schedule']);
    checkRef(drill['targetCluster'], clusters, 'cluster', 'clusters', ['drills', i, 'targetCluster']);
    const plan = byName(plans, drill['plan']);
    const planCluster = str(plan?.['cluster']);
    const planNamespace = str(plan?.['namespace']);
    if (planCluster === undefined || planNamespace === undefined) return;
    const targetCluster = str(drill['targetCluster']) ?? planCluster;
    const targetNamespace = str(drill['targetNamespace']) ?? drillNamespaceOf(planNamespace);
    if (targetCluster === planCluster && targetNamespace === planNamespace) {
      issues.push({ path: ['drills', i, 'targetNamespace'], message: `must differ from the plan's namespace ${planNamespace}: a drill must never restore over production` });
    }
  });
  return issues;
}

/** The schema of a whole config file. Parse with `parseConfig` (config/load.ts) for messages. */
export const Config = ConfigShape.superRefine((config, ctx) => {
  for (const issue of crossReferenceIssues(config)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
});
export type Config = z.infer<typeof Config>;
/** The config as written, before defaults are applied. */
export type ConfigInput = z.input<typeof Config>;

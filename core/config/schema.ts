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
import { cronProblem, isTimeZone } from '../schedule/cron.js';
import { AWS_REGIONS } from './regions.js';
import { parseQuantity, QUANTITY_HINT } from './quantity.js';

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Names of things in this file (plans, vaults, policies): DNS-1123 labels, like Kubernetes. */
export const Name = z
  .string({ error: 'must be a name (lowercase letters, digits and "-", at most 63 characters)' })
  .max(63, 'must be at most 63 characters')
  .regex(DNS_LABEL, 'must be lowercase letters, digits and "-", starting and ending with a letter or digit');

/** A Kubernetes namespace name. */
export const Namespace = Name;

export const Region = z.enum(AWS_REGIONS, {
  error: (issue) => `"${String(issue.input)}" is not an AWS Region; expected one like us-east-1, eu-west-1`,
});

const PositiveInt = (what: string) =>
  z.int({ error: `must be a whole number (${what})` }).min(1, `must be at least 1 (${what})`);
const NonNegativeInt = (what: string) =>
  z.int({ error: `must be a whole number (${what})` }).min(0, `must not be negative (${what})`);

/** A capacity such as `1000Gi`; kept as written, with the byte count checked. */
export const Quantity = z.string().refine((v) => parseQuantity(v) !== undefined, {
  error: (issue) => `"${String(issue.input)}" is not a size; expected ${QUANTITY_HINT}`,
});

/** A duration such as `30s`, `15m`, `24h` or `7d`. */
export const Duration = z
  .string()
  .regex(/^[1-9]\d*(s|m|h|d)$/, 'must be a duration such as 30s, 15m, 24h or 7d');

export const Cron = z.string().superRefine((value, ctx) => {
  const problem = cronProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: `"${value}" ${problem}` });
});

export const TimeZone = z.string().refine(isTimeZone, {
  error: (issue) => `"${String(issue.input)}" is not an IANA time zone; expected one like UTC or Europe/Berlin`,
});

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

export const LabelKey = z.string().regex(LABEL_KEY, 'must be a Kubernetes label key such as app.kubernetes.io/instance');
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
  container: z.string().min(1).optional(),
  command: z.array(z.string()).min(1, 'must be a non-empty list such as ["sh", "-c", "sync"]'),
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

export const Plan = z.strictObject({
  name: Name,
  cluster: Name,
  namespace: Namespace,
  /** Which resources belong to this Milvus instance. */
  selector: LabelSelector,
  vault: Name,
  /** A schedule policy by name, or an inline schedule. Absent: on demand only. */
  schedule: z.union([Name, ScheduleBody]).optional(),
  /** A retention policy by name, or an inline policy. */
  retention: z.union([Name, RetentionBody]),
  hooks: z
    .strictObject({
      mode: z.enum(['Sequential', 'Parallel'], { error: 'must be Sequential or Parallel' }).default('Sequential'),
      items: z
        .array(
          z.strictObject({
            hook: Name,
            podSelector: LabelSelector,
            /** Only containers whose name matches run the hook; defaults to the hook's container. */
            containerRegex: z.string().min(1).optional(),
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
    restPort: z.int().min(1).max(65535, 'must be a port from 1 to 65535').default(19530),
    managementPort: z.int().min(1).max(65535, 'must be a port from 1 to 65535').default(9091),
    /** Secret (in the plan's namespace) holding `username` and `password` when auth is on. */
    authSecret: z.strictObject({ name: Name, usernameKey: z.string().default('username'), passwordKey: z.string().default('password') }).optional(),
  }),
  /** Recovery point objective: alarm when the newest Available backup is older than this. */
  rpo: Duration.optional(),
});
export type Plan = z.infer<typeof Plan>;

// ---------------------------------------------------------------------------------------------
// Drills and notifications
// ---------------------------------------------------------------------------------------------

export const Drill = z.strictObject({
  name: Name,
  plan: Name,
  schedule: z.union([Name, ScheduleBody]),
  /** Cluster to restore into; defaults to the plan's cluster. */
  targetCluster: Name.optional(),
  /** Throwaway namespace for the restore; defaults to `<plan namespace>-drill`. */
  targetNamespace: Namespace.optional(),
  /** Fail the drill when restored row counts differ from those recorded at backup. */
  validateRowCounts: z.boolean({ error: 'must be true or false' }).default(true),
  /** Give up when Milvus is not healthy this long after the restore. */
  readyTimeout: Duration.default('30m'),
  /** Delete the namespace afterwards (keep it to investigate a failed drill). */
  cleanup: z.boolean({ error: 'must be true or false' }).default(true),
});
export type Drill = z.infer<typeof Drill>;

export const Subscription = z.discriminatedUnion(
  'protocol',
  [
    z.strictObject({ protocol: z.literal('email'), endpoint: z.email('must be an email address') }),
    z.strictObject({ protocol: z.literal('https'), endpoint: z.url({ protocol: /^https$/, error: 'must be an https:// URL' }) }),
  ],
  { error: 'protocol must be email or https' },
);

export const Notifications = z.strictObject({
  subscriptions: z.array(Subscription).default([]),
});

// ---------------------------------------------------------------------------------------------
// The whole file
// ---------------------------------------------------------------------------------------------

const ConfigShape = z.strictObject({
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

type ConfigShape = z.infer<typeof ConfigShape>;

/** Adds an issue for every name listed twice in `items` (at `key[i].name`). */
function checkUnique(items: readonly { name: string }[], key: string, ctx: z.RefinementCtx): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const first = seen.get(item.name);
    if (first === undefined) seen.set(item.name, i);
    else ctx.addIssue({ code: 'custom', path: [key, i, 'name'], message: `"${item.name}" is already used by ${key}[${first}]; names must be unique` });
  });
}

/** Adds an issue when `name` is not one of `items`' names, listing the ones that exist. */
function checkRef(
  name: string | undefined,
  items: readonly { name: string }[],
  what: string,
  section: string,
  path: (string | number)[],
  ctx: z.RefinementCtx,
): void {
  if (name === undefined || items.some((i) => i.name === name)) return;
  const known = items.map((i) => i.name);
  const hint = known.length ? `defined: ${known.join(', ')}` : `none is defined under ${section}`;
  ctx.addIssue({ code: 'custom', path, message: `names ${what} "${name}" that is not defined; ${hint}` });
}

/** Checks that hold across sections: unique names and references that resolve. */
function checkCrossReferences(c: ConfigShape, ctx: z.RefinementCtx): void {
  checkUnique(c.clusters, 'clusters', ctx);
  checkUnique(c.vaults, 'vaults', ctx);
  checkUnique(c.schedulePolicies, 'schedulePolicies', ctx);
  checkUnique(c.retentionPolicies, 'retentionPolicies', ctx);
  checkUnique(c.hooks, 'hooks', ctx);
  checkUnique(c.plans, 'plans', ctx);
  checkUnique(c.drills, 'drills', ctx);

  const vaultRegions = new Map<string, number>();
  c.vaults.forEach((v, i) => {
    const first = vaultRegions.get(v.region);
    if (first === undefined) vaultRegions.set(v.region, i);
    else ctx.addIssue({ code: 'custom', path: ['vaults', i, 'region'], message: `${v.region} already has vault ${c.vaults[first]!.name}; one vault per region` });
  });
  c.clusters.forEach((cl, i) => {
    if (cl.endpointAccess === 'private' && !cl.vpc) {
      ctx.addIssue({ code: 'custom', path: ['clusters', i, 'vpc'], message: 'is required when endpointAccess is private (the Lambdas must run in the cluster VPC)' });
    }
  });

  c.plans.forEach((plan, i) => {
    checkRef(plan.cluster, c.clusters, 'cluster', 'clusters', ['plans', i, 'cluster'], ctx);
    checkRef(plan.vault, c.vaults, 'vault', 'vaults', ['plans', i, 'vault'], ctx);
    if (typeof plan.schedule === 'string') checkRef(plan.schedule, c.schedulePolicies, 'schedule policy', 'schedulePolicies', ['plans', i, 'schedule'], ctx);
    if (typeof plan.retention === 'string') checkRef(plan.retention, c.retentionPolicies, 'retention policy', 'retentionPolicies', ['plans', i, 'retention'], ctx);
    plan.hooks?.items.forEach((item, j) => checkRef(item.hook, c.hooks, 'hook', 'hooks', ['plans', i, 'hooks', 'items', j, 'hook'], ctx));
    const cluster = c.clusters.find((cl) => cl.name === plan.cluster);
    const vault = c.vaults.find((v) => v.name === plan.vault);
    if (cluster && vault && cluster.region !== vault.region) {
      ctx.addIssue({
        code: 'custom',
        path: ['plans', i, 'vault'],
        message: `vault ${vault.name} is in ${vault.region} but cluster ${cluster.name} is in ${cluster.region}; back up into a vault in the cluster's region (replicate it for DR)`,
      });
    }
  });

  c.drills.forEach((drill, i) => {
    checkRef(drill.plan, c.plans, 'plan', 'plans', ['drills', i, 'plan'], ctx);
    if (typeof drill.schedule === 'string') checkRef(drill.schedule, c.schedulePolicies, 'schedule policy', 'schedulePolicies', ['drills', i, 'schedule'], ctx);
    checkRef(drill.targetCluster, c.clusters, 'cluster', 'clusters', ['drills', i, 'targetCluster'], ctx);
    const plan = c.plans.find((p) => p.name === drill.plan);
    if (plan && (drill.targetCluster ?? plan.cluster) === plan.cluster && (drill.targetNamespace ?? `${plan.namespace}-drill`) === plan.namespace) {
      ctx.addIssue({ code: 'custom', path: ['drills', i, 'targetNamespace'], message: `must differ from the plan's namespace ${plan.namespace}: a drill must never restore over production` });
    }
  });
}

/** The schema of a whole config file. Parse with `parseConfig` (config/load.ts) for messages. */
export const Config = ConfigShape.superRefine(checkCrossReferences);
export type Config = z.infer<typeof Config>;
/** The config as written, before defaults are applied. */
export type ConfigInput = z.input<typeof Config>;

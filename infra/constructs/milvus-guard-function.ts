/**
 * A milvus-guard Lambda function: `NodejsFunction` with the project's bundling and runtime
 * settings in one place, the installation config baked into the bundle, and an environment
 * typed and checked by the function's own environment schema (lambdas/<fn>/environment.ts).
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { z } from 'zod';
import type { Config } from '../../core/config/schema.js';
import { METRICS_NAMESPACE } from '../../core/monitoring/metrics.js';
import { BAKED_CONFIG_GLOBAL } from '../../lambdas/shared/baked-config.js';
import { checkEnvironment, type PowertoolsKey } from '../../lambdas/shared/environment.js';
import type { ClusterNetwork } from './cluster-network.js';

/** A function's environment as its schema takes it, minus the Powertools keys set from props. */
export type FunctionEnvironment<S extends z.ZodType> = Omit<z.input<S>, PowertoolsKey>;

export interface MilvusGuardFunctionProps<S extends z.ZodType> {
  /** The Lambda entry point, e.g. `lambdas/prepare/index.ts` (it exports `handler`). */
  readonly entry: string;
  /**
   * The export of `entry` that handles invocations. Functions that share an entry share its
   * bundle (CDK bundles an entry once per synth) and differ only in this.
   * @default 'handler'
   */
  readonly handler?: string;
  /** The function's environment schema; the environment is checked against it at synth. */
  readonly environmentSchema: S;
  /** The function's own environment variables, typed by its schema. */
  readonly environment: FunctionEnvironment<S>;
  /** The parsed installation config, baked into the bundle (see lambdas/shared/baked-config.ts). */
  readonly config: Config;
  /** The Powertools service name (log field `service`, metric dimension `service`). */
  readonly serviceName: string;
  /**
   * The function's description.
   * @default - none
   */
  readonly description?: string;
  /**
   * The role the function runs as. Workflow functions share one role, the one the EKS access
   * entries name.
   * @default - a new role with only the log and tracing permissions
   */
  readonly role?: iam.IRole;
  /**
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * How long the function's logs are kept.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Runs the function in a VPC (for clusters whose API endpoint is private).
   * @default - not in a VPC
   */
  readonly network?: ClusterNetwork;
  /**
   * The key the function's log group is encrypted with.
   * @default - CloudWatch Logs' own encryption
   */
  readonly logEncryptionKey?: kms.IKey;
}

/** Makes the CommonJS `require` that lazy `require("fs")` calls in ESM bundles expect. */
const CREATE_REQUIRE_BANNER = "import { createRequire as __mgCreateRequire } from 'node:module'; const require = __mgCreateRequire(import.meta.url);";

export class MilvusGuardFunction<S extends z.ZodType> extends Construct implements iam.IGrantable {
  readonly function: NodejsFunction;
  readonly logGroup: logs.LogGroup;
  readonly role: iam.IRole;
  readonly grantPrincipal: iam.IPrincipal;

  constructor(scope: Construct, id: string, props: MilvusGuardFunctionProps<S>) {
    super(scope, id);
    const environment: Record<string, string> = {
      POWERTOOLS_SERVICE_NAME: props.serviceName,
      // The one namespace the alarms and the dashboard read (core/monitoring/metrics.ts).
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      ...Object.fromEntries(Object.entries(props.environment as Record<string, unknown>).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)])),
    };
    // The same check the function makes at cold start, made before anything deploys.
    const checked = checkEnvironment(props.environmentSchema, environment);
    if (!checked.ok) throw new Error(`${this.node.path}: the environment does not match its schema:\n  - ${checked.problems.join('\n  - ')}`);

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
      ...(props.logEncryptionKey ? { encryptionKey: props.logEncryptionKey } : {}),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = props.role ?? new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: `Runs ${this.node.path}` });
    // Only this log group, instead of the AWSLambdaBasicExecutionRole managed policy (logs:* on *).
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: props.handler ?? 'handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      timeout: props.timeout ?? Duration.seconds(30),
      memorySize: props.memorySize ?? 512,
      tracing: lambda.Tracing.ACTIVE,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      ...(props.description ? { description: props.description } : {}),
      environment,
      ...(props.network ? { vpc: props.network.vpc, vpcSubnets: props.network.subnets, securityGroups: props.network.securityGroups } : {}),
      bundling: {
        // Local esbuild only: there is no Docker engine where this synthesizes, and none needed.
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node22',
        // Prefer the ESM builds of dependencies (@middy/core and @kubernetes/client-node ship only ESM).
        mainFields: ['module', 'main'],
        banner: CREATE_REQUIRE_BANNER,
        // Bundle the pinned AWS SDK rather than use the runtime's copy, whose version drifts.
        externalModules: [],
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        define: { [BAKED_CONFIG_GLOBAL]: JSON.stringify(props.config) },
      },
    });
    this.grantPrincipal = this.function.grantPrincipal;
  }

  /** Lets `grantee` invoke this function. */
  grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return this.function.grantInvoke(grantee);
  }
}

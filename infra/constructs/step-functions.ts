/**
 * The Lambda functions behind the workflows' Tasks: one per state that has a handler in the
 * step tables (core/workflow/steps.ts), built from its bundle under lambdas/, told which state
 * it serves (`MILVUS_GUARD_STEP`), and given exactly as long as the Task that invokes it waits
 * (`taskFunctionTimeouts`). `taskFunctions` hands a workflow its functions by placeholder.
 * Functions run as the shared workflow role, unless their bundle gives a state a role of its
 * own (the retention steps, each with only what it does).
 */
import { fileURLToPath } from 'node:url';
import { Duration } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { z } from 'zod';
import type { Config } from '../../core/config/schema.js';
import { bundleOf, bundleStates, handlerStates, placeholderOf, stepRow, type StepBundle, type WorkflowSteps } from '../../core/workflow/steps.js';
import { STEP_VARIABLE } from '../../lambdas/shared/environment.js';
import type { ClusterNetwork } from './cluster-network.js';
import { MilvusGuardFunction, type FunctionEnvironment } from './milvus-guard-function.js';
import { taskFunctionTimeouts } from './workflow.js';

/** How the functions of one bundle are made. */
export interface StepBundleProps<S extends z.ZodType = z.ZodType> {
  /** The bundle's environment schema (lambdas/<bundle>/environment.ts). */
  readonly environmentSchema: S;
  /** Its environment, but for the state each function serves (set per function). */
  readonly environment: Omit<FunctionEnvironment<S>, typeof STEP_VARIABLE>;
  /**
   * Whether its functions call the Kubernetes API, and so run in the clusters' VPC when a
   * cluster's endpoint is private: all of them (`true`), none (`false`), or those of the states
   * listed.
   */
  readonly callsKubernetes: boolean | readonly string[];
  /**
   * The role of a state's function, by state, for a bundle whose functions each get exactly
   * the permissions their step needs (retention). A state not named runs as the construct's
   * `role`.
   * @default - every function of the bundle runs as the construct's `role`
   */
  readonly roles?: Readonly<Record<string, iam.IRole>>;
}

export interface StepFunctionsProps {
  /** The workflows whose Tasks get functions. */
  readonly workflows: readonly WorkflowSteps[];
  /** How each bundle the workflows use is made. */
  readonly bundles: Readonly<Partial<Record<StepBundle, StepBundleProps>>>;
  /** The parsed installation config, baked into every bundle. */
  readonly config: Config;
  /**
   * The role the functions run as (the identity the EKS access entries name), but for those a
   * bundle's `roles` names.
   */
  readonly role: iam.IRole;
  /**
   * @default - CloudWatch Logs' own encryption
   */
  readonly logEncryptionKey?: kms.IKey;
  /**
   * The VPC placement of the functions that call Kubernetes.
   * @default - not in a VPC
   */
  readonly network?: ClusterNetwork;
}

/** Whether a bundle's schema asks which state a function serves. */
const servesManyStates = (schema: z.ZodType) => STEP_VARIABLE in ((schema as unknown as { shape?: object }).shape ?? {});

const capitalized = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** Whether the function of `state`, from a bundle made with `b`, calls Kubernetes. */
const callsKubernetes = (b: StepBundleProps, state: string) => (typeof b.callsKubernetes === 'boolean' ? b.callsKubernetes : b.callsKubernetes.includes(state));

/** The entry point of a bundle: `lambdas/<bundle>/index.ts`. */
const bundleEntry = (bundle: StepBundle) => fileURLToPath(new URL(`../../lambdas/${bundle}/index.ts`, import.meta.url));

export class StepFunctions extends Construct {
  /** Every function, by `<workflow>/<state>` (`backup/CheckFlush`). */
  readonly functions: ReadonlyMap<string, MilvusGuardFunction<z.ZodType>>;

  constructor(scope: Construct, id: string, props: StepFunctionsProps) {
    super(scope, id);
    const functions = new Map<string, MilvusGuardFunction<z.ZodType>>();
    // A role or a VPC placement for a state the bundle does not serve is a typo that would
    // otherwise leave that state's function with the shared role or outside the VPC.
    for (const [bundle, b] of Object.entries(props.bundles) as [StepBundle, StepBundleProps][]) {
      const named = [...Object.keys(b.roles ?? {}), ...(typeof b.callsKubernetes === 'boolean' ? [] : b.callsKubernetes)];
      if (named.length === 0) continue;
      const served = bundleStates(bundle, ...props.workflows);
      const unknown = named.filter((state) => !served.includes(state));
      if (unknown.length) throw new Error(`${this.node.path}: the ${bundle} bundle's props name [${unknown.join(', ')}], which no function of lambdas/${bundle} serves; it serves [${served.join(', ')}]`);
    }
    for (const w of props.workflows) {
      const timeouts = taskFunctionTimeouts(w.workflow);
      for (const state of handlerStates(w)) {
        const bundle = bundleOf(w, state);
        const b = props.bundles[bundle];
        if (!b) throw new Error(`${this.node.path}: state ${state} of the ${w.workflow} workflow is built from lambdas/${bundle}, which has no bundle props`);
        const timeout = timeouts.get(placeholderOf(state));
        if (!timeout) throw new Error(`core/workflow/steps.ts lists ${state} in the ${w.workflow} workflow, but no Task of statemachines/${w.workflow}.asl.yaml invokes \${${placeholderOf(state)}}`);
        functions.set(
          `${w.workflow}/${state}`,
          new MilvusGuardFunction(this, `${capitalized(w.workflow)}-${state}`, {
            entry: bundleEntry(bundle),
            description: `${capitalized(w.workflow)} workflow, ${state}: ${stepRow(w, state).does}`,
            environmentSchema: b.environmentSchema,
            // A bundle of one state (prepare) has no variable to choose by.
            environment: { ...b.environment, ...(servesManyStates(b.environmentSchema) ? { [STEP_VARIABLE]: state } : {}) } as FunctionEnvironment<z.ZodType>,
            config: props.config,
            serviceName: props.config.name,
            role: b.roles?.[state] ?? props.role,
            ...(props.logEncryptionKey ? { logEncryptionKey: props.logEncryptionKey } : {}),
            ...(callsKubernetes(b, state) && props.network ? { network: props.network } : {}),
            timeout,
          }),
        );
      }
    }
    // The bundles' event handlers: no Task invokes them, a rule about the workflow's executions does.
    for (const w of props.workflows) {
      for (const event of w.events ?? []) {
        const b = props.bundles[w.bundle]!;
        functions.set(
          `${w.workflow}/${event.name}`,
          new MilvusGuardFunction(this, `${capitalized(w.workflow)}-${event.name}`, {
            entry: bundleEntry(w.bundle),
            description: `${capitalized(w.workflow)} workflow, ${event.name}: ${event.does}`,
            environmentSchema: b.environmentSchema,
            environment: { ...b.environment, [STEP_VARIABLE]: event.name } as FunctionEnvironment<z.ZodType>,
            config: props.config,
            serviceName: props.config.name,
            role: b.roles?.[event.name] ?? props.role,
            ...(props.logEncryptionKey ? { logEncryptionKey: props.logEncryptionKey } : {}),
            ...(callsKubernetes(b, event.name) && props.network ? { network: props.network } : {}),
            timeout: Duration.minutes(5),
          }),
        );
      }
    }
    this.functions = functions;
  }

  /** The function of event handler `name` of workflow `w` (`RecoverExecution`). */
  eventFunction(w: WorkflowSteps, name: string): lambda.IFunction {
    const fn = this.functions.get(`${w.workflow}/${name}`);
    if (!fn) throw new Error(`${this.node.path}: the ${w.workflow} workflow has no event handler ${name}`);
    return fn.function;
  }

  /** The functions of `w`'s Tasks, by the placeholder each Task's `Resource` names. */
  taskFunctions(w: WorkflowSteps): Record<string, lambda.IFunction> {
    return Object.fromEntries(handlerStates(w).map((state) => [placeholderOf(state), this.functions.get(`${w.workflow}/${state}`)!.function]));
  }
}

/**
 * Workflow definitions live as ASL files under `statemachines/` (`<name>.asl.yaml`), with
 * `${Placeholders}` where a deployment-specific value goes (a Lambda ARN, a state machine ARN).
 * `loadDefinition` expands a file into the ASL JSON that runs: YAML anchors resolved and each
 * `Retry: NAME` replaced by the named policy of ./policies.ts. CDK deploys that JSON and lets
 * CloudFormation substitute the placeholders (`DefinitionSubstitutions`); the local runner fills
 * them with `fillPlaceholders`. Both read the same file the same way, so what runs locally is
 * what deploys, and what the console shows.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { RETRY_POLICIES } from './policies.js';

/** `${Name}` as CloudFormation's DefinitionSubstitutions understands it. */
const PLACEHOLDER = /\$\{([A-Za-z][A-Za-z0-9_]*)\}/g;
const WORKFLOW_NAME = /^[a-z][a-z0-9-]*$/;
const SUFFIX = '.asl.yaml';

/** A definition whose placeholders do not match the values given for them. */
export class DefinitionPlaceholderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DefinitionPlaceholderError';
  }
}

/** The directory that holds the workflow definitions (`statemachines/`). */
function definitionsDirectory(): string {
  return fileURLToPath(new URL('../../statemachines/', import.meta.url));
}

/** The absolute path of workflow `name`'s definition, e.g. `backup` → `.../backup.asl.yaml`. */
function definitionPath(name: string): string {
  if (!WORKFLOW_NAME.test(name)) throw new RangeError(`"${name}" is not a workflow name; expected lowercase letters, digits and "-" such as backup`);
  return `${definitionsDirectory()}${name}${SUFFIX}`;
}

/** A definition file that cannot be expanded: bad YAML, or an unknown retry policy. */
export class DefinitionError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DefinitionError';
  }
}

/**
 * The ASL JSON of workflow `name` (`statemachines/<name>.asl.yaml`), with its placeholders
 * unfilled: anchors resolved, named retry policies expanded (see the module documentation).
 * Throws naming the workflows that exist when there is no such file, and `DefinitionError`
 * naming the state when a `Retry` names no policy.
 */
export function loadDefinition(name: string): string {
  let text: string;
  try {
    text = readFileSync(definitionPath(name), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const known = readdirSync(definitionsDirectory())
      .filter((file) => file.endsWith(SUFFIX))
      .map((file) => file.slice(0, -SUFFIX.length));
    throw new RangeError(`there is no workflow "${name}"; defined: ${known.join(', ') || 'none'}`, { cause: err });
  }
  return JSON.stringify(expandDefinition(text, `statemachines/${name}${SUFFIX}`), null, 2);
}

/** Parses a definition's YAML and expands its named retry policies; `file` names it in errors. */
export function expandDefinition(yamlText: string, file: string): { States: Record<string, AslState> } {
  let definition: { States?: Record<string, AslState> };
  try {
    definition = parse(yamlText) as typeof definition;
  } catch (err) {
    throw new DefinitionError(`${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  if (!definition?.States) throw new DefinitionError(`${file} has no States`);
  const valid = definition as { States: Record<string, AslState> };
  walkStates(valid, (state, body) => {
    if (typeof body.Retry !== 'string') return;
    const policy = Object.hasOwn(RETRY_POLICIES, body.Retry) ? RETRY_POLICIES[body.Retry as keyof typeof RETRY_POLICIES] : undefined;
    if (!policy) throw new DefinitionError(`${file}: state ${state} has Retry: ${String(body.Retry)}, which is no retry policy; use one of ${Object.keys(RETRY_POLICIES).join(', ')}`);
    (body as { Retry: unknown }).Retry = policy;
  });
  return valid;
}

/** The placeholder names in a definition, sorted and without repeats: `["PrepareFunctionArn"]`. */
export function placeholdersOf(definitionText: string): string[] {
  return [...new Set([...definitionText.matchAll(PLACEHOLDER)].map((m) => m[1]!))].sort();
}

/**
 * Replaces every `${Name}` in a definition with `values[Name]`, as CloudFormation does with
 * DefinitionSubstitutions (plain text replacement, so values must not need JSON escaping).
 * Throws `DefinitionPlaceholderError` naming every placeholder left without a value and every
 * value that no placeholder asks for (a misspelt key would otherwise go unnoticed), and when a
 * value would break the JSON string it lands in.
 */
export function fillPlaceholders(definitionText: string, values: Readonly<Record<string, string>>): string {
  const wanted = placeholdersOf(definitionText);
  const unfilled = wanted.filter((name) => !Object.hasOwn(values, name));
  const unknown = Object.keys(values).filter((name) => !wanted.includes(name)).sort();
  const problems = [
    ...(unfilled.length ? [`no value for ${unfilled.map((n) => `\${${n}}`).join(', ')}`] : []),
    ...(unknown.length ? [`no placeholder for ${unknown.join(', ')} (placeholders: ${wanted.join(', ') || 'none'})`] : []),
  ];
  const unsafe = Object.entries(values).filter(([, value]) => /["\\\u0000-\u001f]/.test(value));
  if (unsafe.length) problems.push(`values must not contain quotes, backslashes or control characters: ${unsafe.map(([k]) => k).join(', ')}`);
  if (problems.length) throw new DefinitionPlaceholderError(`cannot fill the definition's placeholders: ${problems.join('; ')}`);
  return definitionText.replace(PLACEHOLDER, (_match, name: string) => values[name]!);
}

/** A state of a definition, as far as the tools that read definitions care. */
export interface AslState {
  readonly Type: string;
  readonly Resource?: string;
  readonly Parameters?: Record<string, unknown>;
  readonly TimeoutSeconds?: number;
  /** An array of retriers, or in a file the name of a retry policy. */
  readonly Retry?: readonly unknown[] | string;
  readonly Catch?: readonly unknown[];
  readonly ItemProcessor?: { readonly States: Readonly<Record<string, AslState>> };
  readonly Iterator?: { readonly States: Readonly<Record<string, AslState>> };
  readonly Branches?: readonly { readonly States: Readonly<Record<string, AslState>> }[];
}

/**
 * Visits every state of a parsed definition, depth first: the top-level states and those of
 * Map item processors (and the older `Iterator`) and Parallel branches, with the name of each.
 * The one walker the deployment, the local runner and the CLI share.
 */
export function walkStates(definition: { readonly States: Readonly<Record<string, AslState>> }, visit: (name: string, state: AslState) => void): void {
  for (const [name, state] of Object.entries(definition.States)) {
    visit(name, state);
    const nested = state.ItemProcessor ?? state.Iterator;
    if (nested) walkStates(nested, visit);
    for (const branch of state.Branches ?? []) walkStates(branch, visit);
  }
}

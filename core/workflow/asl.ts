/**
 * Workflow definitions live as ASL files under `statemachines/`, with `${Placeholders}` where a
 * deployment-specific value goes (a Lambda ARN, a table name). CDK deploys the file and lets
 * CloudFormation substitute the placeholders (`DefinitionSubstitutions`); the local runner
 * fills them with `fillPlaceholders`. Both read the same file, so what runs locally is what
 * deploys.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** `${Name}` as CloudFormation's DefinitionSubstitutions understands it. */
const PLACEHOLDER = /\$\{([A-Za-z][A-Za-z0-9_]*)\}/g;
const WORKFLOW_NAME = /^[a-z][a-z0-9-]*$/;
const SUFFIX = '.asl.json';

/** A definition whose placeholders do not match the values given for them. */
export class DefinitionPlaceholderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DefinitionPlaceholderError';
  }
}

/** The directory that holds the workflow definitions (`statemachines/`). */
export function definitionsDirectory(): string {
  return fileURLToPath(new URL('../../statemachines/', import.meta.url));
}

/** The absolute path of workflow `name`'s definition, e.g. `backup` → `.../backup.asl.json`. */
export function definitionPath(name: string): string {
  if (!WORKFLOW_NAME.test(name)) throw new RangeError(`"${name}" is not a workflow name; expected lowercase letters, digits and "-" such as backup`);
  return `${definitionsDirectory()}${name}${SUFFIX}`;
}

/**
 * Reads the definition of workflow `name` (`statemachines/<name>.asl.json`) as text, with its
 * placeholders unfilled. Throws naming the workflows that exist when there is no such file.
 */
export function loadDefinition(name: string): string {
  try {
    return readFileSync(definitionPath(name), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const known = readdirSync(definitionsDirectory())
      .filter((file) => file.endsWith(SUFFIX))
      .map((file) => file.slice(0, -SUFFIX.length));
    throw new RangeError(`there is no workflow "${name}"; defined: ${known.join(', ') || 'none'}`, { cause: err });
  }
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
  readonly Retry?: readonly unknown[];
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

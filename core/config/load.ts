/**
 * Reading the installation config: YAML text in, a validated `Config` out, or a `ConfigError`
 * that lists every problem in the file as `path.in.file (line N): what is wrong and what is
 * allowed`. This module also resolves a plan's or a drill's references (cluster, vault,
 * policies, hooks) so the workflows never look names up themselves.
 *
 * Three layers report problems, and all of them are collected before anything is thrown:
 * 1. YAML syntax errors and warnings (duplicate keys, unresolved tags), with line and column;
 * 2. the zod schema (`ConfigShape`), its issues turned into paths and house-style messages;
 * 3. the cross-section checks (`crossReferenceIssues`), run on the raw document when the shape
 *    failed, so a misspelt vault name is reported together with a mistyped weekday.
 *
 * YAML merge keys (`<<: *defaults`) work, and top-level keys starting with `x-` are ignored (as in
 * Compose files) so shared settings have somewhere to live.
 */
import { readFile } from 'node:fs/promises';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { InvalidInputError, UserError } from '../errors.js';
import {
  ConfigShape,
  crossReferenceIssues,
  type Cluster,
  type Config,
  type Drill,
  type Hook,
  type LabelSelector,
  type Plan,
  type RetentionBody,
  type ScheduleBody,
  type Vault,
} from './schema.js';

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** One problem in a config file. `path` is empty for problems that have none (bad YAML). */
export interface ConfigIssue {
  /** Where in the file, in `plans[0].retention.dayOfWeek` notation; `''` when unknown. */
  readonly path: string;
  /** 1-based line of the offending node, when the file locates it. */
  readonly line?: number;
  /** 1-based column, for YAML syntax problems. */
  readonly column?: number;
  /** What is wrong and what is allowed. */
  readonly message: string;
}

/** Renders an issue as one line: `plans[0].vault (line 50): names vault "x" that ...`. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? '' : issue.column === undefined ? `line ${issue.line}` : `line ${issue.line}, column ${issue.column}`;
  if (issue.path === '') return where ? `${where}: ${issue.message}` : issue.message;
  return `${issue.path}${where ? ` (${where})` : ''}: ${issue.message}`;
}

/**
 * A config file that cannot be used. `problems` holds every problem as one line each (see
 * `formatIssue`), `issues` the same problems as data (for `config validate -o json`).
 */
export class ConfigError extends InvalidInputError {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    super(`config file ${file}`, issues.map(formatIssue));
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** A plan, drill or other name that the config does not define. */
export class UnknownNameError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownNameError';
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

type Segment = string | number;

/**
 * Parses the YAML text of a config file and validates it. Throws `ConfigError` listing every
 * problem, each as `path.in.file (line N): message`; returns the config with defaults applied.
 * `file` is only used to name the file in messages.
 */
export function parseConfig(text: string, file: string): Config {
  const lineCounter = new LineCounter();
  // Merge keys (`<<: *defaults`) are a common way to share hook or policy settings in YAML.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: true });
  const lineOf = (offset: number): { line: number; column: number } => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  const syntax: ConfigIssue[] = [...doc.errors, ...doc.warnings].map((e) => ({
    // A duplicate key or an unknown tag sits at a node with a path; a syntax error is only
    // where the parser noticed it, and a path there would mislead.
    path: e.code === 'DUPLICATE_KEY' || e.code === 'TAG_RESOLVE_FAILED' ? formatPath(pathAt(doc, e.pos[0])) : '',
    ...lineOf(e.pos[0]),
    message: yamlMessage(e.code, e.message),
  }));
  if (syntax.length > 0) throw new ConfigError(file, syntax);

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    // e.g. an alias to an anchor that does not exist; yaml reports it only when converting.
    throw new ConfigError(file, [{ path: '', message: `${(err as Error).message}; fix the YAML` }], { cause: err });
  }
  if (raw === undefined || raw === null) {
    throw new ConfigError(file, [{ path: '', message: 'the file is empty; expected a mapping with at least clusters, vaults and plans (see examples/production.yaml)' }]);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [{ path: '', line: 1, message: `expected a mapping with clusters, vaults, plans, ...; got ${describeTyped(raw)}` }]);
  }

  // Top-level keys starting with `x-` are extension fields, as in Compose files: a place for
  // YAML anchors (`x-hook-defaults: &defaults`) that merge keys then reuse.
  const sections = Object.fromEntries(Object.entries(raw).filter(([key]) => !key.startsWith('x-')));
  const shape = ConfigShape.safeParse(sections, { reportInput: true, error: defaultMessage });
  const flat: FlatIssue[] = shape.success ? [] : shape.error.issues.flatMap((issue) => flatten(issue, []));
  flat.push(...crossReferenceIssues(shape.success ? shape.data : sections));

  if (flat.length === 0 && shape.success) return shape.data;
  const issues = flat.map((f) => ({ path: formatPath(f.path), ...locate(doc, lineCounter, f.path), message: f.message }));
  // Report in file order, so the list reads top to bottom next to the file.
  throw new ConfigError(file, dedupe(issues).sort((x, y) => (x.line ?? 0) - (y.line ?? 0)));
}

/**
 * Reads and parses a config file. A file that cannot be read (missing, a directory, no
 * permission) is a `ConfigError` naming the file, like any other problem with it.
 */
export async function loadConfigFile(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'the file does not exist; pass the path of your config file (see examples/production.yaml)'
        : code === 'EISDIR'
          ? 'is a directory; pass the path of a YAML file'
          : code === 'EACCES'
            ? 'cannot be read (permission denied)'
            : `cannot be read: ${(err as Error).message}`;
    throw new ConfigError(path, [{ path: '', message: why }], { cause: err });
  }
  return parseConfig(text, path);
}

// ---------------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------------

/** A hook as a plan uses it: the hook's definition and where it runs. */
export interface ResolvedHook {
  readonly hook: Hook;
  readonly podSelector: LabelSelector;
  readonly containerRegex?: string;
}

/** A plan with every reference resolved. */
export interface ResolvedPlan {
  readonly plan: Plan;
  readonly cluster: Cluster;
  readonly vault: Vault;
  /** Absent for a plan that only runs on demand. */
  readonly schedule?: ScheduleBody;
  readonly retention: RetentionBody;
  /** The plan's exec hooks in order; `items` is empty when the plan has none. */
  readonly hooks: { readonly mode: 'Sequential' | 'Parallel'; readonly items: readonly ResolvedHook[] };
}

/** A drill with its plan resolved and its defaults applied. */
export interface ResolvedDrill {
  readonly drill: Drill;
  readonly plan: ResolvedPlan;
  readonly schedule: ScheduleBody;
  /** The drill's `targetCluster`, else the plan's cluster. */
  readonly targetCluster: Cluster;
  /** The drill's `targetNamespace`, else `<plan namespace>-drill`. */
  readonly targetNamespace: string;
}

/** Finds `name` in `list` or throws an `UnknownNameError` that lists the names defined. */
function find<T extends { name: string }>(list: readonly T[], name: string, what: string, where: string): T {
  const found = list.find((item) => item.name === name);
  if (found) return found;
  const known = list.map((item) => item.name);
  throw new UnknownNameError(
    `${what} "${name}" is not defined in the config${where}; ${known.length ? `defined: ${known.join(', ')}` : 'none is defined'}`,
  );
}

function scheduleOf(config: Config, schedule: string | ScheduleBody, where: string): ScheduleBody {
  if (typeof schedule !== 'string') return schedule;
  const { name: _name, ...body } = find(config.schedulePolicies, schedule, 'schedule policy', where);
  return body;
}

/**
 * Resolves the plan named `planName`: its cluster, vault, schedule and retention (named
 * policies or inline bodies alike) and its hooks. Throws `UnknownNameError` (a `UserError`)
 * naming the plan when it does not exist, or naming the reference when the config was not
 * validated by `parseConfig` and a reference dangles.
 */
export function resolvePlan(config: Config, planName: string): ResolvedPlan {
  const plan = find(config.plans, planName, 'plan', '');
  const where = ` (referenced by plan ${plan.name})`;
  const retention =
    typeof plan.retention === 'string'
      ? (({ name: _name, ...body }) => body)(find(config.retentionPolicies, plan.retention, 'retention policy', where))
      : plan.retention;
  return {
    plan,
    cluster: find(config.clusters, plan.cluster, 'cluster', where),
    vault: find(config.vaults, plan.vault, 'vault', where),
    ...(plan.schedule === undefined ? {} : { schedule: scheduleOf(config, plan.schedule, where) }),
    retention,
    hooks: {
      mode: plan.hooks?.mode ?? 'Sequential',
      items: (plan.hooks?.items ?? []).map((item) => ({
        hook: find(config.hooks, item.hook, 'hook', where),
        podSelector: item.podSelector,
        ...(item.containerRegex === undefined ? {} : { containerRegex: item.containerRegex }),
      })),
    },
  };
}

/**
 * Resolves the drill named `drillName`: its plan (see `resolvePlan`), its schedule, and the
 * cluster and namespace it restores into, with the defaults applied (the plan's cluster,
 * `<plan namespace>-drill`). Throws `UnknownNameError` naming the drill when it does not exist.
 */
export function resolveDrill(config: Config, drillName: string): ResolvedDrill {
  const drill = find(config.drills, drillName, 'drill', '');
  const where = ` (referenced by drill ${drill.name})`;
  const plan = resolvePlan(config, find(config.plans, drill.plan, 'plan', where).name);
  return {
    drill,
    plan,
    schedule: scheduleOf(config, drill.schedule, where),
    targetCluster: drill.targetCluster === undefined ? plan.cluster : find(config.clusters, drill.targetCluster, 'cluster', where),
    targetNamespace: drill.targetNamespace ?? `${plan.plan.namespace}-drill`,
  };
}

// ---------------------------------------------------------------------------------------------
// zod issues → paths and messages
// ---------------------------------------------------------------------------------------------

interface FlatIssue {
  readonly path: Segment[];
  readonly message: string;
}

type Issue = z.core.$ZodIssue & { input?: unknown };

const UNKNOWN_KEY = 'unknown key; allowed: ';

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

/**
 * The messages for issues whose schema does not say more. Schema-level messages take
 * precedence over this per-parse map (zod's rule), so it only fills the gaps.
 */
function defaultMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${TYPE_WORDS[issue.expected] ?? issue.expected}`;
    case 'unrecognized_keys': {
      const def = (issue.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def;
      return `${UNKNOWN_KEY}${Object.keys(def?.shape ?? {}).join(', ')}`;
    }
    case 'too_small':
    case 'too_big': {
      const bound = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
      const least = issue.code === 'too_small' ? 'least' : 'most';
      if (issue.origin === 'array') return `must list at ${least} ${bound} item${bound === 1 ? '' : 's'}`;
      if (issue.origin === 'string') return bound === 1 && least === 'least' ? 'must not be empty' : `must be at ${least} ${bound} characters`;
      return issue.inclusive === false
        ? `must be ${least === 'least' ? 'greater' : 'less'} than ${bound}`
        : `must be at ${least} ${bound}`;
    }
    case 'invalid_format':
      return `must be a valid ${issue.format}`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}`
        : `must be one of ${issue.values.map((v) => String(v)).join(', ')}`;
    default:
      return undefined;
  }
}

/** Turns one zod issue (possibly a union or record issue with nested ones) into flat issues. */
function flatten(issue: Issue, base: Segment[]): FlatIssue[] {
  const path = [...base, ...(issue.path as Segment[])];
  const hasInput = 'input' in issue && issue.input !== undefined;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = issue.message.startsWith(UNKNOWN_KEY) ? issue.message.slice(UNKNOWN_KEY.length).split(', ') : [];
      return issue.keys.map((key) => {
        const guess = closest(key, allowed);
        const hint = guess ? `did you mean ${guess}? ` : '';
        return { path: [...path, key], message: `unknown key; ${hint}allowed: ${allowed.join(', ')}` };
      });
    }
    case 'invalid_union': {
      if (issue.errors.length === 0) {
        // A discriminated union whose discriminator matched no option; zod already put the
        // discriminator key on the path.
        const disc = (issue as { discriminator?: string }).discriminator;
        const value = disc && hasInput ? (issue.input as Record<string, unknown>)[disc] : undefined;
        return [{ path, message: value === undefined ? `is required; ${issue.message}` : `${issue.message}; got ${describe(value)}` }];
      }
      // Each branch that failed only because the value has the wrong type (a number where a
      // name or a mapping is expected) says nothing useful; the one that accepted the type
      // has the real problems, with their full paths.
      const candidates = issue.errors.filter((branch) => !(branch.length === 1 && isTypeMismatch(branch[0]!)));
      if (candidates.length === 0) {
        return [{ path, message: hasInput ? `${issue.message}; got ${describeTyped(issue.input)}` : `is required; ${issue.message}` }];
      }
      const best = candidates.reduce((a, b) => (b.length < a.length ? b : a));
      return best.flatMap((nested) => flatten(nested as Issue, path));
    }
    case 'invalid_key': {
      const reasons = issue.issues.map((nested) => nested.message).join('; ');
      return [{ path, message: `is not a valid key: ${reasons}` }];
    }
    case 'invalid_element': {
      const reasons = issue.issues.map((nested) => nested.message).join('; ');
      return [{ path, message: reasons }];
    }
    case 'invalid_type':
    case 'invalid_value':
      if (!hasInput) return [{ path, message: `is required; ${issue.message}` }];
      if (issue.code === 'invalid_type') return [{ path, message: `${issue.message}; got ${describeTyped(issue.input)}` }];
      return [{ path, message: withInput(issue.message, issue.input) }];
    case 'too_small':
    case 'too_big':
    case 'invalid_format':
    case 'not_multiple_of':
      return [{ path, message: hasInput ? withInput(issue.message, issue.input) : issue.message }];
    default:
      return [{ path, message: issue.message }];
  }
}

function isTypeMismatch(issue: z.core.$ZodIssue): boolean {
  return issue.path.length === 0 && (issue.code === 'invalid_type' || (issue.code === 'invalid_value' && !('input' in issue)));
}

/** Appends the offending value unless the message already quotes it. */
function withInput(message: string, input: unknown): string {
  const shown = describe(input);
  return message.includes(shown) ? message : `${message}; got ${shown}`;
}

/** A value as the user wrote it, for messages: `"Funday"`, `-1`, `a list of 3 items`. */
function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (value === null) return 'an empty value';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

/** Like `describe`, naming the type too: type errors are about the type. */
function describeTyped(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return `the boolean ${value}`;
  return describe(value);
}

/** The allowed key closest to a misspelt one, when it is close enough to be the likely intent. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of allowed) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (!best || distance < best.distance) best = { name, distance };
  }
  return best && best.distance <= Math.max(1, Math.floor(best.name.length / 3)) ? best.name : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = formatIssue(issue);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Paths and lines
// ---------------------------------------------------------------------------------------------

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** `['plans', 0, 'retention', 'dayOfWeek']` → `plans[0].retention.dayOfWeek`. */
export function formatPath(path: readonly Segment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (out === '') out = segment;
    else if (IDENTIFIER.test(segment)) out += `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/**
 * The line of the node at `path`, or of its deepest existing ancestor when the path ends at a
 * missing key (then the line of the mapping that lacks it). Map keys point at the key's line.
 */
function locate(doc: Document, lineCounter: LineCounter, path: readonly Segment[]): { line?: number } {
  let node: unknown = doc.contents;
  let offset = isNodeWithRange(node) ? node.range[0] : undefined;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      if (isNodeWithRange(pair.key)) offset = pair.key.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number' && node.items[segment] !== undefined) {
      node = node.items[segment];
      if (isNodeWithRange(node)) offset = node.range[0];
    } else {
      break;
    }
  }
  return offset === undefined ? {} : { line: lineCounter.linePos(offset).line };
}

/** The path of the innermost node whose source contains `offset` (for YAML errors). */
function pathAt(doc: Document, offset: number): Segment[] {
  const path: Segment[] = [];
  let node: unknown = doc.contents;
  for (;;) {
    if (isMap(node)) {
      const pair = node.items.find((p) => contains(p.key, offset) || contains(p.value, offset));
      if (!pair || !isScalar(pair.key)) return path;
      path.push(String(pair.key.value));
      if (contains(pair.key, offset)) return path;
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => contains(item, offset));
      if (index < 0) return path;
      path.push(index);
      node = node.items[index];
    } else {
      return path;
    }
  }
}

function isNodeWithRange(node: unknown): node is Node & { range: [number, number, number] } {
  return node !== null && typeof node === 'object' && !isPair(node) && Array.isArray((node as { range?: unknown }).range);
}

function contains(node: unknown, offset: number): boolean {
  return isNodeWithRange(node) && node.range[0] <= offset && offset < node.range[2];
}

/** yaml's messages, with the codes users hit most often said in plain words. */
function yamlMessage(code: string, message: string): string {
  if (code === 'DUPLICATE_KEY') return 'duplicate key; a key may appear only once in a mapping (remove or merge the repeated one)';
  if (code === 'MULTIPLE_DOCS') return 'the file holds more than one YAML document ("---"); a config is a single document';
  return `${message.replace(/ at line \d+, column \d+:[\s\S]*$/, '')} (YAML syntax)`;
}

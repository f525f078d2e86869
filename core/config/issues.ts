/**
 * Problems in a config file and how they read: a `ConfigIssue` is one problem at a path
 * (`plans[0].retention.dayOfWeek`), a `ConfigError` all of a file's problems. zod's issues become
 * house-style messages here — what is wrong and what is allowed, the offending value, and for a
 * misspelt key the likely intent ("did you mean timeZone?").
 */
import { closest, distance } from 'fastest-levenshtein';
import type { z } from 'zod';
import { InvalidInputError } from '../errors.js';

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

export type Segment = string | number;

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

/** A problem at a path in the document, before it is located on a line. */
export interface FlatIssue {
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
export function defaultMessage(issue: z.core.$ZodRawIssue): string | undefined {
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
export function flatten(issue: Issue, base: Segment[]): FlatIssue[] {
  const path = [...base, ...(issue.path as Segment[])];
  const hasInput = 'input' in issue && issue.input !== undefined;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = issue.message.startsWith(UNKNOWN_KEY) ? issue.message.slice(UNKNOWN_KEY.length).split(', ') : [];
      return issue.keys.map((key) => {
        const guess = suggestion(key, allowed);
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
export function describeTyped(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return `the boolean ${value}`;
  return describe(value);
}

/** The allowed key closest to a misspelt one, when it is close enough to be the likely intent. */
function suggestion(key: string, allowed: readonly string[]): string | undefined {
  if (allowed.length === 0) return undefined;
  const typed = key.toLowerCase();
  const guess = closest(typed, allowed.map((name) => name.toLowerCase()));
  const name = allowed.find((n) => n.toLowerCase() === guess)!;
  return distance(typed, guess) <= Math.max(1, Math.floor(name.length / 3)) ? name : undefined;
}

/** The issues without repeats (the shape and the cross-section checks may report one problem twice). */
export function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = formatIssue(issue);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
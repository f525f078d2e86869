/**
 * Reading the installation config: YAML text in, a validated `Config` out, or a `ConfigError`
 * that lists every problem in the file as `path.in.file (line N): what is wrong and what is
 * allowed` (the messages come from issues.ts).
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
import { ConfigError, dedupe, defaultMessage, describeTyped, flatten, formatPath, type ConfigIssue, type FlatIssue, type Segment } from './issues.js';
import { ConfigShape, crossReferenceIssues, type Config } from './schema.js';

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
// Lines of paths, paths of lines
// ---------------------------------------------------------------------------------------------

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
/**
 * The importer's bookkeeping: every source object is wrapped in a `TrackedObject`, the mapper
 * marks each field it reads as carried over (`take`), deliberately not carried over with a
 * reason (`drop`), or server-set and irrelevant (`ignore`), and `leftovers` reports every leaf
 * none of those covers. A new Trilio field therefore shows up as "not carried over" instead of
 * vanishing.
 */
import { formatPath } from '../config/issues.js';

/** Something the user should know about the import. */
export interface ImportWarning {
  /** The source file; absent for warnings about the generated config itself. */
  readonly file?: string;
  /** The source object, as `Kind/name`. */
  readonly object?: string;
  /** A path in the source object (`spec.hookConfig.podReadyWaitSeconds`) or in the generated config. */
  readonly path?: string;
  readonly message: string;
}

export type Path = readonly (string | number)[];
export type Loose = Record<string, unknown>;

interface Mark {
  readonly path: Path;
  /** Set for `drop`: why the value is not carried over. */
  readonly reason?: string;
}

/** The value at `path` in `root`, or undefined where the path leaves the document. */
export function valueAt(root: unknown, path: Path): unknown {
  let value = root;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[segment];
  }
  return value;
}

function isPrefix(prefix: Path, path: Path): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => segment === path[i]);
}

/** Whether a value carries anything worth reporting (empty strings, lists and maps do not). */
function hasContent(value: unknown): boolean {
  if (value === undefined || value === null || value === '') return false;
  if (Array.isArray(value)) return value.some(hasContent);
  if (typeof value === 'object') return Object.values(value).some(hasContent);
  return true;
}

/** Server-set metadata: not configuration, so not worth a warning. */
export const SERVER_METADATA = ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'selfLink', 'managedFields', 'finalizers', 'ownerReferences', 'deletionTimestamp', 'deletionGracePeriodSeconds'];

/** One source object and the record of which of its fields were used. */
export class TrackedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string | undefined;
  private readonly marks: Mark[] = [];

  constructor(
    readonly file: string,
    readonly raw: Loose,
    position: string,
  ) {
    this.apiVersion = typeof raw['apiVersion'] === 'string' ? raw['apiVersion'] : '';
    this.kind = typeof raw['kind'] === 'string' ? raw['kind'] : '';
    const name = valueAt(raw, ['metadata', 'name']);
    this.name = typeof name === 'string' && name !== '' ? name : `(unnamed, ${position})`;
    const namespace = valueAt(raw, ['metadata', 'namespace']);
    this.namespace = typeof namespace === 'string' ? namespace : undefined;
  }

  get label(): string {
    return `${this.kind || 'object'}/${this.name}`;
  }

  /** Reads a value without marking it. */
  peek(...path: Path): unknown {
    return valueAt(this.raw, path);
  }

  /** Reads a value and marks it, and everything under it, as carried over. */
  take(...path: Path): unknown {
    this.marks.push({ path });
    return valueAt(this.raw, path);
  }

  /** Marks a value as deliberately not carried over; reported with `reason` when present. */
  drop(path: Path, reason: string): void {
    this.marks.push({ path, reason });
  }

  /** Marks server-set values (uid, status, ...) as irrelevant. */
  ignore(...path: Path): void {
    this.marks.push({ path });
  }

  warning(path: Path | undefined, message: string): ImportWarning {
    return { file: this.file, object: this.label, ...(path && path.length ? { path: formatPath(path) } : {}), message };
  }

  /**
   * Every value that was dropped (with its reason) or never looked at, in document order. A
   * subtree nobody looked into is reported once, at its root.
   */
  leftovers(): ImportWarning[] {
    const out: ImportWarning[] = [];
    const reported = new Set<Mark>();
    const visit = (value: unknown, path: Path): void => {
      if (!hasContent(value)) return;
      let cover: Mark | undefined;
      for (const mark of this.marks) if (isPrefix(mark.path, path) && (!cover || mark.path.length > cover.path.length)) cover = mark;
      if (cover) {
        if (cover.reason !== undefined && !reported.has(cover)) {
          reported.add(cover);
          out.push(this.warning(cover.path, `not carried over: ${cover.reason}`));
        }
        return;
      }
      const lookedInside = this.marks.some((mark) => isPrefix(path, mark.path));
      if (lookedInside && value !== null && typeof value === 'object') {
        if (Array.isArray(value)) value.forEach((item, i) => visit(item, [...path, i]));
        else for (const [key, item] of Object.entries(value)) visit(item, [...path, key]);
        return;
      }
      const shown = value !== null && typeof value === 'object' ? '' : ` (value ${JSON.stringify(value)})`;
      out.push(this.warning(path, `not carried over: milvus-guard has no equivalent of this field${shown}`));
    };
    visit(this.raw, []);
    return out;
  }
}

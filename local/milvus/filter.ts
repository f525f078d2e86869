/**
 * A documented subset of Milvus's boolean expressions (the `filter` of `entities/query` and
 * `entities/delete`), with a small tokenizer and a recursive-descent parser. Supported:
 *
 * - comparisons `==`, `!=`, `<`, `<=`, `>`, `>=` between a scalar field and a literal (either side);
 * - `field in [l1, l2, …]` and `field not in […]`;
 * - `and` / `&&`, `or` / `||`, `not` / `!`, parentheses (`not` binds tighter than `and`, which
 *   binds tighter than `or`, as in Milvus's grammar, internal/parser/planparserv2/Plan.g4);
 * - literals: integers (int64, kept exact, may be negative), floats, strings in double or single quotes with
 *   backslash escapes, `true`/`false` (any case, as Plan.g4's `BooleanConstant`).
 *
 * Anything else (`like`, arithmetic, JSON paths, functions, a vector field, an unknown field, a
 * type mismatch) is refused with a {@link FilterError}; the simulator answers it the way Milvus
 * answers an expression its planner cannot build (see simulator.ts).
 */

/** A scalar value of a row or a literal. int64 values are bigints. */
export type ScalarValue = bigint | number | string | boolean;

/** What the filter may refer to: the collection's scalar fields and their kinds. */
export type FieldKinds = ReadonlyMap<string, 'int' | 'float' | 'string' | 'bool' | 'vector'>;

/** Why an expression cannot be parsed; the message is the part after Milvus's `error: `. */
export class FilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FilterError';
  }
}

type Token =
  | { t: 'ident'; v: string }
  | { t: 'int'; v: bigint }
  | { t: 'float'; v: number }
  | { t: 'string'; v: string }
  | { t: 'bool'; v: boolean }
  | { t: 'op'; v: string }
  | { t: 'kw'; v: 'and' | 'or' | 'not' | 'in' }
  | { t: 'end' };

const KEYWORDS: Record<string, 'and' | 'or' | 'not' | 'in'> = { and: 'and', or: 'or', not: 'not', in: 'in', AND: 'and', OR: 'or', NOT: 'not', IN: 'in' };

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (['==', '!=', '<=', '>=', '&&', '||'].includes(two)) {
      out.push(two === '&&' ? { t: 'kw', v: 'and' } : two === '||' ? { t: 'kw', v: 'or' } : { t: 'op', v: two });
      i += 2;
      continue;
    }
    if ('<>()[],'.includes(ch)) {
      out.push({ t: 'op', v: ch });
      i++;
      continue;
    }
    if (ch === '!') {
      out.push({ t: 'kw', v: 'not' });
      i++;
      continue;
    }
    if (ch === '"' || ch === "'") {
      let j = i + 1;
      let s = '';
      while (j < text.length && text[j] !== ch) {
        if (text[j] === '\\' && j + 1 < text.length) {
          const e = text[j + 1]!;
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          j += 2;
        } else s += text[j++]!;
      }
      if (j >= text.length) throw new FilterError(`token recognition error at: '${text.slice(i)}'`);
      out.push({ t: 'string', v: s });
      i = j + 1;
      continue;
    }
    // A minus sign where an operand starts is part of a negative literal (Plan.g4's unary minus on a constant).
    const prev = out[out.length - 1];
    const operandStarts = prev === undefined || prev.t === 'kw' || (prev.t === 'op' && prev.v !== ')' && prev.v !== ']');
    const num = /^-?(?:\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+)/.exec(text.slice(i));
    if (num && (ch !== '-' || operandStarts)) {
      const lit = num[0];
      out.push(/^-?\d+$/.test(lit) ? { t: 'int', v: BigInt(lit) } : { t: 'float', v: Number(lit) });
      i += lit.length;
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (word) {
      const w = word[0];
      if (/^(true|false)$/i.test(w)) out.push({ t: 'bool', v: w.toLowerCase() === 'true' });
      else if (KEYWORDS[w]) out.push({ t: 'kw', v: KEYWORDS[w]! });
      else out.push({ t: 'ident', v: w });
      i += w.length;
      continue;
    }
    throw new FilterError(`token recognition error at: '${ch}'`);
  }
  out.push({ t: 'end' });
  return out;
}

/** A parsed filter: call it with a row's field values. */
export type Predicate = (row: ReadonlyMap<string, ScalarValue>) => boolean;

type Operand = { kind: 'field'; name: string } | { kind: 'literal'; value: ScalarValue };
type Node =
  | { n: 'and' | 'or'; a: Node; b: Node }
  | { n: 'not'; a: Node }
  | { n: 'cmp'; op: string; l: Operand; r: Operand }
  | { n: 'in'; field: string; values: ScalarValue[]; negate: boolean }
  | { n: 'operand'; o: Operand };

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.pos]!;
  }

  private next(): Token {
    return this.tokens[this.pos++]!;
  }

  private isOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }

  private isKw(v: string): boolean {
    const t = this.peek();
    return t.t === 'kw' && t.v === v;
  }

  private expect(v: string): void {
    if (!this.isOp(v)) throw new FilterError(`mismatched input '${describe(this.peek())}' expecting '${v}'`);
    this.pos++;
  }

  parse(): Node {
    const node = this.or();
    if (this.peek().t !== 'end') throw new FilterError(`extraneous input '${describe(this.peek())}'`);
    return node;
  }

  private or(): Node {
    let node = this.and();
    while (this.isKw('or')) {
      this.pos++;
      node = { n: 'or', a: node, b: this.and() };
    }
    return node;
  }

  private and(): Node {
    let node = this.not();
    while (this.isKw('and')) {
      this.pos++;
      node = { n: 'and', a: node, b: this.not() };
    }
    return node;
  }

  private not(): Node {
    if (this.isKw('not')) {
      this.pos++;
      return { n: 'not', a: this.not() };
    }
    return this.comparison();
  }

  private comparison(): Node {
    if (this.isOp('(')) {
      this.pos++;
      const inner = this.or();
      this.expect(')');
      return inner;
    }
    const left = this.operand();
    const t = this.peek();
    if (t.t === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.v)) {
      this.pos++;
      return { n: 'cmp', op: t.v, l: left, r: this.operand() };
    }
    const negate = this.isKw('not') && this.tokens[this.pos + 1]?.t === 'kw' && (this.tokens[this.pos + 1] as { v: string }).v === 'in';
    if (negate || this.isKw('in')) {
      if (negate) this.pos++;
      this.pos++;
      if (left.kind !== 'field') throw new FilterError(`the left side of 'in' must be a field`);
      return { n: 'in', field: left.name, values: this.list(), negate };
    }
    return { n: 'operand', o: left };
  }

  private list(): ScalarValue[] {
    this.expect('[');
    const values: ScalarValue[] = [];
    if (!this.isOp(']')) {
      for (;;) {
        const o = this.operand();
        if (o.kind !== 'literal') throw new FilterError(`'in' takes a list of constants, got field ${o.name}`);
        values.push(o.value);
        if (!this.isOp(',')) break;
        this.pos++;
      }
    }
    this.expect(']');
    return values;
  }

  private operand(): Operand {
    const t = this.next();
    switch (t.t) {
      case 'ident':
        return { kind: 'field', name: t.v };
      case 'int':
      case 'float':
      case 'string':
      case 'bool':
        return { kind: 'literal', value: t.v };
      case 'op':
        throw new FilterError(`mismatched input '${t.v}'`);
      default:
        throw new FilterError(`mismatched input '${describe(t)}'`);
    }
  }
}

function describe(t: Token): string {
  return t.t === 'end' ? '<EOF>' : String((t as { v: unknown }).v);
}

function kindOfLiteral(v: ScalarValue): 'int' | 'float' | 'string' | 'bool' {
  return typeof v === 'bigint' ? 'int' : typeof v === 'number' ? 'float' : typeof v === 'string' ? 'string' : 'bool';
}

const compatible = (field: string, literal: string) =>
  field === literal || (field === 'float' && literal === 'int') || (field === 'int' && literal === 'float');

function compare(a: ScalarValue, b: ScalarValue): number {
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if ((typeof a === 'bigint' || typeof a === 'number') && (typeof b === 'bigint' || typeof b === 'number')) {
    const x = Number(a);
    const y = Number(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Parses `text` against the collection's fields and returns the predicate. Throws
 * {@link FilterError} for anything outside the subset, an unknown field, a vector field, or
 * a literal of the wrong type for its field.
 */
export function parseFilter(text: string, fields: FieldKinds): Predicate {
  const root = new Parser(tokenize(text)).parse();
  const fieldKind = (name: string) => {
    const kind = fields.get(name);
    if (!kind) throw new FilterError(`field ${name} not exist`);
    if (kind === 'vector') throw new FilterError(`cannot use vector field ${name} in an expression`);
    return kind;
  };
  const check = (node: Node): void => {
    switch (node.n) {
      case 'and':
      case 'or':
        check(node.a);
        check(node.b);
        return;
      case 'not':
        check(node.a);
        return;
      case 'operand':
        if (node.o.kind === 'field' && fieldKind(node.o.name) === 'bool') return;
        throw new FilterError(`predicate is not a boolean expression`);
      case 'in': {
        const kind = fieldKind(node.field);
        for (const v of node.values) {
          if (!compatible(kind, kindOfLiteral(v))) throw new FilterError(`value '${String(v)}' in list cannot be casted to ${kind}`);
        }
        return;
      }
      case 'cmp': {
        const { l, r } = node;
        if (l.kind === 'field' && r.kind === 'field') {
          const a = fieldKind(l.name);
          const b = fieldKind(r.name);
          if (!compatible(a, b)) throw new FilterError(`comparisons between ${a} and ${b} are not supported`);
          return;
        }
        if (l.kind === 'literal' && r.kind === 'literal') throw new FilterError('comparisons between two constants are not supported');
        const f = l.kind === 'field' ? l : (r as { name: string });
        const lit = l.kind === 'literal' ? l.value : (r as { value: ScalarValue }).value;
        const kind = fieldKind(f.name);
        if (!compatible(kind, kindOfLiteral(lit))) throw new FilterError(`comparisons between ${kind} and ${kindOfLiteral(lit)} are not supported`);
        if (kind === 'bool' && !['==', '!='].includes(node.op)) throw new FilterError(`${node.op} is not supported on bool`);
        return;
      }
    }
  };
  check(root);
  const value = (o: Operand, row: ReadonlyMap<string, ScalarValue>): ScalarValue | undefined => (o.kind === 'literal' ? o.value : row.get(o.name));
  const evaluate = (node: Node, row: ReadonlyMap<string, ScalarValue>): boolean => {
    switch (node.n) {
      case 'and':
        return evaluate(node.a, row) && evaluate(node.b, row);
      case 'or':
        return evaluate(node.a, row) || evaluate(node.b, row);
      case 'not':
        return !evaluate(node.a, row);
      case 'operand':
        return value(node.o, row) === true;
      case 'in': {
        const v = row.get(node.field);
        const found = v !== undefined && node.values.some((x) => compare(v, x) === 0);
        return node.negate ? !found : found;
      }
      case 'cmp': {
        const a = value(node.l, row);
        const b = value(node.r, row);
        if (a === undefined || b === undefined) return false;
        const c = compare(a, b);
        return node.op === '==' ? c === 0 : node.op === '!=' ? c !== 0 : node.op === '<' ? c < 0 : node.op === '<=' ? c <= 0 : node.op === '>' ? c > 0 : c >= 0;
      }
    }
  };
  return (row) => evaluate(root, row);
}

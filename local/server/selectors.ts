/**
 * Label and field selectors with the real API server's grammar: equality (`a=b`, `a==b`,
 * `a!=b`), sets (`a in (x,y)`, `a notin (z)`) and existence (`a`, `!a`). Field selectors
 * support the fields the server supports for every kind (`metadata.name`,
 * `metadata.namespace`) plus `status.phase`, `spec.nodeName` and Secret `type`.
 */
import { DNS_SUBDOMAIN_PATTERN } from '../../core/kube/names.js';
import { badRequest } from './status.js';

type Requirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!' };

/** A parsed label selector; `matches` tests an object's labels. */
export interface LabelSelector {
  matches(labels: Record<string, string> | undefined): boolean;
  readonly empty: boolean;
}

const KEY = new RegExp(`^(${DNS_SUBDOMAIN_PATTERN}/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`);
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Splits on commas that are not inside parentheses. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else current += ch;
  }
  terms.push(current);
  return terms.map((t) => t.trim()).filter((t) => t !== '');
}

function checkKey(key: string, text: string): string {
  if (!KEY.test(key)) throw badRequest(`unable to parse requirement: invalid label key "${key}" in selector "${text}"`);
  return key;
}

function checkValue(value: string, text: string): string {
  if (value.length > 63 || !VALUE.test(value)) throw badRequest(`unable to parse requirement: invalid label value "${value}" in selector "${text}"`);
  return value;
}

/** Parses a `labelSelector` query parameter; throws a 400 Status on bad syntax. */
export function parseLabelSelector(text: string | null | undefined): LabelSelector {
  const requirements: Requirement[] = [];
  for (const term of splitTerms(text ?? '')) {
    let m: RegExpMatchArray | null;
    if ((m = term.match(/^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/))) {
      const values = m[3]!.split(',').map((v) => checkValue(v.trim(), text!));
      requirements.push({ key: checkKey(m[1]!, text!), op: m[2] as 'in' | 'notin', values });
    } else if ((m = term.match(/^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/))) {
      const value = checkValue(m[3]!, text!);
      requirements.push({ key: checkKey(m[1]!, text!), op: m[2] === '!=' ? 'notin' : 'in', values: [value] });
    } else if ((m = term.match(/^!\s*(\S+)$/))) {
      requirements.push({ key: checkKey(m[1]!, text!), op: '!' });
    } else if ((m = term.match(/^(\S+)$/))) {
      requirements.push({ key: checkKey(m[1]!, text!), op: 'exists' });
    } else {
      throw badRequest(`unable to parse requirement: found '${term}', expected: one of '=', '!=', 'in', 'notin' in selector "${text}"`);
    }
  }
  return {
    empty: requirements.length === 0,
    matches(labels) {
      const l = labels ?? {};
      return requirements.every((r) => {
        const has = Object.prototype.hasOwnProperty.call(l, r.key);
        switch (r.op) {
          case 'exists':
            return has;
          case '!':
            return !has;
          case 'in':
            return has && r.values.includes(l[r.key]!);
          case 'notin':
            // As in Kubernetes: `a!=b` and `a notin (b)` match objects without the label.
            return !has || !r.values.includes(l[r.key]!);
        }
      });
    },
  };
}

/** A parsed field selector; `matches` tests a whole object. */
export interface FieldSelector {
  matches(object: Record<string, any>): boolean;
}

const FIELDS: Record<string, (o: Record<string, any>) => string | undefined> = {
  'metadata.name': (o) => o.metadata?.name,
  'metadata.namespace': (o) => o.metadata?.namespace,
  'status.phase': (o) => o.status?.phase,
  'spec.nodeName': (o) => o.spec?.nodeName,
  type: (o) => o.type,
};

/** Parses a `fieldSelector` query parameter (`f=v`, `f==v`, `f!=v`, comma-separated). */
export function parseFieldSelector(text: string | null | undefined): FieldSelector {
  const terms = splitTerms(text ?? '').map((term) => {
    const m = term.match(/^([^=!]+)(==|=|!=)(.*)$/);
    if (!m) throw badRequest(`invalid selector: '${text}'; can't understand '${term}'`);
    const read = FIELDS[m[1]!.trim()];
    if (!read) throw badRequest(`field label not supported: ${m[1]!.trim()}`);
    return { read, negate: m[2] === '!=', value: m[3]!.trim() };
  });
  return { matches: (o) => terms.every((t) => ((t.read(o) ?? '') === t.value) !== t.negate) };
}

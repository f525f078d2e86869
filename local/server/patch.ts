/**
 * PATCH bodies: JSON merge patch (RFC 7386) and JSON patch (RFC 6902). Strategic merge patch
 * is applied as a merge patch: for the fields our tools patch (labels, annotations, replicas,
 * status) the result is the same; lists are replaced rather than merged by key.
 */
import { badRequest, KubeApiError } from './status.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Applies an RFC 7386 merge patch: `null` deletes a key, objects merge, everything else replaces. */
export function mergePatch(target: unknown, patch: unknown): any {
  if (!isObject(patch)) return structuredClone(patch);
  const result: Record<string, Json> = isObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

interface Operation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: Json;
}

const pointer = (path: string): string[] => {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`the JSON pointer "${path}" does not start with "/"`);
  return path.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
};

function parentOf(doc: any, tokens: string[], path: string): { parent: any; key: string } {
  let parent = doc;
  for (const t of tokens.slice(0, -1)) {
    parent = Array.isArray(parent) ? parent[Number(t)] : parent?.[t];
    if (parent === undefined || parent === null || typeof parent !== 'object') throw fail(`doc is missing path: "${path}"`);
  }
  return { parent, key: tokens[tokens.length - 1]! };
}

const fail = (message: string): KubeApiError => {
  const err = badRequest(message);
  // The real server answers an unappliable JSON patch with 422 Invalid.
  err.status.code = 422;
  err.status.reason = 'Invalid';
  return err;
};

function read(doc: any, path: string): Json {
  let v = doc;
  for (const t of pointer(path)) {
    v = Array.isArray(v) ? v[Number(t)] : v?.[t];
    if (v === undefined) throw fail(`doc is missing path: "${path}"`);
  }
  return v;
}

function write(doc: any, path: string, value: Json, insert: boolean): any {
  const tokens = pointer(path);
  if (tokens.length === 0) return value;
  const { parent, key } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) {
    const index = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(index) || index < 0 || index > parent.length) throw fail(`array index out of range in "${path}"`);
    if (insert) parent.splice(index, 0, value);
    else parent[index] = value;
  } else {
    if (!insert && !(key in parent)) throw fail(`doc is missing key: "${path}"`);
    parent[key] = value;
  }
  return doc;
}

function remove(doc: any, path: string): any {
  const tokens = pointer(path);
  const { parent, key } = parentOf(doc, tokens, path);
  if (Array.isArray(parent)) parent.splice(Number(key), 1);
  else {
    if (!(key in parent)) throw fail(`doc is missing key: "${path}"`);
    delete parent[key];
  }
  return doc;
}

/** Applies an RFC 6902 JSON patch; a failed `test` or a missing path is a 422. */
export function jsonPatch(target: unknown, operations: unknown): any {
  if (!Array.isArray(operations)) throw badRequest('a JSON patch must be an array of operations');
  let doc: any = structuredClone(target);
  for (const op of operations as Operation[]) {
    switch (op.op) {
      case 'add':
        doc = write(doc, op.path, structuredClone(op.value ?? null), true);
        break;
      case 'replace':
        doc = write(doc, op.path, structuredClone(op.value ?? null), false);
        break;
      case 'remove':
        doc = remove(doc, op.path);
        break;
      case 'copy':
        doc = write(doc, op.path, structuredClone(read(doc, op.from ?? '')), true);
        break;
      case 'move': {
        const value = read(doc, op.from ?? '');
        doc = write(remove(doc, op.from ?? ''), op.path, value, true);
        break;
      }
      case 'test':
        if (JSON.stringify(read(doc, op.path)) !== JSON.stringify(op.value)) throw fail(`testing value ${op.path} failed`);
        break;
      default:
        throw badRequest(`unknown JSON patch operation "${(op as Operation).op}"`);
    }
  }
  return doc;
}

/**
 * PATCH bodies: JSON merge patch (RFC 7386) and JSON patch (RFC 6902, by `fast-json-patch`).
 * Strategic merge patch is applied as a merge patch: for the fields our tools patch (labels,
 * annotations, replicas, status) the result is the same; lists are replaced rather than merged
 * by key. The merge patch stays hand-written: it is the RFC's own ten-line algorithm, and deep-merge
 * libraries do not delete a key on `null` as RFC 7386 requires.
 */
import jsonpatch, { type JsonPatchError, type Operation } from 'fast-json-patch';
import { badRequest } from './status.js';

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

/** Errors in the patch document itself; the real server answers them with 400, not 422. */
const MALFORMED = new Set(['SEQUENCE_NOT_AN_ARRAY', 'OPERATION_NOT_AN_OBJECT', 'OPERATION_OP_INVALID', 'OPERATION_PATH_INVALID']);

/** Applies an RFC 6902 JSON patch; a failed `test` or a missing path is a 422. */
export function jsonPatch(target: unknown, operations: unknown): any {
  try {
    return jsonpatch.applyPatch(target, operations as Operation[], true, false).newDocument;
  } catch (err) {
    if (!(err instanceof jsonpatch.JsonPatchError)) throw err;
    // The library's message also prints the whole document: keep its first line and the operation.
    const { name, operation } = err as JsonPatchError;
    const message = `${err.message.split('\n')[0]}${operation ? ` (${operation.op} "${operation.path}")` : ''}`;
    if (MALFORMED.has(name)) throw badRequest(message);
    const unappliable = badRequest(message);
    // The real server answers an unappliable JSON patch with 422 Invalid.
    unappliable.status.code = 422;
    unappliable.status.reason = 'Invalid';
    throw unappliable;
  }
}

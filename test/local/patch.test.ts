import { describe, expect, it } from '@jest/globals';
import { jsonPatch, mergePatch } from '../../local/server/patch.js';
import { KubeApiError } from '../../local/server/status.js';

// PATCH bodies as the real API server applies them, and the Status codes it answers with.

const statusOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof KubeApiError) return { code: err.status.code, reason: err.status.reason, message: err.message };
    throw err;
  }
  throw new Error('expected the patch to fail');
};

const configMap = () => ({ metadata: { name: 'cm', labels: { a: '1' } }, data: { x: '1' }, list: [1, 2] });

describe('JSON patch (RFC 6902)', () => {
  it('applies operations in order without changing the stored object', () => {
    const stored = configMap();

    const patched = jsonPatch(stored, [
      { op: 'replace', path: '/data/x', value: '2' },
      { op: 'add', path: '/list/-', value: 3 },
      { op: 'move', from: '/metadata/labels/a', path: '/metadata/labels/b' },
    ]);

    expect(patched).toEqual({ metadata: { name: 'cm', labels: { b: '1' } }, data: { x: '2' }, list: [1, 2, 3] });
    expect(stored).toEqual(configMap());
  });

  it('answers 422 Invalid when a test operation fails', () => {
    expect(statusOf(() => jsonPatch(configMap(), [{ op: 'test', path: '/data/x', value: '2' }]))).toMatchObject({ code: 422, reason: 'Invalid' });
  });

  it('answers 422 Invalid for a path the object does not have', () => {
    expect(statusOf(() => jsonPatch(configMap(), [{ op: 'replace', path: '/spec/replicas', value: 2 }]))).toMatchObject({ code: 422, reason: 'Invalid' });
  });

  it('names the failed operation but not the whole object in the message', () => {
    const { message } = statusOf(() => jsonPatch(configMap(), [{ op: 'remove', path: '/data/missing' }]));

    expect(message).toContain('remove "/data/missing"');
    expect(message).not.toContain('\n');
  });

  it('answers 400 for a body that is not a list of operations', () => {
    expect(statusOf(() => jsonPatch(configMap(), { op: 'add', path: '/a', value: 1 }))).toMatchObject({ code: 400, reason: 'BadRequest' });
  });

  it('answers 400 for a path that is not a JSON pointer', () => {
    expect(statusOf(() => jsonPatch(configMap(), [{ op: 'add', path: 'data/y', value: '1' }]))).toMatchObject({ code: 400, reason: 'BadRequest' });
  });

  it('answers 400 for an operation RFC 6902 does not define', () => {
    expect(statusOf(() => jsonPatch(configMap(), [{ op: 'merge', path: '/data', value: {} }]))).toMatchObject({ code: 400, reason: 'BadRequest' });
  });
});

describe('merge patch (RFC 7386)', () => {
  it('deletes a key patched to null, merges objects and replaces lists', () => {
    expect(mergePatch(configMap(), { metadata: { labels: { a: null, b: '2' } }, list: [9] })).toEqual({
      metadata: { name: 'cm', labels: { b: '2' } },
      data: { x: '1' },
      list: [9],
    });
  });
});

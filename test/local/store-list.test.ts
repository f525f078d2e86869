/**
 * The local API server's object store: `list` with `where` picks objects before it copies them,
 * keeps the server's order, and still hands out copies (what the controllers rely on).
 */
import { describe, expect, it } from '@jest/globals';
import { ObjectStore } from '../../local/server/store.js';
import { typeOf } from '../../local/server/resources.js';

const POD = typeOf('Pod');
const NAMESPACE = typeOf('Namespace');

function storeWithPods(): ObjectStore {
  const store = new ObjectStore({ now: () => new Date('2026-12-01T00:00:00Z') });
  for (const ns of ['a', 'b']) store.create(NAMESPACE, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  for (const [ns, name, app] of [['b', 'p2', 'x'], ['a', 'p3', 'y'], ['a', 'p1', 'x'], ['b', 'p0', 'x']] as const) {
    store.create(POD, { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels: { app } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
  }
  return store;
}

describe('ObjectStore.list', () => {
  it('keeps only what `where` picks, in one namespace or all, sorted by namespace and name', () => {
    const store = storeWithPods();
    const app = (o: { metadata: { labels?: Record<string, string> } }) => o.metadata.labels?.app === 'x';

    expect(store.list(POD, undefined, app).map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual(['a/p1', 'b/p0', 'b/p2']);
    expect(store.list(POD, 'b', app).map((p) => p.metadata.name)).toEqual(['p0', 'p2']);
    expect(store.list(POD, 'a').map((p) => p.metadata.name)).toEqual(['p1', 'p3']);
  });

  it('hands out copies, never the stored objects', () => {
    const store = storeWithPods();

    const [first] = store.list(POD, 'a', () => true);
    first!.metadata.labels!.app = 'changed';

    expect(store.get(POD, 'a', 'p1')?.metadata.labels?.app).toBe('x');
  });
});

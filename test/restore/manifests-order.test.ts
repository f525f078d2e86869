/**
 * applyManifests creates one step of RESTORE_ORDER at a time and the objects of a step at once,
 * against an API server on 127.0.0.1 that records when each create arrives and answers a step's
 * creates only once all of them have arrived: a restore that created them one after another
 * would wait for an answer that never comes (the test fails on its timeout), and one that
 * started the next step early would be seen doing so.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { makeKubeClients } from '../../core/kube/connect.js';
import { applyManifests, readManifests } from '../../core/restore/manifests.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { manifestKey } from '../../core/vault/layout.js';
import type { SecretSealer } from '../../core/backup/sealer.js';
import type { PreparedRestore } from '../../core/workflow/restore-state.js';

const BACKUP = 'b-20260301-020000';
const FROM = 'vector-db';
const TO = 'vector-db-restored';

/** What the backup captured: three ConfigMaps, two Services, a Milvus CR. */
const OBJECTS = [
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'milvus-user', namespace: FROM }, data: { 'user.yaml': 'a: 1' } },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'hooks', namespace: FROM }, data: { x: 'y' } },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'tuning', namespace: FROM }, data: { z: 'w' } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'milvus', namespace: FROM }, spec: { ports: [{ port: 19530 }] } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'milvus-metrics', namespace: FROM }, spec: { ports: [{ port: 9091 }] } },
  { apiVersion: 'milvus.io/v1beta1', kind: 'Milvus', metadata: { name: 'milvus', namespace: FROM }, spec: { mode: 'cluster' } },
];
/** Creates per step, in RESTORE_ORDER. */
const STEPS = [3, 2, 1];

let server: Server;
const events: string[] = [];
let held: { name: string; res: ServerResponse }[] = [];
let step = 0;

function answer(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    if (req.method !== 'POST') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404 }));
      return;
    }
    const object = JSON.parse(body) as { kind: string; metadata: { name: string } };
    const name = `${object.kind}/${object.metadata.name}`;
    events.push(`arrived ${name}`);
    held.push({ name, res });
    // A step's creates are answered together, once all of them are here.
    if (held.length === STEPS[step]) {
      for (const h of held) {
        events.push(`answered ${h.name}`);
        h.res.writeHead(201, { 'content-type': 'application/json' }).end(body);
      }
      held = [];
      step += 1;
    }
  });
}

beforeAll(async () => {
  server = createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const noSealer: SecretSealer = {
  seal: () => Promise.reject(new Error('not used')),
  open: () => Promise.reject(new Error('not used')),
} as unknown as SecretSealer;

async function vaultWithObjects(): Promise<InMemoryVaultStore> {
  const vault = new InMemoryVaultStore();
  for (const o of OBJECTS) {
    const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0]! : 'core';
    await vault.put(manifestKey(BACKUP, { group, kind: o.kind, namespace: FROM, name: o.metadata.name }), Buffer.from(stringify(o)));
  }
  return vault;
}

describe('applying a backup\'s manifests', () => {
  it('creates the objects of one step of the order at once, and the next step only after', async () => {
    const kc = new KubeConfig();
    const port = (server.address() as AddressInfo).port;
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const restore = { restoreId: 'r1', backupId: BACKUP, from: { namespace: FROM }, to: { namespace: TO }, storageClassMap: {} } as unknown as PreparedRestore;

    const summary = await applyManifests({ vault: await vaultWithObjects(), sealer: noSealer }, makeKubeClients(kc), restore);

    expect(summary).toEqual({ created: 6, existing: 0, secrets: 0 });
    const at = (e: string): number => events.indexOf(e);
    // All three ConfigMaps were in flight together, before any was answered.
    for (const name of ['milvus-user', 'hooks', 'tuning']) expect(at(`arrived ConfigMap/${name}`)).toBeLessThan(at('answered ConfigMap/milvus-user'));
    // No Service before every ConfigMap was created, no Milvus before every Service.
    const lastConfigMap = Math.max(...['milvus-user', 'hooks', 'tuning'].map((n) => at(`answered ConfigMap/${n}`)));
    expect(Math.min(at('arrived Service/milvus'), at('arrived Service/milvus-metrics'))).toBeGreaterThan(lastConfigMap);
    expect(at('arrived Milvus/milvus')).toBeGreaterThan(Math.max(at('answered Service/milvus'), at('answered Service/milvus-metrics')));
  }, 10_000);

  it('reads the manifests in key order', async () => {
    const objects = await readManifests({ vault: await vaultWithObjects(), sealer: noSealer }, BACKUP);
    const keys = OBJECTS.map((o) => manifestKey(BACKUP, { group: o.apiVersion.includes('/') ? o.apiVersion.split('/')[0]! : 'core', kind: o.kind, namespace: FROM, name: o.metadata.name }));
    const byKey = [...keys].sort();
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(byKey.map((k) => OBJECTS[keys.indexOf(k)]!).map((o) => `${o.kind}/${o.metadata.name}`));
  });
});

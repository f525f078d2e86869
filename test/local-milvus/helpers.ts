/** Test helpers: temporary volume directories and request builders for the simulated Milvus. */
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from '@jest/globals';
import type { MilvusAnswer, MilvusCall } from '../../core/milvus/transport.js';
import { seedMilvusData, type CollectionSpec, type MilvusSimulator, type MilvusVolumes, type ProxyRequest } from '../../local/milvus/index.js';

/** Answers a MilvusClient transport's call from the simulator, as the service proxy would carry it. */
export async function simulatorAnswer(sim: MilvusSimulator, call: MilvusCall): Promise<MilvusAnswer> {
  const res = await sim.handle({
    port: call.port === 'rest' ? 19530 : 9091,
    method: call.method,
    path: call.path,
    query: new URLSearchParams(Object.entries(call.query ?? {}).map(([k, v]): [string, string] => [k, String(v)])),
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(call.body ?? ''),
  });
  return { status: res.status, body: String(res.body) };
}

/** A settable clock for a simulator's `now`. */
export function clock(start = '2026-03-01T10:00:00Z'): { now: () => Date; advance: (seconds: number) => void } {
  let t = new Date(start).getTime();
  return { now: () => new Date(t), advance: (s) => (t += s * 1000) };
}

export interface TempVolumes {
  root: string;
  volumes: MilvusVolumes;
  cleanup: () => Promise<void>;
}

/** Three etcd member and four MinIO drive directories, like a cluster-mode Milvus CR. */
export async function tempVolumes(): Promise<TempVolumes> {
  const root = await mkdtemp(join(tmpdir(), 'local-milvus-'));
  return {
    root,
    volumes: {
      etcdDirs: [0, 1, 2].map((i) => join(root, `data-production-milvus-etcd-${i}`)),
      minioDirs: [0, 1, 2, 3].map((i) => join(root, `export-production-milvus-minio-${i}`)),
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** A new temporary directory holding a copy of `source`'s volumes, as a faithful restore leaves them. */
export async function copyOf(source: TempVolumes): Promise<TempVolumes> {
  const copy = await tempVolumes();
  await rm(copy.root, { recursive: true, force: true });
  await cp(source.root, copy.root, { recursive: true });
  return copy;
}

/**
 * Seeds `collections` once for the calling file and gives each test its own copy of that pristine
 * seed: `use` receives the copy before each test, and the copy is removed after it.
 */
export function seededCopyPerTest(collections: CollectionSpec[], use: (copy: TempVolumes) => void): void {
  let pristine: TempVolumes;
  let copy: TempVolumes;
  beforeAll(async () => {
    pristine = await tempVolumes();
    await seedMilvusData(pristine.volumes, { collections });
  });
  afterAll(async () => {
    await pristine.cleanup();
  });
  beforeEach(async () => {
    copy = await copyOf(pristine);
    use(copy);
  });
  afterEach(async () => {
    await copy.cleanup();
  });
}

/** Every file under `dir`: relative path → SHA-256 of the content and the mtime. */
export async function fingerprint(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const s = await stat(p);
      if (e.isDirectory()) {
        out.set(`${relative(dir, p)}/`, `mtime=${s.mtimeMs}`);
        await walk(p);
      } else {
        const hash = createHash('sha256').update(await readFile(p)).digest('hex');
        out.set(relative(dir, p), `${hash} mtime=${s.mtimeMs}`);
      }
    }
  };
  await walk(dir);
  return out;
}

/** A REST v2 call on port 19530. */
export function restRequest(path: string, body: unknown, headers: Record<string, string> = {}): ProxyRequest {
  return {
    port: 19530,
    method: 'POST',
    path,
    query: new URLSearchParams(),
    headers: { 'content-type': 'application/json', ...headers },
    body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
  };
}

/** A GET on the management port 9091. */
export function managementRequest(path: string, query = ''): ProxyRequest {
  return { port: 9091, method: 'GET', path, query: new URLSearchParams(query), headers: {}, body: Buffer.alloc(0) };
}

/** Sends a REST v2 call and parses the JSON answer. */
export async function rest(
  sim: MilvusSimulator,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: { code: number; data?: unknown; message?: string } }> {
  const res = await sim.handle(restRequest(path, body, headers));
  return { status: res.status, json: JSON.parse(String(res.body)) as { code: number; data?: unknown; message?: string } };
}

/** The `count(*)` of a collection through REST v2. */
export async function countRows(sim: MilvusSimulator, collectionName: string, dbName = 'default'): Promise<number> {
  const res = await rest(sim, '/v2/vectordb/entities/query', { dbName, collectionName, outputFields: ['count(*)'] });
  if (res.json.code !== 0) throw new Error(`count(*) failed: ${JSON.stringify(res.json)}`);
  return (res.json.data as { 'count(*)': number }[])[0]!['count(*)'];
}

/** The `get_stats` row count of a collection through REST v2. */
export async function statsRows(sim: MilvusSimulator, collectionName: string, dbName = 'default'): Promise<number> {
  const res = await rest(sim, '/v2/vectordb/collections/get_stats', { dbName, collectionName });
  if (res.json.code !== 0) throw new Error(`get_stats failed: ${JSON.stringify(res.json)}`);
  return (res.json.data as { rowCount: number }).rowCount;
}

/** Every file under `dir`, as paths relative to it with `/` separators, sorted; none when it does not exist. */
export async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out.sort();
}

/** Flushes `collection` through the management API (a persist), as a backup does; the flush completes on the next request served. */
export async function persist(sim: MilvusSimulator, collection: string): Promise<void> {
  await sim.handle({ ...managementRequest('/api/v1/persist'), method: 'POST', body: Buffer.from(JSON.stringify({ db_name: 'default', collection_names: [collection] })) });
  await sim.handle(managementRequest('/healthz'));
}

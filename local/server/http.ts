/**
 * The HTTP front of the local API server: bearer-token auth, request fault injection,
 * discovery, the generic REST verbs for every kind in the registry (with `Table` output for
 * kubectl, label/field selectors and watch), the pod `log`/`exec`, service `proxy` and
 * workload `scale` subresources, and the `/_local/*` admin endpoints for tests.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { parse as parseYaml } from 'yaml';
import type { ClusterFaults, RequestFault } from '../faults.js';
import type { Timeline } from '../timeline.js';
import type { VolumeDirs } from '../volumes.js';
import { EXEC_PROTOCOLS, handleExecUpgrade, parseExecRequest } from './exec.js';
import { jsonPatch, mergePatch } from './patch.js';
import { proxyToService, type MilvusInstances } from './proxy.js';
import { apiVersionOf, findType, humanAge, RESOURCE_TYPES, typeOf, type ResourceType } from './resources.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import {
  badRequest,
  internalError,
  KubeApiError,
  methodNotAllowed,
  notFound,
  pathNotFound,
  serviceUnavailable,
  success,
  tooManyRequests,
  unauthorized,
  unsupportedMediaType,
} from './status.js';
import type { KubeObject, ObjectStore, StoreEvent } from './store.js';

/** The Kubernetes version the local server reports (the API surface it imitates). */
export const SERVER_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0-milvus-guard-local', platform: 'linux/amd64' };

/** What the HTTP layer needs from the cluster. */
export interface ApiServerContext {
  store: ObjectStore;
  faults: ClusterFaults;
  timeline: Timeline;
  dirs: VolumeDirs;
  milvus: MilvusInstances;
  token: string;
  now: () => Date;
  /** Runs after an object was created and before the response (the snapshot freeze). */
  afterCreate(type: ResourceType, object: KubeObject): Promise<void>;
  /** Runs the controllers until quiescent (`POST /_local/settle`). */
  settle(): Promise<void>;
  /** Serving key and certificate (PEM). */
  tls: { key: string; cert: string };
  /** `HTTP_PROXY` of exec'd processes (pod-network.ts). */
  podNetwork?: string;
}

/** The server plus a `close` that also ends open watches, hung requests and exec sessions. */
export interface ApiServer {
  server: Server;
  close(): Promise<void>;
}

interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
  /** Path after `proxy/` for the proxy subresource. */
  rest?: string;
}

const json = (res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
};

const sendError = (res: ServerResponse, err: KubeApiError) => {
  const headers: Record<string, string> = {};
  if (err.status.details?.retryAfterSeconds !== undefined) headers['Retry-After'] = String(err.status.details.retryAfterSeconds);
  json(res, err.status.code, err.status, headers);
};

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

function parseObject(body: Buffer, contentType: string | undefined): any {
  // Only JSON and YAML bodies are understood. kubectl's generators (`kubectl create configmap`)
  // send protobuf and do not fall back to JSON on 415, so they do not work here (see README).
  if (contentType?.includes('protobuf')) throw unsupportedMediaType(contentType);
  const text = body.toString('utf8');
  if (text.trim() === '') throw badRequest('the request body is empty; send the object as JSON');
  try {
    return contentType?.includes('yaml') ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw badRequest(`the request body is not valid ${contentType?.includes('yaml') ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
}

/** Parses `/api/v1/...` and `/apis/g/v/...` into a route; undefined when it is not a resource path. */
export function parseResourcePath(pathname: string): Route | undefined {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) [group, version, rest] = ['', parts[1]!, parts.slice(2)];
  else if (parts[0] === 'apis' && parts.length >= 4) [group, version, rest] = [parts[1]!, parts[2]!, parts.slice(3)];
  else return undefined;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && findType(group, version, rest[2]!)) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const type = findType(group, version, rest[0]!);
  if (!type || (namespace !== undefined && !type.namespaced)) return undefined;
  const route: Route = { type, namespace, name: rest[1], subresource: rest[2] };
  if (rest[2] === 'proxy') route.rest = `/${rest.slice(3).join('/')}`;
  else if (rest.length > 3) return undefined;
  return route;
}

/** Discovery facts of subresources whose kind is not the parent's (status has the parent's). */
const SUBRESOURCES: Record<string, { kind: string; verbs: string[] }> = {
  scale: { kind: 'Scale', verbs: ['get', 'patch', 'update'] },
  log: { kind: 'Pod', verbs: ['get'] },
  exec: { kind: 'PodExecOptions', verbs: ['create', 'get'] },
  proxy: { kind: 'ServiceProxyOptions', verbs: ['create', 'delete', 'get', 'patch', 'update'] },
};

function discoveryResources(group: string, version: string) {
  return RESOURCE_TYPES.filter((t) => t.group === group && t.version === version).flatMap((t) => [
    {
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
      ...(t.shortNames ? { shortNames: t.shortNames } : {}),
      ...(t.categories ? { categories: t.categories } : {}),
    },
    ...t.subresources.map((sub) => ({
      name: `${t.plural}/${sub}`,
      singularName: '',
      namespaced: t.namespaced,
      kind: SUBRESOURCES[sub]?.kind ?? t.kind,
      ...(sub === 'scale' ? { group: 'autoscaling', version: 'v1' } : {}),
      verbs: SUBRESOURCES[sub]?.verbs ?? ['get', 'patch', 'update'],
    })),
  ]);
}

function groups() {
  const byGroup = new Map<string, string[]>();
  for (const t of RESOURCE_TYPES) {
    if (t.group === '') continue;
    const versions = byGroup.get(t.group) ?? [];
    if (!versions.includes(t.version)) versions.push(t.version);
    byGroup.set(t.group, versions);
  }
  return [...byGroup].map(([name, versions]) => ({
    kind: 'APIGroup',
    apiVersion: 'v1',
    name,
    versions: versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
    preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] },
  }));
}

/** A `meta.k8s.io/v1 Table` of objects, with the registry's columns. */
export function toTable(type: ResourceType, objects: KubeObject[], now: Date, includeObject: string | null, resourceVersion: string) {
  const columns = [
    { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0, cell: (o: KubeObject) => o.metadata.name },
    ...type.columns,
    ...(type.columns.some((c) => c.name === 'AGE')
      ? []
      : [{ name: 'AGE', type: 'date', description: 'CreationTimestamp is the time the object was created.', priority: 0, cell: (o: KubeObject, n: Date) => humanAge(String(o.metadata.creationTimestamp), n) }]),
  ];
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: columns.map(({ name, type: t, description, priority, ...rest }) => ({
      name,
      type: t === 'date' ? 'string' : t,
      format: (rest as { format?: string }).format ?? '',
      description,
      priority: priority ?? 0,
    })),
    rows: objects.map((o) => ({
      cells: columns.map((c) => c.cell(o, now)),
      object:
        includeObject === 'None'
          ? null
          : includeObject === 'Object'
            ? o
            : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}

const wantsTable = (req: IncomingMessage) => /as=Table/.test(req.headers.accept ?? '');

/** Creates the API server (not yet listening). */
export function createApiServer(ctx: ApiServerContext): ApiServer {
  const sockets = new Set<Socket>();
  const watches = new Set<() => void>();
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => EXEC_PROTOCOLS.find((p) => protocols.has(p)) ?? false,
  });
  const expected = Buffer.from(`Bearer ${ctx.token}`);
  const authorized = (req: IncomingMessage) => {
    const given = Buffer.from(req.headers.authorization ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };

  const server = createServer({ key: ctx.tls.key, cert: ctx.tls.cert }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendError(res, err instanceof KubeApiError ? err : internalError(err instanceof Error ? err.message : String(err)));
    });
  });
  // Set first thing in close(): a connection still in its TLS handshake then is not in `sockets`.
  let closing = false;
  server.on('secureConnection', (socket) => {
    if (closing) return void socket.destroy();
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // Requests an injected fault is delaying: closing the server drops them, so no timer of theirs
  // outlives it (a 60 s delay kept a closed cluster's process alive) and none is handled after.
  const delayed = new Set<() => void>();
  /** Waits `ms` before a request is handled; false when the server closed meanwhile. */
  function delay(ms: number): Promise<boolean> {
    if (closing) return Promise.resolve(false);
    return new Promise((resolve) => {
      const end = (handled: boolean) => {
        clearTimeout(timer);
        delayed.delete(drop);
        resolve(handled);
      };
      const drop = () => end(false);
      const timer = setTimeout(() => end(true), ms);
      delayed.add(drop);
    });
  }

  /** Throws the error status of an injected request fault, if it has one. */
  function throwInjected(fault: RequestFault): void {
    if (fault.status === 429) throw tooManyRequests(1);
    if (fault.status === 503) throw serviceUnavailable('injected fault: the server is currently unable to handle the request');
    if (fault.status === 500) throw internalError('injected fault');
  }

  /**
   * Never answers, as an API server stuck behind a webhook or etcd would: only the client's
   * deadline ends the request. The timeline shows the hang and when the client dropped it.
   */
  function holdOpen(method: string, path: string, connection: { once(event: 'close', listener: () => void): unknown }): void {
    const request = { method, path };
    ctx.timeline.record({ source: 'api', type: 'RequestHung', detail: request });
    connection.once('close', () => ctx.timeline.record({ source: 'api', type: 'HungRequestClosed', detail: request }));
  }

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'https://local');
    const fail = (err: KubeApiError) => {
      const body = JSON.stringify(err.status);
      socket.end(`HTTP/1.1 ${err.status.code} ${err.status.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    };
    try {
      if (!authorized(req)) throw unauthorized();
      // An exec upgrade fails or hangs like any request (a hung WebSocket handshake is never answered).
      const fault = ctx.faults.takeRequestFault(req.method ?? 'GET', `${url.pathname}${url.search}`);
      if (fault?.hang) return holdOpen(req.method ?? 'GET', url.pathname, socket);
      if (fault) throwInjected(fault);
      const route = parseResourcePath(url.pathname);
      if (!route || route.type.kind !== 'Pod' || route.subresource !== 'exec' || !route.name) throw pathNotFound();
      const exec = parseExecRequest(ctx, route.namespace!, route.name, url.searchParams);
      handleExecUpgrade(ctx, wss, req, socket, head, exec);
    } catch (err) {
      fail(err instanceof KubeApiError ? err : internalError(String(err)));
    }
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://local');
    const method = req.method ?? 'GET';
    if (!authorized(req)) throw unauthorized();
    if (url.pathname.startsWith('/_local/')) return admin(req, res, url, method);
    const fault = ctx.faults.takeRequestFault(method, `${url.pathname}${url.search}`);
    if (fault) {
      if (fault.hang) return holdOpen(method, url.pathname, res);
      if (fault.delayMs && !(await delay(fault.delayMs))) return;
      throwInjected(fault);
    }
    switch (url.pathname) {
      case '/version':
        return json(res, 200, { ...SERVER_VERSION, gitCommit: '0000000000000000000000000000000000000000', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.23.0', compiler: 'gc' });
      case '/healthz':
      case '/livez':
      case '/readyz':
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        return void res.end('ok');
      case '/api':
        return json(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: req.headers.host ?? '' }] });
      case '/apis':
        return json(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: groups() });
      case '/api/v1':
        return json(res, 200, { kind: 'APIResourceList', groupVersion: 'v1', resources: discoveryResources('', 'v1') });
    }
    const groupPath = url.pathname.match(/^\/apis\/([^/]+)(?:\/([^/]+))?\/?$/);
    if (groupPath) {
      const group = groups().find((g) => g.name === groupPath[1]);
      if (!group) throw pathNotFound();
      if (!groupPath[2]) return json(res, 200, group);
      if (!group.versions.some((v) => v.version === groupPath[2])) throw pathNotFound();
      return json(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: `${groupPath[1]}/${groupPath[2]}`, resources: discoveryResources(groupPath[1]!, groupPath[2]!) });
    }
    const route = parseResourcePath(url.pathname);
    if (!route) throw pathNotFound();
    return resource(req, res, url, method, route);
  }

  async function resource(req: IncomingMessage, res: ServerResponse, url: URL, method: string, route: Route): Promise<void> {
    const { type, namespace, name, subresource } = route;
    const { store } = ctx;
    const query = url.searchParams;
    if (subresource === 'proxy' && type.kind === 'Service') {
      const body = await readBody(req);
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]));
      delete headers.authorization; // the API server never forwards the caller's credentials
      const answer = await proxyToService(store, ctx.milvus, { namespace: namespace!, service: name!, method, path: route.rest!, query, headers, body });
      const payload = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body;
      res.writeHead(answer.status, { ...answer.headers, 'Content-Length': payload.length });
      return void res.end(payload);
    }
    if (subresource === 'log' && type.kind === 'Pod' && method === 'GET') return podLog(res, namespace!, name!, query);
    if (subresource === 'exec') throw badRequest('Upgrade request required');
    if (subresource === 'scale' && type.subresources.includes('scale')) return scale(req, res, method, type, namespace!, name!);
    if (subresource !== undefined && subresource !== 'status') throw pathNotFound();
    if (subresource === 'status' && !type.hasStatus) throw pathNotFound();

    if (!name) {
      if (method === 'GET') {
        if (query.get('watch') === 'true' || query.get('watch') === '1') return watch(req, res, type, namespace, query);
        const labels = parseLabelSelector(query.get('labelSelector'));
        const fields = parseFieldSelector(query.get('fieldSelector'));
        const items = store.list(type, namespace).filter((o) => labels.matches(o.metadata.labels) && fields.matches(o));
        if (wantsTable(req)) return json(res, 200, toTable(type, items, ctx.now(), query.get('includeObject'), store.resourceVersion));
        return json(res, 200, { kind: `${type.kind}List`, apiVersion: apiVersionOf(type), metadata: { resourceVersion: store.resourceVersion }, items });
      }
      if (method === 'POST') {
        const object = parseObject(await readBody(req), req.headers['content-type']);
        if (object.kind && object.kind !== type.kind) throw badRequest(`the kind in the data (${object.kind}) does not match the resource of the request (${type.plural}, kind ${type.kind})`);
        if (namespace !== undefined && object.metadata?.namespace && object.metadata.namespace !== namespace) {
          throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
        }
        object.metadata = { ...object.metadata, ...(namespace ? { namespace } : {}) };
        // On create, the server ignores status of kinds with a status subresource.
        if (type.hasStatus) delete object.status;
        if (query.get('dryRun') === 'All') return json(res, 201, object);
        const created = store.create(type, object);
        await ctx.afterCreate(type, created);
        return json(res, 201, store.get(type, namespace, created.metadata.name) ?? created);
      }
      if (method === 'DELETE') {
        const labels = parseLabelSelector(query.get('labelSelector'));
        const fields = parseFieldSelector(query.get('fieldSelector'));
        const deleted = store
          .list(type, namespace)
          .filter((o) => labels.matches(o.metadata.labels) && fields.matches(o))
          .map((o) => store.delete(type, o.metadata.namespace, o.metadata.name, propagation(query, undefined)));
        return json(res, 200, { kind: `${type.kind}List`, apiVersion: apiVersionOf(type), metadata: { resourceVersion: store.resourceVersion }, items: deleted });
      }
      throw methodNotAllowed(method);
    }

    switch (method) {
      case 'GET': {
        const object = store.require(type, namespace, name);
        if (wantsTable(req)) return json(res, 200, toTable(type, [object], ctx.now(), query.get('includeObject'), store.resourceVersion));
        return json(res, 200, object);
      }
      case 'PUT': {
        const object = parseObject(await readBody(req), req.headers['content-type']);
        if (object.metadata?.name && object.metadata.name !== name) throw badRequest(`the name of the object (${object.metadata.name}) does not match the name on the URL (${name})`);
        object.metadata = { ...object.metadata, name, ...(namespace ? { namespace } : {}) };
        const replaced = store.replace(type, object, subresource === 'status' ? { subresource: 'status' } : {});
        return json(res, 200, replaced);
      }
      case 'PATCH': {
        const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
        const patch = parseObject(await readBody(req), contentType.includes('yaml') ? 'application/yaml' : 'application/json');
        if (contentType === 'application/apply-patch+yaml' || contentType === 'application/apply-patch+json') {
          return serverSideApply(res, route, patch);
        }
        const current = store.require(type, namespace, name);
        let next: KubeObject;
        if (contentType === 'application/merge-patch+json' || contentType === 'application/strategic-merge-patch+json') next = mergePatch(current, patch);
        else if (contentType === 'application/json-patch+json') next = jsonPatch(current, patch);
        else throw unsupportedMediaType(contentType, 'application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json');
        // A patch without a resourceVersion applies to the latest version (no conflict check).
        if (!patch?.metadata?.resourceVersion) next.metadata = { ...next.metadata, resourceVersion: current.metadata.resourceVersion };
        const replaced = store.replace(type, next, subresource === 'status' ? { subresource: 'status' } : {});
        return json(res, 200, replaced);
      }
      case 'DELETE': {
        const body = await readBody(req);
        const options = body.length > 0 ? parseObject(body, 'application/json') : {};
        const deleted = store.delete(type, namespace, name, propagation(query, options));
        return json(res, 200, type.deleteReturnsObject ? deleted : success(type, name, deleted.metadata.uid!));
      }
      default:
        throw methodNotAllowed(method);
    }
  }

  /**
   * Server-side apply, simplified: creates the object when it is missing, else merges the
   * applied configuration into it. Field ownership is not tracked, so there are no apply
   * conflicts and fields dropped from a later apply are kept.
   */
  async function serverSideApply(res: ServerResponse, route: Route, applied: KubeObject): Promise<void> {
    const { type, namespace, name, subresource } = route;
    if (applied?.metadata?.name && applied.metadata.name !== name) throw badRequest(`the name of the object (${applied.metadata.name}) does not match the name on the URL (${name})`);
    const current = ctx.store.get(type, namespace, name!);
    if (!current) {
      if (subresource === 'status') throw notFound(type, name!);
      const object = { ...applied, metadata: { ...applied.metadata, name: name!, ...(namespace ? { namespace } : {}) } };
      if (type.hasStatus) delete object.status;
      const created = ctx.store.create(type, object);
      await ctx.afterCreate(type, created);
      return json(res, 201, ctx.store.get(type, namespace, name!) ?? created);
    }
    const next: KubeObject = mergePatch(current, applied);
    next.metadata = { ...next.metadata, resourceVersion: current.metadata.resourceVersion };
    return json(res, 200, ctx.store.replace(type, next, subresource === 'status' ? { subresource: 'status' } : {}));
  }

  function propagation(query: URLSearchParams, options: { propagationPolicy?: string; orphanDependents?: boolean } | undefined) {
    const policy = query.get('propagationPolicy') ?? options?.propagationPolicy ?? (options?.orphanDependents === true ? 'Orphan' : undefined);
    if (policy === undefined) return undefined;
    if (policy !== 'Orphan' && policy !== 'Background' && policy !== 'Foreground') throw badRequest(`propagationPolicy must be Orphan, Background or Foreground, not ${policy}`);
    return policy;
  }

  async function podLog(res: ServerResponse, namespace: string, name: string, query: URLSearchParams): Promise<void> {
    const pod = ctx.store.require(typeOf('Pod'), namespace, name);
    const containers = (pod.spec?.containers ?? []) as { name: string }[];
    const container = query.get('container') ?? (containers.length === 1 ? containers[0]!.name : undefined);
    if (!container) throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${containers.map((c) => c.name).join(' ')}]`);
    if (!containers.some((c) => c.name === container)) throw badRequest(`container ${container} is not valid for pod ${name}`);
    let text = await readFile(ctx.dirs.podLog(namespace, name, container), 'utf8').catch(() => '');
    const tail = query.get('tailLines');
    if (tail !== null) text = text.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1).slice(-Number(tail)).join('\n') + (text ? '\n' : '');
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  async function scale(req: IncomingMessage, res: ServerResponse, method: string, type: ResourceType, namespace: string, name: string): Promise<void> {
    const object = ctx.store.require(type, namespace, name);
    const toScale = (o: KubeObject) => ({
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name, namespace, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp },
      spec: { replicas: o.spec?.replicas ?? 1 },
      status: { replicas: o.status?.replicas ?? 0, selector: Object.entries(o.spec?.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') },
    });
    if (method === 'GET') return json(res, 200, toScale(object));
    if (method !== 'PUT' && method !== 'PATCH') throw methodNotAllowed(method);
    const body = parseObject(await readBody(req), 'application/json');
    const replicas = method === 'PUT' ? body.spec?.replicas : (req.headers['content-type'] ?? '').includes('json-patch') ? jsonPatch(toScale(object), body).spec?.replicas : mergePatch(toScale(object), body).spec?.replicas;
    if (!Number.isInteger(replicas) || replicas < 0) throw badRequest('spec.replicas must be a non-negative integer');
    const updated = ctx.store.replace(type, { ...object, spec: { ...object.spec, replicas } });
    return json(res, 200, toScale(updated));
  }

  function watch(req: IncomingMessage, res: ServerResponse, type: ResourceType, namespace: string | undefined, query: URLSearchParams): void {
    const labels = parseLabelSelector(query.get('labelSelector'));
    const fields = parseFieldSelector(query.get('fieldSelector'));
    const matches = (o: KubeObject) => (namespace === undefined || o.metadata.namespace === namespace) && labels.matches(o.metadata.labels) && fields.matches(o);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders(); // clients wait for the headers before they start reading events
    const send = (event: { type: string; object: KubeObject }) => res.write(`${JSON.stringify(event)}\n`);
    const from = query.get('resourceVersion');
    // Without a resourceVersion (or with "0") a watch starts with the current objects, as the real one does.
    if (!from || from === '0') for (const o of ctx.store.list(type, namespace).filter(matches)) send({ type: 'ADDED', object: o });
    const unsubscribe = ctx.store.onChange((event: StoreEvent) => {
      if (event.resource === type && matches(event.object)) send({ type: event.type, object: event.object });
    });
    const end = () => {
      unsubscribe();
      watches.delete(end);
      clearTimeout(timer);
      res.end();
    };
    const timer = setTimeout(end, Number(query.get('timeoutSeconds') ?? 1800) * 1000);
    watches.add(end);
    req.on('close', end);
  }

  async function admin(req: IncomingMessage, res: ServerResponse, url: URL, method: string): Promise<void> {
    const path = url.pathname;
    if (path === '/_local/faults') {
      if (method === 'GET') return json(res, 200, ctx.faults.toJSON());
      if (method === 'DELETE') {
        ctx.faults.clear();
        return json(res, 200, ctx.faults.toJSON());
      }
      if (method === 'POST') {
        try {
          ctx.faults.apply(parseObject(await readBody(req), 'application/json'));
        } catch (err) {
          throw err instanceof KubeApiError ? err : badRequest((err as Error).message);
        }
        return json(res, 201, ctx.faults.toJSON());
      }
      throw methodNotAllowed(method);
    }
    if (path === '/_local/timeline' && method === 'GET') return json(res, 200, { events: ctx.timeline.events });
    if (path === '/_local/settle' && method === 'POST') {
      await ctx.settle();
      return json(res, 200, { settled: true });
    }
    const milvus = path.match(/^\/_local\/milvus\/([^/]+)\/([^/]+)\/faults$/);
    if (milvus) {
      const simulator = ctx.milvus.get(milvus[1]!, milvus[2]!);
      if (!simulator) throw notFound(typeOf('Milvus'), milvus[2]!);
      if (method === 'POST') Object.assign(simulator.faults, parseObject(await readBody(req), 'application/json'));
      else if (method === 'DELETE') for (const key of Object.keys(simulator.faults)) delete (simulator.faults as Record<string, unknown>)[key];
      else if (method !== 'GET') throw methodNotAllowed(method);
      return json(res, 200, simulator.faults);
    }
    throw pathNotFound();
  }

  return {
    server,
    close: async () => {
      closing = true;
      for (const end of [...watches]) end();
      for (const drop of [...delayed]) drop();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      wss.close();
    },
  };
}

import { createServer, type RequestOptions, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { DescribeClusterCommand, EKSClient, ResourceNotFoundException } from '@aws-sdk/client-eks';
import { mockClient } from 'aws-sdk-client-mock';
import { AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, Exec, KubeConfig } from '@kubernetes/client-node';
import {
  EksClusterNotActiveError,
  EksClusterNotFoundError,
  kubeConfigForEks,
  type EksKubeConfigOptions,
  kubeConfigFromFile,
  makeKubeClients,
} from '../../core/kube/connect.js';
import type { EksToken } from '../../core/eks/token.js';
import { UserError } from '../../core/errors.js';
import { decodeEksToken } from './sigv4-reference.js';

// A self-signed certificate for 127.0.0.1 (test only) stands in for the cluster's API server
// certificate; its PEM, base64-encoded, is what DescribeCluster returns as the cluster CA.
const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const SERVER_CERT = fixture('apiserver-test-only.crt');
const SERVER_KEY = fixture('apiserver-test-only.key');
const CLUSTER_CA = Buffer.from(SERVER_CERT).toString('base64');

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'SESSION' };
const ARN = 'arn:aws:eks:us-east-1:111122223333:cluster/prod';

/** A tiny API server that records the Authorization header of every request. */
let server: Server;
let endpoint: string;
const seenAuthorization: (string | undefined)[] = [];

beforeAll(async () => {
  server = createServer({ cert: SERVER_CERT, key: SERVER_KEY }, (req, res) => {
    seenAuthorization.push(req.headers.authorization);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: [] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
});

beforeEach(() => {
  seenAuthorization.length = 0;
});

function eksReturning(cluster: Record<string, unknown>): EKSClient {
  const eks = new EKSClient({ region: 'us-east-1', credentials });
  mockClient(eks).on(DescribeClusterCommand, { name: 'prod' }).resolves({ cluster });
  return eks;
}

const activeCluster = (): Record<string, unknown> => ({
  name: 'prod',
  arn: ARN,
  status: 'ACTIVE',
  endpoint,
  certificateAuthority: { data: CLUSTER_CA },
});

/** kubeConfigForEks for the active cluster "prod" in us-east-1, signing with `credentials`; `over` changes options. */
const connectProd = (over: Partial<EksKubeConfigOptions> = {}): Promise<KubeConfig> =>
  kubeConfigForEks({ clusterName: 'prod', region: 'us-east-1', eks: eksReturning(activeCluster()), credentials, ...over });

/** A clock the test moves by hand. */
function manualClock(startIso: string): { now: () => Date; advanceMinutes: (m: number) => void } {
  let t = new Date(startIso).getTime();
  return { now: () => new Date(t), advanceMinutes: (m) => (t += m * 60_000) };
}

const amzDateOf = (authorization: string | undefined): string | null =>
  new URL(decodeEksToken((authorization ?? '').replace(/^Bearer /, ''))).searchParams.get('X-Amz-Date');

describe('kubeConfigForEks', () => {
  it('points the current context at the endpoint and CA from DescribeCluster', async () => {
    // Act
    const kc = await connectProd();

    // Assess
    expect(kc.getCurrentCluster()).toMatchObject({ name: ARN, server: endpoint, caData: CLUSTER_CA, skipTLSVerify: false });
    expect(kc.getCurrentUser()?.name).toBe(ARN);
  });

  it('sends an EKS bearer token over TLS that trusts the cluster CA', async () => {
    // Prepare
    const clock = manualClock('2024-01-15T10:30:00Z');
    const kc = await connectProd({ now: clock.now });

    // Act
    const list = await makeKubeClients(kc).core.listNamespace();

    // Assess
    expect(list.items).toEqual([]);
    expect(seenAuthorization).toHaveLength(1);
    expect(seenAuthorization[0]).toMatch(/^Bearer k8s-aws-v1\.[A-Za-z0-9_-]+$/);
    const url = new URL(decodeEksToken(seenAuthorization[0]!.slice('Bearer '.length)));
    expect(url.host).toBe('sts.us-east-1.amazonaws.com');
    expect(url.searchParams.get('X-Amz-Date')).toBe('20240115T103000Z');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host;x-k8s-aws-id');
  });

  it('reuses the token until it expires', async () => {
    // Prepare
    const clock = manualClock('2024-01-15T10:30:00Z');
    const kc = await connectProd({ now: clock.now });
    const core = kc.makeApiClient(CoreV1Api);

    // Act
    await core.listNamespace();
    clock.advanceMinutes(13);
    await core.listNamespace();

    // Assess
    expect(seenAuthorization[1]).toBe(seenAuthorization[0]);
  });

  it('signs a new token once the clock passes the expiry of the old one', async () => {
    // Prepare: a client kept between invocations of a warm Lambda.
    const clock = manualClock('2024-01-15T10:30:00Z');
    const kc = await connectProd({ now: clock.now });
    const core = kc.makeApiClient(CoreV1Api);
    await core.listNamespace();

    // Act
    clock.advanceMinutes(14);
    await core.listNamespace();

    // Assess
    expect(seenAuthorization[1]).not.toBe(seenAuthorization[0]);
    expect(amzDateOf(seenAuthorization[0])).toBe('20240115T103000Z');
    expect(amzDateOf(seenAuthorization[1])).toBe('20240115T104400Z');
  });

  it('shares one refresh between concurrent requests', async () => {
    // Prepare
    let calls = 0;
    const tokenProvider = async (): Promise<EksToken> => {
      calls += 1;
      return { token: `k8s-aws-v1.token-${calls}`, expiresAt: new Date('2024-01-15T10:44:00Z') };
    };
    const kc = await connectProd({ tokenProvider, now: () => new Date('2024-01-15T10:30:00Z') });
    const core = kc.makeApiClient(CoreV1Api);

    // Act
    await Promise.all([core.listNamespace(), core.listNamespace(), core.listNamespace()]);

    // Assess
    expect(calls).toBe(1);
    expect(seenAuthorization).toEqual(['Bearer k8s-aws-v1.token-1', 'Bearer k8s-aws-v1.token-1', 'Bearer k8s-aws-v1.token-1']);
  });

  it('tries again on the next request after a failed refresh', async () => {
    // Prepare
    let calls = 0;
    const tokenProvider = async (): Promise<EksToken> => {
      calls += 1;
      if (calls === 1) throw new Error('credentials are being rotated');
      return { token: 'k8s-aws-v1.second', expiresAt: new Date('2024-01-15T10:44:00Z') };
    };
    const kc = await connectProd({ tokenProvider, now: () => new Date('2024-01-15T10:30:00Z') });
    const core = kc.makeApiClient(CoreV1Api);
    await expect(core.listNamespace()).rejects.toThrow('credentials are being rotated');

    // Act
    await core.listNamespace();

    // Assess
    expect(seenAuthorization).toEqual(['Bearer k8s-aws-v1.second']);
  });

  it('authenticates WebSocket connections (pod exec) with the same token', async () => {
    // Prepare
    const kc = await connectProd({
      tokenProvider: async () => ({ token: 'k8s-aws-v1.ws', expiresAt: new Date('2024-01-15T10:44:00Z') }),
      now: () => new Date('2024-01-15T10:30:00Z'),
    });
    const wsOptions: RequestOptions = {};

    // Act: what client-node's WebSocket handler does before it connects.
    await kc.applyToHTTPSOptions(wsOptions);

    // Assess
    expect(wsOptions.headers).toMatchObject({ Authorization: 'Bearer k8s-aws-v1.ws' });
    expect(String(wsOptions.ca)).toBe(SERVER_CERT);
  });

  it('accepts a cluster that is UPDATING, whose API server keeps serving', async () => {
    // Act
    const kc = await connectProd({ eks: eksReturning({ ...activeCluster(), status: 'UPDATING' }) });

    // Assess
    expect(kc.getCurrentCluster()?.server).toBe(endpoint);
  });

  it('names the cluster and region when DescribeCluster finds no such cluster', async () => {
    // Prepare
    const eks = new EKSClient({ region: 'eu-west-1', credentials });
    mockClient(eks)
      .on(DescribeClusterCommand)
      .rejects(new ResourceNotFoundException({ message: 'No cluster found for name: prd.', $metadata: {} }));

    // Act
    const result = kubeConfigForEks({ clusterName: 'prd', region: 'eu-west-1', eks, credentials });

    // Assess
    await expect(result).rejects.toThrow(EksClusterNotFoundError);
    await expect(result).rejects.toThrow(/"prd" was not found in region eu-west-1/);
  });

  it.each(['CREATING', 'DELETING', 'FAILED', 'PENDING'])('refuses a cluster that is %s', async (status) => {
    // Act
    const result = connectProd({ eks: eksReturning({ ...activeCluster(), status }) });

    // Assess
    await expect(result).rejects.toThrow(EksClusterNotActiveError);
    await expect(result).rejects.toThrow(new RegExp(`"prod" in region us-east-1 is ${status}, not ACTIVE`));
  });
});

describe('kubeConfigFromFile', () => {
  let dir: string;
  let file: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
    file = join(dir, 'config');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '  - name: local',
        '    cluster: { server: "http://127.0.0.1:6443", insecure-skip-tls-verify: true }',
        '  - name: staging',
        '    cluster: { server: "https://staging.example:6443", certificate-authority: ca.crt }',
        'users:',
        '  - name: dev',
        '    user: { token: dev-token }',
        'contexts:',
        '  - name: local',
        '    context: { cluster: local, user: dev, namespace: milvus }',
        '  - name: staging',
        '    context: { cluster: staging, user: dev }',
        'current-context: local',
        '',
      ].join('\n'),
    );
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('uses the current context of the file', () => {
    // Act
    const kc = kubeConfigFromFile(file);

    // Assess
    expect(kc.getCurrentCluster()?.server).toBe('http://127.0.0.1:6443');
    expect(kc.getCurrentUser()?.token).toBe('dev-token');
  });

  it('switches to the named context and resolves relative paths against the file', () => {
    // Act
    const kc = kubeConfigFromFile(file, 'staging');

    // Assess
    expect(kc.getCurrentContext()).toBe('staging');
    expect(kc.getCurrentCluster()?.caFile).toBe(join(dir, 'ca.crt'));
  });

  it('lists the contexts when the named one does not exist', () => {
    // Act
    const act = (): unknown => kubeConfigFromFile(file, 'prod');

    // Assess
    expect(act).toThrow(UserError);
    expect(act).toThrow('has no context "prod"; it has: local, staging');
  });

  it('says so when the file does not exist', () => {
    // Act
    const act = (): unknown => kubeConfigFromFile(join(dir, 'missing'));

    // Assess
    expect(act).toThrow(/kubeconfig file .*missing does not exist/);
  });
});

describe('makeKubeClients', () => {
  it('makes every client from the one KubeConfig it is given', () => {
    // Prepare
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: false }, { name: 'u', token: 't' });

    // Act
    const clients = makeKubeClients(kc);

    // Assess
    expect(clients.kc).toBe(kc);
    expect(clients.core).toBeInstanceOf(CoreV1Api);
    expect(clients.apps).toBeInstanceOf(AppsV1Api);
    expect(clients.batch).toBeInstanceOf(BatchV1Api);
    expect(clients.custom).toBeInstanceOf(CustomObjectsApi);
    expect(clients.exec).toBeInstanceOf(Exec);
  });
});

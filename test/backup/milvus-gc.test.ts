import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { MilvusClient, MilvusManagementError } from '../../core/milvus/client.js';

// The GC pause/resume calls against a tiny API server that answers the service proxy path the
// way different Milvus versions do. (The local cluster's simulator covers the `data.ticket` shape.)

const fixture = (name: string): string => readFileSync(new URL(`../eks/fixtures/${name}`, import.meta.url), 'utf8');
const CERT = fixture('apiserver-test-only.crt');

let server: Server;
let answer: { status: number; body: string } = { status: 200, body: '{}' };
const seen: string[] = [];
let milvus: MilvusClient;

beforeAll(async () => {
  server = createServer({ cert: CERT, key: fixture('apiserver-test-only.key') }, (req, res) => {
    seen.push(req.url ?? '');
    res.statusCode = answer.status;
    res.end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'c', server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, caData: Buffer.from(CERT).toString('base64'), skipTLSVerify: false }, { name: 'u', token: 't' });
  milvus = new MilvusClient(kc, { namespace: 'vector-db', service: 'm', restPort: 19530, managementPort: 9091 });
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('MilvusClient GC pause', () => {
  it('asks the management port through the service proxy for a pause of N seconds', async () => {
    answer = { status: 200, body: '{"msg":"OK","data":{"ticket":"t-1"}}' };
    seen.length = 0;

    expect(await milvus.pauseGc(600)).toEqual({ ticket: 't-1' });
    expect(seen).toEqual(['/api/v1/namespaces/vector-db/services/m:9091/proxy/management/datacoord/garbage_collection/pause?pause_seconds=600']);
  });

  it('accepts a ticket at the top level of the answer', async () => {
    answer = { status: 200, body: '{"msg":"OK","ticket":"t-2"}' };

    expect(await milvus.pauseGc(600)).toEqual({ ticket: 't-2' });
  });

  it('returns no ticket from a Milvus that has none', async () => {
    answer = { status: 200, body: '{"msg":"OK"}' };

    expect(await milvus.pauseGc(600)).toEqual({});
  });

  it('fails with MilvusManagementError when Milvus does not answer OK', async () => {
    answer = { status: 200, body: '{"msg":"failed to pause garbage collection"}' };

    await expect(milvus.pauseGc(600)).rejects.toThrow(new MilvusManagementError('GC pause', 'failed to pause garbage collection'));
  });

  it('resumes with the ticket it was given', async () => {
    answer = { status: 200, body: '{"msg":"OK"}' };
    seen.length = 0;

    await milvus.resumeGc('a+b/c=');

    expect(seen).toEqual(['/api/v1/namespaces/vector-db/services/m:9091/proxy/management/datacoord/garbage_collection/resume?ticket=a%2Bb%2Fc%3D']);
  });
});

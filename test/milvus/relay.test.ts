import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { PassThrough } from 'node:stream';
import { ExecSession, ExecSessionClosedError, ExecSessionTimeoutError } from '../../core/kube/exec-session.js';
import { relayCommand, relayPod, relayPodName } from '../../core/milvus/relay.js';
import { credentialsFromEnv, relayCall, serveRelay, type RelayOptions } from '../../core/milvus/relay-server.js';

// The relay's parts on their own: what the process forwards and answers, the exec session's
// bookkeeping, and the pod it runs in. The end-to-end path is test/backup/milvus-auth.test.ts.

const PASSWORD = 's3cr3t-relay-pw';
const endpoint = { namespace: 'vector-db', service: 'production-milvus-milvus', restPort: 19530, managementPort: 9091 };

/** Relay options whose HTTP client records each request and answers with `answer`. */
function recording(answer: (url: string) => { status: number; body: string } | Error) {
  const sent: { url: string; method: string; headers: Record<string, string>; body?: string }[] = [];
  const options: RelayOptions = {
    rest: 'http://production-milvus-milvus.vector-db.svc:19530',
    management: 'http://production-milvus-milvus.vector-db.svc:9091',
    credentials: { username: 'root', password: PASSWORD },
    send: async (url, init) => {
      sent.push({ url, method: init.method, headers: init.headers, ...(init.body !== undefined ? { body: init.body } : {}) });
      const a = answer(url);
      if (a instanceof Error) throw a;
      return a;
    },
  };
  return { sent, options };
}

describe('the relay process', () => {
  it('sends a call to the Service with the credentials and answers with Milvus status and body', async () => {
    const { sent, options } = recording(() => ({ status: 200, body: '{"code":0,"data":["default"]}' }));
    const answer = await relayCall({ id: 7, port: 'rest', method: 'POST', path: '/v2/vectordb/databases/list', body: '{}' }, options);

    expect(answer).toEqual({ id: 7, status: 200, body: '{"code":0,"data":["default"]}' });
    expect(sent).toEqual([
      {
        url: 'http://production-milvus-milvus.vector-db.svc:19530/v2/vectordb/databases/list',
        method: 'POST',
        headers: { Authorization: `Bearer root:${PASSWORD}`, Accept: 'application/json', 'Content-Type': 'application/json' },
        body: '{}',
      },
    ]);
  });

  it('sends GetFlushState as a GET with its JSON body and the query of a management call', async () => {
    const { sent, options } = recording(() => ({ status: 200, body: '{"flushed":true}' }));
    await relayCall({ id: 1, port: 'management', method: 'GET', path: '/api/v1/persist/state', body: '{"flush_ts":1}' }, options);
    await relayCall({ id: 2, port: 'management', method: 'GET', path: '/management/datacoord/garbage_collection/pause', query: { pause_seconds: 60 } }, options);

    expect(sent.map((r) => [r.method, r.url, r.body])).toEqual([
      ['GET', 'http://production-milvus-milvus.vector-db.svc:9091/api/v1/persist/state', '{"flush_ts":1}'],
      ['GET', 'http://production-milvus-milvus.vector-db.svc:9091/management/datacoord/garbage_collection/pause?pause_seconds=60', undefined],
    ]);
  });

  it('forwards only the calls milvus-guard makes, to the Service it was started for', async () => {
    const { sent, options } = recording(() => ({ status: 200, body: '{}' }));
    for (const path of ['/v2/vectordb/users/list', '/v2/vectordb/entities/delete', '//attacker.example/v2/vectordb/databases/list', '/v2/vectordb/../../x', '/api/v1/credential']) {
      const answer = await relayCall({ id: 1, port: path.startsWith('/api') ? 'management' : 'rest', method: 'POST', path }, options);
      expect(answer).toMatchObject({ id: 1, refused: expect.stringContaining('the relay does not forward') });
    }
    expect(sent).toEqual([]);
  });

  it('says Milvus is unavailable, never with the credentials, when nothing answers or a proxy on the way says so', async () => {
    const refused = Object.assign(new Error(`connect ECONNREFUSED while sending Authorization: Bearer root:${PASSWORD}`), { code: 'ECONNREFUSED' });
    const down = recording(() => refused);
    const a = await relayCall({ id: 3, port: 'rest', method: 'POST', path: '/v2/vectordb/collections/list', body: '{}' }, down.options);
    expect(a).toEqual({ id: 3, unavailable: 'POST http://production-milvus-milvus.vector-db.svc:19530/v2/vectordb/collections/list: ECONNREFUSED' });

    const gateway = recording(() => ({ status: 503, body: 'no endpoints available for service "production-milvus-milvus"' }));
    const b = await relayCall({ id: 4, port: 'management', method: 'GET', path: '/healthz' }, gateway.options);
    expect(b).toMatchObject({ id: 4, unavailable: expect.stringContaining('HTTP 503 no endpoints available') });
    expect(JSON.stringify([a, b])).not.toContain(PASSWORD);
  });

  it('answers every call of a stream, by id, until its input ends', async () => {
    const { options } = recording((url) => ({ status: 200, body: url.endsWith('healthz') ? 'OK' : '{"code":0}' }));
    const input = new PassThrough();
    const output = new PassThrough();
    const lines: string[] = [];
    output.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
    const served = serveRelay(input, output, options);
    input.write('{"id":1,"port":"management","method":"GET","path":"/healthz"}\n');
    input.write('not json\n{"id":2,"port":"rest","method":"POST","path":"/v2/vectordb/databases/list","body":"{}"}\n');
    input.end('{"id":3,"what":"else"}\n');
    await served;

    expect(lines.map((l) => JSON.parse(l) as unknown).sort((x, y) => (x as { id: number }).id - (y as { id: number }).id)).toEqual([
      { id: 1, status: 200, body: 'OK' },
      { id: 2, status: 200, body: '{"code":0}' },
      { id: 3, refused: 'not a relay call: want {id, port, method, path, query?, body?}' },
    ]);
  });

  it('takes its credentials from the environment, and refuses to start without them', () => {
    expect(credentialsFromEnv({ MILVUS_USERNAME: 'root', MILVUS_PASSWORD: PASSWORD })).toEqual({ username: 'root', password: PASSWORD });
    expect(() => credentialsFromEnv({ MILVUS_PASSWORD: PASSWORD })).toThrow('the relay has no Milvus credentials: set MILVUS_USERNAME and MILVUS_PASSWORD in its environment');
  });
});

describe('an exec session', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  const open = () => {
    const stdin = new PassThrough();
    const written: string[] = [];
    stdin.on('data', (d: Buffer) => written.push(d.toString()));
    let closed = 0;
    const session = new ExecSession('vector-db/relay (relay)', stdin, () => (closed += 1));
    return { session, written, closed: () => closed };
  };

  it('numbers its requests and resolves each with the answer line of its id, in any order', async () => {
    const { session, written } = open();
    const first = session.request({ path: '/a' }, 30);
    const second = session.request({ path: '/b' }, 30);
    await new Promise((r) => setImmediate(r));
    expect(written.join('')).toBe('{"path":"/a","id":1}\n{"path":"/b","id":2}\n');

    session.answer('{"id":2,"status":200,"body":"b"}');
    session.answer('a log line, not an answer');
    session.answer('{"id":1,"status":200,"body":"a"}');
    await expect(first).resolves.toEqual({ id: 1, status: 200, body: 'a' });
    await expect(second).resolves.toEqual({ id: 2, status: 200, body: 'b' });
  });

  it('fails a request that gets no answer in time, and every waiting one when the process ends', async () => {
    jest.useFakeTimers();
    const { session } = open();
    const slow = session.request({ path: '/slow' }, 5);
    jest.advanceTimersByTime(5_000);
    await expect(slow).rejects.toBeInstanceOf(ExecSessionTimeoutError);

    const waiting = session.request({ path: '/x' }, 30);
    session.complain('node: warning\nerror: the relay has no Milvus credentials\n');
    session.fail('the process exited');
    await expect(waiting).rejects.toThrow(new ExecSessionClosedError('vector-db/relay (relay)', 'the process exited (error: the relay has no Milvus credentials)'));
    await expect(session.request({ path: '/after' }, 30)).rejects.toBeInstanceOf(ExecSessionClosedError);
  });

  it('ends its stdin and closes its stream on close', () => {
    const { session, closed } = open();
    session.close();
    expect(closed()).toBe(1);
  });
});

describe('the relay pod', () => {
  const spec = {
    endpoint,
    authSecret: { name: 'milvus-root', usernameKey: 'user', passwordKey: 'pass' },
    secretField: 'plan p, milvus.authSecret',
    image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/datamover:abc',
    run: { label: 'milvus-guard.io/backup', id: 'nightly-1' },
    deadlineSeconds: 4200,
    callTimeoutSeconds: 30,
  };

  it('gets the credentials by secretKeyRef and nothing else: no token, no volumes, no capabilities, non-root, read-only root', () => {
    const pod = relayPod(spec);
    const container = pod.spec!.containers[0]!;

    expect(pod.metadata).toMatchObject({ name: relayPodName(spec.run), namespace: 'vector-db', labels: { 'milvus-guard.io/backup': 'nightly-1', 'milvus-guard.io/purpose': 'milvus-relay' } });
    expect(pod.spec).toMatchObject({ restartPolicy: 'Never', activeDeadlineSeconds: 4200, automountServiceAccountToken: false, securityContext: { runAsNonRoot: true } });
    expect(pod.spec!.volumes).toBeUndefined();
    expect(container.env).toEqual([
      { name: 'MILVUS_USERNAME', valueFrom: { secretKeyRef: { name: 'milvus-root', key: 'user' } } },
      { name: 'MILVUS_PASSWORD', valueFrom: { secretKeyRef: { name: 'milvus-root', key: 'pass' } } },
    ]);
    expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(container.args).toEqual(['milvus-relay', '--wait']);
  });

  it('is found again by every step of the run, and a session execs the relay against the Service', () => {
    expect(relayPodName(spec.run)).toBe(relayPodName({ ...spec.run }));
    expect(relayPodName(spec.run)).not.toBe(relayPodName({ ...spec.run, id: 'nightly-2' }));
    expect(relayCommand(endpoint)).toEqual([
      'milvus-guard', 'datamover', 'milvus-relay', '--stdio',
      '--rest', 'http://production-milvus-milvus.vector-db.svc:19530',
      '--management', 'http://production-milvus-milvus.vector-db.svc:9091',
    ]);
  });
});

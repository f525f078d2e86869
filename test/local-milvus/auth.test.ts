import { describe, expect, test } from '@jest/globals';
import { MilvusSimulator, type MilvusCall, type MilvusSettings } from '../../local/milvus/index.js';
import { milvusSettingsOf } from '../../local/server/proxy.js';
import { seedMilvusResource } from '../../local/seed.js';
import { managementRequest, rest, restRequest, seededCopyPerTest, type TempVolumes } from './helpers.js';

// Authentication as the CR configures it: REST v2 always when authorizationEnabled, the
// management port's /api/v1 from 2.5.27/2.6.10, never /healthz or /management/*.
let v: TempVolumes;
seededCopyPerTest([{ database: 'default', name: 'docs', dim: 4, rows: 300 }], (copy) => (v = copy));

const NOW = () => new Date('2026-03-01T10:00:00Z');
function simulator(settings: MilvusSettings, record?: (c: MilvusCall) => void): MilvusSimulator {
  return new MilvusSimulator({ volumes: async () => v.volumes, now: NOW, settings: () => settings, ...(record ? { record } : {}) });
}
const secured = (extra: MilvusSettings = {}): MilvusSettings => ({ version: 'v2.6.10', authorizationEnabled: true, ...extra });
const LIST = '/v2/vectordb/collections/list';
const UNAUTHENTICATED = { code: 1800, message: "user hasn't authenticated" };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function persist(sim: MilvusSimulator, headers: Record<string, string> = {}) {
  const body = Buffer.from(JSON.stringify({ db_name: 'default', collection_names: ['docs'] }));
  return sim.handle({ ...managementRequest('/api/v1/persist'), method: 'POST', headers, body });
}

describe('REST v2 with authorization enabled', () => {
  test('no Authorization header answers HTTP 401 with code 1800', async () => {
    const res = await rest(simulator(secured()), LIST, {});
    expect([res.status, res.json]).toEqual([401, UNAUTHENTICATED]);
  });

  test('a wrong password answers HTTP 401 with code 1800', async () => {
    const res = await rest(simulator(secured()), LIST, {}, { authorization: 'Bearer root:wrong' });
    expect([res.status, res.json]).toEqual([401, UNAUTHENTICATED]);
  });

  test('root with the default password Milvus is accepted as Bearer user:password and as Basic', async () => {
    const sim = simulator(secured());
    const bearer = await rest(sim, LIST, {}, { authorization: 'Bearer root:Milvus' });
    const viaBasic = await rest(sim, LIST, {}, { authorization: basic('root', 'Milvus') });
    expect([bearer.status, bearer.json]).toEqual([200, { code: 0, data: ['docs'] }]);
    expect([viaBasic.status, viaBasic.json.code]).toEqual([200, 0]);
  });

  test('a token without a colon is an API key, which this Milvus does not know', async () => {
    const res = await rest(simulator(secured()), LIST, {}, { authorization: 'Bearer root' });
    expect(res.status).toBe(401);
  });

  test('common.security.defaultRootPassword replaces Milvus from 2.4.7', async () => {
    const sim = simulator(secured({ defaultRootPassword: 's3cret' }));
    expect((await rest(sim, LIST, {}, { authorization: 'Bearer root:s3cret' })).status).toBe(200);
    expect((await rest(sim, LIST, {}, { authorization: 'Bearer root:Milvus' })).status).toBe(401);
  });

  test('before 2.4.7 defaultRootPassword is not read and root keeps Milvus', async () => {
    const sim = simulator(secured({ version: 'v2.4.6', defaultRootPassword: 's3cret' }));
    expect((await rest(sim, LIST, {}, { authorization: 'Bearer root:Milvus' })).status).toBe(200);
  });

  test('authentication comes before routing: an unknown route without credentials answers 401, not 404', async () => {
    const res = await simulator(secured()).handle(restRequest('/v2/vectordb/nope/nothing', {}));
    expect(res.status).toBe(401);
  });

  test('without authorizationEnabled no credentials are needed', async () => {
    expect((await rest(simulator({ version: 'v2.6.10' }), LIST, {})).status).toBe(200);
  });
});

describe('the management port with authorization enabled', () => {
  test.each([
    ['v2.5.27', 401],
    ['v2.5.26', 200],
    ['v2.6.10', 401],
    ['v2.6.9', 200],
    ['master-20260301-0a1b2c3', 401],
    ['v2.4.23', 200],
  ])('/api/v1/persist without credentials on %s answers %i', async (version, status) => {
    const res = await persist(simulator(secured({ version })));
    expect(res.status).toBe(status);
    if (status === 401) expect(JSON.parse(String(res.body))).toEqual(UNAUTHENTICATED);
  });

  test('/api/v1/persist with root credentials is served on 2.6.10', async () => {
    const res = await persist(simulator(secured()), { authorization: 'Bearer root:Milvus' });
    expect(res.status).toBe(200);
    expect(String(res.body)).toMatch(/"coll_flush_ts"/);
  });

  test('/healthz and the GC pause need no credentials', async () => {
    const sim = simulator(secured());
    const health = await sim.handle(managementRequest('/healthz'));
    const pause = await sim.handle(managementRequest('/management/datacoord/garbage_collection/pause', 'pause_seconds=60'));
    expect([health.status, pause.status]).toEqual([200, 200]);
  });
});

describe('what the simulator records and reads', () => {
  test('credentials never reach the recorded calls', async () => {
    const seen: MilvusCall[] = [];
    const sim = simulator(secured({ defaultRootPassword: 'Sup3r-s3cret' }), (c) => seen.push(c));
    await rest(sim, LIST, {}, { authorization: 'Bearer root:Sup3r-s3cret' });
    await rest(sim, LIST, {}, { authorization: 'Bearer root:other-Sup3r' });
    await persist(sim, { authorization: basic('root', 'Sup3r-s3cret') });

    const recorded = JSON.stringify(seen);
    expect(recorded).not.toMatch(/Sup3r|cm9vdDpTdXAz/);
    expect(seen.map((c) => c.detail?.auth)).toEqual(['accepted', 'rejected', 'accepted']);
  });

  test('reads the version, authorizationEnabled and defaultRootPassword from the Milvus CR', () => {
    const cr = seedMilvusResource('ns', 'm', 'v2.5.27');
    (cr.spec as { config: unknown }).config = { common: { security: { authorizationEnabled: true, defaultRootPassword: 'pw' } } };
    expect(milvusSettingsOf(cr)).toEqual({ version: 'v2.5.27', authorizationEnabled: true, defaultRootPassword: 'pw' });
    expect(milvusSettingsOf(seedMilvusResource())).toEqual({ version: 'v2.6.10', authorizationEnabled: false });
  });
});

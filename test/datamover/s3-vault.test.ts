/**
 * The data mover against an s3:// vault: `backup --part-size` sends objects above the part size
 * as multipart uploads, so a part that fails is sent again on its own; `--credentials-file`
 * gives it the keys of an S3-compatible server; a vault that refuses a request is one line.
 * Against s3rver behind the faulty proxy on 127.0.0.1 (bench/faulty-s3.ts), whose Object Lock
 * emulation (what the fault matrix's workflows need of the vault bucket) is pinned here too.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { PutObjectRetentionCommand } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { FaultyS3Proxy, keysMatching } from '../../bench/faulty-s3.js';
import { S3VaultStore } from '../../core/vault/s3-store.js';
import { EXPORT_CREATE_ONLY_PATTERNS } from '../../core/vault/layout.js';
import { ObjectExistsError } from '../../core/vault/store.js';
import { Rng, runDatamoverCli, snapshotTree, tempDir } from './helpers.js';

const BUCKET = 'parts';
const KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const MiB = 1024 * 1024;
const CREATE_ONLY = keysMatching('vault/', EXPORT_CREATE_ONLY_PATTERNS);

const cli = (args: string[]) => runDatamoverCli(args);

let dir: string;
let server: S3rver;
let port: number;
let proxy: FaultyS3Proxy;
let vault: string[];
let endpoint: string;

beforeAll(async () => {
  dir = await tempDir('part-size');
  server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: join(dir, 's3rver'), configureBuckets: [{ name: BUCKET, configs: [] }] });
  ({ port } = await server.run());
  // The vault's bucket policy for the export role: packs, summaries and file indexes are only
  // ever created (infra/constructs/vault.ts). Every backup below goes through it.
  proxy = new FaultyS3Proxy(port, { createOnly: CREATE_ONLY });
  endpoint = await proxy.start();
  const credentials = join(dir, 'credentials');
  await writeFile(credentials, `[default]\naws_access_key_id = ${KEYS.accessKeyId}\naws_secret_access_key = ${KEYS.secretAccessKey}\n`, { mode: 0o600 });
  vault = ['--vault', `s3://${BUCKET}/vault`, '--endpoint', endpoint, '--region', 'us-east-1', '--credentials-file', credentials];
});

afterAll(async () => {
  await proxy?.stop();
  await server?.close();
});

afterEach(() => {
  proxy.clear();
  process.exitCode = 0;
});

describe('datamover backup --part-size over S3', () => {
  it('uploads a pack above the part size in parts, sends a failed part again, and restores byte-exact', async () => {
    const source = join(dir, 'source');
    await mkdir(source);
    await writeFile(join(source, 'segment'), new Rng('parts').bytes(6 * MiB + 4321));
    const failing = proxy.inject({ kind: 'InternalError', on: 'write', parts: true, times: 1 });

    const backup = await cli(['backup', ...vault, '--source', source, '--volume', 'vol', '--backup-id', 'b1', '--part-size', '5', '--json']);
    const restore = await cli(['restore', ...vault, '--volume', 'vol', '--backup-id', 'b1', '--target', join(dir, 'restored')]);

    expect(backup).toMatchObject({ code: 0, stderr: '' });
    // The rule fails only UploadPart requests: the pack went up in parts, and one was sent again.
    expect(failing.hits).toBe(1);
    expect(proxy.faults['multipart part']).toBe(1);
    expect(restore.code).toBe(0);
    expect(await snapshotTree(join(dir, 'restored'))).toEqual(await snapshotTree(source));
  });

  it('reports a vault that refuses every write as one line naming the vault and what it answered, not as an internal error', async () => {
    const source = join(dir, 'denied');
    await mkdir(source);
    await writeFile(join(source, 'file'), 'data');
    proxy.inject({ kind: 'AccessDenied', on: 'write', times: null });

    const r = await cli(['backup', ...vault, '--source', source, '--volume', 'vol', '--backup-id', 'denied']);

    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `error: vault s3://${BUCKET}/vault/ answered AccessDenied (HTTP 403): Access Denied (injected fault) after 1 attempt(s); check the credentials and the vault role's permissions on the bucket and its KMS key\n`,
    );
  });

  it('says an index whose download was cut short could not be read, not that it is damaged, and a run after completes', async () => {
    const source = join(dir, 'cut');
    await mkdir(join(source, 'segments'), { recursive: true });
    for (let i = 0; i < 40; i++) await writeFile(join(source, 'segments', `log-${i}`), new Rng(`cut ${i}`).bytes(3000));
    expect((await cli(['backup', ...vault, '--source', source, '--volume', 'vol', '--backup-id', 'cut'])).code).toBe(0);
    const index = /backups\/cut\/volumes\/vol\/index\.jsonl\.gz$/;
    const what = 'index of backup cut volume vol';

    // verify reads it once; a restore hashes it first, then restores from a second download.
    const cuts = [proxy.inject({ kind: 'cut', key: index })];
    const verify = await cli(['verify', ...vault, '--volume', 'vol', '--backup-id', 'cut']);
    cuts.push(proxy.inject({ kind: 'cut', key: index, skip: 1 }));
    const restore = await cli(['restore', ...vault, '--volume', 'vol', '--backup-id', 'cut', '--target', join(dir, 'cut-restored')]);
    const again = await cli(['restore', ...vault, '--volume', 'vol', '--backup-id', 'cut', '--target', join(dir, 'cut-restored')]);

    expect(cuts.map((c) => c.hits)).toEqual([1, 1]);
    const cutShort = new RegExp(`^error: ${what}: reading it failed \\(.+\\); that is a failure of the read, not known damage to the index: try again\n$`);
    expect(verify).toMatchObject({ code: 1, stderr: expect.stringMatching(cutShort) });
    expect(restore).toMatchObject({ code: 1, stderr: expect.stringMatching(cutShort) });
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(await snapshotTree(join(dir, 'cut-restored'))).toEqual(await snapshotTree(source));
  });

  it('downloads a parent index or summary cut short again, and fails in one line that says to try again when every try is cut', async () => {
    const source = join(dir, 'cut-parent');
    await mkdir(source);
    await writeFile(join(source, 'a'), new Rng('cut parent').bytes(3000));
    expect((await cli(['backup', ...vault, '--source', source, '--volume', 'cutvol', '--backup-id', 'p1'])).code).toBe(0);
    const parentIndex = /backups\/p1\/volumes\/cutvol\/index\.jsonl\.gz$/;
    const parentSummary = /volumes\/cutvol\/backups\/p1\.json$/;

    // Cut once each: downloaded again (the parent's index is staged to a local file, its summary read whole).
    const once = [proxy.inject({ kind: 'cut', key: parentIndex }), proxy.inject({ kind: 'cut', key: parentSummary })];
    const retried = await cli(['backup', ...vault, '--source', source, '--volume', 'cutvol', '--backup-id', 'p2', '--json']);
    proxy.clear();
    const index = proxy.inject({ kind: 'cut', key: parentIndex, times: null });
    const indexCut = await cli(['backup', ...vault, '--source', source, '--volume', 'cutvol', '--backup-id', 'p3']);
    proxy.clear();
    const summary = proxy.inject({ kind: 'cut', key: parentSummary, times: null });
    const summaryCut = await cli(['backup', ...vault, '--source', source, '--volume', 'cutvol', '--backup-id', 'p4']);

    expect(once.map((c) => c.hits)).toEqual([1, 1]);
    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.stdout)).toMatchObject({ parentBackupId: 'p1', filesUnchanged: 1 });
    expect([index.hits, summary.hits]).toEqual([3, 3]);
    expect(indexCut).toMatchObject({ code: 1, stderr: 'error: index backups/p1/volumes/cutvol/index.jsonl.gz: reading it failed 3 times (aborted); that is a failure of the read, not known damage to the index: try again\n' });
    expect(summaryCut).toMatchObject({ code: 1, stderr: `error: object volumes/cutvol/backups/p1.json in vault s3://${BUCKET}/vault/ could not be read: its download was cut short 3 times (aborted); try again\n` });
  });

  it('creates every pack, summary and index with If-None-Match, and takes a write whose answer was lost, sent again, for done', async () => {
    const source = join(dir, 'lost');
    await mkdir(source);
    await writeFile(join(source, 'segment'), new Rng('lost').bytes(6 * MiB + 99));
    await writeFile(join(source, 'small'), 'small');
    // Done by the server, answered to nobody: the SDK sends each again and meets a 412. The pack
    // goes up in parts: its CompleteMultipartUpload is the one lost.
    const lost = [/data\/packs\//, /volumes\/lostvol\/backups\/l1\.json$/, /index\.jsonl\.gz$/].map((key) => proxy.inject({ kind: 'lost', creates: true, key }));
    const refused = proxy.preconditionFailed;

    const backup = await cli(['backup', ...vault, '--source', source, '--volume', 'lostvol', '--backup-id', 'l1', '--part-size', '5']);
    const restore = await cli(['restore', ...vault, '--volume', 'lostvol', '--backup-id', 'l1', '--target', join(dir, 'lost-restored')]);

    expect(lost.map((l) => l.hits)).toEqual([1, 1, 1]);
    expect(proxy.preconditionFailed - refused).toBe(3);
    expect(backup).toMatchObject({ code: 0, stderr: '' });
    expect(restore.code).toBe(0);
    expect(await snapshotTree(join(dir, 'lost-restored'))).toEqual(await snapshotTree(source));
  });

  it('cannot add a version over a pack: a plain write is refused, a create-only one finds it there', async () => {
    const source = join(dir, 'forge');
    await mkdir(source);
    await writeFile(join(source, 'file'), new Rng('forge').bytes(5000));
    expect((await cli(['backup', ...vault, '--source', source, '--volume', 'forgevol', '--backup-id', 'f1'])).code).toBe(0);
    const store = new S3VaultStore({ bucket: BUCKET, prefix: 'vault', endpoint, region: 'us-east-1', credentials: KEYS, maxAttempts: 1 });
    let pack = '';
    for await (const o of store.list('data/packs/')) pack = o.key;

    await expect(store.put(pack, Buffer.from('forged'))).rejects.toMatchObject({ name: 'AccessDenied' });
    await expect(store.put(pack, Buffer.from('forged'), { ifAbsent: true })).rejects.toThrow(ObjectExistsError);
    expect(await cli(['verify', ...vault, '--volume', 'forgevol', '--backup-id', 'f1', '--read-data'])).toMatchObject({ code: 0 });
  });

  it('refuses a part size below S3 smallest part in one line', async () => {
    const r = await cli(['backup', ...vault, '--source', dir, '--volume', 'vol', '--backup-id', 'b2', '--part-size', '4']);

    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: --part-size: "4" must be a whole number of MiB from 5 (S3\'s smallest part) to 5120\n');
  });

  it('refuses a credentials file it cannot read in one line', async () => {
    const args = vault.slice(0, -1).concat(join(dir, 'no-such-file'));

    const r = await cli(['verify', ...args]);

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: --credentials-file: cannot read .*no-such-file \(ENOENT\); pass a readable AWS shared credentials file\n$/);
  });
});

describe('the faulty S3 proxy with Object Lock, as the vault bucket has it', () => {
  const DAY = 86_400_000;
  let locked: FaultyS3Proxy;
  let store: S3VaultStore;

  beforeAll(async () => {
    locked = new FaultyS3Proxy(port, { objectLock: { mode: 'COMPLIANCE', defaultRetentionDays: 7 } });
    const endpoint = await locked.start();
    store = new S3VaultStore({ bucket: BUCKET, prefix: 'locked', endpoint, region: 'us-east-1', credentials: KEYS });
  });

  afterAll(async () => {
    await locked?.stop();
  });

  it('gives an object written without a lock the bucket default retention', async () => {
    const before = Date.now();
    await store.put('plain', Buffer.from('x'));

    const info = await store.head('plain');

    expect(info?.retainUntil?.getTime()).toBeGreaterThanOrEqual(before + 7 * DAY - 1000);
    expect(info?.retainUntil?.getTime()).toBeLessThanOrEqual(Date.now() + 7 * DAY + 1000);
  });

  it('keeps the date a write names, extends it on request and refuses to shorten a COMPLIANCE lock', async () => {
    const until = new Date(Date.now() + 30 * DAY);
    await store.put('dated', Buffer.from('x'), { retainUntil: until });

    const extended = await store.extendRetention('dated', new Date(until.getTime() + DAY));
    const shorter = store.client.send(new PutObjectRetentionCommand({ Bucket: BUCKET, Key: 'locked/dated', Retention: { Mode: 'COMPLIANCE', RetainUntilDate: until } }));

    expect(extended).toBe(true);
    await expect(shorter).rejects.toMatchObject({ name: 'AccessDenied' });
    expect((await store.head('dated'))?.retainUntil?.toISOString()).toBe(new Date(until.getTime() + DAY).toISOString());
  });
});

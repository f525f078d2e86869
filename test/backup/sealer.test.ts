import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { KmsSecretSealer, LocalKeySealer, SealedValueError } from '../../core/backup/sealer.js';

const CONTEXT = { backup: 'b-1', namespace: 'vector-db', name: 'milvus-auth' };
const SECRET = Buffer.from('apiVersion: v1\nkind: Secret\ndata:\n  password: aHVudGVyMg==\n');

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});
async function keyFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-sealer-'));
  dirs.push(dir);
  return join(dir, 'sealer.key');
}

describe('LocalKeySealer', () => {
  it('opens what it sealed', async () => {
    const sealer = new LocalKeySealer(await keyFile());

    const sealed = await sealer.seal(SECRET, CONTEXT);

    expect(await sealer.open(sealed)).toEqual(SECRET);
  });

  it('never stores the plaintext', async () => {
    const sealed = await new LocalKeySealer(await keyFile()).seal(SECRET, CONTEXT);

    expect(JSON.stringify(sealed)).not.toContain('aHVudGVyMg');
    expect(Buffer.from(sealed.ciphertext, 'base64').includes(Buffer.from('password'))).toBe(false);
  });

  it('creates its key file readable by the owner only', async () => {
    const file = await keyFile();

    await new LocalKeySealer(file).seal(SECRET, CONTEXT);

    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('refuses a sealed value whose context was changed', async () => {
    const sealer = new LocalKeySealer(await keyFile());
    const sealed = await sealer.seal(SECRET, CONTEXT);

    await expect(sealer.open({ ...sealed, context: { ...CONTEXT, name: 'other' } })).rejects.toThrow(SealedValueError);
  });

  it('refuses a tampered ciphertext', async () => {
    const sealer = new LocalKeySealer(await keyFile());
    const sealed = await sealer.seal(SECRET, CONTEXT);
    const bytes = Buffer.from(sealed.ciphertext, 'base64');
    bytes[0] = bytes[0]! ^ 1;

    await expect(sealer.open({ ...sealed, ciphertext: bytes.toString('base64') })).rejects.toThrow(/does not authenticate/);
  });

  it('refuses a value sealed under another key file', async () => {
    const sealed = await new LocalKeySealer(await keyFile()).seal(SECRET, CONTEXT);

    await expect(new LocalKeySealer(await keyFile()).open(sealed)).rejects.toThrow(/sealed with key local:/);
  });
});

describe('KmsSecretSealer', () => {
  const kms = mockClient(KMSClient);
  const KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const dataKey = () => new Uint8Array(32).fill(7);
  beforeEach(() => {
    kms.reset();
    kms.on(GenerateDataKeyCommand).callsFake(() => ({ KeyId: KEY, Plaintext: dataKey(), CiphertextBlob: Buffer.from('wrapped-data-key') }));
    kms.on(DecryptCommand).callsFake(() => ({ KeyId: KEY, Plaintext: dataKey() }));
  });

  it('asks KMS for a 256-bit data key bound to the encryption context', async () => {
    await new KmsSecretSealer(KEY, new KMSClient({})).seal(SECRET, CONTEXT);

    expect(kms.commandCalls(GenerateDataKeyCommand)[0]!.args[0].input).toEqual({ KeyId: KEY, KeySpec: 'AES_256', EncryptionContext: CONTEXT });
  });

  it('stores the KMS-encrypted data key and opens the value through KMS Decrypt with the same context', async () => {
    const sealer = new KmsSecretSealer(KEY, new KMSClient({}));
    const sealed = await sealer.seal(SECRET, CONTEXT);

    const opened = await sealer.open(sealed);

    expect(Buffer.from(sealed.encryptedDataKey, 'base64').toString()).toBe('wrapped-data-key');
    expect(opened).toEqual(SECRET);
    expect(kms.commandCalls(DecryptCommand)[0]!.args[0].input).toMatchObject({ KeyId: KEY, EncryptionContext: CONTEXT });
  });

  it("opens in a DR region what the primary region sealed under a multi-Region key, with that region's replica", async () => {
    const PRIMARY = 'arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab';
    const REPLICA = 'arn:aws:kms:us-west-2:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab';
    kms.on(GenerateDataKeyCommand).callsFake(() => ({ KeyId: PRIMARY, Plaintext: dataKey(), CiphertextBlob: Buffer.from('wrapped-data-key') }));
    const sealed = await new KmsSecretSealer(PRIMARY, new KMSClient({})).seal(SECRET, CONTEXT);

    expect(await new KmsSecretSealer(REPLICA, new KMSClient({})).open(sealed)).toEqual(SECRET);

    expect(sealed.keyId).toBe(PRIMARY);
    expect(kms.commandCalls(DecryptCommand)[0]!.args[0].input).toMatchObject({ KeyId: REPLICA, EncryptionContext: CONTEXT });
  });

  it('names the sealing key for a value sealed under a single-Region key, whatever key the sealer has', async () => {
    const sealed = await new KmsSecretSealer(KEY, new KMSClient({})).seal(SECRET, CONTEXT);
    await new KmsSecretSealer('arn:aws:kms:us-west-2:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab', new KMSClient({})).open(sealed);

    expect(kms.commandCalls(DecryptCommand)[0]!.args[0].input).toMatchObject({ KeyId: KEY });
  });
});

/**
 * Sealing Secrets before they reach the vault: envelope encryption, with one fresh 256-bit data
 * key per Secret used for AES-256-GCM here and the data key itself encrypted by a key-encryption
 * key — KMS in AWS (`KmsSecretSealer`), a local key file on the embedded default
 * (`LocalKeySealer`). The encryption context (backup, namespace, name) is bound into both
 * layers, so a sealed Secret cannot be passed off as another one.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';

export const SEALED_FORMAT = 'milvus-guard/sealed-secret-v1';

/**
 * The encryption-context keys a sealed value may carry: {backup, namespace, name} for a Secret,
 * and `kind` for anything else sealed. The sealing key's policy allows exactly these
 * (infra/constructs/sealing-key.ts), and the local sealer refuses others as KMS would.
 */
export const SEALING_CONTEXT_KEYS = ['backup', 'namespace', 'name', 'kind'] as const;

/** A sealed value as stored in the vault (JSON). */
export interface SealedValue {
  readonly format: typeof SEALED_FORMAT;
  /** Which key-encryption key sealed it (a KMS key ARN, or `local:<fingerprint>`). */
  readonly keyId: string;
  readonly encryptedDataKey: string;
  readonly iv: string;
  readonly tag: string;
  readonly ciphertext: string;
  readonly context: Record<string, string>;
}

/** Seals and opens values with envelope encryption. */
export interface SecretSealer {
  seal(plaintext: Uint8Array, context: Record<string, string>): Promise<SealedValue>;
  open(sealed: SealedValue): Promise<Buffer>;
}

/** A sealed value could not be opened: wrong key, changed context or tampered ciphertext. */
export class SealedValueError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SealedValueError';
  }
}

const aad = (context: Record<string, string>): Buffer =>
  Buffer.from(JSON.stringify(Object.fromEntries(Object.entries(context).sort(([a], [b]) => a.localeCompare(b)))));

function gcmSeal(key: Uint8Array, plaintext: Uint8Array, context: Record<string, string>): { iv: Buffer; tag: Buffer; ciphertext: Buffer } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(context));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), ciphertext };
}

function gcmOpen(key: Uint8Array, parts: { iv: Buffer; tag: Buffer; ciphertext: Buffer }, context: Record<string, string>): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, parts.iv);
    decipher.setAAD(aad(context));
    decipher.setAuthTag(parts.tag);
    return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]);
  } catch (err) {
    throw new SealedValueError('the sealed value does not authenticate: it was changed, or sealed with another key or context', { cause: err });
  }
}

function envelope(keyId: string, encryptedDataKey: Uint8Array, dataKey: Uint8Array, plaintext: Uint8Array, context: Record<string, string>): SealedValue {
  const { iv, tag, ciphertext } = gcmSeal(dataKey, plaintext, context);
  return {
    format: SEALED_FORMAT,
    keyId,
    encryptedDataKey: Buffer.from(encryptedDataKey).toString('base64'),
    iv: iv.toString('base64'),
    tag: tag.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    context,
  };
}

const partsOf = (s: SealedValue) => ({ iv: Buffer.from(s.iv, 'base64'), tag: Buffer.from(s.tag, 'base64'), ciphertext: Buffer.from(s.ciphertext, 'base64') });

/** Envelope encryption under a KMS key (the vault's customer managed key). */
export class KmsSecretSealer implements SecretSealer {
  private readonly kms: KMSClient;

  constructor(
    private readonly keyId: string,
    kms?: KMSClient,
  ) {
    this.kms = kms ?? new KMSClient({});
  }

  async seal(plaintext: Uint8Array, context: Record<string, string>): Promise<SealedValue> {
    const out = await this.kms.send(new GenerateDataKeyCommand({ KeyId: this.keyId, KeySpec: 'AES_256', EncryptionContext: context }));
    if (!out.Plaintext || !out.CiphertextBlob) throw new Error(`KMS GenerateDataKey for ${this.keyId} returned no data key`);
    try {
      return envelope(out.KeyId ?? this.keyId, out.CiphertextBlob, out.Plaintext, plaintext, context);
    } finally {
      out.Plaintext.fill(0);
    }
  }

  /**
   * Opens a sealed value. A value sealed under a multi-Region key opens with this sealer's own
   * replica of that key (the same `mrk-` id in this sealer's region): a DR region unseals what
   * the primary region sealed without calling it. KMS decrypts with the related multi-Region key
   * of the Region it is called in, and `KeyId` must name that key.
   * https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-overview.html
   */
  async open(sealed: SealedValue): Promise<Buffer> {
    const keyId = sameMultiRegionKey(sealed.keyId, this.keyId) ? this.keyId : sealed.keyId;
    const out = await this.kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from(sealed.encryptedDataKey, 'base64'), EncryptionContext: sealed.context, KeyId: keyId }));
    if (!out.Plaintext) throw new SealedValueError(`KMS Decrypt returned no data key for ${sealed.keyId}`);
    try {
      return gcmOpen(out.Plaintext, partsOf(sealed), sealed.context);
    } finally {
      out.Plaintext.fill(0);
    }
  }
}

/** The `mrk-…` id of a multi-Region key ARN, or undefined for any other key. */
export function multiRegionKeyId(arn: string): string | undefined {
  return /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/(mrk-[0-9a-f]{32})$/.exec(arn)?.[1];
}

/** Whether two key ARNs are replicas of one multi-Region key (in any two Regions). */
function sameMultiRegionKey(a: string, b: string): boolean {
  const id = multiRegionKeyId(a);
  return id !== undefined && id === multiRegionKeyId(b) && a.split(':')[4] === b.split(':')[4];
}

/**
 * Envelope encryption under a 256-bit key kept in a file (mode 0600, created on first use):
 * the embedded default's stand-in for KMS. Losing the file loses the sealed Secrets, exactly
 * as deleting a KMS key would.
 */
export class LocalKeySealer implements SecretSealer {
  private key: Promise<Buffer> | undefined;

  constructor(readonly keyFile: string) {}

  private loadKey(): Promise<Buffer> {
    this.key ??= readFile(this.keyFile).then(
      (k) => {
        if (k.length !== 32) throw new Error(`${this.keyFile} is not a 256-bit key (${k.length} bytes)`);
        return k;
      },
      async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        const fresh = randomBytes(32);
        await mkdir(dirname(this.keyFile), { recursive: true });
        await writeFile(this.keyFile, fresh, { mode: 0o600, flag: 'wx' }).catch(async (e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
        return readFile(this.keyFile);
      },
    );
    return this.key;
  }

  private async keyId(): Promise<string> {
    return `local:${createHash('sha256').update(await this.loadKey()).digest('hex').slice(0, 16)}`;
  }

  async seal(plaintext: Uint8Array, context: Record<string, string>): Promise<SealedValue> {
    // As the sealing key's policy makes KMS refuse GenerateDataKey with any other context key.
    const refused = Object.keys(context).filter((k) => !(SEALING_CONTEXT_KEYS as readonly string[]).includes(k));
    if (refused.length > 0) throw new Error(`AccessDenied: the sealing key's policy allows encryption context keys ${SEALING_CONTEXT_KEYS.join(', ')} only, not ${refused.join(', ')} (a bug in milvus-guard)`);
    const kek = await this.loadKey();
    const dataKey = randomBytes(32);
    const wrapped = gcmSeal(kek, dataKey, context);
    const sealed = envelope(await this.keyId(), Buffer.concat([wrapped.iv, wrapped.tag, wrapped.ciphertext]), dataKey, plaintext, context);
    dataKey.fill(0);
    return sealed;
  }

  async open(sealed: SealedValue): Promise<Buffer> {
    if (sealed.keyId !== (await this.keyId())) throw new SealedValueError(`sealed with key ${sealed.keyId}, but ${this.keyFile} is ${await this.keyId()}`);
    const wrapped = Buffer.from(sealed.encryptedDataKey, 'base64');
    const dataKey = gcmOpen(await this.loadKey(), { iv: wrapped.subarray(0, 12), tag: wrapped.subarray(12, 28), ciphertext: wrapped.subarray(28) }, sealed.context);
    return gcmOpen(dataKey, partsOf(sealed), sealed.context);
  }
}

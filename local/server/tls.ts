/**
 * The serving certificate of the local API server. kubectl only sends a kubeconfig's
 * credentials over TLS (client-go ignores auth info for plain-HTTP servers), so the server
 * speaks HTTPS with a self-signed certificate for 127.0.0.1 made once per state directory;
 * the kubeconfig carries it as `certificate-authority-data`.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generate } from 'selfsigned';

/** PEM key and certificate of the server. */
export interface TlsMaterial {
  key: string;
  cert: string;
}

const VALID_DAYS = 3650;

/** Loads the state directory's certificate, creating it (valid 10 years) on first use. */
export async function ensureTlsMaterial(stateDir: string): Promise<TlsMaterial> {
  const dir = join(stateDir, 'tls');
  const keyFile = join(dir, 'server.key');
  const certFile = join(dir, 'server.crt');
  if (!existsSync(keyFile) || !existsSync(certFile)) {
    const notBeforeDate = new Date();
    const pems = await generate([{ name: 'commonName', value: 'milvus-guard-local' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate,
      notAfterDate: new Date(notBeforeDate.getTime() + VALID_DAYS * 86_400_000),
      // The certificate is its own CA: the kubeconfig trusts it directly.
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] },
      ],
    });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(keyFile, pems.private, { mode: 0o600 });
    await writeFile(certFile, pems.cert);
  }
  return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') };
}

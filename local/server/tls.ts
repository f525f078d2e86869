/**
 * The serving certificate of the local API server. kubectl only sends a kubeconfig's
 * credentials over TLS (client-go ignores auth info for plain-HTTP servers), so the server
 * speaks HTTPS with a self-signed certificate for 127.0.0.1 made once per state directory;
 * the kubeconfig carries it as `certificate-authority-data`. The certificate is made by the
 * `openssl` command line tool, which Node's crypto module cannot replace (it signs, but does
 * not build X.509 certificates).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** PEM key and certificate of the server. */
export interface TlsMaterial {
  key: string;
  cert: string;
}

/** Loads the state directory's certificate, creating it (valid 10 years) on first use. */
export function ensureTlsMaterial(stateDir: string): TlsMaterial {
  const dir = join(stateDir, 'tls');
  const keyFile = join(dir, 'server.key');
  const certFile = join(dir, 'server.crt');
  if (!existsSync(keyFile) || !existsSync(certFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      execFileSync(
        'openssl',
        [
          'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
          '-keyout', keyFile, '-out', certFile, '-days', '3650',
          '-subj', '/CN=milvus-guard-local',
          '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
          '-addext', 'basicConstraints=critical,CA:TRUE',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
      throw new Error(
        `could not create the local cluster's TLS certificate with openssl (${stderr || (err as Error).message}); install OpenSSL 1.1.1 or newer and retry`,
      );
    }
  }
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
}

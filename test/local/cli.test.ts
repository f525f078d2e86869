import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clientsFor } from './helpers.js';

const CLI = fileURLToPath(new URL('../../bin/milvus-guard.js', import.meta.url));
let child: ChildProcess | undefined;
let stateDir: string | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

/** Resolves with the first stdout line matching `pattern`, or rejects when the process exits first. */
function waitForLine(proc: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; stdout: ${buffered}; stderr: ${stderr}`)), timeoutMs);
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.stdout!.on('data', (c: Buffer) => {
      buffered += c.toString();
      const match = buffered.match(pattern);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before printing ${pattern}; stderr: ${stderr}`));
    });
  });
}

describe('milvus-guard local up', () => {
  it('prints the kubeconfig path when ready, serves the API and exits 0 on SIGTERM', async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'mg-local-up-'));
    child = spawn(process.execPath, [CLI, 'local', 'up', '--state', stateDir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });

    const [, kubeconfigPath] = await waitForLine(child, /^kubeconfig: (.+)$/m, 45_000);
    const { core } = clientsFor(kubeconfigPath!);
    const namespaces = (await core.listNamespace()).items.map((n) => n.metadata!.name);
    const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');

    expect(kubeconfigPath).toBe(join(stateDir, 'kubeconfig'));
    expect(statSync(kubeconfigPath!).mode & 0o777).toBe(0o600);
    expect(namespaces).toContain('vector-db');
    expect(await exited).toBe(0);
    expect(existsSync(join(stateDir, 'objects', 'meta.json'))).toBe(true);
  }, 60_000);

  it('rejects a port that is not a number, with exit code 1', async () => {
    child = spawn(process.execPath, [CLI, 'local', 'up', '--port', 'many'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));

    const code = await new Promise<number | null>((resolve) => child!.on('exit', resolve));

    expect(code).toBe(1);
    expect(stderr).toContain('--port must be an integer from 0 to 65535');
  }, 30_000);
});

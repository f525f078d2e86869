import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

// infra/app.ts as the CDK CLI runs it (cdk.json "app"), with the context the CLI passes in
// CDK_CONTEXT_JSON. Only the failure path runs here: it stops before any bundling.

const run = promisify(execFile);
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'milvus-guard-app-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function synth(configFile: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node_modules/.bin/tsx', ['infra/app.ts'], {
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ config: configFile }), CDK_OUTDIR: join(dir, 'cdk.out') },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('cdk app', () => {
  it('stops on a bad config with the list of its problems and no stack trace', async () => {
    const file = join(dir, 'bad.yaml');
    const text = readFileSync('examples/production.yaml', 'utf8').replace('defaultRetentionDays: 7', 'defaultRetentionDays: 0').replace('dayOfWeek: Sunday', 'dayOfWeek: Sundae');
    writeFileSync(file, text);

    const result = await synth(file);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: config file .*bad\.yaml is not valid:\n/);
    expect(result.stderr).toMatch(/vaults\[0\]\.objectLock\.defaultRetentionDays \(line \d+\): must be at least 1/);
    expect(result.stderr).toMatch(/plans\[0\]\.retention\.dayOfWeek \(line \d+\): "Sundae" is not a weekday/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('stops when the config file does not exist, naming it', async () => {
    const result = await synth(join(dir, 'missing.yaml'));

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/missing\.yaml[\s\S]*the file does not exist/);
  }, 60_000);
});

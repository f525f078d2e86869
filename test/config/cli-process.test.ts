import { execFile } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';

interface Exit {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real `milvus-guard` entry point in a child process. */
function cli(...args: string[]): Promise<Exit> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/milvus-guard.js', ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('milvus-guard config validate (as a process)', () => {
  it('exits 0 for the production example', async () => {
    const result = await cli('config', 'validate', 'examples/production.yaml');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^examples\/production\.yaml: valid \(/);
  });

  it('exits 1 for an invalid file and prints its problems without a stack trace', async () => {
    const result = await cli('config', 'validate', 'test/fixtures/config/invalid.yaml');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('test/fixtures/config/invalid.yaml: plans[0].retention.dayOfWeek (line 23): "Funday" is not a weekday');
    expect(result.stderr).not.toMatch(/\n\s+at |internal error/);
  });
});

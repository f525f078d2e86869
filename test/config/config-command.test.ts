import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { registerConfigCommands } from '../../cli/commands/config.js';
import { parseConfig } from '../../core/config/parse.js';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `milvus-guard <args>` with only the config commands registered, capturing the output. */
async function run(...args: string[]): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const program = new Command('milvus-guard').exitOverride().configureOutput({ writeOut: (s) => stdout.push(s), writeErr: (s) => stderr.push(s) });
  registerConfigCommands(program, { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s) });
  process.exitCode = undefined;
  try {
    await program.parseAsync(['node', 'milvus-guard', ...args]);
    return { code: typeof process.exitCode === 'number' ? process.exitCode : 0, stdout: stdout.join(''), stderr: stderr.join('') };
  } finally {
    // The commands report through process.exitCode; never let it leak into the test runner.
    process.exitCode = undefined;
  }
}

const INVALID = 'test/fixtures/config/invalid.yaml';

describe('config validate', () => {
  it('exits 0 and prints a one-line summary for a valid file', async () => {
    // Act
    const result = await run('config', 'validate', 'examples/production.yaml');

    // Assess
    expect(result).toEqual({
      code: 0,
      stdout: 'examples/production.yaml: valid (2 clusters, 1 vault, 2 schedule policies, 1 hook, 1 plan, 1 drill, 1 subscription)\n',
      stderr: '',
    });
  });

  it('exits 1 and prints every problem on its own line, prefixed by the file name', async () => {
    // Act
    const result = await run('config', 'validate', INVALID);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toEqual([
      `${INVALID}: clusters[0].region (line 5): "us-east-3" is not an AWS Region; expected one like us-east-1, eu-west-1`,
      `${INVALID}: plans[0].vault (line 19): names vault "primry" that is not defined; defined: primary`,
      `${INVALID}: plans[0].retention.dayOfWeek (line 23): "Funday" is not a weekday; expected one of Sunday, Monday, Tuesday, Wednesday, Thursday, Friday, Saturday`,
      `${INVALID}: 3 problems; fix them and run config validate again`,
    ]);
  });

  it('prints no stack trace for an invalid file', async () => {
    const result = await run('config', 'validate', INVALID);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('reads milvus-guard.yaml from the current directory when no file is given', async () => {
    // Act: the repository root has no milvus-guard.yaml.
    const result = await run('config', 'validate');

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('milvus-guard.yaml: the file does not exist');
  });

  it('prints the result as JSON with -o json', async () => {
    // Act
    const result = await run('config', 'validate', INVALID, '-o', 'json');

    // Assess
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({
      valid: false,
      file: INVALID,
      errors: [
        { path: 'clusters[0].region', line: 5, message: expect.stringContaining('is not an AWS Region') },
        { path: 'plans[0].vault', line: 19, message: expect.stringContaining('names vault "primry"') },
        { path: 'plans[0].retention.dayOfWeek', line: 23, message: expect.stringContaining('is not a weekday') },
      ],
    });
  });

  it('reports a valid file as JSON with no errors', async () => {
    const result = await run('config', 'validate', 'examples/production.yaml', '--output', 'json');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ valid: true, file: 'examples/production.yaml', errors: [] });
  });
});

describe('config import-trilio', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('prints a config that validates on stdout and the warnings on stderr', async () => {
    // Act
    const result = await run('config', 'import-trilio', 'examples/trilio/milvus-production.yaml');

    // Assess
    expect(result.code).toBe(0);
    expect(parseConfig(result.stdout, 'imported.yaml').plans[0]!.name).toBe('milvus-production-backup');
    expect(result.stderr.split('\n').filter(Boolean).every((line) => line.startsWith('warning: '))).toBe(true);
    expect(result.stderr).toContain('warning: examples/trilio/milvus-production.yaml: Hook/milvus-flush-hook spec.pre.execAction.command: calls localhost:9091/api/v1/flush');
  });

  it('writes the config to the --output file', async () => {
    // Prepare
    dir = mkdtempSync(join(tmpdir(), 'milvus-guard-import-'));
    const out = join(dir, 'milvus-guard.yaml');

    // Act
    const result = await run('config', 'import-trilio', 'examples/trilio/milvus-production.yaml', '-o', out);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(parseConfig(readFileSync(out, 'utf8'), out).vaults[0]!.thresholdCapacity).toBe('1000Gi');
  });

  it('refuses to overwrite an existing --output file without --force', async () => {
    // Prepare
    dir = mkdtempSync(join(tmpdir(), 'milvus-guard-import-'));
    const out = join(dir, 'milvus-guard.yaml');
    writeFileSync(out, 'keep me\n');

    // Act
    const attempt = run('config', 'import-trilio', 'examples/trilio/milvus-production.yaml', '-o', out);

    // Assess
    await expect(attempt).rejects.toMatchObject({ name: 'UserError', message: expect.stringContaining('already exists') });
    expect(readFileSync(out, 'utf8')).toBe('keep me\n');
  });
});

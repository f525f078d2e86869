import { describe, expect, test } from '@jest/globals';
import { Command } from 'commander';
import { milvusVersionOption } from '../../cli/commands/local.js';

// `--milvus-version` on `local up` and `demo`: one option, checked when parsed.
function parse(args: string[]): { milvusVersion: string } {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined }).addOption(milvusVersionOption());
  program.parse(args, { from: 'user' });
  return program.opts();
}

describe('--milvus-version', () => {
  test('defaults to the seeded version and takes a supported one', () => {
    expect(parse([]).milvusVersion).toBe('v2.6.10');
    expect(parse(['--milvus-version', 'v2.4.23']).milvusVersion).toBe('v2.4.23');
  });

  test('refuses an unsupported version with one line naming the supported lines', () => {
    expect(() => parse(['--milvus-version', 'v2.3.9'])).toThrow(/option '--milvus-version <version>' argument 'v2.3.9' is invalid\. Milvus version "v2\.3\.9" is not supported: give a release of 2\.4\.x, 2\.5\.x, 2\.6\.x, 3\.0\.x/);
  });
});

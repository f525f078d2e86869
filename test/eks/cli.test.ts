import { describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { registerEksCommands, resolveRegion, type EksCommandDeps } from '../../cli/commands/eks.js';
import { EksCredentialsError } from '../../core/eks/token.js';
import { UserError } from '../../core/errors.js';
import { decodeEksToken } from './sigv4-reference.js';

const SIGNING_TIME = new Date('2024-01-15T10:30:00Z');
const credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'FQoGZXIvYXdzEXAMPLETOKEN',
};

// What aws-cli/1.45.11 printed for `aws eks get-token --cluster-name my-cluster --region
// us-east-1` with the clock frozen at SIGNING_TIME and the credentials above, byte for byte
// (four-space indent, then a blank line).
const AWS_CLI_OUTPUT = `{
    "kind": "ExecCredential",
    "apiVersion": "client.authentication.k8s.io/v1beta1",
    "spec": {},
    "status": {
        "expirationTimestamp": "2024-01-15T10:44:00Z",
        "token": "k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtZWFzdC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BS0lERVhBTVBMRSUyRjIwMjQwMTE1JTJGdXMtZWFzdC0xJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNDAxMTVUMTAzMDAwWiZYLUFtei1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1TZWN1cml0eS1Ub2tlbj1GUW9HWlhJdllYZHpFWEFNUExFVE9LRU4mWC1BbXotU2lnbmF0dXJlPTVkNWFhN2ExODE1NWI3OGZkNWZmZDg1NWVkODRkZTAxYjNmMDVhMjgzMTU4ZTg5YTI0N2U0YzgyNGQyODQ0MWI"
    }
}

`;

/** Runs `milvus-guard <args>` in-process with the eks commands and the given collaborators. */
async function run(args: string[], deps: Partial<EksCommandDeps> = {}): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const program = new Command('milvus-guard').exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  registerEksCommands(program, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    env: {},
    sdkRegion: async () => {
      throw new Error('Region is missing');
    },
    credentials,
    now: () => SIGNING_TIME,
    ...deps,
  });
  await program.parseAsync(args, { from: 'user' });
  return { stdout, stderr };
}

describe('milvus-guard eks get-token', () => {
  it('prints exactly what aws eks get-token prints', async () => {
    // Act
    const { stdout, stderr } = await run(['eks', 'get-token', '--cluster-name', 'my-cluster', '--region', 'us-east-1']);

    // Assess
    expect(stdout).toBe(AWS_CLI_OUTPUT);
    expect(stderr).toBe('');
  });

  it('answers in the API version the Kubernetes client asks for', async () => {
    // Prepare
    const env = { KUBERNETES_EXEC_INFO: '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}' };

    // Act
    const { stdout } = await run(['eks', 'get-token', '--cluster-name', 'my-cluster', '--region', 'us-east-1'], { env });

    // Assess
    expect(JSON.parse(stdout)).toMatchObject({ apiVersion: 'client.authentication.k8s.io/v1' });
  });

  it('warns on stderr, not stdout, when the client asks for a deprecated API version', async () => {
    // Prepare
    const env = { KUBERNETES_EXEC_INFO: '{"apiVersion":"client.authentication.k8s.io/v1alpha1"}' };

    // Act
    const { stdout, stderr } = await run(['eks', 'get-token', '--cluster-name', 'my-cluster', '--region', 'us-east-1'], { env });

    // Assess
    expect(JSON.parse(stdout)).toMatchObject({ apiVersion: 'client.authentication.k8s.io/v1alpha1' });
    expect(stderr).toMatch(/deprecated API version/);
  });

  it('signs for the region in AWS_DEFAULT_REGION when --region is absent', async () => {
    // Act
    const { stdout } = await run(['eks', 'get-token', '--cluster-name', 'my-cluster'], { env: { AWS_DEFAULT_REGION: 'eu-west-1' } });

    // Assess
    const token = (JSON.parse(stdout) as { status: { token: string } }).status.token;
    expect(new URL(decodeEksToken(token)).host).toBe('sts.eu-west-1.amazonaws.com');
  });

  it('signs with credentials from the default provider chain when none are injected', async () => {
    // Prepare: test/setup.ts puts fake keys in the environment, the first link of the chain.
    const expectedKeyId = process.env['AWS_ACCESS_KEY_ID'] ?? '';

    // Act
    const { stdout } = await run(['eks', 'get-token', '--cluster-name', 'my-cluster', '--region', 'us-east-1'], { credentials: undefined });

    // Assess
    const token = (JSON.parse(stdout) as { status: { token: string } }).status.token;
    expect(new URL(decodeEksToken(token)).searchParams.get('X-Amz-Credential')).toBe(
      `${expectedKeyId}/20240115/us-east-1/sts/aws4_request`,
    );
  });

  it('fails with a UserError that says how to configure credentials when there are none', async () => {
    // Prepare
    const noCredentials = async (): Promise<never> => {
      throw Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    };

    // Act
    const result = run(['eks', 'get-token', '--cluster-name', 'my-cluster', '--region', 'us-east-1'], { credentials: noCredentials });

    // Assess
    await expect(result).rejects.toThrow(EksCredentialsError);
    await expect(result).rejects.toThrow(/aws sso login/);
  });

  it('fails with a UserError asking for --region when no region is configured anywhere', async () => {
    // Act
    const result = run(['eks', 'get-token', '--cluster-name', 'my-cluster']);

    // Assess
    await expect(result).rejects.toThrow(UserError);
    await expect(result).rejects.toThrow(/pass --region/);
  });

  it('requires --cluster-name', async () => {
    // Act
    const result = run(['eks', 'get-token', '--region', 'us-east-1']);

    // Assess
    await expect(result).rejects.toMatchObject({ code: 'commander.missingMandatoryOptionValue' });
  });
});

describe('resolveRegion', () => {
  const profileRegion = async (): Promise<string> => 'ap-south-1';

  it.each([
    ['the flag first', 'us-west-2', { AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'eu-west-2' }, 'us-west-2'],
    ['AWS_REGION before AWS_DEFAULT_REGION', undefined, { AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'eu-west-2' }, 'eu-west-1'],
    ['AWS_DEFAULT_REGION before the profile', undefined, { AWS_DEFAULT_REGION: 'eu-west-2' }, 'eu-west-2'],
    ['the profile last', undefined, {}, 'ap-south-1'],
  ])('takes %s', async (_case, flag, env, expected) => {
    // Act
    const region = await resolveRegion(flag, env, profileRegion);

    // Assess
    expect(region).toBe(expected);
  });
});

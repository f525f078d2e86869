/**
 * Compares `milvus-guard eks get-token` with the AWS CLI itself when `aws` is on the PATH (it is
 * optional, so the test is skipped without it). Signing is offline: nothing reaches AWS.
 */
import { spawnSync } from 'node:child_process';
import { devNull, tmpdir } from 'node:os';
import { describe, expect, it } from '@jest/globals';
import { execCredential, EKS_TOKEN_LIFETIME_MS, getEksToken } from '../../core/eks/token.js';
import { formatExecCredential } from '../../cli/commands/eks.js';
import { decodeEksToken } from './sigv4-reference.js';

const awsCliAvailable = spawnSync('aws', ['--version'], { encoding: 'utf8' }).status === 0;
const itWithAwsCli = awsCliAvailable ? it : it.skip;
const skipNote = awsCliAvailable ? '' : ' (skipped: the aws CLI is not on the PATH)';

const credentials = { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret/with+chars', sessionToken: 'IQoJb3JpZ2luX2VjE/+abc==' };

function runAwsGetToken(clusterName: string, region: string): string {
  const result = spawnSync('aws', ['eks', 'get-token', '--cluster-name', clusterName, '--region', region], {
    encoding: 'utf8',
    timeout: 60_000,
    // Only these credentials: no profile, config file or exec info from the machine running the test.
    env: {
      PATH: process.env['PATH'],
      HOME: tmpdir(),
      AWS_CONFIG_FILE: devNull,
      AWS_SHARED_CREDENTIALS_FILE: devNull,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_SESSION_TOKEN: credentials.sessionToken,
    },
  });
  if (result.status !== 0) throw new Error(`aws eks get-token failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

function signingDate(token: string): Date {
  const amzDate = new URL(decodeEksToken(token)).searchParams.get('X-Amz-Date') ?? '';
  const iso = amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z');
  return new Date(iso);
}

describe('eks get-token compared with the AWS CLI', () => {
  itWithAwsCli(`prints the same bytes as aws eks get-token at the same instant${skipNote}`, async () => {
    // The CLI reads its clock twice (to sign, then for the expiry); when a second boundary falls
    // between the two reads the outputs cannot match, so take another sample.
    for (let attempt = 1; ; attempt++) {
      // Prepare
      const cliOutput = runAwsGetToken('prod_cluster-1', 'eu-west-1');
      const cliToken = (JSON.parse(cliOutput) as { status: { token: string } }).status.token;
      const instant = signingDate(cliToken);

      // Act
      const ours = await getEksToken({ clusterName: 'prod_cluster-1', region: 'eu-west-1', credentials, now: () => instant });
      const ourOutput = formatExecCredential(execCredential(ours));

      // Assess
      expect(ours.token).toBe(cliToken);
      const expiryTicked = !cliOutput.includes(execCredential(ours).status.expirationTimestamp);
      if (expiryTicked && attempt < 3) continue;
      expect(ours.expiresAt.getTime() - instant.getTime()).toBe(EKS_TOKEN_LIFETIME_MS);
      expect(ourOutput).toBe(cliOutput);
      return;
    }
  });
});

import { describe, expect, it } from '@jest/globals';
import {
  EksCredentialsError,
  execCredential,
  execCredentialApiVersion,
  getEksToken,
} from '../../core/eks/token.js';
import { UserError } from '../../core/errors.js';
import { decodeEksToken, referenceSignature } from './sigv4-reference.js';

const SIGNING_TIME = new Date('2024-01-15T10:30:00Z');
const fixedClock = (): Date => SIGNING_TIME;
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const SESSION_CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET, sessionToken: 'FQoGZXIvYXdzEXAMPLETOKEN' };

// Known-good values printed by aws-cli/1.45.11 (botocore 1.43.11) with the clock frozen at
// SIGNING_TIME (`faketime -f '2024-01-15 10:30:00' aws eks get-token --cluster-name my-cluster
// --region us-east-1`) and the credentials above in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN.
const AWS_CLI_TOKEN_WITH_SESSION =
  'k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtZWFzdC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BS0lERVhBTVBMRSUyRjIwMjQwMTE1JTJGdXMtZWFzdC0xJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNDAxMTVUMTAzMDAwWiZYLUFtei1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1TZWN1cml0eS1Ub2tlbj1GUW9HWlhJdllYZHpFWEFNUExFVE9LRU4mWC1BbXotU2lnbmF0dXJlPTVkNWFhN2ExODE1NWI3OGZkNWZmZDg1NWVkODRkZTAxYjNmMDVhMjgzMTU4ZTg5YTI0N2U0YzgyNGQyODQ0MWI';
// Same, without AWS_SESSION_TOKEN.
const AWS_CLI_TOKEN_WITHOUT_SESSION =
  'k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtZWFzdC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BS0lERVhBTVBMRSUyRjIwMjQwMTE1JTJGdXMtZWFzdC0xJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNDAxMTVUMTAzMDAwWiZYLUFtei1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1TaWduYXR1cmU9MjA5Y2RjYzNkZWNhNDZjOTI3OGIyMDQxZjE0OTVjYzM0YjYyYmM0ODdjNjJjYjUxMDlhYTg5YTIyYjA1MmE1ZA';

describe('getEksToken', () => {
  it('makes the same token as aws eks get-token for temporary credentials', async () => {
    // Act
    const { token } = await getEksToken({ clusterName: 'my-cluster', region: 'us-east-1', credentials: SESSION_CREDENTIALS, now: fixedClock });

    // Assess
    expect(token).toBe(AWS_CLI_TOKEN_WITH_SESSION);
  });

  it('makes the same token as aws eks get-token for long-term credentials', async () => {
    // Act
    const { token } = await getEksToken({
      clusterName: 'my-cluster',
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET },
      now: fixedClock,
    });

    // Assess
    expect(token).toBe(AWS_CLI_TOKEN_WITHOUT_SESSION);
    expect(decodeEksToken(token)).not.toContain('X-Amz-Security-Token');
  });

  it('encodes the presigned URL as unpadded base64url after the k8s-aws-v1. prefix', async () => {
    // Act
    const { token } = await getEksToken({ clusterName: 'my-cluster', region: 'us-east-1', credentials: SESSION_CREDENTIALS, now: fixedClock });

    // Assess
    expect(token.startsWith('k8s-aws-v1.')).toBe(true);
    expect(token.slice('k8s-aws-v1.'.length)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it('presigns a GetCallerIdentity GET on the regional STS endpoint, valid 60 seconds', async () => {
    // Act
    const { token } = await getEksToken({ clusterName: 'my-cluster', region: 'us-east-1', credentials: SESSION_CREDENTIALS, now: fixedClock });

    // Assess
    const url = new URL(decodeEksToken(token));
    expect(url.origin + url.pathname).toBe('https://sts.us-east-1.amazonaws.com/');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      Action: 'GetCallerIdentity',
      Version: '2011-06-15',
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': 'AKIDEXAMPLE/20240115/us-east-1/sts/aws4_request',
      'X-Amz-Date': '20240115T103000Z',
      'X-Amz-Expires': '60',
      'X-Amz-SignedHeaders': 'host;x-k8s-aws-id',
      'X-Amz-Security-Token': 'FQoGZXIvYXdzEXAMPLETOKEN',
      'X-Amz-Signature': expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it('signs the cluster name header with a valid SigV4 signature', async () => {
    // Prepare: characters that need percent-encoding in the token and the key.
    const credentials = { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret/with+chars', sessionToken: 'IQoJb3JpZ2luX2VjE/+abc==' };

    // Act
    const { token } = await getEksToken({ clusterName: 'prod_cluster-1', region: 'eu-west-1', credentials, now: fixedClock });

    // Assess
    const url = decodeEksToken(token);
    expect(url).toContain('X-Amz-Security-Token=IQoJb3JpZ2luX2VjE%2F%2Babc%3D%3D&');
    expect(new URL(url).searchParams.get('X-Amz-Signature')).toBe(
      referenceSignature(url, credentials.secretAccessKey, 'eu-west-1', 'prod_cluster-1'),
    );
  });

  it('binds the token to the cluster: another cluster name gives another signature', async () => {
    // Act
    const a = await getEksToken({ clusterName: 'cluster-a', region: 'us-east-1', credentials: SESSION_CREDENTIALS, now: fixedClock });
    const b = await getEksToken({ clusterName: 'cluster-b', region: 'us-east-1', credentials: SESSION_CREDENTIALS, now: fixedClock });

    // Assess
    const signature = (t: string): string | null => new URL(decodeEksToken(t)).searchParams.get('X-Amz-Signature');
    expect(signature(a.token)).not.toBe(signature(b.token));
    expect(signature(b.token)).toBe(referenceSignature(decodeEksToken(b.token), SECRET, 'us-east-1', 'cluster-b'));
  });

  it('uses the partition DNS suffix for China regions', async () => {
    // Act
    const { token } = await getEksToken({ clusterName: 'c', region: 'cn-north-1', credentials: SESSION_CREDENTIALS, now: fixedClock });

    // Assess
    const url = new URL(decodeEksToken(token));
    expect(url.host).toBe('sts.cn-north-1.amazonaws.com.cn');
    expect(url.searchParams.get('X-Amz-Credential')).toBe('AKIDEXAMPLE/20240115/cn-north-1/sts/aws4_request');
  });

  it('reports an expiry 14 minutes after the signing time', async () => {
    // Act
    const { expiresAt } = await getEksToken({ clusterName: 'c', region: 'us-east-1', credentials: SESSION_CREDENTIALS, now: fixedClock });

    // Assess
    expect(expiresAt.toISOString()).toBe('2024-01-15T10:44:00.000Z');
  });

  it('takes credentials from a provider function', async () => {
    // Prepare
    const provider = async () => SESSION_CREDENTIALS;

    // Act
    const { token } = await getEksToken({ clusterName: 'my-cluster', region: 'us-east-1', credentials: provider, now: fixedClock });

    // Assess
    expect(token).toBe(AWS_CLI_TOKEN_WITH_SESSION);
  });

  it('turns a credential provider failure into an EksCredentialsError that says how to configure credentials', async () => {
    // Prepare
    const failing = async (): Promise<never> => {
      throw Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    };

    // Act
    const result = getEksToken({ clusterName: 'c', region: 'us-east-1', credentials: failing, now: fixedClock });

    // Assess
    await expect(result).rejects.toThrow(EksCredentialsError);
    await expect(result).rejects.toThrow(UserError);
    await expect(result).rejects.toThrow(/Could not load credentials from any providers.*AWS_ACCESS_KEY_ID/);
  });

  it('refuses a region that is not a host name label', async () => {
    // Act
    const result = getEksToken({ clusterName: 'c', region: 'evil.example.com/x', credentials: SESSION_CREDENTIALS, now: fixedClock });

    // Assess
    await expect(result).rejects.toThrow(/not an AWS region name/);
  });

  it('refuses an empty cluster name', async () => {
    // Act
    const result = getEksToken({ clusterName: ' ', region: 'us-east-1', credentials: SESSION_CREDENTIALS, now: fixedClock });

    // Assess
    await expect(result).rejects.toThrow(UserError);
  });
});

describe('execCredential', () => {
  it('lists kind, apiVersion, spec and status in the AWS CLI order, v1beta1 by default', () => {
    // Act
    const credential = execCredential({ token: 'k8s-aws-v1.abc', expiresAt: new Date('2024-01-15T10:44:00Z') });

    // Assess
    expect(JSON.stringify(credential)).toBe(
      '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{},' +
        '"status":{"expirationTimestamp":"2024-01-15T10:44:00Z","token":"k8s-aws-v1.abc"}}',
    );
  });

  it('drops fractions of a second from the expiration timestamp', () => {
    // Act
    const credential = execCredential({ token: 't', expiresAt: new Date('2024-01-15T10:44:00.987Z') });

    // Assess
    expect(credential.status.expirationTimestamp).toBe('2024-01-15T10:44:00Z');
  });

  it('answers in the API version it is given', () => {
    // Act
    const credential = execCredential({ token: 't', expiresAt: SIGNING_TIME }, 'client.authentication.k8s.io/v1');

    // Assess
    expect(credential.apiVersion).toBe('client.authentication.k8s.io/v1');
  });
});

describe('execCredentialApiVersion', () => {
  it.each([
    ['absent', undefined, 'client.authentication.k8s.io/v1beta1', false],
    ['v1', '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}', 'client.authentication.k8s.io/v1', false],
    ['v1beta1', '{"apiVersion":"client.authentication.k8s.io/v1beta1"}', 'client.authentication.k8s.io/v1beta1', false],
    ['v1alpha1 (deprecated)', '{"apiVersion":"client.authentication.k8s.io/v1alpha1"}', 'client.authentication.k8s.io/v1alpha1', true],
    ['unknown', '{"apiVersion":"client.authentication.k8s.io/v2"}', 'client.authentication.k8s.io/v1beta1', true],
    ['not JSON', '{apiVersion', 'client.authentication.k8s.io/v1beta1', true],
  ])('KUBERNETES_EXEC_INFO %s → the AWS CLI choice', (_case, execInfo, apiVersion, warns) => {
    // Act
    const choice = execCredentialApiVersion(execInfo);

    // Assess
    expect(choice.apiVersion).toBe(apiVersion);
    expect(choice.warning !== undefined).toBe(warns);
  });
});

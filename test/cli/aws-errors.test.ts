import { beforeEach, describe, expect, it } from '@jest/globals';
import { ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { registerCostCommand } from '../../cli/commands/cost.js';
import { registerStatusCommand } from '../../cli/commands/status.js';
import { reportFailure } from '../../cli/main.js';
import { asAwsEnvironmentError } from '../../core/errors.js';
import { mockClient } from 'aws-sdk-client-mock';
import { cliWith, CONFIG, mockAwsStart } from './helpers.js';

// `status` and `cost` against AWS when the environment is at fault: no credentials, a catalog
// table that is not there (wrong --region, not deployed), access denied, credentials expired, an
// endpoint out of reach. Each is one line naming the service, the resource and the fix, exit 1,
// no stack; an error that may be ours still prints as an internal error, exit 2.

const { ddb, sts } = mockAwsStart('unused');
// cost lists the vault buckets (empty here) before it reads the catalog.
const s3 = mockClient(S3Client);
beforeEach(() => {
  s3.reset();
  s3.on(ListObjectsV2Command).resolves({ Contents: [] });
});

// What the SDK's credential chain throws (@smithy/property-provider's CredentialsProviderError).
const noCredentials = () => Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError', tryNextLink: false });
const tableMissing = () => new ResourceNotFoundException({ message: 'Requested resource not found', $metadata: { httpStatusCode: 400, attempts: 1 } });
const denied = () =>
  Object.assign(new Error('User: arn:aws:iam::123456789012:user/ops is not authorized to perform: dynamodb:Query on resource: arn:aws:dynamodb:us-east-1:123456789012:table/milvus-guard-catalog/index/byTime'), {
    name: 'AccessDeniedException',
    $metadata: { httpStatusCode: 400, attempts: 1 },
  });

/** Runs the command, and what the CLI prints and exits with for its failure (cli/main.ts). */
async function failure(register: typeof registerStatusCommand | typeof registerCostCommand, ...args: string[]): Promise<{ code: number; printed: string }> {
  const rejected = await cliWith(register)
    .run(...args)
    .then(
      () => {
        throw new Error('expected the command to fail');
      },
      (err: unknown) => err,
    );
  const printed: string[] = [];
  const code = reportFailure(rejected, (t) => printed.push(t));
  return { code, printed: printed.join('') };
}

const oneLine = (text: string) => {
  expect(text.split('\n')).toHaveLength(2);
  expect(text).not.toMatch(/internal error|\bat .*:\d+:\d+|node_modules/);
};

describe.each([
  ['status', registerStatusCommand],
  ['cost', registerCostCommand],
] as const)('milvus-guard %s against AWS', (verb, register) => {
  it('says there are no AWS credentials, names the catalog table and how to configure them, exit 1', async () => {
    ddb.on(QueryCommand).rejects(noCredentials());
    sts.on(GetCallerIdentityCommand).rejects(noCredentials());

    const { code, printed } = await failure(register, verb, '-c', CONFIG);

    expect(code).toBe(1);
    oneLine(printed);
    expect(printed).toMatch(/^error: no AWS credentials to reach (DynamoDB table milvus-guard-catalog|STS GetCallerIdentity .*) in us-east-1 \(CredentialsProviderError: Could not load credentials from any providers\); configure AWS credentials \(AWS_PROFILE, aws sso login/);
  });

  it('says the catalog table does not exist in the region and to check --region or deploy first, exit 1', async () => {
    ddb.on(QueryCommand).rejects(tableMissing());

    const { code, printed } = await failure(register, verb, '-c', CONFIG, '--region', 'eu-west-1');

    expect(code).toBe(1);
    oneLine(printed);
    expect(printed).toBe(
      'error: DynamoDB table milvus-guard-catalog in eu-west-1 does not exist (ResourceNotFoundException: Requested resource not found); check --region (and -c: the config names the installation), or deploy the installation first (npx cdk deploy)\n',
    );
  });

  it('says the table denied access and which IAM actions to grant, exit 1', async () => {
    ddb.on(QueryCommand).rejects(denied());

    const { code, printed } = await failure(register, verb, '-c', CONFIG);

    expect(code).toBe(1);
    oneLine(printed);
    expect(printed).toMatch(/^error: DynamoDB table milvus-guard-catalog in us-east-1 denied access \(AccessDeniedException: User: .* is not authorized to perform: dynamodb:Query .*\); grant the caller dynamodb:Query, dynamodb:GetItem on DynamoDB table milvus-guard-catalog\n$/);
  });

  it('still reports an error that may be a bug of ours as an internal error with its stack, exit 2', async () => {
    ddb.on(QueryCommand).rejects(Object.assign(new Error('One or more parameter values were invalid'), { name: 'ValidationException', $metadata: { httpStatusCode: 400 } }));

    const { code, printed } = await failure(register, verb, '-c', CONFIG);

    expect(code).toBe(2);
    expect(printed).toMatch(/^internal error: ValidationException: One or more parameter values were invalid\n\s+at /);
  });
});

describe('asAwsEnvironmentError', () => {
  it.each([
    ['expired credentials', Object.assign(new Error('The security token included in the request is expired'), { name: 'ExpiredTokenException', $metadata: { httpStatusCode: 400 } }), /refused the AWS credentials .*; the credentials are expired or not valid: refresh them/],
    ['an unreachable endpoint', Object.assign(new Error('getaddrinfo ENOTFOUND dynamodb.xx-nowhere-1.amazonaws.com'), { code: 'ENOTFOUND', $metadata: { attempts: 3 } }), /could not be reached .*; check the network, proxy and --region/],
    ['a service failing after retries', Object.assign(new Error('We encountered an internal error'), { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } }), /failed after retries .*; AWS is failing or throttling: run again later/],
  ])('tells %s in one line naming the resource', (_what, err, expected) => {
    const mapped = asAwsEnvironmentError(err, { service: 'DynamoDB', resource: 'table t', region: 'us-east-1' });

    expect(mapped?.message).toMatch(expected);
    expect(mapped?.message).toMatch(/^DynamoDB table t in us-east-1 /);
    expect(mapped?.message).not.toContain('\n');
  });

  it.each([
    ['the Kubernetes API refusing a connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' })],
    ["a child process's closed pipe", Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })],
    ['a timeout of our own', Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' })],
  ])('leaves %s alone: not an AWS request, so not explained as one', (_what, err) => {
    expect(asAwsEnvironmentError(err, { service: 'DynamoDB', resource: 'table t', region: 'us-east-1' })).toBeUndefined();
    expect(asAwsEnvironmentError(err)).toBeUndefined();
  });

  it('names only the AWS request for an error that reached the top level unannotated', () => {
    const printed: string[] = [];

    expect(reportFailure(noCredentials(), (t) => printed.push(t))).toBe(1);
    expect(printed).toEqual(['error: no AWS credentials to reach an AWS request (CredentialsProviderError: Could not load credentials from any providers); configure AWS credentials (AWS_PROFILE, aws sso login, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an instance or Pod role)\n']);
  });

  it('leaves a TypeError alone: a bug of ours', () => {
    expect(asAwsEnvironmentError(new TypeError('x is undefined'))).toBeUndefined();
  });
});

import { describe, expect, it } from '@jest/globals';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan, type ResolvedPlan } from '../../core/config/resolve.js';
import { grantMilvusBucketRead, grantMilvusRestoreTargets } from '../../infra/constructs/milvus-buckets.js';

// The workflow role's access to S3-backed Milvus buckets: exactly the declared root path (read)
// and restore targets (write), nothing wider. A small stack with one role, not a whole
// installation: these grants are all this test is about.

type Statement = { Action: string | string[]; Resource: string | string[]; Condition?: unknown };

async function plansWith(objectStorage: unknown): Promise<ResolvedPlan[]> {
  const config = await loadConfigFile('examples/production.yaml');
  const plan = config.plans[0]!;
  const withBucket = { ...config, plans: [{ ...plan, milvus: { ...plan.milvus, objectStorage } }] } as typeof config;
  return [resolvePlan(withBucket, plan.name)];
}

function statements(grant: (role: iam.IGrantable) => void): Statement[] {
  const stack = new Stack(new App(), 'Grants');
  const role = new iam.Role(stack, 'WorkflowRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
  grant(role);
  const policies = Template.fromStack(stack).findResources('AWS::IAM::Policy');
  return Object.values(policies).flatMap((p) => (p.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement);
}

const objectStorage = { bucket: 'acme-milvus', rootPath: 'prod/files', restoreTargets: [{ bucket: 'acme-restores', prefix: 'milvus' }] };

describe('an S3-backed Milvus', () => {
  it('lets the role list and read its root path only', async () => {
    const plans = await plansWith(objectStorage);
    const granted = statements((role) => grantMilvusBucketRead(role, plans));

    expect(granted).toEqual([
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::acme-milvus', Condition: { StringLike: { 's3:prefix': ['prod/files/*'] } } },
      { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::acme-milvus/prod/files/*' },
    ]);
  });

  it('lets the role list, write and abort uploads below its restore targets only, and read nothing there', async () => {
    const plans = await plansWith(objectStorage);
    const granted = statements((role) => grantMilvusRestoreTargets(role, plans));

    expect(granted).toEqual([
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::acme-restores', Condition: { StringLike: { 's3:prefix': ['milvus/*'] } } },
      { Effect: 'Allow', Action: ['s3:PutObject', 's3:AbortMultipartUpload'], Resource: 'arn:aws:s3:::acme-restores/milvus/*' },
    ]);
    expect(JSON.stringify(granted)).not.toMatch(/acme-milvus|GetObject|DeleteObject/);
  });

  it('grants a whole bucket only when the root path is the whole bucket', async () => {
    const plans = await plansWith({ ...objectStorage, rootPath: '' });
    const granted = statements((role) => grantMilvusBucketRead(role, plans));

    expect(granted[0]).toEqual({ Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::acme-milvus' });
    expect(granted[1]!.Resource).toBe('arn:aws:s3:::acme-milvus/*');
  });

  it('grants nothing for a plan whose Milvus keeps its data on in-cluster volumes', async () => {
    const config = await loadConfigFile('examples/production.yaml');
    const plans = [resolvePlan(config, config.plans[0]!.name)];

    expect(statements((role) => {
      grantMilvusBucketRead(role, plans);
      grantMilvusRestoreTargets(role, plans);
    })).toEqual([]);
  });
});

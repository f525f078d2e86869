import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { parse } from 'yaml';
import { parseConfig } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { buildInstallation } from '../../infra/installation.js';

// Clusters whose API endpoint is private: the functions that call Kubernetes must run in the
// cluster's VPC, or they cannot reach it at all.

const example = parse(readFileSync('examples/production.yaml', 'utf8')) as Record<string, unknown> & { clusters: Record<string, unknown>[] };

function withClusters(clusters: Record<string, unknown>[]): Config {
  return parseConfig(JSON.stringify({ ...example, clusters }), 'test.yaml');
}

function synthPrimary(config: Config): Template {
  const { context } = JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> };
  // No stack is bundled: these tests look at VPC settings, not at code.
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(buildInstallation(app, config, { account: '123456789012' }).primaryStacks.get('us-east-1')!);
}

const privateProd = { ...example.clusters[0], endpointAccess: 'private', vpc: { vpcId: 'vpc-0abc1234', subnetIds: ['subnet-0abc1234', 'subnet-0def5678'] } };

describe('a cluster with a private endpoint', () => {
  it("places the Kubernetes-calling step functions in the cluster's subnets with an egress-only security group", () => {
    const template = synthPrimary(withClusters([privateProd]));

    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ MILVUS_GUARD_STEP: 'Discover' }) },
      VpcConfig: { SubnetIds: ['subnet-0abc1234', 'subnet-0def5678'], SecurityGroupIds: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('ClusterNetwork'), 'GroupId'] }] },
    });
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      VpcId: 'vpc-0abc1234',
      SecurityGroupEgress: [{ CidrIp: '0.0.0.0/0', IpProtocol: '-1' }],
      SecurityGroupIngress: Match.absent(),
    });
  });

  it('places the restore and drill step functions there too: they call Kubernetes as well', () => {
    const template = synthPrimary(withClusters([privateProd]));

    for (const state of ['CreateNamespace', 'ApplyManifests', 'CleanUpDrill']) {
      template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ MILVUS_GUARD_STEP: state }) }, VpcConfig: { SubnetIds: ['subnet-0abc1234', 'subnet-0def5678'] } });
    }
  });

  it('places the retention step that deletes VolumeSnapshots there, and the retention steps that never call Kubernetes outside', () => {
    const template = synthPrimary(withClusters([privateProd]));

    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ MILVUS_GUARD_STEP: 'ApplyPlan' }) }, VpcConfig: { SubnetIds: ['subnet-0abc1234', 'subnet-0def5678'] } });
    for (const state of ['StartRetention', 'CollectGarbage', 'FinishRetention', 'AbortRetention']) {
      template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ MILVUS_GUARD_STEP: state }) }, VpcConfig: Match.absent() });
    }
  });

  it("gives ApplyPlan's own role the network-interface permissions too", () => {
    const template = synthPrimary(withClusters([privateProd]));

    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^RetentionAccessApplyPlanRole') }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface']), Resource: '*' })]) },
    });
  });

  it('uses the security groups the config names instead of making one', () => {
    const cluster = { ...privateProd, vpc: { ...privateProd.vpc, securityGroupIds: ['sg-0abc1234'] } };

    const template = synthPrimary(withClusters([cluster]));

    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ MILVUS_GUARD_STEP: 'Discover' }) }, VpcConfig: { SecurityGroupIds: ['sg-0abc1234'] } });
    template.resourceCountIs('AWS::EC2::SecurityGroup', 0);
  });

  it('gives the workflow role the network-interface permissions Lambda needs in a VPC', () => {
    const template = synthPrimary(withClusters([privateProd]));

    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface']) })]) },
    });
  });

  it('refuses private clusters of one region in different VPCs, naming them', () => {
    const other = { ...privateProd, name: 'prod-b', eksClusterName: 'prod-b-eks', vpc: { vpcId: 'vpc-0fff9999', subnetIds: ['subnet-0fff9999'] } };
    const config = withClusters([privateProd, other]);
    const withPlanOnB = { ...config, plans: [...config.plans, { ...config.plans[0]!, name: 'second', cluster: 'prod-b' }] };

    expect(() => synthPrimary(withPlanOnB)).toThrow(/prod \(vpc-0abc1234\), prod-b \(vpc-0fff9999\) have private endpoints in different VPCs/);
  });
});

describe('clusters with public endpoints', () => {
  it('keep the functions out of any VPC', () => {
    const template = synthPrimary(withClusters([example.clusters[0]!]));

    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ MILVUS_GUARD_STEP: 'Discover' }) }, VpcConfig: Match.absent() });
    template.resourceCountIs('AWS::EC2::SecurityGroup', 0);
  });
});

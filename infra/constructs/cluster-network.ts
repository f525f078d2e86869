/**
 * Where the workflow Lambdas run when a cluster's API endpoint is private: in the cluster's
 * VPC, in the subnets and security groups the config names (or one security group made here
 * that allows outbound traffic only). Lambdas in a VPC reach AWS APIs (S3, DynamoDB, KMS, STS,
 * EKS, EventBridge) through the VPC's NAT gateway or VPC endpoints, which the VPC must have.
 */
import { Fn } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { Cluster } from '../../core/config/schema.js';
import { UserError } from '../../core/errors.js';

export interface ClusterNetworkProps {
  /** The VPC of the private clusters, e.g. `vpc-0abc1234`. */
  readonly vpcId: string;
  /** Private subnets of that VPC with a route to the cluster endpoint and to AWS APIs. */
  readonly subnetIds: readonly string[];
  /**
   * Security groups for the functions; the cluster's security group must accept HTTPS from them.
   * @default - one new security group that allows all outbound traffic and no inbound traffic
   */
  readonly securityGroupIds?: readonly string[];
  /** The functions' role; it gets the network-interface permissions Lambda needs in a VPC. */
  readonly role: iam.IRole;
}

export class ClusterNetwork extends Construct {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroups: ec2.ISecurityGroup[];

  constructor(scope: Construct, id: string, props: ClusterNetworkProps) {
    super(scope, id);
    // Only the ids reach the template (VpcConfig takes subnet and security group ids), so the
    // VPC is imported without a lookup and synth stays offline.
    // The zones are never rendered (the subnets are given explicitly), but the import wants one
    // per subnet.
    this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', { vpcId: props.vpcId, availabilityZones: props.subnetIds.map((_, i) => Fn.select(i, Fn.getAzs())) });
    this.subnets = { subnets: props.subnetIds.map((subnetId) => ec2.Subnet.fromSubnetId(this, subnetId, subnetId)) };
    this.securityGroups = props.securityGroupIds?.length
      ? props.securityGroupIds.map((sg) => ec2.SecurityGroup.fromSecurityGroupId(this, sg, sg))
      : [new ec2.SecurityGroup(this, 'FunctionSecurityGroup', { vpc: this.vpc, allowAllOutbound: true, description: 'milvus-guard workflow Lambdas: outbound to the EKS API and AWS APIs only' })];
    this.grantNetworkInterfaces(props.role);
  }

  /**
   * Lets `role` manage the network interfaces of a function placed in this network: what
   * AWSLambdaVPCAccessExecutionRole grants. Lambda manages the ENIs with the function's own
   * role, and these EC2 actions support no resource-level restriction.
   */
  grantNetworkInterfaces(role: iam.IRole): void {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
        resources: ['*'],
      }),
    );
  }
}

/**
 * The VPC placement for the clusters of one region whose endpoint is private, or undefined when
 * all are public. The step functions serve every plan of the region, so they run in one VPC:
 * private clusters in different VPCs are refused with a message saying so.
 */
export function clusterNetworkFor(scope: Construct, id: string, clusters: readonly Cluster[], role: iam.IRole): ClusterNetwork | undefined {
  const privates = [...new Map(clusters.filter((c) => c.endpointAccess === 'private').map((c) => [c.name, c])).values()];
  if (privates.length === 0) return undefined;
  const vpcIds = [...new Set(privates.map((c) => c.vpc!.vpcId))];
  if (vpcIds.length > 1) {
    throw new UserError(
      `clusters ${privates.map((c) => `${c.name} (${c.vpc!.vpcId})`).join(', ')} have private endpoints in different VPCs; ` +
        'the workflow Lambdas of one region run in one VPC: peer the VPCs and name one of them for every private cluster, or make the endpoints public',
    );
  }
  const vpc = privates[0]!.vpc!;
  return new ClusterNetwork(scope, id, {
    vpcId: vpc.vpcId,
    subnetIds: vpc.subnetIds,
    ...(vpc.securityGroupIds ? { securityGroupIds: vpc.securityGroupIds } : {}),
    role,
  });
}

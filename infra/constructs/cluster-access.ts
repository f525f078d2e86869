/**
 * Cluster access: lets the workflow role into each plan's EKS cluster. An EKS access entry maps
 * the role to the Kubernetes group `milvus-guard`, which deploy/rbac.yaml binds to the minimal
 * permissions the workflows need; no EKS access policy is attached, so the role has no
 * cluster-admin or other broad rights. The role may also DescribeCluster (endpoint and CA) on
 * exactly those clusters.
 */
import { Stack } from 'aws-cdk-lib';
import * as eks from 'aws-cdk-lib/aws-eks';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/** The Kubernetes group deploy/rbac.yaml binds; the access entry puts the role in it. */
export const KUBERNETES_GROUP = 'milvus-guard';

export interface ClusterAccessProps {
  /** The role the workflow Lambdas run as. */
  readonly role: iam.IRole;
  /** EKS cluster names (as `aws eks list-clusters` shows them) in this stack's region. */
  readonly clusterNames: readonly string[];
}

export class ClusterAccess extends Construct {
  /** The access entries, by cluster name. */
  readonly accessEntries: ReadonlyMap<string, eks.CfnAccessEntry>;

  constructor(scope: Construct, id: string, props: ClusterAccessProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const clusterNames = [...new Set(props.clusterNames)];
    const entries = new Map<string, eks.CfnAccessEntry>();
    for (const clusterName of clusterNames) {
      entries.set(
        clusterName,
        new eks.CfnAccessEntry(this, `AccessEntry-${clusterName}`, {
          clusterName,
          principalArn: props.role.roleArn,
          type: 'STANDARD',
          kubernetesGroups: [KUBERNETES_GROUP],
        }),
      );
    }
    this.accessEntries = entries;
    if (clusterNames.length > 0) {
      props.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['eks:DescribeCluster'],
          resources: clusterNames.map((name) => stack.formatArn({ service: 'eks', resource: 'cluster', resourceName: name })),
        }),
      );
    }
  }
}

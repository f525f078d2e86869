/**
 * Cluster access: lets a role into each plan's EKS cluster. An EKS access entry maps the role
 * to a Kubernetes group that deploy/rbac.yaml binds to the minimal permissions its functions
 * need: the workflow role to `milvus-guard`, the retention role that expires snapshots to
 * `milvus-guard-retention` (VolumeSnapshots only). No EKS access policy is attached, so a role
 * has no cluster-admin or other broad rights. The role may also DescribeCluster (endpoint and
 * CA) on exactly those clusters.
 */
import { Stack } from 'aws-cdk-lib';
import * as eks from 'aws-cdk-lib/aws-eks';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/** The Kubernetes group deploy/rbac.yaml binds; the access entry puts the workflow role in it. */
export const KUBERNETES_GROUP = 'milvus-guard';

/**
 * The Kubernetes group of the retention function that deletes expired backups' VolumeSnapshots
 * (ApplyPlan): deploy/rbac.yaml binds it to list and delete VolumeSnapshots, nothing else.
 */
export const RETENTION_KUBERNETES_GROUP = 'milvus-guard-retention';

export interface ClusterAccessProps {
  /** The role the Lambdas that call Kubernetes run as. */
  readonly role: iam.IRole;
  /**
   * The Kubernetes group the access entries put the role in; deploy/rbac.yaml says what it may do.
   * @default KUBERNETES_GROUP
   */
  readonly kubernetesGroup?: string;
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
          kubernetesGroups: [props.kubernetesGroup ?? KUBERNETES_GROUP],
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

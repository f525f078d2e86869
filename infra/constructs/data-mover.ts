/**
 * The data mover as the backup workflow runs it in the cluster: the container image built from
 * docker/datamover/Dockerfile (a CDK image asset, built and pushed at deploy), and the IAM role
 * its Jobs get through EKS Pod Identity — one association per cluster and namespace a plan
 * backs up, for the service account the export step creates there. The role may write the
 * vault and nothing else.
 */
import { fileURLToPath } from 'node:url';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as eks from 'aws-cdk-lib/aws-eks';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/** Where a plan's data-mover Jobs run. */
export interface DataMoverTarget {
  /** The EKS cluster name. */
  readonly clusterName: string;
  readonly namespace: string;
}

export interface DataMoverProps {
  /** Cluster and namespace pairs whose service account gets the role (duplicates are merged). */
  readonly targets: readonly DataMoverTarget[];
  /**
   * The Kubernetes service account of the Jobs.
   * @default 'milvus-guard-datamover'
   */
  readonly serviceAccountName?: string;
}

export const DEFAULT_DATAMOVER_SERVICE_ACCOUNT = 'milvus-guard-datamover';

export class DataMover extends Construct {
  readonly image: ecrAssets.DockerImageAsset;
  /** The role the Jobs run as; grant it what the data mover needs (the vault). */
  readonly role: iam.Role;
  readonly serviceAccountName: string;
  /** The Pod Identity associations, by `<cluster>/<namespace>`. */
  readonly associations: ReadonlyMap<string, eks.CfnPodIdentityAssociation>;

  constructor(scope: Construct, id: string, props: DataMoverProps) {
    super(scope, id);
    this.serviceAccountName = props.serviceAccountName ?? DEFAULT_DATAMOVER_SERVICE_ACCOUNT;
    this.image = new ecrAssets.DockerImageAsset(this, 'Image', {
      directory: fileURLToPath(new URL('../../', import.meta.url)),
      file: 'docker/datamover/Dockerfile',
      // The Job's nodes on EKS are usually Graviton or x86; the Lambdas are arm64, the Job follows.
      platform: ecrAssets.Platform.LINUX_ARM64,
    });
    // Pod Identity assumes the role with session tags (the pod's namespace and service account).
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.SessionTagsPrincipal(new iam.ServicePrincipal('pods.eks.amazonaws.com')),
      description: 'milvus-guard data-mover Jobs (EKS Pod Identity): write backups into the vault',
    });
    const associations = new Map<string, eks.CfnPodIdentityAssociation>();
    for (const t of props.targets) {
      const key = `${t.clusterName}/${t.namespace}`;
      if (associations.has(key)) continue;
      associations.set(
        key,
        new eks.CfnPodIdentityAssociation(this, `PodIdentity-${t.clusterName}-${t.namespace}`, {
          clusterName: t.clusterName,
          namespace: t.namespace,
          serviceAccount: this.serviceAccountName,
          roleArn: this.role.roleArn,
        }),
      );
    }
    this.associations = associations;
  }
}

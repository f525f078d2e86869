/**
 * The data mover as the workflows run it in the cluster: the container image built from
 * docker/datamover/Dockerfile (a CDK image asset, built and pushed at deploy), and the IAM roles
 * its Jobs get through EKS Pod Identity for the service account the workflow creates in the
 * namespace it works in:
 * - the backup role, in every namespace a plan backs up (export Jobs write the vault; a restore
 *   back into that namespace hydrates with it too); none where no plan backs up (a DR region);
 * - the restore role, read-only, in the namespaces restores are known to target (drills'
 *   throwaway namespaces): a hydration Job needs to read the vault, never to write it.
 * Pod Identity maps one role per cluster, namespace and service account, and only in
 * namespaces named here: a vault-sourced restore into any other namespace needs an association
 * made by hand (the README's "Restoring into another namespace").
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
  /**
   * Where backups run: cluster and namespace pairs whose service account gets the backup role
   * (duplicates are merged).
   * @default - none, and no backup role (a DR region restores only)
   */
  readonly targets?: readonly DataMoverTarget[];
  /**
   * Where restores are known to run (drill namespaces): their service account gets the
   * read-only restore role, unless it is also a backup target (then the backup role, which
   * reads too: Pod Identity takes one role per service account).
   * @default - none
   */
  readonly restoreTargets?: readonly DataMoverTarget[];
  /**
   * The Kubernetes service account of the Jobs.
   * @default 'milvus-guard-datamover'
   */
  readonly serviceAccountName?: string;
}

export const DEFAULT_DATAMOVER_SERVICE_ACCOUNT = 'milvus-guard-datamover';

export class DataMover extends Construct {
  readonly image: ecrAssets.DockerImageAsset;
  /** The role export Jobs run as; grant it what a backup needs (writing the vault). Present with `targets`. */
  readonly role?: iam.Role;
  /** The role hydration Jobs in restore targets run as; grant it what a restore needs (reading the vault). */
  readonly restoreRole: iam.Role;
  readonly serviceAccountName: string;
  /** The Pod Identity associations, by `<cluster>/<namespace>`, of either role. */
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
    const targets = props.targets ?? [];
    // Pod Identity assumes the role with session tags (the pod's namespace and service account).
    if (targets.length > 0) {
      this.role = new iam.Role(this, 'Role', {
        assumedBy: new iam.SessionTagsPrincipal(new iam.ServicePrincipal('pods.eks.amazonaws.com')),
        description: 'milvus-guard data-mover Jobs (EKS Pod Identity): write backups into the vault',
      });
    }
    this.restoreRole = new iam.Role(this, 'RestoreRole', {
      assumedBy: new iam.SessionTagsPrincipal(new iam.ServicePrincipal('pods.eks.amazonaws.com')),
      description: 'milvus-guard data-mover Jobs of restores and drills (EKS Pod Identity): read backups from the vault',
    });
    const associations = new Map<string, eks.CfnPodIdentityAssociation>();
    const associate = (t: DataMoverTarget, idPrefix: string, role: iam.IRole) => {
      const key = `${t.clusterName}/${t.namespace}`;
      if (associations.has(key)) return;
      associations.set(
        key,
        new eks.CfnPodIdentityAssociation(this, `${idPrefix}-${t.clusterName}-${t.namespace}`, {
          clusterName: t.clusterName,
          namespace: t.namespace,
          serviceAccount: this.serviceAccountName,
          roleArn: role.roleArn,
        }),
      );
    };
    // Backup targets first: where a namespace is both, the role that can also write wins.
    if (this.role) for (const t of targets) associate(t, 'PodIdentity', this.role);
    for (const t of props.restoreTargets ?? []) associate(t, 'RestorePodIdentity', this.restoreRole);
    this.associations = associations;
  }
}

/**
 * Notifications: one SNS topic that alarms and workflow failures publish to, encrypted with a
 * customer key (CloudWatch alarms cannot publish to a topic encrypted with the AWS managed SNS
 * key, whose policy cannot be changed), TLS only, with the config's subscriptions.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

/** A subscriber, as the config's `notifications.subscriptions` lists them. */
export interface NotificationSubscription {
  readonly protocol: 'email' | 'https';
  /** An email address or an https:// URL. */
  readonly endpoint: string;
}

export interface NotificationsProps {
  /**
   * Who receives notifications. Email subscriptions must be confirmed by their recipient.
   * @default - none
   */
  readonly subscriptions?: readonly NotificationSubscription[];
  /**
   * The topic's display name (the sender name of emails).
   * @default 'milvus-guard'
   */
  readonly displayName?: string;
}

export class Notifications extends Construct {
  readonly topic: sns.Topic;
  readonly encryptionKey: kms.Key;

  constructor(scope: Construct, id: string, props: NotificationsProps = {}) {
    super(scope, id);
    this.encryptionKey = new kms.Key(this, 'Key', {
      description: 'Encrypts milvus-guard notifications',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // CloudWatch alarms publish through the service principal, which needs the key too.
    this.encryptionKey.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');

    this.topic = new sns.Topic(this, 'Topic', {
      displayName: props.displayName ?? 'milvus-guard',
      masterKey: this.encryptionKey,
      enforceSSL: true,
    });
    for (const subscription of props.subscriptions ?? []) {
      this.topic.addSubscription(
        subscription.protocol === 'email'
          ? new subscriptions.EmailSubscription(subscription.endpoint)
          : new subscriptions.UrlSubscription(subscription.endpoint, { protocol: sns.SubscriptionProtocol.HTTPS }),
      );
    }
  }

  /** Lets `grantee` publish (encrypting with the topic's key). */
  grantPublish(grantee: iam.IGrantable): iam.Grant {
    return this.topic.grantPublish(grantee);
  }
}

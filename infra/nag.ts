/**
 * cdk-nag acknowledgments. Each acknowledgment names one finding exactly, as cdk-nag renders
 * it (`AwsSolutions-IAM5[Resource::<Bucket1234.Arn>/*]`), computed here from the same token
 * the policy uses, so a renamed construct cannot silently widen or orphan an acknowledgment.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import * as nagReferences from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { IConstruct } from 'constructs';

/** Acknowledges cdk-nag rule `id` (e.g. `AwsSolutions-S1`) on `scope` and everything under it. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * Acknowledges the AwsSolutions-IAM5 findings for policies under `scope` that grant on
 * `resources` (ARNs with a wildcard, tokens allowed).
 */
export function acknowledgeWildcardResources(scope: IConstruct, resources: readonly string[], reason: string): void {
  const stack = Stack.of(scope);
  for (const resource of resources) {
    acknowledge(scope, `AwsSolutions-IAM5[Resource::${nagReferences.flattenCfnReference(stack.resolve(resource))}]`, reason);
  }
}

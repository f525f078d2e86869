import { describe, expect, it } from '@jest/globals';
import { App, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { loadConfigFile } from '../../core/config/parse.js';
import { RETENTION_WORKFLOW } from '../../core/workflow/steps.js';
import { RetentionStepEnvironment } from '../../lambdas/retention/environment.js';
import { StepFunctions, type StepBundleProps } from '../../infra/constructs/step-functions.js';

// The StepFunctions construct refuses bundle props that name a state its bundle does not serve:
// a typo there would leave that state's function with the shared role, or outside the VPC.

const environment = { VAULT_NAME: 'primary', VAULT_BUCKET: 'b', VAULT_KMS_KEY_ARN: 'arn:aws:kms:us-east-1:123456789012:key/k', VAULT_OBJECT_LOCK_MODE: 'GOVERNANCE', CATALOG_TABLE: 't', EVENT_BUS_NAME: 'default' } as const;

async function build(retention: Partial<StepBundleProps>): Promise<void> {
  const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
  const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
  new StepFunctions(stack, 'Steps', {
    workflows: [RETENTION_WORKFLOW],
    bundles: { retention: { environmentSchema: RetentionStepEnvironment, environment, callsKubernetes: false, ...retention } },
    config: await loadConfigFile('examples/production.yaml'),
    role,
  });
}

describe('StepFunctions: per-state props name states of the bundle', () => {
  it('refuses a role for a state the bundle does not serve, naming it and the states it serves', async () => {
    const stray = new iam.Role(new Stack(), 'Stray', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });

    await expect(build({ roles: { ApplyPlans: stray } })).rejects.toThrow(
      /the retention bundle's props name \[ApplyPlans\], which no function of lambdas\/retention serves; it serves \[StartRetention, ApplyPlan, CollectGarbage, FinishRetention, AbortRetention\]/,
    );
  });

  it('refuses a Kubernetes-calling state the bundle does not serve', async () => {
    await expect(build({ callsKubernetes: ['Discover'] })).rejects.toThrow(/the retention bundle's props name \[Discover\]/);
  });
});

/**
 * `milvus-guard eks get-token`: prints an EKS `ExecCredential`, byte for byte what
 * `aws eks get-token` prints, so a kubeconfig can authenticate kubectl (or any client-go tool)
 * with milvus-guard where the AWS CLI is not installed. A kubeconfig user entry that uses it:
 *
 * ```yaml
 * users:
 *   - name: my-cluster
 *     user:
 *       exec:
 *         apiVersion: client.authentication.k8s.io/v1beta1
 *         command: milvus-guard          # or `npx` with `milvus-guard` as the first arg
 *         args: [eks, get-token, --cluster-name, my-cluster, --region, us-east-1]
 *         env:                           # optional: which AWS profile signs the token
 *           - name: AWS_PROFILE
 *             value: my-profile
 *         interactiveMode: Never
 * ```
 *
 * kubectl runs the command when it needs a token, reads `status.token` and caches it until
 * `status.expirationTimestamp`. The answer's `apiVersion` follows the one the client asks for in
 * `KUBERNETES_EXEC_INFO` (v1beta1 when absent), as the AWS CLI does.
 */
import type { Command } from 'commander';
import { STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { UserError } from '../../core/errors.js';
import { execCredential, execCredentialApiVersion, getEksToken, type ExecCredential } from '../../core/eks/token.js';

/** What `eks` commands use from the outside world; tests replace any of it. */
export interface EksCommandDeps {
  /** Standard output. Default: `process.stdout`. */
  readonly stdout?: (text: string) => void;
  /** Standard error (warnings). Default: `process.stderr`. */
  readonly stderr?: (text: string) => void;
  /** Environment variables. Default: `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Region from the AWS SDK's chain (profile config). Default: an STS client's resolved region. */
  readonly sdkRegion?: () => Promise<string>;
  /** Credentials that sign the token. Default: the AWS SDK's Node.js provider chain. */
  readonly credentials?: AwsCredentialIdentityProvider | AwsCredentialIdentity;
  /** Clock. Default: the system clock. */
  readonly now?: () => Date;
}

/** Registers `eks get-token` on the root program. */
export function registerEksCommands(program: Command, deps: EksCommandDeps = {}): void {
  const stdout = deps.stdout ?? ((text: string) => void process.stdout.write(text));
  const stderr = deps.stderr ?? ((text: string) => void process.stderr.write(text));
  const env = deps.env ?? process.env;
  const sdkRegion = deps.sdkRegion ?? regionFromSdkChain;

  const eks = program.command('eks').description('Amazon EKS access: bearer tokens for kubeconfig exec sections');
  eks
    .command('get-token')
    .description('Print an EKS bearer token as a Kubernetes ExecCredential, as `aws eks get-token` does')
    .requiredOption('--cluster-name <name>', 'name of the EKS cluster')
    .option('--region <region>', 'region of the cluster (default: AWS_REGION, AWS_DEFAULT_REGION, then the AWS profile)')
    .action(async (opts: { clusterName: string; region?: string }) => {
      const region = await resolveRegion(opts.region, env, sdkRegion);
      const { apiVersion, warning } = execCredentialApiVersion(env['KUBERNETES_EXEC_INFO']);
      if (warning !== undefined) stderr(`${warning}\n`);
      const token = await getEksToken({
        clusterName: opts.clusterName,
        region,
        credentials: deps.credentials,
        now: deps.now,
      });
      stdout(formatExecCredential(execCredential(token, apiVersion)));
    });
}

/**
 * The text `aws eks get-token` prints: JSON indented by four spaces, then the newline its JSON
 * formatter writes and the extra one the command itself prints, so the output ends in a blank
 * line.
 */
export function formatExecCredential(credential: ExecCredential): string {
  return `${JSON.stringify(credential, null, 4)}\n\n`;
}

/**
 * The region as the AWS CLI v2 picks it: the flag, then AWS_REGION, then AWS_DEFAULT_REGION
 * (which the JavaScript SDK ignores), then the profile's `region`; a `UserError` if none is set.
 */
export async function resolveRegion(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  sdkRegion: () => Promise<string>,
): Promise<string> {
  const fromFlagOrEnv = [flag, env['AWS_REGION'], env['AWS_DEFAULT_REGION']].find((r) => r !== undefined && r !== '');
  if (fromFlagOrEnv !== undefined) return fromFlagOrEnv;
  let region: string | undefined;
  try {
    region = await sdkRegion();
  } catch {
    // The SDK throws "Region is missing" when nothing is configured; the message below says more.
  }
  if (region === undefined || region === '') {
    throw new UserError(
      'no AWS region is configured for the EKS cluster; pass --region, or set AWS_REGION, or set `region` in your AWS profile',
    );
  }
  return region;
}

async function regionFromSdkChain(): Promise<string> {
  const client = new STSClient({});
  try {
    return await client.config.region();
  } finally {
    client.destroy();
  }
}

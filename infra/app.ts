/**
 * The CDK app. `cdk synth` (no arguments, no AWS credentials needed) synthesizes the config in
 * cdk.json's `config` context, examples/production.yaml; `cdk synth -c config=FILE` another.
 * A config with problems stops synthesis with the list of problems, not a stack trace.
 */
import { App } from 'aws-cdk-lib';
import { loadConfigFile } from '../core/config/parse.js';
import type { Config } from '../core/config/schema.js';
import { UserError } from '../core/errors.js';
import { buildInstallation } from './installation.js';

const app = new App();
const file = app.node.tryGetContext('config') as string | undefined;
if (!file) fail(new UserError('no config file: pass one with -c config=FILE (cdk.json names examples/production.yaml by default)'));

let config: Config;
try {
  config = await loadConfigFile(file!);
} catch (err) {
  if (err instanceof UserError) fail(err);
  throw err;
}

buildInstallation(app, config!, { account: process.env.CDK_DEFAULT_ACCOUNT });
app.synth();

function fail(err: UserError): never {
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(err.exitCode);
}

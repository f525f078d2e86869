/**
 * How a Lambda gets the installation config: the CDK app parses the config file at synth and
 * esbuild replaces the global `MILVUS_GUARD_CONFIG` below with the parsed config (a `define`).
 * The config is infrastructure: changing it means `cdk deploy`, exactly like changing a
 * schedule, and a function never reads a file or a parameter store at run time. Handlers take
 * the config as a dependency (`makeHandler({ config })`); only the Lambda entry points call
 * `bakedConfig()`, so tests and the local runner pass their own config.
 */
import { Config } from '../../core/config/schema.js';

/** The global identifier esbuild replaces with the config; the function construct defines it. */
export const BAKED_CONFIG_GLOBAL = 'MILVUS_GUARD_CONFIG';

declare const MILVUS_GUARD_CONFIG: unknown;

/**
 * The config baked into this bundle, validated again with the schema (cheap, and it catches a
 * bundle built from a different schema version). Throws when the code was not bundled by the
 * CDK app.
 */
export function bakedConfig(): Config {
  if (typeof MILVUS_GUARD_CONFIG === 'undefined') {
    throw new Error(`${BAKED_CONFIG_GLOBAL} is not defined: this code was not bundled by the milvus-guard CDK app; pass the config to makeHandler instead`);
  }
  return Config.parse(MILVUS_GUARD_CONFIG);
}

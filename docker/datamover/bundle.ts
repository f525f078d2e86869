/**
 * Bundles the data-mover entry point with esbuild into OUTDIR/datamover.mjs plus chunks for
 * what loads on demand (the AWS SDK, only for s3:// vaults; verify; the Milvus relay and its
 * HTTP client, only for its command): what the Job image runs and what the benchmark measures.
 *
 *   npx tsx docker/datamover/bundle.ts OUTDIR
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** Writes the bundle into `outdir` and returns the path of its entry module. */
export async function bundleDatamover(outdir: string): Promise<string> {
  await build({
    entryPoints: { datamover: fileURLToPath(new URL('./entry.ts', import.meta.url)) },
    outdir,
    outExtension: { '.js': '.mjs' },
    splitting: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
    // Some dependencies call require() lazily; give the ES module a require to call.
    banner: { js: "import { createRequire as __mgCreateRequire } from 'node:module'; const require = __mgCreateRequire(import.meta.url);" },
  });
  return resolve(outdir, 'datamover.mjs');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outdir = process.argv[2];
  if (!outdir) {
    process.stderr.write('usage: tsx docker/datamover/bundle.ts OUTDIR\n');
    process.exitCode = 1;
  } else {
    await bundleDatamover(resolve(outdir));
  }
}

/**
 * `milvus-guard local up`: runs the local cluster (the embedded default) in the foreground
 * until Ctrl-C or SIGTERM. It prints `kubeconfig: PATH` once ready, so scripts and `kubectl
 * --kubeconfig PATH` can use it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { UserError } from '../../core/errors.js';
import { assertSupportedMilvusVersion, DEFAULT_LOCAL_PORT, DEFAULT_MILVUS_VERSION, PAYLOAD_MODES, SEED_AUTH_SECRET, SEED_NAMESPACE, startLocalCluster, type PayloadMode } from '../local-mode.js';
import { renderInspection, runInspection } from './plan.js';
import { SUPPORTED_LINES } from '../../core/milvus/version.js';

const integer = (name: string, min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}.`);
  return n;
};

/**
 * `--milvus-version <v>`: the seeded Milvus CR's image tag, which the simulated Milvus behaves
 * like (REST flush, GC tickets, authenticated /api/v1; README "Milvus versions"). Checked
 * against the supported lines here, so a typo is one line naming the fix, not a stack trace.
 */
export function milvusVersionOption(): Option {
  return new Option('--milvus-version <version>', `Milvus version of the seeded CR (fresh state only): a release of ${SUPPORTED_LINES.map((l) => `${l}.x`).join(', ')} or master-…`)
    .default(DEFAULT_MILVUS_VERSION)
    .argParser((value: string) => {
      try {
        return assertSupportedMilvusVersion(value);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    });
}

/**
 * `--object-storage <minio|s3>`: where the seeded Milvus keeps its objects. Commander checks the
 * value: "option '--object-storage <kind>' argument 'x' is invalid. Allowed choices are minio, s3."
 */
export function objectStorageOption(): Option {
  return new Option('--object-storage <kind>', 'where the seeded Milvus keeps its objects (fresh state only): minio (in-cluster MinIO on PVCs) or s3 (an external S3 bucket, locally a directory under the state directory, as on EKS)')
    .choices(['minio', 's3'])
    .default('minio');
}

/** Registers `local up`, `local smoke`, `local link-dr` and `local replicate` on the root program. */
export function registerLocalCommands(program: Command): void {
  const local = program.command('local').description('run a local Kubernetes cluster with a simulated Milvus (for demos and tests)');
  local
    .command('up')
    .description('Start the local cluster in the foreground; stop it with Ctrl-C')
    .option('--state <dir>', 'state directory (objects, volumes, snapshots, kubeconfig)', '.local-state')
    .addOption(new Option('--port <n>', 'port on 127.0.0.1; 0 picks a free one').default(DEFAULT_LOCAL_PORT).argParser(integer('--port', 0, 65535)))
    .addOption(new Option('--data-scale <n>', 'size multiplier of the seeded Milvus data (fresh state only)').default(1).argParser(integer('--data-scale', 1, 1000)))
    .addOption(new Option('--payloads <mode>', 'seeded binlog and index payloads: capped (small: many rows in few bytes, ~3 MiB a --data-scale) or full (the bytes Milvus writes for those rows, ~172 MiB a --data-scale) (fresh state only)').choices(PAYLOAD_MODES).default('capped'))
    .option('--no-seed', 'start a fresh state directory empty, without the sample Milvus (a DR cluster to fail over into)')
    .addOption(milvusVersionOption())
    .option('--milvus-auth', `seed a Milvus with authorization enabled; root's password is in Secret ${SEED_NAMESPACE}/${SEED_AUTH_SECRET}, for a plan's milvus.authSecret (fresh state only)`, false)
    .addOption(objectStorageOption())
    .action(async (opts: { state: string; port: number; dataScale: number; payloads: PayloadMode; seed: boolean; milvusVersion: string; milvusAuth: boolean; objectStorage: 'minio' | 's3' }) => {
      const stateDir = resolve(opts.state);
      let cluster;
      try {
        cluster = await startLocalCluster({ stateDir, port: opts.port, dataScale: opts.dataScale, seedPayloads: opts.payloads, seed: opts.seed, milvusVersion: opts.milvusVersion, milvusAuth: opts.milvusAuth, objectStorage: opts.objectStorage });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new UserError(`port ${opts.port} on 127.0.0.1 is already in use: stop the other process or pass --port 0 (any free port)`);
        }
        throw err;
      }
      // Listen for the stop signals before saying the cluster is ready: a script that sends
      // SIGTERM as soon as it reads the lines below must get a clean stop, not the default kill.
      const stopped = untilStopSignal((signal) => process.stdout.write(`received ${signal}, stopping\n`));
      try {
        process.stdout.write(`local cluster listening on ${cluster.url} (state: ${stateDir})\n`);
        process.stdout.write(`kubeconfig: ${cluster.kubeconfigPath}\n`);
        // From the CRs, not the flag: a state directory that already existed keeps what it was seeded with.
        for (const b of cluster.externalBuckets()) {
          process.stdout.write(`Milvus ${b.namespace}/${b.name} keeps its objects in S3 bucket ${b.bucket} (root path ${b.rootPath}), locally the directory ${b.dir}\n`);
        }
        if (opts.milvusAuth) process.stdout.write(`Milvus wants credentials: root's are in Secret ${SEED_NAMESPACE}/${SEED_AUTH_SECRET}; name it in the plan (milvus.authSecret: {name: ${SEED_AUTH_SECRET}})\n`);
        await stopped;
      } finally {
        // Also when printing failed: the API server would otherwise keep the process alive.
        await cluster.stop();
      }
      process.exitCode = 0;
    });

  local
    .command('link-dr')
    .description("make a second local cluster's state directory a DR region of the first: its workflows run in --region, read its own vault and share the primary's catalog and sealing key")
    .requiredOption('--state <dir>', "the DR cluster's state directory (started with local up --state DIR)")
    .requiredOption('--primary-state <dir>', "the primary cluster's state directory")
    .requiredOption('--region <region>', 'the DR region it stands for (one of the vault\'s replicaRegions)')
    .action(async (opts: { state: string; primaryState: string; region: string }) => {
      const { localStateDir, linkDrRegion } = await import('../local-mode.js');
      const dr = localStateDir(opts.state);
      const primary = localStateDir(opts.primaryState);
      if (dr === primary) throw new UserError('--state and --primary-state name the same directory: a DR region needs a cluster and vault of its own');
      await linkDrRegion(dr, primary, opts.region);
      process.stdout.write(`${dr} is now DR region ${opts.region} of ${primary}\n`);
      process.exitCode = 0;
    });

  local
    .command('replicate')
    .description("copy the primary's vault into the DR state directory's vault as S3 replication would, until Ctrl-C (a region outage stops it)")
    .requiredOption('--from <dir>', "the primary cluster's state directory")
    .requiredOption('--to <dir>', "the DR cluster's state directory")
    .addOption(new Option('--lag <seconds>', 'how long each object waits before it is copied').default(0).argParser(integer('--lag', 0, 86_400)))
    .addOption(new Option('--interval <seconds>', 'seconds between passes').default(1).argParser(integer('--interval', 1, 3600)))
    .option('--once', 'one pass, then exit', false)
    .action(async (opts: { from: string; to: string; lag: number; interval: number; once: boolean }) => {
      const { localStateDir, localReplicator } = await import('../local-mode.js');
      const replicator = await localReplicator(localStateDir(opts.from), localStateDir(opts.to), { lagSeconds: opts.lag });
      if (opts.once) {
        const pass = await replicator.sync();
        process.stdout.write(`copied ${pass.copied} object(s); ${pass.waiting} waiting\n`);
        process.exitCode = 0;
        return;
      }
      const stopped = untilStopSignal();
      replicator.start(opts.interval * 1000);
      process.stdout.write(`replicating ${opts.from} → ${opts.to} (lag ${opts.lag}s); stop with Ctrl-C\n`);
      await stopped;
      await replicator.stop();
      process.exitCode = 0;
    });

  local
    .command('smoke')
    .description('start a throwaway local cluster, inspect the example plan on it through the real client code, and stop')
    .option('-c, --config <file>', 'the config file', 'examples/production.yaml')
    .option('--plan <name>', 'the plan to inspect', 'milvus-production-backup')
    .action(async (opts: { config: string; plan: string }) => {
      const stateDir = await mkdtemp(join(tmpdir(), 'milvus-guard-smoke-'));
      const cluster = await startLocalCluster({ stateDir, port: 0 });
      try {
        process.stdout.write(`local cluster listening on ${cluster.url}\n\n`);
        const inspection = await runInspection({ config: opts.config, plan: opts.plan, kubeconfig: cluster.kubeconfigPath });
        process.stdout.write(renderInspection(inspection));
        process.exitCode = inspection.problems.length === 0 ? 0 : 1;
        process.stdout.write(`\nsmoke check ${inspection.problems.length === 0 ? 'passed' : 'FAILED'}\n`);
      } finally {
        await cluster.stop();
        await rm(stateDir, { recursive: true, force: true });
      }
    });
}

/**
 * Resolves at the first SIGINT or SIGTERM, which no longer ends the process by default from the
 * moment this is called; `said` runs with the signal first.
 */
function untilStopSignal(said: (signal: NodeJS.Signals) => void = () => {}): Promise<void> {
  return new Promise<void>((done) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      said(signal);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

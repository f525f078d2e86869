/**
 * End-to-end RTO on the embedded default, broken down: a local cluster seeded with a Milvus of
 * about `--target-gib` (the seed's `--data-scale` is chosen for it, or given), backed up by the
 * backup workflow into the cluster's `file://` vault, then restored from the vault into a new
 * namespace by the restore workflow, exactly as `milvus-guard restore create --source vault
 * --local` runs it (the same ASL and handlers, Wait states of `--poll-ms`). It prints the RTO with
 * its phases as the restore record keeps them (core/restore/phases.ts), the data mover's share
 * (the time at least one hydration Job ran, from each Job's own progress report), and each
 * volume's hydration. A measurement, not a timed test: it fails only when the backup or the
 * restore fails or does not validate.
 *
 *   npm run bench:rto -- [--target-gib 2] [--data-scale N] [--payloads full|capped]
 *                        [--hydration-concurrency 4] [--poll-ms 500] [--kube-timeout 900]
 *                        [--state DIR] [--keep] [--json]
 *
 * With `--state DIR` of a cluster this script (or `local up`) made and backed up before, the
 * newest Available backup there is restored again, without seeding or backing up: another run
 * of the restore alone.
 *
 * The seed writes full payloads (`--payloads full`): every binlog and index file is as large as
 * its rows are in Milvus, so 2 GiB of volumes hold the ~0.7 million rows a 2 GiB Milvus holds.
 * Validation on the embedded default is the simulated Milvus's (local/milvus/search.ts): its
 * sample search is an exact scan that regenerates every row's vector, where Milvus answers from
 * an index in milliseconds. With `--payloads capped` (the small payloads tests use) the same
 * bytes hold about 38 million rows, nearly 60 GB of vectors in Milvus, and that scan takes tens of
 * seconds: a measure of the double, not of the restore. The Kubernetes request timeout is raised
 * (`--kube-timeout`) so a long search can answer through the service proxy, and the table shows
 * the RTO with and without validation.
 *
 * On AWS the restore's Wait states are 15 s (volumes), 10 s (readiness, validation): each phase
 * that polls then also waits up to one interval after its work is done, which this run, like the
 * local CLI, shortens to `--poll-ms`.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command, Option } from 'commander';
import { formatBytes, formatDuration, formatRate, formatTable } from '../cli/format.js';
import type { RestoreRecord } from '../core/catalog/record.js';
import { loadConfigFile } from '../core/config/parse.js';
import { DEFAULT_HYDRATION_CONCURRENCY } from '../core/restore/context.js';
import { dataMoverSeconds, peakHydrations, RESTORE_PHASES, restorePhases } from '../core/restore/phases.js';
import { startLocalCluster } from '../local/cluster.js';
import { SEED_BYTES_PER_SCALE } from '../local/seed.js';
import { PAYLOAD_MODES, type PayloadMode } from '../local/milvus/index.js';
import { typeOf } from '../local/server/resources.js';
import { localRestoreServices, runLocalBackup, runLocalRestore } from '../local/workflows/runner.js';
import { integer } from './options.js';

const GiB = 1024 ** 3;
const PLAN = 'milvus-production-backup';
const SOURCE_NAMESPACE = 'vector-db';

interface Options {
  targetGib: number;
  dataScale?: number;
  payloads: PayloadMode;
  hydrationConcurrency: number;
  pollMs: number;
  kubeTimeout: number;
  state?: string;
  keep: boolean;
  json: boolean;
}

const program = new Command('bench:rto')
  .description('seed a local Milvus, back it up, restore it from the vault into a new namespace, and print the RTO by phase')
  .addOption(new Option('--target-gib <n>', 'size of the seeded Milvus in GiB (picks --data-scale)').default(2).argParser(integer(1)))
  .addOption(new Option('--data-scale <n>', 'the seed\'s size multiplier (overrides --target-gib)').argParser(integer(1)))
  .addOption(new Option('--payloads <mode>', 'seeded payloads: full (the bytes Milvus writes for the rows) or capped (many rows in few bytes)').choices(PAYLOAD_MODES).default('full'))
  .addOption(new Option('--hydration-concurrency <n>', 'volumes hydrated at once').default(DEFAULT_HYDRATION_CONCURRENCY).argParser(integer(1)))
  .addOption(new Option('--poll-ms <ms>', "what each Wait state waits (the local CLI's default)").default(500).argParser(integer(1)))
  .addOption(new Option('--kube-timeout <s>', "seconds a Kubernetes request may take (the simulated Milvus's brute-force search answers through one)").default(900).argParser(integer(1)))
  .option('--state <dir>', 'state directory of the local cluster (default: a new temporary one)')
  .option('--keep', 'keep the state directory', false)
  .option('--json', 'print the result as JSON', false);

/** Bytes of every file under `dir`. */
async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

async function main(): Promise<void> {
  const opts = program.parse().opts<Options>();
  // The scale for --target-gib; the run prints the size it seeded.
  const dataScale = opts.dataScale ?? Math.max(1, Math.round((opts.targetGib * GiB) / SEED_BYTES_PER_SCALE[opts.payloads]));
  const stateDir = opts.state ?? (await mkdtemp(join(tmpdir(), 'mg-rto-')));
  const say = (line: string) => void (opts.json ? undefined : process.stderr.write(`${line}\n`));
  const config = await loadConfigFile('examples/production.yaml');

  say(`starting the local cluster in ${stateDir} (a fresh one is seeded at --data-scale ${dataScale} with ${opts.payloads} payloads)`);
  let t = performance.now();
  const cluster = await startLocalCluster({ stateDir, port: 0, dataScale, seedPayloads: opts.payloads });
  try {
    const seedSeconds = (performance.now() - t) / 1000;
    const pvcs = cluster.store.list(typeOf('PersistentVolumeClaim'), SOURCE_NAMESPACE);
    let sourceBytes = 0;
    for (const pvc of pvcs) {
      const volume = (pvc.spec as { volumeName?: string } | undefined)?.volumeName;
      if (volume) sourceBytes += await bytesUnder(cluster.dirs.volume(volume));
    }
    const catalog = localRestoreServices(stateDir, config).catalog;
    const previous = opts.state ? (await catalog.listBackups({ plan: PLAN })).find((b) => b.status === 'Available') : undefined;
    let backupId: string;
    let backupSeconds: number | undefined;
    if (previous) {
      backupId = previous.backupId;
      say(`${formatBytes(sourceBytes)} in ${pvcs.length} PVCs; restoring ${backupId}, the newest Available backup in ${stateDir}, again`);
    } else {
      say(`seeded ${formatBytes(sourceBytes)} in ${pvcs.length} PVCs (${formatDuration(seedSeconds)}); backing up`);
      t = performance.now();
      const backup = await runLocalBackup({ stateDir, config, input: { plan: PLAN }, pollMs: opts.pollMs });
      backupSeconds = (performance.now() - t) / 1000;
      if (backup.status !== 'SUCCEEDED') throw new Error(`the backup failed: ${backup.error?.name}: ${backup.error?.message}`);
      backupId = (backup.output as { backupId: string }).backupId;
      say(`backed up ${backupId} (${formatDuration(backupSeconds)})`);
    }

    // A namespace and name of its own each run, so a state directory can be restored from again.
    const restoreName = `rto-${Date.now().toString(36)}`;
    say(`restoring it from the vault into namespace ${restoreName}`);
    const started = performance.now();
    const restore = await runLocalRestore({
      stateDir,
      config,
      input: { backupId, targetNamespace: restoreName, source: 'vault', restoreName },
      pollMs: opts.pollMs,
      onState: (state) => say(`  +${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s  ${state}`),
      timings: { kubeRequestTimeoutSeconds: opts.kubeTimeout },
      restoreTimings: { hydrationConcurrency: opts.hydrationConcurrency },
    });
    const record = await catalog.getRestore(restoreName);
    if (restore.status !== 'SUCCEEDED' || record?.status !== 'Completed') throw new Error(`the restore failed: ${restore.error?.name}: ${restore.error?.message}`);
    if (!record.validation?.passed) throw new Error('the restore completed without a passed validation');
    if (restore.retried.length > 0) say(`retried after an error: ${restore.retried.join(', ')}`);
    report(record, { dataScale, payloads: opts.payloads, sourceBytes, backupSeconds, pollMs: opts.pollMs, hydrationConcurrency: opts.hydrationConcurrency }, opts.json);
  } finally {
    await cluster.stop();
    if (!opts.keep && !opts.state) await rm(stateDir, { recursive: true, force: true });
  }
}

/** Prints the RTO table: phases, the data mover's share, and the volumes. */
function report(r: RestoreRecord, run: { dataScale: number; payloads: PayloadMode; sourceBytes: number; backupSeconds: number | undefined; pollMs: number; hydrationConcurrency: number }, json: boolean): void {
  const rto = r.rtoSeconds!;
  const phases = r.phases ?? restorePhases(r);
  const moving = dataMoverSeconds(r.volumes) ?? 0;
  const bytes = r.volumes.reduce((sum, v) => sum + (v.dataMover?.bytes ?? 0), 0);
  const hydration = phases.find((p) => p.phase === 'hydration')?.seconds ?? 0;
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${formatBytes(totalmem())} RAM, Node ${process.versions.node}`;
  if (json) {
    process.stdout.write(`${JSON.stringify({ machine, ...run, restoreId: r.restoreId, rtoSeconds: rto, phases, dataMoverSeconds: moving, bytesRestored: bytes, peakHydrations: peakHydrations(r.volumes), volumes: r.volumes }, null, 2)}\n`);
    return;
  }
  const pct = (s: number) => `${((100 * s) / rto).toFixed(1)}%`;
  const out: string[] = [];
  out.push(`machine: ${machine}`);
  out.push(`dataset: ${formatBytes(run.sourceBytes)} in ${r.volumes.length} volumes${run.backupSeconds === undefined ? ' (backed up before)' : ` (--data-scale ${run.dataScale}, ${run.payloads} payloads); backup took ${formatDuration(run.backupSeconds)}`}`);
  out.push(`restore ${r.restoreId} from the vault: Wait states ${run.pollMs} ms, ${run.hydrationConcurrency} hydrations at once\n`);
  const means = new Map<string, string>(RESTORE_PHASES.map((p) => [p.phase, p.means]));
  out.push(
    formatTable(
      ['phase', 'seconds', 'share of RTO', 'what'],
      [...phases.map((p) => [p.phase, (p.seconds ?? 0).toFixed(1), pct(p.seconds ?? 0), means.get(p.phase) ?? '']), ['RTO', rto.toFixed(1), '100.0%', 'request to validated data']],
    ),
  );
  out.push(
    `data mover: ${moving.toFixed(1)} s (${pct(moving)} of the RTO, ${((100 * moving) / (hydration || 1)).toFixed(0)}% of hydration), ${formatBytes(bytes)} at ${formatRate(moving > 0 ? bytes / moving : undefined)}, at most ${peakHydrations(r.volumes)} at once`,
  );
  const validation = phases.find((p) => p.phase === 'validation')?.seconds ?? 0;
  out.push(`everything but hydration: ${(rto - hydration).toFixed(1)} s (${pct(rto - hydration)} of the RTO)`);
  out.push(
    `without validation (the simulated Milvus's exact search): RTO ${(rto - validation).toFixed(1)} s, of which everything but hydration ${(rto - validation - hydration).toFixed(1)} s (${(
      (100 * (rto - validation - hydration)) /
      (rto - validation || 1)
    ).toFixed(1)}%)\n`,
  );
  out.push(
    formatTable(
      ['pvc', 'bytes', 'files', 'data mover', 'rate', 'started', 'done'],
      r.volumes.map((v) => {
        const s = v.dataMover ? (Date.parse(v.dataMover.endedAt) - Date.parse(v.dataMover.startedAt)) / 1000 : undefined;
        const since = (at: string | undefined) => (at ? `+${((Date.parse(at) - Date.parse(r.requestedAt)) / 1000).toFixed(1)} s` : '');
        return [v.pvc, formatBytes(v.dataMover?.bytes), v.dataMover?.files ?? '', s === undefined ? '' : formatDuration(s), s ? formatRate(v.dataMover!.bytes / s) : '', since(v.startedAt), since(v.endedAt)];
      }),
    ),
  );
  process.stdout.write(`${out.join('\n')}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:rto: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

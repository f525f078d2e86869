/**
 * A restore's RTO, broken down: the timeline steps grouped into the phases an operator reasons
 * about (prepare and verify, thaw, volume hydration, manifests, readiness, validation), and the
 * data mover's share of it. The phases are derived from the step timeline the workflow records
 * as it runs (core/workflow/timeline.ts), by the one function here, and the workflow writes the
 * result into the record (`phases`) whenever a step starts or ends, so `restore describe`, its
 * JSON and anyone reading the catalog see the same breakdown.
 *
 * Phases are contiguous: each starts where the previous one ended (the first at the request),
 * so they add up to the RTO exactly. A Wait between polls counts in the phase that polls; a gap
 * before a phase's first step counts in that phase (records of restores from before the readiness
 * loop checked first show one: its 10 s Wait before the first CheckReadiness).
 */
import type { RestoredVolume, RestoreRecord, RestoreStep } from '../catalog/record.js';

/**
 * One phase: its name (lowercase, so it is never taken for the timeline step of the same word),
 * the timeline steps it groups, and what it stands for.
 */
export interface RestorePhaseRow {
  readonly phase: string;
  readonly steps: readonly RestoreStep[];
  readonly means: string;
}

/**
 * The phases in the order they run, each with its timeline steps (core/workflow/steps.ts). Every
 * timeline step of the restore belongs to exactly one (test/restore/phases.test.ts checks it).
 */
export const RESTORE_PHASES = [
  // Nothing exists in the cluster yet: the input, the backup and the target are checked, and the
  // backup's integrity chain is verified in the vault.
  { phase: 'prepare', steps: ['Prepare', 'Verify'], means: 'input, backup and target checked; the backup verified in the vault' },
  // Its own phase: hours for Deep Archive, nothing when no pack is in an archive class.
  { phase: 'thaw', steps: ['Thaw'], means: 'packs in an archive class thawed (nothing to do for most restores)' },
  // The namespace is made just before the volumes, and an S3-backed Milvus's bucket objects are
  // copied right after them: both are part of putting the data back.
  { phase: 'hydration', steps: ['Namespace', 'Volumes', 'Objects'], means: 'namespace, PVCs filled from the vault (or made from snapshots), bucket objects copied' },
  { phase: 'manifests', steps: ['Manifests'], means: 'captured objects created in restore order' },
  { phase: 'readiness', steps: ['Readiness'], means: 'workloads ready, the Milvus CR Healthy, /healthz OK' },
  // Complete ends it: the RTO is taken there.
  { phase: 'validation', steps: ['Validate', 'Complete'], means: 'collections loaded, counted and searched; the restore recorded Completed' },
] as const satisfies readonly RestorePhaseRow[];

export type RestorePhase = (typeof RESTORE_PHASES)[number]['phase'];
export const RESTORE_PHASE_NAMES = RESTORE_PHASES.map((p) => p.phase) as [RestorePhase, ...RestorePhase[]];

/** One phase of one restore, as the record keeps it. */
export interface PhaseSpan {
  readonly phase: RestorePhase;
  readonly startedAt: string;
  /** Absent while the phase runs. */
  readonly endedAt?: string;
  /** `endedAt - startedAt`, once ended. */
  readonly seconds?: number;
  /** `Failed` when one of its steps failed. */
  readonly outcome?: 'Succeeded' | 'Failed';
}

const seconds = (from: string, to: string): number => Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);
const latest = (times: readonly string[]): string => times.reduce((a, b) => (Date.parse(b) > Date.parse(a) ? b : a));
const earliest = (times: readonly string[]): string => times.reduce((a, b) => (Date.parse(b) < Date.parse(a) ? b : a));

/**
 * The phases of restore `r` from its timeline (see the module documentation): a phase is there
 * once one of its steps started; it ends with the last of its steps to end (a step of it that
 * starts later opens it again), and a Completed restore's last phase ends when the restore
 * completed, so the phases add up to its `rtoSeconds`. A phase whose step failed ends Failed
 * there; the failure path's cleanup after it is in no phase.
 */
export function restorePhases(r: Pick<RestoreRecord, 'requestedAt' | 'steps' | 'status' | 'completedAt'>): PhaseSpan[] {
  const spans: PhaseSpan[] = [];
  let from = r.requestedAt;
  for (const row of RESTORE_PHASES) {
    const entries = row.steps.flatMap((step) => (r.steps[step] ? [r.steps[step]] : []));
    if (entries.length === 0) continue;
    // A phase starts where the previous ended, but never after its own first step (an older
    // record, or a previous phase that never ended: its step was cut short).
    const first = earliest(entries.map((e) => e.startedAt));
    const startedAt = Date.parse(from) <= Date.parse(first) ? from : first;
    const failed = entries.some((e) => e.outcome === 'Failed');
    const running = !failed && entries.some((e) => e.endedAt === undefined);
    if (running) {
      spans.push({ phase: row.phase, startedAt });
      from = startedAt;
      continue;
    }
    let endedAt = latest(entries.map((e) => e.endedAt ?? e.startedAt));
    if (r.status === 'Completed' && r.completedAt && row.phase === RESTORE_PHASES.at(-1)!.phase) endedAt = r.completedAt;
    spans.push({ phase: row.phase, startedAt, endedAt, seconds: seconds(startedAt, endedAt), outcome: failed ? 'Failed' : 'Succeeded' });
    from = endedAt;
  }
  return spans;
}

/** Whether two breakdowns say the same (so an unchanged one is not written again). */
export function samePhases(a: readonly PhaseSpan[] | undefined, b: readonly PhaseSpan[]): boolean {
  return JSON.stringify(a ?? []) === JSON.stringify(b);
}

/** The data mover's runs of a restore's volumes, as [start, end] in milliseconds, by start. */
function runsOf(volumes: readonly Pick<RestoredVolume, 'dataMover'>[]): (readonly [number, number])[] {
  return volumes
    .flatMap((v) => (v.dataMover ? [[Date.parse(v.dataMover.startedAt), Date.parse(v.dataMover.endedAt)] as const] : []))
    .filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b) && b >= a)
    .sort((x, y) => x[0] - y[0]);
}

/** The most data movers that ran at the same moment (0 when none recorded a run). */
export function peakHydrations(volumes: readonly Pick<RestoredVolume, 'dataMover'>[]): number {
  const edges = runsOf(volumes).flatMap(([a, b]) => [[a, 1] as const, [b, -1] as const]);
  // An end before a start at the same instant: back-to-back runs are not concurrent.
  edges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let now = 0;
  let peak = 0;
  for (const [, d] of edges) peak = Math.max(peak, (now += d));
  return peak;
}

/**
 * Seconds during which at least one data mover was hydrating a volume of the restore: the union
 * of the runs the volumes recorded (`dataMover`, each from its own progress report). Runs in
 * parallel count once; undefined when no volume has one (a snapshot restore, or records from
 * before the data mover reported progress).
 */
export function dataMoverSeconds(volumes: readonly Pick<RestoredVolume, 'dataMover'>[]): number | undefined {
  const runs = runsOf(volumes);
  if (runs.length === 0) return undefined;
  let total = 0;
  let [start, end] = runs[0]!;
  for (const [a, b] of runs.slice(1)) {
    if (a > end) {
      total += end - start;
      [start, end] = [a, b];
    } else if (b > end) {
      end = b;
    }
  }
  return (total + end - start) / 1000;
}

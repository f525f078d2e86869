/**
 * How the CLI writes tables, sizes and durations, one way for every command.
 */
import prettyBytes from 'pretty-bytes';
import prettyMs from 'pretty-ms';
import { progressPercent, type VolumeProgress } from '../core/datamover/progress.js';

/**
 * kubectl-style tables: upper-case headers, columns padded with three spaces, no borders, so
 * output reads like `kubectl get` and pipes cleanly into `awk`/`column`.
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [headers.map((h) => h.toUpperCase()), ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd()).join('\n') + '\n';
}

/** `5095472` → `4.9MiB`, `512` → `512B`: binary units with one decimal, as `kubectl` and `df -h` users read them. */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '';
  if (bytes < 1024) return `${bytes}B`;
  // pretty-bytes truncates the last digit; half of it added first makes that a rounding.
  const unit = 1024 ** Math.floor(Math.log2(bytes) / 10);
  return prettyBytes(bytes + unit / 20, { binary: true, space: false, minimumFractionDigits: 1, maximumFractionDigits: 1 });
}

/** `4.2` → `4.2s`, `125` → `2m05s`, `9000` → `2h30m`: durations in seconds as an operator reads them (RPO, RTO). */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined) return '';
  const short = seconds < 60;
  const text = prettyMs((short ? seconds : Math.round(seconds)) * 1000, { unitCount: 2, keepDecimalsOnWholeSeconds: short, subSecondsAsDecimals: true });
  // Two units read as one token, the second padded: `2m 5s` → `2m05s`.
  return text.replace(/ (?=\d[a-z])/g, '0').replaceAll(' ', '');
}

/** `36700160` → `35.0MiB/s`; empty while unknown. */
export function formatRate(bytesPerSecond: number | null | undefined): string {
  return bytesPerSecond === null || bytesPerSecond === undefined ? '' : `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** An ETA in whole seconds: `29s`, `2m05s`, `2h30m` (a countdown has no use for tenths). */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '';
  return seconds < 60 ? `${Math.round(seconds)}s` : formatDuration(seconds);
}

/** A volume's progress as one line: `42% (1.2GiB of 2.9GiB, 120 of 300 files), 35.0MiB/s, ETA 48s`. */
export function formatProgress(p: VolumeProgress): string {
  const rate = p.bytesPerSecond === null ? '' : `, ${formatRate(p.bytesPerSecond)}`;
  if (p.phase === 'counting' && p.bytesDone === 0 && p.filesDone === 0) return 'counting files';
  // An export copies while it counts its totals, and goes on without them when they cannot be
  // counted: say what is done (bytes read include files not finished, so they lead).
  if (p.phase !== 'done' && (p.bytesTotal === null || p.filesTotal === null)) {
    const done = `${formatBytes(p.bytesDone)} and ${p.filesDone} files done`;
    if (p.phase === 'failed') return `failed after ${done}`;
    return `${done} (${p.phase === 'counting' ? 'counting files' : 'total unknown'})${rate}`;
  }
  const percent = progressPercent(p);
  const of = `${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal ?? undefined)}, ${p.filesDone} of ${p.filesTotal ?? '?'} files`;
  if (p.phase === 'done') return `done (${of})`;
  const eta = p.etaSeconds === null ? '' : `, ETA ${formatEta(p.etaSeconds)}`;
  return `${p.phase === 'failed' ? 'failed at ' : ''}${percent === null ? '?' : percent.toFixed(0)}% (${of})${rate}${eta}`;
}

/** The progress of each volume of a running backup or restore, for `describe`. */
export function formatProgressTable(progress: readonly VolumeProgress[]): string {
  return formatTable(
    ['pvc', 'phase', 'done', 'bytes', 'files', 'rate', 'eta', 'updated'],
    progress.map((p) => {
      const percent = progressPercent(p);
      return [
        p.volume,
        p.phase,
        percent === null ? '' : `${percent.toFixed(0)}%`,
        `${formatBytes(p.bytesDone)}/${p.bytesTotal === null ? '?' : formatBytes(p.bytesTotal)}`,
        `${p.filesDone}/${p.filesTotal ?? '?'}`,
        formatRate(p.bytesPerSecond),
        formatEta(p.etaSeconds),
        p.updatedAt,
      ];
    }),
  );
}

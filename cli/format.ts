/**
 * How the CLI writes tables, sizes and durations, one way for every command.
 */
import prettyBytes from 'pretty-bytes';
import prettyMs from 'pretty-ms';

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

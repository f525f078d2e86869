import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { buildProgram } from '../../cli/main.js';
import { parseConfig } from '../../core/config/parse.js';
import { FailoverInput } from '../../core/dr/failover.js';
import { DrillInput, RestoreInput } from '../../core/workflow/restore-state.js';

// The runbooks are read at 3 a.m. by someone who has never run them, so every command in them
// must be one the CLI accepts as written. Each `milvus-guard` line of a ```sh block is checked
// against the real commander program (cli/main.ts) without running anything: the command path
// exists and is a command that runs, every flag is one of its options, mandatory options and
// arguments are there, and commander itself parses the line (choices, value parsers, excess
// arguments) with every action replaced by a no-op. Console inputs are parsed by the workflow's
// own input schema, config snippets by the config schema.

const RUNBOOKS = {
  'docs/runbooks/dr-failover.md': [
    'What a failover does',
    'Before you need it',
    'Decide to fail over',
    'Signals',
    'Read `dr status`',
    'Fail over from the CLI',
    'Fail over from the Step Functions console',
    'Verify',
    'Point clients at the DR Milvus',
    'Protect the DR Milvus',
    'Fail back',
    'Rehearse',
    'On a laptop: the region-outage demo',
    'Two local regions, step by step',
  ],
  'docs/runbooks/restore.md': [
    'Choose the backup',
    'Restore from the CLI',
    'Restore from the Step Functions console',
    'Verify',
    'When a restore fails',
    'Archived backups take hours',
    'Rehearse on the embedded default',
  ],
  'docs/runbooks/drill.md': ['Run a drill', 'Read the evidence', 'Drills in a DR region', 'Why scheduled DR drills matter', 'Rehearse on the embedded default'],
} as const;
type Runbook = keyof typeof RUNBOOKS;
const FILES = Object.keys(RUNBOOKS) as Runbook[];

/** Other programs a runbook's shell blocks may call; their lines are not checked further. */
const OTHER_PROGRAMS = ['kubectl ', 'aws ', 'npx cdk '];

interface Block {
  readonly lang: string;
  readonly text: string;
  readonly line: number;
}

/** The fenced code blocks of a Markdown file, with the line each starts on. */
function blocksOf(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const body: string[] = [];
    const start = i + 2;
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    blocks.push({ lang: open[1]!, text: body.join('\n'), line: start });
  }
  return blocks;
}

const read = (file: Runbook): string => readFileSync(file, 'utf8');

interface ShellLine {
  readonly file: Runbook;
  readonly line: number;
  readonly text: string;
}

/** Every non-blank, non-comment line of the ```sh blocks of `file`. */
function shellLines(file: Runbook): ShellLine[] {
  return blocksOf(read(file))
    .filter((b) => b.lang === 'sh')
    .flatMap((b) => b.text.split('\n').map((text, i) => ({ file, line: b.line + i, text: text.trim() })))
    .filter((l) => l.text !== '' && !l.text.startsWith('#'));
}

/** Words of a shell line, as a POSIX shell splits them (quotes; a trailing comment dropped). */
function words(line: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else word = (word ?? '') + ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word ??= '';
    } else if (/\s/.test(ch)) {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else if (ch === '#' && word === undefined) {
      break;
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (word !== undefined) out.push(word);
  return out;
}

/** The `milvus-guard` arguments of a line (after `milvus-guard` or `npx milvus-guard`), or undefined. */
function milvusGuardArgs(text: string): string[] | undefined {
  const w = words(text);
  if (w[0] === 'milvus-guard') return w.slice(1);
  if (w[0] === 'npx' && w[1] === 'milvus-guard') return w.slice(2);
  return undefined;
}

const allMilvusGuardLines = (): ShellLine[] => FILES.flatMap(shellLines).filter((l) => milvusGuardArgs(l.text) !== undefined);

/** Every command of the program, depth first. */
function commandsOf(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(commandsOf)];
}

/**
 * What is wrong with `args` (a `milvus-guard` command line without the program name), by the
 * program's own command and option definitions; empty when nothing is.
 */
async function problemsOf(args: string[]): Promise<string[]> {
  const program = await buildProgram(['node', 'milvus-guard', ...args]);
  let cmd: Command = program;
  let i = 0;
  for (; i < args.length; i++) {
    const sub = cmd.commands.find((c) => c.name() === args[i] || c.aliases().includes(args[i]!));
    if (!sub) break;
    cmd = sub;
  }
  const path = ['milvus-guard', ...args.slice(0, i)].join(' ');
  if (cmd === program) return [`no command ${JSON.stringify(args[0] ?? '')}; the CLI has ${program.commands.map((c) => c.name()).join(', ')}`];
  if (cmd.commands.length > 0) return [`${path} needs a subcommand (${cmd.commands.map((c) => c.name()).join(', ')}), got ${JSON.stringify(args[i] ?? '')}`];

  const problems: string[] = [];
  const used = new Set<string>();
  const positionals: string[] = [];
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const flag = arg.split('=')[0]!;
    if (flag === '--help' || flag === '-h') continue;
    const option = cmd.options.find((o) => o.long === flag || o.short === flag);
    if (!option) {
      problems.push(`${path} has no option ${flag}; it has ${cmd.options.map((o) => o.long).join(', ')}`);
      continue;
    }
    used.add(option.attributeName());
    if ((option.required || option.optional) && !arg.includes('=')) {
      const value = args[i + 1];
      if (value === undefined && option.required) problems.push(`${path} ${flag} needs a value`);
      else if (value !== undefined && (option.required || !value.startsWith('-'))) {
        if (option.argChoices && !option.argChoices.includes(value)) problems.push(`${path} ${flag} ${value}: allowed are ${option.argChoices.join(', ')}`);
        i++;
      }
    }
  }
  for (const option of cmd.options) {
    if (option.mandatory && !used.has(option.attributeName())) problems.push(`${path} needs ${option.long}`);
  }
  const declared = cmd.registeredArguments;
  const needed = declared.filter((a) => a.required).length;
  if (positionals.length < needed) problems.push(`${path} needs ${declared.filter((a) => a.required).map((a) => `<${a.name()}>`).join(' ')}; got ${positionals.length} argument(s)`);
  if (!declared.some((a) => a.variadic) && positionals.length > declared.length) problems.push(`${path} takes ${declared.length} argument(s), got ${positionals.join(' ')}`);
  if (problems.length > 0) return problems;

  // Commander itself, with every action a no-op: choices, value parsers, excess arguments.
  for (const c of commandsOf(program)) {
    c.action(() => undefined);
    c.configureOutput({ writeOut: () => undefined, writeErr: () => undefined, outputError: () => undefined });
  }
  try {
    await program.parseAsync(['node', 'milvus-guard', ...args]);
  } catch (err) {
    return [`${path}: commander refuses it: ${err instanceof Error ? err.message : String(err)}`];
  }
  return [];
}

const where = (l: ShellLine) => `${l.file}:${l.line}: ${l.text}`;

describe('the runbooks', () => {
  it.each(FILES)('%s has the sections a first-time reader looks for', (file) => {
    const headings = read(file)
      .split('\n')
      .filter((l) => /^#{1,4} /.test(l))
      .map((l) => l.replace(/^#+ /, ''));

    expect(RUNBOOKS[file].filter((h) => !headings.includes(h))).toEqual([]);
  });

  it.each(FILES)('%s runs only milvus-guard, kubectl, aws and cdk in its shell blocks, one command per line', (file) => {
    const lines = shellLines(file);

    const strangers = lines.filter((l) => milvusGuardArgs(l.text) === undefined && !OTHER_PROGRAMS.some((p) => l.text.startsWith(p))).map(where);
    const chained = lines.filter((l) => /(&&|\|\||;|\\$|\|)/.test(l.text.replace(/#.*$/, ''))).map(where);

    expect({ strangers, chained }).toEqual({ strangers: [], chained: [] });
    expect(lines.length).toBeGreaterThan(0);
  });

  it('every milvus-guard command in them is accepted by the CLI as written', async () => {
    const lines = allMilvusGuardLines();
    const problems: string[] = [];

    for (const l of lines) for (const p of await problemsOf(milvusGuardArgs(l.text)!)) problems.push(`${where(l)}\n    ${p}`);

    expect(problems).toEqual([]);
    expect(lines.length).toBeGreaterThan(30);
  }, 60_000);

  it('the checker catches a flag the command does not have, a missing mandatory option, a missing argument and a bad choice', async () => {
    expect(await problemsOf(['dr', 'failover', '--plan', 'p', '--target-cluster', 'dr', '--namespace', 'ns', '--force'])).toEqual([
      expect.stringMatching(/^milvus-guard dr failover has no option --force; it has --plan, /),
    ]);
    expect(await problemsOf(['dr', 'failover', '--plan', 'p', '--namespace', 'ns'])).toEqual(['milvus-guard dr failover needs --target-cluster']);
    expect(await problemsOf(['restore', 'describe', '--local'])).toEqual(['milvus-guard restore describe needs <id>; got 0 argument(s)']);
    expect(await problemsOf(['restore', 'create', '--plan', 'p', '--namespace', 'ns', '--source', 'tape'])).toEqual(['milvus-guard restore create --source tape: allowed are snapshot, vault']);
    expect(await problemsOf(['dr'])).toEqual([expect.stringMatching(/^milvus-guard dr needs a subcommand \(status, list, failover, check/)]);
    expect(await problemsOf(['local', 'replicate', '--from', 'a', '--to', 'b', '--lag', 'soon'])).toEqual([expect.stringMatching(/commander refuses it: .*--lag/)]);
  });

  it('names --region on every AWS command of the DR failover runbook: without it a command goes to the region that is down', async () => {
    const lines = shellLines('docs/runbooks/dr-failover.md').filter((l) => milvusGuardArgs(l.text) !== undefined);
    const missing: string[] = [];

    for (const l of lines) {
      const args = milvusGuardArgs(l.text)!;
      const program = await buildProgram(['node', 'milvus-guard', ...args]);
      const cmd = program.commands.find((c) => c.name() === args[0])?.commands.find((c) => c.name() === args[1]);
      const takesRegion = cmd?.options.some((o) => o.long === '--region') === true && cmd.options.some((o) => o.long === '--local');
      if (takesRegion && !args.includes('--local') && !args.includes('--region')) missing.push(where(l));
    }

    expect(missing).toEqual([]);
  });
});

describe('the console inputs in the runbooks', () => {
  const jsonBlocks = (file: Runbook) => blocksOf(read(file)).filter((b) => b.lang === 'json');

  it('the failover inputs of the DR failover runbook are accepted by the failover workflow', () => {
    const inputs = jsonBlocks('docs/runbooks/dr-failover.md').map((b) => JSON.parse(b.text) as unknown);

    expect(inputs.map((i) => FailoverInput.parse(i))).toEqual([
      { plan: 'milvus-production-backup', targetCluster: 'dr', targetNamespace: 'vector-db' },
      { plan: 'milvus-production-backup', targetCluster: 'dr', targetNamespace: 'vector-db', pointInTime: '2026-11-20T02:00:00Z' },
    ]);
  });

  it('the restore inputs of the restore runbook are accepted by the restore workflow', () => {
    const inputs = jsonBlocks('docs/runbooks/restore.md').map((b) => JSON.parse(b.text) as unknown);

    expect(inputs.length).toBe(2);
    for (const input of inputs) expect(RestoreInput.safeParse(input).error).toBeUndefined();
  });

  it('the drill inputs of the drill runbook are accepted by the drill workflow', () => {
    const inputs = jsonBlocks('docs/runbooks/drill.md').map((b) => JSON.parse(b.text) as unknown);

    expect(inputs).toEqual([{ drill: 'production-weekly-drill' }, { plan: 'milvus-production-backup' }]);
    for (const input of inputs) expect(DrillInput.safeParse(input).error).toBeUndefined();
  });
});

describe('the config snippets in the runbooks', () => {
  type Example = Record<string, unknown> & Record<'vaults' | 'plans' | 'drills', Record<string, unknown>[]>;
  const example = parseYaml(readFileSync('examples/production.yaml', 'utf8')) as Example;

  /** The example with a snippet's new entries added (entries with only a name stand for the example's own). */
  function withSnippet(file: Runbook): { config: Record<string, unknown>; added: string[] } {
    const [block] = blocksOf(read(file)).filter((b) => b.lang === 'yaml');
    const snippet = parseYaml(block!.text) as Partial<Example>;
    const config: Record<string, unknown> = { ...example };
    const added: string[] = [];
    for (const key of ['vaults', 'plans', 'drills'] as const) {
      const entries = (snippet[key] ?? []).filter((e) => Object.keys(e).length > 1);
      config[key] = [...(example[key] ?? []), ...entries];
      added.push(...entries.map((e) => `${key}: ${String(e['name'])}`));
    }
    return { config, added };
  }

  it("the DR failover runbook's plan for the DR cluster, with its vault in us-west-2, passes config validation", () => {
    const { config, added } = withSnippet('docs/runbooks/dr-failover.md');

    const parsed = parseConfig(JSON.stringify(config), 'runbook.yaml');

    expect(added).toEqual(['vaults: west', 'plans: milvus-dr-backup']);
    expect(parsed.plans.find((p) => p.name === 'milvus-dr-backup')).toMatchObject({ cluster: 'dr', vault: 'west' });
    expect(parsed.vaults.find((v) => v.name === 'west')).toMatchObject({ region: 'us-west-2' });
    // And with the way back: west replicating into us-east-1, while primary replicates into us-west-2.
    const both = parseConfig(JSON.stringify({ ...config, vaults: (config.vaults as { name: string }[]).map((v) => (v.name === 'west' ? { ...v, replicaRegions: ['us-east-1'] } : v)) }), 'runbook.yaml');
    expect(both.vaults.map((v) => [v.name, v.replicaRegions])).toEqual([['primary', ['us-west-2']], ['west', ['us-east-1']]]);
  });

  it("the drill runbook's DR drill targets the DR cluster and passes config validation", () => {
    const { config, added } = withSnippet('docs/runbooks/drill.md');

    const parsed = parseConfig(JSON.stringify(config), 'runbook.yaml');

    expect(added).toEqual(['drills: production-dr-drill']);
    expect(parsed.drills.find((d) => d.name === 'production-dr-drill')).toMatchObject({ plan: 'milvus-production-backup', targetCluster: 'dr' });
  });
});

import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const files = (dir: string): string[] => readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f));

/** What `file` imports: repository paths for relative specifiers, package names otherwise; type-only imports left out. */
function importsOf(file: string, { lazy }: { lazy: boolean }): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const statics = [...text.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?\bfrom\s+'([^']+)'/gms)].map((m) => m[1]!);
  const dynamics = lazy ? [...text.matchAll(/\bimport\('([^']+)'\)/g)].map((m) => m[1]!) : [];
  return [...statics, ...dynamics].map((s) => (s.startsWith('.') ? relative(ROOT, join(ROOT, dirname(file), s)).replace(/\.js$/, '.ts') : s));
}

/** Every file `file` loads when it is imported, following static imports only. */
function staticClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const dep of importsOf(file, { lazy: false })) if (dep.endsWith('.ts')) staticClosure(dep, seen);
  return seen;
}

describe('dependencies point one way', () => {
  it('the CLI never imports infra/ or aws-cdk-lib', () => {
    const offending = files('cli').filter((f) => importsOf(f, { lazy: true }).some((d) => d.startsWith('infra/') || d.startsWith('aws-cdk-lib')));

    expect(files('cli').length).toBeGreaterThan(5);
    expect(offending).toEqual([]);
  });

  it('core never imports aws-cdk-lib', () => {
    expect(files('core').filter((f) => importsOf(f, { lazy: true }).some((d) => d.startsWith('aws-cdk-lib')))).toEqual([]);
  });

  it('core, lambdas and infra never import local/', () => {
    const all = [...files('core'), ...files('lambdas'), ...files('infra')];

    expect(all.filter((f) => importsOf(f, { lazy: true }).some((d) => d.startsWith('local/')))).toEqual([]);
  });

  it('cli/local-mode.ts is the only CLI file that imports local/', () => {
    const importers = files('cli').filter((f) => importsOf(f, { lazy: true }).some((d) => d.startsWith('local/')));

    expect(importers).toEqual(['cli/local-mode.ts']);
  });

  it.each(['datamover', 'backup', 'restore', 'drill', 'config', 'eks', 'plan'])('loading the %s verb loads nothing of local/', (verb) => {
    const loaded = [...staticClosure(`cli/commands/${verb}.ts`)];

    expect(loaded.length).toBeGreaterThan(1);
    expect(loaded.filter((f) => f.startsWith('local/'))).toEqual([]);
  });

  it('infra loads no handler code: only the environment schemas and the step table', () => {
    const loaded = [...staticClosure('infra/app.ts')];

    expect(loaded.filter((f) => f.startsWith('lambdas/')).length).toBeGreaterThan(2);
    expect(loaded.filter((f) => /^lambdas\/.*\/(handlers?|index|services|step)\.ts$/.test(f))).toEqual([]);
  });
});

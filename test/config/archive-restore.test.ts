import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parseDocument } from 'yaml';
import { ConfigError, type ConfigIssue } from '../../core/config/issues.js';
import { parseConfig } from '../../core/config/parse.js';

// vaults[].archiveRestore: how restores thaw packs the lifecycle moved into GLACIER or DEEP_ARCHIVE.

const exampleText = readFileSync('examples/production.yaml', 'utf8');

/** The production example with `archiveRestore` set on its first vault. */
function withArchiveRestore(value: unknown): string {
  const doc = parseDocument(exampleText);
  doc.setIn(['vaults', 0, 'archiveRestore'], doc.createNode(value));
  return doc.toString();
}

function issuesOf(text: string): readonly ConfigIssue[] {
  try {
    parseConfig(text, 'variant.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected parseConfig to reject the variant, but it accepted it');
}

describe('vaults[].archiveRestore', () => {
  it('is optional: the example has none', () => {
    expect(parseConfig(exampleText, 'production.yaml').vaults[0]!.archiveRestore).toBeUndefined();
  });

  it('defaults the tier to Standard and the days to 3 when given partly', () => {
    expect(parseConfig(withArchiveRestore({}), 'v.yaml').vaults[0]!.archiveRestore).toEqual({ tier: 'Standard', days: 3 });
    expect(parseConfig(withArchiveRestore({ tier: 'Bulk' }), 'v.yaml').vaults[0]!.archiveRestore).toEqual({ tier: 'Bulk', days: 3 });
  });

  it('takes Expedited and a number of days', () => {
    expect(parseConfig(withArchiveRestore({ tier: 'Expedited', days: 7 }), 'v.yaml').vaults[0]!.archiveRestore).toEqual({ tier: 'Expedited', days: 7 });
  });

  it('names the path and the tiers allowed for an unknown tier', () => {
    const issues = issuesOf(withArchiveRestore({ tier: 'Fast' }));

    expect(issues.map((i) => [i.path, i.message])).toEqual([['vaults[0].archiveRestore.tier', expect.stringMatching(/^must be Standard \(hours\), Bulk .* or Expedited/)]]);
  });

  it('refuses days that are not a positive whole number', () => {
    expect(issuesOf(withArchiveRestore({ days: 0 })).map((i) => [i.path, i.message])).toEqual([['vaults[0].archiveRestore.days', 'must be at least 1 (days a thawed copy stays readable); got 0']]);
    expect(issuesOf(withArchiveRestore({ days: 1.5 })).map((i) => i.message)).toEqual(['must be a whole number (days a thawed copy stays readable); got the number 1.5']);
  });

  it('refuses an unknown key, such as a misspelt one', () => {
    expect(issuesOf(withArchiveRestore({ tiers: 'Bulk' })).map((i) => i.path)).toEqual(['vaults[0].archiveRestore.tiers']);
  });
});

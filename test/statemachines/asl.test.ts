import { describe, expect, it } from '@jest/globals';
import { BACKUP_WORKFLOW, handlerStates, placeholderOf } from '../../core/workflow/steps.js';
import { DefinitionPlaceholderError, fillPlaceholders, loadDefinition, placeholdersOf } from '../../core/workflow/asl.js';

describe('loadDefinition', () => {
  it('reads statemachines/backup.asl.yaml with its placeholders unfilled: one per Lambda handler', () => {
    const text = loadDefinition('backup');

    expect(JSON.parse(text)).toMatchObject({ StartAt: 'Prepare' });
    expect(placeholdersOf(text)).toEqual(handlerStates(BACKUP_WORKFLOW).map(placeholderOf).sort());
  });

  it('names the workflows that exist when asked for one that does not', () => {
    expect(() => loadDefinition('bakup')).toThrow(/there is no workflow "bakup"; defined: .*backup/);
  });
});

describe('the backup definition', () => {
  it('opens with a numbered description of its states', () => {
    const { Comment, States } = JSON.parse(loadDefinition('backup')) as { Comment: string; States: Record<string, unknown> };

    expect(Object.keys(States).length).toBeGreaterThan(0);
    Object.keys(States).forEach((state, i) => expect(Comment).toContain(`${i + 1}. ${state}:`));
  });

  it('is JSONPath only: no JSONata, no Assign, no distributed Map', () => {
    const text = loadDefinition('backup');

    expect(text).not.toMatch(/"QueryLanguage"|"Assign"|"DISTRIBUTED"|"Arguments"|"Output"/);
  });
});

describe('fillPlaceholders', () => {
  const text = '{"Resource": "${PrepareFunctionArn}", "Other": "${TableName}", "Again": "${PrepareFunctionArn}"}';

  it('replaces every occurrence of each placeholder', () => {
    const filled = fillPlaceholders(text, { PrepareFunctionArn: 'arn:fn', TableName: 'catalog' });

    expect(JSON.parse(filled)).toEqual({ Resource: 'arn:fn', Other: 'catalog', Again: 'arn:fn' });
  });

  it('names every placeholder left without a value', () => {
    expect(() => fillPlaceholders(text, { PrepareFunctionArn: 'arn:fn' })).toThrow(/no value for \$\{TableName\}/);
  });

  it('names a value that no placeholder asks for', () => {
    expect(() => fillPlaceholders(text, { PrepareFunctionArn: 'arn:fn', TableName: 't', PrepareFunctionARN: 'x' })).toThrow(
      new DefinitionPlaceholderError('cannot fill the definition\'s placeholders: no placeholder for PrepareFunctionARN (placeholders: PrepareFunctionArn, TableName)'),
    );
  });

  it('refuses a value that would break the JSON string it lands in', () => {
    expect(() => fillPlaceholders(text, { PrepareFunctionArn: 'a"b', TableName: 't' })).toThrow(/must not contain quotes/);
  });
});

import { describe, expect, it } from '@jest/globals';
import { expandVariables } from '../../local/runtime.js';

// The kubelet's expansion of $(VAR) in a container's command, args and env values, as the
// Container reference states it and k8s.io/kubernetes third_party/forked/golang/expansion does it.
describe('expandVariables', () => {
  const vars = new Map([
    ['UID', 'a1b2'],
    ['EMPTY', ''],
  ]);

  it.each([
    ['--run-id=$(UID)', '--run-id=a1b2'],
    ['$(UID)$(UID)', 'a1b2a1b2'],
    ['[$(EMPTY)]', '[]'],
    ['$(UNDEFINED)', '$(UNDEFINED)'],
    ['$$(UID)', '$(UID)'],
    ['$$$(UID)', '$a1b2'],
    ['cost: $5', 'cost: $5'],
    ['ends with $', 'ends with $'],
    ['$(UID', '$(UID'],
    ['$(UID $$', '$(UID $'],
    ['$(UID $$ $(UID)', '$(UID $$ $(UID)'],
    ['$()', '$()'],
  ])('turns %j into %j', (input, expected) => {
    expect(expandVariables(input, vars)).toBe(expected);
  });
});

import { describe, expect, test } from '@jest/globals';
import { FilterError, parseFilter, type FieldKinds, type ScalarValue } from '../../local/milvus/filter.js';

// The expression subset on every scalar kind (the seeded collections only have an int64 key).
const FIELDS: FieldKinds = new Map([
  ['id', 'int'],
  ['price', 'float'],
  ['title', 'string'],
  ['active', 'bool'],
  ['embedding', 'vector'],
] as const);
const ROWS: Record<string, ScalarValue>[] = [
  { id: 1n, price: 9.5, title: 'a "quoted" one', active: true },
  { id: 2n, price: 20, title: 'beta', active: false },
  { id: 9007199254740993n, price: 0.25, title: "o'neil", active: true },
];
const ids = (filter: string) => {
  const p = parseFilter(filter, FIELDS);
  return ROWS.filter((r) => p(new Map(Object.entries(r)))).map((r) => String(r.id));
};

describe('the filter subset', () => {
  test('compares floats with int or float literals', () => {
    expect(ids('price >= 9.5 and price < 20.0')).toEqual(['1']);
    expect(ids('price > 1')).toEqual(['1', '2']);
  });

  test('compares strings in either quote, with escapes', () => {
    expect(ids('title == "a \\"quoted\\" one"')).toEqual(['1']);
    expect(ids("title in ['beta', \"o'neil\"]")).toEqual(['2', '9007199254740993']);
  });

  test('takes a bool field alone, negated, or compared, with True/False in any case', () => {
    expect(ids('active')).toEqual(['1', '9007199254740993']);
    expect(ids('!active')).toEqual(['2']);
    expect(ids('active == False')).toEqual(['2']);
  });

  test('reads negative literals', () => {
    expect(ids('price > -1 and id != -2 and id in [-5, 2]')).toEqual(['2']);
  });

  test('keeps int64 keys beyond 2^53 exact', () => {
    expect(ids('id == 9007199254740993')).toEqual(['9007199254740993']);
    expect(ids('id == 9007199254740992')).toEqual([]);
  });

  test('not binds tighter than and, and tighter than or', () => {
    expect(ids('not active and price > 1 or id == 1')).toEqual(['1', '2']);
    expect(ids('not (active and price > 1) or id == 1')).toEqual(['1', '2', '9007199254740993']);
  });

  test.each([
    ['title like "a%"', /./],
    ['price + 1 > 2', /./],
    ['embedding == 1', /vector field embedding/],
    ['nope == 1', /field nope not exist/],
    ['title == 1', /comparisons between string and int/],
    ['id', /not a boolean expression/],
    ['id in [1, "x"]', /cannot be casted to int/],
    ['(id == 1', /expecting '\)'/],
    ['id == - 1', /token recognition error/],
  ])('refuses %s', (filter, why) => {
    expect(() => parseFilter(filter, FIELDS)).toThrow(FilterError);
    expect(() => parseFilter(filter, FIELDS)).toThrow(why);
  });
});

import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { DEFAULT_PRICES, loadPriceFile, parsePriceTable, PriceFileError, PriceTable, pricesFor } from '../../core/cost/prices.js';
import { UserError } from '../../core/errors.js';

describe('the price table', () => {
  it('ships us-east-1 and us-west-2 list prices that match its own schema and say where they come from', () => {
    expect(PriceTable.parse(DEFAULT_PRICES)).toEqual(DEFAULT_PRICES);
    expect(Object.keys(DEFAULT_PRICES.regions).sort()).toEqual(['us-east-1', 'us-west-2']);
    expect(DEFAULT_PRICES.source).toContain('https://aws.amazon.com/s3/pricing/');
    // The page was not read: the source says the numbers are secondary summaries of it, to verify.
    expect(DEFAULT_PRICES.source).toMatch(/^secondary summaries of .* not the page itself: verify/);
    expect(DEFAULT_PRICES.regions['us-east-1']!.storagePerGbMonth.STANDARD).toBe(0.023);
  });

  it('reads an override file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-prices-'));
    const file = join(dir, 'prices.json');
    await writeFile(file, JSON.stringify({ ...DEFAULT_PRICES, source: 'our EDP contract', regions: { 'eu-west-1': DEFAULT_PRICES.regions['us-east-1'] } }));
    const table = await loadPriceFile(file);
    expect(pricesFor(table, 'eu-west-1').storagePerGbMonth.GLACIER_IR).toBe(0.004);
  });

  it('names the file and the path of every bad field', () => {
    const bad = { ...DEFAULT_PRICES, regions: { 'us-east-1': { ...DEFAULT_PRICES.regions['us-east-1']!, storagePerGbMonth: { ...DEFAULT_PRICES.regions['us-east-1']!.storagePerGbMonth, GLACIER: 'cheap' } } } };
    expect(() => parsePriceTable(JSON.stringify(bad), 'prices.json')).toThrow(PriceFileError);
    expect(() => parsePriceTable(JSON.stringify(bad), 'prices.json')).toThrow(/price file prices\.json is not valid[^]*regions\.us-east-1\.storagePerGbMonth\.GLACIER: must be a price in USD/);
  });

  it('says a file that is not JSON is not JSON, naming it', () => {
    expect(() => parsePriceTable('{', 'p.json')).toThrow(/price file p\.json is not JSON/);
  });

  it('says a missing file cannot be read, naming it', async () => {
    await expect(loadPriceFile('/nonexistent/prices.json')).rejects.toThrow('cannot read price file /nonexistent/prices.json: ENOENT');
  });

  it('refuses a region the table has no prices for, saying how to add them', () => {
    expect(() => pricesFor(DEFAULT_PRICES, 'eu-central-1')).toThrow(UserError);
    expect(() => pricesFor(DEFAULT_PRICES, 'eu-central-1')).toThrow(/no prices for eu-central-1 .*pass --prices FILE with a regions\.eu-central-1 entry/);
  });
});

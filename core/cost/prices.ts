/**
 * S3 list prices for the cost report (`milvus-guard cost`): storage per GB-month by storage
 * class, requests per 1,000, and inter-Region transfer per GB (what replication into a DR vault
 * pays). One schema (zod) types the built-in table and validates a `--prices FILE` override.
 *
 * Where the built-in numbers come from: the Amazon S3 pricing page,
 * https://aws.amazon.com/s3/pricing/ ("Storage" and "Requests & data retrievals" tabs, and
 * "Data Transfer" for inter-Region transfer), first price tier (the first 50 TB per month of S3
 * Standard; larger volumes pay slightly less per GB), for US East (N. Virginia) and US West
 * (Oregon), which S3 prices alike. `takenAt` says when they were transcribed. AWS changes
 * prices rarely but does change them: check the page, and pass `--prices FILE` (the same shape
 * as {@link DEFAULT_PRICES}) for other regions, negotiated discounts or newer numbers.
 *
 * S3 bills a "GB" of storage as 2^30 bytes; so does this report.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { UserError } from '../errors.js';

/** The storage classes the report prices, by their S3 API names (what a listing reports). */
export const PRICED_CLASSES = ['STANDARD', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'] as const;
export type PricedClass = (typeof PRICED_CLASSES)[number];

/** Human names of the classes, for tables. */
export const CLASS_LABELS: Record<PricedClass, string> = {
  STANDARD: 'S3 Standard',
  STANDARD_IA: 'S3 Standard-IA',
  ONEZONE_IA: 'S3 One Zone-IA',
  INTELLIGENT_TIERING: 'S3 Intelligent-Tiering (Frequent Access)',
  GLACIER_IR: 'S3 Glacier Instant Retrieval',
  GLACIER: 'S3 Glacier Flexible Retrieval',
  DEEP_ARCHIVE: 'S3 Glacier Deep Archive',
};

const Usd = z.number({ error: 'must be a price in USD (a number)' }).nonnegative('must not be negative');

/** Request prices of one class, per 1,000 requests. */
const RequestPrices = z.strictObject({
  /** PUT, COPY, POST and LIST requests. */
  putCopyPostList: Usd,
  /** GET, SELECT and all other requests (HEAD included). */
  get: Usd,
});

const ClassPrices = <T extends z.ZodType>(value: T) => z.strictObject(Object.fromEntries(PRICED_CLASSES.map((c) => [c, value])) as Record<PricedClass, T>);

/** One region's prices. */
export const RegionPrices = z.strictObject({
  /** USD per GB-month, per storage class. */
  storagePerGbMonth: ClassPrices(Usd),
  /** USD per 1,000 requests, per storage class of the object written or read. */
  requestsPer1000: ClassPrices(RequestPrices),
  /** USD per GB sent to another AWS Region (S3 Replication's data transfer). */
  interRegionTransferPerGb: Usd,
});
export type RegionPrices = z.infer<typeof RegionPrices>;

/** A price table: where it comes from and when, and the prices per region. */
export const PriceTable = z.strictObject({
  currency: z.literal('USD', { error: 'must be "USD"' }),
  /** Where the numbers come from (a URL, a contract). */
  source: z.string({ error: 'must say where the prices come from' }).min(1, 'must say where the prices come from'),
  /** When they were taken, or transcribed from their source (YYYY-MM-DD); the report prints it as "transcribed". */
  takenAt: z.iso.date({ error: 'must be a date such as 2025-01-31' }),
  regions: z.record(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region name such as us-east-1'), RegionPrices),
});
export type PriceTable = z.infer<typeof PriceTable>;

/** us-east-1 and us-west-2 list the same S3 prices (first tier). */
const US_STANDARD_REGION: RegionPrices = {
  storagePerGbMonth: {
    STANDARD: 0.023,
    STANDARD_IA: 0.0125,
    ONEZONE_IA: 0.01,
    INTELLIGENT_TIERING: 0.023,
    GLACIER_IR: 0.004,
    GLACIER: 0.0036,
    DEEP_ARCHIVE: 0.00099,
  },
  requestsPer1000: {
    STANDARD: { putCopyPostList: 0.005, get: 0.0004 },
    STANDARD_IA: { putCopyPostList: 0.01, get: 0.001 },
    ONEZONE_IA: { putCopyPostList: 0.01, get: 0.001 },
    INTELLIGENT_TIERING: { putCopyPostList: 0.005, get: 0.0004 },
    GLACIER_IR: { putCopyPostList: 0.02, get: 0.01 },
    GLACIER: { putCopyPostList: 0.03, get: 0.0004 },
    DEEP_ARCHIVE: { putCopyPostList: 0.05, get: 0.0004 },
  },
  interRegionTransferPerGb: 0.02,
};

/**
 * The built-in table: the prices https://aws.amazon.com/s3/pricing/ listed through 2024 and 2025
 * (unchanged in that time), as secondary summaries quote them — the page itself could not be
 * read when they were written down (go-cloud.io/?p=10624, late 2025: Standard $0.023, Deep
 * Archive $0.00099; howtogeek.com "AWS S3 pricing explained": Standard-IA $0.0125). So `source`
 * says that, and `takenAt` is the day they were transcribed from those summaries, not a day the
 * page was read; the CLI and `-o json` print both, with "verify". Check the page before quoting
 * a number to anyone, and override with `--prices FILE`.
 */
export const DEFAULT_PRICES: PriceTable = {
  currency: 'USD',
  source:
    'secondary summaries of the Amazon S3 pricing page https://aws.amazon.com/s3/pricing/ quoting its 2024-2025 list prices (go-cloud.io/?p=10624, late 2025; howtogeek.com "AWS S3 pricing explained"), not the page itself: verify them there ' +
    '(first tier: first 50 TB/month of S3 Standard; requests per 1,000; Data Transfer to another AWS Region)',
  takenAt: '2026-12-06',
  regions: { 'us-east-1': US_STANDARD_REGION, 'us-west-2': US_STANDARD_REGION },
};

/** A `--prices` file that cannot be read or does not match {@link PriceTable}. */
export class PriceFileError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'PriceFileError';
  }
}

/**
 * Parses a price table from `text` (JSON), naming `file` and the path of every bad field
 * (`regions.us-east-1.storagePerGbMonth.GLACIER: must be a price in USD`).
 */
export function parsePriceTable(text: string, file: string): PriceTable {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PriceFileError(`price file ${file} is not JSON: ${(err as Error).message}`);
  }
  const parsed = PriceTable.safeParse(json);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `  - ${i.path.length ? i.path.map(String).join('.') : '(top level)'}: ${i.message}`);
  throw new PriceFileError(`price file ${file} is not valid (see DEFAULT_PRICES in core/cost/prices.ts for the shape):\n${problems.join('\n')}`);
}

/** Reads and validates a `--prices` file. */
export async function loadPriceFile(file: string): Promise<PriceTable> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new PriceFileError(`cannot read price file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parsePriceTable(text, file);
}

/** The prices of `region`, or a one-line error that says how to supply them. */
export function pricesFor(table: PriceTable, region: string): RegionPrices {
  const prices = table.regions[region];
  if (prices) return prices;
  throw new UserError(`the price table (${table.source}) has no prices for ${region} (it has ${Object.keys(table.regions).join(', ')}); pass --prices FILE with a regions.${region} entry`);
}

/** The class a price is looked up under: S3 reports no class for STANDARD; unknown classes are priced as STANDARD (and named in the report). */
export function pricedClass(storageClass: string | undefined): PricedClass | undefined {
  const c = storageClass ?? 'STANDARD';
  return (PRICED_CLASSES as readonly string[]).includes(c) ? (c as PricedClass) : undefined;
}

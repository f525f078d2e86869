/**
 * A proxy on 127.0.0.1 in front of an S3-compatible server (s3rver) that injects S3 faults the
 * way S3 shows them to a client: 503 SlowDown, 500 InternalError and 403 AccessDenied as S3's
 * XML error documents, a connection reset (the socket destroyed without an answer), and a
 * download cut short (`cut`, GETs only: the answer's status, headers and the first half of its
 * body, then the socket destroyed: a reset in mid-download, which the SDK does not retry, since
 * its response was already handed over).
 *
 * Two ways to inject, both counted in `faults` by kind:
 * 1. Seeded (the robustness run, bench/robustness.ts): a share `rate` of requests, chosen by a
 *    seeded random source, gets SlowDown, InternalError, a reset or (a GET) a cut; a share `partRate` of the
 *    parts of multipart uploads gets an InternalError, counted as `multipart part`.
 * 2. Rules (the fault matrix, bench/fault-matrix.ts): `inject({kind, on, key, parts, times})`
 *    fails exactly the matching requests — writes or reads, of keys matching a regular
 *    expression, only multipart parts — once, n times or every time. Rules come before the
 *    seeded faults; each rule counts its own hits.
 *
 * Faults apply only while `active` is true, so a harness can check the vault with them paused.
 *
 * With `objectLock`, the proxy also gives the bucket what s3rver lacks and the vault bucket has:
 * Object Lock retention. A write carrying `x-amz-object-lock-mode` and
 * `x-amz-object-lock-retain-until-date` (PutObject, CreateMultipartUpload) locks the key, one
 * without them gets the bucket's default retention; GetObjectRetention answers the lock or, for
 * an object without one, `NoSuchObjectLockConfiguration` (404) as S3 does; PutObjectRetention extends it and, as S3
 * does, refuses to shorten it or to leave COMPLIANCE (GOVERNANCE may be shortened only with
 * `x-amz-bypass-governance-retention`); both refuse a retain-until date that is not in the future
 * (400 InvalidArgument); HeadObject and GetObject report the lock in the same
 * headers as S3. Kept in memory, per key: s3rver has no versions, so deletes are not emulated
 * (a versioned bucket would only add a delete marker) — the workflows under test do not delete.
 *
 * Conditional writes, which s3rver lacks too: a PutObject or CompleteMultipartUpload with
 * `If-None-Match: *` for a key that holds an object is answered 412 PreconditionFailed, as S3
 * does (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html). With
 * `createOnly`, the proxy also plays the vault's bucket policy: such a write to a matching key
 * without the header is refused 403 AccessDenied. A `lost` fault forwards a write and then
 * destroys the socket before the answer: the write is done, the client does not know it, and
 * sends it again (the case a create-only write must take for done).
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a fault answers. */
export type S3FaultKind = 'SlowDown' | 'InternalError' | 'AccessDenied' | 'reset' | 'cut' | 'lost';

/** The status and S3 error code of each answered fault. */
const ANSWERS: Record<Exclude<S3FaultKind, 'reset' | 'cut' | 'lost'>, readonly [number, string, string]> = {
  SlowDown: [503, 'SlowDown', 'Please reduce your request rate.'],
  InternalError: [500, 'InternalError', 'We encountered an internal error. Please try again.'],
  AccessDenied: [403, 'AccessDenied', 'Access Denied'],
};

/** A deterministic fault: which requests fail, how, and how often. */
export interface S3FaultRule {
  readonly kind: S3FaultKind;
  /** Writes (PUT, POST), reads (GET, HEAD) or any request. @default 'any' */
  readonly on?: 'write' | 'read' | 'any';
  /** Tested against the object key below the bucket (the vault's prefix included). @default every key */
  readonly key?: RegExp;
  /** Only the parts of multipart uploads (UploadPart). @default false */
  readonly parts?: boolean;
  /** Only the requests that create an object (PutObject, CompleteMultipartUpload). @default false */
  readonly creates?: boolean;
  /** How many matching requests fail; `null`: every one. @default 1 */
  readonly times?: number | null;
  /**
   * How many matching requests pass before the first fails. @default 0 (A request a rule lets
   * pass this way meets no later rule nor seeded fault.)
   */
  readonly skip?: number;
}

/** An injected rule and how many requests it failed so far. */
export interface ArmedS3Fault {
  readonly rule: S3FaultRule;
  readonly hits: number;
}

export interface FaultyS3Options {
  /** A random source in [0, 1) for the seeded faults (a seeded PRNG). @default no seeded faults */
  readonly random?: () => number;
  /** Share of requests that get a seeded fault. @default 0 */
  readonly rate?: number;
  /** Share of multipart parts that get a seeded InternalError. @default 0 */
  readonly partRate?: number;
  /**
   * Emulate Object Lock retention, with the bucket's default retention rule (see the module
   * documentation). @default no Object Lock (s3rver as it is)
   */
  readonly objectLock?: { readonly mode: 'GOVERNANCE' | 'COMPLIANCE'; readonly defaultRetentionDays: number };
  /**
   * Keys (below the bucket) that may only be created, as the vault's bucket policy has it for
   * the export data mover: a PutObject or CompleteMultipartUpload without `If-None-Match: *` is
   * refused 403 AccessDenied. @default none
   */
  readonly createOnly?: RegExp;
}

/** An object's Object Lock retention. */
interface Retention {
  mode: string;
  until: Date;
}

const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

function s3Error(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

/** What a request is, as the rules see it. */
interface S3Request {
  readonly get: boolean;
  readonly write: boolean;
  readonly part: boolean;
  /** PutObject or CompleteMultipartUpload. */
  readonly creates: boolean;
  readonly key: string;
}

function describe(req: IncomingMessage): S3Request {
  const url = new URL(req.url ?? '/', 'http://proxy');
  // Path-style addressing: /bucket/key...
  const key = decodeURIComponent(url.pathname).split('/').slice(2).join('/');
  return { get: req.method === 'GET', write: req.method === 'PUT' || req.method === 'POST', part: url.searchParams.has('partNumber') && url.searchParams.has('uploadId'), creates: createsObject(req, url), key };
}

/**
 * The keys below the bucket that `patterns` (IAM-style: `*` spans slashes) name under the vault
 * prefix `prefix`, as `createOnly` takes them.
 */
export function keysMatching(prefix: string, patterns: readonly string[]): RegExp {
  const escape = (s: string): string => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escape(prefix)}(${patterns.map((p) => p.split('*').map(escape).join('.*')).join('|')})$`);
}

/**
 * A request that creates an object: PutObject (no subresource; the SDK adds `x-id=PutObject`)
 * or CompleteMultipartUpload (POST ?uploadId).
 */
function createsObject(req: IncomingMessage, url: URL): boolean {
  if (req.method === 'PUT') return [...url.searchParams.keys()].every((k) => k === 'x-id') && req.headers['x-amz-copy-source'] === undefined;
  return req.method === 'POST' && url.searchParams.has('uploadId');
}

/** Sends the first half of `answer`'s body (by its Content-Length, at least 2), then destroys the socket. */
function cutShort(answer: IncomingMessage, res: ServerResponse): void {
  const half = Math.floor(Number(answer.headers['content-length']) / 2);
  let sent = 0;
  const cut = (): void => {
    answer.destroy();
    res.socket?.destroy();
  };
  answer.on('data', (chunk: Buffer) => {
    if (sent >= half) return;
    const part = chunk.subarray(0, half - sent);
    sent += part.length;
    // Destroyed once the half is handed to the kernel, so the client receives it whole first.
    if (sent >= half) res.write(part, cut);
    else res.write(part);
  });
}

/** A proxy on 127.0.0.1 in front of s3rver that injects S3 faults (see the module documentation). */
export class FaultyS3Proxy {
  /** Faults injected, by kind; `multipart part` counts the seeded part faults and every fault a `parts` rule injected. */
  readonly faults: Record<string, number> = { SlowDown: 0, InternalError: 0, AccessDenied: 0, reset: 0, cut: 0, lost: 0, 'multipart part': 0 };
  /** Faults are injected only while true. */
  active = true;
  /** Write requests forwarded to the server. */
  writes = 0;
  /** Create-only writes answered 412 PreconditionFailed (the key held an object). */
  preconditionFailed = 0;
  private server: Server | undefined;
  private readonly onWrite = new Set<() => void>();
  private readonly rules: { rule: S3FaultRule; hits: number; passed: number }[] = [];
  private readonly retention = new Map<string, Retention>();

  constructor(
    private readonly upstream: number,
    private readonly options: FaultyS3Options = {},
  ) {}

  /** Fails the requests `rule` matches from now on; read `hits` of the result to see how many it failed. */
  inject(rule: S3FaultRule): ArmedS3Fault {
    const armed = { rule, hits: 0, passed: 0 };
    this.rules.push(armed);
    return armed;
  }

  /** Removes every rule (seeded faults go on). */
  clear(): void {
    this.rules.length = 0;
  }

  /** The fault this request gets, if any, counting it. */
  private faultFor(r: S3Request): { kind: S3FaultKind; part: boolean; rule?: { hits: number } } | undefined {
    if (!this.active) return undefined;
    const rule = this.rules.find(
      ({ rule: f, hits }) =>
        (f.times === null || hits < (f.times ?? 1)) &&
        (f.on === undefined || f.on === 'any' || (f.on === 'write') === r.write) &&
        (!f.parts || r.part) &&
        (!f.creates || r.creates) &&
        (f.kind !== 'cut' || r.get) &&
        (!f.key || f.key.test(r.key)),
    );
    if (rule && rule.passed < (rule.rule.skip ?? 0)) {
      rule.passed++;
      return undefined;
    }
    if (rule) {
      // A cut rule's hit is counted when a body is cut (see start()): an answer without one
      // (a 404, a 304) goes through whole and leaves the rule armed.
      if (rule.rule.kind !== 'cut') rule.hits++;
      return { kind: rule.rule.kind, part: rule.rule.parts === true, rule };
    }
    const random = this.options.random;
    if (!random) return undefined;
    if (r.part) return random() < (this.options.partRate ?? 0) ? { kind: 'InternalError', part: true } : undefined;
    if (random() >= (this.options.rate ?? 0)) return undefined;
    // A download can also be cut short once it has begun (a GET's body).
    // A write can also be done and its answer lost (sent again, it meets what it wrote).
    const kinds = r.get ? (['SlowDown', 'InternalError', 'reset', 'cut'] as const) : r.write ? (['SlowDown', 'InternalError', 'reset', 'lost'] as const) : (['SlowDown', 'InternalError', 'reset'] as const);
    return { kind: kinds[Math.floor(random() * kinds.length)]!, part: false };
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const r = describe(req);
      const fault = this.faultFor(r);
      // A cut is counted once it is made (an answer with a body to cut).
      if (fault && fault.kind !== 'cut') this.faults[fault.part ? 'multipart part' : fault.kind]!++;
      if (fault && fault.kind !== 'cut' && fault.kind !== 'lost') {
        req.resume();
        if (fault.kind === 'reset') return void req.socket.destroy();
        // S3's own status, code and message, marked as injected.
        const [status, code, message] = ANSWERS[fault.kind];
        res.writeHead(status, { 'content-type': 'application/xml' });
        return void res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message} (injected fault)</Message><Key>${r.key.replace(/[<>&]/g, (c) => `&#${c.charCodeAt(0)};`)}</Key></Error>`);
      }
      const url = new URL(req.url ?? '/', 'http://proxy');
      if (createsObject(req, url)) {
        const ifNoneMatch = req.headers['if-none-match'];
        if (ifNoneMatch === undefined && this.options.createOnly?.test(r.key)) {
          req.resume();
          return s3Error(res, 403, 'AccessDenied', 'Access Denied');
        }
        if (ifNoneMatch === '*') return void this.createIfAbsent(req, res, fault?.kind === 'lost', () => this.forward(req, res, r, url, fault));
      }
      this.forward(req, res, r, url, fault);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  /**
   * A write with If-None-Match: *: 412 PreconditionFailed when the key holds an object, else
   * `write`. The proxy asks the server first, with a HEAD of its own (unsigned: s3rver serves
   * a request without credentials); the look and the write are not one step as on S3, which
   * these runs do not need (no two writers of one key at once).
   */
  private createIfAbsent(req: IncomingMessage, res: ServerResponse, lost: boolean, write: () => void): void {
    const head = request({ host: '127.0.0.1', port: this.upstream, method: 'HEAD', path: new URL(req.url ?? '/', 'http://proxy').pathname }, (answer) => {
      answer.resume();
      if (answer.statusCode === 200) {
        req.resume();
        if (lost) return void req.socket.destroy();
        this.preconditionFailed++;
        return s3Error(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      }
      write();
    });
    head.on('error', () => res.destroy());
    head.end();
  }

  /** Sends `req` on to the server, with the Object Lock the proxy emulates and the fault it drew. */
  private forward(req: IncomingMessage, res: ServerResponse, r: S3Request, url: URL, fault: { kind: S3FaultKind; rule?: { hits: number } } | undefined): void {
    {
      if (this.options.objectLock && url.searchParams.has('retention')) return void this.answerRetention(req, res, r.key);
      const lock = req.headers['x-amz-object-lock-retain-until-date'];
      if (this.options.objectLock && typeof lock === 'string' && !(new Date(lock).getTime() > Date.now())) {
        req.resume();
        return s3Error(res, 400, 'InvalidArgument', 'The retain until date must be in the future!');
      }
      const up = request({ host: '127.0.0.1', port: this.upstream, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        const status = answer.statusCode ?? 502;
        const held = this.options.objectLock && !url.search ? this.retention.get(r.key) : undefined;
        const rule = this.options.objectLock;
        // A write that names no lock gets the bucket's default retention, as on S3.
        if (rule && r.write && !r.part && status < 300 && !url.searchParams.has('uploadId')) {
          this.retention.set(
            r.key,
            typeof lock === 'string' ? { mode: String(req.headers['x-amz-object-lock-mode'] ?? rule.mode), until: new Date(lock) } : { mode: rule.mode, until: new Date(Date.now() + rule.defaultRetentionDays * 86_400_000) },
          );
        }
        const headers = held && (req.method === 'GET' || req.method === 'HEAD') && status < 300 ? { ...answer.headers, 'x-amz-object-lock-mode': held.mode, 'x-amz-object-lock-retain-until-date': held.until.toISOString() } : answer.headers;
        // The write was done; its answer never reaches the client.
        if (fault?.kind === 'lost') {
          answer.resume();
          return void res.socket?.destroy();
        }
        res.writeHead(status, headers);
        // Only a body can be cut: an error answer (a 404, a 304) goes through whole.
        if (fault?.kind === 'cut' && status < 300 && Number(answer.headers['content-length'] ?? 0) >= 2) {
          this.faults['cut']!++;
          if (fault.rule) fault.rule.hits++;
          cutShort(answer, res);
        } else {
          answer.pipe(res);
        }
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
      if (r.write) {
        this.writes++;
        for (const f of this.onWrite) f();
      }
    }
  }

  /** GetObjectRetention and PutObjectRetention, as S3 answers them on a bucket with Object Lock. */
  private async answerRetention(req: IncomingMessage, res: ServerResponse, key: string): Promise<void> {
    const held = this.retention.get(key);
    if (req.method === 'GET') {
      if (!held) return s3Error(res, 404, 'NoSuchObjectLockConfiguration', 'The specified object does not have a ObjectLock configuration');
      res.writeHead(200, { 'content-type': 'application/xml' });
      return void res.end(`<?xml version="1.0" encoding="UTF-8"?><Retention xmlns="${S3_NS}"><Mode>${held.mode}</Mode><RetainUntilDate>${held.until.toISOString()}</RetainUntilDate></Retention>`);
    }
    if (req.method !== 'PUT') return s3Error(res, 405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
    const body = await bodyOf(req);
    const mode = /<Mode>([^<]+)<\/Mode>/.exec(body)?.[1];
    const until = new Date(/<RetainUntilDate>([^<]+)<\/RetainUntilDate>/.exec(body)?.[1] ?? '');
    if ((mode !== 'GOVERNANCE' && mode !== 'COMPLIANCE') || Number.isNaN(until.getTime())) return s3Error(res, 400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
    if (until.getTime() <= Date.now()) return s3Error(res, 400, 'InvalidArgument', 'The retain until date must be in the future!');
    const bypass = req.headers['x-amz-bypass-governance-retention'] === 'true';
    const shortens = held !== undefined && until.getTime() < held.until.getTime();
    if (held && held.until.getTime() > Date.now() && ((held.mode === 'COMPLIANCE' && (shortens || mode !== 'COMPLIANCE')) || (held.mode === 'GOVERNANCE' && shortens && !bypass))) {
      return s3Error(res, 403, 'AccessDenied', 'Access Denied because object protected by object lock.');
    }
    this.retention.set(key, { mode, until });
    res.writeHead(200);
    res.end();
  }

  /** Calls `f` on every write request forwarded, until the returned function is called. */
  watchWrites(f: () => void): () => void {
    this.onWrite.add(f);
    return () => this.onWrite.delete(f);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

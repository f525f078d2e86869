/**
 * A proxy on 127.0.0.1 in front of s3rver (3.7.1) that gives it the two parts of S3's copy API it
 * lacks, answered as S3 answers them. Tests only.
 *
 * - `x-amz-copy-source-if-match` on CopyObject: s3rver copies whatever the source holds now
 *   (lib/controllers/object.js putObjectCopy never reads the header). S3 copies only when the
 *   source's ETag matches and otherwise answers 412 PreconditionFailed
 *   (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html); a missing source is
 *   404 NoSuchKey.
 * - UploadPartCopy (a part PUT with `x-amz-copy-source` and `x-amz-copy-source-range`): s3rver
 *   answers 501 NotImplemented (lib/routes.js). Here the proxy reads the range from s3rver and
 *   stores it as the part with an UploadPart, then answers `CopyPartResult` with the part's ETag
 *   (https://docs.aws.amazon.com/AmazonS3/latest/API/API_UploadPartCopy.html), the same
 *   precondition applying. The bytes pass through this proxy, as they pass through S3's servers:
 *   the client sends none.
 *
 * - A truncated ListObjectsV2 page: s3rver builds its continuation token with DES, which the
 *   OpenSSL 3 of Node 20 refuses, so every listing with more keys than `max-keys` answers 500
 *   InternalError (lib/controllers/bucket.js generateContinuationToken). Here a V2 listing is
 *   asked of s3rver as a V1 listing (`start-after` or the token's key as `marker`), which pages
 *   the same keys without a token, and answered in V2's shape: `KeyCount`, `StartAfter`, and a
 *   `NextContinuationToken` when truncated (the last key, base64: opaque, as S3's is).
 *
 * Every other request goes to s3rver unchanged, its signature included (the Host is the proxy's,
 * as the client signed it).
 */
import { createServer, request, type IncomingMessage, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

function s3Error(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

const bare = (etag: string | undefined): string => (etag ?? '').replace(/^"+|"+$/g, '');

export class CopyConditionsProxy {
  /** UploadPartCopy requests answered. */
  partCopies = 0;
  /** Copies refused with 412 PreconditionFailed. */
  preconditionFailures = 0;
  private server: Server | undefined;

  constructor(private readonly upstream: number) {}

  /** A request to s3rver, unsigned (s3rver lets anonymous requests through): status, headers, body. */
  private call(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: this.upstream, method, path, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } }, async (res) => {
        const parts: Buffer[] = [];
        for await (const c of res) parts.push(c as Buffer);
        resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(parts) });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** The copy source as a path on s3rver (`/bucket/key`, still URL-encoded). */
  private static sourcePath(header: string): string {
    const path = header.split('?')[0]!;
    return path.startsWith('/') ? path : `/${path}`;
  }

  /** Checks `x-amz-copy-source-if-match`; answers and returns false when it does not hold. */
  private async precondition(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const source = CopyConditionsProxy.sourcePath(String(req.headers['x-amz-copy-source']));
    const ifMatch = req.headers['x-amz-copy-source-if-match'];
    const head = await this.call('HEAD', source);
    if (head.status === 404) {
      s3Error(res, 404, 'NoSuchKey', 'The specified key does not exist.');
      return false;
    }
    if (typeof ifMatch === 'string' && bare(ifMatch) !== bare(head.headers.etag as string | undefined)) {
      this.preconditionFailures++;
      s3Error(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      return false;
    }
    return true;
  }

  private async partCopy(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for await (const _ of req); // no body
    if (!(await this.precondition(req, res))) return;
    const source = CopyConditionsProxy.sourcePath(String(req.headers['x-amz-copy-source']));
    const range = req.headers['x-amz-copy-source-range'];
    const got = await this.call('GET', source, typeof range === 'string' ? { range } : {});
    if (got.status >= 300) return s3Error(res, got.status, 'InternalError', `reading the copy source answered ${got.status}`);
    const put = await this.call('PUT', req.url!, { 'content-type': 'application/octet-stream' }, got.body);
    if (put.status >= 300) {
      res.writeHead(put.status, put.headers);
      return void res.end(put.body);
    }
    this.partCopies++;
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?><CopyPartResult><LastModified>${new Date().toISOString()}</LastModified><ETag>${String(put.headers.etag)}</ETag></CopyPartResult>`);
  }

  /** A ListObjectsV2 page, through s3rver's V1 listing (see the module documentation). */
  private async listV2(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    for await (const _ of req); // no body
    const q = new URLSearchParams();
    const token = url.searchParams.get('continuation-token');
    const after = token !== null ? Buffer.from(token, 'base64').toString('utf8') : url.searchParams.get('start-after');
    for (const name of ['prefix', 'max-keys', 'delimiter', 'encoding-type']) {
      const v = url.searchParams.get(name);
      if (v !== null) q.set(name, v);
    }
    if (after) q.set('marker', after);
    // Unsigned: the query is no longer the one the client signed (s3rver serves anonymous requests).
    const answer = await this.call('GET', `${url.pathname}?${q.toString()}`);
    let xml = answer.body.toString('utf8');
    if (answer.status === 200) {
      const keys = [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!);
      const truncated = /<IsTruncated>true<\/IsTruncated>/.test(xml);
      const unescape = (k: string): string => k.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
      const next = truncated && keys.length > 0 ? `<NextContinuationToken>${Buffer.from(unescape(keys[keys.length - 1]!), 'utf8').toString('base64')}</NextContinuationToken>` : '';
      xml = xml.replace(/<Marker>[^<]*<\/Marker>|<Marker\/>/, `<KeyCount>${keys.length}</KeyCount>${after && token === null ? `<StartAfter>${after.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</StartAfter>` : ''}${next}`);
    }
    res.writeHead(answer.status, { 'content-type': 'application/xml' });
    res.end(xml);
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const up = request({ host: '127.0.0.1', port: this.upstream, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://proxy');
      const copying = req.method === 'PUT' && 'x-amz-copy-source' in req.headers;
      const handle = async (): Promise<void> => {
        if (copying && url.searchParams.has('uploadId')) return this.partCopy(req, res);
        if (req.method === 'GET' && url.searchParams.get('list-type') === '2' && url.pathname.split('/').filter(Boolean).length === 1) return this.listV2(req, res, url);
        if (copying && 'x-amz-copy-source-if-match' in req.headers) {
          // Hold the (empty) body until the condition is known; forward only when it holds.
          if (!(await this.precondition(req, res))) return void req.resume();
        }
        this.forward(req, res);
      };
      handle().catch((err: Error) => s3Error(res, 500, 'InternalError', err.message));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

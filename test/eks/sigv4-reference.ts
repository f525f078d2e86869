/**
 * An independent SigV4 query-signature calculator for presigned STS URLs, written from the AWS
 * "Signature Version 4" specification with node:crypto only, so token tests do not check the
 * signing library against itself.
 */
import { createHash, createHmac } from 'node:crypto';

const sha256Hex = (data: string): string => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();
const rfc3986 = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * The `X-Amz-Signature` a presigned GET `url` must carry when signed with `secretAccessKey` for
 * `region`/sts and the headers `host` and `x-k8s-aws-id: clusterName`.
 */
export function referenceSignature(url: string, secretAccessKey: string, region: string, clusterName: string): string {
  const u = new URL(url);
  const amzDate = u.searchParams.get('X-Amz-Date') ?? '';
  const day = amzDate.slice(0, 8);
  const canonicalQuery = [...u.searchParams]
    .filter(([key]) => key !== 'X-Amz-Signature')
    .map(([key, value]) => [rfc3986(key), rfc3986(value)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
  const canonicalRequest = [
    'GET',
    u.pathname,
    canonicalQuery,
    `host:${u.host}\nx-k8s-aws-id:${clusterName}\n`,
    'host;x-k8s-aws-id',
    sha256Hex(''), // a GET has an empty payload
  ].join('\n');
  const scope = `${day}/${region}/sts/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, day), region), 'sts'), 'aws4_request');
  return createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex');
}

/** The presigned URL inside an EKS token. */
export function decodeEksToken(token: string): string {
  const prefix = 'k8s-aws-v1.';
  if (!token.startsWith(prefix)) throw new Error(`not an EKS token: ${token.slice(0, 20)}...`);
  return Buffer.from(token.slice(prefix.length), 'base64url').toString('utf8');
}

/**
 * Where a Milvus keeps its objects when they are not on a PVC: the external bucket of the Milvus
 * documentation's EKS deployment. Pure, like layout.ts: it reads the objects the caller listed.
 *
 * - Milvus Operator (milvus.io/v1beta1): `spec.dependencies.storage.external: true` with `type`
 *   (`S3` or `MinIO`), `endpoint` (`host:port`) and `secretRef`; the bucket and root path are
 *   Milvus's own settings in `spec.config.minio.bucketName` / `rootPath` (the Operator's
 *   "Configure Object Storage with Milvus Operator", docs/administration/manage-dependencies/
 *   object-storage.md). When the CR sets no bucket the Operator renders the CR's name
 *   (config/assets/templates/milvus.yaml.tmpl); it never sets a root path, so Milvus's default
 *   `files` applies (configs/milvus.yaml).
 * - Helm chart: `externalS3.enabled` (with `minio.enabled: false`) renders `minio.address`,
 *   `bucketName` and `rootPath` from `externalS3` into the chart's ConfigMap
 *   (charts/milvus/templates/config.tpl); an in-cluster MinIO renders the address
 *   `<release>-minio`, so any other address is external.
 */
import { parse as parseYaml } from 'yaml';
import type { LooseObject } from './layout.js';
import { helmFullname } from './volumes.js';

/** An external bucket a Milvus keeps its segments, indexes and logs in. */
export interface ExternalBucket {
  readonly bucket: string;
  /** Milvus's `minio.rootPath`, without slashes at either end ('' for the whole bucket). */
  readonly rootPath: string;
  /** `host:port` as Milvus reaches it (`s3.us-east-1.amazonaws.com:443`), when declared. */
  readonly endpoint?: string;
  /** Whether the endpoint is AWS S3 itself (or none is declared): only then can the vault copy it server-side. */
  readonly onAws: boolean;
  /** `minio.region`, when declared. */
  readonly region?: string;
  /** The storage type declared: `S3`, `MinIO`, or another the Operator knows. */
  readonly type: string;
  /** What told us. */
  readonly declaredBy: 'milvus-cr' | 'helm-config';
}

/** Milvus's own defaults (configs/milvus.yaml), which apply when the Helm config sets nothing. */
export const MILVUS_DEFAULT_BUCKET = 'a-bucket';
export const MILVUS_DEFAULT_ROOT_PATH = 'files';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const trimSlashes = (p: string): string => p.replace(/^\/+|\/+$/g, '');

/**
 * AWS S3's own endpoints (`s3.amazonaws.com`, `s3.<region>.amazonaws.com`, `s3-<region>…`, the
 * FIPS and dual-stack forms, China's `.com.cn`), with an optional scheme and port: a Milvus that
 * names one of these is on AWS S3, whose buckets the vault copies from with CopyObject, and its
 * region is read from the host.
 */
const AWS_S3_HOST = /^s3(?:-fips)?(?:\.dualstack)?(?:[.-]([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+))?\.amazonaws\.com(?:\.cn)?$/;

/** Whether `endpoint` is AWS S3, and the region its host names. */
export function awsS3Endpoint(endpoint: string | undefined): { onAws: boolean; region?: string } {
  if (endpoint === undefined) return { onAws: true };
  const host = endpoint.replace(/^[a-z]+:\/\//i, '').replace(/[:/].*$/, '').toLowerCase();
  const match = AWS_S3_HOST.exec(host);
  if (!match) return { onAws: false };
  return { onAws: true, ...(match[1] ? { region: match[1] } : {}) };
}

/** The external bucket the CR or the Helm config declares; undefined when Milvus uses an in-cluster MinIO. */
export function externalObjectStorage(input: { readonly instance: string; readonly milvusCr?: LooseObject; readonly helmConfig?: LooseObject }): ExternalBucket | undefined {
  if (input.milvusCr) {
    const spec = obj(input.milvusCr.spec);
    const storage = obj(obj(spec.dependencies).storage);
    if (storage.external !== true) return undefined;
    const minio = obj(obj(spec.config).minio);
    const endpoint = str(storage.endpoint);
    const aws = awsS3Endpoint(endpoint);
    const region = str(minio.region) ?? aws.region;
    return {
      bucket: str(minio.bucketName) ?? input.milvusCr.metadata.name,
      rootPath: trimSlashes(typeof minio.rootPath === 'string' ? minio.rootPath : MILVUS_DEFAULT_ROOT_PATH),
      type: str(storage.type) ?? 'MinIO',
      declaredBy: 'milvus-cr',
      onAws: aws.onAws,
      ...(endpoint ? { endpoint } : {}),
      ...(region ? { region } : {}),
    };
  }
  if (!input.helmConfig) return undefined;
  const data = obj(input.helmConfig.data);
  let minio: Obj = {};
  for (const key of ['default.yaml', 'milvus.yaml', 'user.yaml']) {
    const text = str(data[key]);
    if (!text) continue;
    try {
      minio = { ...minio, ...obj(obj(parseYaml(text)).minio) };
    } catch {
      continue;
    }
  }
  const address = str(minio.address);
  if (!address || address.split('.')[0] === helmFullname(input.instance, 'minio')) return undefined;
  const port = minio.port === undefined ? undefined : String(minio.port);
  const aws = awsS3Endpoint(address);
  const region = str(minio.region) ?? aws.region;
  return {
    onAws: aws.onAws,
    bucket: str(minio.bucketName) ?? MILVUS_DEFAULT_BUCKET,
    rootPath: trimSlashes(typeof minio.rootPath === 'string' ? minio.rootPath : MILVUS_DEFAULT_ROOT_PATH),
    type: str(minio.cloudProvider) === 'aws' || /amazonaws\.com$/.test(address) ? 'S3' : 'MinIO',
    declaredBy: 'helm-config',
    endpoint: port ? `${address}:${port}` : address,
    ...(region ? { region } : {}),
  };
}

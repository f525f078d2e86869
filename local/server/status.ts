/**
 * `kind: Status` error bodies exactly as the real API server writes them, and the error the
 * server's layers throw to produce one. client-node and kubectl both parse these bodies, so
 * reasons, codes and `details` must match the real server's.
 */
import type { FieldCause, ResourceType } from './resources.js';

/** The JSON of a `meta/v1 Status`. */
export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: FieldCause[] | { reason: string; message: string; field?: string }[]; retryAfterSeconds?: number };
  code: number;
}

/** Thrown inside the server; the router turns it into its Status response. */
export class KubeApiError extends Error {
  readonly status: StatusBody;

  constructor(status: StatusBody) {
    super(status.message);
    this.name = 'KubeApiError';
    this.status = status;
  }
}

const failure = (code: number, reason: string, message: string, details?: StatusBody['details']): KubeApiError =>
  new KubeApiError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code });

const qualified = (type: ResourceType): string => (type.group === '' ? type.plural : `${type.plural}.${type.group}`);
const detailsOf = (type: ResourceType, name: string) => ({ name, ...(type.group ? { group: type.group } : {}), kind: type.plural });

export const notFound = (type: ResourceType, name: string): KubeApiError =>
  failure(404, 'NotFound', `${qualified(type)} "${name}" not found`, detailsOf(type, name));

export const alreadyExists = (type: ResourceType, name: string): KubeApiError =>
  failure(409, 'AlreadyExists', `${qualified(type)} "${name}" already exists`, detailsOf(type, name));

export const conflict = (type: ResourceType, name: string): KubeApiError =>
  failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(type)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, detailsOf(type, name));

/**
 * `apierrors.NewInvalid`: every cause in `details.causes`; the message is
 * `<Kind> "<name>" is invalid: ` and `field.ErrorList.ToAggregate()`, which drops repeated
 * messages and brackets two or more (`[a, b]`, staging/src/k8s.io/apimachinery/pkg/util/errors).
 */
export const invalid = (type: ResourceType, name: string, causes: FieldCause[]): KubeApiError => {
  const messages = [...new Set(causes.map((c) => `${c.field}: ${c.message}`))];
  return failure(
    422,
    'Invalid',
    `${type.kind}${type.group ? `.${type.group}` : ''} "${name}" is invalid: ${messages.length === 1 ? messages[0] : `[${messages.join(', ')}]`}`,
    { ...detailsOf(type, name), kind: type.kind, causes },
  );
};

export const badRequest = (message: string): KubeApiError => failure(400, 'BadRequest', message);

export const methodNotAllowed = (method: string): KubeApiError =>
  failure(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method})`);

export const unsupportedMediaType = (contentType: string, accepted = 'application/json, application/yaml'): KubeApiError =>
  failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted} (got ${contentType})`);

export const unauthorized = (): KubeApiError => failure(401, 'Unauthorized', 'Unauthorized');

export const pathNotFound = (): KubeApiError => failure(404, 'NotFound', 'the server could not find the requested resource');

export const serviceUnavailable = (message: string): KubeApiError => failure(503, 'ServiceUnavailable', message);

export const tooManyRequests = (retryAfterSeconds: number): KubeApiError =>
  failure(429, 'TooManyRequests', 'the server has received too many requests and has asked us to try again later', { retryAfterSeconds });

export const internalError = (message: string): KubeApiError =>
  failure(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ reason: 'UnexpectedServerResponse', message }] });

/** The body of a successful delete of an object that is gone at once. */
export const success = (type: ResourceType, name: string, uid: string): StatusBody => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Success',
  message: '',
  details: { ...detailsOf(type, name), uid },
  code: 200,
});

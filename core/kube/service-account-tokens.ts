/**
 * ServiceAccount legacy token Secrets (`kubernetes.io/service-account-token`): the cluster, not
 * the user, fills them in. Kubernetes' tokens controller (pkg/controller/serviceaccount/
 * tokens_controller.go, `syncSecret`) deletes one whose `kubernetes.io/service-account.uid`
 * annotation names another account than the one of that name, and fills in `token`, `ca.crt`
 * and `namespace` only where they are empty, then sets the uid. The legacy token cleaner
 * (LegacyServiceAccountTokenCleanUp, 1.29+) marks them with `kubernetes.io/legacy-token-last-used`
 * and `kubernetes.io/legacy-token-invalid-since`; the authenticator refuses a token whose Secret
 * carries the latter.
 *
 * So what the cluster issued is neither kept by a backup (the token is a working credential of
 * the source cluster, and a restore has no use for it) nor created by a restore (the Secret
 * would be deleted, or keep the source's credential for the source namespace, or be refused):
 * without it, the target cluster issues its own. Velero's SecretAction drops the uid, token and
 * CA (pkg/restore/actions/secret_action.go), and keeps the namespace.
 */

export const SERVICE_ACCOUNT_TOKEN_TYPE = 'kubernetes.io/service-account-token';

const ISSUED_DATA = ['token', 'ca.crt', 'namespace'];
const ISSUED_ANNOTATIONS = ['kubernetes.io/service-account.uid'];
const ISSUED_LABELS = ['kubernetes.io/legacy-token-last-used', 'kubernetes.io/legacy-token-invalid-since'];

/** A Kubernetes object as the capture and restore code hold it (core/backup/discover.ts RawObject). */
interface KubeObjectLike {
  kind?: string;
  metadata: { [k: string]: unknown };
  [k: string]: unknown;
}

/** Removes from `object`, in place, what the cluster issued into it, if it is a ServiceAccount token Secret. */
export function stripIssuedToken(object: KubeObjectLike): void {
  if (object.kind !== 'Secret' || object['type'] !== SERVICE_ACCOUNT_TOKEN_TYPE) return;
  const { metadata } = object;
  for (const [field, keys] of [
    ['annotations', ISSUED_ANNOTATIONS],
    ['labels', ISSUED_LABELS],
  ] as const) {
    const map = metadata[field] as Record<string, string> | undefined;
    if (!map) continue;
    for (const key of keys) delete map[key];
    if (Object.keys(map).length === 0) delete metadata[field];
  }
  const data = object['data'] as Record<string, string> | undefined;
  for (const key of ISSUED_DATA) delete data?.[key];
}

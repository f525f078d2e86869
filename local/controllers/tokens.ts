/**
 * What kube-controller-manager's tokens controller does to Secrets of type
 * `kubernetes.io/service-account-token` (pkg/controller/serviceaccount/tokens_controller.go,
 * `syncSecret`): it looks up the ServiceAccount the `kubernetes.io/service-account.name`
 * annotation names, by its uid too when the `kubernetes.io/service-account.uid` annotation is
 * set; when there is none (no such account, or one of that name with another uid) it deletes the
 * Secret; otherwise it fills in `token`, `ca.crt` and `namespace` where they are empty (never
 * replacing a token that is there) and sets both annotations to the account it found. A restore
 * depends on exactly this: a token Secret created with the source's uid annotation is deleted,
 * and one created with the source's token keeps it.
 */
import { typeOf } from '../server/resources.js';
import type { KubeObject } from '../server/store.js';
import type { Controller, ControllerContext } from './context.js';
import { ROOT_CA_PLACEHOLDER } from './namespaces.js';

const SECRET = typeOf('Secret');
const SERVICE_ACCOUNT = typeOf('ServiceAccount');

export const TOKEN_SECRET_TYPE = 'kubernetes.io/service-account-token';
export const SA_NAME_ANNOTATION = 'kubernetes.io/service-account.name';
export const SA_UID_ANNOTATION = 'kubernetes.io/service-account.uid';

const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** Deletes token Secrets of no ServiceAccount and populates the others. */
export class TokensController implements Controller {
  readonly name = 'tokens';

  constructor(private readonly ctx: ControllerContext) {}

  async reconcile(): Promise<boolean> {
    const { store } = this.ctx;
    let changed = false;
    for (const secret of store.list(SECRET, undefined, (o) => (o as { type?: string }).type === TOKEN_SECRET_TYPE)) {
      const { namespace, name, annotations = {} } = secret.metadata;
      const accountName = annotations[SA_NAME_ANNOTATION];
      // The real API server refuses a token Secret without the name annotation (422); the
      // controller has nothing to go by.
      if (!accountName) continue;
      const account = store.get(SERVICE_ACCOUNT, namespace, accountName);
      // An empty uid annotation is no uid (getServiceAccount checks the uid only when it is given).
      const uid = annotations[SA_UID_ANNOTATION];
      if (!account || (uid && uid !== account.metadata.uid)) {
        store.delete(SECRET, namespace, name);
        changed = true;
        continue;
      }
      const data = { ...((secret as { data?: Record<string, string> }).data ?? {}) };
      const needs = { token: !data['token'], ca: data['ca.crt'] !== base64(ROOT_CA_PLACEHOLDER), namespace: !data['namespace'] };
      if (!needs.token && !needs.ca && !needs.namespace) continue;
      // The real controller's update of an immutable Secret is refused (field is immutable when
      // `immutable` is set); it logs that and retries it, and goes on with the other Secrets.
      if ((secret as { immutable?: boolean }).immutable === true) continue;
      if (needs.ca) data['ca.crt'] = base64(ROOT_CA_PLACEHOLDER);
      if (needs.namespace) data['namespace'] = base64(namespace!);
      // A legacy token is a JWT the cluster signs, naming the namespace, account, its uid and the
      // Secret; the local cluster issues an opaque stand-in with the same claims.
      if (needs.token) data['token'] = base64(`local-cluster-legacy-token:${namespace}/${accountName}/${account.metadata.uid}/${name}`);
      const updated: KubeObject = {
        ...secret,
        metadata: { ...secret.metadata, annotations: { ...annotations, [SA_NAME_ANNOTATION]: accountName, [SA_UID_ANNOTATION]: account.metadata.uid! } },
        data,
      } as KubeObject;
      store.replace(SECRET, updated);
      changed = true;
    }
    return changed;
  }
}

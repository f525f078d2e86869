/**
 * What a real cluster does for every namespace: `status.phase: Active`, the `default`
 * ServiceAccount and the `kube-root-ca.crt` ConfigMap (created by the service account and
 * root-CA publisher controllers).
 */
import { typeOf } from '../server/resources.js';
import type { Controller, ControllerContext } from './context.js';

const NAMESPACE = typeOf('Namespace');
const SERVICE_ACCOUNT = typeOf('ServiceAccount');
const CONFIG_MAP = typeOf('ConfigMap');

/** The PEM the local cluster publishes as its root CA (it serves plain HTTP; the value is a placeholder). */
export const ROOT_CA_PLACEHOLDER = '-----BEGIN CERTIFICATE-----\n(the local cluster serves plain HTTP on 127.0.0.1 and has no CA)\n-----END CERTIFICATE-----\n';

/** Keeps namespaces Active and populated with their default objects. */
export class NamespaceController implements Controller {
  readonly name = 'namespaces';

  constructor(private readonly ctx: ControllerContext) {}

  async reconcile(): Promise<boolean> {
    const { store } = this.ctx;
    let changed = false;
    for (const ns of store.list(NAMESPACE)) {
      const name = ns.metadata.name;
      if (ns.status?.phase !== 'Active') {
        store.replace(NAMESPACE, { ...ns, status: { phase: 'Active' } }, { subresource: 'status' });
        changed = true;
      }
      if (!ns.metadata.labels?.['kubernetes.io/metadata.name']) {
        const fresh = store.require(NAMESPACE, undefined, name);
        store.replace(NAMESPACE, { ...fresh, metadata: { ...fresh.metadata, labels: { ...fresh.metadata.labels, 'kubernetes.io/metadata.name': name } } });
        changed = true;
      }
      if (!store.get(SERVICE_ACCOUNT, name, 'default')) {
        store.create(SERVICE_ACCOUNT, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: name } });
        changed = true;
      }
      if (!store.get(CONFIG_MAP, name, 'kube-root-ca.crt')) {
        store.create(CONFIG_MAP, {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'kube-root-ca.crt', namespace: name, annotations: { 'kubernetes.io/description': 'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.' } },
          data: { 'ca.crt': ROOT_CA_PLACEHOLDER },
        });
        changed = true;
      }
    }
    return changed;
  }
}

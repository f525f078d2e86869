import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import { PURPOSE_LABEL } from '../../core/backup/names.js';
import { RELAY_PURPOSE, relayPod } from '../../core/milvus/relay.js';
import { RESTORE_LABEL } from '../../core/restore/names.js';
import { KUBERNETES_GROUP, RETENTION_KUBERNETES_GROUP } from '../../infra/constructs/cluster-access.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface Doc {
  kind: string;
  metadata: { name: string };
  rules?: Rule[];
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string }[];
  spec?: {
    policyName?: string;
    validationActions?: string[];
    failurePolicy?: string;
    matchConstraints?: { resourceRules: { apiGroups: string[]; operations: string[]; resources: string[] }[] };
    matchConditions?: { expression: string }[];
    validations?: { expression: string }[];
  };
}

const text = readFileSync('deploy/rbac.yaml', 'utf8');
const docs = parseAllDocuments(text).map((d) => d.toJS() as Doc);
const roles = docs.filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role');
const bindings = docs.filter((d) => d.kind === 'ClusterRoleBinding' || d.kind === 'RoleBinding');
const rules = roles.flatMap((r) => r.rules ?? []);

function allowed(apiGroup: string, resource: string): string[] {
  return rules.filter((r) => r.apiGroups.includes(apiGroup) && r.resources.includes(resource)).flatMap((r) => r.verbs);
}

describe('deploy/rbac.yaml', () => {
  it('uses no wildcard verb, resource or API group', () => {
    for (const rule of rules) {
      expect([...rule.verbs, ...rule.resources, ...rule.apiGroups]).not.toContain('*');
    }
  });

  it('never grants update, patch, escalate, bind or impersonate: the workflows never change what others made', () => {
    for (const verb of ['update', 'patch', 'escalate', 'bind', 'impersonate', 'deletecollection']) expect(rules.flatMap((r) => r.verbs)).not.toContain(verb);
  });

  it('binds every role to the group the EKS access entries map its role to: the workflow role, or the retention step that deletes snapshots', () => {
    // milvus-guard-retention is ApplyPlan's (infra/constructs/retention-access.ts); every other role is the workflow role's.
    const groupOf = (role: string) => (role === RETENTION_KUBERNETES_GROUP ? RETENTION_KUBERNETES_GROUP : KUBERNETES_GROUP);

    expect(bindings.map((b) => b.roleRef!.name).sort()).toEqual(roles.map((r) => r.metadata.name).sort());
    for (const binding of bindings) expect(binding.subjects).toEqual([{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: groupOf(binding.roleRef!.name) }]);
  });

  it('gives the retention group only list and delete on VolumeSnapshots', () => {
    const retention = roles.find((r) => r.metadata.name === RETENTION_KUBERNETES_GROUP);
    expect(retention?.rules).toEqual([{ apiGroups: ['snapshot.storage.k8s.io'], resources: ['volumesnapshots'], verbs: ['list', 'delete'] }]);
    expect(bindings.find((b) => b.roleRef!.name === RETENTION_KUBERNETES_GROUP)?.subjects).toEqual([{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: RETENTION_KUBERNETES_GROUP }]);
  });

  it('comments every rule with the workflow step that needs it', () => {
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (/^\s*- apiGroups:/.test(line)) expect(lines[i - 1]).toMatch(/^\s*#/);
    });
  });

  it.each([
    ['', 'services/proxy', ['get', 'create']],
    ['', 'pods/exec', ['create']],
    ['', 'persistentvolumeclaims', ['get', 'list', 'create', 'delete']],
    ['batch', 'jobs', ['create', 'get', 'list', 'delete']],
    ['snapshot.storage.k8s.io', 'volumesnapshots', ['create', 'get', 'list', 'delete']],
    ['snapshot.storage.k8s.io', 'volumesnapshotcontents', ['get', 'list', 'delete']],
    ['milvus.io', 'milvuses', ['get', 'list']],
    ['', 'pods', ['get', 'list']],
    ['', 'pods/log', ['get']],
  ])('allows what backups do on %s %s', (group, resource, verbs) => {
    expect(allowed(group, resource)).toEqual(expect.arrayContaining(verbs));
  });

  it.each([
    ['', 'namespaces', ['create', 'get', 'list', 'delete']],
    ...['configmaps', 'secrets', 'services', 'serviceaccounts', 'persistentvolumeclaims'].map((r) => ['', r, ['create', 'get', 'list']] as const),
    ['apps', 'deployments', ['create', 'get', 'list']],
    ['apps', 'statefulsets', ['create', 'get', 'list']],
    ['milvus.io', 'milvuses', ['create', 'get', 'list']],
    ['batch', 'jobs', ['create', 'get', 'list', 'delete']],
    ['', 'pods', ['get', 'list']],
    ['', 'pods/log', ['get']],
    ['snapshot.storage.k8s.io', 'volumesnapshots', ['create', 'get', 'delete']],
    ['snapshot.storage.k8s.io', 'volumesnapshotcontents', ['create', 'get', 'delete']],
    ['', 'services/proxy', ['get', 'create']],
    ['rbac.authorization.k8s.io', 'roles', ['create', 'get', 'list']],
    ['rbac.authorization.k8s.io', 'rolebindings', ['create', 'get', 'list']],
    ['networking.k8s.io', 'networkpolicies', ['create', 'get', 'list']],
    ['networking.k8s.io', 'ingresses', ['create', 'get', 'list']],
    ['policy', 'poddisruptionbudgets', ['create', 'get', 'list']],
    ['autoscaling', 'horizontalpodautoscalers', ['create', 'get', 'list']],
  ])('allows what restores and drills do on %s %s', (group, resource, verbs) => {
    expect(allowed(group, resource)).toEqual(expect.arrayContaining([...verbs]));
  });

  it('grants the cluster-scoped resources (namespaces, snapshot contents) in the cluster role only', () => {
    const clusterRole = roles.find((r) => r.metadata.name === 'milvus-guard-cluster')!;
    const workloads = roles.find((r) => r.metadata.name === 'milvus-guard-workloads')!;

    expect(clusterRole.rules!.flatMap((r) => r.resources)).toEqual(expect.arrayContaining(['namespaces', 'volumesnapshotcontents']));
    expect(workloads.rules!.flatMap((r) => r.resources)).not.toContain('namespaces');
    expect(workloads.rules!.flatMap((r) => r.resources)).not.toContain('volumesnapshotcontents');
  });

  it('may read and (for restores) create secrets, never change or delete them', () => {
    expect(allowed('', 'secrets').sort()).toEqual(['create', 'get', 'list']);
  });

  it('allows reading (capture) and creating (restore) every kind a backup captures, and no more on them', async () => {
    const { CAPTURED_KINDS } = await import('../../core/backup/discover.js');
    for (const kind of CAPTURED_KINDS) {
      expect(allowed(kind.group, kind.plural)).toEqual(expect.arrayContaining(['get', 'list', 'create']));
      if (kind.kind !== 'PersistentVolumeClaim') expect(allowed(kind.group, kind.plural)).not.toContain('delete');
    }
  });
});

describe('the namespace-delete guard (deploy/namespace-delete-guard.yaml)', () => {
  const guard = parseAllDocuments(readFileSync('deploy/namespace-delete-guard.yaml', 'utf8')).map((d) => d.toJS() as Doc);
  const policy = guard.find((d) => d.kind === 'ValidatingAdmissionPolicy')!;
  const binding = guard.find((d) => d.kind === 'ValidatingAdmissionPolicyBinding')!;

  it('applies to namespace deletions only', () => {
    expect(policy.spec!.matchConstraints!.resourceRules).toEqual([{ apiGroups: [''], apiVersions: ['v1'], operations: ['DELETE'], resources: ['namespaces'] }]);
  });

  it("applies to the workflow role's group only", () => {
    expect(policy.spec!.matchConditions!.map((c) => c.expression)).toEqual([`'${KUBERNETES_GROUP}' in request.userInfo.groups`]);
  });

  it('lets through only namespaces that carry the label restores put on the namespaces they create', () => {
    expect(policy.spec!.validations!.map((v) => v.expression)).toEqual([`has(oldObject.metadata.labels) && '${RESTORE_LABEL}' in oldObject.metadata.labels`]);
  });

  it('is bound to deny, and fails closed', () => {
    expect(binding.spec).toEqual({ policyName: policy.metadata.name, validationActions: ['Deny'] });
    expect(policy.spec!.failurePolicy).toBe('Fail');
  });
});

describe('the relay-pod guard (deploy/relay-pod-guard.yaml)', () => {
  const guard = parseAllDocuments(readFileSync('deploy/relay-pod-guard.yaml', 'utf8')).map((d) => d.toJS() as Doc);
  const policy = guard.find((d) => d.kind === 'ValidatingAdmissionPolicy')!;
  const binding = guard.find((d) => d.kind === 'ValidatingAdmissionPolicyBinding')!;
  const expressions = policy.spec!.validations!.map((v) => v.expression).join('\n');

  it("applies to pod creates and deletes of the workflow role's group only", () => {
    expect(policy.spec!.matchConstraints!.resourceRules).toEqual([{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'DELETE'], resources: ['pods'] }]);
    expect(policy.spec!.matchConditions!.map((c) => c.expression)).toEqual([`'${KUBERNETES_GROUP}' in request.userInfo.groups`]);
  });

  it('lets through only the pods the relay makes: its purpose label, no token, no volumes, no host network', () => {
    const pod = relayPod({
      endpoint: { namespace: 'vector-db', service: 'm', restPort: 19530, managementPort: 9091 },
      authSecret: { name: 's', usernameKey: 'username', passwordKey: 'password' },
      secretField: 'f',
      image: 'i',
      run: { label: 'milvus-guard.io/backup', id: 'b' },
      deadlineSeconds: 60,
      callTimeoutSeconds: 30,
    });
    // What the policy requires is what relay.ts makes.
    expect(pod.metadata!.labels![PURPOSE_LABEL]).toBe(RELAY_PURPOSE);
    expect(expressions).toContain(`object.metadata.labels['${PURPOSE_LABEL}'] == '${RELAY_PURPOSE}'`);
    expect(expressions).toContain(`oldObject.metadata.labels['${PURPOSE_LABEL}'] == '${RELAY_PURPOSE}'`);
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
    expect(expressions).toContain('object.spec.automountServiceAccountToken == false');
    expect(pod.spec!.volumes).toBeUndefined();
    expect(pod.spec!.hostNetwork).toBeUndefined();
  });

  it('is bound to deny, and fails closed', () => {
    expect(binding.spec).toEqual({ policyName: policy.metadata.name, validationActions: ['Deny'] });
    expect(policy.spec!.failurePolicy).toBe('Fail');
  });
});

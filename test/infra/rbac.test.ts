import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import { KUBERNETES_GROUP } from '../../infra/constructs/cluster-access.js';

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

  it('never grants update, escalate, bind or impersonate', () => {
    for (const verb of ['update', 'escalate', 'bind', 'impersonate', 'deletecollection']) expect(rules.flatMap((r) => r.verbs)).not.toContain(verb);
  });

  it('binds every role to the group the EKS access entry maps the workflow role to', () => {
    expect(bindings.map((b) => b.roleRef!.name).sort()).toEqual(roles.map((r) => r.metadata.name).sort());
    for (const binding of bindings) expect(binding.subjects).toEqual([{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: KUBERNETES_GROUP }]);
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
    ['milvus.io', 'milvuses', ['get', 'list', 'create', 'patch']],
    ['', 'namespaces', ['get', 'list', 'create']],
  ])('allows what the workflows do on %s %s', (group, resource, verbs) => {
    expect(allowed(group, resource)).toEqual(expect.arrayContaining(verbs));
  });

  it('may read and (for restores) create secrets, never change or delete them', () => {
    expect(allowed('', 'secrets').sort()).toEqual(['create', 'get', 'list']);
  });
});

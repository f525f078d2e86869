import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parseDocument } from 'yaml';
import { parseConfig } from '../../core/config/parse.js';
import { resolvePlan } from '../../core/config/resolve.js';
import { formatImportWarning, importTrilio, milvusEndpointProblem, TrilioImportError } from '../../core/trilio/import.js';
import type { ImportWarning } from '../../core/trilio/tracked.js';
import { UserError } from '../../core/errors.js';

const EXAMPLE = 'examples/trilio/milvus-production.yaml';
const exampleText = readFileSync(EXAMPLE, 'utf8');

const importText = (text: string, file = 'input.yaml') => importTrilio([{ file, text }]);
const lines = (warnings: readonly ImportWarning[]) => warnings.map(formatImportWarning);

/** The example with one document (by kind) changed through the YAML document API. */
function exampleWith(kind: string, change: (doc: ReturnType<typeof parseDocument>) => void): string {
  return exampleText
    .split(/^---$/m)
    .map((part) => {
      const doc = parseDocument(part);
      if (doc.get('kind') !== kind) return part;
      change(doc);
      return `\n${doc.toString()}`;
    })
    .join('---');
}

describe('importTrilio on the example', () => {
  const result = importTrilio([{ file: EXAMPLE, text: exampleText }]);
  const config = parseConfig(result.yaml, 'imported.yaml');

  it('produces a config that parseConfig accepts', () => {
    expect(result.problems).toEqual([]);
    expect(config.plans).toHaveLength(1);
  });

  it('keeps the plan, its namespace, its selector and its vault', () => {
    const plan = resolvePlan(config, 'milvus-production-backup');
    expect(plan.plan.namespace).toBe('vector-db');
    expect(plan.plan.selector).toEqual({ matchLabels: { 'app.kubernetes.io/instance': 'production-milvus' } });
    expect(plan.vault).toMatchObject({ name: 'milvus-s3-target', region: 'us-east-1', thresholdCapacity: '1000Gi' });
    expect(plan.cluster.region).toBe('us-east-1');
  });

  it('carries the schedule policy over as a named policy', () => {
    expect(config.plans[0]!.schedule).toBe('daily-0200');
    expect(resolvePlan(config, 'milvus-production-backup').schedule).toEqual({ cron: ['0 2 * * *'], timeZone: 'UTC' });
  });

  it('carries the grandfather-father-son retention over unchanged', () => {
    expect(resolvePlan(config, 'milvus-production-backup').retention).toEqual({
      latest: 7,
      weekly: 4,
      dayOfWeek: 'Sunday',
      monthly: 12,
      dateOfMonth: 1,
      yearly: 2,
      monthOfYear: 'January',
    });
  });

  it('carries the hook and where it runs over', () => {
    const { hooks } = resolvePlan(config, 'milvus-production-backup');
    expect(hooks.mode).toBe('Sequential');
    expect(hooks.items).toEqual([
      {
        hook: { name: 'milvus-flush-hook', pre: { command: ['/bin/sh', '-c', 'curl -X POST localhost:9091/api/v1/flush'], timeoutSeconds: 60, maxRetryCount: 3, ignoreFailure: false } },
        podSelector: { matchLabels: { 'app.kubernetes.io/instance': 'production-milvus', 'app.kubernetes.io/component': 'datanode' } },
        containerRegex: 'datanode',
      },
    ]);
  });

  it('warns that the flush hook calls a Milvus endpoint that does not exist and suggests dropping it', () => {
    const warning = lines(result.warnings).find((w) => w.includes('Hook/milvus-flush-hook spec.pre.execAction.command'));
    expect(warning).toContain('localhost:9091/api/v1/flush, an endpoint Milvus does not have');
    expect(warning).toContain('/v2/vectordb/collections/flush');
    expect(warning).toContain('GC pause');
    expect(warning).toContain('drop this hook');
  });

  it('reports every source field it does not carry over, with the reason', () => {
    const all = lines(result.warnings);
    const at = (object: string, path: string) => all.find((w) => w.startsWith(`warning: ${EXAMPLE}: ${object} ${path}: not carried over: `));
    expect(at('Target/milvus-s3-target', 'spec.objectStoreCredentials.bucketName')).toContain('"acme-milvus-backups" are not migrated');
    expect(at('Target/milvus-s3-target', 'spec.objectStoreCredentials.url')).toBeDefined();
    expect(at('Target/milvus-s3-target', 'spec.objectStoreCredentials.credentialSecret')).toContain('IAM roles');
    expect(at('BackupPlan/milvus-production-backup', 'spec.hookConfig.hooks[0].podSelector.regex')).toContain('"production-milvus-datanode-.*"');
    expect(at('BackupPlan/milvus-production-backup', 'spec.hookConfig.podReadyWaitSeconds')).toBeDefined();
  });

  it('marks the values Trilio does not know as placeholders, in the YAML and on stderr', () => {
    expect(config.clusters[0]!.eksClusterName).toBe('CHANGE-ME');
    expect(result.yaml).toMatch(/eksClusterName: CHANGE-ME # CHANGE-ME: /);
    expect(result.yaml).toMatch(/service: production-milvus-milvus # REVIEW: /);
    expect(lines(result.warnings)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^warning: clusters\[0\]\.eksClusterName: placeholder "CHANGE-ME": .*set the EKS cluster name/),
        expect.stringMatching(/^warning: plans\[0\]\.milvus\.service: Milvus service "production-milvus-milvus" assumed/),
        expect.stringMatching(/^warning: schedulePolicies\[0\]\.timeZone: time zone UTC assumed/),
      ]),
    );
  });
});

describe('importTrilio leaves nothing out silently', () => {
  // Each row: the kind to change, where to add a field Trilio might have, the path reported.
  const cases: [string, (string | number)[], string][] = [
    ['BackupPlan', ['spec', 'backupPlanFlags', 'skipImageBackup'], 'BackupPlan/milvus-production-backup spec.backupPlanFlags'],
    ['BackupPlan', ['spec', 'hookConfig', 'hooks', 0, 'timeout'], 'BackupPlan/milvus-production-backup spec.hookConfig.hooks[0].timeout'],
    ['BackupPlan', ['spec', 'backupConfig', 'maxIncrBackupsPerFullBackup'], 'BackupPlan/milvus-production-backup spec.backupConfig.maxIncrBackupsPerFullBackup'],
    ['Hook', ['spec', 'pre', 'execAction', 'env'], 'Hook/milvus-flush-hook spec.pre.execAction.env'],
    ['Policy', ['spec', 'retentionConfig', 'daily'], 'Policy/milvus-retention spec.retentionConfig.daily'],
    ['Target', ['spec', 'objectStoreCredentials', 'storageClass'], 'Target/milvus-s3-target spec.objectStoreCredentials.storageClass'],
    ['Target', ['metadata', 'labels', 'team'], 'Target/milvus-s3-target metadata.labels'],
  ];

  it.each(cases)('reports a %s field it does not know (%j)', (kind, path, reported) => {
    // Prepare
    const text = exampleWith(kind, (doc) => {
      if (kind !== 'Policy' || doc.getIn(['spec', 'type']) === 'Retention') doc.setIn(path, 'x');
    });

    // Act
    const result = importText(text);

    // Assess
    expect(lines(result.warnings)).toContain(`warning: input.yaml: ${reported}: not carried over: milvus-guard has no equivalent of this field${path.at(-1) === 'skipImageBackup' || path.at(-1) === 'team' ? '' : ' (value "x")'}`);
  });

  it('reports objects of kinds it does not import instead of dropping them', () => {
    // Prepare
    const text = `${exampleText}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: milvus-s3-credentials\nstringData:\n  accessKey: AKIDEXAMPLE\n---\napiVersion: triliovault.trilio.io/v1\nkind: Restore\nmetadata:\n  name: last-night\n`;

    // Act
    const all = lines(importText(text).warnings);

    // Assess
    expect(all).toContain('warning: input.yaml: Secret/milvus-s3-credentials: not carried over: Secrets are not imported; milvus-guard reaches S3 with IAM roles and keeps no access keys');
    expect(all).toContain(
      'warning: input.yaml: Restore/last-night: not carried over: Restore (triliovault.trilio.io/v1) is not a Trilio object milvus-guard imports (Target, Policy, Hook, BackupPlan of triliovault.trilio.io/v1)',
    );
    expect(all.join('\n')).not.toContain('AKIDEXAMPLE');
  });

  it('does not report server-set metadata and status', () => {
    // Prepare
    const text = exampleWith('BackupPlan', (doc) => {
      doc.setIn(['metadata', 'uid'], '5b18286c-e864-4bea-9b32-f0dc444b78a1');
      doc.setIn(['metadata', 'resourceVersion'], '98200968');
      doc.setIn(['status', 'status'], 'Available');
    });

    // Act
    const all = lines(importText(text).warnings);

    // Assess
    expect(all.filter((w) => w.includes('metadata.uid') || w.includes('resourceVersion') || w.includes('status'))).toEqual([]);
  });
});

describe('importTrilio mappings', () => {
  it('merges the older inline full and incremental crons into one schedule and says why', () => {
    // Prepare
    const text = exampleWith('BackupPlan', (doc) => {
      doc.setIn(['spec', 'backupConfig', 'schedulePolicy'], doc.createNode({ fullBackupCron: { schedule: '0 3 * * 0' }, incrementalCron: { schedule: '0 * * * *' } }));
    });

    // Act
    const result = importText(text);

    // Assess
    expect(result.problems).toEqual([]);
    expect(result.config.plans[0]!.schedule).toEqual({ cron: ['0 3 * * 0', '0 * * * *'], timeZone: 'UTC' });
    expect(lines(result.warnings)).toContain(
      'warning: input.yaml: BackupPlan/milvus-production-backup spec.backupConfig.schedulePolicy: full and incremental schedules merged into one inline schedule: every milvus-guard backup is incremental-forever (only changed chunks are uploaded), so there is no separate full backup',
    );
  });

  it('selects a Helm release by its app.kubernetes.io/instance label', () => {
    // Prepare
    const text = exampleWith('BackupPlan', (doc) => {
      doc.setIn(['spec', 'backupPlanComponents'], doc.createNode({ helmReleases: ['my-milvus'] }));
    });

    // Act
    const plan = importText(text).config.plans[0]!;

    // Assess
    expect(plan.selector).toEqual({ matchLabels: { 'app.kubernetes.io/instance': 'my-milvus' } });
    expect(plan.milvus).toEqual({ instance: 'my-milvus', service: 'my-milvus-milvus' });
  });

  it('renames objects whose Kubernetes names are not valid milvus-guard names', () => {
    // Prepare
    const text = exampleText.replaceAll('daily-0200', 'Daily.0200');

    // Act
    const result = importText(text);

    // Assess
    expect(result.config.schedulePolicies![0]!.name).toBe('daily-0200');
    expect(result.config.plans[0]!.schedule).toBe('daily-0200');
    expect(lines(result.warnings)).toContain(
      'warning: input.yaml: Policy/Daily.0200 metadata.name: renamed to "daily-0200": milvus-guard names are DNS labels (lowercase letters, digits and "-", at most 63) and unique per section',
    );
  });

  it('turns an NFS target into a reported drop and gives the plan a placeholder vault', () => {
    // Prepare
    const text = exampleWith('Target', (doc) => {
      doc.setIn(['spec'], doc.createNode({ type: 'NFS', nfsCredentials: { nfsExport: 'nfs.example.com:/backups' } }));
    });

    // Act
    const result = importText(text);

    // Assess
    expect(result.problems).toEqual([]);
    expect(result.config.vaults).toEqual([expect.objectContaining({ name: 'vault', region: 'us-east-1' })]);
    expect(lines(result.warnings)).toEqual(
      expect.arrayContaining([
        'warning: input.yaml: Target/milvus-s3-target spec: not carried over: a NFS target cannot become a vault; vaults are Amazon S3 buckets with Object Lock (Trilio type ObjectStore)',
        expect.stringMatching(/^warning: vaults\[0\]\.region: placeholder vault in us-east-1/),
      ]),
    );
  });

  it('uses a placeholder retention when the plan names none', () => {
    // Prepare
    const text = exampleWith('BackupPlan', (doc) => void doc.deleteIn(['spec', 'backupConfig', 'retentionPolicy']));

    // Act
    const result = importText(text);

    // Assess
    expect(result.config.plans[0]!.retention).toEqual({ latest: 30 });
    expect(result.yaml).toMatch(/latest: 30 # CHANGE-ME: /);
  });

  it('reads the objects of a kind: List', () => {
    // Prepare
    const items = exampleText.split(/^---$/m).map((part) => parseDocument(part).toJS());
    const list = parseDocument('').createNode({ apiVersion: 'v1', kind: 'List', items }).toString();

    // Act
    const result = importText(list);

    // Assess
    expect(result.problems).toEqual([]);
    expect(result.config.plans[0]!.name).toBe('milvus-production-backup');
  });

  it('reports the generated config problems it cannot fix itself', () => {
    // Prepare: a weekday Trilio would refuse too.
    const text = exampleText.replace('dayOfWeek: Sunday', 'dayOfWeek: Sundays');

    // Act
    const result = importText(text);

    // Assess
    expect(result.problems).toEqual([expect.stringMatching(/^retentionPolicies\[0\]\.dayOfWeek \(line \d+\): "Sundays" is not a weekday/)]);
  });

  it('refuses input without a BackupPlan', () => {
    const text = exampleText.split(/^---$/m)[0]!;
    expect(() => importText(text)).toThrow(UserError);
    expect(() => importText(text)).toThrow('no Trilio BackupPlan (triliovault.trilio.io/v1) found in input.yaml');
  });

  it('reports invalid YAML with the file and line', () => {
    // Act
    const attempt = () => importText('kind: Hook\nspec:\n  pre: [a\n', 'hooks.yaml');

    // Assess
    expect(attempt).toThrow(TrilioImportError);
    expect(attempt).toThrow(/hooks\.yaml \(line \d+, column \d+\): /);
  });
});

describe('milvusEndpointProblem', () => {
  it.each([
    ['the flush from the blog post', ['sh', '-c', 'curl -X POST localhost:9091/api/v1/flush']],
    ['a made-up path on the REST port', ['curl', 'http://milvus:19530/api/v1/flush']],
    ['a made-up management path', 'wget -qO- http://127.0.0.1:9091/flush'],
  ])('flags %s', (_what, command) => {
    expect(milvusEndpointProblem(command)).toContain('an endpoint Milvus does not have');
  });

  it.each([
    ['the health check', 'curl -sf http://localhost:9091/healthz'],
    ['the health API', 'curl -sf http://localhost:9091/api/v1/health'],
    ['the GC pause', 'curl "localhost:9091/management/datacoord/garbage_collection/pause?pause_seconds=60"'],
    ['a REST v2 flush', ['curl', '-X', 'POST', 'http://localhost:19530/v2/vectordb/collections/flush']],
    ['a command that calls no Milvus endpoint', ['sh', '-c', 'sync']],
  ])('accepts %s', (_what, command) => {
    expect(milvusEndpointProblem(command)).toBeUndefined();
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parseDocument } from 'yaml';
import { ConfigError, type ConfigIssue } from '../../core/config/issues.js';
import { loadConfigFile, parseConfig } from '../../core/config/parse.js';
import { resolveDrill, resolvePlan, UnknownNameError } from '../../core/config/resolve.js';
import { UserError } from '../../core/errors.js';

const EXAMPLE = 'examples/production.yaml';
const exampleText = readFileSync(EXAMPLE, 'utf8');

type Mutation = (doc: ReturnType<typeof parseDocument>) => void;

/** The production example with `mutate` applied to its YAML document. */
function variant(...mutations: Mutation[]): string {
  const doc = parseDocument(exampleText);
  for (const mutate of mutations) mutate(doc);
  return doc.toString();
}

const set = (path: (string | number)[], value: unknown): Mutation => (doc) => doc.setIn(path, doc.createNode(value));
const remove = (path: (string | number)[]): Mutation => (doc) => void doc.deleteIn(path);

/** The issues `parseConfig` reports for `text`; fails the test when it accepts the text. */
function issuesOf(text: string): readonly ConfigIssue[] {
  try {
    parseConfig(text, 'variant.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected parseConfig to reject the variant, but it accepted it');
}

describe('parseConfig', () => {
  it('accepts the production example and applies defaults', () => {
    // Act
    const config = parseConfig(exampleText, EXAMPLE);

    // Assess
    expect(config.plans.map((p) => p.name)).toEqual(['milvus-production-backup']);
    expect(config.vaults[0]!.replicaRegions).toEqual(['us-west-2']);
    expect(config.hooks[0]!.pre!.timeoutSeconds).toBe(30);
    expect(config.drills[0]!.readyTimeout).toBe('30m');
  });

  // Each row: what is wrong, how to break the example, the exact path reported, a fragment of the message.
  const cases: [string, Mutation[], string, string][] = [
    ['a weekday that does not exist', [set(['plans', 0, 'retention', 'dayOfWeek'], 'Funday')], 'plans[0].retention.dayOfWeek', '"Funday" is not a weekday; expected one of Sunday, Monday'],
    ['a month that does not exist', [set(['plans', 0, 'retention', 'monthOfYear'], 'Janury')], 'plans[0].retention.monthOfYear', '"Janury" is not a month; expected one of January'],
    ['an hour out of range in cron', [set(['schedulePolicies', 0, 'cron', 0], '0 25 * * *')], 'schedulePolicies[0].cron[0]', '"0 25 * * *" is not valid cron'],
    ['a cron with four fields', [set(['schedulePolicies', 0, 'cron', 0], '0 2 * *')], 'schedulePolicies[0].cron[0]', 'has 4 fields; expected five-field cron'],
    ['an unknown time zone', [set(['schedulePolicies', 0, 'timeZone'], 'Mars/Olympus')], 'schedulePolicies[0].timeZone', '"Mars/Olympus" is not an IANA time zone'],
    ['a region that does not exist', [set(['clusters', 0, 'region'], 'us-east-3')], 'clusters[0].region', '"us-east-3" is not an AWS Region'],
    ['a replica region that does not exist', [set(['vaults', 0, 'replicaRegions', 0], 'eu-middle-1')], 'vaults[0].replicaRegions[0]', '"eu-middle-1" is not an AWS Region'],
    ['a negative count', [set(['plans', 0, 'retention', 'latest'], -1)], 'plans[0].retention.latest', 'must not be negative (backups); got -1'],
    ['a string where a number is expected', [set(['plans', 0, 'retention', 'weekly'], 'four')], 'plans[0].retention.weekly', 'must be a whole number (weeks); got the string "four"'],
    ['a fractional count', [set(['plans', 0, 'retention', 'monthly'], 1.5)], 'plans[0].retention.monthly', 'must be a whole number (months); got the number 1.5'],
    ['a size in words', [set(['vaults', 0, 'thresholdCapacity'], '1000 gigs')], 'vaults[0].thresholdCapacity', '"1000 gigs" is not a size; expected a Kubernetes quantity such as 1000Gi'],
    ['a size given as a bare number', [set(['vaults', 0, 'thresholdCapacity'], 1000)], 'vaults[0].thresholdCapacity', 'must be a size; expected a Kubernetes quantity'],
    ['a bad email address', [set(['notifications', 'subscriptions', 0, 'endpoint'], 'oncall-at-example')], 'notifications.subscriptions[0].endpoint', 'must be an email address; got "oncall-at-example"'],
    ['a plain-http webhook', [set(['notifications', 'subscriptions', 0], { protocol: 'https', endpoint: 'http://hooks.example.com/x' })], 'notifications.subscriptions[0].endpoint', 'must be an https:// URL'],
    ['an unknown notification protocol', [set(['notifications', 'subscriptions', 0, 'protocol'], 'sms')], 'notifications.subscriptions[0].protocol', 'must be email or https; got "sms"'],
    ['a port given as text', [set(['plans', 0, 'milvus', 'restPort'], 'http')], 'plans[0].milvus.restPort', 'must be a port from 1 to 65535; got the string "http"'],
    ['a port out of range', [set(['plans', 0, 'milvus', 'managementPort'], 70000)], 'plans[0].milvus.managementPort', 'must be a port from 1 to 65535; got 70000'],
    ['a zero timeout', [set(['hooks', 0, 'pre', 'timeoutSeconds'], 0)], 'hooks[0].pre.timeoutSeconds', 'must be at least 1 (seconds); got 0'],
    ['a duration in words', [set(['plans', 0, 'rpo'], '26 hours')], 'plans[0].rpo', 'must be a duration such as 30s, 15m, 24h or 7d; got "26 hours"'],
    ['a name with capitals', [set(['plans', 0, 'name'], 'Prod_Backup')], 'plans[0].name', 'must be lowercase letters, digits and "-"'],
    ['an unknown key', [set(['plans', 0, 'foo'], 1)], 'plans[0].foo', 'unknown key; allowed: name, cluster, namespace, selector, vault, schedule, retention, hooks, milvus, rpo'],
    ['a misspelt key', [set(['plans', 0, 'schedule'], { cron: ['0 2 * * *'], timezone: 'UTC' })], 'plans[0].schedule.timezone', 'unknown key; did you mean timeZone? allowed: cron, timeZone'],
    ['a missing required section', [remove(['plans', 0, 'milvus'])], 'plans[0].milvus', 'is required; must be a mapping'],
    ['a missing top-level list', [remove(['vaults'])], 'vaults', 'is required; must be a list'],
    ['a number where a schedule name or an inline schedule is expected', [set(['drills', 0, 'schedule'], 5)], 'drills[0].schedule', 'must be the name of a schedule policy (see schedulePolicies) or an inline schedule such as {cron: ["0 2 * * *"], timeZone: UTC}; got the number 5'],
    ['a number where a retention name or an inline policy is expected', [set(['plans', 0, 'retention'], 7)], 'plans[0].retention', 'must be the name of a retention policy (see retentionPolicies) or an inline policy'],
    ['a bad cron inside an inline schedule', [set(['plans', 0, 'schedule'], { cron: ['every day'] })], 'plans[0].schedule.cron[0]', '"every day" has 2 fields'],
    ['a weekly rule without its weekday', [remove(['plans', 0, 'retention', 'dayOfWeek'])], 'plans[0].retention.dayOfWeek', 'is required when weekly is set'],
    ['a retention that keeps nothing', [set(['plans', 0, 'retention'], { latest: 0 })], 'plans[0].retention', 'must keep something'],
    ['a plan naming a vault that does not exist', [set(['plans', 0, 'vault'], 'secondary')], 'plans[0].vault', 'names vault "secondary" that is not defined; defined: primary'],
    ['a plan naming a cluster that does not exist', [set(['plans', 0, 'cluster'], 'staging')], 'plans[0].cluster', 'names cluster "staging" that is not defined; defined: prod'],
    ['a plan naming a retention policy that does not exist', [set(['plans', 0, 'retention'], 'gfs')], 'plans[0].retention', 'names retention policy "gfs" that is not defined; none is defined under retentionPolicies'],
    ['a plan naming a hook that does not exist', [set(['plans', 0, 'hooks', 'items', 0, 'hook'], 'flush')], 'plans[0].hooks.items[0].hook', 'names hook "flush" that is not defined; defined: datanode-sync'],
    ['a drill naming a plan that does not exist', [set(['drills', 0, 'plan'], 'other')], 'drills[0].plan', 'names plan "other" that is not defined'],
    ['a drill restoring over production', [set(['drills', 0, 'targetNamespace'], 'vector-db')], 'drills[0].targetNamespace', 'must differ from the plan\'s namespace vector-db'],
    ['a drill mapping to a storage class name Kubernetes would refuse', [set(['drills', 0, 'storageClassMap'], { gp3: 'Fast SSD' })], 'drills[0].storageClassMap.gp3', '"Fast SSD" is not a StorageClass name'],
    ['a name used twice', [set(['schedulePolicies', 1, 'name'], 'daily-0200')], 'schedulePolicies[1].name', '"daily-0200" is already used by schedulePolicies[0]'],
    ['a private cluster without a VPC', [set(['clusters', 0, 'endpointAccess'], 'private')], 'clusters[0].vpc', 'is required when endpointAccess is private'],
    ['a vault in another region than its cluster', [set(['vaults', 0, 'region'], 'eu-west-1'), set(['vaults', 0, 'replicaRegions'], [])], 'plans[0].vault', 'vault primary is in eu-west-1 but cluster prod is in us-east-1'],
    ['a bucket name S3 would refuse', [set(['plans', 0, 'milvus', 'objectStorage'], { bucket: 'Acme_Milvus', rootPath: 'files' })], 'plans[0].milvus.objectStorage.bucket', 'must be an S3 bucket name: 3-63 lowercase letters'],
    ['a root path with a leading slash', [set(['plans', 0, 'milvus', 'objectStorage'], { bucket: 'acme-milvus', rootPath: '/files' })], 'plans[0].milvus.objectStorage.rootPath', 'no slash at either end'],
    ['a restore target prefix with ".."', [set(['plans', 0, 'milvus', 'objectStorage'], { bucket: 'acme-milvus', rootPath: 'files', restoreTargets: [{ bucket: 'acme-restores', prefix: 'a/../b' }] })], 'plans[0].milvus.objectStorage.restoreTargets[0].prefix', 'must not have "." or ".." segments'],
    ['a label value that is a number', [set(['plans', 0, 'selector', 'matchLabels', 'app.kubernetes.io/instance'], 7)], 'plans[0].selector.matchLabels["app.kubernetes.io/instance"]', 'must be a string (quote numbers and booleans in YAML); got the number 7'],
  ];

  it.each(cases)('reports %s at its path', (_what, mutations, path, fragment) => {
    // Act
    const issues = issuesOf(variant(...mutations));

    // Assess
    const atPath = issues.filter((i) => i.path === path);
    expect(atPath.map((i) => i.message)).toEqual(expect.arrayContaining([expect.stringContaining(fragment)]));
  });

  it('reports every problem in the file, shape errors and dangling references together', () => {
    // Prepare
    const text = variant(
      set(['plans', 0, 'retention', 'dayOfWeek'], 'Funday'),
      set(['clusters', 0, 'region'], 'us-east-3'),
      set(['plans', 0, 'vault'], 'primry'),
      set(['drills', 0, 'plan'], 'nope'),
    );

    // Act
    const paths = issuesOf(text).map((i) => i.path);

    // Assess
    expect(paths).toEqual(expect.arrayContaining(['clusters[0].region', 'plans[0].retention.dayOfWeek', 'plans[0].vault', 'drills[0].plan']));
  });

  it('reports a misspelt cluster region once, not again as a region mismatch with its vault', () => {
    const text = variant(set(['clusters', 0, 'region'], 'us-east-9'));

    const issues = issuesOf(text);

    expect(issues.map((i) => i.path)).toEqual(['clusters[0].region']);
  });

  it('names the line of the offending value', () => {
    // Prepare: the example's dayOfWeek sits on line 61.
    const text = exampleText.replace('dayOfWeek: Sunday', 'dayOfWeek: Funday');

    // Act
    const [issue] = issuesOf(text);

    // Assess
    expect(issue).toMatchObject({ path: 'plans[0].retention.dayOfWeek', line: 61 });
  });

  it('names the line of an unknown key', () => {
    // Prepare
    const text = exampleText.replace('    rpo: 26h', '    rpo: 26h\n    retries: 3');

    // Act
    const [issue] = issuesOf(text);

    // Assess
    expect(issue).toMatchObject({ path: 'plans[0].retries', line: 81 });
  });

  it('puts the path first and the line after it in the formatted problem', () => {
    // Act
    let error: unknown;
    try {
      parseConfig(exampleText.replace('dayOfWeek: Sunday', 'dayOfWeek: Funday'), 'prod.yaml');
    } catch (err) {
      error = err;
    }

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toBeInstanceOf(UserError);
    expect((error as ConfigError).file).toBe('prod.yaml');
    expect((error as ConfigError).problems).toEqual([
      'plans[0].retention.dayOfWeek (line 61): "Funday" is not a weekday; expected one of Sunday, Monday, Tuesday, Wednesday, Thursday, Friday, Saturday',
    ]);
  });

  it('reports a YAML syntax error with its line and column', () => {
    // Prepare
    const text = 'clusters:\n  - name: prod\n    region: [us-east-1\nvaults: []\n';

    // Act
    const issues = issuesOf(text);

    // Assess
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]!.line).toBeGreaterThanOrEqual(3);
    expect(issues[0]!.column).toBeDefined();
    expect(issues[0]!.message).toContain('(YAML syntax)');
  });

  it('reports a duplicate key as an error at its path and line', () => {
    // Prepare
    const text = exampleText.replace('    rpo: 26h', '    rpo: 26h\n    rpo: 48h');

    // Act
    const issues = issuesOf(text);

    // Assess
    expect(issues).toEqual([expect.objectContaining({ path: 'plans[0].rpo', line: 81, message: expect.stringContaining('duplicate key') })]);
  });

  it('accepts top-level x- keys as a home for anchors that merge keys reuse', () => {
    // Prepare
    const text = exampleText
      .replace('hooks:\n  - name: datanode-sync\n    pre:\n', 'x-hook-defaults: &defaults\n  timeoutSeconds: 45\nhooks:\n  - name: datanode-sync\n    pre:\n      <<: *defaults\n')
      .replace('      timeoutSeconds: 30\n', '');

    // Act
    const config = parseConfig(text, 'anchors.yaml');

    // Assess
    expect(config.hooks[0]!.pre!.timeoutSeconds).toBe(45);
  });

  it('reports an empty file', () => {
    expect(issuesOf('# nothing here\n')).toEqual([expect.objectContaining({ path: '', message: expect.stringContaining('the file is empty') })]);
  });

  it('reports a file that is a list instead of a mapping', () => {
    expect(issuesOf('- clusters\n')).toEqual([expect.objectContaining({ message: 'expected a mapping with clusters, vaults, plans, ...; got a list of 1 item' })]);
  });
});

describe('loadConfigFile', () => {
  it('reads and validates a file', async () => {
    const config = await loadConfigFile(EXAMPLE);
    expect(config.clusters[0]!.eksClusterName).toBe('prod-eks');
  });

  it('names a file that does not exist', async () => {
    await expect(loadConfigFile('test/fixtures/config/does-not-exist.yaml')).rejects.toMatchObject({
      name: 'ConfigError',
      file: 'test/fixtures/config/does-not-exist.yaml',
      problems: [expect.stringContaining('the file does not exist')],
    });
  });

  it('lists the problems of an invalid file with the file name', async () => {
    await expect(loadConfigFile('test/fixtures/config/invalid.yaml')).rejects.toThrow(/^config file test\/fixtures\/config\/invalid\.yaml is not valid:\n {2}- /);
  });
});

describe('resolvePlan', () => {
  const config = parseConfig(exampleText, EXAMPLE);

  it('resolves cluster, vault, schedule, retention and hooks of a plan', () => {
    // Act
    const resolved = resolvePlan(config, 'milvus-production-backup');

    // Assess
    expect(resolved.cluster.name).toBe('prod');
    expect(resolved.vault.name).toBe('primary');
    expect(resolved.schedule).toEqual({ cron: ['0 2 * * *'], timeZone: 'UTC' });
    expect(resolved.retention).toMatchObject({ latest: 7, weekly: 4, dayOfWeek: 'Sunday', maxAgeDays: 730 });
    expect(resolved.hooks.mode).toBe('Sequential');
    expect(resolved.hooks.items).toEqual([
      {
        hook: expect.objectContaining({ name: 'datanode-sync' }),
        podSelector: { matchLabels: { 'app.kubernetes.io/instance': 'production-milvus', 'app.kubernetes.io/component': 'datanode' } },
      },
    ]);
  });

  it('resolves a named retention policy without its name', () => {
    // Prepare
    const named = parseConfig(
      variant(set(['retentionPolicies'], [{ name: 'gfs', latest: 3 }]), set(['plans', 0, 'retention'], 'gfs')),
      'named.yaml',
    );

    // Act
    const resolved = resolvePlan(named, 'milvus-production-backup');

    // Assess
    expect(resolved.retention).toEqual({ latest: 3 });
  });

  it('leaves the schedule out for an on-demand plan and gives it no hooks', () => {
    // Prepare
    const onDemand = parseConfig(variant(remove(['plans', 0, 'schedule']), remove(['plans', 0, 'hooks'])), 'on-demand.yaml');

    // Act
    const resolved = resolvePlan(onDemand, 'milvus-production-backup');

    // Assess
    expect('schedule' in resolved).toBe(false);
    expect(resolved.hooks).toEqual({ mode: 'Sequential', items: [] });
  });

  it('names the plan and the plans that exist when the plan is unknown', () => {
    expect(() => resolvePlan(config, 'nightly')).toThrow(new UnknownNameError('plan "nightly" is not defined in the config; defined: milvus-production-backup'));
  });
});

describe('resolveDrill', () => {
  const config = parseConfig(exampleText, EXAMPLE);

  it('resolves the drill with its plan, schedule and restore target', () => {
    // Act
    const drill = resolveDrill(config, 'production-weekly-drill');

    // Assess
    expect(drill.plan.plan.name).toBe('milvus-production-backup');
    expect(drill.schedule).toEqual({ cron: ['0 6 * * 0'], timeZone: 'UTC' });
    expect(drill.targetCluster.name).toBe('prod');
    expect(drill.targetNamespace).toBe('vector-db-drill');
  });

  it('defaults the target namespace to <plan namespace>-drill', () => {
    // Prepare
    const defaulted = parseConfig(variant(remove(['drills', 0, 'targetNamespace'])), 'drill.yaml');

    // Act
    const drill = resolveDrill(defaulted, 'production-weekly-drill');

    // Assess
    expect(drill.targetNamespace).toBe('vector-db-drill');
  });

  it('throws a UserError naming an unknown drill', () => {
    expect(() => resolveDrill(config, 'monthly')).toThrow(UserError);
    expect(() => resolveDrill(config, 'monthly')).toThrow('drill "monthly" is not defined in the config; defined: production-weekly-drill');
  });
});

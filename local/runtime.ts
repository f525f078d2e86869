/**
 * How a pod's container runs here: as a real child process. A container's volumeMounts are
 * mapped to directories (PVCs to their volume's directory, emptyDir/secret/configMap volumes
 * to directories under the pod's working directory), and every argument, env value and the
 * working directory that starts with a mountPath is rewritten to the mapped directory. A
 * command that invokes `milvus-guard` runs the project's own CLI with this Node; any other
 * command runs if it is an executable on this machine. A container without a command runs its
 * image's ENTRYPOINT, as a kubelet does, for the images listed in `IMAGES`. Pods get a clean
 * environment (only a fixed PATH, HOME and what the pod spec sets), like a container.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { basename, join } from 'node:path';
import { accessSync, constants } from 'node:fs';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { ObjectStore } from './server/store.js';
import { typeOf } from './server/resources.js';
import type { VolumeDirs } from './volumes.js';

/** The CLI entry point a `milvus-guard` container command runs. */
export const CLI_ENTRY = fileURLToPath(new URL('../bin/milvus-guard.js', import.meta.url));

/** The data mover's image as the local cluster runs it (its build of docker/datamover). */
export const LOCAL_DATAMOVER_IMAGE = 'milvus-guard-datamover:local';

/**
 * The ENTRYPOINT and CMD of the images the local cluster can run without a `command`. Like a
 * kubelet, it runs the ENTRYPOINT followed by the container's `args`, else by the CMD; a
 * `command` replaces both. The data mover's bundle in the real image is this project's CLI, so
 * here its ENTRYPOINT is `milvus-guard datamover` and CMD `--help`, as in the Dockerfile.
 */
const IMAGES: Record<string, { readonly entrypoint: readonly string[]; readonly cmd: readonly string[] }> = {
  [LOCAL_DATAMOVER_IMAGE]: { entrypoint: ['milvus-guard', 'datamover'], cmd: ['--help'] },
};

/** PATH of pod processes: the usual system directories, nothing from the host's environment. */
export const POD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A container made runnable: the executable, its arguments, environment and directory. */
export interface ContainerProcess {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** mountPath → real directory, longest first. */
  mounts: [string, string][];
}

/** Why a container cannot run here. */
export class ContainerStartError extends Error {
  readonly reason: string;

  constructor(reason: string, message: string) {
    super(message);
    this.name = 'ContainerStartError';
    this.reason = reason;
  }
}

/**
 * Rewrites every mountPath in `value` to its directory: a whole argument (`/data/x`), a flag
 * value (`--dir=/data/x`), a URL (`file:///data/x`) or a path inside a shell script
 * (`sh -c "ls /data"`). A mountPath only matches at a path boundary, so `/data` does not
 * rewrite `/database`.
 */
export function rewritePath(value: string, mounts: readonly [string, string][]): string {
  if (mounts.length === 0) return value;
  const escaped = mounts.map(([mountPath]) => mountPath.replace(/\/+$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  // Longest first (mounts are sorted that way), so /data/sub wins over /data.
  const pattern = new RegExp(`(^|file://|[\\s=:'"(])(${escaped.join('|')})(?=$|[/\\s'";)])`, 'g');
  return value.replace(pattern, (_m, before: string, path: string) => {
    const dir = mounts.find(([mountPath]) => mountPath.replace(/\/+$/, '') === path)![1];
    return `${before}${dir}`;
  });
}

function findExecutable(command: string): string | undefined {
  const candidates = command.includes('/') ? [command] : POD_PATH.split(':').map((d) => join(d, command));
  return candidates.find((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Turns `[command..., args...]` into an executable and arguments, mapping `milvus-guard` to the CLI. */
export function resolveCommand(argv: readonly string[]): { file: string; args: string[] } {
  const [command, ...args] = argv;
  if (!command) throw new ContainerStartError('CreateContainerConfigError', 'the container has no command: set command or args in the pod spec');
  if (basename(command) === 'milvus-guard') return { file: process.execPath, args: [CLI_ENTRY, ...args] };
  const file = findExecutable(command);
  if (!file) {
    throw new ContainerStartError(
      'StartError',
      `exec: "${command}": executable file not found in $PATH (the local cluster runs container commands as local processes; only milvus-guard and executables on this machine can run)`,
    );
  }
  return { file, args };
}

/** What a kubelet runs for `container`: its command, else its image's ENTRYPOINT (see `IMAGES`). */
function containerArgv(container: V1Container): string[] {
  if (container.command?.length) return [...container.command, ...(container.args ?? [])];
  const image = IMAGES[container.image ?? ''];
  if (!image) {
    throw new ContainerStartError(
      'ErrImagePull',
      `image "${container.image}" is not one the local cluster has, so it cannot run its entrypoint: set command in the pod spec (images it has: ${Object.keys(IMAGES).join(', ')})`,
    );
  }
  return [...image.entrypoint, ...(container.args?.length ? container.args : image.cmd)];
}

type ObjectRef = { name?: string; optional?: boolean };

/** A Secret or ConfigMap of `namespace` from the store, as the kubelet fetches it. */
function source(store: ObjectStore, kind: 'Secret' | 'ConfigMap', namespace: string, name: string | undefined): Record<string, string> | undefined {
  const object = name ? store.get(typeOf(kind), namespace, name) : undefined;
  return object ? ((object.data ?? {}) as Record<string, string>) : undefined;
}

const notFound = (kind: 'Secret' | 'ConfigMap', name: string | undefined) => `${kind.toLowerCase()} "${name}" not found`;

/**
 * What a kubelet refuses before it creates `container`, with its words: a non-optional env
 * `secretKeyRef`/`configMapKeyRef` whose object or key is missing, or an `envFrom` source that
 * is missing, is `CreateContainerConfigError` (the pod stays Pending and is retried, so it
 * starts once the object appears). Undefined when the container's configuration resolves.
 */
export function containerConfigError(pod: V1Pod, container: V1Container, store: ObjectStore): ContainerStartError | undefined {
  const namespace = pod.metadata!.namespace!;
  for (const from of container.envFrom ?? []) {
    const ref: ObjectRef | undefined = from.secretRef ?? from.configMapRef;
    const kind = from.secretRef ? 'Secret' : 'ConfigMap';
    if (ref && !ref.optional && !source(store, kind, namespace, ref.name)) return new ContainerStartError('CreateContainerConfigError', notFound(kind, ref.name));
  }
  for (const item of container.env ?? []) {
    const from = item.valueFrom;
    const ref = from?.secretKeyRef ?? from?.configMapKeyRef;
    if (!ref || ref.optional) continue;
    const kind = from!.secretKeyRef ? 'Secret' : 'ConfigMap';
    const data = source(store, kind, namespace, ref.name);
    if (!data) return new ContainerStartError('CreateContainerConfigError', notFound(kind, ref.name));
    if (data[ref.key] === undefined) return new ContainerStartError('CreateContainerConfigError', `couldn't find key ${ref.key} in ${kind} ${namespace}/${ref.name}`);
  }
  return undefined;
}

/**
 * What keeps a kubelet from setting up the volumes of `pod`: a non-optional `secret`,
 * `configMap` or `projected` source that is missing. The real kubelet reports it as a
 * `FailedMount` event and leaves every container waiting in `ContainerCreating` (not
 * `CreateContainerConfigError`), retrying until the object appears. Claims are the scheduler's
 * business (see `unboundClaims` of the pod controller). Undefined when every source exists.
 */
export function volumeSetUpError(pod: V1Pod, store: ObjectStore): ContainerStartError | undefined {
  const namespace = pod.metadata!.namespace!;
  for (const volume of pod.spec?.volumes ?? []) {
    const sources: { kind: 'Secret' | 'ConfigMap'; ref: ObjectRef }[] = [];
    if (volume.secret) sources.push({ kind: 'Secret', ref: { name: volume.secret.secretName, optional: volume.secret.optional } });
    if (volume.configMap) sources.push({ kind: 'ConfigMap', ref: volume.configMap });
    for (const projected of volume.projected?.sources ?? []) {
      if (projected.secret) sources.push({ kind: 'Secret', ref: projected.secret });
      if (projected.configMap) sources.push({ kind: 'ConfigMap', ref: projected.configMap });
    }
    const missing = sources.find(({ kind, ref }) => !ref.optional && !source(store, kind, namespace, ref.name));
    if (missing) return new ContainerStartError('ContainerCreating', `MountVolume.SetUp failed for volume "${volume.name}" : ${notFound(missing.kind, missing.ref.name)}`);
  }
  return undefined;
}

/**
 * The value of a downward API `fieldRef` for an env var, for the paths the EnvVarSource.fieldRef
 * reference lists that anything here uses: metadata.name, metadata.namespace, metadata.uid,
 * `metadata.labels['<KEY>']`, `metadata.annotations['<KEY>']`, spec.nodeName,
 * spec.serviceAccountName. A label or annotation the pod lacks is the empty string, as in a
 * kubelet.
 */
function podField(pod: V1Pod, path: string): string {
  const subscripted = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (subscripted) return (subscripted[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations)?.[subscripted[2]!] ?? '';
  switch (path) {
    case 'metadata.name':
      return pod.metadata!.name!;
    case 'metadata.namespace':
      return pod.metadata!.namespace!;
    case 'metadata.uid':
      return pod.metadata!.uid ?? '';
    case 'spec.nodeName':
      return 'local-node';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
    default:
      return ''; // status.podIP and the like: nothing here reads them
  }
}

/**
 * Kubernetes' variable expansion in a container's command, args and env values (the Container
 * reference; k8s.io/kubernetes third_party/forked/golang/expansion): `$(NAME)` becomes the
 * variable's value; a name not defined, or a `$(` never closed, stays as written; `$$` is one
 * `$`, so `$$(NAME)` is the literal `$(NAME)`.
 */
export function expandVariables(input: string, variables: ReadonlyMap<string, string>): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c !== '$' || i + 1 >= input.length) {
      out += c;
      continue;
    }
    const next = input[i + 1]!;
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += '$(';
        i++;
        continue;
      }
      const name = input.slice(i + 2, close);
      out += variables.get(name) ?? `$(${name})`;
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

/**
 * Prepares a pod container to run: maps its volumes, resolves env (value, secretKeyRef,
 * configMapKeyRef, fieldRef) and builds the command. `override` replaces the container's
 * command (for exec). Throws `ContainerStartError` with a kubelet-like reason when it cannot.
 */
export async function prepareContainer(
  pod: V1Pod,
  container: V1Container,
  store: ObjectStore,
  dirs: VolumeDirs,
  override?: readonly string[],
): Promise<ContainerProcess> {
  const namespace = pod.metadata!.namespace!;
  const podName = pod.metadata!.name!;
  // The kubelet's own checks first, so Job pods and long-running pods wait for the same things.
  const refused = volumeSetUpError(pod, store) ?? containerConfigError(pod, container, store);
  if (refused) throw refused;
  const podDir = dirs.pod(namespace, podName);
  await mkdir(podDir, { recursive: true });
  const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
  const mounts: [string, string][] = [];
  for (const mount of container.volumeMounts ?? []) {
    const volume = volumes.get(mount.name);
    if (!volume) throw new ContainerStartError('CreateContainerConfigError', `volumeMount "${mount.name}" names no volume of the pod`);
    let dir: string;
    if (volume.persistentVolumeClaim) {
      const pvc = store.get(typeOf('PersistentVolumeClaim'), namespace, volume.persistentVolumeClaim.claimName);
      if (!pvc?.spec?.volumeName || pvc.status?.phase !== 'Bound') {
        throw new ContainerStartError('ContainerCreating', `persistentvolumeclaim "${volume.persistentVolumeClaim.claimName}" is not bound`);
      }
      dir = dirs.volume(pvc.spec.volumeName);
    } else if (volume.secret || volume.configMap) {
      dir = join(podDir, 'volumes', mount.name);
      await mkdir(dir, { recursive: true });
      const source = volume.secret
        ? store.get(typeOf('Secret'), namespace, volume.secret.secretName!)
        : store.get(typeOf('ConfigMap'), namespace, volume.configMap!.name!);
      // Absent only when optional (volumeSetUpError refused the rest): an empty directory.
      for (const [key, value] of Object.entries((source?.data ?? {}) as Record<string, string>)) {
        await writeFile(join(dir, key), volume.secret ? Buffer.from(value, 'base64') : value, { mode: 0o600 });
      }
    } else {
      dir = join(podDir, 'volumes', mount.name); // emptyDir and anything else: a scratch directory
      await mkdir(dir, { recursive: true });
    }
    mounts.push([mount.mountPath, mount.subPath ? join(dir, mount.subPath) : dir]);
  }
  mounts.sort((a, b) => b[0].length - a[0].length);

  const env: Record<string, string> = { PATH: POD_PATH, HOME: podDir, HOSTNAME: podName };
  // What the container declares, as written (before paths are mapped): what `$(VAR)` expands to.
  const declared = new Map<string, string>();
  const set = (name: string, value: string): void => {
    declared.set(name, value);
    env[name] = rewritePath(value, mounts);
  };
  // envFrom first: an `env` entry of the same name wins, as in a kubelet.
  for (const from of container.envFrom ?? []) {
    const data = source(store, from.secretRef ? 'Secret' : 'ConfigMap', namespace, (from.secretRef ?? from.configMapRef)?.name) ?? {};
    for (const [key, raw] of Object.entries(data)) set(`${from.prefix ?? ''}${key}`, from.secretRef ? Buffer.from(raw, 'base64').toString('utf8') : raw);
  }
  for (const item of container.env ?? []) {
    // A literal value may refer to the variables declared before it.
    let value = item.value === undefined ? undefined : expandVariables(item.value, declared);
    const from = item.valueFrom;
    if (from?.secretKeyRef || from?.configMapKeyRef) {
      const ref = (from.secretKeyRef ?? from.configMapKeyRef)!;
      const source = store.get(typeOf(from.secretKeyRef ? 'Secret' : 'ConfigMap'), namespace, ref.name!);
      const raw = source?.data?.[ref.key];
      if (raw === undefined) continue; // optional (containerConfigError refused the rest)
      value = from.secretKeyRef ? Buffer.from(raw, 'base64').toString('utf8') : raw;
    } else if (from?.fieldRef) {
      value = podField(pod, from.fieldRef.fieldPath);
    }
    if (value !== undefined) set(item.name, value);
  }

  // A kubelet expands `$(VAR)` in the container's command and args, not in an exec's.
  const argv = override ?? containerArgv(container).map((a) => expandVariables(a, declared));
  const { file, args } = resolveCommand(argv.map((a) => rewritePath(a, mounts)));
  const cwd = container.workingDir ? rewritePath(container.workingDir, mounts) : podDir;
  if (cwd.startsWith('/') && cwd !== podDir && !mounts.some(([, dir]) => cwd.startsWith(dir))) {
    throw new ContainerStartError('CreateContainerConfigError', `workingDir ${container.workingDir} is not under a volumeMount, so it does not exist here`);
  }
  return { file, args, env, cwd, mounts };
}

// Which of the app=redis pods carry the leader label, from one watch: what the bench's sections wait for.

import { KubeConfig, Watch, type V1Pod } from '@kubernetes/client-node';

export interface LeaderWatch {
  /** The pods labelled role=leader, sorted and joined with commas ('' for none). */
  holders(): string;
  /** How many times a pod has taken the leader label since the watch opened (its first listing counts). */
  moves(): number;
  /** Resolves with `clock()` read when `holders()` first equals `want` (at once if it does now). */
  until(want: string): Promise<number>;
  stop(): void;
}

/** `clock`: the moment a wanted state is seen on it (section 2 needs the clock the containers share). */
export async function watchLeaders(kubeconfig: string, namespace: string, clock: () => number = () => performance.now()): Promise<LeaderWatch> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const roles = new Map<string, string | undefined>();
  let holders = '';
  let moves = 0;
  const waiters: { want: string; resolve: (at: number) => void }[] = [];
  const watch = await new Watch(kc).watch(`/api/v1/namespaces/${namespace}/pods`, { labelSelector: 'app=redis' }, (type: string, pod: V1Pod) => {
    const name = pod.metadata!.name!;
    const role = type === 'DELETED' ? undefined : pod.metadata?.labels?.role;
    if (role === 'leader' && roles.get(name) !== 'leader') moves++;
    if (type === 'DELETED') roles.delete(name);
    else roles.set(name, role);
    holders = [...roles].filter(([, r]) => r === 'leader').map(([n]) => n).sort().join();
    const at = clock();
    for (const w of waiters.splice(0)) if (w.want === holders) w.resolve(at); else waiters.push(w);
  }, () => undefined);
  return {
    holders: () => holders,
    moves: () => moves,
    until: (want) => new Promise((resolve) => (holders === want ? resolve(clock()) : waiters.push({ want, resolve }))),
    stop: () => watch.abort(),
  };
}

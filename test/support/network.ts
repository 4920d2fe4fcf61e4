// Pods' network namespaces on one machine: a bridge and one namespace per member, so each gets a real pod IP.
//
// EndpointSlices refuse loopback addresses, so members cannot share 127.0.0.0/8. Each member gets a
// namespace with its own address in 198.18.0.0/15 (the range reserved for network testing), joined by
// a bridge whose address is the gateway; traffic never leaves this machine. Needs root and iproute2.

import { execFileSync } from 'node:child_process';

export interface PodNetwork {
  /** The bridge's address: where processes in the namespaces reach the host (the API server listens there). */
  gateway: string;
  ips: Map<string, string>;
  /** The network namespace of a member, for `ip netns exec`. */
  netns(member: string): string;
  destroy(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** `subnet` picks 198.18.<subnet>.0/24, so the tests (0) and the demo (1) never share addresses. */
export function createPodNetwork(subnet: 0 | 1, members: string[]): PodNetwork {
  const tag = `hpr${subnet}`;
  removeLeftovers(tag);
  const bridge = `${tag}br`;
  const gateway = `198.18.${subnet}.1`;
  ip('link', 'add', bridge, 'type', 'bridge');
  ip('addr', 'add', `${gateway}/24`, 'dev', bridge);
  ip('link', 'set', bridge, 'up');
  const ips = new Map<string, string>();
  members.forEach((member, i) => {
    const ns = `${tag}-${member}`;
    const address = `198.18.${subnet}.${10 + i}`;
    ip('netns', 'add', ns);
    ip('link', 'add', `${tag}v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('link', 'set', `${tag}v${i}`, 'master', bridge, 'up');
    ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ips.set(member, address);
  });
  return { gateway, ips, netns: (member) => `${tag}-${member}`, destroy: () => removeLeftovers(tag) };
}

/** Removes this tag's namespaces and bridge, also those an interrupted run left behind. */
function removeLeftovers(tag: string): void {
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${tag}-`));
  for (const ns of namespaces) {
    // Processes still inside would keep it alive: end them first.
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    ip('netns', 'del', ns);
  }
  try {
    ip('link', 'del', `${tag}br`);
  } catch {
    // no bridge: nothing to remove
  }
}
